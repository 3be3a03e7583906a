//! The environment for processes the server starts on the agent's behalf.

use std::ffi::OsString;

/// Variables holding the server's own credentials.
const SENSITIVE: &[&str] = &[
    "SESSION_API_KEY",
    "OH_SECRET_KEY",
    "LMNR_PROJECT_API_KEY",
    "OTEL_HEADERS",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
];

/// Prefixes of indexed credential settings (`OH_SESSION_API_KEYS_0`, …).
const SENSITIVE_PREFIXES: &[&str] = &[
    "OH_SESSION_API_KEYS_",
    "OH_PREVIOUS_SECRET_KEYS_",
    "OH_WEBHOOKS_",
];

/// The server's environment without its credentials (upstream's
/// `sanitized_env`), with `AI_AGENT=openhands` unless already set.
pub fn sanitized_env() -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(key, _)| {
            let key = key.to_string_lossy();
            !SENSITIVE.contains(&key.as_ref())
                && !SENSITIVE_PREFIXES.iter().any(|p| key.starts_with(p))
        })
        .collect();
    let has_agent = env
        .iter()
        .any(|(k, v)| k == "AI_AGENT" && !v.to_string_lossy().trim().is_empty());
    if !has_agent {
        env.retain(|(k, _)| k != "AI_AGENT");
        env.push(("AI_AGENT".into(), "openhands".into()));
    }
    env
}
