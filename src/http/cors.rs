//! CORS, as the Python server's two Starlette `CORSMiddleware`s do it
//! (persistence-and-config.md §7).
//!
//! * Workspace cookie paths (`/api/auth/workspace-session`,
//!   `/api/conversations/{id}/workspace[/…]`) echo any `http(s)://` origin.
//! * Everything else allows origins whose host is `localhost`, `127.0.0.1` or
//!   `docker_host_addr` (any scheme and port), those listed in
//!   `allow_cors_origins` (`*` allows all), and those fully matching
//!   `allow_cors_origin_regex`.
//!
//! Both allow credentials, every method and every header. Every response
//! carries `vary: Origin`.

use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use hyper::{Method, StatusCode};
use regex::Regex;

use super::response::{self, Response};
use crate::config::Config;

/// Starlette's `ALL_METHODS`, answered to every allowed preflight.
const ALLOWED_METHODS: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, QUERY";
const PREFLIGHT_VARY: &str = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network";

/// Which of the two policies a path falls under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The configured origins plus localhost.
    Default,
    /// Any `http(s)://` origin (cookie-authenticated workspace files).
    Workspace,
}

/// The CORS configuration.
#[derive(Debug)]
pub struct Cors {
    origins: Vec<String>,
    allow_all: bool,
    regex: Option<Regex>,
    docker_host: Option<String>,
}

impl Cors {
    /// From the `allow_cors_*` settings; the regex must match a whole origin.
    pub fn new(config: &Config) -> Result<Self, regex::Error> {
        let regex = config
            .allow_cors_origin_regex
            .as_deref()
            .map(|r| Regex::new(&format!("^(?:{r})$")))
            .transpose()?;
        Ok(Cors {
            allow_all: config.allow_cors_origins.iter().any(|o| o == "*"),
            origins: config.allow_cors_origins.clone(),
            regex,
            docker_host: config.docker_host_addr.clone().filter(|h| !h.is_empty()),
        })
    }

    /// The policy for a request path.
    pub fn policy(path: &str) -> Policy {
        if path == "/api/auth/workspace-session" {
            return Policy::Workspace;
        }
        let is_workspace = path
            .strip_prefix("/api/conversations/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(id, rest)| {
                !id.is_empty() && (rest == "workspace" || rest.starts_with("workspace/"))
            });
        if is_workspace {
            Policy::Workspace
        } else {
            Policy::Default
        }
    }

    /// Whether `origin` may read responses under `policy`.
    pub fn is_allowed(&self, policy: Policy, origin: &str) -> bool {
        match policy {
            Policy::Workspace => {
                let rest = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"));
                rest.is_some_and(|r| !r.is_empty())
            }
            Policy::Default => {
                if let Some(host) = origin_host(origin) {
                    if host == "localhost"
                        || host == "127.0.0.1"
                        || self.docker_host.as_deref() == Some(host.as_str())
                    {
                        return true;
                    }
                }
                self.allow_all
                    || self.regex.as_ref().is_some_and(|r| r.is_match(origin))
                    || self.origins.iter().any(|o| o == origin)
            }
        }
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`); `None` for any other request.
    pub fn preflight(
        &self,
        policy: Policy,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Response> {
        if method != Method::OPTIONS {
            return None;
        }
        let origin = headers.get(ORIGIN)?;
        let requested_method = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        let mut failures = Vec::new();
        let origin_allowed = origin.to_str().is_ok_and(|o| self.is_allowed(policy, o));
        if !origin_allowed {
            failures.push("origin");
        }
        let method_known = requested_method
            .to_str()
            .is_ok_and(|m| ALLOWED_METHODS.split(", ").any(|a| a == m));
        if !method_known {
            failures.push("method");
        }
        if headers.contains_key("access-control-request-private-network") {
            failures.push("private-network");
        }
        let mut response = if failures.is_empty() {
            response::text(StatusCode::OK, "OK")
        } else {
            response::text(
                StatusCode::BAD_REQUEST,
                format!("Disallowed CORS {}", failures.join(", ")),
            )
        };
        let out = response.headers_mut();
        out.insert(VARY, HeaderValue::from_static(PREFLIGHT_VARY));
        out.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if origin_allowed {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        if let Some(requested) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        Some(response)
    }

    /// Adds the CORS headers of an actual (non-preflight) response.
    pub fn decorate(&self, policy: Policy, origin: Option<&HeaderValue>, response: &mut Response) {
        let allowed = origin.filter(|o| o.to_str().is_ok_and(|o| self.is_allowed(policy, o)));
        let out = response.headers_mut();
        if origin.is_some() {
            out.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(origin) = allowed {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        let vary = match out.get(VARY).and_then(|v| v.to_str().ok()) {
            Some(existing) => HeaderValue::from_str(&format!("{existing}, Origin"))
                .unwrap_or(HeaderValue::from_static("Origin")),
            None => HeaderValue::from_static("Origin"),
        };
        out.insert(VARY, vary);
    }
}

/// The host of an origin, lower-cased, as Python's `urlparse(origin).hostname`.
fn origin_host(origin: &str) -> Option<String> {
    let (_, rest) = origin.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], regex: Option<&str>) -> Cors {
        let config = Config {
            allow_cors_origins: origins.iter().map(|o| o.to_string()).collect(),
            allow_cors_origin_regex: regex.map(str::to_string),
            docker_host_addr: Some("172.17.0.1".into()),
            ..Config::default()
        };
        Cors::new(&config).unwrap()
    }

    #[test]
    fn default_policy() {
        let c = cors(
            &["https://app.example.com"],
            Some(r"https://.*\.example\.org"),
        );
        for ok in [
            "http://localhost:3000",
            "https://LOCALHOST",
            "http://127.0.0.1:8080",
            "http://172.17.0.1:3000",
            "https://app.example.com",
            "https://x.example.org",
        ] {
            assert!(c.is_allowed(Policy::Default, ok), "{ok}");
        }
        for bad in [
            "https://evil.com",
            "https://app.example.com.evil.com",
            "https://x.example.org.evil",
            "http://localhost.evil.com",
            "null",
        ] {
            assert!(!c.is_allowed(Policy::Default, bad), "{bad}");
        }
        assert!(cors(&["*"], None).is_allowed(Policy::Default, "https://any.where"));
    }

    #[test]
    fn workspace_paths() {
        assert_eq!(
            Cors::policy("/api/conversations/abc/workspace"),
            Policy::Workspace
        );
        assert_eq!(
            Cors::policy("/api/conversations/abc/workspace/a/b.txt"),
            Policy::Workspace
        );
        assert_eq!(
            Cors::policy("/api/auth/workspace-session"),
            Policy::Workspace
        );
        assert_eq!(
            Cors::policy("/api/conversations/abc/workspaces"),
            Policy::Default
        );
        assert_eq!(Cors::policy("/api/conversations/search"), Policy::Default);
        let c = cors(&[], None);
        assert!(c.is_allowed(Policy::Workspace, "https://evil.com"));
        assert!(!c.is_allowed(Policy::Workspace, "null"));
    }

    #[test]
    fn origin_hosts() {
        assert_eq!(origin_host("http://[::1]:80").as_deref(), Some("::1"));
        assert_eq!(origin_host("http://user@Host:1/x").as_deref(), Some("host"));
        assert_eq!(origin_host("localhost:3000"), None);
    }
}
