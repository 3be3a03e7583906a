//! The route table: one entry per (method, path) with its handler, its access
//! rule and its documentation. The same table builds the dispatcher and
//! `/openapi.json`, so the two cannot drift apart.
//!
//! A route module adds its entries in a `register` function:
//!
//! ```ignore
//! pub fn register(table: &mut RouteTable) {
//!     table.schema("ConversationInfo", json!({ "type": "object", … }));
//!     table.add(
//!         Route::get("/api/conversations/{conversation_id}", get_conversation)
//!             .summary("Get Conversation")
//!             .tag("Conversations")
//!             .path_param("conversation_id", json!({"type": "string", "format": "uuid"}))
//!             .response(200, "Successful Response", Some(schema_ref("ConversationInfo")))
//!             .response(404, "Item not found", None),
//!     );
//! }
//! ```
//!
//! Paths use matchit's syntax, which is OpenAPI's: `{name}` for one segment,
//! `{*name}` for the rest of the path. A static segment wins over a parameter
//! (`/api/conversations/search` over `/api/conversations/{id}`); a trailing
//! slash is part of the path.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use hyper::Method;
use serde_json::{json, Value};

use super::error::HandlerResult;
use super::request::Request;

/// A boxed route handler.
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Needs a session API key (the default under `/api/`).
    ApiKey,
    /// Anyone (health checks, docs, routes that authenticate themselves).
    Public,
}

/// One query, path or header parameter in the documentation.
#[derive(Clone, Debug)]
pub struct ParamDoc {
    /// `path`, `query` or `header`.
    pub location: &'static str,
    /// The parameter's name.
    pub name: &'static str,
    /// Whether the request must carry it.
    pub required: bool,
    /// Its JSON schema.
    pub schema: Value,
}

/// One documented response.
#[derive(Clone, Debug)]
pub struct ResponseDoc {
    /// The status code.
    pub status: u16,
    /// A short description.
    pub description: &'static str,
    /// The JSON body's schema, if it has one.
    pub schema: Option<Value>,
}

/// The OpenAPI description of a route.
#[derive(Clone, Debug, Default)]
pub struct RouteDoc {
    /// One-line summary (FastAPI's title-cased function name: `Get Conversation`).
    pub summary: &'static str,
    /// Longer description.
    pub description: Option<&'static str>,
    /// The group in Swagger UI (`Conversations`).
    pub tag: &'static str,
    /// Path, query and header parameters.
    pub params: Vec<ParamDoc>,
    /// The JSON request body's schema, and whether it is required.
    pub body: Option<(Value, bool)>,
    /// Documented responses; a `200` without schema is assumed when empty.
    pub responses: Vec<ResponseDoc>,
}

/// One entry of the table.
#[derive(Clone)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path pattern (`/api/conversations/{conversation_id}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Whether the handler reads the body as a stream (uploads): no `max_body_bytes` limit.
    pub streaming_body: bool,
    /// The handler.
    pub handler: Handler,
    /// Its documentation.
    pub doc: RouteDoc,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Route({} {})", self.method, self.path)
    }
}

impl Route {
    /// A route for `method` and `path`; under `/api/` it needs a key unless made [`public`](Self::public).
    pub fn new<F, Fut>(method: Method, path: &'static str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Route {
            method,
            path,
            access: if path.starts_with("/api/") {
                Access::ApiKey
            } else {
                Access::Public
            },
            streaming_body: false,
            handler: Arc::new(move |req| Box::pin(handler(req))),
            doc: RouteDoc::default(),
        }
    }

    /// A `GET` route.
    pub fn get<F, Fut>(path: &'static str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Self::new(Method::GET, path, handler)
    }

    /// A `POST` route.
    pub fn post<F, Fut>(path: &'static str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Self::new(Method::POST, path, handler)
    }

    /// A `PUT` route.
    pub fn put<F, Fut>(path: &'static str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Self::new(Method::PUT, path, handler)
    }

    /// A `PATCH` route.
    pub fn patch<F, Fut>(path: &'static str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Self::new(Method::PATCH, path, handler)
    }

    /// A `DELETE` route.
    pub fn delete<F, Fut>(path: &'static str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Self::new(Method::DELETE, path, handler)
    }

    /// Callable without a session key (the route may authenticate on its own).
    pub fn public(mut self) -> Self {
        self.access = Access::Public;
        self
    }

    /// The handler streams the body itself, so `max_body_bytes` does not apply.
    pub fn streaming_body(mut self) -> Self {
        self.streaming_body = true;
        self
    }

    /// The summary line.
    pub fn summary(mut self, summary: &'static str) -> Self {
        self.doc.summary = summary;
        self
    }

    /// The longer description.
    pub fn description(mut self, description: &'static str) -> Self {
        self.doc.description = Some(description);
        self
    }

    /// The Swagger UI group.
    pub fn tag(mut self, tag: &'static str) -> Self {
        self.doc.tag = tag;
        self
    }

    /// Documents a path parameter (undocumented ones default to strings).
    pub fn path_param(mut self, name: &'static str, schema: Value) -> Self {
        self.doc.params.push(ParamDoc {
            location: "path",
            name,
            required: true,
            schema,
        });
        self
    }

    /// Documents a query parameter.
    pub fn query_param(mut self, name: &'static str, required: bool, schema: Value) -> Self {
        self.doc.params.push(ParamDoc {
            location: "query",
            name,
            required,
            schema,
        });
        self
    }

    /// Documents a JSON request body.
    pub fn json_body(mut self, schema: Value, required: bool) -> Self {
        self.doc.body = Some((schema, required));
        self
    }

    /// Documents a response.
    pub fn response(
        mut self,
        status: u16,
        description: &'static str,
        schema: Option<Value>,
    ) -> Self {
        self.doc.responses.push(ResponseDoc {
            status,
            description,
            schema,
        });
        self
    }
}

/// A `$ref` to a schema registered with [`RouteTable::schema`].
pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Every route and every named schema the server has.
#[derive(Default, Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    schemas: BTreeMap<String, Value>,
}

impl RouteTable {
    /// Adds a route.
    pub fn add(&mut self, route: Route) -> &mut Self {
        self.routes.push(route);
        self
    }

    /// Registers a named schema under `components.schemas`.
    pub fn schema(&mut self, name: &str, schema: Value) -> &mut Self {
        self.schemas.insert(name.to_string(), schema);
        self
    }

    /// The routes, in registration order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The named schemas.
    pub fn schemas(&self) -> &BTreeMap<String, Value> {
        &self.schemas
    }
}

/// The outcome of looking a request up.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A route serves it; with the decoded path parameters.
    Found(&'a Route, Vec<(String, String)>),
    /// The path exists but not for this method.
    MethodNotAllowed {
        /// The path's methods, for the `allow` header.
        allow: String,
        /// The strictest access rule among them.
        access: Access,
    },
    /// No route has this path.
    NotFound,
}

/// A table that cannot be served.
#[derive(Debug)]
pub struct RouteError(pub String);

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid route table: {}", self.0)
    }
}

impl std::error::Error for RouteError {}

/// The dispatcher built from a [`RouteTable`].
pub struct Router {
    matcher: matchit::Router<usize>,
    /// Per path pattern: indexes into `routes`.
    paths: Vec<Vec<usize>>,
    routes: Vec<Route>,
}

impl Router {
    /// Builds the dispatcher; conflicting patterns or a duplicate (method, path) are errors.
    pub fn new(routes: Vec<Route>) -> Result<Self, RouteError> {
        let mut matcher = matchit::Router::new();
        let mut by_pattern: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut paths: Vec<Vec<usize>> = Vec::new();
        for (index, route) in routes.iter().enumerate() {
            let slot = match by_pattern.get(route.path) {
                Some(&slot) => slot,
                None => {
                    matcher
                        .insert(route.path, paths.len())
                        .map_err(|e| RouteError(format!("{}: {e}", route.path)))?;
                    by_pattern.insert(route.path, paths.len());
                    paths.push(Vec::new());
                    paths.len() - 1
                }
            };
            if paths[slot]
                .iter()
                .any(|&i| routes[i].method == route.method)
            {
                return Err(RouteError(format!(
                    "{} {} is registered twice",
                    route.method, route.path
                )));
            }
            paths[slot].push(index);
        }
        Ok(Router {
            matcher,
            paths,
            routes,
        })
    }

    /// Finds the route for a request.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let Ok(matched) = self.matcher.at(path) else {
            return Lookup::NotFound;
        };
        let candidates = &self.paths[*matched.value];
        match candidates
            .iter()
            .find(|&&i| self.routes[i].method == method)
        {
            Some(&i) => {
                let params = matched
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), super::params::decode_path(v)))
                    .collect();
                Lookup::Found(&self.routes[i], params)
            }
            None => {
                let routes = candidates.iter().map(|&i| &self.routes[i]);
                let allow = routes
                    .clone()
                    .map(|r| r.method.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let access = if routes.clone().any(|r| r.access == Access::ApiKey) {
                    Access::ApiKey
                } else {
                    Access::Public
                };
                Lookup::MethodNotAllowed { allow, access }
            }
        }
    }

    /// Whether some route has exactly this path (any method).
    pub fn has_path(&self, path: &str) -> bool {
        self.matcher.at(path).is_ok()
    }

    /// The routes, in registration order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response;

    async fn ok(_req: Request) -> HandlerResult {
        response::json(&json!({}))
    }

    fn router(paths: &[(Method, &'static str)]) -> Router {
        Router::new(
            paths
                .iter()
                .map(|(m, p)| Route::new(m.clone(), p, ok))
                .collect(),
        )
        .unwrap()
    }

    fn found(
        r: &Router,
        method: Method,
        path: &str,
    ) -> Option<(&'static str, Vec<(String, String)>)> {
        match r.lookup(&method, path) {
            Lookup::Found(route, params) => Some((route.path, params)),
            _ => None,
        }
    }

    #[test]
    fn static_segments_win_and_slashes_matter() {
        let r = router(&[
            (Method::GET, "/api/conversations/{conversation_id}"),
            (Method::GET, "/api/conversations/search"),
            (Method::DELETE, "/api/conversations/{conversation_id}"),
            (Method::GET, "/api/tools/"),
            (Method::GET, "/api/file/download/{*path}"),
        ]);
        assert_eq!(
            found(&r, Method::GET, "/api/conversations/search")
                .unwrap()
                .0,
            "/api/conversations/search"
        );
        let (pattern, params) = found(&r, Method::GET, "/api/conversations/a%20b").unwrap();
        assert_eq!(pattern, "/api/conversations/{conversation_id}");
        assert_eq!(params, [("conversation_id".to_string(), "a b".to_string())]);
        assert!(found(&r, Method::GET, "/api/tools/").is_some());
        assert!(matches!(
            r.lookup(&Method::GET, "/api/tools"),
            Lookup::NotFound
        ));
        assert_eq!(
            found(&r, Method::GET, "/api/file/download/a/b.txt")
                .unwrap()
                .1[0]
                .1,
            "a/b.txt"
        );
        match r.lookup(&Method::POST, "/api/conversations/x") {
            Lookup::MethodNotAllowed { allow, access } => {
                assert_eq!(allow, "GET, DELETE");
                assert_eq!(access, Access::ApiKey);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conflicts_are_errors() {
        let dup = Router::new(vec![Route::get("/a", ok), Route::get("/a", ok)]);
        assert!(dup.is_err());
        let clash = Router::new(vec![Route::get("/a/{x}", ok), Route::get("/a/{y}", ok)]);
        assert!(clash.is_err());
    }
}
