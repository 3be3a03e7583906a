//! Conversation wire models (api.md §3–5): the start request, the small
//! request bodies, query parameters of the search routes, and the pieces of
//! `ConversationInfo` (status, confirmation policy, security analyzer, secret
//! sources).
//!
//! Every request model is parsed from a `serde_json::Value` with
//! [`crate::api::validate`], so a 422 lists every problem with the same
//! `type`/`loc`/`msg` the Python server reports.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::agent::{parse_llm, without_kind, Agent};
use crate::api::event::SecurityRisk;
use crate::api::llm_config::LlmConfig;
use crate::api::message::{Content, ImageContent, TextContent};
use crate::api::validate::{is_secret_key, unknown_kind_message, Path, Validator};
use crate::api::validation::ValidationErrorItem;

/// A request model's validation result: the value or the 422 items.
pub type Parsed<T> = Result<T, Vec<ValidationErrorItem>>;

/// `execution_status` (events.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecutionStatus {
    /// Waiting for a message or a run.
    Idle,
    /// The agent loop is working.
    Running,
    /// Paused by the user.
    Paused,
    /// Actions wait for the user's confirmation.
    WaitingForConfirmation,
    /// The agent finished its task.
    Finished,
    /// The run failed.
    Error,
    /// The stuck detector stopped the run.
    Stuck,
    /// Being deleted (webhook payloads only).
    Deleting,
}

impl ExecutionStatus {
    /// Every status, in the Python enum's order.
    pub const ALL: [ExecutionStatus; 8] = [
        ExecutionStatus::Idle,
        ExecutionStatus::Running,
        ExecutionStatus::Paused,
        ExecutionStatus::WaitingForConfirmation,
        ExecutionStatus::Finished,
        ExecutionStatus::Error,
        ExecutionStatus::Stuck,
        ExecutionStatus::Deleting,
    ];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Idle => "idle",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Paused => "paused",
            ExecutionStatus::WaitingForConfirmation => "waiting_for_confirmation",
            ExecutionStatus::Finished => "finished",
            ExecutionStatus::Error => "error",
            ExecutionStatus::Stuck => "stuck",
            ExecutionStatus::Deleting => "deleting",
        }
    }

    /// Reads a wire value.
    pub fn from_wire(s: &str) -> Option<ExecutionStatus> {
        Self::ALL.iter().copied().find(|st| st.as_str() == s)
    }

    /// The position in [`ExecutionStatus::ALL`] (for per-status counters).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }

    fn wire_values() -> Vec<&'static str> {
        Self::ALL.iter().map(|s| s.as_str()).collect()
    }
}

/// When the agent asks before executing an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmationPolicy {
    /// Never ask.
    NeverConfirm,
    /// Always ask.
    AlwaysConfirm,
    /// Ask for actions at or above `threshold` (and unknown risks if `confirm_unknown`).
    ConfirmRisky {
        /// Never `UNKNOWN`.
        threshold: SecurityRisk,
        /// Whether an unassessed action needs confirmation.
        confirm_unknown: bool,
    },
}

const POLICY_KINDS: [&str; 3] = ["AlwaysConfirm", "ConfirmRisky", "NeverConfirm"];
const POLICY_BASE: &str = "openhands.sdk.security.confirmation_policy.ConfirmationPolicyBase";
const RISK_VALUES: [&str; 4] = ["UNKNOWN", "LOW", "MEDIUM", "HIGH"];

impl ConfirmationPolicy {
    /// The JSON form (`{"kind":"NeverConfirm"}`, `{"threshold":"HIGH","confirm_unknown":true,"kind":"ConfirmRisky"}`).
    pub fn to_json(&self) -> Value {
        match self {
            ConfirmationPolicy::NeverConfirm => serde_json::json!({"kind":"NeverConfirm"}),
            ConfirmationPolicy::AlwaysConfirm => serde_json::json!({"kind":"AlwaysConfirm"}),
            ConfirmationPolicy::ConfirmRisky {
                threshold,
                confirm_unknown,
            } => {
                let mut m = Map::new();
                m.insert(
                    "threshold".into(),
                    serde_json::to_value(threshold).unwrap_or(Value::Null),
                );
                m.insert("confirm_unknown".into(), Value::Bool(*confirm_unknown));
                m.insert("kind".into(), "ConfirmRisky".into());
                Value::Object(m)
            }
        }
    }

    /// The class name (`SecurityAnalysisEvent.policy`).
    pub fn kind(&self) -> &'static str {
        match self {
            ConfirmationPolicy::NeverConfirm => "NeverConfirm",
            ConfirmationPolicy::AlwaysConfirm => "AlwaysConfirm",
            ConfirmationPolicy::ConfirmRisky { .. } => "ConfirmRisky",
        }
    }

    /// Whether an action with this risk needs the user's confirmation.
    pub fn should_confirm(&self, risk: SecurityRisk) -> bool {
        fn rank(r: SecurityRisk) -> u8 {
            match r {
                SecurityRisk::Unknown => 0,
                SecurityRisk::Low => 1,
                SecurityRisk::Medium => 2,
                SecurityRisk::High => 3,
            }
        }
        match self {
            ConfirmationPolicy::NeverConfirm => false,
            ConfirmationPolicy::AlwaysConfirm => true,
            ConfirmationPolicy::ConfirmRisky {
                threshold,
                confirm_unknown,
            } => {
                if risk == SecurityRisk::Unknown {
                    *confirm_unknown
                } else {
                    rank(risk) >= rank(*threshold)
                }
            }
        }
    }

    /// Validates a policy; also accepts the npm client's `{"type":"always"|"never"|"risky"}`.
    pub fn parse(v: &Value, at: &Path, val: &mut Validator) -> Option<ConfirmationPolicy> {
        let obj = val.model(v, at, "ConfirmationPolicyBase")?;
        let kind = match (obj.get("kind"), obj.get("type")) {
            (Some(Value::String(k)), _) => k.as_str(),
            (None, Some(Value::String(t))) => match t.as_str() {
                "always" => "AlwaysConfirm",
                "never" => "NeverConfirm",
                "risky" => "ConfirmRisky",
                _ => "",
            },
            _ => "",
        };
        match kind {
            "NeverConfirm" => Some(ConfirmationPolicy::NeverConfirm),
            "AlwaysConfirm" => Some(ConfirmationPolicy::AlwaysConfirm),
            "ConfirmRisky" => {
                let before = val.len();
                let threshold = match obj.get("threshold") {
                    None => Some(SecurityRisk::High),
                    Some(t) => match t.as_str().filter(|s| RISK_VALUES.contains(s)) {
                        Some("UNKNOWN") => {
                            val.value_error(&at.key("threshold"), t, "Threshold cannot be UNKNOWN");
                            None
                        }
                        Some(s) => serde_json::from_value(Value::String(s.into())).ok(),
                        None => {
                            val.enum_error(&at.key("threshold"), t, &RISK_VALUES);
                            None
                        }
                    },
                };
                let confirm_unknown = match obj.get("confirm_unknown") {
                    None => Some(true),
                    Some(b) => val.boolean(b, &at.key("confirm_unknown")),
                };
                if val.len() != before {
                    return None;
                }
                Some(ConfirmationPolicy::ConfirmRisky {
                    threshold: threshold?,
                    confirm_unknown: confirm_unknown?,
                })
            }
            other => {
                val.value_error(
                    at,
                    v,
                    &unknown_kind_message(other, POLICY_BASE, &POLICY_KINDS),
                );
                None
            }
        }
    }
}

/// A security analyzer configuration (`{"kind":"LLMSecurityAnalyzer"}`), kept
/// as JSON with `kind` last.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityAnalyzer(pub Map<String, Value>);

const ANALYZER_KINDS: [&str; 6] = [
    "PatternSecurityAnalyzer",
    "PolicyRailSecurityAnalyzer",
    "EnsembleSecurityAnalyzer",
    "GraySwanAnalyzer",
    "LLMSecurityAnalyzer",
    "ToolShieldLLMSecurityAnalyzer",
];
const ANALYZER_BASE: &str = "openhands.sdk.security.analyzer.SecurityAnalyzerBase";

impl SecurityAnalyzer {
    /// The analyzer's class name.
    pub fn kind(&self) -> &str {
        self.0.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// Validates an analyzer (kind must be one the Python server knows).
    pub fn parse(v: &Value, at: &Path, val: &mut Validator) -> Option<SecurityAnalyzer> {
        let obj = val.model(v, at, "SecurityAnalyzerBase")?;
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        if !ANALYZER_KINDS.contains(&kind) {
            val.value_error(
                at,
                v,
                &unknown_kind_message(kind, ANALYZER_BASE, &ANALYZER_KINDS),
            );
            return None;
        }
        let fields = without_kind(obj);
        if kind == "EnsembleSecurityAnalyzer" && val.required(&fields, "analyzers", at).is_none() {
            return None;
        }
        if kind == "ToolShieldLLMSecurityAnalyzer" && val.required(&fields, "llm", at).is_none() {
            return None;
        }
        let mut m: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| *k != "kind")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        m.insert("kind".into(), kind.into());
        Some(SecurityAnalyzer(m))
    }
}

/// Where a conversation secret comes from (agent.md §8).
#[derive(Clone, Debug, PartialEq)]
pub enum SecretSource {
    /// A literal value.
    Static {
        /// Shown to the agent in the prompt's secrets list.
        description: Option<String>,
        /// The value; `None` when it was lost (no key at rest) or never given.
        value: Option<String>,
    },
    /// Fetched by HTTP GET each time it is needed.
    Lookup {
        /// Shown to the agent.
        description: Option<String>,
        /// Where to fetch it; relative URLs resolve against the server's own URL.
        url: String,
        /// Request headers (secret-looking ones are secrets themselves).
        headers: Map<String, Value>,
    },
}

const SECRET_KINDS: [&str; 2] = ["LookupSecret", "StaticSecret"];
const SECRET_BASE: &str = "openhands.sdk.secret.secrets.SecretSource";

impl SecretSource {
    /// A static secret with a value.
    pub fn new_static(value: impl Into<String>) -> Self {
        SecretSource::Static {
            description: None,
            value: Some(value.into()),
        }
    }

    /// The JSON form with plaintext values (`{"description","value","kind"}`,
    /// `{"description","url","headers","kind"}`). Writers pass it through
    /// [`walk_registry_secrets`] before it leaves the process.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            SecretSource::Static { description, value } => {
                m.insert("description".into(), opt(description));
                m.insert("value".into(), opt(value));
                m.insert("kind".into(), "StaticSecret".into());
            }
            SecretSource::Lookup {
                description,
                url,
                headers,
            } => {
                m.insert("description".into(), opt(description));
                m.insert("url".into(), url.clone().into());
                m.insert("headers".into(), Value::Object(headers.clone()));
                m.insert("kind".into(), "LookupSecret".into());
            }
        }
        Value::Object(m)
    }

    /// Validates a `SecretSource` (kind required).
    pub fn parse(v: &Value, at: &Path, val: &mut Validator) -> Option<SecretSource> {
        let obj = val.attributes(v, at)?;
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let before = val.len();
        let description = match obj.get("description") {
            None => Some(None),
            Some(d) => val.opt_string(d, &at.key("description")),
        };
        let out = match kind {
            "StaticSecret" => {
                let value = match obj.get("value") {
                    None => Some(None),
                    Some(s) => val.opt_string(s, &at.key("value")),
                };
                value.map(|value| SecretSource::Static {
                    description: description.clone().flatten(),
                    value,
                })
            }
            "LookupSecret" => {
                let url = val
                    .required(&without_kind(obj), "url", at)
                    .and_then(|u| val.string(u, &at.key("url")));
                let headers = match obj.get("headers") {
                    None | Some(Value::Null) => Some(Map::new()),
                    Some(h) => val.dict(h, &at.key("headers")).cloned(),
                };
                match (url, headers) {
                    (Some(url), Some(headers)) => Some(SecretSource::Lookup {
                        description: description.clone().flatten(),
                        url,
                        headers,
                    }),
                    _ => None,
                }
            }
            other => {
                val.value_error(
                    at,
                    v,
                    &unknown_kind_message(other, SECRET_BASE, &SECRET_KINDS),
                );
                None
            }
        };
        (val.len() == before).then_some(out).flatten()
    }

    /// Reads the `UpdateSecretsRequest` forms too: a plain string or
    /// `{"value": …}` without `kind` is a static secret.
    pub fn parse_lenient(v: &Value, at: &Path, val: &mut Validator) -> Option<SecretSource> {
        match v {
            Value::Object(_) | Value::String(_) => {}
            _ => {
                val.model(v, at, "SecretSource");
                return None;
            }
        }
        match v {
            Value::String(s) => Some(SecretSource::new_static(s.clone())),
            Value::Object(m) if m.contains_key("value") && !m.contains_key("kind") => {
                let mut m2 = Map::new();
                m2.insert("kind".into(), "StaticSecret".into());
                m2.insert(
                    "value".into(),
                    m.get("value").cloned().unwrap_or(Value::Null),
                );
                Self::parse(&Value::Object(m2), at, val)
            }
            _ => Self::parse(v, at, val),
        }
    }
}

fn opt(s: &Option<String>) -> Value {
    s.clone().map(Value::String).unwrap_or(Value::Null)
}

/// Calls `f` on every secret leaf of a `secret_registry`-shaped JSON
/// (`{"secret_sources":{name: source}}`) or of a bare sources map: static
/// values and the secret-looking headers of lookup secrets.
pub fn walk_registry_secrets(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    let sources = match v.get_mut("secret_sources") {
        Some(s) => s,
        None => v,
    };
    let Some(map) = sources.as_object_mut() else {
        return;
    };
    for (_, source) in map.iter_mut() {
        let Some(obj) = source.as_object_mut() else {
            continue;
        };
        match obj.get("kind").and_then(Value::as_str) {
            Some("StaticSecret") => {
                if let Some(value) = obj.get_mut("value") {
                    f(value);
                }
            }
            Some("LookupSecret") => {
                if let Some(Value::Object(headers)) = obj.get_mut("headers") {
                    for (name, hv) in headers.iter_mut() {
                        if is_secret_key(name) {
                            f(hv);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Drops the secret-looking headers of lookup secrets (REST output).
pub fn drop_lookup_secret_headers(registry: &mut Value) {
    let sources = match registry.get_mut("secret_sources") {
        Some(s) => s,
        None => registry,
    };
    if let Some(map) = sources.as_object_mut() {
        for (_, source) in map.iter_mut() {
            if let Some(Value::Object(headers)) = source.get_mut("headers") {
                headers.retain(|name, _| !is_secret_key(name));
            }
        }
    }
}

/// The workspace: a local directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    /// As given by the client (relative paths resolve against the server's cwd).
    pub working_dir: String,
}

impl Workspace {
    /// `{"working_dir": …, "kind": "LocalWorkspace"}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"working_dir": self.working_dir, "kind": "LocalWorkspace"})
    }

    fn parse(v: &Value, at: &Path, val: &mut Validator) -> Option<Workspace> {
        let obj = val.model(v, at, "LocalWorkspace")?;
        if let Some(k) = obj.get("kind") {
            if k.as_str() != Some("LocalWorkspace") {
                val.error(
                    "assertion_error",
                    at,
                    "Assertion failed, ",
                    v,
                    Some(serde_json::json!({"error": ""})),
                );
                return None;
            }
        }
        let wd = val.required(obj, "working_dir", at)?;
        let working_dir = match wd {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => val.string(other, &at.key("working_dir"))?,
        };
        Some(Workspace { working_dir })
    }
}

/// The message roles a request may name.
const ROLES: [&str; 4] = ["user", "system", "assistant", "tool"];

/// `SendMessageRequest` (also `initial_message`).
#[derive(Clone, Debug, PartialEq)]
pub struct SendMessageRequest {
    /// `user` (the only role the server acts on), `system`, `assistant` or `tool`.
    pub role: String,
    /// Text and image parts.
    pub content: Vec<Content>,
    /// Start (or continue) the agent after appending.
    pub run: bool,
}

impl SendMessageRequest {
    /// Validates a message request at `at`.
    pub fn parse(v: &Value, at: &Path, val: &mut Validator) -> Option<SendMessageRequest> {
        let obj = val.model(v, at, "SendMessageRequest")?;
        let before = val.len();
        let role = match obj.get("role") {
            None => Some("user".to_string()),
            Some(r) => match r.as_str() {
                Some(s) if ROLES.contains(&s) => Some(s.to_string()),
                _ => {
                    val.literal_error(&at.key("role"), r, &ROLES);
                    None
                }
            },
        };
        let content = match obj.get("content") {
            None => Some(vec![]),
            Some(c) => parse_content_list(c, &at.key("content"), val),
        };
        let run = match obj.get("run") {
            None => Some(false),
            Some(b) => val.boolean(b, &at.key("run")),
        };
        if val.len() != before {
            return None;
        }
        Some(SendMessageRequest {
            role: role?,
            content: content?,
            run: run?,
        })
    }

    /// The JSON form (`role`, `content`, `run`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({"role": self.role, "content": self.content, "run": self.run})
    }

    /// Parses a whole request body.
    pub fn from_body(body: &Value) -> Parsed<SendMessageRequest> {
        let mut val = Validator::new();
        let out = SendMessageRequest::parse(body, &Path::root("body"), &mut val);
        finish(val, out)
    }
}

fn parse_content_list(v: &Value, at: &Path, val: &mut Validator) -> Option<Vec<Content>> {
    let items = val.list(v, at)?;
    let before = val.len();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(c) = parse_content(item, &at.index(i), val) {
            out.push(c);
        }
    }
    (val.len() == before).then_some(out)
}

/// One `TextContent | ImageContent`, with pydantic's union error report.
pub fn parse_content(v: &Value, at: &Path, val: &mut Validator) -> Option<Content> {
    let text_at = at.key("TextContent");
    let image_at = at.key("ImageContent");
    let Value::Object(obj) = v else {
        val.model(v, &text_at, "TextContent");
        val.model(v, &image_at, "ImageContent");
        return None;
    };
    let cache_prompt = obj
        .get("cache_prompt")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ty = obj.get("type");
    let mut text_errs = Validator::new();
    let text = {
        if let Some(t) = ty {
            if t.as_str() != Some("text") {
                text_errs.literal_error(&text_at.key("type"), t, &["text"]);
            }
        }
        let text = text_errs
            .required(obj, "text", &text_at)
            .and_then(|t| text_errs.string(t, &text_at.key("text")));
        forbid_extras(
            obj,
            &["type", "text", "cache_prompt", "enable_truncation"],
            &text_at,
            &mut text_errs,
        );
        text.filter(|_| text_errs.is_ok())
    };
    if let Some(text) = text {
        return Some(Content::Text(TextContent { text, cache_prompt }));
    }
    let mut image_errs = Validator::new();
    let urls = {
        if let Some(t) = ty {
            if t.as_str() != Some("image") {
                image_errs.literal_error(&image_at.key("type"), t, &["image"]);
            }
        }
        let urls = image_errs
            .required(obj, "image_urls", &image_at)
            .and_then(|u| {
                let list = image_errs.list(u, &image_at.key("image_urls"))?;
                let mut out = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    if let Some(s) = image_errs.string(s, &image_at.key("image_urls").index(i)) {
                        out.push(s);
                    }
                }
                Some(out)
            });
        forbid_extras(
            obj,
            &["type", "image_urls", "cache_prompt"],
            &image_at,
            &mut image_errs,
        );
        urls.filter(|_| image_errs.is_ok())
    };
    if let Some(image_urls) = urls {
        return Some(Content::Image(ImageContent {
            image_urls,
            cache_prompt,
        }));
    }
    for e in text_errs
        .into_errors()
        .into_iter()
        .chain(image_errs.into_errors())
    {
        val_push(val, e);
    }
    None
}

/// Content models reject unknown keys (`extra="forbid"`).
fn forbid_extras(obj: &Map<String, Value>, allowed: &[&str], at: &Path, val: &mut Validator) {
    for (k, v) in obj {
        if !allowed.contains(&k.as_str()) {
            val.error(
                "extra_forbidden",
                &at.key(k),
                "Extra inputs are not permitted",
                v,
                None,
            );
        }
    }
}

fn val_push(val: &mut Validator, e: ValidationErrorItem) {
    let mut at = Path::default();
    for l in e.loc {
        at = match l {
            crate::api::validation::Loc::Key(k) => at.key(&k),
            crate::api::validation::Loc::Index(i) => at.index(i),
        };
    }
    val.error(&e.error_type, &at, e.msg, &e.input, e.ctx);
}

fn finish<T>(val: Validator, out: Option<T>) -> Parsed<T> {
    match out {
        Some(t) if val.is_ok() => Ok(t),
        _ => {
            let errs = val.into_errors();
            if errs.is_empty() {
                // A parser returned nothing without saying why: report the body.
                Err(vec![ValidationErrorItem::new(
                    "value_error",
                    crate::loc!["body"],
                    "Value error, invalid request",
                    Value::Null,
                    None,
                )])
            } else {
                Err(errs)
            }
        }
    }
}

/// A pydantic `dict[str, str]` of tags, with the tag rules.
fn parse_tags(v: &Value, at: &Path, val: &mut Validator) -> Option<Map<String, Value>> {
    if v.is_null() {
        return Some(Map::new());
    }
    let Some(obj) = v.as_object() else {
        val.dict(v, at);
        return None;
    };
    for (k, value) in obj {
        let key_ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !key_ok {
            val.value_error(
                at,
                v,
                &format!("Tag key '{k}' is invalid: keys must be lowercase alphanumeric only"),
            );
            return None;
        }
        if let Some(s) = value.as_str() {
            if s.chars().count() > 256 {
                val.value_error(
                    at,
                    v,
                    &format!("Tag value for '{k}' exceeds maximum length of 256 characters"),
                );
                return None;
            }
        }
    }
    let before = val.len();
    let mut out = Map::new();
    for (k, value) in obj {
        if let Some(s) = val.string(value, &at.key(k)) {
            out.insert(k.clone(), Value::String(s));
        }
    }
    (val.len() == before).then_some(out)
}

/// `StartConversationRequest` (api.md §4.2), validated.
#[derive(Clone, Debug, PartialEq)]
pub struct StartConversationRequest {
    /// The local working directory.
    pub workspace: Workspace,
    /// Create a git worktree (accepted; not implemented, see the report).
    pub worktree: bool,
    /// Worktree options (kept as given).
    pub worktree_options: Option<Value>,
    /// Client-chosen id (idempotent create).
    pub conversation_id: Option<Uuid>,
    /// An existing conversation that owns this one.
    pub parent_conversation_id: Option<Uuid>,
    /// When to ask before acting.
    pub confirmation_policy: ConfirmationPolicy,
    /// Risk analyzer.
    pub security_analyzer: Option<SecurityAnalyzer>,
    /// The first user message.
    pub initial_message: Option<SendMessageRequest>,
    /// Agent steps per run.
    pub max_iterations: u64,
    /// Stop runs that repeat themselves.
    pub stuck_detection: bool,
    /// Conversation secrets, in request order.
    pub secrets: Vec<(String, SecretSource)>,
    /// Secret values are our own ciphertext (`age:` strings).
    pub secrets_encrypted: bool,
    /// Tool name → Python module (client hint, persisted and echoed).
    pub tool_module_qualnames: Map<String, Value>,
    /// Client-executed tool specs.
    pub client_tools: Vec<Value>,
    /// Deployment additions (kept as given).
    pub agent_launch_additions: Option<Value>,
    /// Sub-agent definitions (kept as given).
    pub agent_definitions: Vec<Value>,
    /// Plugins (kept as given).
    pub plugins: Option<Vec<Value>>,
    /// Hook configuration (kept as given).
    pub hook_config: Option<Value>,
    /// Key/value tags.
    pub tags: Map<String, Value>,
    /// The deployment's user id.
    pub user_id: Option<String>,
    /// Trace metadata.
    pub observability_metadata: Map<String, Value>,
    /// Trace tags.
    pub observability_tags: Vec<String>,
    /// Trace span name.
    pub observability_span_name: String,
    /// Parent trace context.
    pub observability_parent_span_context: Option<String>,
    /// Generate a title from the first user message.
    pub autotitle: bool,
    /// LLM profile for titles.
    pub title_llm_profile: Option<String>,
    /// Custom title prompt.
    pub prompt: Option<String>,
    /// The agent.
    pub agent: Agent,
}

/// The names of the MCP servers of `mcp_config` that are not disabled,
/// in either shape (`{name: server}` or `{"mcpServers": {name: server}}`).
fn enabled_mcp_servers(mcp_config: &Map<String, Value>) -> Vec<&str> {
    let enabled =
        |server: &Value| server.is_object() && server.get("enabled") != Some(&Value::Bool(false));
    let mut names = Vec::new();
    for (name, server) in mcp_config {
        match server {
            Value::Object(inner) if name == "mcpServers" => names.extend(
                inner
                    .iter()
                    .filter(|(_, s)| enabled(s))
                    .map(|(n, _)| n.as_str()),
            ),
            _ if enabled(server) => names.push(name.as_str()),
            _ => {}
        }
    }
    names
}

/// The hook events of a `HookConfig` that have matchers, in either shape
/// (`{"pre_tool_use": [...]}` or the wrapped `{"hooks": {"PreToolUse": [...]}}`).
fn hooks_in_use(hooks: &Value) -> Vec<&str> {
    let events = hooks
        .get("hooks")
        .filter(|h| h.is_object())
        .unwrap_or(hooks);
    let Some(events) = events.as_object() else {
        return Vec::new();
    };
    events
        .iter()
        .filter(|(_, m)| match m {
            Value::Null => false,
            Value::Array(list) => !list.is_empty(),
            _ => true,
        })
        .map(|(name, _)| name.as_str())
        .collect()
}

/// The echoed input of a refusal: names only, since MCP `env`/`headers`
/// and a critic's `api_key` may hold secrets.
fn names_json(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| Value::String(n.to_string())).collect())
}

/// Refuses what this server would otherwise accept and silently not do:
/// enabled MCP servers, hook matchers and a critic (docs/decisions.md).
fn refuse_unsupported(agent: &Agent, hooks: Option<&Value>, at: &Path, val: &mut Validator) {
    let servers = enabled_mcp_servers(&agent.mcp_config);
    if !servers.is_empty() {
        val.value_error(
            &at.key("agent").key("mcp_config"),
            &names_json(&servers),
            &format!(
                "MCP servers are not supported by this server (enabled: {}); remove them or set `enabled: false`",
                servers.join(", ")
            ),
        );
    }
    if let Some(critic) = &agent.critic {
        val.value_error(
            &at.key("agent").key("critic"),
            &serde_json::json!({"kind": critic.get("kind").cloned().unwrap_or(Value::Null)}),
            "Critics are not supported by this server; leave `critic` null",
        );
    }
    if let Some(hooks) = hooks {
        let used = hooks_in_use(hooks);
        if !used.is_empty() {
            val.value_error(
                &at.key("hook_config"),
                &names_json(&used),
                &format!(
                    "Hooks are not supported by this server (matchers for: {}); send `hook_config` null or empty",
                    used.join(", ")
                ),
            );
        }
    }
}

impl StartConversationRequest {
    /// Validates a start request body. Unknown keys are ignored.
    pub fn from_body(body: &Value) -> Parsed<StartConversationRequest> {
        let at = Path::root("body");
        let mut val = Validator::new();
        let out = Self::parse(body, &at, &mut val);
        finish(val, out)
    }

    fn parse(body: &Value, at: &Path, val: &mut Validator) -> Option<StartConversationRequest> {
        let Some(obj) = body.as_object() else {
            val.attributes(body, at);
            return None;
        };
        // Model "before" validator: agent sources are mutually exclusive.
        let present = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
        if present("agent_profile_id") {
            let others: Vec<&str> = ["agent", "agent_settings"]
                .into_iter()
                .filter(|k| present(k))
                .collect();
            if !others.is_empty() {
                let names: Vec<String> = others.iter().map(|n| format!("`{n}`")).collect();
                val.value_error(
                    at,
                    body,
                    &format!(
                        "`agent_profile_id` is mutually exclusive with {}",
                        names.join(", ")
                    ),
                );
                return None;
            }
        }
        let before = val.len();
        let field = |k: &str| obj.get(k);
        let workspace = match field("workspace") {
            None => {
                val.missing(&at.key("workspace"), body);
                None
            }
            Some(w) => Workspace::parse(w, &at.key("workspace"), val),
        };
        let worktree =
            field("worktree").map_or(Some(false), |b| val.boolean(b, &at.key("worktree")));
        let worktree_options = field("worktree_options").filter(|v| !v.is_null()).cloned();
        let conversation_id = match field("conversation_id") {
            None | Some(Value::Null) => Some(None),
            Some(u) => val.uuid(u, &at.key("conversation_id")).map(Some),
        };
        let parent_conversation_id = match field("parent_conversation_id") {
            None | Some(Value::Null) => Some(None),
            Some(u) => val.uuid(u, &at.key("parent_conversation_id")).map(Some),
        };
        let confirmation_policy = match field("confirmation_policy") {
            None => Some(ConfirmationPolicy::NeverConfirm),
            Some(p) => ConfirmationPolicy::parse(p, &at.key("confirmation_policy"), val),
        };
        let security_analyzer = match field("security_analyzer") {
            None | Some(Value::Null) => Some(None),
            Some(s) => SecurityAnalyzer::parse(s, &at.key("security_analyzer"), val).map(Some),
        };
        let initial_message = match field("initial_message") {
            None | Some(Value::Null) => Some(None),
            Some(m) => SendMessageRequest::parse(m, &at.key("initial_message"), val).map(Some),
        };
        let max_iterations = match field("max_iterations") {
            None => Some(500),
            Some(n) => val
                .integer(n, &at.key("max_iterations"))
                .filter(|i| val.check_ge(*i, 1, n, &at.key("max_iterations")))
                .map(|i| i as u64),
        };
        let stuck_detection = field("stuck_detection")
            .map_or(Some(true), |b| val.boolean(b, &at.key("stuck_detection")));
        let secrets = match field("secrets") {
            None | Some(Value::Null) => Some(vec![]),
            Some(s) => {
                let sat = at.key("secrets");
                val.dict(s, &sat).map(|m| {
                    m.iter()
                        .filter_map(|(name, src)| {
                            SecretSource::parse(src, &sat.key(name), val).map(|s| (name.clone(), s))
                        })
                        .collect::<Vec<_>>()
                })
            }
        };
        let secrets_encrypted = field("secrets_encrypted").map_or(Some(false), |b| {
            val.boolean(b, &at.key("secrets_encrypted"))
        });
        let tool_module_qualnames = match field("tool_module_qualnames") {
            None | Some(Value::Null) => Some(Map::new()),
            Some(m) => {
                let qat = at.key("tool_module_qualnames");
                val.dict(m, &qat).cloned().and_then(|m| {
                    let before = val.len();
                    for (k, v) in &m {
                        val.string(v, &qat.key(k));
                    }
                    (val.len() == before).then_some(m)
                })
            }
        };
        let client_tools = match field("client_tools") {
            None | Some(Value::Null) => Some(vec![]),
            Some(l) => parse_client_tools(l, &at.key("client_tools"), val),
        };
        let agent_launch_additions = field("agent_launch_additions")
            .filter(|v| !v.is_null())
            .cloned();
        let agent_definitions = match field("agent_definitions") {
            None | Some(Value::Null) => Some(vec![]),
            Some(l) => val.list(l, &at.key("agent_definitions")).cloned(),
        };
        let plugins = match field("plugins") {
            None | Some(Value::Null) => Some(None),
            Some(l) => val.list(l, &at.key("plugins")).cloned().map(Some),
        };
        let hook_config = match field("hook_config") {
            None | Some(Value::Null) => Some(None),
            Some(h) => val
                .model(h, &at.key("hook_config"), "HookConfig")
                .cloned()
                .map(|m| Some(Value::Object(m))),
        };
        let tags = match field("tags") {
            None => Some(Map::new()),
            Some(t) => parse_tags(t, &at.key("tags"), val),
        };
        let user_id = match field("user_id") {
            None => Some(None),
            Some(u) => val.opt_string(u, &at.key("user_id")),
        };
        let observability_metadata = match field("observability_metadata") {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            Some(other) => {
                val.value_error(
                    &at.key("observability_metadata"),
                    other,
                    "Observability metadata must be a dictionary",
                );
                None
            }
        };
        let observability_tags = match field("observability_tags") {
            None | Some(Value::Null) => Some(vec![]),
            Some(Value::Array(a))
                if a.iter().all(|t| t.as_str().is_some_and(|s| !s.is_empty())) =>
            {
                Some(
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect(),
                )
            }
            Some(Value::Array(a)) => {
                val.value_error(
                    &at.key("observability_tags"),
                    &Value::Array(a.clone()),
                    "Observability tags must be non-empty strings",
                );
                None
            }
            Some(other) => {
                val.value_error(
                    &at.key("observability_tags"),
                    other,
                    "Observability tags must be a list",
                );
                None
            }
        };
        let observability_span_name = match field("observability_span_name") {
            None | Some(Value::Null) => Some("conversation".to_string()),
            Some(v) => check_span_name(v, &at.key("observability_span_name"), val),
        };
        let observability_parent_span_context = match field("observability_parent_span_context") {
            None => Some(None),
            Some(v) => val.opt_string(v, &at.key("observability_parent_span_context")),
        };
        let autotitle =
            field("autotitle").map_or(Some(true), |b| val.boolean(b, &at.key("autotitle")));
        let title_llm_profile = match field("title_llm_profile") {
            None => Some(None),
            Some(v) => val.opt_string(v, &at.key("title_llm_profile")),
        };
        let prompt = match field("prompt") {
            None | Some(Value::Null) => Some(None),
            Some(v) => val
                .string(v, &at.key("prompt"))
                .filter(|s| val.check_len(s, None, Some(2000), v, &at.key("prompt")))
                .map(Some),
        };
        if let Some(id) = field("agent_profile_id").filter(|v| !v.is_null()) {
            val.uuid(id, &at.key("agent_profile_id"));
        }
        if let Some(s) = field("agent_settings").filter(|v| !v.is_null()) {
            val.dict(s, &at.key("agent_settings"));
        }
        let agent = match field("agent") {
            None | Some(Value::Null) => None,
            Some(a) => Agent::parse(a, &at.key("agent"), val),
        };
        if let Some(rt) = field("conversation_runtime").filter(|v| !v.is_null()) {
            if !matches!(rt.as_str(), Some("local") | Some("docker")) {
                val.literal_error(&at.key("conversation_runtime"), rt, &["local", "docker"]);
            }
        }
        if val.len() != before {
            return None;
        }
        // Model "after" validator: one agent source is required.
        let Some(agent) = agent else {
            if present("agent_settings") || present("agent_profile_id") {
                val.value_error(
                    at,
                    body,
                    "This server only accepts an inline `agent`; `agent_settings` and `agent_profile_id` are not supported",
                );
            } else {
                val.value_error(
                    at,
                    body,
                    "One of `agent`, `agent_settings`, or `agent_profile_id` must be provided",
                );
            }
            return None;
        };
        refuse_unsupported(
            &agent,
            hook_config.as_ref().and_then(Option::as_ref),
            at,
            val,
        );
        if val.len() != before {
            return None;
        }
        Some(StartConversationRequest {
            workspace: workspace?,
            worktree: worktree?,
            worktree_options,
            conversation_id: conversation_id?,
            parent_conversation_id: parent_conversation_id?,
            confirmation_policy: confirmation_policy?,
            security_analyzer: security_analyzer?,
            initial_message: initial_message?,
            max_iterations: max_iterations?,
            stuck_detection: stuck_detection?,
            secrets: secrets?,
            secrets_encrypted: secrets_encrypted?,
            tool_module_qualnames: tool_module_qualnames?,
            client_tools: client_tools?,
            agent_launch_additions,
            agent_definitions: agent_definitions?,
            plugins: plugins?,
            hook_config: hook_config?,
            tags: tags?,
            user_id: user_id?,
            observability_metadata: observability_metadata?,
            observability_tags: observability_tags?,
            observability_span_name: observability_span_name?,
            observability_parent_span_context: observability_parent_span_context?,
            autotitle: autotitle?,
            title_llm_profile: title_llm_profile?,
            prompt: prompt?,
            agent,
        })
    }

    /// Whether the request asks for a runtime other than the local one.
    pub fn wants_foreign_runtime(body: &Value) -> bool {
        matches!(body.get("conversation_runtime").and_then(Value::as_str), Some(rt) if rt != "local")
    }
}

fn check_span_name(v: &Value, at: &Path, val: &mut Validator) -> Option<String> {
    let Some(s) = v.as_str().filter(|s| !s.is_empty()) else {
        val.value_error(at, v, "Observability span name must be a non-empty string");
        return None;
    };
    if s.chars().count() > 128 {
        val.value_error(
            at,
            v,
            "Observability span name exceeds maximum length of 128 characters",
        );
        return None;
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
    {
        val.value_error(
            at,
            v,
            "Observability span name may only contain letters, numbers, dots, underscores, colons, slashes, and hyphens",
        );
        return None;
    }
    Some(s.to_string())
}

fn parse_client_tools(v: &Value, at: &Path, val: &mut Validator) -> Option<Vec<Value>> {
    let items = val.list(v, at)?;
    let before = val.len();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = at.index(i);
        let Some(obj) = val.model(item, &here, "ClientToolSpec") else {
            continue;
        };
        let name = val
            .required(obj, "name", &here)
            .and_then(|n| val.string(n, &here.key("name")));
        let description = val
            .required(obj, "description", &here)
            .and_then(|d| val.string(d, &here.key("description")));
        let parameters = match obj.get("parameters") {
            None => Some(serde_json::json!({"type":"object","properties":{}})),
            Some(p) => val
                .dict(p, &here.key("parameters"))
                .map(|m| Value::Object(m.clone())),
        };
        if let (Some(name), Some(description), Some(parameters)) = (name, description, parameters) {
            let mut m = Map::new();
            m.insert("name".into(), name.into());
            m.insert("description".into(), description.into());
            m.insert("parameters".into(), parameters);
            m.insert(
                "annotations".into(),
                obj.get("annotations").cloned().unwrap_or(Value::Null),
            );
            out.push(Value::Object(m));
        }
    }
    (val.len() == before).then_some(out)
}

/// `UpdateConversationRequest` (PATCH): title and/or tags.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct UpdateConversationRequest {
    /// New title, stripped; 1..=200 characters.
    pub title: Option<String>,
    /// Replaces all tags when given.
    pub tags: Option<Map<String, Value>>,
}

impl UpdateConversationRequest {
    /// Validates a PATCH body.
    pub fn from_body(body: &Value) -> Parsed<UpdateConversationRequest> {
        let at = Path::root("body");
        let mut val = Validator::new();
        let out = (|| {
            let obj = val.model(body, &at, "UpdateConversationRequest")?;
            let before = val.len();
            let title = match obj.get("title") {
                None | Some(Value::Null) => Some(None),
                Some(t) => {
                    let tat = at.key("title");
                    val.string(t, &tat)
                        .filter(|s| val.check_len(s, Some(1), Some(200), t, &tat))
                        .and_then(|s| {
                            if s.trim().is_empty() {
                                val.value_error(&tat, t, "title must not be blank");
                                None
                            } else {
                                Some(Some(s.trim().to_string()))
                            }
                        })
                }
            };
            let tags = match obj.get("tags") {
                None | Some(Value::Null) => Some(None),
                Some(t) => parse_tags(t, &at.key("tags"), &mut val).map(Some),
            };
            if val.len() != before {
                return None;
            }
            Some(UpdateConversationRequest {
                title: title?,
                tags: tags?,
            })
        })();
        finish(val, out)
    }
}

/// `ConfirmationResponseRequest`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfirmationResponseRequest {
    /// Accept (run) or reject the pending actions.
    pub accept: bool,
    /// The rejection reason shown to the model.
    pub reason: String,
}

impl ConfirmationResponseRequest {
    /// Validates the body.
    pub fn from_body(body: &Value) -> Parsed<ConfirmationResponseRequest> {
        let at = Path::root("body");
        let mut val = Validator::new();
        let out = (|| {
            let obj = val.model(body, &at, "ConfirmationResponseRequest")?;
            let accept = val
                .required(obj, "accept", &at)
                .and_then(|a| val.boolean(a, &at.key("accept")));
            let reason = match obj.get("reason") {
                None => Some("User rejected the action.".to_string()),
                Some(r) => val.string(r, &at.key("reason")),
            };
            Some(ConfirmationResponseRequest {
                accept: accept?,
                reason: reason?,
            })
        })();
        finish(val, out)
    }
}

/// `UpdateSecretsRequest`: secrets to add or overwrite.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateSecretsRequest {
    /// In request order.
    pub secrets: Vec<(String, SecretSource)>,
}

impl UpdateSecretsRequest {
    /// Validates the body (plain strings and `{"value":…}` are static secrets).
    pub fn from_body(body: &Value) -> Parsed<UpdateSecretsRequest> {
        let at = Path::root("body");
        let mut val = Validator::new();
        let out = (|| {
            let obj = val.model(body, &at, "UpdateSecretsRequest")?;
            let sat = at.key("secrets");
            let map = val.required(obj, "secrets", &at)?;
            let map = val.dict(map, &sat)?;
            let before = val.len();
            let secrets: Vec<(String, SecretSource)> = map
                .iter()
                .filter_map(|(k, v)| {
                    SecretSource::parse_lenient(v, &sat.key(k), &mut val).map(|s| (k.clone(), s))
                })
                .collect();
            (val.len() == before).then_some(UpdateSecretsRequest { secrets })
        })();
        finish(val, out)
    }
}

/// `SetConfirmationPolicyRequest`.
#[derive(Clone, Debug, PartialEq)]
pub struct SetConfirmationPolicyRequest {
    /// The new policy.
    pub policy: ConfirmationPolicy,
}

impl SetConfirmationPolicyRequest {
    /// Validates the body.
    pub fn from_body(body: &Value) -> Parsed<SetConfirmationPolicyRequest> {
        let at = Path::root("body");
        let mut val = Validator::new();
        let out = (|| {
            let obj = val.model(body, &at, "SetConfirmationPolicyRequest")?;
            let p = val.required(obj, "policy", &at)?;
            ConfirmationPolicy::parse(p, &at.key("policy"), &mut val)
                .map(|policy| SetConfirmationPolicyRequest { policy })
        })();
        finish(val, out)
    }
}

/// `SetSecurityAnalyzerRequest` (the key is required; null clears).
#[derive(Clone, Debug, PartialEq)]
pub struct SetSecurityAnalyzerRequest {
    /// The new analyzer, or none.
    pub security_analyzer: Option<SecurityAnalyzer>,
}

impl SetSecurityAnalyzerRequest {
    /// Validates the body.
    pub fn from_body(body: &Value) -> Parsed<SetSecurityAnalyzerRequest> {
        let at = Path::root("body");
        let mut val = Validator::new();
        let out = (|| {
            let obj = val.model(body, &at, "SetSecurityAnalyzerRequest")?;
            let a = val.required(obj, "security_analyzer", &at)?;
            if a.is_null() {
                return Some(SetSecurityAnalyzerRequest {
                    security_analyzer: None,
                });
            }
            SecurityAnalyzer::parse(a, &at.key("security_analyzer"), &mut val).map(|s| {
                SetSecurityAnalyzerRequest {
                    security_analyzer: Some(s),
                }
            })
        })();
        finish(val, out)
    }
}

/// `AskAgentRequest`.
#[derive(Clone, Debug, PartialEq)]
pub struct AskAgentRequest {
    /// The out-of-band question.
    pub question: String,
}

impl AskAgentRequest {
    /// Validates the body.
    pub fn from_body(body: &Value) -> Parsed<AskAgentRequest> {
        let at = Path::root("body");
        let mut val = Validator::new();
        let out = (|| {
            let obj = val.model(body, &at, "AskAgentRequest")?;
            let q = val.required(obj, "question", &at)?;
            val.string(q, &at.key("question"))
                .map(|question| AskAgentRequest { question })
        })();
        finish(val, out)
    }
}

/// `AskAgentResponse`: `{"response": …}`.
pub fn ask_agent_response(response: &str) -> Value {
    serde_json::json!({ "response": response })
}

/// `GenerateTitleRequest` (served per DECISIONS.md).
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateTitleRequest {
    /// Longest title in characters.
    pub max_length: u64,
    /// An LLM to use instead of the agent's.
    pub llm: Option<LlmConfig>,
}

impl GenerateTitleRequest {
    /// Validates the body (an empty body takes the defaults).
    pub fn from_body(body: Option<&Value>) -> Parsed<GenerateTitleRequest> {
        let at = Path::root("body");
        let mut val = Validator::new();
        let empty = Value::Object(Map::new());
        let body = body.unwrap_or(&empty);
        let out = (|| {
            let obj = val.model(body, &at, "GenerateTitleRequest")?;
            let before = val.len();
            let max_length = match obj.get("max_length") {
                None => Some(50),
                Some(n) => val
                    .integer(n, &at.key("max_length"))
                    .filter(|i| val.check_ge(*i, 1, n, &at.key("max_length")))
                    .map(|i| i as u64),
            };
            let llm = match obj.get("llm") {
                None | Some(Value::Null) => Some(None),
                Some(l) => parse_llm(l, &at.key("llm"), &mut val).map(Some),
            };
            if val.len() != before {
                return None;
            }
            Some(GenerateTitleRequest {
                max_length: max_length?,
                llm: llm?,
            })
        })();
        finish(val, out)
    }
}

/// The sort orders of conversation search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConversationSortOrder {
    /// Oldest first.
    CreatedAt,
    /// Least recently updated first.
    UpdatedAt,
    /// Newest first (the default).
    #[default]
    CreatedAtDesc,
    /// Most recently updated first.
    UpdatedAtDesc,
}

const CONV_SORTS: [&str; 4] = [
    "CREATED_AT",
    "UPDATED_AT",
    "CREATED_AT_DESC",
    "UPDATED_AT_DESC",
];

/// The sort orders of event search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EventSortOrder {
    /// Log order.
    #[default]
    Timestamp,
    /// Reverse log order.
    TimestampDesc,
}

/// Query parameters as received: repeated keys kept, in order.
pub type QueryPairs = [(String, String)];

fn query_get<'a>(q: &'a QueryPairs, key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn query_limit(q: &QueryPairs, val: &mut Validator) -> Option<usize> {
    let at = Path::root("query").key("limit");
    match query_get(q, "limit") {
        None => Some(100),
        Some(s) => {
            let v = Value::String(s.to_string());
            val.integer(&v, &at)
                .filter(|n| val.check_gt(*n, 0, &v, &at) && val.check_le(*n, 100, &v, &at))
                .map(|n| n as usize)
        }
    }
}

fn query_bool(q: &QueryPairs, key: &str, val: &mut Validator) -> Option<bool> {
    match query_get(q, key) {
        None => Some(false),
        Some(s) => val.boolean(&Value::String(s.into()), &Path::root("query").key(key)),
    }
}

fn query_status(q: &QueryPairs, val: &mut Validator) -> Option<Option<ExecutionStatus>> {
    match query_get(q, "status") {
        None => Some(None),
        Some(s) => match ExecutionStatus::from_wire(s) {
            Some(st) => Some(Some(st)),
            None => {
                val.enum_error(
                    &Path::root("query").key("status"),
                    &Value::String(s.into()),
                    &ExecutionStatus::wire_values(),
                );
                None
            }
        },
    }
}

/// Query of `GET /api/conversations/search`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ConversationSearchQuery {
    /// Hex id of the first item of the page.
    pub page_id: Option<String>,
    /// 1..=100.
    pub limit: usize,
    /// Status filter.
    pub status: Option<ExecutionStatus>,
    /// Ordering.
    pub sort_order: ConversationSortOrder,
    /// Keep `agent.agent_context.skills`.
    pub include_skills: bool,
}

impl ConversationSearchQuery {
    /// Validates the query.
    pub fn from_query(q: &QueryPairs) -> Parsed<ConversationSearchQuery> {
        let mut val = Validator::new();
        let limit = query_limit(q, &mut val);
        let status = query_status(q, &mut val);
        let sort_order = match query_get(q, "sort_order") {
            None => Some(ConversationSortOrder::default()),
            Some(s) => match s {
                "CREATED_AT" => Some(ConversationSortOrder::CreatedAt),
                "UPDATED_AT" => Some(ConversationSortOrder::UpdatedAt),
                "CREATED_AT_DESC" => Some(ConversationSortOrder::CreatedAtDesc),
                "UPDATED_AT_DESC" => Some(ConversationSortOrder::UpdatedAtDesc),
                _ => {
                    val.enum_error(
                        &Path::root("query").key("sort_order"),
                        &Value::String(s.into()),
                        &CONV_SORTS,
                    );
                    None
                }
            },
        };
        let include_skills = query_bool(q, "include_skills", &mut val);
        let out = (|| {
            Some(ConversationSearchQuery {
                page_id: query_get(q, "page_id").map(String::from),
                limit: limit?,
                status: status?,
                sort_order: sort_order?,
                include_skills: include_skills?,
            })
        })();
        finish(val, out)
    }
}

/// Query of `GET /api/conversations/count`: the optional status filter.
pub fn parse_count_query(q: &QueryPairs) -> Parsed<Option<ExecutionStatus>> {
    let mut val = Validator::new();
    let s = query_status(q, &mut val);
    finish(val, s)
}

/// The `include_skills` query flag of the conversation routes.
pub fn parse_include_skills(q: &QueryPairs) -> Parsed<bool> {
    let mut val = Validator::new();
    let b = query_bool(q, "include_skills", &mut val);
    finish(val, b)
}

/// Filters of event search and count.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EventFilter {
    /// Class name or fully-qualified Python name.
    pub kind: Option<String>,
    /// `agent`, `user`, `environment`, `hook` (any string accepted).
    pub source: Option<String>,
    /// Case-insensitive substring of message text.
    pub body: Option<String>,
    /// Inclusive lower bound, UTC microseconds.
    pub timestamp_gte: Option<i64>,
    /// Exclusive upper bound, UTC microseconds.
    pub timestamp_lt: Option<i64>,
}

/// Query of `GET …/events/search`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EventSearchQuery {
    /// Id of the first event of the page.
    pub page_id: Option<String>,
    /// 1..=100.
    pub limit: usize,
    /// Ordering.
    pub sort_order: EventSortOrder,
    /// Filters.
    pub filter: EventFilter,
}

fn parse_event_filter(q: &QueryPairs, val: &mut Validator) -> Option<EventFilter> {
    let ts = |val: &mut Validator, key: &str| -> Option<Option<i64>> {
        match query_get(q, key) {
            None => Some(None),
            Some(s) => match crate::util::time::parse_client_timestamp(s) {
                Some(t) => Some(Some(t.as_microsecond())),
                None => {
                    val.error(
                        "datetime_from_date_parsing",
                        &Path::root("query").key(key),
                        "Input should be a valid datetime or date, invalid character in year",
                        &Value::String(s.into()),
                        Some(serde_json::json!({"error": "invalid character in year"})),
                    );
                    None
                }
            },
        }
    };
    let gte = ts(val, "timestamp__gte");
    let lt = ts(val, "timestamp__lt");
    Some(EventFilter {
        kind: query_get(q, "kind").map(String::from),
        source: query_get(q, "source").map(String::from),
        body: query_get(q, "body").map(String::from),
        timestamp_gte: gte?,
        timestamp_lt: lt?,
    })
}

impl EventSearchQuery {
    /// Validates the query.
    pub fn from_query(q: &QueryPairs) -> Parsed<EventSearchQuery> {
        let mut val = Validator::new();
        let limit = query_limit(q, &mut val);
        let sort_order = match query_get(q, "sort_order") {
            None => Some(EventSortOrder::Timestamp),
            Some("TIMESTAMP") => Some(EventSortOrder::Timestamp),
            Some("TIMESTAMP_DESC") => Some(EventSortOrder::TimestampDesc),
            Some(s) => {
                val.enum_error(
                    &Path::root("query").key("sort_order"),
                    &Value::String(s.into()),
                    &["TIMESTAMP", "TIMESTAMP_DESC"],
                );
                None
            }
        };
        let filter = parse_event_filter(q, &mut val);
        let out = (|| {
            Some(EventSearchQuery {
                page_id: query_get(q, "page_id").map(String::from),
                limit: limit?,
                sort_order: sort_order?,
                filter: filter?,
            })
        })();
        finish(val, out)
    }
}

/// Query of `GET …/events/count`.
pub fn parse_event_count_query(q: &QueryPairs) -> Parsed<EventFilter> {
    let mut val = Validator::new();
    let f = parse_event_filter(q, &mut val);
    finish(val, f)
}

/// The ids of a batch get: `?{key}=a&{key}=b` wins over a JSON array body.
/// `loc_key` names the query parameter in the `missing` error.
pub fn parse_batch_ids(
    q: &QueryPairs,
    key: &str,
    body: Option<&Value>,
    max: Option<usize>,
) -> Parsed<Vec<String>> {
    let from_query: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect();
    let mut val = Validator::new();
    let ids = if !from_query.is_empty() {
        Some(from_query)
    } else {
        match body {
            Some(v) => {
                let at = Path::root("body");
                val.list(v, &at).map(|items| {
                    items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, s)| val.string(s, &at.index(i)))
                        .collect::<Vec<_>>()
                })
            }
            None => {
                val.missing(&Path::root("query").key(key), &Value::Null);
                None
            }
        }
    };
    if let (Some(ids), Some(max)) = (&ids, max) {
        if ids.len() > max {
            val.error(
                "too_long",
                &Path::root("query").key(key),
                format!("List should have at most {max} items after validation, not {}", ids.len()),
                &Value::Array(ids.iter().cloned().map(Value::String).collect()),
                Some(serde_json::json!({"field_type": "List", "max_length": max, "actual_length": ids.len()})),
            );
        }
    }
    finish(val, ids)
}

/// What a client sent on the event socket.
#[derive(Clone, Debug, PartialEq)]
pub enum SocketFrame {
    /// An auth control frame after authentication: ignored.
    Auth,
    /// A message to append and run (like `POST …/events` with `run: true`).
    Message(SendMessageRequest),
}

/// Reads a text frame of the event socket. Errors are `(code, detail)` for
/// the `ServerErrorEvent` sent back: `JSONDecodeError` with Python's
/// `json` wording, or `ValidationError` with pydantic's summary.
pub fn parse_socket_frame(text: &str) -> Result<SocketFrame, (String, String)> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ("JSONDecodeError".to_string(), python_json_error(text, &e)))?;
    if let Value::Object(m) = &v {
        if m.get("type").and_then(Value::as_str) == Some("auth")
            && m.keys().all(|k| k == "type" || k == "session_api_key")
        {
            return Ok(SocketFrame::Auth);
        }
    }
    let mut val = Validator::new();
    let at = Path::default();
    let msg = (|| {
        let Some(obj) = v.as_object() else {
            val.model(&v, &at, "Message");
            return None;
        };
        let role = match val.required(obj, "role", &at) {
            Some(r) => match r.as_str() {
                Some(s) if ROLES.contains(&s) => Some(s.to_string()),
                _ => {
                    val.literal_error(&at.key("role"), r, &ROLES);
                    None
                }
            },
            None => None,
        };
        let content = match obj.get("content") {
            None | Some(Value::Null) => Some(vec![]),
            Some(Value::String(s)) => Some(vec![Content::text(s.clone())]),
            Some(c) => parse_content_list(c, &at.key("content"), &mut val),
        };
        Some(SendMessageRequest {
            role: role?,
            content: content?,
            run: true,
        })
    })();
    match msg {
        Some(m) if val.is_ok() => Ok(SocketFrame::Message(m)),
        _ => Err((
            "ValidationError".to_string(),
            pydantic_summary("Message", &val.into_errors()),
        )),
    }
}

/// `N validation error(s) for Model` followed by each location and message,
/// as pydantic prints a `ValidationError`.
fn pydantic_summary(model: &str, errors: &[ValidationErrorItem]) -> String {
    let n = errors.len();
    let mut out = format!(
        "{n} validation error{} for {model}",
        if n == 1 { "" } else { "s" }
    );
    for e in errors {
        let loc: Vec<String> = e
            .loc
            .iter()
            .map(|l| match l {
                crate::api::validation::Loc::Key(k) => k.clone(),
                crate::api::validation::Loc::Index(i) => i.to_string(),
            })
            .collect();
        out.push('\n');
        out.push_str(&loc.join("."));
        out.push_str(&format!("\n  {} [type={}]", e.msg, e.error_type));
    }
    out
}

/// Python's `json.JSONDecodeError` text: `Expecting value: line 1 column 1 (char 0)`.
fn python_json_error(text: &str, e: &serde_json::Error) -> String {
    let s = e.to_string();
    let msg = s.split(" at line ").next().unwrap_or_default();
    let python = match msg {
        "key must be a string" => "Expecting property name enclosed in double quotes",
        "expected `:`" => "Expecting ':' delimiter",
        "trailing characters" => "Extra data",
        "EOF while parsing a string" => "Unterminated string starting at",
        m if m.starts_with("expected `,` or")
            || m.starts_with("EOF while parsing a list")
            || m.starts_with("EOF while parsing an object") =>
        {
            "Expecting ',' delimiter"
        }
        _ => "Expecting value",
    };
    let (line, column) = if e.is_eof() {
        let lines = text.split('\n').count().max(1);
        let last = text.rsplit('\n').next().unwrap_or("");
        (lines, last.chars().count() + 1)
    } else {
        (e.line().max(1), e.column().max(1))
    };
    let mut pos = char_position(text, line, column);
    let mut column = column;
    if msg == "expected ident" {
        // serde stops inside a misspelt literal (`nul x`); Python points at its start.
        let chars: Vec<char> = text.chars().collect();
        while pos > 0 && column > 1 && chars.get(pos - 1).is_some_and(|c| c.is_ascii_alphabetic()) {
            pos -= 1;
            column -= 1;
        }
    }
    format!("{python}: line {line} column {column} (char {pos})")
}

/// serde_json reports 1-based line/column of the offending character; Python
/// reports the 0-based character offset.
fn char_position(text: &str, line: usize, column: usize) -> usize {
    let mut pos = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return pos + column.saturating_sub(1).min(l.chars().count());
        }
        pos += l.chars().count();
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(body: Value) -> Value {
        serde_json::to_value(StartConversationRequest::from_body(&body).unwrap_err()).unwrap()
    }

    #[test]
    fn policies_round_trip_and_accept_the_npm_form() {
        let mut val = Validator::new();
        let at = Path::root("body").key("policy");
        let p = ConfirmationPolicy::parse(&json!({"type":"risky"}), &at, &mut val).unwrap();
        assert_eq!(
            p.to_json(),
            json!({"threshold":"HIGH","confirm_unknown":true,"kind":"ConfirmRisky"})
        );
        assert_eq!(
            ConfirmationPolicy::parse(&json!({"type":"always"}), &at, &mut val),
            Some(ConfirmationPolicy::AlwaysConfirm)
        );
        assert!(p.should_confirm(SecurityRisk::High));
        assert!(!p.should_confirm(SecurityRisk::Medium));
        assert!(p.should_confirm(SecurityRisk::Unknown));
        assert!(val.is_ok());
        let errs = SetConfirmationPolicyRequest::from_body(
            &json!({"policy":{"kind":"ConfirmRisky","threshold":"UNKNOWN"}}),
        )
        .unwrap_err();
        assert_eq!(errs[0].msg, "Value error, Threshold cannot be UNKNOWN");
    }

    #[test]
    fn start_request_errors_match_the_transcripts() {
        assert_eq!(
            errors_of(json!({})),
            json!([{"type":"missing","loc":["body","workspace"],"msg":"Field required","input":{}}])
        );
        let errs = errors_of(json!({"workspace":{"working_dir":"/tmp/anchor-ws/work"}}));
        assert_eq!(
            errs[0]["msg"],
            "Value error, One of `agent`, `agent_settings`, or `agent_profile_id` must be provided"
        );
        assert_eq!(errs[0]["loc"], json!(["body"]));
        let errs = errors_of(
            json!({"workspace":{"working_dir":"/w"},"agent":{"llm":{"model":"m"}},"secrets":{"PLAIN_SECRET":"plain-string-secret"}}),
        );
        assert_eq!(
            errs,
            json!([{"type":"model_attributes_type","loc":["body","secrets","PLAIN_SECRET"],"msg":"Input should be a valid dictionary or object to extract fields from","input":"plain-string-secret"}])
        );
        let errs = errors_of(
            json!({"workspace":{"working_dir":"/w"},"agent":{"llm":{"model":"m","api_key":"sk-SECRET"},"tools":"x"}}),
        );
        assert_eq!(
            errs,
            json!([{"type":"list_type","loc":["body","agent","tools"],"msg":"Input should be a valid list","input":"x"}])
        );
    }

    #[test]
    fn start_request_fills_defaults() {
        let r = StartConversationRequest::from_body(&json!({"workspace":{"working_dir":"w"},
            "agent":{"llm":{"model":"m"}},"initial_message":{"content":[{"type":"text","text":"hi"}]},
            "secrets":{"T":{"kind":"StaticSecret","value":"v"}}}))
        .unwrap();
        assert_eq!(r.max_iterations, 500);
        assert!(r.stuck_detection && r.autotitle);
        assert_eq!(r.confirmation_policy, ConfirmationPolicy::NeverConfirm);
        let m = r.initial_message.unwrap();
        assert_eq!(m.role, "user");
        assert!(!m.run);
        assert_eq!(r.secrets[0].1, SecretSource::new_static("v"));
    }

    #[test]
    fn unsupported_features_are_refused_and_empty_ones_accepted() {
        let start = |extra: Value| {
            let mut body = json!({"workspace":{"working_dir":"w"},"agent":{"llm":{"model":"m"}}});
            for (k, v) in extra.as_object().unwrap() {
                match k.as_str() {
                    "hook_config" => body[k] = v.clone(),
                    _ => body["agent"][k] = v.clone(),
                }
            }
            StartConversationRequest::from_body(&body)
        };
        for ok in [
            json!({"mcp_config": {}, "critic": null, "hook_config": null}),
            json!({"mcp_config": {"off": {"command": "x", "enabled": false}}, "hook_config": {}}),
            json!({"mcp_config": {"mcpServers": {}}, "hook_config": {"pre_tool_use": [], "stop": []}}),
            json!({"mcp_config": {"mcpServers": {"off": {"url": "http://x", "enabled": false}}}}),
            json!({"hook_config": {"hooks": {"PreToolUse": []}}}),
        ] {
            assert!(start(ok.clone()).is_ok(), "{ok}");
        }
        let errs = start(json!({
            "mcp_config": {"fetch": {"command": "uvx", "env": {"TOKEN": "sekrit"}}},
            "critic": {"kind": "APIBasedCritic", "api_key": "sekrit", "server_url": "u", "model_name": "m"},
            "hook_config": {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{"command": "x"}]}]}}
        }))
        .unwrap_err();
        let errs = serde_json::to_value(errs).unwrap();
        assert!(!errs.to_string().contains("sekrit"), "{errs}");
        assert_eq!(errs[0]["loc"], json!(["body", "agent", "mcp_config"]));
        assert_eq!(errs[0]["msg"], "Value error, MCP servers are not supported by this server (enabled: fetch); remove them or set `enabled: false`");
        assert_eq!(errs[1]["loc"], json!(["body", "agent", "critic"]));
        assert_eq!(errs[2]["loc"], json!(["body", "hook_config"]));
        assert_eq!(errs[2]["input"], json!(["PreToolUse"]));
        let errs =
            start(json!({"mcp_config": {"mcpServers": {"a": {"url": "http://x"}}}})).unwrap_err();
        assert!(errs[0].msg.contains("(enabled: a)"), "{}", errs[0].msg);
    }

    #[test]
    fn patch_and_queries() {
        let errs = UpdateConversationRequest::from_body(&json!({"title":""})).unwrap_err();
        assert_eq!(errs[0].error_type, "string_too_short");
        let errs = UpdateConversationRequest::from_body(&json!({"title":"   "})).unwrap_err();
        assert_eq!(errs[0].msg, "Value error, title must not be blank");
        let ok = UpdateConversationRequest::from_body(&json!({"title":"  x "})).unwrap();
        assert_eq!(ok.title.as_deref(), Some("x"));
        let q: Vec<(String, String)> = vec![
            ("limit".into(), "101".into()),
            ("status".into(), "bogus".into()),
        ];
        let errs =
            serde_json::to_value(ConversationSearchQuery::from_query(&q).unwrap_err()).unwrap();
        assert_eq!(errs[0]["type"], "less_than_equal");
        assert_eq!(errs[1]["msg"], "Input should be 'idle', 'running', 'paused', 'waiting_for_confirmation', 'finished', 'error', 'stuck' or 'deleting'");
        let errs = parse_batch_ids(&[], "ids", None, Some(99)).unwrap_err();
        assert_eq!(
            serde_json::to_value(&errs).unwrap(),
            json!([{"type":"missing","loc":["query","ids"],"msg":"Field required","input":null}])
        );
        let ids = parse_batch_ids(
            &[("ids".into(), "a".into())],
            "ids",
            Some(&json!(["b"])),
            None,
        )
        .unwrap();
        assert_eq!(ids, vec!["a"]);
    }

    #[test]
    fn message_content_union_errors() {
        let errs =
            SendMessageRequest::from_body(&json!({"content":[{"type":"text"}]})).unwrap_err();
        let v = serde_json::to_value(errs).unwrap();
        assert_eq!(
            v[0]["loc"],
            json!(["body", "content", 0, "TextContent", "text"])
        );
        assert_eq!(
            v[1]["loc"],
            json!(["body", "content", 0, "ImageContent", "type"])
        );
        assert_eq!(
            v[2]["loc"],
            json!(["body", "content", 0, "ImageContent", "image_urls"])
        );
        let errs =
            SendMessageRequest::from_body(&json!({"role":"bogus","content":[]})).unwrap_err();
        assert_eq!(
            errs[0].msg,
            "Input should be 'user', 'system', 'assistant' or 'tool'"
        );
    }

    /// Inputs where we knowingly differ from pydantic (see the report): ACP
    /// agents are refused because this server cannot run them, and the npm
    /// client's `{"type":"always"}` policy is accepted (DECISIONS.md).
    fn known_deviation(body: &Value) -> bool {
        body.pointer("/agent/kind") == Some(&json!("ACPAgent"))
            || body.pointer("/confirmation_policy/type").is_some()
    }

    #[test]
    fn matches_the_python_validators() {
        let oracle: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/validation_oracle.json"))
                .unwrap();
        let mut checked = 0;
        let mut wrong = Vec::new();
        for (model, cases) in oracle.as_object().unwrap() {
            for case in cases.as_array().unwrap() {
                let body = &case["body"];
                if known_deviation(body) {
                    continue;
                }
                let got = match model.as_str() {
                    "StartConversationRequest" => StartConversationRequest::from_body(body).err(),
                    "UpdateConversationRequest" => UpdateConversationRequest::from_body(body).err(),
                    "SendMessageRequest" => SendMessageRequest::from_body(body).err(),
                    "UpdateSecretsRequest" => UpdateSecretsRequest::from_body(body).err(),
                    "SetConfirmationPolicyRequest" => {
                        SetConfirmationPolicyRequest::from_body(body).err()
                    }
                    "SetSecurityAnalyzerRequest" => {
                        SetSecurityAnalyzerRequest::from_body(body).err()
                    }
                    "ConfirmationResponseRequest" => {
                        ConfirmationResponseRequest::from_body(body).err()
                    }
                    other => panic!("unknown model {other}"),
                };
                let got = serde_json::to_value(got.unwrap_or_default()).unwrap();
                // Valid for pydantic, refused here on purpose (docs/decisions.md).
                let refused = case["errors"] == json!([])
                    && got.as_array().is_some_and(|errs| {
                        !errs.is_empty()
                            && errs.iter().all(|e| {
                                e["msg"]
                                    .as_str()
                                    .is_some_and(|m| m.contains("not supported by this server"))
                            })
                    });
                if got != case["errors"] && !refused {
                    wrong.push(format!(
                        "{model} {body}\n  got:  {got}\n  want: {}",
                        case["errors"]
                    ));
                }
                checked += 1;
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert!(checked > 50, "only {checked} cases");
    }

    #[test]
    fn socket_frames() {
        assert_eq!(
            parse_socket_frame(r#"{"type":"auth","session_api_key":"k"}"#),
            Ok(SocketFrame::Auth)
        );
        let SocketFrame::Message(m) =
            parse_socket_frame(r#"{"role":"user","content":[{"type":"text","text":"hi"}]}"#)
                .unwrap()
        else {
            panic!("not a message");
        };
        assert!(m.run);
        let (code, detail) = parse_socket_frame("not json").unwrap_err();
        assert_eq!(code, "JSONDecodeError");
        assert_eq!(detail, "Expecting value: line 1 column 1 (char 0)");
        let (code, detail) = parse_socket_frame(r#"{"content":[]}"#).unwrap_err();
        assert_eq!(code, "ValidationError");
        assert!(
            detail.starts_with(
                "1 validation error for Message\nrole\n  Field required [type=missing]"
            ),
            "{detail}"
        );
    }
}
