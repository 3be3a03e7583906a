//! Tools: what the agent can do to its workspace.
//!
//! A tool knows nothing of conversations or HTTP. It is created for one
//! conversation from a [`ToolEnv`] (working directory, the conversation's own
//! directory for saved outputs, the spec's `params`), validates the model's
//! arguments into an action object, and executes an action into an
//! [`Observation`]. The agent loop owns everything around that: events,
//! confirmation, secret masking.
//!
//! Architecture invariant: tools never see events, conversation ids or HTTP
//! types; every string they return is masked by the caller.

pub mod apply_patch;
mod args;
pub mod browser;
pub mod builtin;
pub mod file_editor;
mod fsutil;
pub mod glob;
pub mod grep;
pub mod invoke_skill;
mod obs;
pub mod registry;
mod search;
pub mod task_tracker;
pub mod terminal;
pub mod truncate;

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::api::message::Content;

/// MCP-style hints the Python server publishes for each tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolAnnotations {
    /// Absent for some tools (`task_tracker`, `think`): `null` on the wire.
    pub title: Option<String>,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl ToolAnnotations {
    /// The `annotations` object as serialised in a `SystemPromptEvent`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        })
    }
}

/// Everything the agent and the LLM need to know about one tool.
#[derive(Clone, Debug)]
pub struct ToolDefinition {
    /// The name the LLM calls (`terminal`, `browser_click`, …).
    pub name: String,
    /// The Python class name, the `kind` in a `SystemPromptEvent` (`TerminalTool`).
    pub class_name: String,
    /// The LLM-visible description, verbatim from the Python server.
    pub description: String,
    /// JSON schema of the action's own parameters (`{"type":"object","properties":…,"required":…}`),
    /// without the `security_risk` and `summary` fields the agent adds.
    pub parameters: Value,
    /// `kind` of the action object (`TerminalAction`).
    pub action_kind: String,
    /// `kind` of the observation object (`TerminalObservation`).
    pub observation_kind: String,
    pub annotations: ToolAnnotations,
}

/// The result of executing an action.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The observation object exactly as in `ObservationEvent.observation`:
    /// `content`, `is_error`, the tool's own fields (nulls included), `kind` last.
    pub json: Map<String, Value>,
    /// What the LLM is shown for this observation (the tool's `to_llm_content`),
    /// already truncated. The agent adds the error prefix for `is_error`.
    pub llm_content: Vec<Content>,
}

impl Observation {
    /// Whether the tool reported an error (`is_error`).
    pub fn is_error(&self) -> bool {
        self.json
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// What the LLM is shown for a stored observation object (before the
/// agent's error prefix): the tool's own rendering for the terminal and the
/// browser, the `content` parts for every other tool. Lets the agent rebuild
/// its view from `events.jsonl` alone.
pub fn llm_content_from_json(observation: &Map<String, Value>) -> Vec<Content> {
    match observation.get("kind").and_then(Value::as_str) {
        Some("TerminalObservation") => terminal::llm_content_from_json(observation),
        Some("BrowserObservation") => browser::llm_content_from_json(observation),
        _ => observation
            .get("content")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|c| crate::api::message::content_from_value(c).ok())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Why an action could not be executed. Both become an `AgentErrorEvent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolError {
    /// The tool refused the action (Python's `ValueError`): the agent reports
    /// `Error executing tool '<name>': <message>` to the model.
    Invalid(String),
    /// The call was cancelled by an interrupt before it completed.
    Cancelled,
}

/// Per-call context from the agent loop.
#[derive(Clone, Debug, Default)]
pub struct ExecContext {
    /// Secrets (name, value) named in this action that the tool should make
    /// available to the processes it runs (the terminal exports them without
    /// echoing them).
    pub secrets: Vec<(String, String)>,
    /// Every secret value of the conversation. Tools that write output to
    /// disk (the terminal's saved full output) replace them with
    /// `<secret-hidden>` first, since the caller's masking comes too late
    /// for files.
    pub secret_values: Vec<String>,
    /// Cancelled when the conversation is interrupted or deleted.
    pub cancel: CancellationToken,
}

/// One tool instance, owned by one conversation.
pub trait Tool: Send + Sync {
    /// The tool's static description.
    fn definition(&self) -> &ToolDefinition;

    /// Validates the model's arguments (with `security_risk` and `summary`
    /// already removed) into the action object: defaults filled, nulls for
    /// absent optional fields, `kind` last. The error text is the validator
    /// message the model sees.
    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String>;

    /// Executes a validated action.
    fn execute<'a>(
        &'a self,
        action: &'a Value,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>>;

    /// A key naming the resource this action uses (the terminal session, a
    /// file path); actions with the same key never run concurrently.
    fn resource_key(&self, _action: &Value) -> Option<String> {
        None
    }

    /// Releases processes and temporary files. Called when the conversation is
    /// deleted, evicted or the server shuts down.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Server-level settings tools need (from the config).
#[derive(Clone, Debug, Default)]
pub struct ToolSettings {
    /// `OH_RUNTIME_IDLE_TIMEOUT_SECONDS`: caps foreground terminal timeouts.
    pub runtime_idle_timeout_seconds: Option<f64>,
    /// Browser settings (chromedriver/chromium paths, caps, URL filters).
    pub browser: BrowserSettings,
    /// The server's pre-started terminal shells, if any.
    pub terminal_pool: Option<Arc<terminal::ShellPool>>,
}

/// Settings for the browser tool set.
#[derive(Clone, Debug, Default)]
pub struct BrowserSettings {
    pub enabled: bool,
    pub chromedriver_path: Option<PathBuf>,
    pub chromium_path: Option<PathBuf>,
    pub max_concurrent_browsers: usize,
    pub idle_timeout_seconds: f64,
    /// How long a new browser waits for a slot under `max_concurrent_browsers`
    /// before the call is refused (0: refuse at once).
    pub queue_timeout_seconds: f64,
    pub allowed_urls: Vec<String>,
    pub denied_urls: Vec<String>,
}

/// What a tool set is created from.
#[derive(Clone, Debug)]
pub struct ToolEnv {
    /// The conversation's working directory (exists; absolute).
    pub working_dir: PathBuf,
    /// The conversation's own directory: saved outputs go to `observations/`,
    /// the task list to `TASKS.json`.
    pub conversation_dir: PathBuf,
    /// The spec's `params` object (`{"name":"terminal","params":{…}}`).
    pub params: Map<String, Value>,
    /// Whether the agent's LLM accepts images (Python `llm.vision_is_active()`):
    /// the file editor's description mentions image viewing only then.
    pub vision: bool,
    pub settings: Arc<ToolSettings>,
}

/// The tools a spec expands to for one conversation, or why it cannot be created.
pub type ToolSetResult = Result<Vec<Arc<dyn Tool>>, String>;

/// A registered tool spec name (`terminal`, `browser_tool_set`) and how to
/// build its tools for one conversation.
pub struct ToolFactory {
    /// The registry name clients put in `agent.tools[].name`.
    pub name: &'static str,
    /// The Python module the Python client expects in `tool_module_qualnames`.
    pub module_qualname: &'static str,
    /// Creates the conversation's tool instances (a set may expand to several).
    pub create: fn(&ToolEnv) -> ToolSetResult,
}
