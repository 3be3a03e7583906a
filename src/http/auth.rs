//! Session API keys: `X-Session-API-Key: <key>` or `Authorization: Bearer <key>`.
//!
//! Keys are compared as SHA-256 digests in constant time, against every
//! configured key, so neither the content nor the length of a key leaks
//! through timing. WebSocket routes call [`ApiKeys::allows`] themselves with
//! the key from their query string or headers.

use hyper::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header the Python clients send.
pub const SESSION_API_KEY_HEADER: &str = "x-session-api-key";

/// The accepted keys.
#[derive(Clone)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

impl ApiKeys {
    /// Accepts any of `keys`; none means every request passes.
    pub fn new(keys: &[String]) -> Self {
        ApiKeys {
            digests: keys.iter().map(|k| digest(k)).collect(),
        }
    }

    /// Whether authentication is off (no keys configured).
    pub fn is_open(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `candidate` is one of the keys (always true when none are configured).
    pub fn allows(&self, candidate: Option<&str>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(candidate) = candidate else {
            return false;
        };
        let candidate = digest(candidate);
        // Fold over every key without short-circuiting.
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, key| {
                found | key.ct_eq(&candidate)
            })
            .into()
    }

    /// Whether the request's headers carry an accepted key, in either header.
    pub fn allows_headers(&self, headers: &HeaderMap) -> bool {
        if self.is_open() {
            return true;
        }
        let session = headers
            .get(SESSION_API_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        let by_session = self.allows(session);
        let by_bearer = self.allows(bearer_token(headers));
        by_session || by_bearer
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let authorization = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    hyper::header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn header_forms() {
        let keys = ApiKeys::new(&["k1".into(), "k2".into()]);
        assert!(keys.allows_headers(&headers(&[("x-session-api-key", "k2")])));
        assert!(keys.allows_headers(&headers(&[("authorization", "Bearer k1")])));
        assert!(keys.allows_headers(&headers(&[("authorization", "bearer  k1 ")])));
        assert!(!keys.allows_headers(&headers(&[("authorization", "Basic k1")])));
        assert!(!keys.allows_headers(&headers(&[("x-session-api-key", "k3")])));
        assert!(!keys.allows_headers(&headers(&[("x-session-api-key", "k")])));
        assert!(keys.allows_headers(&headers(&[
            ("x-session-api-key", "stale"),
            ("authorization", "Bearer k2")
        ])));
        assert!(!keys.allows_headers(&HeaderMap::new()));
        assert!(!keys.allows(None));
        assert!(ApiKeys::new(&[]).allows_headers(&HeaderMap::new()));
    }
}
