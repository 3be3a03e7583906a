//! Logging with `tracing`: to the journal when systemd connected stderr to
//! it (`JOURNAL_STREAM`) and its socket exists, else to stderr as text or
//! JSON lines (`log_format`). The filter is `RUST_LOG`, else `log_level`.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, Env, LogFormat};

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Where log records go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// The systemd journal, with structured fields.
    Journald,
    /// Standard error.
    Stderr,
}

/// Installs the global subscriber. `env` is the process environment.
pub fn init(config: &Config, env: &Env) -> Result<Sink, String> {
    let rust_log = env.get("RUST_LOG").filter(|v| !v.trim().is_empty());
    let (filter, rejected) = match rust_log.map(|v| EnvFilter::builder().parse(v)) {
        Some(Ok(filter)) => (filter, None),
        rejected => (
            EnvFilter::builder()
                .parse(&config.log_level)
                .map_err(|e| format!("invalid log_level {:?}: {e}", config.log_level))?,
            rejected.and_then(Result::err),
        ),
    };

    let journald = (env.contains_key("JOURNAL_STREAM") && Path::new(JOURNAL_SOCKET).exists())
        .then(tracing_journald::layer)
        .and_then(Result::ok);
    let (layer, sink) = match journald {
        Some(journal) => (journal.boxed(), Sink::Journald),
        None => {
            let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
            let layer = match config.log_format {
                LogFormat::Json => stderr.json().boxed(),
                LogFormat::Text => stderr.with_ansi(std::io::stderr().is_terminal()).boxed(),
            };
            (layer, Sink::Stderr)
        }
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    if let Some(e) = rejected {
        tracing::warn!(
            "ignoring RUST_LOG ({e}); using log_level {:?}",
            config.log_level
        );
    }
    Ok(sink)
}
