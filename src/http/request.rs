//! [`Request`]: what a handler receives. It gives the matched path
//! parameters, the query, the body (limited to `max_body_bytes` unless the
//! route streams it) and the shared application state.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
use hyper::header::{HeaderMap, CONTENT_TYPE};
use hyper::{Method, Uri};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::app::App;
use super::auth::ApiKeys;
use super::body;
use super::error::ApiError;
use super::params::Params;
use super::response::BoxError;
use crate::api::validation::ValidationErrorItem;
use crate::server::AppState;

/// A request body as a stream of chunks.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// One HTTP request, as a handler sees it.
pub struct Request {
    inner: hyper::Request<Option<RequestBody>>,
    path_params: Vec<(String, String)>,
    app: Arc<App>,
    peer: Option<SocketAddr>,
    body_limit: Option<usize>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request({} {})", self.inner.method(), self.inner.uri())
    }
}

impl Request {
    pub(super) fn new(
        inner: hyper::Request<Option<RequestBody>>,
        path_params: Vec<(String, String)>,
        app: Arc<App>,
        peer: Option<SocketAddr>,
        body_limit: Option<usize>,
    ) -> Self {
        Request {
            inner,
            path_params,
            app,
            peer,
            body_limit,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        self.inner.method()
    }

    /// The full URI as sent.
    pub fn uri(&self) -> &Uri {
        self.inner.uri()
    }

    /// The path, not decoded.
    pub fn path(&self) -> &str {
        self.inner.uri().path()
    }

    /// The raw query string.
    pub fn query(&self) -> Option<&str> {
        self.inner.uri().query()
    }

    /// All headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// One header as text (`None` when absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// The client's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The shared application state.
    pub fn state(&self) -> &Arc<AppState> {
        self.app.state()
    }

    /// The session keys, for routes that authenticate on their own (WebSockets).
    pub fn api_keys(&self) -> &ApiKeys {
        self.app.api_keys()
    }

    pub(super) fn app(&self) -> &Arc<App> {
        &self.app
    }

    pub(super) fn inner_mut(&mut self) -> &mut hyper::Request<Option<RequestBody>> {
        &mut self.inner
    }

    /// A path parameter, decoded; an error if the route's pattern has no such name.
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                ApiError::internal(format!("route {} has no parameter {name}", self.path()))
            })
    }

    /// Path and query parameters, for validation.
    pub fn params(&self) -> Params {
        Params::new(self.path_params.clone(), self.query())
    }

    /// The body as a stream (routes marked `streaming_body`); `None` once taken.
    pub fn take_body(&mut self) -> Option<RequestBody> {
        self.inner.body_mut().take()
    }

    /// The whole body, at most `max_body_bytes` (`413` beyond).
    pub async fn body_bytes(&mut self) -> Result<Bytes, ApiError> {
        let mut body = self
            .take_body()
            .ok_or_else(|| ApiError::internal("the request body was already read"))?;
        let mut buffer = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|_| ApiError::bad_request("There was an error parsing the body"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if self
                .body_limit
                .is_some_and(|limit| buffer.len() + data.len() > limit)
            {
                return Err(ApiError::too_large());
            }
            buffer.extend_from_slice(&data);
        }
        Ok(buffer.freeze())
    }

    /// The body as JSON, or `None` when it is empty (for optional bodies).
    pub async fn optional_json_value(&mut self) -> Result<Option<Value>, ApiError> {
        let bytes = self.body_bytes().await?;
        let content_type = self
            .inner
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        body::parse_json(content_type, &bytes)
    }

    /// The body as JSON; empty is a `missing` error, as in FastAPI.
    pub async fn json_value(&mut self) -> Result<Value, ApiError> {
        self.optional_json_value()
            .await?
            .ok_or_else(|| ValidationErrorItem::missing(vec!["body".into()], Value::Null).into())
    }

    /// The body deserialised into `T`; shape errors name the failing field.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let value = self.json_value().await?;
        body::from_value(&value)
    }
}
