//! The HTTP layer, the only one that knows HTTP.
//!
//! Every route is an entry of one [`RouteTable`] ([`routes::table`]): method,
//! path pattern, access rule, handler and documentation. The same table is
//! dispatched by [`App`] and rendered as `/openapi.json`.
//!
//! A handler is `async fn(Request) -> HandlerResult`. It reads path and query
//! parameters through [`Request::params`] (pydantic-style `422` items), its
//! body with [`Request::json`], the shared state with [`Request::state`], and
//! answers with the helpers of [`response`] or an [`ApiError`].
//!
//! Architecture invariant: hyper's server side, status codes and headers stay
//! in this module; services below it never see them.

mod app;
pub mod auth;
pub mod body;
pub mod cors;
pub mod error;
pub mod file_response;
pub mod openapi;
pub mod params;
pub mod request;
pub mod response;
pub mod router;
pub mod routes;
mod serve;
pub mod socket;
pub mod ws;

pub use app::App;
pub use error::{ApiError, HandlerResult};
pub use params::{Bounds, Params};
pub use request::Request;
pub use response::Response;
pub use router::{schema_ref, Route, RouteTable};
pub use serve::serve;
