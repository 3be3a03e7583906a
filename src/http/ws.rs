//! WebSocket upgrades. A handler validates the upgrade request, returns the
//! `101` response, and runs the socket in a task of its own:
//!
//! ```ignore
//! async fn events(mut req: Request) -> HandlerResult {
//!     let (response, socket) = ws::upgrade(&mut req)?;
//!     let shutdown = req.state().shutdown.clone();
//!     tokio::spawn(async move {
//!         let Ok(mut socket) = socket.await else { return };
//!         // read and write frames until the client leaves or `shutdown` fires
//!     });
//!     Ok(response)
//! }
//! ```
//!
//! Authentication is the route's own business (it closes with 4001 rather
//! than refusing the upgrade; see DECISIONS.md): mark the route
//! [`public`](super::Route::public) and use [`Request::api_keys`].

use std::future::Future;

use hyper::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use hyper::upgrade::Upgraded;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::error::ApiError;
use super::request::Request;
use super::response::{self, Response};

/// A server-side WebSocket over an upgraded HTTP connection.
pub type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Validates a WebSocket upgrade request. Returns the `101` response to send
/// and a future that resolves to the socket once the response has gone out
/// (it fails if the client disconnects first).
pub fn upgrade(
    req: &mut Request,
) -> Result<
    (
        Response,
        impl Future<Output = Result<WebSocket, hyper::Error>> + Send + 'static,
    ),
    ApiError,
> {
    let headers = req.headers();
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if req.method() != Method::GET
        || !has_token(UPGRADE, "websocket")
        || !has_token(CONNECTION, "upgrade")
    {
        return Err(ApiError::bad_request(
            "Expected a WebSocket upgrade request",
        ));
    }
    if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        return Err(ApiError::bad_request(
            "Unsupported WebSocket version (expected 13)",
        ));
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("Missing Sec-WebSocket-Key"))?;
    let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|e| ApiError::internal(format!("accept key: {e}")))?;

    let on_upgrade = hyper::upgrade::on(req.inner_mut());
    let socket = async move {
        let upgraded = on_upgrade.await?;
        Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
    };

    let mut response = response::empty(StatusCode::SWITCHING_PROTOCOLS);
    let out = response.headers_mut();
    out.insert(UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    out.insert(SEC_WEBSOCKET_ACCEPT, accept);
    Ok((response, socket))
}
