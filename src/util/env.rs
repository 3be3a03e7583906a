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

/// Prefixes of credential settings, in their indexed (`OH_SESSION_API_KEYS_0`)
/// and whole-list (`OH_SESSION_API_KEYS='[…]'`) forms.
const SENSITIVE_PREFIXES: &[&str] = &[
    "OH_SESSION_API_KEYS",
    "OH_PREVIOUS_SECRET_KEYS",
    "OH_WEBHOOKS",
];

/// The server's environment without its credentials (upstream's
/// `sanitized_env`) and without the variables systemd addressed to the
/// server itself ([`PRIVATE_ENV`](crate::systemd::PRIVATE_ENV): a child that
/// inherited `NOTIFY_SOCKET` could report readiness or feed the watchdog in
/// the server's name), with `AI_AGENT=openhands` unless already set.
pub fn sanitized_env() -> Vec<(OsString, OsString)> {
    sanitize(std::env::vars_os())
}

fn sanitize(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vars
        .filter(|(key, _)| {
            let key = key.to_string_lossy();
            !SENSITIVE.contains(&key.as_ref())
                && !SENSITIVE_PREFIXES.iter().any(|p| key.starts_with(p))
                && !crate::systemd::PRIVATE_ENV.contains(&key.as_ref())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_systemd_variables_stay_with_the_server() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("OH_SECRET_KEY", "k"),
            ("OH_SESSION_API_KEYS_0", "s"),
            ("OH_SESSION_API_KEYS", "[\"s\"]"),
            ("OH_PREVIOUS_SECRET_KEYS", "[\"old\"]"),
            ("OH_WEBHOOKS_0_HEADERS", "{\"Authorization\":\"x\"}"),
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            ("WATCHDOG_USEC", "30000000"),
            ("LISTEN_FDS", "1"),
            ("LISTEN_PID", "42"),
            (
                "CREDENTIALS_DIRECTORY",
                "/run/credentials/agent-server.service",
            ),
            ("OH_PORT", "4004"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let mut kept: Vec<String> = sanitize(vars.into_iter())
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        kept.sort();
        assert_eq!(kept, ["AI_AGENT", "OH_PORT", "PATH"]);
    }
}
