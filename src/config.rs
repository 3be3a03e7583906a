//! Settings: the typed configuration every other module reads.
//!
//! Field names are the Python server's setting names, so the JSON config file
//! and the `OH_*` environment variables (upstream naming: `OH_SESSION_API_KEYS_0`,
//! `OH_WEBHOOKS_0_BASE_URL`, …) map onto them directly. Loading and layering
//! (defaults → JSON file → environment → flags) is done with figment.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One webhook receiver (persistence-and-config.md §6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Events go to `{base_url}/events/{id-hex}`, conversations to `{base_url}/conversations`.
    pub base_url: String,
    /// Extra headers sent with every call.
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// Post as soon as this many events are queued.
    #[serde(default = "defaults::event_buffer_size")]
    pub event_buffer_size: usize,
    /// Seconds after the first queued event before a partial batch is posted.
    #[serde(default = "defaults::flush_delay")]
    pub flush_delay: f64,
    /// Extra attempts after a failed post.
    #[serde(default = "defaults::num_retries")]
    pub num_retries: u32,
    /// Seconds between attempts.
    #[serde(default = "defaults::retry_delay")]
    pub retry_delay: f64,
    /// Queue bound in events; the oldest are dropped (logged) beyond it.
    #[serde(default = "defaults::max_queue_size")]
    pub max_queue_size: usize,
    /// Upper bound of one batch's serialised size.
    #[serde(default = "defaults::max_batch_bytes")]
    pub max_batch_bytes: usize,
    /// Queue bound in bytes.
    #[serde(default = "defaults::max_queue_bytes")]
    pub max_queue_bytes: usize,
}

/// Log output format on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The whole configuration. Unknown keys in the JSON file are ignored (the
/// Python server's file may carry settings we do not implement).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    // --- listener -------------------------------------------------------------
    /// Bind address; `None` means `0.0.0.0` with session keys, `127.0.0.1` without.
    pub host: Option<String>,
    /// Bind port.
    pub port: u16,

    // --- auth and CORS --------------------------------------------------------
    /// Accepted API keys; empty means no authentication (a warning is logged).
    pub session_api_keys: Vec<String>,
    /// Extra allowed CORS origins (localhost origins are always allowed).
    pub allow_cors_origins: Vec<String>,
    /// A regex an origin may fully match instead.
    pub allow_cors_origin_regex: Option<String>,

    // --- storage --------------------------------------------------------------
    /// Where conversations live: `{conversations_path}/{id-hex}/`.
    pub conversations_path: PathBuf,
    /// The default workspace (`GET /workspace`).
    pub workspace_path: PathBuf,
    /// Root for per-conversation git worktrees.
    pub conversation_worktree_root: PathBuf,
    /// Where the server-level bash service stores its events.
    pub bash_events_dir: PathBuf,
    /// Bash events older than this are purged; `None` keeps them.
    pub bash_events_retention_seconds: Option<u64>,
    /// Serve `/static` from here and redirect `/` to it.
    pub static_files_path: Option<PathBuf>,
    /// Idle conversations are unloaded from memory after this many seconds.
    pub conversation_idle_ttl_seconds: Option<f64>,
    /// Multi-instance lease TTL; accepted for compatibility.
    pub lease_ttl_seconds: f64,

    // --- secrets --------------------------------------------------------------
    /// Key for secrets at rest; without it secrets are redacted on disk.
    pub secret_key: Option<String>,
    /// Older keys, tried for decryption only (rotation).
    pub previous_secret_keys: Vec<String>,

    // --- conversations and tools ---------------------------------------------
    /// Webhook receivers.
    pub webhooks: Vec<WebhookSpec>,
    /// Run and creation permits; beyond them requests get 429.
    pub max_concurrent_runs: usize,
    /// Warm up tools at start.
    pub preload_tools: bool,
    /// Offer `browser_tool_set`.
    pub enable_browser: bool,
    /// `OH_RUNTIME_IDLE_TIMEOUT_SECONDS`: caps foreground terminal timeouts.
    pub runtime_idle_timeout_seconds: Option<f64>,
    /// Path of `chromedriver`; searched on `PATH` and Debian's locations when unset.
    pub chromedriver_path: Option<PathBuf>,
    /// Path of Chromium; searched likewise when unset.
    pub chromium_path: Option<PathBuf>,
    /// At most this many browsers run at once.
    pub max_concurrent_browsers: usize,
    /// A browser with no tool call for this long is closed.
    pub browser_idle_timeout_seconds: f64,
    /// URL patterns the browser may open (empty: any).
    pub browser_allowed_urls: Vec<String>,
    /// URL patterns the browser must not open.
    pub browser_denied_urls: Vec<String>,

    // --- compatibility settings (accepted; VSCode/VNC are not bundled) ---------
    pub enable_vscode: bool,
    pub vscode_port: u16,
    pub vscode_base_path: Option<String>,
    pub enable_vnc: bool,
    pub web_url: Option<String>,
    pub trust_forwarded_headers: bool,
    pub deferred_init: bool,

    // --- HTTP hardening and process ----------------------------------------------
    /// Largest accepted request body for JSON routes (file uploads stream and are not limited by it).
    pub max_body_bytes: usize,
    /// A client must send its request headers within this many seconds.
    pub header_read_timeout_seconds: f64,
    /// On SIGTERM, in-flight requests get this long to finish.
    pub shutdown_grace_seconds: f64,
    /// Log filter when `RUST_LOG` is unset (`info`, `agent_server=debug`, …).
    pub log_level: String,
    /// Log format on stderr.
    pub log_format: LogFormat,
}

mod defaults {
    pub fn event_buffer_size() -> usize {
        5
    }
    pub fn flush_delay() -> f64 {
        30.0
    }
    pub fn num_retries() -> u32 {
        3
    }
    pub fn retry_delay() -> f64 {
        5.0
    }
    pub fn max_queue_size() -> usize {
        1000
    }
    pub fn max_batch_bytes() -> usize {
        5 * 1024 * 1024
    }
    pub fn max_queue_bytes() -> usize {
        50 * 1024 * 1024
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: None,
            port: 8000,
            session_api_keys: Vec::new(),
            allow_cors_origins: Vec::new(),
            allow_cors_origin_regex: None,
            conversations_path: PathBuf::from("workspace/conversations"),
            workspace_path: PathBuf::from("workspace/project"),
            conversation_worktree_root: PathBuf::from("/tmp/conversation-worktrees"),
            bash_events_dir: PathBuf::from("workspace/bash_events"),
            bash_events_retention_seconds: None,
            static_files_path: None,
            conversation_idle_ttl_seconds: Some(1200.0),
            lease_ttl_seconds: 45.0,
            secret_key: None,
            previous_secret_keys: Vec::new(),
            webhooks: Vec::new(),
            max_concurrent_runs: 10,
            preload_tools: true,
            enable_browser: true,
            runtime_idle_timeout_seconds: None,
            chromedriver_path: None,
            chromium_path: None,
            max_concurrent_browsers: 4,
            browser_idle_timeout_seconds: 600.0,
            browser_allowed_urls: Vec::new(),
            browser_denied_urls: Vec::new(),
            enable_vscode: false,
            vscode_port: 8001,
            vscode_base_path: None,
            enable_vnc: false,
            web_url: None,
            trust_forwarded_headers: false,
            deferred_init: false,
            max_body_bytes: 10 * 1024 * 1024,
            header_read_timeout_seconds: 10.0,
            shutdown_grace_seconds: 10.0,
            log_level: "info".to_string(),
            log_format: LogFormat::Text,
        }
    }
}

impl Config {
    /// The address to bind when `--host` and the config leave it open
    /// (DECISIONS.md: all interfaces with keys, loopback without).
    pub fn effective_host(&self) -> String {
        match &self.host {
            Some(h) => h.clone(),
            None if self.session_api_keys.is_empty() => "127.0.0.1".to_string(),
            None => "0.0.0.0".to_string(),
        }
    }
}
