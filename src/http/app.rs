//! [`App`]: the per-request pipeline around the route table.
//!
//! In order: CORS preflight → route lookup → session key (before any body
//! or existence check) → `404`/`405`/`413` → the handler, with a panic
//! turned into a `500` with an error id → error bodies → CORS headers.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, ORIGIN};
use hyper::StatusCode;

use super::auth::ApiKeys;
use super::cors::Cors;
use super::error::ApiError;
use super::openapi;
use super::request::{Request, RequestBody};
use super::response::{self, BoxError, Response};
use super::router::{Access, Lookup, RouteTable, Router};
use crate::server::AppState;

/// The HTTP application: routes, policies and the shared state.
pub struct App {
    state: Arc<AppState>,
    router: Router,
    keys: ApiKeys,
    cors: Cors,
    openapi: Bytes,
}

impl App {
    /// Builds the dispatcher and the OpenAPI document from `table`.
    pub fn new(state: Arc<AppState>, table: RouteTable) -> Result<Arc<Self>, BoxError> {
        let openapi = Bytes::from(serde_json::to_vec(&openapi::document(&table))?);
        let keys = ApiKeys::new(&state.config.session_api_keys);
        let cors = Cors::new(&state.config)?;
        let router = Router::new(table.routes().to_vec())?;
        Ok(Arc::new(App {
            state,
            router,
            keys,
            cors,
            openapi,
        }))
    }

    /// The shared application state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The session keys.
    pub fn api_keys(&self) -> &ApiKeys {
        &self.keys
    }

    /// `/openapi.json`, serialised once at start.
    pub fn openapi_json(&self) -> Bytes {
        self.openapi.clone()
    }

    /// Answers one request; never fails (errors become error responses).
    pub async fn handle<B>(
        self: &Arc<Self>,
        request: hyper::Request<B>,
        peer: Option<SocketAddr>,
    ) -> Response
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let policy = Cors::policy(parts.uri.path());
        if let Some(preflight) = self.cors.preflight(policy, &parts.method, &parts.headers) {
            return preflight;
        }
        let origin = parts.headers.get(ORIGIN).cloned();
        let method = parts.method.clone();
        let path = parts.uri.path().to_string();
        let body: RequestBody = body.map_err(Into::into).boxed_unsync();
        let request = hyper::Request::from_parts(parts, Some(body));

        let mut response = match self.dispatch(request, peer).await {
            Ok(response) => response,
            Err(error) => error.into_response(&method, &path),
        };
        if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is never read, so the connection cannot carry another request.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        self.cors.decorate(policy, origin.as_ref(), &mut response);
        tracing::debug!(
            %method,
            path,
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request"
        );
        response
    }

    async fn dispatch(
        self: &Arc<Self>,
        request: hyper::Request<Option<RequestBody>>,
        peer: Option<SocketAddr>,
    ) -> Result<Response, ApiError> {
        let path = request.uri().path();
        let lookup = self.router.lookup(request.method(), path);
        let needs_key = match &lookup {
            // Unknown `/api/` paths need a key too, so they reveal nothing.
            Lookup::NotFound => path.starts_with("/api/"),
            Lookup::MethodNotAllowed { access, .. } => *access == Access::ApiKey,
            Lookup::Found(route, _) => route.access == Access::ApiKey,
        };
        if needs_key && !self.keys.allows_headers(request.headers()) {
            return Err(ApiError::unauthorized());
        }
        match lookup {
            Lookup::NotFound => match self.slash_redirect(request.uri()) {
                Some(location) => response::redirect(StatusCode::TEMPORARY_REDIRECT, &location),
                None => Err(ApiError::not_found()),
            },
            Lookup::MethodNotAllowed { allow, .. } => {
                let mut response =
                    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
                        .into_response(request.method(), path);
                if let Ok(allow) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(ALLOW, allow);
                }
                Ok(response)
            }
            Lookup::Found(route, params) => {
                let limit = self.state.config.max_body_bytes;
                let declared = request
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if !route.streaming_body && declared.is_some_and(|len| len > limit as u64) {
                    return Err(ApiError::too_large());
                }
                let body_limit = (!route.streaming_body).then_some(limit);
                let handler = route.handler.clone();
                let request = Request::new(request, params, self.clone(), peer, body_limit);
                match AssertUnwindSafe(async move { handler(request).await })
                    .catch_unwind()
                    .await
                {
                    Ok(result) => result,
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".to_string());
                        Err(ApiError::internal(format!("handler panicked: {message}")))
                    }
                }
            }
        }
    }

    /// Starlette's `redirect_slashes`: the same path with the trailing slash
    /// toggled, when that one exists.
    fn slash_redirect(&self, uri: &hyper::Uri) -> Option<String> {
        let path = uri.path();
        let toggled = match path.strip_suffix('/') {
            Some(stripped) if !stripped.is_empty() => stripped.to_string(),
            Some(_) => return None,
            None => format!("{path}/"),
        };
        if !self.router.has_path(&toggled) {
            return None;
        }
        Some(match uri.query() {
            Some(query) => format!("{toggled}?{query}"),
            None => toggled,
        })
    }
}
