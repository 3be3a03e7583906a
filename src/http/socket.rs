//! What every server WebSocket shares: authentication and keepalive pings
//! (websocket.md §1 and §3, DECISIONS.md).
//!
//! Authentication, in order, when session keys are configured:
//! 1. the query parameter `session_api_key`, else the `X-Session-API-Key`
//!    header: the socket is accepted either way and closed with 4001
//!    `Authentication failed` when the key is wrong (never a 403);
//! 2. otherwise the first text frame, within 10 s, must be
//!    `{"type":"auth","session_api_key":"<key>"}`; anything else (timeout,
//!    disconnect, bad JSON, another type, a wrong key) closes with 4001.
//!
//! Usage: [`SocketAuth::of`] before [`upgrade`](super::ws::upgrade) (it reads
//! the request), then [`authenticate`] on the accepted socket.

use std::time::Duration;

use futures_util::SinkExt;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::auth::{ApiKeys, SESSION_API_KEY_HEADER};
use super::request::Request;
use super::ws::WebSocket;

/// How long a client has to send its auth frame.
pub const FIRST_MESSAGE_AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// The server pings this often, and closes when a ping goes unanswered this long.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Close code for failed authentication.
pub const AUTH_FAILED: u16 = 4001;
/// Close code when a capacity limit is reached.
pub const TRY_AGAIN_LATER: u16 = 1013;

/// What the upgrade request says about authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketAuth {
    /// No keys configured, or a valid key in the query or header.
    Accepted,
    /// A key in the query or header, but a wrong one.
    Rejected,
    /// No key given: the first frame must authenticate.
    FirstMessage,
}

impl SocketAuth {
    /// Judges the query (`session_api_key`) and header key of an upgrade request.
    pub fn of(req: &Request) -> SocketAuth {
        let keys = req.api_keys();
        if keys.is_open() {
            return SocketAuth::Accepted;
        }
        let params = req.params();
        let presented = if params.has("session_api_key") {
            params.str("session_api_key")
        } else {
            req.headers()
                .get(SESSION_API_KEY_HEADER)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        match presented {
            None => SocketAuth::FirstMessage,
            Some(key) if !key.is_empty() && keys.allows(Some(&key)) => SocketAuth::Accepted,
            Some(_) => SocketAuth::Rejected,
        }
    }
}

/// Completes authentication on an accepted socket; on failure the socket
/// is closed with 4001 and `false` returned.
pub async fn authenticate(socket: &mut WebSocket, auth: SocketAuth, keys: &ApiKeys) -> bool {
    let ok = match auth {
        SocketAuth::Accepted => return true,
        SocketAuth::Rejected => false,
        SocketAuth::FirstMessage => {
            match tokio::time::timeout(FIRST_MESSAGE_AUTH_TIMEOUT, first_text(socket)).await {
                Ok(Some(text)) => is_auth_frame_for(&text, keys),
                _ => false,
            }
        }
    };
    if !ok {
        close(socket, AUTH_FAILED, "Authentication failed").await;
    }
    ok
}

/// The first text frame (binary frames count as text, as Starlette reads them).
async fn first_text(socket: &mut WebSocket) -> Option<String> {
    while let Some(message) = socket.next().await {
        match message.ok()? {
            Message::Text(text) => return Some(text.as_str().to_owned()),
            Message::Binary(bytes) => return Some(String::from_utf8_lossy(&bytes).into_owned()),
            Message::Close(_) => return None,
            // Pings are answered by the protocol layer; keep waiting.
            _ => {}
        }
    }
    None
}

fn is_auth_frame_for(text: &str, keys: &ApiKeys) -> bool {
    let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    if frame.get("type").and_then(Value::as_str) != Some("auth") {
        return false;
    }
    match frame.get("session_api_key").and_then(Value::as_str) {
        Some(key) if !key.is_empty() => keys.allows(Some(key)),
        _ => false,
    }
}

/// A leftover auth frame (`{"type":"auth"}` with at most a key): sockets
/// ignore it once authenticated.
pub fn is_auth_control_frame(value: &Value) -> bool {
    value.as_object().is_some_and(|frame| {
        frame.get("type").and_then(Value::as_str) == Some("auth")
            && frame.keys().all(|k| k == "type" || k == "session_api_key")
    })
}

/// Sends a close frame; errors (the client is gone) are of no interest.
pub async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket.send(close_message(code, reason)).await;
}

/// A close frame with `code` and `reason`.
pub fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    }))
}

/// What the keepalive timer asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Send this ping.
    Ping(Vec<u8>),
    /// The last ping went unanswered for a whole interval: close with 1011.
    TimedOut,
}

/// Server pings: one per interval; a ping still unanswered when the next
/// is due means the client is gone (uvicorn's `ws_ping_interval` and
/// `ws_ping_timeout`, both 20 s upstream).
#[derive(Debug)]
pub struct Keepalive {
    interval: Interval,
    /// When the unanswered ping was sent.
    waiting_since: Option<Instant>,
}

impl Keepalive {
    /// A timer whose first ping is due one `period` from now.
    pub fn new(period: Duration) -> Self {
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Keepalive {
            interval,
            waiting_since: None,
        }
    }

    /// Waits until the next action is due. Cancel-safe (for `select!`).
    pub async fn tick(&mut self) -> KeepaliveAction {
        self.interval.tick().await;
        if self.waiting_since.is_some() {
            return KeepaliveAction::TimedOut;
        }
        self.waiting_since = Some(Instant::now());
        KeepaliveAction::Ping(uuid::Uuid::new_v4().as_bytes()[..4].to_vec())
    }

    /// A pong arrived.
    pub fn pong(&mut self) {
        self.waiting_since = None;
    }
}

/// The close frame for a client that stopped answering pings.
pub fn ping_timeout_message() -> Message {
    close_message(1011, "keepalive ping timeout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_frames() {
        let keys = ApiKeys::new(&["k".into()]);
        assert!(is_auth_frame_for(
            r#"{"type":"auth","session_api_key":"k"}"#,
            &keys
        ));
        for bad in [
            r#"{"type":"auth","session_api_key":"x"}"#,
            r#"{"type":"auth","session_api_key":""}"#,
            r#"{"type":"auth"}"#,
            r#"{"type":"other","session_api_key":"k"}"#,
            r#"["auth"]"#,
            "not json",
        ] {
            assert!(!is_auth_frame_for(bad, &keys), "{bad}");
        }
        assert!(is_auth_control_frame(&json!({"type": "auth"})));
        assert!(is_auth_control_frame(
            &json!({"type": "auth", "session_api_key": "x"})
        ));
        assert!(!is_auth_control_frame(
            &json!({"type": "auth", "command": "ls"})
        ));
        assert!(!is_auth_control_frame(&json!({"command": "ls"})));
    }

    #[tokio::test]
    async fn keepalive_pings_then_times_out_without_pong() {
        let mut keepalive = Keepalive::new(Duration::from_millis(20));
        assert!(matches!(keepalive.tick().await, KeepaliveAction::Ping(p) if p.len() == 4));
        keepalive.pong();
        assert!(matches!(keepalive.tick().await, KeepaliveAction::Ping(_)));
        assert_eq!(keepalive.tick().await, KeepaliveAction::TimedOut);
    }
}
