//! The agent configuration (`agent` in a start request and in
//! `ConversationInfo`, agent.md §12) and its parts: LLM settings, tool specs,
//! condenser, critic, context.
//!
//! The model is parsed from JSON with pydantic-compatible validation errors
//! ([`Agent::parse`]) and written back with every default filled, in the
//! Python field order ([`Agent::to_json`]). Secret-bearing leaves are found by
//! [`walk_secrets`], which every writer uses to decide what a secret becomes
//! (null over REST, `"**********"` in WebSocket state, ciphertext on disk).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::llm_config::LlmConfig;
use crate::api::validate::{unknown_kind_message, FloatBound, Path, Validator};

/// One tool the agent should have: `{"name": "terminal", "params": {}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The registered tool name (`terminal`, `file_editor`, …).
    pub name: String,
    /// Tool-specific parameters, passed to the tool factory.
    #[serde(default)]
    pub params: Map<String, Value>,
}

/// `LLMSummarizingCondenser`: summarises forgotten history with an LLM.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmSummarizingCondenser {
    /// The summarising LLM.
    pub llm: LlmConfig,
    /// Condense when the view has more events than this.
    pub max_size: u64,
    /// Condense when the prompt has more tokens than this.
    pub max_tokens: Option<u64>,
    /// Events at the start that are never forgotten.
    pub keep_first: u64,
    /// Smallest fraction of the view a condensation must remove.
    pub minimum_progress: f64,
    /// Attempts of a hard context reset before giving up.
    pub hard_context_reset_max_retries: u64,
    /// How much of the context a hard reset keeps.
    pub hard_context_reset_context_scaling: f64,
}

/// A history condenser (agent.md, condensation).
#[derive(Clone, Debug, PartialEq)]
pub enum Condenser {
    /// `LLMSummarizingCondenser`.
    LlmSummarizing(Box<LlmSummarizingCondenser>),
    /// `NoOpCondenser`: keeps everything.
    NoOp,
    /// `PipelineCondenser`: applies several in order.
    Pipeline(Vec<Condenser>),
}

const CONDENSER_KINDS: [&str; 3] = [
    "LLMSummarizingCondenser",
    "NoOpCondenser",
    "PipelineCondenser",
];
const CONDENSER_BASE: &str = "openhands.sdk.context.condenser.base.CondenserBase";
const CRITIC_KINDS: [&str; 4] = [
    "AgentFinishedCritic",
    "APIBasedCritic",
    "EmptyPatchCritic",
    "PassCritic",
];
const CRITIC_BASE: &str = "openhands.sdk.critic.base.CriticBase";
const AGENT_KINDS: [&str; 2] = ["ACPAgent", "Agent"];
const AGENT_BASE: &str = "openhands.sdk.agent.base.AgentBase";

impl Condenser {
    /// The JSON form with defaults filled and `kind` last.
    pub fn to_json(&self) -> Value {
        match self {
            Condenser::LlmSummarizing(c) => {
                let mut m = Map::new();
                m.insert("llm".into(), llm_json(&c.llm));
                m.insert("max_size".into(), c.max_size.into());
                m.insert(
                    "max_tokens".into(),
                    c.max_tokens.map(Value::from).unwrap_or(Value::Null),
                );
                m.insert("keep_first".into(), c.keep_first.into());
                m.insert("minimum_progress".into(), c.minimum_progress.into());
                m.insert(
                    "hard_context_reset_max_retries".into(),
                    c.hard_context_reset_max_retries.into(),
                );
                m.insert(
                    "hard_context_reset_context_scaling".into(),
                    c.hard_context_reset_context_scaling.into(),
                );
                m.insert("kind".into(), "LLMSummarizingCondenser".into());
                Value::Object(m)
            }
            Condenser::NoOp => serde_json::json!({"kind": "NoOpCondenser"}),
            Condenser::Pipeline(list) => {
                let mut m = Map::new();
                m.insert(
                    "condensers".into(),
                    Value::Array(list.iter().map(Condenser::to_json).collect()),
                );
                m.insert("kind".into(), "PipelineCondenser".into());
                Value::Object(m)
            }
        }
    }

    fn parse(v: &Value, at: &Path, val: &mut Validator) -> Option<Condenser> {
        let obj = &without_kind(val.model(v, at, "CondenserBase")?);
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        match kind {
            "NoOpCondenser" => Some(Condenser::NoOp),
            "PipelineCondenser" => {
                let list = val.required(obj, "condensers", at)?;
                let items = val.list(list, &at.key("condensers"))?;
                let before = val.len();
                let parsed: Vec<Option<Condenser>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Condenser::parse(c, &at.key("condensers").index(i), val))
                    .collect();
                if val.len() != before {
                    return None;
                }
                Some(Condenser::Pipeline(parsed.into_iter().flatten().collect()))
            }
            "LLMSummarizingCondenser" => {
                let before = val.len();
                let llm = val
                    .required(obj, "llm", at)
                    .and_then(|l| parse_llm(l, &at.key("llm"), val));
                let int = |val: &mut Validator, key: &str, default: u64, min: i64| -> u64 {
                    match obj.get(key) {
                        None => default,
                        Some(v) => val
                            .integer(v, &at.key(key))
                            .filter(|n| val.check_ge(*n, min, v, &at.key(key)))
                            .map(|n| n as u64)
                            .unwrap_or(default),
                    }
                };
                let max_size = int(val, "max_size", 240, 1);
                let keep_first = int(val, "keep_first", 2, 0);
                let retries = int(val, "hard_context_reset_max_retries", 5, 1);
                let max_tokens = match obj.get("max_tokens") {
                    None | Some(Value::Null) => None,
                    Some(v) => val
                        .integer(v, &at.key("max_tokens"))
                        .map(|n| n.max(0) as u64),
                };
                let frac = |val: &mut Validator, key: &str, default: f64| -> f64 {
                    match obj.get(key) {
                        None => default,
                        Some(v) => val
                            .number(v, &at.key(key))
                            .filter(|f| {
                                val.check_float(*f, FloatBound::Gt(0.0), v, &at.key(key))
                                    && val.check_float(*f, FloatBound::Lt(1.0), v, &at.key(key))
                            })
                            .unwrap_or(default),
                    }
                };
                let minimum_progress = frac(val, "minimum_progress", 0.1);
                let scaling = frac(val, "hard_context_reset_context_scaling", 0.8);
                if val.len() != before {
                    return None;
                }
                Some(Condenser::LlmSummarizing(Box::new(
                    LlmSummarizingCondenser {
                        llm: llm?,
                        max_size,
                        max_tokens,
                        keep_first,
                        minimum_progress,
                        hard_context_reset_max_retries: retries,
                        hard_context_reset_context_scaling: scaling,
                    },
                )))
            }
            other => {
                val.value_error(
                    at,
                    v,
                    &unknown_kind_message(other, CONDENSER_BASE, &CONDENSER_KINDS),
                );
                None
            }
        }
    }
}

/// The agent (`kind: "Agent"`). Sub-objects the core does not interpret
/// (`mcp_config`, `agent_context`, `critic`) are kept as JSON with the
/// Python defaults filled.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    /// The main LLM.
    pub llm: LlmConfig,
    /// Tools to create, by registered name.
    pub tools: Vec<ToolSpec>,
    /// MCP servers by name (`{"command","args","env","enabled"}` or `{"url","headers","enabled"}`).
    pub mcp_config: Map<String, Value>,
    /// Regex over tool names; tools that do not match are dropped.
    pub filter_tools_regex: Option<String>,
    /// Built-in tool classes to add (`FinishTool`, `ThinkTool`).
    pub include_default_tools: Vec<String>,
    /// Skills, message suffixes, secrets for the prompt (defaults filled).
    pub agent_context: Option<Map<String, Value>>,
    /// An inline system prompt replacing the template.
    pub system_prompt: Option<String>,
    /// The system prompt template name.
    pub system_prompt_filename: String,
    /// The security policy file name (`""` disables it).
    pub security_policy_filename: String,
    /// Template variables; always carries `llm_security_analyzer`.
    pub system_prompt_kwargs: Map<String, Value>,
    /// History condenser.
    pub condenser: Option<Condenser>,
    /// Experimental critic (`{"mode",…,"kind"}`).
    pub critic: Option<Map<String, Value>>,
    /// Tool calls run concurrently within one step.
    pub tool_concurrency_limit: u64,
    /// Persona text replacing the built-in persona sections.
    pub persona: Option<String>,
}

/// The JSON of an LLM configuration, `is_subscription` computed.
pub fn llm_json(llm: &LlmConfig) -> Value {
    let mut v = serde_json::to_value(llm).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "is_subscription".into(),
            Value::Bool(llm.auth_type == "subscription"),
        );
    }
    v
}

fn opt_str(s: &Option<String>) -> Value {
    s.clone().map(Value::String).unwrap_or(Value::Null)
}

impl Agent {
    /// The full JSON form (every default, `kind` last), secrets in plaintext:
    /// callers pass it through [`walk_secrets`] before it leaves the process.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("llm".into(), llm_json(&self.llm));
        m.insert(
            "tools".into(),
            serde_json::to_value(&self.tools).unwrap_or(Value::Array(vec![])),
        );
        m.insert("mcp_config".into(), Value::Object(self.mcp_config.clone()));
        m.insert(
            "filter_tools_regex".into(),
            opt_str(&self.filter_tools_regex),
        );
        m.insert(
            "include_default_tools".into(),
            Value::Array(
                self.include_default_tools
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
        m.insert(
            "agent_context".into(),
            self.agent_context
                .clone()
                .map(Value::Object)
                .unwrap_or(Value::Null),
        );
        m.insert("system_prompt".into(), opt_str(&self.system_prompt));
        m.insert(
            "system_prompt_filename".into(),
            self.system_prompt_filename.clone().into(),
        );
        m.insert(
            "security_policy_filename".into(),
            self.security_policy_filename.clone().into(),
        );
        m.insert(
            "system_prompt_kwargs".into(),
            Value::Object(self.system_prompt_kwargs.clone()),
        );
        m.insert(
            "condenser".into(),
            self.condenser
                .as_ref()
                .map(Condenser::to_json)
                .unwrap_or(Value::Null),
        );
        m.insert(
            "critic".into(),
            self.critic
                .clone()
                .map(Value::Object)
                .unwrap_or(Value::Null),
        );
        m.insert(
            "tool_concurrency_limit".into(),
            self.tool_concurrency_limit.into(),
        );
        m.insert("persona".into(), opt_str(&self.persona));
        m.insert("kind".into(), "Agent".into());
        Value::Object(m)
    }

    /// The same JSON with `agent_context.skills` replaced by `[]` (REST
    /// responses without `include_skills`).
    pub fn to_json_without_skills(&self) -> Value {
        let mut v = self.to_json();
        if let Some(ctx) = v.get_mut("agent_context").and_then(Value::as_object_mut) {
            ctx.insert("skills".into(), Value::Array(vec![]));
        }
        v
    }

    /// Validates an agent object at `at`, collecting errors into `val`.
    pub fn parse(v: &Value, at: &Path, val: &mut Validator) -> Option<Agent> {
        let obj = val.model(v, at, "AgentBase")?;
        let kind = match obj.get("kind") {
            Some(Value::String(k)) => k.as_str(),
            None if obj.contains_key("llm") => "Agent",
            _ => "",
        };
        if kind == "ACPAgent" {
            val.value_error(
                at,
                v,
                "ACPAgent is not supported by this server; use kind 'Agent'",
            );
            return None;
        }
        if kind != "Agent" {
            val.value_error(at, v, &unknown_kind_message(kind, AGENT_BASE, &AGENT_KINDS));
            return None;
        }
        // Model-level "before" validators run first; their failure is the only error.
        let has_inline = obj.get("system_prompt").is_some_and(|p| !p.is_null());
        let custom_file = obj
            .get("system_prompt_filename")
            .is_some_and(|f| f.as_str() != Some("system_prompt.j2"));
        if has_inline && custom_file {
            let mut shown = obj.clone();
            add_security_kwarg(&mut shown);
            val.value_error(
                at,
                &Value::Object(shown),
                "Cannot set both 'system_prompt' and a non-default 'system_prompt_filename'. Use one or the other.",
            );
            return None;
        }
        let before = val.len();
        let llm = val
            .required(obj, "llm", at)
            .and_then(|l| parse_llm(l, &at.key("llm"), val));
        let tools = match obj.get("tools") {
            None => Some(vec![]),
            Some(t) => parse_tools(t, &at.key("tools"), val),
        };
        let mcp_config = match obj.get("mcp_config") {
            None | Some(Value::Null) => Some(Map::new()),
            Some(m) => parse_mcp_config(m, &at.key("mcp_config"), val),
        };
        let filter_tools_regex = match obj.get("filter_tools_regex") {
            None => Some(None),
            Some(r) => val.opt_string(r, &at.key("filter_tools_regex")),
        };
        let include_default_tools = match obj.get("include_default_tools") {
            None => Some(vec!["FinishTool".to_string(), "ThinkTool".to_string()]),
            Some(l) => string_list(l, &at.key("include_default_tools"), val),
        };
        let agent_context = match obj.get("agent_context") {
            None | Some(Value::Null) => Some(None),
            Some(c) => parse_agent_context(c, &at.key("agent_context"), val).map(Some),
        };
        let system_prompt = match obj.get("system_prompt") {
            None => Some(None),
            Some(p) => val.opt_string(p, &at.key("system_prompt")),
        };
        let system_prompt_filename = match obj.get("system_prompt_filename") {
            None => Some("system_prompt.j2".to_string()),
            Some(f) => val.string(f, &at.key("system_prompt_filename")),
        };
        let security_policy_filename = match obj.get("security_policy_filename") {
            None => Some("security_policy.j2".to_string()),
            Some(Value::Null) => Some(String::new()),
            Some(f) => val.string(f, &at.key("security_policy_filename")),
        };
        let system_prompt_kwargs = match obj.get("system_prompt_kwargs") {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => Some(Map::new()),
        }
        .map(|mut kw| {
            kw.remove("enable_browser");
            if !kw.contains_key("llm_security_analyzer") {
                kw.insert("llm_security_analyzer".into(), Value::Bool(true));
            }
            kw
        });
        let condenser = match obj.get("condenser") {
            None | Some(Value::Null) => Some(None),
            Some(c) => Condenser::parse(c, &at.key("condenser"), val).map(Some),
        };
        let critic = match obj.get("critic") {
            None | Some(Value::Null) => Some(None),
            Some(c) => parse_critic(c, &at.key("critic"), val).map(Some),
        };
        let tool_concurrency_limit = match obj.get("tool_concurrency_limit") {
            None => Some(1),
            Some(n) => val
                .integer(n, &at.key("tool_concurrency_limit"))
                .filter(|i| val.check_ge(*i, 1, n, &at.key("tool_concurrency_limit")))
                .map(|i| i as u64),
        };
        let persona = match obj.get("persona") {
            None => Some(None),
            Some(p) => val.opt_string(p, &at.key("persona")),
        };
        if val.len() != before {
            return None;
        }
        Some(Agent {
            llm: llm?,
            tools: tools?,
            mcp_config: mcp_config?,
            filter_tools_regex: filter_tools_regex?,
            include_default_tools: include_default_tools?,
            agent_context: agent_context?,
            system_prompt: system_prompt?,
            system_prompt_filename: system_prompt_filename?,
            security_policy_filename: security_policy_filename?,
            system_prompt_kwargs: system_prompt_kwargs?,
            condenser: condenser?,
            critic: critic?,
            tool_concurrency_limit: tool_concurrency_limit?,
            persona: persona?,
        })
    }

    /// Every secret value this agent carries (LLM keys, MCP env and headers,
    /// context secrets), for masking.
    pub fn secret_values(&self) -> Vec<String> {
        let mut json = self.to_json();
        let mut out = Vec::new();
        walk_secrets(&mut json, &mut |s: &mut Value| {
            if let Value::String(text) = s {
                if !text.is_empty() {
                    out.push(text.clone());
                }
            }
        });
        out
    }
}

/// A discriminated-union member's fields without the discriminator, as
/// pydantic shows them in `missing` errors.
pub fn without_kind(obj: &Map<String, Value>) -> Map<String, Value> {
    obj.iter()
        .filter(|(k, _)| *k != "kind")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn add_security_kwarg(obj: &mut Map<String, Value>) {
    let mut kw = match obj.get("system_prompt_kwargs") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if !kw.contains_key("llm_security_analyzer") {
        kw.insert("llm_security_analyzer".into(), Value::Bool(true));
    }
    obj.insert("system_prompt_kwargs".into(), Value::Object(kw));
}

fn string_list(v: &Value, at: &Path, val: &mut Validator) -> Option<Vec<String>> {
    let items = val.list(v, at)?;
    let before = val.len();
    let out: Vec<Option<String>> = items
        .iter()
        .enumerate()
        .map(|(i, s)| val.string(s, &at.index(i)))
        .collect();
    if val.len() != before {
        return None;
    }
    Some(out.into_iter().flatten().collect())
}

fn parse_tools(v: &Value, at: &Path, val: &mut Validator) -> Option<Vec<ToolSpec>> {
    let items = val.list(v, at)?;
    let before = val.len();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let here = at.index(i);
        let Some(obj) = val.model(item, &here, "Tool") else {
            continue;
        };
        let name = val
            .required(obj, "name", &here)
            .and_then(|n| val.string(n, &here.key("name")));
        let params = match obj.get("params") {
            None | Some(Value::Null) => Some(Map::new()),
            Some(p) => val.dict(p, &here.key("params")).cloned(),
        };
        if let (Some(name), Some(params)) = (name, params) {
            out.push(ToolSpec { name, params });
        }
    }
    (val.len() == before).then_some(out)
}

fn parse_mcp_config(v: &Value, at: &Path, val: &mut Validator) -> Option<Map<String, Value>> {
    let servers = val.dict(v, at)?;
    let before = val.len();
    let mut out = Map::new();
    for (name, server) in servers {
        let Some(obj) = val.dict(server, &at.key(name)) else {
            continue;
        };
        let mut m = obj.clone();
        if !m.contains_key("enabled") {
            m.insert("enabled".into(), Value::Bool(true));
        }
        out.insert(name.clone(), Value::Object(m));
    }
    (val.len() == before).then_some(out)
}

/// `(field, default)` pairs in the Python order of a `Skill`.
fn skill_defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("trigger", Value::Null),
        ("source", Value::Null),
        ("mcp_tools", Value::Null),
        ("inputs", Value::Array(vec![])),
        ("is_agentskills_format", Value::Bool(false)),
        ("version", Value::String("1.0.0".into())),
        ("description", Value::Null),
        ("license", Value::Null),
        ("compatibility", Value::Null),
        ("metadata", Value::Null),
        ("allowed_tools", Value::Null),
        ("disable_model_invocation", Value::Bool(false)),
        ("resources", Value::Null),
    ]
}

fn parse_agent_context(v: &Value, at: &Path, val: &mut Validator) -> Option<Map<String, Value>> {
    let obj = val.model(v, at, "AgentContext")?;
    let before = val.len();
    let mut skills = Vec::new();
    if let Some(list) = obj.get("skills").filter(|s| !s.is_null()) {
        if let Some(items) = val.list(list, &at.key("skills")) {
            for (i, s) in items.iter().enumerate() {
                let here = at.key("skills").index(i);
                let Some(sk) = val.model(s, &here, "Skill") else {
                    continue;
                };
                let name = val
                    .required(sk, "name", &here)
                    .and_then(|n| val.string(n, &here.key("name")));
                let content = val
                    .required(sk, "content", &here)
                    .and_then(|c| val.string(c, &here.key("content")));
                let (Some(name), Some(content)) = (name, content) else {
                    continue;
                };
                let mut m = Map::new();
                m.insert("name".into(), name.into());
                m.insert("content".into(), content.into());
                for (k, d) in skill_defaults() {
                    m.insert(k.into(), sk.get(k).cloned().unwrap_or(d));
                }
                skills.push(Value::Object(m));
            }
        }
    }
    let defaults: Vec<(&str, Value)> = vec![
        ("system_message_suffix", Value::Null),
        ("user_message_suffix", Value::Null),
        ("load_user_skills", Value::Bool(false)),
        ("load_public_skills", Value::Bool(false)),
        (
            "marketplace_path",
            Value::String("marketplaces/default.json".into()),
        ),
        ("registered_marketplaces", Value::Array(vec![])),
        ("load_project_skills", Value::Bool(false)),
        ("load_memory", Value::Bool(false)),
        ("disabled_skills", Value::Array(vec![])),
        ("secrets", Value::Null),
        (
            "current_datetime",
            Value::String(crate::util::time::utc_timestamp(crate::util::time::now())),
        ),
    ];
    let mut m = Map::new();
    m.insert("skills".into(), Value::Array(skills));
    for (k, d) in defaults {
        let v = obj.get(k).cloned().unwrap_or(d);
        if k.starts_with("load_") {
            if let Some(b) = val.boolean(&v, &at.key(k)) {
                m.insert(k.into(), Value::Bool(b));
            }
            continue;
        }
        m.insert(k.into(), v);
    }
    (val.len() == before).then_some(m)
}

fn parse_critic(v: &Value, at: &Path, val: &mut Validator) -> Option<Map<String, Value>> {
    let obj = val.model(v, at, "CriticBase")?;
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !CRITIC_KINDS.contains(&kind) {
        val.value_error(
            at,
            v,
            &unknown_kind_message(kind, CRITIC_BASE, &CRITIC_KINDS),
        );
        return None;
    }
    let mut m = Map::new();
    if kind == "APIBasedCritic" {
        val.required(&without_kind(obj), "api_key", at)?;
        for (k, v) in obj {
            if k != "kind" {
                m.insert(k.clone(), v.clone());
            }
        }
    } else {
        m.insert(
            "mode".into(),
            obj.get("mode")
                .cloned()
                .unwrap_or_else(|| "finish_and_message".into()),
        );
        m.insert(
            "iterative_refinement".into(),
            obj.get("iterative_refinement")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    m.insert("kind".into(), kind.into());
    Some(m)
}

/// The type of one LLM field, for validation.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    OptStr,
    Lit(&'static [&'static str]),
    OptLit(&'static [&'static str]),
    Int(i64),
    OptInt(i64),
    Float(f64),
    OptFloat(f64, Option<f64>),
    Bool,
    OptBool,
    Dict,
    OptDict,
}

const LLM_FIELDS: &[(&str, Ty)] = &[
    ("model", Ty::Str),
    ("api_key", Ty::OptStr),
    ("provider_connection_id", Ty::OptStr),
    ("auth_type", Ty::Lit(&["api_key", "subscription"])),
    ("subscription_vendor", Ty::OptLit(&["openai"])),
    ("base_url", Ty::OptStr),
    ("api_version", Ty::OptStr),
    ("aws_access_key_id", Ty::OptStr),
    ("aws_secret_access_key", Ty::OptStr),
    ("aws_session_token", Ty::OptStr),
    ("aws_region_name", Ty::OptStr),
    ("aws_profile_name", Ty::OptStr),
    ("aws_role_name", Ty::OptStr),
    ("aws_session_name", Ty::OptStr),
    ("aws_bedrock_runtime_endpoint", Ty::OptStr),
    ("openrouter_site_url", Ty::Str),
    ("openrouter_app_name", Ty::Str),
    ("num_retries", Ty::Int(0)),
    ("retry_multiplier", Ty::Float(0.0)),
    ("retry_min_wait", Ty::Int(0)),
    ("retry_max_wait", Ty::Int(0)),
    ("timeout", Ty::OptInt(0)),
    ("stream_idle_timeout", Ty::OptFloat(0.0, None)),
    ("max_message_chars", Ty::Int(1)),
    ("temperature", Ty::OptFloat(0.0, None)),
    ("top_p", Ty::OptFloat(0.0, Some(1.0))),
    ("top_k", Ty::OptFloat(0.0, None)),
    ("max_input_tokens", Ty::OptInt(1)),
    ("max_output_tokens", Ty::OptInt(1)),
    ("model_canonical_name", Ty::OptStr),
    ("api_mode", Ty::Lit(&["auto", "chat", "responses"])),
    ("capability_overrides", Ty::Dict),
    ("extra_headers", Ty::OptDict),
    ("input_cost_per_token", Ty::OptFloat(0.0, None)),
    ("output_cost_per_token", Ty::OptFloat(0.0, None)),
    ("ollama_base_url", Ty::OptStr),
    ("stream", Ty::Bool),
    ("drop_params", Ty::Bool),
    ("disable_vision", Ty::OptBool),
    ("disable_stop_word", Ty::OptBool),
    ("caching_prompt", Ty::Bool),
    ("log_completions", Ty::Bool),
    ("log_completions_folder", Ty::Str),
    ("custom_tokenizer", Ty::OptStr),
    ("native_tool_calling", Ty::Bool),
    ("force_string_serializer", Ty::OptBool),
    ("inline_image_urls", Ty::OptBool),
    ("reasoning_effort", Ty::OptStr),
    ("reasoning_summary", Ty::OptStr),
    ("enable_encrypted_reasoning", Ty::Bool),
    ("prompt_cache_retention", Ty::OptStr),
    ("extended_thinking_budget", Ty::OptInt(i64::MIN)),
    ("seed", Ty::OptInt(i64::MIN)),
    ("usage_id", Ty::Str),
    ("litellm_extra_body", Ty::Dict),
];

fn check_field(ty: Ty, v: &Value, at: &Path, val: &mut Validator) -> Option<Value> {
    match ty {
        Ty::OptStr
        | Ty::OptLit(_)
        | Ty::OptInt(_)
        | Ty::OptFloat(..)
        | Ty::OptBool
        | Ty::OptDict
            if v.is_null() =>
        {
            Some(Value::Null)
        }
        Ty::Str | Ty::OptStr => val.string(v, at).map(Value::String),
        Ty::Lit(allowed) | Ty::OptLit(allowed) => match v.as_str() {
            Some(s) if allowed.contains(&s) => Some(v.clone()),
            _ => {
                val.literal_error(at, v, allowed);
                None
            }
        },
        Ty::Int(ge) | Ty::OptInt(ge) => val
            .integer(v, at)
            .filter(|n| val.check_ge(*n, ge, v, at))
            .map(Value::from),
        Ty::Float(ge) | Ty::OptFloat(ge, None) => val
            .number(v, at)
            .filter(|f| val.check_float(*f, FloatBound::Ge(ge), v, at))
            .map(Value::from),
        Ty::OptFloat(ge, Some(le)) => val
            .number(v, at)
            .filter(|f| {
                val.check_float(*f, FloatBound::Ge(ge), v, at)
                    && val.check_float(*f, FloatBound::Le(le), v, at)
            })
            .map(Value::from),
        Ty::Bool | Ty::OptBool => val.boolean(v, at).map(Value::Bool),
        Ty::Dict | Ty::OptDict => val.dict(v, at).map(|m| Value::Object(m.clone())),
    }
}

/// Validates an `LLM` object (agent.md §12): types and bounds per field,
/// unknown keys ignored.
pub fn parse_llm(v: &Value, at: &Path, val: &mut Validator) -> Option<LlmConfig> {
    let obj = val.model(v, at, "LLM")?;
    let model_ok = match obj.get("model") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Null) | None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => true,
    };
    if !model_ok {
        val.value_error(at, v, "model must be specified in LLM");
        return None;
    }
    let before = val.len();
    let mut clean = Map::new();
    for (name, ty) in LLM_FIELDS {
        if let Some(raw) = obj.get(*name) {
            if let Some(ok) = check_field(*ty, raw, &at.key(name), val) {
                clean.insert((*name).to_string(), ok);
            }
        }
    }
    if val.len() != before {
        return None;
    }
    match serde_json::from_value::<LlmConfig>(Value::Object(clean)) {
        Ok(cfg) => Some(cfg),
        Err(e) => {
            val.value_error(at, v, &e.to_string());
            None
        }
    }
}

/// Names of LLM fields that hold secrets.
pub const LLM_SECRET_KEYS: [&str; 4] = LlmConfig::SECRET_FIELDS;

/// Calls `f` on every secret leaf of an agent (or other config) JSON: the
/// LLM secret fields (`api_key`, AWS credentials) at any depth, every value
/// under an MCP server's `env` and `headers`, `agent_context.secrets`
/// values, and critic / analyzer `api_key`s. Nulls are visited too, so a
/// writer can see that nothing is set.
pub fn walk_secrets(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    walk_secrets_at(v, &mut |_, leaf| f(leaf));
}

/// [`walk_secrets`] with the path of each leaf (object keys from the root).
pub fn walk_secrets_at(v: &mut Value, f: &mut dyn FnMut(&[String], &mut Value)) {
    let mut path = Vec::new();
    walk(v, f, Ctx::Plain, &mut path);
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Plain,
    McpServers,
    AllValues,
}

fn walk(v: &mut Value, f: &mut dyn FnMut(&[String], &mut Value), ctx: Ctx, path: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                path.push(k.clone());
                match ctx {
                    Ctx::AllValues => walk_all(child, f, path),
                    Ctx::McpServers => {
                        // child is one server config.
                        if let Value::Object(server) = child {
                            for (sk, sv) in server.iter_mut() {
                                path.push(sk.clone());
                                if matches!(sk.as_str(), "env" | "headers") {
                                    walk_all(sv, f, path);
                                } else if LLM_SECRET_KEYS.contains(&sk.as_str()) {
                                    f(path, sv);
                                } else {
                                    walk(sv, f, Ctx::Plain, path);
                                }
                                path.pop();
                            }
                        }
                    }
                    Ctx::Plain => {
                        if LLM_SECRET_KEYS.contains(&k.as_str()) {
                            if child.is_string() || child.is_null() {
                                f(path, child);
                            }
                        } else if k == "mcp_config" {
                            walk(child, f, Ctx::McpServers, path);
                        } else if k == "secrets" && child.is_object() {
                            walk(child, f, Ctx::AllValues, path);
                        } else {
                            walk(child, f, Ctx::Plain, path);
                        }
                    }
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(item, f, ctx, path);
                path.pop();
            }
        }
        _ => {}
    }
}

fn walk_all(v: &mut Value, f: &mut dyn FnMut(&[String], &mut Value), path: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                path.push(k.clone());
                walk_all(child, f, path);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk_all(item, f, path);
                path.pop();
            }
        }
        _ => f(path, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Agent, Value> {
        let mut val = Validator::new();
        let a = Agent::parse(&v, &Path::root("body").key("agent"), &mut val);
        match a {
            Some(a) if val.is_ok() => Ok(a),
            _ => Err(serde_json::to_value(val.into_errors()).unwrap()),
        }
    }

    #[test]
    fn fills_every_default_in_python_order() {
        let a = parse(json!({"llm":{"model":"openai/gpt-4o","api_key":"sk","usage_id":"agent","num_retries":0},
            "tools":[{"name":"terminal"}]}))
        .unwrap();
        let out = a.to_json();
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "llm",
                "tools",
                "mcp_config",
                "filter_tools_regex",
                "include_default_tools",
                "agent_context",
                "system_prompt",
                "system_prompt_filename",
                "security_policy_filename",
                "system_prompt_kwargs",
                "condenser",
                "critic",
                "tool_concurrency_limit",
                "persona",
                "kind"
            ]
        );
        assert_eq!(out["tools"], json!([{"name":"terminal","params":{}}]));
        assert_eq!(
            out["system_prompt_kwargs"],
            json!({"llm_security_analyzer":true})
        );
        assert_eq!(out["llm"]["num_retries"], 0);
        assert_eq!(out["llm"]["is_subscription"], false);
        assert_eq!(a.secret_values(), vec!["sk".to_string()]);
    }

    #[test]
    fn reports_errors_like_pydantic() {
        let errs = parse(json!({"llm":{"api_key":"k"}})).unwrap_err();
        assert_eq!(
            errs,
            json!([{"type":"value_error","loc":["body","agent","llm"],"msg":"Value error, model must be specified in LLM","input":{"api_key":"<redacted>"},"ctx":{"error":"model must be specified in LLM"}}])
        );
        let errs =
            parse(json!({"llm":{"model":"m","num_retries":-1,"temperature":"hot"}})).unwrap_err();
        assert_eq!(errs[0]["type"], "greater_than_equal");
        assert_eq!(errs[0]["ctx"], json!({"ge":0}));
        assert_eq!(errs[1]["type"], "float_parsing");
        let errs =
            parse(json!({"llm":{"model":"m"},"condenser":{"kind":"LLMSummarizingCondenser"}}))
                .unwrap_err();
        assert_eq!(
            errs,
            json!([{"type":"missing","loc":["body","agent","condenser","llm"],"msg":"Field required","input":{}}])
        );
        let errs = parse(json!({"tools":[]})).unwrap_err();
        assert!(errs[0]["msg"].as_str().unwrap().contains("Unknown kind ''"));
    }

    #[test]
    fn walks_every_secret_leaf() {
        let mut v = json!({"llm":{"api_key":"a","aws_session_token":null,"model":"m"},
            "mcp_config":{"s":{"command":"x","env":{"K":"b"},"headers":{"H":"c"}}},
            "condenser":{"llm":{"api_key":"d"}},"agent_context":{"secrets":{"T":"e"}}});
        let mut seen = vec![];
        walk_secrets(&mut v, &mut |s| seen.push(s.clone()));
        assert_eq!(
            seen,
            vec![
                json!("a"),
                Value::Null,
                json!("b"),
                json!("c"),
                json!("d"),
                json!("e")
            ]
        );
    }
}
