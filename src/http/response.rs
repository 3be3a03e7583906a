//! Responses: the body type every handler returns and helpers to build the common ones.
//!
//! JSON is compact with non-ASCII left unescaped, like FastAPI's `JSONResponse`.

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::StatusCode;
use serde::Serialize;

use super::error::{ApiError, HandlerResult};

/// Any error a response body may fail with (a file read during a download, …).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: a complete buffer or a stream of chunks.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The response type of every handler.
pub type Response = hyper::Response<Body>;

const JSON: &str = "application/json";

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty_body() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A response with `status`, a content type and a complete body.
pub fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    let mut response = hyper::Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `200` with `value` as JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> HandlerResult {
    json_with_status(StatusCode::OK, value)
}

/// `status` with `value` as JSON.
pub fn json_with_status<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> HandlerResult {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| ApiError::internal(format!("cannot serialise the response: {e}")))?;
    Ok(json_bytes(status, bytes))
}

/// `status` with already serialised JSON.
pub fn json_bytes(status: StatusCode, bytes: impl Into<Bytes>) -> Response {
    with_body(status, JSON, bytes)
}

/// `status` with a plain-text body.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    with_body(status, "text/plain; charset=utf-8", body)
}

/// `200` with an HTML page.
pub fn html(body: impl Into<Bytes>) -> Response {
    with_body(StatusCode::OK, "text/html; charset=utf-8", body)
}

/// `status` with no body.
pub fn empty(status: StatusCode) -> Response {
    let mut response = hyper::Response::new(empty_body());
    *response.status_mut() = status;
    response
}

/// A redirect (`302`, `307`, …) to `location`.
pub fn redirect(status: StatusCode, location: &str) -> HandlerResult {
    let value = HeaderValue::from_str(location)
        .map_err(|_| ApiError::internal(format!("invalid redirect location {location:?}")))?;
    let mut response = empty(status);
    response.headers_mut().insert(LOCATION, value);
    Ok(response)
}

/// `status` with a body streamed chunk by chunk (file downloads); nothing is buffered whole.
pub fn stream<S, E>(status: StatusCode, content_type: HeaderValue, chunks: S) -> Response
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<BoxError> + 'static,
{
    let body = StreamBody::new(chunks.map_ok(Frame::data).map_err(Into::into)).boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}
