//! Settings: the typed configuration every other module reads.
//!
//! Field names are the Python server's setting names, so the JSON config file
//! and the `OH_*` environment variables (upstream naming: `OH_SESSION_API_KEYS_0`,
//! `OH_WEBHOOKS_0_BASE_URL`, …) map onto them directly. [`load`] layers, with
//! figment, lowest first: built-in defaults, legacy variables (`SESSION_API_KEY`,
//! …), the JSON file, the systemd credential `secret-key` (`LoadCredential=`),
//! `OH_*` variables, command-line flags.
//!
//! The environment is read through [`FIELDS`], a table that describes every
//! field's type, because the upstream convention is schema-driven: a string
//! setting is never re-parsed (`OH_SECRET_KEY=007` stays `"007"`), a list may
//! be given item by item, and `_IS_NONE` clears a value. The environment is
//! always passed in as a map, never read from the process here.

mod env;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map as FigMap};
use figment::{Figment, Metadata, Profile, Provider};
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
    /// Idle shells kept started, so a new terminal need not wait for bash and
    /// `~/.bashrc` (0: every terminal starts its own shell). An extension of
    /// this server.
    pub terminal_pool_size: usize,

    // --- compatibility settings (accepted; VSCode/VNC are not bundled) ---------
    /// Accepted for compatibility; VSCode is not bundled, so it always behaves as disabled.
    pub enable_vscode: bool,
    /// Port the Python server's VSCode would listen on (used in `/api/vscode/url`).
    pub vscode_port: u16,
    /// Path prefix of the Python server's VSCode URL.
    pub vscode_base_path: Option<String>,
    /// Accepted for compatibility; no desktop (noVNC) is bundled.
    pub enable_vnc: bool,
    /// The server's external URL (behind a proxy); its path is the route prefix upstream.
    pub web_url: Option<String>,
    /// Honour `X-Forwarded-Proto`/`X-Forwarded-Host` from a trusted proxy.
    pub trust_forwarded_headers: bool,
    /// Upstream's dormant warm-pool mode; accepted for compatibility.
    pub deferred_init: bool,
    /// `DOCKER_HOST_ADDR`: one more host name whose CORS origins are always allowed.
    pub docker_host_addr: Option<String>,
    /// `OPENHANDS_BUILD_GIT_SHA`: reported by `/server_info`.
    pub build_git_sha: String,
    /// `OPENHANDS_BUILD_GIT_REF`: reported by `/server_info`.
    pub build_git_ref: String,

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
            terminal_pool_size: 1,
            enable_vscode: false,
            vscode_port: 8001,
            vscode_base_path: None,
            enable_vnc: false,
            web_url: None,
            trust_forwarded_headers: false,
            deferred_init: false,
            docker_host_addr: None,
            build_git_sha: "unknown".to_string(),
            build_git_ref: "unknown".to_string(),
            max_body_bytes: 10 * 1024 * 1024,
            header_read_timeout_seconds: 10.0,
            shutdown_grace_seconds: 10.0,
            log_level: "info".to_string(),
            log_format: LogFormat::Text,
        }
    }
}

impl Config {
    /// How long a client may take to send its request headers.
    pub fn header_read_timeout(&self) -> std::time::Duration {
        seconds(self.header_read_timeout_seconds)
    }

    /// How long in-flight requests may run after a shutdown signal.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        seconds(self.shutdown_grace_seconds)
    }

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

// --- the field table -----------------------------------------------------------

/// How the environment provider reads one setting (persistence-and-config.md §4.2).
#[derive(Debug)]
pub enum Kind {
    /// A string or path, taken verbatim: never re-parsed, so `007` stays `"007"`.
    Str,
    /// True when the value, upper-cased, is `1` or `TRUE`; anything else is false.
    Bool,
    /// An integer, parsed strictly.
    Int,
    /// A finite number, parsed strictly.
    Float,
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// A JSON object.
    Dict,
    /// `FOO='<json list or count>'` refined by `FOO_0`, `FOO_1`, …; or the
    /// indexed variables alone, read until the first gap.
    List(&'static Kind),
    /// The inner kind, or null with `FOO_IS_NONE=1`.
    Optional(&'static Kind),
    /// A nested object: `FOO='{json}'` refined by `FOO_<FIELD>` variables.
    Model(&'static [Field]),
}

/// One setting as the environment provider sees it.
#[derive(Debug)]
pub struct Field {
    /// The setting's name; its variable is `OH_` + the upper-cased name.
    pub name: &'static str,
    /// How its value is read.
    pub kind: Kind,
    /// An older variable read when neither the file nor an `OH_*` variable
    /// sets the field (upstream's `SESSION_API_KEY`).
    pub legacy_env: Option<&'static str>,
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        legacy_env: None,
    }
}

const fn legacy(name: &'static str, kind: Kind, env: &'static str) -> Field {
    Field {
        name,
        kind,
        legacy_env: Some(env),
    }
}

use Kind::{Bool, Dict as JsonDict, Enum, Float, Int, List, Model, Optional, Str};

/// The fields of [`WebhookSpec`], in declaration order.
pub static WEBHOOK_FIELDS: &[Field] = &[
    field("base_url", Str),
    field("headers", JsonDict),
    field("event_buffer_size", Int),
    field("flush_delay", Float),
    field("num_retries", Int),
    field("retry_delay", Float),
    field("max_queue_size", Int),
    field("max_batch_bytes", Int),
    field("max_queue_bytes", Int),
];

/// The fields of [`Config`], in declaration order (a unit test keeps the two in step).
pub static FIELDS: &[Field] = &[
    field("host", Optional(&Str)),
    field("port", Int),
    legacy("session_api_keys", List(&Str), "SESSION_API_KEY"),
    field("allow_cors_origins", List(&Str)),
    field("allow_cors_origin_regex", Optional(&Str)),
    field("conversations_path", Str),
    field("workspace_path", Str),
    field("conversation_worktree_root", Str),
    field("bash_events_dir", Str),
    field("bash_events_retention_seconds", Optional(&Int)),
    field("static_files_path", Optional(&Str)),
    field("conversation_idle_ttl_seconds", Optional(&Float)),
    field("lease_ttl_seconds", Float),
    field("secret_key", Optional(&Str)),
    field("previous_secret_keys", List(&Str)),
    field("webhooks", List(&Model(WEBHOOK_FIELDS))),
    field("max_concurrent_runs", Int),
    field("preload_tools", Bool),
    field("enable_browser", Bool),
    field("runtime_idle_timeout_seconds", Optional(&Float)),
    field("chromedriver_path", Optional(&Str)),
    field("chromium_path", Optional(&Str)),
    field("max_concurrent_browsers", Int),
    field("browser_idle_timeout_seconds", Float),
    field("browser_allowed_urls", List(&Str)),
    field("browser_denied_urls", List(&Str)),
    field("terminal_pool_size", Int),
    field("enable_vscode", Bool),
    field("vscode_port", Int),
    field("vscode_base_path", Optional(&Str)),
    field("enable_vnc", Bool),
    field("web_url", Optional(&Str)),
    field("trust_forwarded_headers", Bool),
    field("deferred_init", Bool),
    legacy("docker_host_addr", Optional(&Str), "DOCKER_HOST_ADDR"),
    legacy("build_git_sha", Str, "OPENHANDS_BUILD_GIT_SHA"),
    legacy("build_git_ref", Str, "OPENHANDS_BUILD_GIT_REF"),
    field("max_body_bytes", Int),
    field("header_read_timeout_seconds", Float),
    field("shutdown_grace_seconds", Float),
    legacy("log_level", Str, "LOG_LEVEL"),
    field("log_format", Enum(&["text", "json"])),
];

// --- loading -------------------------------------------------------------------

/// The process environment, passed explicitly so that tests never touch the real one.
pub type Env = BTreeMap<String, String>;

/// An idle shell costs a few MB; more than a handful only wastes memory.
pub const MAX_TERMINAL_POOL_SIZE: usize = 8;

/// The variable naming the JSON config file.
pub const CONFIG_PATH_ENV: &str = "OPENHANDS_AGENT_SERVER_CONFIG_PATH";

/// The config file used when [`CONFIG_PATH_ENV`] is unset (relative to the working directory).
pub const DEFAULT_CONFIG_PATH: &str = "workspace/openhands_agent_server_config.json";

/// The variable systemd sets to the directory of a unit's credentials (`LoadCredential=`).
pub const CREDENTIALS_DIRECTORY_ENV: &str = "CREDENTIALS_DIRECTORY";

/// The credential holding `secret_key`, read from [`CREDENTIALS_DIRECTORY_ENV`].
pub const SECRET_KEY_CREDENTIAL: &str = "secret-key";

/// Settings given as command-line flags; they override every other source.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    /// `--host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `--port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// A configuration that cannot be used: which source, which key, what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// Where the bad value came from: `config file PATH`, `environment variable OH_PORT`, …
    pub source: String,
    /// The setting, dotted for nested ones (`webhooks.0.base_url`), when one is to blame.
    pub key: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(source: impl Into<String>, key: Option<String>, message: impl Into<String>) -> Self {
        ConfigError {
            source: source.into(),
            key,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: key `{}`: {}", self.source, key, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The JSON config file's location for this environment.
pub fn config_file_path(env: &Env) -> PathBuf {
    PathBuf::from(
        env.get(CONFIG_PATH_ENV)
            .filter(|p| !p.is_empty())
            .map(String::as_str)
            .unwrap_or(DEFAULT_CONFIG_PATH),
    )
}

/// Loads the effective configuration: defaults, legacy variables, the JSON
/// file, the `secret-key` credential, `OH_*` variables, then `overrides`,
/// each layer over the previous one.
pub fn load(env: &Env, overrides: &Overrides) -> Result<Config, ConfigError> {
    let file = read_json_file(&config_file_path(env))?;
    let credential = read_secret_key_credential(env)?;
    let vars = env::read(env)?;
    let flags = Layer::new(
        Metadata::named("command-line flag").interpolater(|_: &Profile, keys: &[&str]| {
            format!("--{}", keys.first().copied().unwrap_or_default())
        }),
        to_map(overrides),
    );
    let figment = Figment::from(Layer::new(
        Metadata::named("default value"),
        to_map(&Config::default()),
    ))
    .merge(Layer::new(env::metadata(vars.legacy_sources), vars.legacy))
    .merge(file)
    .merge(credential)
    .merge(Layer::new(env::metadata(vars.sources), vars.values))
    .merge(flags);
    let mut config: Config = figment.extract().map_err(figment_error)?;
    config.session_api_keys.retain(|k| !k.trim().is_empty());
    config.validate().map_err(|(key, message)| {
        let source = match figment.find_metadata(key) {
            Some(meta) => describe(meta, &[key]),
            None => "default value".to_string(),
        };
        ConfigError::new(source, Some(key.to_string()), message)
    })?;
    Ok(config)
}

fn to_map<T: Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Names a source the way a user can find it: the file's path, the variable, the flag.
fn describe(meta: &Metadata, keys: &[&str]) -> String {
    match &meta.source {
        Some(figment::Source::File(path)) => format!("{} {}", meta.name, path.display()),
        _ if meta.name == "default value" => meta.name.to_string(),
        _ => format!(
            "{} {}",
            meta.name,
            meta.interpolate(&Profile::Default, keys)
        ),
    }
}

fn figment_error(error: figment::Error) -> ConfigError {
    // Only the first problem is reported: it names its source and key, which is what a user fixes.
    let error = error
        .into_iter()
        .next()
        .unwrap_or_else(|| figment::Error::from("unknown error".to_string()));
    let keys: Vec<&str> = error.path.iter().map(String::as_str).collect();
    let key = (!keys.is_empty()).then(|| keys.join("."));
    let source = match &error.metadata {
        Some(meta) => describe(meta, &keys),
        None => "configuration".to_string(),
    };
    ConfigError::new(source, key, error.kind.to_string())
}

/// Reads the JSON config file; a missing file is an empty object, anything
/// unreadable or not an object is an error.
fn read_json_file(path: &Path) -> Result<Layer, ConfigError> {
    let source = format!("config file {}", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from("{}"),
        Err(e) => {
            return Err(ConfigError::new(
                source,
                None,
                format!("cannot read it: {e}"),
            ))
        }
    };
    let data = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(ConfigError::new(source, None, "must contain a JSON object")),
        Err(e) => return Err(ConfigError::new(source, None, format!("invalid JSON: {e}"))),
    };
    let meta = Metadata::from("config file", figment::Source::File(path.to_path_buf()));
    Ok(Layer::new(meta, data))
}

/// Reads `secret_key` from `$CREDENTIALS_DIRECTORY/secret-key`, so that
/// under systemd (`LoadCredential=secret-key:…`) the key never sits in the
/// environment. No directory or no such credential is an empty layer; an
/// unreadable, non-UTF-8 or empty one is an error. Trailing line breaks are
/// dropped, since key files are usually written with `echo`.
fn read_secret_key_credential(env: &Env) -> Result<Layer, ConfigError> {
    let mut data = Map::new();
    let dir = env.get(CREDENTIALS_DIRECTORY_ENV).filter(|d| !d.is_empty());
    let Some(dir) = dir else {
        return Ok(Layer::new(Metadata::named("systemd credential"), data));
    };
    let path = Path::new(dir).join(SECRET_KEY_CREDENTIAL);
    let source = format!("systemd credential {}", path.display());
    let fail = |message: String| ConfigError::new(&source, Some("secret_key".into()), message);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Layer::new(Metadata::named("systemd credential"), data));
        }
        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
    };
    let text = String::from_utf8(bytes).map_err(|_| fail("is not UTF-8 text".into()))?;
    let key = text.trim_end_matches(['\n', '\r']);
    if key.trim().is_empty() {
        return Err(fail("is empty".into()));
    }
    data.insert("secret_key".into(), Value::String(key.to_string()));
    let meta = Metadata::from("systemd credential", figment::Source::File(path));
    Ok(Layer::new(meta, data))
}

/// One configuration source as a figment provider: its values, and the
/// metadata that names it (and its keys) in error messages.
struct Layer {
    meta: Metadata,
    data: Map<String, Value>,
}

impl Layer {
    fn new(meta: Metadata, data: Map<String, Value>) -> Self {
        Layer { meta, data }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.meta.clone()
    }

    fn data(&self) -> Result<FigMap<Profile, Dict>, figment::Error> {
        let dict = figment::value::Value::serialize(&self.data)?
            .into_dict()
            .unwrap_or_default();
        Ok(Profile::Default.collect(dict))
    }
}

impl Config {
    /// Range checks serde cannot express; the error names the key.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        fn positive(key: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((key, format!("must be a number greater than 0, found {v}")))
            }
        }
        fn non_negative(key: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err((key, format!("must be a number of at least 0, found {v}")))
            }
        }
        fn at_least_one(key: &'static str, v: usize) -> Result<(), (&'static str, String)> {
            if v >= 1 {
                Ok(())
            } else {
                Err((key, "must be at least 1, found 0".to_string()))
            }
        }
        at_least_one("max_concurrent_runs", self.max_concurrent_runs)?;
        at_least_one("max_concurrent_browsers", self.max_concurrent_browsers)?;
        at_least_one("max_body_bytes", self.max_body_bytes)?;
        at_least_one("vscode_port", usize::from(self.vscode_port))?;
        if self.terminal_pool_size > MAX_TERMINAL_POOL_SIZE {
            return Err((
                "terminal_pool_size",
                format!(
                    "must be at most {MAX_TERMINAL_POOL_SIZE}, found {}",
                    self.terminal_pool_size
                ),
            ));
        }
        if let Some(ttl) = self.conversation_idle_ttl_seconds {
            positive("conversation_idle_ttl_seconds", ttl)?;
        }
        if let Some(timeout) = self.runtime_idle_timeout_seconds {
            positive("runtime_idle_timeout_seconds", timeout)?;
        }
        if self.bash_events_retention_seconds == Some(0) {
            return Err((
                "bash_events_retention_seconds",
                "must be greater than 0 (or null to keep events)".to_string(),
            ));
        }
        non_negative("lease_ttl_seconds", self.lease_ttl_seconds)?;
        positive(
            "browser_idle_timeout_seconds",
            self.browser_idle_timeout_seconds,
        )?;
        positive(
            "header_read_timeout_seconds",
            self.header_read_timeout_seconds,
        )?;
        non_negative("shutdown_grace_seconds", self.shutdown_grace_seconds)?;
        if let Some(pattern) = &self.allow_cors_origin_regex {
            regex::Regex::new(pattern)
                .map_err(|e| ("allow_cors_origin_regex", format!("invalid regex: {e}")))?;
        }
        tracing_subscriber::EnvFilter::builder()
            .parse(&self.log_level)
            .map_err(|e| {
                (
                    "log_level",
                    format!("invalid log filter {:?}: {e}", self.log_level),
                )
            })?;
        Ok(())
    }

    /// The configuration as JSON for `--print-config`, with the effective host
    /// and every secret replaced by `"**********"`.
    pub fn redacted_json(&self) -> Value {
        const MASK: &str = "**********";
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        let Some(map) = value.as_object_mut() else {
            return value;
        };
        map.insert("host".into(), Value::String(self.effective_host()));
        for key in ["session_api_keys", "previous_secret_keys"] {
            if let Some(Value::Array(items)) = map.get_mut(key) {
                items
                    .iter_mut()
                    .for_each(|v| *v = Value::String(MASK.into()));
            }
        }
        if let Some(v @ Value::String(_)) = map.get_mut("secret_key") {
            *v = Value::String(MASK.into());
        }
        if let Some(Value::Array(hooks)) = map.get_mut("webhooks") {
            for hook in hooks {
                if let Some(Value::Object(headers)) = hook.get_mut("headers") {
                    for (name, v) in headers.iter_mut() {
                        if header_looks_secret(name) {
                            *v = Value::String(MASK.into());
                        }
                    }
                }
            }
        }
        value
    }
}

/// Seconds as a `Duration`. Validation keeps them finite and non-negative;
/// absurd values are capped at a year so deadline arithmetic cannot overflow.
fn seconds(value: f64) -> std::time::Duration {
    const YEAR: f64 = 365.0 * 24.0 * 3600.0;
    std::time::Duration::try_from_secs_f64(value.clamp(0.0, YEAR)).unwrap_or_default()
}

/// Whether a header's value is probably a credential.
fn header_looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "token",
        "key",
        "secret",
        "password",
        "cookie",
        "signature",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_type_matches(kind: &Kind, value: &Value) -> bool {
        match (kind, value) {
            (Kind::Str | Kind::Enum(_), Value::String(_)) => true,
            (Kind::Bool, Value::Bool(_)) => true,
            (Kind::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Kind::Float, Value::Number(_)) => true,
            (Kind::Dict, Value::Object(_)) => true,
            (Kind::List(item), Value::Array(items)) => {
                items.iter().all(|v| json_type_matches(item, v))
            }
            (Kind::Optional(_), Value::Null) => true,
            (Kind::Optional(inner), v) => json_type_matches(inner, v),
            (Kind::Model(fields), Value::Object(map)) => fields_match(fields, map),
            _ => false,
        }
    }

    fn fields_match(fields: &[Field], map: &Map<String, Value>) -> bool {
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(names, keys, "field table and struct disagree");
        fields
            .iter()
            .all(|f| json_type_matches(&f.kind, &map[f.name]))
    }

    #[test]
    fn field_table_matches_the_structs() {
        let mut config = Config::default();
        config
            .webhooks
            .push(serde_json::from_value(serde_json::json!({"base_url": "http://h"})).unwrap());
        let Value::Object(map) = serde_json::to_value(&config).unwrap() else {
            panic!("Config must serialise to an object");
        };
        assert!(fields_match(FIELDS, &map));
        for field in FIELDS.iter().filter(|f| f.legacy_env.is_some()) {
            assert!(
                matches!(
                    field.kind,
                    Kind::Str | Kind::Optional(Kind::Str) | Kind::List(Kind::Str)
                ),
                "legacy variables are plain strings: {}",
                field.name
            );
        }
        let Kind::Enum(formats) = FIELDS.iter().find(|f| f.name == "log_format").unwrap().kind
        else {
            panic!("log_format is an enum");
        };
        for format in formats {
            let parsed: LogFormat =
                serde_json::from_value(Value::String(format.to_string())).unwrap();
            assert_eq!(
                serde_json::to_value(parsed).unwrap(),
                Value::String(format.to_string())
            );
        }
    }

    #[test]
    fn readme_documents_every_setting() {
        let readme = include_str!("../README.md");
        for field in FIELDS {
            assert!(
                readme.contains(&format!("| `{}` |", field.name)),
                "README.md does not document {}",
                field.name
            );
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn with_file(content: &str, pairs: &[(&str, &str)]) -> (tempfile::TempDir, Env) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, content).unwrap();
        let mut env = env(pairs);
        env.insert(CONFIG_PATH_ENV.into(), path.display().to_string());
        (dir, env)
    }

    #[test]
    fn defaults_without_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(&[(
            CONFIG_PATH_ENV,
            &dir.path().join("missing.json").display().to_string(),
        )]);
        assert_eq!(
            load(&env, &Overrides::default()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn layering_file_env_flags() {
        let (_dir, env) = with_file(
            r#"{"port": 1000, "log_level": "debug", "lease_ttl_seconds": 5, "secret_key": "from-file", "unknown_setting": 1}"#,
            &[("OH_PORT", "2000"), ("OH_SECRET_KEY_IS_NONE", "1")],
        );
        let config = load(&env, &Overrides::default()).unwrap();
        assert_eq!(config.port, 2000);
        assert_eq!(config.log_level, "debug");
        assert_eq!(config.lease_ttl_seconds, 5.0);
        assert_eq!(config.secret_key, None);
        let flags = Overrides {
            host: Some("::1".into()),
            port: Some(3000),
        };
        let config = load(&env, &flags).unwrap();
        assert_eq!((config.host.as_deref(), config.port), (Some("::1"), 3000));
    }

    #[test]
    fn legacy_session_key_is_a_default_only() {
        let cfg = load(
            &env(&[
                ("SESSION_API_KEY", "legacy"),
                (CONFIG_PATH_ENV, "/nonexistent/x.json"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(cfg.session_api_keys, ["legacy"]);
        let cfg = load(
            &env(&[
                ("SESSION_API_KEY", "legacy"),
                ("OH_SESSION_API_KEYS_0", "new"),
                (CONFIG_PATH_ENV, "/nonexistent/x.json"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(cfg.session_api_keys, ["new"]);
        let (_dir, e) = with_file(
            r#"{"session_api_keys": ["file"]}"#,
            &[("SESSION_API_KEY", "legacy")],
        );
        assert_eq!(
            load(&e, &Overrides::default()).unwrap().session_api_keys,
            ["file"]
        );
    }

    #[test]
    fn blank_session_keys_are_dropped() {
        let cfg = load(
            &env(&[
                ("OH_SESSION_API_KEYS", r#"["", "k", "  "]"#),
                (CONFIG_PATH_ENV, "/nonexistent/x.json"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(cfg.session_api_keys, ["k"]);
    }

    #[test]
    fn errors_name_source_and_key() {
        let (_dir, e) = with_file(r#"{"log_format": "xml"}"#, &[]);
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert!(err.source.starts_with("config file "), "{err}");
        assert_eq!(err.key.as_deref(), Some("log_format"));

        let (_dir, e) = with_file(r#"{"port": "eighty"}"#, &[]);
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("port"), "{err}");
        assert!(err.source.contains("config.json"), "{err}");

        let (_dir, e) = with_file("{}", &[("OH_PORT", "70000")]);
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert_eq!(
            (err.source.as_str(), err.key.as_deref()),
            ("environment variable OH_PORT", Some("port")),
            "{err}"
        );

        let (_dir, e) = with_file(
            "{}",
            &[
                ("OH_WEBHOOKS_0_BASE_URL", "http://h"),
                ("OH_WEBHOOKS_0_NUM_RETRIES", "-1"),
            ],
        );
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert_eq!(
            err.source, "environment variable OH_WEBHOOKS_0_NUM_RETRIES",
            "{err}"
        );
        assert_eq!(err.key.as_deref(), Some("webhooks.0.num_retries"), "{err}");

        let (_dir, e) = with_file(r#"{"log_level": "info,=="}"#, &[]);
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("log_level"), "{err}");
        assert!(err.source.starts_with("config file "), "{err}");

        let (_dir, e) = with_file("{}", &[("OH_ALLOW_CORS_ORIGIN_REGEX", "(")]);
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert_eq!(
            err.source, "environment variable OH_ALLOW_CORS_ORIGIN_REGEX",
            "{err}"
        );

        let (_dir, e) = with_file("[1]", &[]);
        assert!(load(&e, &Overrides::default())
            .unwrap_err()
            .message
            .contains("JSON object"));
        let (_dir, e) = with_file("{nope", &[]);
        assert!(load(&e, &Overrides::default())
            .unwrap_err()
            .message
            .contains("invalid JSON"));
    }

    #[test]
    fn secret_key_from_systemd_credential() {
        let creds = tempfile::tempdir().unwrap();
        let creds_dir = creds.path().display().to_string();
        let (_dir, mut e) = with_file(r#"{"secret_key": "from-file"}"#, &[]);

        // A credentials directory without the key changes nothing.
        e.insert(CREDENTIALS_DIRECTORY_ENV.into(), creds_dir);
        let config = load(&e, &Overrides::default()).unwrap();
        assert_eq!(config.secret_key.as_deref(), Some("from-file"));

        // The credential beats the file; the line break `echo` adds is not part of the key.
        let key_path = creds.path().join(SECRET_KEY_CREDENTIAL);
        std::fs::write(&key_path, "k3y with spaces \n").unwrap();
        let config = load(&e, &Overrides::default()).unwrap();
        assert_eq!(config.secret_key.as_deref(), Some("k3y with spaces "));

        // OH_SECRET_KEY (or clearing it) still wins over the credential.
        e.insert("OH_SECRET_KEY".into(), "from-env".into());
        let config = load(&e, &Overrides::default()).unwrap();
        assert_eq!(config.secret_key.as_deref(), Some("from-env"));
        e.remove("OH_SECRET_KEY");
        e.insert("OH_SECRET_KEY_IS_NONE".into(), "1".into());
        assert_eq!(load(&e, &Overrides::default()).unwrap().secret_key, None);
        e.remove("OH_SECRET_KEY_IS_NONE");

        // Unusable credentials are errors that name the file, never silently no key.
        std::fs::write(&key_path, "\n").unwrap();
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("secret_key"));
        assert!(err.source.starts_with("systemd credential "), "{err}");
        assert!(err.source.ends_with("secret-key"), "{err}");
        assert!(err.message.contains("empty"), "{err}");
        std::fs::write(&key_path, [0xff, 0xfe]).unwrap();
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert!(err.message.contains("UTF-8"), "{err}");
        std::fs::remove_file(&key_path).unwrap();
        std::fs::create_dir(&key_path).unwrap();
        let err = load(&e, &Overrides::default()).unwrap_err();
        assert!(err.message.contains("cannot read it"), "{err}");
    }

    #[test]
    fn redaction_hides_every_secret() {
        let mut config = Config {
            session_api_keys: vec!["k1".into(), "k2".into()],
            secret_key: Some("s".into()),
            previous_secret_keys: vec!["old".into()],
            ..Config::default()
        };
        config.webhooks.push(
            serde_json::from_value(serde_json::json!({
                "base_url": "http://h",
                "headers": {"Authorization": "Bearer x", "X-Api-Key": "y", "X-Trace": "visible"}
            }))
            .unwrap(),
        );
        let text = config.redacted_json().to_string();
        for secret in ["k1", "k2", "\"s\"", "old", "Bearer x", "\"y\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("visible"));
        assert!(text.contains(r#""host":"0.0.0.0""#));
    }
}
