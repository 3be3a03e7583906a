//! The state of one conversation and its three JSON forms: the
//! `metadata.json` document (secrets sealed), the REST `ConversationInfo`
//! (secrets null) and the WebSocket `full_state` value (nulls omitted,
//! secrets `"**********"`).

use std::path::Path;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::agent::{walk_secrets, Agent};
use crate::api::conversation::{
    drop_lookup_secret_headers, walk_registry_secrets, ConfirmationPolicy, ExecutionStatus,
    SecretSource, SecurityAnalyzer, SendMessageRequest, StartConversationRequest, Workspace,
};
use crate::api::metrics::ConversationStats;
use crate::api::validate::{Path as VPath, Validator};
use crate::secrets::REDACTED;
use crate::store::FORMAT_VERSION;
use crate::util::ids;

/// Settings fixed at creation (persisted and echoed, mostly not interpreted
/// by the core).
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationConfig {
    /// The working directory as the client gave it.
    pub workspace: Workspace,
    /// Whether a worktree was requested.
    pub worktree: bool,
    /// Worktree options as given.
    pub worktree_options: Option<Value>,
    /// The owning conversation.
    pub parent_conversation_id: Option<Uuid>,
    /// The first message of the create request.
    pub initial_message: Option<SendMessageRequest>,
    /// Agent steps per run.
    pub max_iterations: u64,
    /// Whether the stuck detector runs.
    pub stuck_detection: bool,
    /// Tool name → Python module, request entries first.
    pub tool_module_qualnames: Map<String, Value>,
    /// Client-executed tools.
    pub client_tools: Vec<Value>,
    /// As given.
    pub agent_launch_additions: Option<Value>,
    /// As given.
    pub agent_definitions: Vec<Value>,
    /// As given.
    pub plugins: Option<Vec<Value>>,
    /// Hook configuration.
    pub hook_config: Option<Value>,
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
    /// Generate a title automatically.
    pub autotitle: bool,
    /// Title LLM profile.
    pub title_llm_profile: Option<String>,
    /// Custom title prompt.
    pub prompt: Option<String>,
}

/// Everything known about a conversation (ConversationState + stored
/// metadata of the Python server).
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationState {
    /// The id.
    pub id: Uuid,
    /// Creation settings.
    pub config: ConversationConfig,
    /// The agent (secrets in plaintext in memory).
    pub agent: Agent,
    /// The secret registry, in insertion order.
    pub secrets: Vec<(String, SecretSource)>,
    /// Current status.
    pub execution_status: ExecutionStatus,
    /// Current confirmation policy (persisted, DECISIONS.md).
    pub confirmation_policy: ConfirmationPolicy,
    /// Current security analyzer (persisted, DECISIONS.md).
    pub security_analyzer: Option<SecurityAnalyzer>,
    /// Knowledge skills activated by keywords.
    pub activated_knowledge_skills: Vec<String>,
    /// Path-scoped rules activated so far.
    pub activated_path_rules: Vec<Value>,
    /// Skills invoked explicitly.
    pub invoked_skills: Vec<String>,
    /// Action id → reason, from hooks.
    pub blocked_actions: Map<String, Value>,
    /// Message id → reason, from hooks.
    pub blocked_messages: Map<String, Value>,
    /// Newest user message.
    pub last_user_message_id: Option<String>,
    /// HEAD of the conversation tree.
    pub leaf_event_id: Option<String>,
    /// LLM usage per `usage_id`.
    pub stats: ConversationStats,
    /// Free-form agent state.
    pub agent_state: Map<String, Value>,
    /// Title.
    pub title: Option<String>,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Creation time, `…Z`.
    pub created_at: String,
    /// Last activity time, `…Z`.
    pub updated_at: String,
    /// Fork origin.
    pub forked_from_conversation_id: Option<Uuid>,
    /// Fork branch point.
    pub forked_from_event_id: Option<String>,
}

/// Turns a stored secret into its value (`None`: lost).
pub type SecretOpener<'a> = dyn FnMut(&str) -> Option<String> + 'a;

/// Where a conversation lives and what its runtime looks like, for the
/// REST form.
#[derive(Clone, Debug, Default)]
pub struct InfoContext {
    /// The absolute conversation directory (`persistence_dir`).
    pub persistence_dir: String,
    /// Keep `agent.agent_context.skills`.
    pub include_skills: bool,
    /// Fill `runtime_info` (GET, search, batch) or leave it null (POST, webhooks).
    pub runtime_info: bool,
    /// Children in the catalog.
    pub sub_conversation_ids: Vec<Uuid>,
    /// Overrides `execution_status` (`deleting` in the delete webhook).
    pub status_override: Option<ExecutionStatus>,
}

fn opt_str(s: &Option<String>) -> Value {
    s.clone().map(Value::String).unwrap_or(Value::Null)
}

fn opt_uuid(u: &Option<Uuid>) -> Value {
    u.map(|u| Value::String(ids::dashed(&u)))
        .unwrap_or(Value::Null)
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// Removes nulls recursively (pydantic's `exclude_none`) except inside the
/// keys listed, whose values are untyped.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for (k, child) in m.iter_mut() {
                if !matches!(
                    k.as_str(),
                    "agent_state" | "system_prompt_kwargs" | "litellm_extra_body" | "metadata"
                ) {
                    strip_nulls(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

impl ConversationState {
    /// A new state from a validated start request. `tool_module_qualnames`
    /// is the request's map plus one module per agent tool.
    pub fn from_request(
        id: Uuid,
        req: &StartConversationRequest,
        qualnames: Map<String, Value>,
    ) -> Self {
        let now = crate::util::time::utc_timestamp(crate::util::time::now());
        ConversationState {
            id,
            config: ConversationConfig {
                workspace: req.workspace.clone(),
                worktree: req.worktree,
                worktree_options: req.worktree_options.clone(),
                parent_conversation_id: req.parent_conversation_id,
                initial_message: req.initial_message.clone(),
                max_iterations: req.max_iterations,
                stuck_detection: req.stuck_detection,
                tool_module_qualnames: qualnames,
                client_tools: req.client_tools.clone(),
                agent_launch_additions: req.agent_launch_additions.clone(),
                agent_definitions: req.agent_definitions.clone(),
                plugins: req.plugins.clone(),
                hook_config: req.hook_config.clone(),
                user_id: req.user_id.clone(),
                observability_metadata: req.observability_metadata.clone(),
                observability_tags: req.observability_tags.clone(),
                observability_span_name: req.observability_span_name.clone(),
                observability_parent_span_context: req.observability_parent_span_context.clone(),
                autotitle: req.autotitle,
                title_llm_profile: req.title_llm_profile.clone(),
                prompt: req.prompt.clone(),
            },
            agent: req.agent.clone(),
            secrets: req.secrets.clone(),
            execution_status: ExecutionStatus::Idle,
            confirmation_policy: req.confirmation_policy,
            security_analyzer: req.security_analyzer.clone(),
            activated_knowledge_skills: vec![],
            activated_path_rules: vec![],
            invoked_skills: vec![],
            blocked_actions: Map::new(),
            blocked_messages: Map::new(),
            last_user_message_id: None,
            leaf_event_id: None,
            stats: ConversationStats::default(),
            agent_state: Map::new(),
            title: None,
            tags: req.tags.clone(),
            created_at: now.clone(),
            updated_at: now,
            forked_from_conversation_id: None,
            forked_from_event_id: None,
        }
    }

    /// The secret registry with plaintext values.
    pub fn registry_json(&self) -> Value {
        let sources: Map<String, Value> = self
            .secrets
            .iter()
            .map(|(k, s)| (k.clone(), s.to_json()))
            .collect();
        serde_json::json!({ "secret_sources": sources })
    }

    /// Every secret value known to this conversation (agent keys and static
    /// secrets), for the masker.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = self.agent.secret_values();
        let mut reg = self.registry_json();
        walk_registry_secrets(&mut reg, &mut |v| {
            if let Value::String(s) = v {
                if !s.is_empty() {
                    out.push(s.clone());
                }
            }
        });
        out
    }

    /// The `metadata.json` document; `seal` turns each secret value into its
    /// stored form.
    pub fn to_doc(&self, seal: &mut dyn FnMut(&str) -> String) -> Value {
        let c = &self.config;
        let mut agent = self.agent.to_json();
        seal_leaves(&mut agent, seal, true);
        let mut registry = self.registry_json();
        let mut seal_reg = |v: &mut Value| {
            if let Value::String(s) = v {
                *v = Value::String(seal(s));
            }
        };
        walk_registry_secrets(&mut registry, &mut seal_reg);
        let mut m = Map::new();
        m.insert("format_version".into(), FORMAT_VERSION.into());
        m.insert("id".into(), ids::hex(&self.id).into());
        m.insert("title".into(), opt_str(&self.title));
        m.insert("created_at".into(), self.created_at.clone().into());
        m.insert("updated_at".into(), self.updated_at.clone().into());
        m.insert(
            "execution_status".into(),
            self.execution_status.as_str().into(),
        );
        m.insert(
            "parent_conversation_id".into(),
            opt_uuid(&c.parent_conversation_id),
        );
        m.insert(
            "forked_from_conversation_id".into(),
            opt_uuid(&self.forked_from_conversation_id),
        );
        m.insert(
            "forked_from_event_id".into(),
            opt_str(&self.forked_from_event_id),
        );
        m.insert("workspace".into(), c.workspace.to_json());
        m.insert("worktree".into(), c.worktree.into());
        m.insert(
            "worktree_options".into(),
            c.worktree_options.clone().unwrap_or(Value::Null),
        );
        m.insert("max_iterations".into(), c.max_iterations.into());
        m.insert("stuck_detection".into(), c.stuck_detection.into());
        m.insert(
            "confirmation_policy".into(),
            self.confirmation_policy.to_json(),
        );
        m.insert(
            "security_analyzer".into(),
            self.security_analyzer
                .as_ref()
                .map(SecurityAnalyzer::to_json)
                .unwrap_or(Value::Null),
        );
        m.insert(
            "initial_message".into(),
            c.initial_message
                .as_ref()
                .map(SendMessageRequest::to_json)
                .unwrap_or(Value::Null),
        );
        m.insert("tags".into(), Value::Object(self.tags.clone()));
        m.insert(
            "tool_module_qualnames".into(),
            Value::Object(c.tool_module_qualnames.clone()),
        );
        m.insert("client_tools".into(), Value::Array(c.client_tools.clone()));
        m.insert(
            "agent_launch_additions".into(),
            c.agent_launch_additions.clone().unwrap_or(Value::Null),
        );
        m.insert(
            "agent_definitions".into(),
            Value::Array(c.agent_definitions.clone()),
        );
        m.insert(
            "plugins".into(),
            c.plugins.clone().map(Value::Array).unwrap_or(Value::Null),
        );
        m.insert(
            "hook_config".into(),
            c.hook_config.clone().unwrap_or(Value::Null),
        );
        m.insert("user_id".into(), opt_str(&c.user_id));
        m.insert(
            "observability_metadata".into(),
            Value::Object(c.observability_metadata.clone()),
        );
        m.insert("observability_tags".into(), strings(&c.observability_tags));
        m.insert(
            "observability_span_name".into(),
            c.observability_span_name.clone().into(),
        );
        m.insert(
            "observability_parent_span_context".into(),
            opt_str(&c.observability_parent_span_context),
        );
        m.insert("autotitle".into(), c.autotitle.into());
        m.insert("title_llm_profile".into(), opt_str(&c.title_llm_profile));
        m.insert("prompt".into(), opt_str(&c.prompt));
        m.insert("agent".into(), agent);
        m.insert("secret_registry".into(), registry);
        m.insert(
            "activated_knowledge_skills".into(),
            strings(&self.activated_knowledge_skills),
        );
        m.insert(
            "activated_path_rules".into(),
            Value::Array(self.activated_path_rules.clone()),
        );
        m.insert("invoked_skills".into(), strings(&self.invoked_skills));
        m.insert(
            "blocked_actions".into(),
            Value::Object(self.blocked_actions.clone()),
        );
        m.insert(
            "blocked_messages".into(),
            Value::Object(self.blocked_messages.clone()),
        );
        m.insert(
            "last_user_message_id".into(),
            opt_str(&self.last_user_message_id),
        );
        m.insert("leaf_event_id".into(), opt_str(&self.leaf_event_id));
        m.insert(
            "stats".into(),
            serde_json::to_value(&self.stats).unwrap_or(Value::Null),
        );
        m.insert(
            "agent_state".into(),
            Value::Object(self.agent_state.clone()),
        );
        Value::Object(m)
    }

    /// Reads a `metadata.json` document. `open` turns each stored secret
    /// into its value (`None`: lost); without it, stored secret strings are
    /// kept as they are (only safe for output that nulls secrets).
    pub fn from_doc(doc: &Value, open: Option<&mut SecretOpener<'_>>) -> Result<Self, String> {
        let obj = doc.as_object().ok_or("metadata is not an object")?;
        let get = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or("metadata has no valid id")?;
        let mut agent_json = get("agent");
        let mut registry = get("secret_registry");
        if let Some(open) = open {
            let mut opener = |v: &mut Value| {
                if let Value::String(s) = v {
                    *v = open(s).map(Value::String).unwrap_or(Value::Null);
                }
            };
            walk_secrets(&mut agent_json, &mut opener);
            walk_registry_secrets(&mut registry, &mut opener);
        }
        let mut val = Validator::new();
        let root = VPath::root("metadata");
        let agent = Agent::parse(&agent_json, &root.key("agent"), &mut val);
        let policy = ConfirmationPolicy::parse(
            &get("confirmation_policy"),
            &root.key("confirmation_policy"),
            &mut val,
        );
        let analyzer = match get("security_analyzer") {
            Value::Null => Some(None),
            a => SecurityAnalyzer::parse(&a, &root.key("security_analyzer"), &mut val).map(Some),
        };
        let mut secrets = Vec::new();
        if let Some(Value::Object(sources)) = registry.get("secret_sources") {
            for (name, src) in sources {
                if let Some(s) = SecretSource::parse(src, &root.key(name), &mut val) {
                    secrets.push((name.clone(), s));
                }
            }
        }
        let initial_message = match get("initial_message") {
            Value::Null => None,
            m => SendMessageRequest::parse(&m, &root.key("initial_message"), &mut val),
        };
        if !val.is_ok() {
            let errs: Vec<String> = val
                .into_errors()
                .into_iter()
                .map(|e| format!("{:?}: {}", e.loc, e.msg))
                .collect();
            return Err(errs.join("; "));
        }
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(String::from);
        let map = |k: &str| {
            obj.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let list = |k: &str| {
            obj.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let str_list = |k: &str| -> Vec<String> {
            list(k)
                .into_iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        let uuid = |k: &str| s(k).and_then(|u| Uuid::parse_str(&u).ok());
        let stats: ConversationStats = serde_json::from_value(get("stats")).unwrap_or_default();
        let working_dir = obj
            .get("workspace")
            .and_then(|w| w.get("working_dir"))
            .and_then(Value::as_str)
            .ok_or("metadata has no workspace")?
            .to_string();
        Ok(ConversationState {
            id,
            config: ConversationConfig {
                workspace: Workspace { working_dir },
                worktree: obj
                    .get("worktree")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                worktree_options: obj
                    .get("worktree_options")
                    .filter(|v| !v.is_null())
                    .cloned(),
                parent_conversation_id: uuid("parent_conversation_id"),
                initial_message,
                max_iterations: obj
                    .get("max_iterations")
                    .and_then(Value::as_u64)
                    .unwrap_or(500),
                stuck_detection: obj
                    .get("stuck_detection")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                tool_module_qualnames: map("tool_module_qualnames"),
                client_tools: list("client_tools"),
                agent_launch_additions: obj
                    .get("agent_launch_additions")
                    .filter(|v| !v.is_null())
                    .cloned(),
                agent_definitions: list("agent_definitions"),
                plugins: obj.get("plugins").and_then(Value::as_array).cloned(),
                hook_config: obj.get("hook_config").filter(|v| !v.is_null()).cloned(),
                user_id: s("user_id"),
                observability_metadata: map("observability_metadata"),
                observability_tags: str_list("observability_tags"),
                observability_span_name: s("observability_span_name")
                    .unwrap_or_else(|| "conversation".into()),
                observability_parent_span_context: s("observability_parent_span_context"),
                autotitle: obj
                    .get("autotitle")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                title_llm_profile: s("title_llm_profile"),
                prompt: s("prompt"),
            },
            agent: agent.ok_or("metadata agent is invalid")?,
            secrets,
            execution_status: s("execution_status")
                .and_then(|st| ExecutionStatus::from_wire(&st))
                .unwrap_or(ExecutionStatus::Idle),
            confirmation_policy: policy.ok_or("metadata confirmation policy is invalid")?,
            security_analyzer: analyzer.flatten(),
            activated_knowledge_skills: str_list("activated_knowledge_skills"),
            activated_path_rules: list("activated_path_rules"),
            invoked_skills: str_list("invoked_skills"),
            blocked_actions: map("blocked_actions"),
            blocked_messages: map("blocked_messages"),
            last_user_message_id: s("last_user_message_id"),
            leaf_event_id: s("leaf_event_id"),
            stats,
            agent_state: map("agent_state"),
            title: s("title"),
            tags: map("tags"),
            created_at: s("created_at").ok_or("metadata has no created_at")?,
            updated_at: s("updated_at").ok_or("metadata has no updated_at")?,
            forked_from_conversation_id: uuid("forked_from_conversation_id"),
            forked_from_event_id: s("forked_from_event_id"),
        })
    }

    /// The REST `ConversationInfo` (api.md §3.10): every key in the Python
    /// order, secret values null.
    pub fn to_info(&self, ctx: &InfoContext) -> Value {
        let c = &self.config;
        let mut agent = if ctx.include_skills {
            self.agent.to_json()
        } else {
            self.agent.to_json_without_skills()
        };
        seal_leaves(&mut agent, &mut |_| String::new(), false);
        let mut registry = self.registry_json();
        walk_registry_secrets(&mut registry, &mut |v| *v = Value::Null);
        drop_lookup_secret_headers(&mut registry);
        let status = ctx.status_override.unwrap_or(self.execution_status);
        let mut m = Map::new();
        m.insert("id".into(), ids::dashed(&self.id).into());
        m.insert("workspace".into(), c.workspace.to_json());
        m.insert("persistence_dir".into(), ctx.persistence_dir.clone().into());
        m.insert("max_iterations".into(), c.max_iterations.into());
        m.insert("stuck_detection".into(), c.stuck_detection.into());
        m.insert("execution_status".into(), status.as_str().into());
        m.insert(
            "confirmation_policy".into(),
            self.confirmation_policy.to_json(),
        );
        m.insert(
            "security_analyzer".into(),
            self.security_analyzer
                .as_ref()
                .map(SecurityAnalyzer::to_json)
                .unwrap_or(Value::Null),
        );
        m.insert(
            "activated_knowledge_skills".into(),
            strings(&self.activated_knowledge_skills),
        );
        m.insert("invoked_skills".into(), strings(&self.invoked_skills));
        m.insert(
            "blocked_actions".into(),
            Value::Object(self.blocked_actions.clone()),
        );
        m.insert(
            "blocked_messages".into(),
            Value::Object(self.blocked_messages.clone()),
        );
        m.insert(
            "last_user_message_id".into(),
            opt_str(&self.last_user_message_id),
        );
        m.insert("leaf_event_id".into(), opt_str(&self.leaf_event_id));
        m.insert(
            "stats".into(),
            serde_json::to_value(&self.stats).unwrap_or(Value::Null),
        );
        m.insert("secret_registry".into(), registry);
        m.insert(
            "agent_state".into(),
            Value::Object(self.agent_state.clone()),
        );
        m.insert(
            "hook_config".into(),
            c.hook_config.clone().unwrap_or(Value::Null),
        );
        m.insert("title".into(), opt_str(&self.title));
        m.insert("metrics".into(), Value::Null);
        m.insert("created_at".into(), self.created_at.clone().into());
        m.insert("updated_at".into(), self.updated_at.clone().into());
        m.insert(
            "forked_from_conversation_id".into(),
            opt_uuid(&self.forked_from_conversation_id),
        );
        m.insert(
            "forked_from_event_id".into(),
            opt_str(&self.forked_from_event_id),
        );
        m.insert(
            "parent_conversation_id".into(),
            opt_uuid(&c.parent_conversation_id),
        );
        m.insert(
            "sub_conversation_ids".into(),
            Value::Array(
                ctx.sub_conversation_ids
                    .iter()
                    .map(|u| Value::String(ids::dashed(u)))
                    .collect(),
            ),
        );
        m.insert("tags".into(), Value::Object(self.tags.clone()));
        m.insert("current_model_id".into(), Value::Null);
        m.insert("available_models".into(), Value::Array(vec![]));
        m.insert("supports_runtime_model_switch".into(), Value::Bool(false));
        m.insert("launched_agent_profile".into(), Value::Null);
        m.insert("agent".into(), agent);
        m.insert("client_tools".into(), Value::Array(c.client_tools.clone()));
        m.insert(
            "tool_module_qualnames".into(),
            Value::Object(c.tool_module_qualnames.clone()),
        );
        m.insert(
            "runtime_info".into(),
            if ctx.runtime_info {
                serde_json::json!({"runtime_status":"available","can_resume":true,"runtime_error":null})
            } else {
                Value::Null
            },
        );
        Value::Object(m)
    }

    /// The `full_state` value (events.md §3.9): the whole state with nulls
    /// omitted and secrets `"**********"`.
    pub fn full_state_value(&self, persistence_dir: &Path, head_is_empty: bool) -> Value {
        let c = &self.config;
        let mut agent = self.agent.to_json();
        seal_leaves(&mut agent, &mut |_| REDACTED.to_string(), true);
        let mut registry = self.registry_json();
        walk_registry_secrets(&mut registry, &mut |v| {
            if v.is_string() {
                *v = Value::String(REDACTED.into());
            }
        });
        let mut m = Map::new();
        m.insert("id".into(), ids::dashed(&self.id).into());
        m.insert("agent".into(), agent);
        m.insert("workspace".into(), c.workspace.to_json());
        m.insert(
            "persistence_dir".into(),
            persistence_dir.to_string_lossy().into_owned().into(),
        );
        m.insert("max_iterations".into(), c.max_iterations.into());
        m.insert("stuck_detection".into(), c.stuck_detection.into());
        m.insert(
            "execution_status".into(),
            self.execution_status.as_str().into(),
        );
        m.insert(
            "confirmation_policy".into(),
            self.confirmation_policy.to_json(),
        );
        m.insert(
            "security_analyzer".into(),
            self.security_analyzer
                .as_ref()
                .map(SecurityAnalyzer::to_json)
                .unwrap_or(Value::Null),
        );
        m.insert(
            "activated_knowledge_skills".into(),
            strings(&self.activated_knowledge_skills),
        );
        m.insert(
            "activated_path_rules".into(),
            Value::Array(self.activated_path_rules.clone()),
        );
        m.insert("invoked_skills".into(), strings(&self.invoked_skills));
        m.insert(
            "blocked_actions".into(),
            Value::Object(self.blocked_actions.clone()),
        );
        m.insert(
            "blocked_messages".into(),
            Value::Object(self.blocked_messages.clone()),
        );
        m.insert(
            "last_user_message_id".into(),
            opt_str(&self.last_user_message_id),
        );
        m.insert("leaf_event_id".into(), opt_str(&self.leaf_event_id));
        m.insert("head_is_empty".into(), Value::Bool(head_is_empty));
        m.insert(
            "stats".into(),
            serde_json::to_value(&self.stats).unwrap_or(Value::Null),
        );
        m.insert("secret_registry".into(), registry);
        m.insert("tags".into(), Value::Object(self.tags.clone()));
        m.insert(
            "agent_state".into(),
            Value::Object(self.agent_state.clone()),
        );
        m.insert(
            "hook_config".into(),
            c.hook_config.clone().unwrap_or(Value::Null),
        );
        let mut v = Value::Object(m);
        strip_nulls(&mut v);
        v
    }
}

/// Rewrites the non-null secret leaves of an agent JSON with `f`, or sets
/// them all to null when `keep` is false (REST output).
fn seal_leaves(agent: &mut Value, f: &mut dyn FnMut(&str) -> String, keep: bool) {
    walk_secrets(agent, &mut |v| {
        if !keep {
            *v = Value::Null;
        } else if let Value::String(s) = v {
            *v = Value::String(f(s));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> StartConversationRequest {
        StartConversationRequest::from_body(&json!({
            "workspace":{"working_dir":"/tmp/w"},
            "agent":{"llm":{"model":"openai/gpt-4o","api_key":"sk-live","usage_id":"agent"},"tools":[{"name":"terminal"}],
                     "mcp_config":{"m":{"command":"x","env":{"TOKEN":"mcp-secret"},"enabled":false}}},
            "secrets":{"MY_TOKEN":{"kind":"StaticSecret","value":"s3cr3t","description":"d"},
                       "L":{"kind":"LookupSecret","url":"http://x","headers":{"Authorization":"Bearer lk","Accept":"a"}}},
            "tags":{"env":"test"}
        }))
        .unwrap()
    }

    #[test]
    fn rest_form_has_python_keys_and_no_secrets() {
        let st = ConversationState::from_request(Uuid::new_v4(), &request(), Map::new());
        let info = st.to_info(&InfoContext {
            persistence_dir: "/p".into(),
            runtime_info: true,
            ..InfoContext::default()
        });
        let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 35);
        assert_eq!(keys[0], "id");
        assert_eq!(keys[34], "runtime_info");
        let text = info.to_string();
        for s in ["sk-live", "s3cr3t", "mcp-secret", "Bearer lk"] {
            assert!(!text.contains(s), "{s} leaked");
        }
        assert_eq!(info["agent"]["llm"]["api_key"], Value::Null);
        assert_eq!(
            info["secret_registry"]["secret_sources"]["L"]["headers"],
            json!({"Accept":"a"})
        );
        assert_eq!(info["runtime_info"]["runtime_status"], "available");
    }

    #[test]
    fn doc_round_trip_seals_and_opens() {
        let st = ConversationState::from_request(Uuid::new_v4(), &request(), Map::new());
        let doc = st.to_doc(&mut |s| format!("sealed({s})"));
        let text = doc.to_string();
        assert!(
            text.contains("sealed(sk-live)")
                && text.contains("sealed(s3cr3t)")
                && text.contains("sealed(mcp-secret)")
        );
        assert!(text.contains("sealed(Bearer lk)"));
        let mut open = |s: &str| {
            s.strip_prefix("sealed(")
                .and_then(|s| s.strip_suffix(')'))
                .map(String::from)
        };
        let back = ConversationState::from_doc(&doc, Some(&mut open)).unwrap();
        assert_eq!(back, st);
        let mut lose = |_: &str| None;
        let lost = ConversationState::from_doc(&doc, Some(&mut lose)).unwrap();
        assert_eq!(lost.agent.llm.api_key, None);
        assert_eq!(
            lost.secrets[0].1,
            SecretSource::Static {
                description: Some("d".into()),
                value: None
            }
        );
    }

    #[test]
    fn full_state_redacts_and_omits_nulls() {
        let st = ConversationState::from_request(Uuid::new_v4(), &request(), Map::new());
        let v = st.full_state_value(Path::new("/p"), true);
        assert_eq!(v["agent"]["llm"]["api_key"], REDACTED);
        assert!(v["agent"]["llm"].get("base_url").is_none());
        assert_eq!(
            v["secret_registry"]["secret_sources"]["MY_TOKEN"]["value"],
            REDACTED
        );
        assert!(v.get("last_user_message_id").is_none());
        assert_eq!(v["head_is_empty"], true);
        assert!(!v.to_string().contains("s3cr3t"));
    }
}
