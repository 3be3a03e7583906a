//! The conversation's secrets as the agent uses them (agent.md §8): their
//! names and descriptions for the prompt, and their values for the
//! terminal, resolved when a command names them. `LookupSecret` values are
//! fetched over HTTP each time (they may rotate) and then masked like every
//! other value; masking itself stays in the conversation core.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value};

use crate::api::conversation::SecretSource;
use crate::outbound::Outbound;

/// Time allowed for one lookup (the Python server's).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest lookup body accepted.
const MAX_LOOKUP_BODY: usize = 1024 * 1024;

/// The secrets of a conversation: `agent_context.secrets` overridden by
/// the registry, by name, in first-seen order.
pub fn all_secrets(
    registry: Vec<(String, SecretSource)>,
    agent_context: Option<&Map<String, Value>>,
) -> Vec<(String, SecretSource)> {
    let mut out: Vec<(String, SecretSource)> = Vec::new();
    if let Some(extra) = agent_context
        .and_then(|c| c.get("secrets"))
        .and_then(Value::as_object)
    {
        for (name, v) in extra {
            if let Some(src) = source_of(v) {
                out.push((name.clone(), src));
            }
        }
    }
    for (name, src) in registry {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = src,
            None => out.push((name, src)),
        }
    }
    out
}

fn source_of(v: &Value) -> Option<SecretSource> {
    match v {
        Value::String(s) => Some(SecretSource::new_static(s.clone())),
        Value::Object(m) => {
            let description = m
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
            match m.get("kind").and_then(Value::as_str) {
                Some("LookupSecret") => Some(SecretSource::Lookup {
                    description,
                    url: m.get("url")?.as_str()?.to_string(),
                    headers: m
                        .get("headers")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                }),
                _ => Some(SecretSource::Static {
                    description,
                    value: m.get("value").and_then(Value::as_str).map(str::to_string),
                }),
            }
        }
        _ => None,
    }
}

/// Names and descriptions, for `<CUSTOM_SECRETS>`.
pub fn infos(secrets: &[(String, SecretSource)]) -> Vec<(String, Option<String>)> {
    secrets
        .iter()
        .map(|(name, src)| {
            let d = match src {
                SecretSource::Static { description, .. }
                | SecretSource::Lookup { description, .. } => description.clone(),
            };
            (name.clone(), d)
        })
        .collect()
}

/// Whether `name` can be exported as a shell variable.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The secrets a command mentions by name (case-insensitive), with their
/// values; lookups are fetched now (relative URLs from `server_url`).
/// Unresolvable ones are left out.
pub async fn for_command(
    command: &str,
    secrets: &[(String, SecretSource)],
    outbound: &Outbound,
    server_url: &str,
) -> Vec<(String, String)> {
    let lower = command.to_lowercase();
    let mut out = Vec::new();
    for (name, src) in secrets {
        if !is_env_name(name) || !lower.contains(&name.to_lowercase()) {
            continue;
        }
        if let Some(value) = resolve(name, src, outbound, server_url).await {
            out.push((name.clone(), value));
        }
    }
    out
}

/// One secret's current value.
pub async fn resolve(
    name: &str,
    src: &SecretSource,
    outbound: &Outbound,
    server_url: &str,
) -> Option<String> {
    match src {
        SecretSource::Static { value, .. } => value.clone(),
        SecretSource::Lookup { url, headers, .. } => {
            match fetch(&absolute_url(url, server_url)?, headers, outbound).await {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(secret = name, error = %e, "could not fetch a lookup secret");
                    None
                }
            }
        }
    }
}

/// `url`, or, when it has no scheme, `url` joined to `server_url` (Python's
/// `urljoin(server_url + "/", url)`: `api/x` lands under its path, `/api/x`
/// at its root). Every secret is resolved at use, so a relative URL follows
/// the server wherever it runs now.
fn absolute_url(url: &str, server_url: &str) -> Option<String> {
    match url::Url::parse(url) {
        Ok(_) => Some(url.to_string()),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let joined = url::Url::parse(&format!("{}/", server_url.trim_end_matches('/')))
                .and_then(|base| base.join(url));
            match joined {
                Ok(u) => Some(u.to_string()),
                Err(e) => {
                    tracing::warn!(%server_url, error = %e, "cannot resolve a relative lookup secret URL");
                    None
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "a lookup secret URL is not valid");
            None
        }
    }
}

async fn fetch(
    url: &str,
    headers: &Map<String, Value>,
    outbound: &Outbound,
) -> Result<String, String> {
    let mut req = http::Request::get(url);
    for (k, v) in headers {
        if let Some(v) = v.as_str() {
            req = req.header(k.as_str(), v);
        }
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("bad lookup request: {e}"))?;
    let work = async {
        let resp = outbound
            .send(req, Some(LOOKUP_TIMEOUT))
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_LOOKUP_BODY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        String::from_utf8(body.to_vec()).map_err(|_| "the value is not UTF-8".to_string())
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, work)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relative_lookup_urls_follow_the_server() {
        let base = "http://127.0.0.1:8000";
        assert_eq!(
            absolute_url("api/settings/secrets/X", base).as_deref(),
            Some("http://127.0.0.1:8000/api/settings/secrets/X")
        );
        assert_eq!(
            absolute_url("/v/s?k=1", "http://h:1/prefix/").as_deref(),
            Some("http://h:1/v/s?k=1")
        );
        assert_eq!(
            absolute_url("v/s", "http://h:1/prefix").as_deref(),
            Some("http://h:1/prefix/v/s")
        );
        assert_eq!(
            absolute_url("https://vault.example/s", base).as_deref(),
            Some("https://vault.example/s")
        );
        assert_eq!(absolute_url("x", "not a url"), None);
    }

    #[test]
    fn merge_and_match() {
        let ctx = json!({"secrets": {"A": "1", "B": {"value": "2", "description": "bee"}}});
        let all = all_secrets(
            vec![
                ("B".into(), SecretSource::new_static("3")),
                ("bad-name".into(), SecretSource::new_static("4")),
            ],
            ctx.as_object(),
        );
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].1, SecretSource::new_static("3"));
        assert_eq!(infos(&all)[0], ("A".to_string(), None));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let found = rt.block_on(for_command(
            "echo $a; bad-name",
            &all[..1]
                .iter()
                .chain(&all[2..])
                .cloned()
                .collect::<Vec<_>>(),
            &Outbound::new(),
            "http://127.0.0.1:1",
        ));
        assert_eq!(found, [("A".to_string(), "1".to_string())]);
    }
}
