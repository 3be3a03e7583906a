//! The `terminal` tool: one persistent bash per conversation in a real
//! pseudo-terminal, with the Python server's single-session semantics
//! (tools.md §1, DECISIONS.md): a command that outlives its soft or hard
//! timeout keeps running, an empty command fetches its new output, `is_input`
//! types into it or sends keys, and a new command is refused until it ends.
//!
//! Layout: [`pty`] owns the terminal and the bash process, [`session`] drives
//! the shell (typing lines, waiting for prompts), [`output`] parses prompts
//! and renders terminal bytes as text, [`shell`] splits commands into
//! statements and quotes text for bash, [`procs`] kills a session's processes.
//!
//! Architecture invariant: every shell process started here dies with the
//! tool (`close`, drop, or [`kill_all_sessions`] at shutdown).

mod output;
mod pool;
mod procs;
mod pty;
mod session;
mod shell;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use crate::api::message::Content;
use crate::tools::truncate::{maybe_truncate, SaveTo, DEFAULT_TRUNCATE_NOTICE};
use crate::tools::{
    ExecContext, Observation, Tool, ToolAnnotations, ToolDefinition, ToolEnv, ToolError,
    ToolFactory, ToolSetResult,
};
use crate::util::pyfmt;

pub use pool::{server_pool, ShellPool};
pub use pty::kill_all_sessions;

use session::{input_bytes, shell_env, Outcome, Session, StartError, Wait};

/// Observations and their LLM rendering are cut to this many characters.
const MAX_OUTPUT_CHARS: usize = 30_000;
/// The soft timeout when the spec's `params` do not set one.
const DEFAULT_NO_CHANGE_TIMEOUT: f64 = 30.0;

const TIMEOUT_MESSAGE: &str = "You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, send keys (\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in terminal for future commands.";
const CONTINUE_PREFIX: &str = "[Below is the output of the previous command.]\n";
const RESET_TEXT: &str = "Terminal session has been reset. All previous environment variables and session state have been cleared.";
const CLOSED_TEXT: &str = "[The terminal was closed while the command was running.]";

const DESCRIPTION: &str = "Execute a shell command in the terminal within a persistent shell session.\n\n\n### Command Execution\n* One command at a time: You can only execute one shell command at a time.\n  If you need to run multiple commands sequentially, use `&&` or `;`.\n* Persistent session: Environment variables, virtual environments, and\n  working directory changes persist across commands.\n* Soft timeout: Commands pause for confirmation after 10 seconds without\n  new output unless you provide a longer `timeout`.\n* Shell options: Do NOT use `set -e`, `set -eu`, or `set -euo pipefail`.\n  The runtime may not support them reliably.\n\n### Long-running Commands\n* For commands that may run indefinitely, run them in the background and\n  redirect output to a file, e.g. `python3 app.py > server.log 2>&1 &`.\n* For long-running commands, set the `timeout` parameter accordingly.\n* If a command returns exit code `-1`, it hit the soft timeout and is\n  still running. With `is_input=true`, you can:\n  - Send empty `command` to retrieve additional logs\n  - Send text to STDIN of the running process\n  - Send control commands like `C-c`, `C-d`, or `C-z`\n  - Send navigation keys like `UP`, `DOWN`, `LEFT`, `RIGHT`, `TAB`,\n    `ESC`, `BS`, `HOME`, `END`, `PGUP`, and `PGDN`\n  - Send any `C-<letter>` Ctrl sequence such as `C-a`, `C-e`, or `C-l`\n\n### Best Practices\n* Verify a parent directory exists before creating files or directories.\n* Prefer absolute paths and avoid excessive use of `cd`.\n\n### Output Handling\n* Large output may be truncated before being returned.\n\n### Terminal Reset\n* Set `reset=true` to create a fresh terminal session if the current one\n  becomes unresponsive.\n* Resetting the terminal clears environment variables, working directory\n  changes, and running processes.";

fn parameters_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": "The shell command to execute. Can be empty string to view additional logs when the previous exit code is `-1`. Can be a special key name when `is_input` is True: `C-c` (Ctrl+C), `C-d` (Ctrl+D/EOF), `C-z` (Ctrl+Z), or any `C-<letter>` for Ctrl sequences; navigation keys `UP`, `DOWN`, `LEFT`, `RIGHT`, `HOME`, `END`, `PGUP`, `PGDN`; and `TAB`, `ESC`, `BS` (Backspace), `ENTER`. You can only execute one command at a time. Use the platform-appropriate shell syntax described in the tool description when chaining commands."
            },
            "is_input": {
                "type": "boolean",
                "description": "If True, the command is an input to the running process. If False, the command is executed in the terminal session. Default is False."
            },
            "timeout": {
                "type": "number",
                "description": "Optional. Sets a maximum time limit (in seconds) for running the command. If the command takes longer than this limit, you\u{2019}ll be asked whether to continue or stop it. If you don\u{2019}t set a value, the command will instead pause and ask for confirmation when it produces no new output for 30 seconds. Use a higher value if the command is expected to take a long time (like installation or testing), or if it has a known fixed duration (like sleep)."
            },
            "reset": {
                "type": "boolean",
                "description": "If True, reset the terminal by creating a new session. Use this only when the terminal becomes unresponsive. Note that all previously set environment variables and session state will be lost after reset. Cannot be used with is_input=True."
            }
        },
        "required": ["command"]
    })
}

/// The tool's definition as the Python server publishes it.
pub fn definition() -> ToolDefinition {
    ToolDefinition {
        name: "terminal".into(),
        class_name: "TerminalTool".into(),
        description: DESCRIPTION.into(),
        parameters: parameters_schema(),
        action_kind: "TerminalAction".into(),
        observation_kind: "TerminalObservation".into(),
        annotations: ToolAnnotations {
            title: Some("terminal".into()),
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
        },
    }
}

/// The registry entry for `{"name": "terminal"}` tool specs.
pub fn factory() -> ToolFactory {
    ToolFactory {
        name: "terminal",
        module_qualname: "openhands.tools.terminal.definition",
        create,
    }
}

/// Kills every terminal session when dropped: hold one in `main` so no shell
/// outlives the server, however it exits.
#[must_use = "the sessions are killed when the guard is dropped"]
pub struct ShutdownGuard(());

/// A guard that kills all terminal sessions when dropped.
pub fn shutdown_guard() -> ShutdownGuard {
    ShutdownGuard(())
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        kill_all_sessions();
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn find_bash() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bash"))
        .find(|candidate| is_executable(candidate))
}

/// The soft timeout as upstream prints it (an int parameter prints as `30`).
fn seconds_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        pyfmt::repr_float(value)
    }
}

/// Per-conversation settings of the tool.
struct Config {
    working_dir: PathBuf,
    save_dir: PathBuf,
    shell: PathBuf,
    env: Vec<(String, String)>,
    no_change_timeout: f64,
    runtime_idle_timeout: Option<f64>,
}

fn create(env: &ToolEnv) -> ToolSetResult {
    let tool = Arc::new(TerminalTool::from_env(env)?);
    // Like upstream, the shell starts with the tool (in the background here),
    // so the first command does not wait for bash and `~/.bashrc`.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let starting = Arc::downgrade(&tool);
        runtime.spawn(async move {
            if let Some(tool) = starting.upgrade() {
                tool.warm_up().await;
            }
        });
    }
    let tool: Arc<dyn Tool> = tool;
    Ok(vec![tool])
}

/// Reads the spec's `params` (upstream's `TerminalTool.create` arguments).
fn config_from_env(env: &ToolEnv) -> Result<Config, String> {
    if !env.working_dir.is_dir() {
        return Err(format!(
            "working_dir '{}' is not a valid directory",
            env.working_dir.display()
        ));
    }
    let mut no_change_timeout = DEFAULT_NO_CHANGE_TIMEOUT;
    let mut extra_env = Vec::new();
    let mut shell_path = None;
    for (key, value) in &env.params {
        match key.as_str() {
            "no_change_timeout_seconds" => match value {
                Value::Null => {}
                Value::Number(n) => {
                    // Upstream: `no_change_timeout_seconds or 30`.
                    let v = n.as_f64().unwrap_or(0.0);
                    if v > 0.0 && v.is_finite() {
                        no_change_timeout = v;
                    }
                }
                other => {
                    return Err(format!(
                        "no_change_timeout_seconds must be a number, got {}",
                        pyfmt::repr_json(other)
                    ))
                }
            },
            "env" => match value {
                Value::Null => {}
                Value::Object(vars) => {
                    for (name, value) in vars {
                        if !is_env_name(name) {
                            return Err(format!(
                                "Invalid terminal environment variable name: {}",
                                pyfmt::repr_str(name)
                            ));
                        }
                        let Value::String(value) = value else {
                            return Err(format!(
                                "Terminal environment variable values must be strings: {}={}",
                                pyfmt::repr_str(name),
                                pyfmt::repr_json(value)
                            ));
                        };
                        extra_env.push((name.clone(), value.clone()));
                    }
                }
                other => {
                    return Err(format!(
                        "env must be a mapping of strings, got {}",
                        pyfmt::repr_json(other)
                    ))
                }
            },
            "shell_path" => match value {
                Value::Null => {}
                Value::String(path) => shell_path = Some(PathBuf::from(path)),
                other => {
                    return Err(format!(
                        "shell_path must be a string, got {}",
                        pyfmt::repr_json(other)
                    ))
                }
            },
            // Accepted for compatibility: there is one backend and no user switching.
            "username" | "terminal_type" => {}
            other => {
                return Err(format!(
                    "TerminalTool.create() got an unexpected keyword argument '{other}'"
                ))
            }
        }
    }
    let shell = match shell_path {
        Some(path) => {
            if !path.is_file() {
                return Err(format!(
                    "Shell binary not found at: {}. Please provide a valid shell_path parameter.",
                    path.display()
                ));
            }
            if !is_executable(&path) {
                return Err(format!(
                    "Shell binary is not executable: {}. Please check file permissions.",
                    path.display()
                ));
            }
            path
        }
        None => find_bash().ok_or_else(|| {
            "Could not find bash in PATH. Please provide an explicit shell_path parameter when creating the terminal.".to_string()
        })?,
    };
    Ok(Config {
        working_dir: env.working_dir.clone(),
        save_dir: env.conversation_dir.join("observations"),
        shell,
        env: extra_env,
        no_change_timeout,
        runtime_idle_timeout: env.settings.runtime_idle_timeout_seconds,
    })
}

/// The validated arguments of one call.
#[derive(Clone, Debug, PartialEq)]
struct TerminalAction {
    command: String,
    is_input: bool,
    timeout: Option<f64>,
    reset: bool,
}

impl TerminalAction {
    fn to_json(&self) -> Value {
        json!({
            "command": self.command,
            "is_input": self.is_input,
            "timeout": self.timeout,
            "reset": self.reset,
            "kind": "TerminalAction",
        })
    }
}

/// One pydantic-style validation error.
struct FieldError {
    field: String,
    kind: &'static str,
    msg: &'static str,
    input: Value,
}

fn parse_bool(value: &Value) -> Result<bool, (&'static str, &'static str)> {
    const PARSING: (&str, &str) = (
        "bool_parsing",
        "Input should be a valid boolean, unable to interpret input",
    );
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(PARSING),
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
            _ => Err(PARSING),
        },
        _ => Err(("bool_type", "Input should be a valid boolean")),
    }
}

fn parse_timeout(value: &Value) -> Result<Option<f64>, (&'static str, &'static str)> {
    let number = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| {
            (
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
            )
        })?,
        _ => return Err(("float_type", "Input should be a valid number")),
    };
    if !number.is_finite() {
        return Err(("finite_number", "Input should be a finite number"));
    }
    if number < 0.0 {
        return Err((
            "greater_than_equal",
            "Input should be greater than or equal to 0",
        ));
    }
    Ok(Some(number))
}

fn validate_action(args: &Map<String, Value>) -> Result<TerminalAction, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, (kind, msg): (&'static str, &'static str), input: &Value| {
        errors.push(FieldError {
            field: field.to_string(),
            kind,
            msg,
            input: input.clone(),
        });
    };
    let command = match args.get("command") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            fail(
                "command",
                ("string_type", "Input should be a valid string"),
                other,
            );
            String::new()
        }
        None => {
            fail(
                "command",
                ("missing", "Field required"),
                &Value::Object(args.clone()),
            );
            String::new()
        }
    };
    let mut flags = [false; 2];
    for (slot, name) in flags.iter_mut().zip(["is_input", "reset"]) {
        if let Some(v) = args.get(name) {
            match parse_bool(v) {
                Ok(b) => *slot = b,
                Err(e) => fail(name, e, v),
            }
        }
    }
    let [is_input, reset] = flags;
    let timeout = match args.get("timeout") {
        None => None,
        Some(v) => parse_timeout(v).unwrap_or_else(|e| {
            fail("timeout", e, v);
            None
        }),
    };
    for (key, value) in args {
        if !matches!(key.as_str(), "command" | "is_input" | "timeout" | "reset") {
            fail(
                key,
                ("extra_forbidden", "Extra inputs are not permitted"),
                value,
            );
        }
    }
    if errors.is_empty() {
        Ok(TerminalAction {
            command,
            is_input,
            timeout,
            reset,
        })
    } else {
        // Pydantic lists errors in field order.
        let order = |f: &str| {
            ["command", "is_input", "timeout", "reset"]
                .iter()
                .position(|n| *n == f)
                .unwrap_or(4)
        };
        errors.sort_by_key(|e| order(&e.field));
        Err(errors)
    }
}

/// Pydantic's text for validation errors (without the documentation links).
fn validation_text(errors: &[FieldError]) -> String {
    let mut text = format!(
        "{} validation error{} for TerminalAction",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        text.push_str(&format!(
            "\n{}\n  {} [type={}, input_value={}, input_type={}]",
            e.field,
            e.msg,
            e.kind,
            pyfmt::repr_json(&e.input),
            pyfmt::type_name(&e.input)
        ));
    }
    text
}

/// `metadata` of a `TerminalObservation`.
#[derive(Clone, Debug, PartialEq)]
struct Metadata {
    exit_code: i64,
    pid: i64,
    username: Option<String>,
    hostname: Option<String>,
    working_dir: Option<String>,
    py_interpreter_path: Option<String>,
    prefix: String,
    suffix: String,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            exit_code: -1,
            pid: -1,
            username: None,
            hostname: None,
            working_dir: None,
            py_interpreter_path: None,
            prefix: String::new(),
            suffix: String::new(),
        }
    }
}

impl Metadata {
    fn to_json(&self) -> Value {
        json!({
            "exit_code": self.exit_code,
            "pid": self.pid,
            "username": self.username,
            "hostname": self.hostname,
            "working_dir": self.working_dir,
            "py_interpreter_path": self.py_interpreter_path,
            "prefix": self.prefix,
            "suffix": self.suffix,
        })
    }
}

/// Output of an observation before it is rendered.
enum Body {
    /// Raw terminal bytes.
    Raw(Vec<u8>),
    /// Finished text.
    Text(String),
}

/// An observation before rendering, masking and truncation.
struct Draft {
    body: Body,
    /// Text put before the output (the reset notice), separated by a blank line.
    lead: Option<&'static str>,
    command: Option<String>,
    exit_code: Option<i64>,
    is_error: bool,
    metadata: Metadata,
    /// Output was dropped at the front: say how many lines are shown.
    trimmed: bool,
    /// `full_output_save_dir` is reported (upstream leaves it out for the
    /// literal-argument refusal).
    report_save_dir: bool,
}

impl Draft {
    fn text(text: impl Into<String>, command: Option<String>, is_error: bool) -> Draft {
        Draft {
            body: Body::Text(text.into()),
            lead: None,
            command,
            exit_code: None,
            is_error,
            metadata: Metadata::default(),
            trimmed: false,
            report_save_dir: true,
        }
    }
}

/// Replaces every secret value in `text` with `<secret-hidden>`, longest first.
fn mask(text: &str, secrets: &[String]) -> String {
    let mut values: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for value in values {
        if out.contains(value) {
            out = out.replace(value, "<secret-hidden>");
        }
    }
    out
}

/// The text the model sees for a terminal observation (upstream's
/// `to_llm_content`, before truncation): prefix, output, suffix, then the
/// working directory, interpreter and exit code lines.
pub fn llm_text(observation: &Map<String, Value>) -> String {
    let text: String = observation
        .get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let meta = observation.get("metadata");
    let field = |name: &str| meta.and_then(|m| m.get(name));
    let string = |name: &str| field(name).and_then(Value::as_str).unwrap_or("");
    let mut out = format!("{}{}{}", string("prefix"), text, string("suffix"));
    if !string("working_dir").is_empty() {
        out.push_str(&format!(
            "\n[Current working directory: {}]",
            string("working_dir")
        ));
    }
    if !string("py_interpreter_path").is_empty() {
        out.push_str(&format!(
            "\n[Python interpreter: {}]",
            string("py_interpreter_path")
        ));
    }
    let exit_code = field("exit_code").and_then(Value::as_i64).unwrap_or(-1);
    if exit_code != -1 {
        out.push_str(&format!("\n[Command finished with exit code {exit_code}]"));
    }
    out
}

/// What the LLM was shown for a stored `TerminalObservation` (the view is
/// rebuilt from `events.jsonl` after a restart): [`llm_text`], truncated
/// like the live rendering (the saved-output notice was already placed in
/// the stored text when it mattered).
pub fn llm_content_from_json(observation: &Map<String, Value>) -> Vec<Content> {
    vec![Content::text(maybe_truncate(
        &llm_text(observation),
        MAX_OUTPUT_CHARS,
        DEFAULT_TRUNCATE_NOTICE,
        None,
    ))]
}

/// Renders, masks and truncates a draft into the observation. Blocking (it
/// may save the full output): run in `spawn_blocking`.
fn finish(draft: Draft, save_dir: &Path, secrets: &[String]) -> Observation {
    let mut metadata = draft.metadata;
    let output = match draft.body {
        Body::Raw(bytes) => output::drop_plumbing_trace(output::render(&bytes))
            .trim()
            .to_string(),
        Body::Text(text) => text,
    };
    if draft.trimmed {
        metadata.prefix = format!(
            "[Previous command outputs are truncated. Showing the last {} lines of the output below.]\n",
            output.lines().count()
        );
    }
    let text = match draft.lead {
        Some(lead) => format!("{lead}\n\n{output}"),
        None => output,
    };
    let text = mask(&text, secrets);
    let save = SaveTo {
        dir: save_dir,
        prefix: "terminal",
    };
    // Leave room for what the LLM rendering adds, so cutting the output here
    // is the only cut and its notice (naming the saved full output) survives.
    let empty_content = Map::from_iter([
        ("content".to_string(), json!([])),
        ("metadata".to_string(), metadata.to_json()),
    ]);
    let extra = llm_text(&empty_content).chars().count();
    let budget = MAX_OUTPUT_CHARS
        .saturating_sub(extra)
        .max(MAX_OUTPUT_CHARS / 2);
    let text = maybe_truncate(&text, budget, DEFAULT_TRUNCATE_NOTICE, Some(save));
    let save_dir_text =
        (draft.report_save_dir && !text.is_empty()).then(|| save_dir.display().to_string());
    let value = json!({
        "content": [Content::text(text)],
        "is_error": draft.is_error,
        "command": draft.command,
        "exit_code": draft.exit_code,
        "timeout": false,
        "metadata": metadata.to_json(),
        "full_output_save_dir": save_dir_text,
        "kind": "TerminalObservation",
    });
    let json = match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let llm = maybe_truncate(
        &llm_text(&json),
        MAX_OUTPUT_CHARS,
        DEFAULT_TRUNCATE_NOTICE,
        Some(save),
    );
    Observation {
        json,
        llm_content: vec![Content::text(llm)],
    }
}

/// The `terminal` tool of one conversation.
pub struct TerminalTool {
    definition: ToolDefinition,
    config: Config,
    /// The shell, started on first use.
    session: Mutex<Option<Session>>,
    /// The shell's pid, readable while a command holds `session` (0: none).
    shell_pid: AtomicI32,
    /// Set by `close`: no new shell may start.
    closed: AtomicBool,
    /// Where the first shell may come from ready-made.
    pool: Option<Arc<ShellPool>>,
}

impl TerminalTool {
    /// Creates the tool for one conversation; the shell starts on first use.
    pub fn from_env(env: &ToolEnv) -> Result<TerminalTool, String> {
        Ok(TerminalTool {
            definition: definition(),
            config: config_from_env(env)?,
            session: Mutex::new(None),
            shell_pid: AtomicI32::new(0),
            closed: AtomicBool::new(false),
            pool: env.settings.terminal_pool.clone(),
        })
    }

    fn wait_for(&self, timeout: Option<f64>) -> Wait {
        Wait {
            soft: Duration::try_from_secs_f64(self.config.no_change_timeout).ok(),
            hard: timeout.and_then(|t| Duration::try_from_secs_f64(t).ok()),
            blocking: timeout.is_some(),
        }
    }

    /// Starts the shell now if it is not running yet.
    async fn warm_up(&self) {
        let mut slot = self.session.lock().await;
        if slot.is_none() {
            match self.start_session(&ExecContext::default()).await {
                Ok(session) => *slot = Some(session),
                Err(e) => tracing::warn!(error = ?e, "could not start the terminal"),
            }
        }
    }

    async fn start_session(&self, ctx: &ExecContext) -> Result<Session, ToolError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ToolError::Invalid("The terminal has been closed.".into()));
        }
        let spec = pty::SpawnSpec {
            shell: self.config.shell.clone(),
            cwd: self.config.working_dir.clone(),
            env: shell_env(&self.config.env),
        };
        if let Some(session) = self.pooled_session(&spec, ctx).await? {
            self.shell_pid.store(session.pid(), Ordering::SeqCst);
            return Ok(session);
        }
        let session = Session::start(spec, &ctx.cancel)
            .await
            .map_err(|e| match e {
                StartError::Cancelled => ToolError::Cancelled,
                StartError::Failed(message) => ToolError::Invalid(message),
            })?;
        self.shell_pid.store(session.pid(), Ordering::SeqCst);
        Ok(session)
    }

    /// A pre-started shell moved to the working directory, when the pool has
    /// one started exactly like `spec` would be (see [`pool`]).
    async fn pooled_session(
        &self,
        spec: &pty::SpawnSpec,
        ctx: &ExecContext,
    ) -> Result<Option<Session>, ToolError> {
        let Some(pool) = &self.pool else {
            return Ok(None);
        };
        let Some(mut session) = pool.take(&spec.shell, &spec.env).await else {
            return Ok(None);
        };
        match session.enter(&spec.cwd, &ctx.cancel).await {
            Ok(true) => Ok(Some(session)),
            Ok(false) => {
                session.close().await;
                Ok(None)
            }
            Err(()) => {
                session.close().await;
                Err(ToolError::Cancelled)
            }
        }
    }

    async fn run(&self, action: TerminalAction, ctx: &ExecContext) -> Result<Draft, ToolError> {
        if action.reset && action.is_input {
            return Err(ToolError::Invalid(
                "Cannot use reset=True with is_input=True".into(),
            ));
        }
        if !action.is_input {
            if let Some(kind) = shell::literal_kind(&action.command) {
                let head: String = action.command.trim_start().chars().take(60).collect();
                let mut draft = Draft::text(
                    literal_hint(kind, &head),
                    Some(action.command.clone()),
                    true,
                );
                draft.report_save_dir = false;
                return Ok(draft);
            }
        }
        // The shell may still be starting in the background (a slow
        // `~/.bashrc`): an interrupt must not wait for it.
        let mut slot = tokio::select! {
            slot = self.session.lock() => slot,
            _ = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
        };
        let dead = match slot.as_mut() {
            Some(session) => session.has_exited(),
            None => false,
        };
        if action.reset || dead {
            if let Some(old) = slot.take() {
                self.shell_pid.store(0, Ordering::SeqCst);
                old.close().await;
            }
            let session = slot.insert(self.start_session(ctx).await?);
            if action.command.trim().is_empty() {
                let mut draft = Draft::text(RESET_TEXT, Some("[RESET]".into()), false);
                draft.exit_code = Some(0);
                return Ok(draft);
            }
            let inner = TerminalAction {
                is_input: false,
                reset: false,
                ..action.clone()
            };
            let mut draft = self.execute_in(session, &inner, ctx).await?;
            draft.lead = Some(RESET_TEXT);
            draft.command = Some(format!("[RESET] {}", action.command));
            return Ok(draft);
        }
        let session = match slot.as_mut() {
            Some(session) => session,
            None => slot.insert(self.start_session(ctx).await?),
        };
        self.execute_in(session, &action, ctx).await
    }

    /// Upstream's `TerminalSession.execute`.
    async fn execute_in(
        &self,
        session: &mut Session,
        action: &TerminalAction,
        ctx: &ExecContext,
    ) -> Result<Draft, ToolError> {
        let command = action.command.trim().to_string();
        if let Some(text) = self.foreground_rejection(&command, action) {
            return Ok(Draft::text(text, Some(command), true));
        }
        let running = session.is_running();
        if !running && command.is_empty() {
            return Ok(Draft::text(
                "No previous running command to retrieve logs from.",
                Some(command),
                true,
            ));
        }
        if !running && action.is_input {
            return Ok(Draft::text(
                "No previous running command to interact with.",
                Some(command),
                true,
            ));
        }
        let statements = shell::split_commands(&command);
        if statements.len() > 1 {
            let list: Vec<String> = statements
                .iter()
                .enumerate()
                .map(|(i, s)| format!("({}) {}", i + 1, s))
                .collect();
            return Ok(Draft::text(
                format!(
                    "Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n{}",
                    list.join("\n")
                ),
                Some(command),
                true,
            ));
        }
        if running && !action.is_input && !command.is_empty() && !session.completion_pending() {
            let (output, continued) = session.take_unseen();
            return Ok(refusal(&command, output, continued));
        }
        let wait = self.wait_for(action.timeout);
        let outcome = if command.is_empty() {
            session.wait_more(wait, &ctx.cancel).await
        } else if action.is_input && session.completion_pending() {
            // The program has already ended: typing now would hand the input
            // to the shell as a command.
            session.wait_more(wait, &ctx.cancel).await
        } else if action.is_input {
            session
                .send_input(&input_bytes(&command), wait, &ctx.cancel)
                .await
        } else {
            let vars: Vec<(String, String)> = ctx
                .secrets
                .iter()
                .filter(|(name, _)| {
                    let valid = is_env_name(name);
                    if !valid {
                        tracing::warn!(name = %name, "skipping secret with invalid env var name");
                    }
                    valid
                })
                .cloned()
                .collect();
            session
                .run_command(&command, &vars, wait, &ctx.cancel)
                .await
        };
        let outcome = outcome.map_err(|()| ToolError::Cancelled)?;
        Ok(self.draft_for(outcome, command, action.timeout))
    }

    fn foreground_rejection(&self, command: &str, action: &TerminalAction) -> Option<String> {
        let idle = self.config.runtime_idle_timeout.filter(|v| *v > 0.0)?;
        let timeout = action.timeout?;
        if action.is_input || command.is_empty() {
            return None;
        }
        let max = idle * 0.9;
        if timeout <= max {
            return None;
        }
        Some(format!(
            "Refusing to run foreground terminal command with timeout={}s.\n\nThis runtime is subject to idle cleanup after {}s. Foreground terminal commands are capped at 90% of that threshold, currently {}s, so commands can return control before the runtime is considered idle.\n\nFor long-running work, use a shorter timeout, omit the timeout to use the terminal soft-timeout/polling flow, or start the command in the background and poll its log file.",
            pyfmt::general(timeout),
            pyfmt::general(idle),
            pyfmt::general(max)
        ))
    }

    fn draft_for(&self, outcome: Outcome, command: String, timeout: Option<f64>) -> Draft {
        let timed_out = |output: Vec<u8>, continued: bool, suffix: String| {
            let metadata = Metadata {
                prefix: if continued {
                    CONTINUE_PREFIX.into()
                } else {
                    String::new()
                },
                suffix,
                ..Metadata::default()
            };
            Draft {
                body: Body::Raw(output),
                lead: None,
                command: Some(command.clone()),
                exit_code: Some(-1),
                is_error: false,
                metadata,
                trimmed: false,
                report_save_dir: true,
            }
        };
        match outcome {
            Outcome::Completed {
                output,
                fields,
                trimmed,
                continued,
            } => {
                let special = command.starts_with("C-") && command.chars().count() == 3;
                let suffix = if special {
                    let key = command.chars().last().unwrap_or('C').to_uppercase();
                    format!(
                        "\n[The command completed with exit code {}. CTRL+{key} was sent.]",
                        fields.exit_code
                    )
                } else {
                    format!(
                        "\n[The command completed with exit code {}.]",
                        fields.exit_code
                    )
                };
                Draft {
                    body: Body::Raw(output),
                    lead: None,
                    command: Some(command),
                    exit_code: Some(fields.exit_code),
                    is_error: false,
                    metadata: Metadata {
                        exit_code: fields.exit_code,
                        pid: fields.pid,
                        username: fields.username,
                        hostname: fields.hostname,
                        working_dir: fields.working_dir,
                        py_interpreter_path: fields.py_interpreter_path,
                        prefix: String::new(),
                        suffix,
                    },
                    trimmed: trimmed && !continued,
                    report_save_dir: true,
                }
            }
            Outcome::SoftTimeout { output, continued } => {
                let suffix = format!(
                    "\n[The command has no new output after {} seconds. {TIMEOUT_MESSAGE}]",
                    seconds_text(self.config.no_change_timeout)
                );
                timed_out(output, continued, suffix)
            }
            Outcome::HardTimeout { output, continued } => {
                let suffix = format!(
                    "\n[The command timed out after {} seconds. {TIMEOUT_MESSAGE}]",
                    pyfmt::repr_float(timeout.unwrap_or(0.0))
                );
                timed_out(output, continued, suffix)
            }
            Outcome::Busy { output, continued } => refusal(&command, output, continued),
            Outcome::Closed => {
                let mut draft = Draft::text(CLOSED_TEXT, Some(command), true);
                draft.exit_code = Some(-1);
                draft
            }
        }
    }

    /// The pid of the shell, if one is running (for tests and diagnostics).
    pub fn shell_pid(&self) -> Option<i32> {
        Some(self.shell_pid.load(Ordering::SeqCst)).filter(|pid| *pid > 0)
    }

    async fn close_session(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let session = match self.session.try_lock() {
            Ok(mut slot) => slot.take(),
            Err(_) => {
                // A command holds the session: kill the shell under it, which
                // makes that command return, then take the session.
                if let Some(pid) = self.shell_pid() {
                    let _ =
                        tokio::task::spawn_blocking(move || procs::kill_session(pid, true)).await;
                }
                self.session.lock().await.take()
            }
        };
        if let Some(session) = session {
            session.close().await;
        }
        self.shell_pid.store(0, Ordering::SeqCst);
    }
}

fn refusal(command: &str, output: Vec<u8>, continued: bool) -> Draft {
    Draft {
        body: Body::Raw(output),
        lead: None,
        command: Some(command.to_string()),
        exit_code: Some(-1),
        is_error: true,
        metadata: Metadata {
            prefix: if continued {
                CONTINUE_PREFIX.into()
            } else {
                String::new()
            },
            suffix: format!(
                "\n[Your command \"{command}\" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting `is_input` to `true`, you can interact with the current process: {TIMEOUT_MESSAGE}]"
            ),
            ..Metadata::default()
        },
        trimmed: false,
        report_save_dir: true,
    }
}

fn literal_hint(kind: &str, head: &str) -> String {
    format!(
        "[Tool-argument error] The `command` argument looks like a Python/JSON {kind}, not a shell command. It starts with: {}\n\nThe `terminal` tool runs exactly ONE shell command at a time. To pass structured data or multi-line code:\n  - Write a script first with `file_editor` (command=\"create\", path=\"/tmp/run.py\", ...), then invoke it: `python /tmp/run.py`.\n  - Or use a heredoc inline, e.g.:\n        python - <<'EOF'\n        DATABASES = {{'default': {{...}}}}\n        # your code here\n        EOF\n\nDo not put a Python list/dict literal into the `command` field; the shell cannot interpret it.",
        pyfmt::repr_str(head)
    )
}

fn parse_action(action: &Value) -> Result<TerminalAction, ToolError> {
    let Value::Object(map) = action else {
        return Err(ToolError::Invalid("the action is not an object".into()));
    };
    let mut args = map.clone();
    args.remove("kind");
    validate_action(&args).map_err(|errors| ToolError::Invalid(validation_text(&errors)))
}

impl Tool for TerminalTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        validate_action(arguments)
            .map(|action| action.to_json())
            .map_err(|errors| validation_text(&errors))
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        Box::pin(async move {
            let action = parse_action(action)?;
            let draft = self.run(action, ctx).await?;
            let save_dir = self.config.save_dir.clone();
            let secrets: Vec<String> = ctx
                .secrets
                .iter()
                .map(|(_, value)| value.clone())
                .chain(ctx.secret_values.iter().cloned())
                .collect();
            tokio::task::spawn_blocking(move || finish(draft, &save_dir, &secrets))
                .await
                .map_err(|e| ToolError::Invalid(format!("terminal output failed: {e}")))
        })
    }

    fn resource_key(&self, _action: &Value) -> Option<String> {
        Some("terminal:session".into())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.close_session())
    }
}
