//! Server details: `/alive`, `/health`, `/ready` and `/server_info` bodies.

use serde::Serialize;

/// `GET /alive` and `GET /health`: `{"status":"ok"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthStatus {
    /// Always `ok` while the process serves requests.
    pub status: String,
}

/// `GET /ready`: `{"status":"ready"}`, or `initializing` with a message (503).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadyStatus {
    /// `ready` or `initializing`.
    pub status: String,
    /// Why it is not ready yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `GET /server_info` (and `GET /`), in the Python server's field order plus
/// `api_compatibility` (DECISIONS.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerInfo {
    /// Whole seconds since start, as a float.
    pub uptime: f64,
    /// Whole seconds since the last activity (conversation event, bash or file call), as a float.
    pub idle_time: f64,
    /// `OpenHands Agent Server`.
    pub title: String,
    /// This server's version.
    pub version: String,
    /// The Python server version whose API this one speaks.
    pub api_compatibility: String,
    /// The built-in SDK's version (ours).
    pub sdk_version: String,
    /// The built-in tools' version (ours).
    pub tools_version: String,
    /// `unknown`: there is no separate workspace package.
    pub workspace_version: String,
    /// `OPENHANDS_BUILD_GIT_SHA` or `unknown`.
    pub build_git_sha: String,
    /// `OPENHANDS_BUILD_GIT_REF` or `unknown`.
    pub build_git_ref: String,
    /// Free text about the runtime (the Python server reports its interpreter).
    pub python_version: String,
    /// Names of the tools whose availability check passes.
    pub usable_tools: Vec<String>,
    /// The terminal timeout cap, if configured.
    pub runtime_idle_timeout_seconds: Option<f64>,
    /// Always `local`.
    pub conversation_runtime: String,
    /// Runtimes a start request may choose; empty when only `conversation_runtime` is served.
    pub available_conversation_runtimes: Vec<String>,
    /// Feature flags clients detect; only what this server implements.
    pub capabilities: Vec<String>,
    /// Separate origin for app backends; none here.
    pub app_backend_ingress_url: Option<String>,
    /// 0.9 × `runtime_idle_timeout_seconds`, if configured.
    pub max_foreground_terminal_timeout_seconds: Option<f64>,
    /// `/docs`.
    pub docs: String,
    /// `/redoc`.
    pub redoc: String,
}
