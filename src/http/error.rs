//! [`ApiError`]: every way a request can fail, mapped to the status and JSON
//! body the Python server's clients expect.
//!
//! * `{"detail": "<message>"}` for 4xx errors (`Not Found`, `Unauthorized`, …);
//! * `422 {"detail": [ValidationErrorItem…]}` for invalid input;
//! * `500 {"detail": "Internal Server Error", "error_id": "<32 hex>"}` for
//!   anything unexpected (DECISIONS.md): the details go to the log under that
//!   id, never to the client, and the connection stays open.

use std::fmt;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::response::{self, Response};
use crate::api::validation::ValidationErrorItem;

/// What every handler returns.
pub type HandlerResult = Result<Response, ApiError>;

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// `{"detail": "<message>"}` with this status.
    Detail(StatusCode, String),
    /// `422 {"detail": [items]}`.
    Validation(Vec<ValidationErrorItem>),
    /// This status with a JSON body of the route's own shape
    /// (`{"detail": "...", "retryable": true}`, …).
    Body(StatusCode, Value),
    /// An unexpected failure: the client sees only an error id; this text is logged.
    Internal(String),
}

impl ApiError {
    /// `{"detail": detail}` with `status`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError::Detail(status, detail.into())
    }

    /// `404 {"detail":"Not Found"}`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found")
    }

    /// `401 {"detail":"Unauthorized"}`.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    /// `400 {"detail": detail}`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// `409 {"detail": detail}`.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// `413 {"detail":"Content Too Large"}` (Starlette's wording).
    pub fn too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "Content Too Large")
    }

    /// `422` with these items.
    pub fn validation(items: Vec<ValidationErrorItem>) -> Self {
        ApiError::Validation(items)
    }

    /// `status` with an arbitrary JSON body.
    pub fn with_body(status: StatusCode, body: Value) -> Self {
        ApiError::Body(status, body)
    }

    /// A `500` whose `detail` is logged, not sent.
    pub fn internal(detail: impl fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }

    /// The HTTP response; internal errors are logged with their id and the request line.
    pub fn into_response(self, method: &Method, path: &str) -> Response {
        let (status, body) = match self {
            ApiError::Detail(status, detail) => (status, json!({ "detail": detail })),
            ApiError::Validation(items) => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({ "detail": items }))
            }
            ApiError::Body(status, body) => (status, body),
            ApiError::Internal(detail) => {
                let error_id = crate::util::ids::hex(&crate::util::ids::new_uuid());
                tracing::error!(%error_id, %method, path, "internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "detail": "Internal Server Error", "error_id": error_id }),
                )
            }
        };
        // A `Value` always serialises.
        response::json_bytes(status, serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Detail(status, detail) => write!(f, "{status}: {detail}"),
            ApiError::Validation(items) => write!(f, "422: {} validation error(s)", items.len()),
            ApiError::Body(status, body) => write!(f, "{status}: {body}"),
            ApiError::Internal(detail) => write!(f, "internal error: {detail}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<ValidationErrorItem> for ApiError {
    fn from(item: ValidationErrorItem) -> Self {
        ApiError::Validation(vec![item])
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> Self {
        ApiError::internal(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(error: ApiError) -> (StatusCode, Value) {
        let response = error.into_response(&Method::GET, "/x");
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn shapes() {
        assert_eq!(
            body_of(ApiError::not_found()).await,
            (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
        );
        let item = ValidationErrorItem::missing(crate::loc!["query", "ids"], Value::Null);
        assert_eq!(
            body_of(item.into()).await,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"detail": [{"type": "missing", "loc": ["query", "ids"], "msg": "Field required", "input": null}]})
            )
        );
        let custom = json!({"detail": "busy", "retryable": true});
        assert_eq!(
            body_of(ApiError::with_body(StatusCode::CONFLICT, custom.clone())).await,
            (StatusCode::CONFLICT, custom)
        );
        let (status, body) = body_of(ApiError::internal("secret details")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["detail"], "Internal Server Error");
        let id = body["error_id"].as_str().unwrap();
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!body.to_string().contains("secret"));
    }
}
