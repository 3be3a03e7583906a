//! The tools of one conversation: resolved from the agent's specs, created
//! for its workspace, and described twice: to the LLM (function schemas
//! with `security_risk` and `summary`) and in the `SystemPromptEvent`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::api::agent::Agent;
use crate::llm::ToolSchema;
use crate::tools::invoke_skill::{invoke_skill_tool, SkillEntry, INVOKE_SKILL, INVOKE_SKILL_CLASS};
use crate::tools::{registry, Tool, ToolDefinition, ToolEnv, ToolFactory, ToolSettings};

/// Description of the `security_risk` argument (agent.md §4.2, verbatim:
/// the model reads it).
const SECURITY_RISK_DESCRIPTION: &str = "Security risk levels for actions.\n\nBased on OpenHands security risk levels but adapted for agent-sdk.\nInteger values allow for easy comparison and ordering.";

/// Description of the `summary` argument (agent.md §4.2, verbatim).
const SUMMARY_DESCRIPTION: &str = "A concise summary (approximately 10 words) describing what this specific action does. Focus on the key operation and target. Example: 'List all Python files in current directory'";

/// The tools of one conversation, in the order the LLM sees them.
pub struct Toolset {
    /// The tool instances.
    pub tools: Vec<Arc<dyn Tool>>,
    /// What the LLM is offered, one per tool.
    pub schemas: Vec<ToolSchema>,
    /// Extra system-prompt guidance contributed by the tools (browser).
    pub guidance: Vec<&'static str>,
}

impl Toolset {
    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.definition().name == name)
    }

    /// The tool names, in order.
    pub fn names(&self) -> Vec<String> {
        self.tools
            .iter()
            .map(|t| t.definition().name.clone())
            .collect()
    }

    /// The `tools` list of the `SystemPromptEvent`.
    pub fn event_definitions(&self) -> Vec<Value> {
        self.tools
            .iter()
            .map(|t| definition_json(t.definition()))
            .collect()
    }

    /// Releases every tool (processes, browsers).
    pub async fn close(&self) {
        for tool in &self.tools {
            tool.close().await;
        }
    }
}

/// Where the tools of a conversation live and what they may know.
#[derive(Clone, Debug)]
pub struct ToolPlace {
    /// The working directory.
    pub working_dir: PathBuf,
    /// The conversation directory.
    pub conversation_dir: PathBuf,
    /// Whether the model takes images.
    pub vision: bool,
    /// Whether the model is called over the Responses API (apply_patch's schema differs).
    pub responses_api: bool,
    /// Server-level tool settings.
    pub settings: Arc<ToolSettings>,
    /// What `invoke_skill` can find.
    pub skills: Arc<Vec<SkillEntry>>,
    /// Attach `invoke_skill` even when `include_default_tools` does not name it.
    pub attach_invoke_skill: bool,
}

/// Resolves and creates the agent's tools: the requested specs in order,
/// those whose name matches `filter_tools_regex` (anchored at the start,
/// like Python's `re.match`), then the built-ins of `include_default_tools`,
/// then `invoke_skill` when `place` asks for it. Blocking (tools may start processes): call from `spawn_blocking`.
pub fn build(agent: &Agent, place: &ToolPlace) -> Result<Toolset, String> {
    let env = |params: Map<String, Value>| ToolEnv {
        working_dir: place.working_dir.clone(),
        conversation_dir: place.conversation_dir.clone(),
        params,
        vision: place.vision,
        settings: place.settings.clone(),
    };
    let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
    for spec in &agent.tools {
        let factory = resolve(&spec.name)
            .ok_or_else(|| format!("ToolDefinition '{}' is not registered", spec.name))?;
        let created = (factory.create)(&env(spec.params.clone()))
            .map_err(|e| format!("Tool '{}' could not be created: {e}", spec.name))?;
        tools.extend(created);
    }
    if let Some(pattern) = agent.filter_tools_regex.as_deref() {
        let re = regex::Regex::new(&format!("^(?:{pattern})"))
            .map_err(|e| format!("Invalid filter_tools_regex '{pattern}': {e}"))?;
        tools.retain(|t| re.is_match(&t.definition().name));
    }
    let invoke_skill = || invoke_skill_tool(place.skills.clone(), place.working_dir.clone());
    for class in &agent.include_default_tools {
        if class == INVOKE_SKILL_CLASS {
            tools.push(invoke_skill());
            continue;
        }
        let factory = registry::builtin_by_class(class)
            .ok_or_else(|| format!("Unknown default tool '{class}'"))?;
        tools.extend((factory.create)(&env(Map::new()))?);
    }
    if place.attach_invoke_skill && !tools.iter().any(|t| t.definition().name == INVOKE_SKILL) {
        tools.push(invoke_skill());
    }
    let mut seen = HashSet::new();
    let duplicates: Vec<String> = tools
        .iter()
        .map(|t| t.definition().name.clone())
        .filter(|n| !seen.insert(n.clone()))
        .collect();
    if !duplicates.is_empty() {
        return Err(format!(
            "Duplicate tool names found: {}",
            duplicates.join(", ")
        ));
    }
    let schemas = tools
        .iter()
        .map(|t| llm_schema(t.definition(), place.responses_api))
        .collect();
    let guidance = if tools
        .iter()
        .any(|t| t.definition().name.starts_with("browser_"))
    {
        vec![crate::tools::browser::BROWSER_PROMPT_GUIDANCE]
    } else {
        Vec::new()
    };
    Ok(Toolset {
        tools,
        schemas,
        guidance,
    })
}

/// A spec name: a registered tool, or a built-in by class name.
fn resolve(name: &str) -> Option<ToolFactory> {
    registry::find(name).or_else(|| registry::builtin_by_class(name))
}

/// Whether a tool declares a `summary` parameter of its own (then the
/// agent's `summary` is not added and the tool keeps the argument).
pub fn has_own_summary(def: &ToolDefinition) -> bool {
    def.parameters
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key("summary"))
}

/// The function schema the LLM sees: the tool's parameters with
/// `security_risk` (tools that are not read-only) and `summary` first.
pub fn llm_schema(def: &ToolDefinition, responses_api: bool) -> ToolSchema {
    let mut parameters = if responses_api && def.name == "apply_patch" {
        crate::tools::apply_patch::responses_parameters()
    } else {
        def.parameters.clone()
    };
    if let Some(obj) = parameters.as_object_mut() {
        let own = obj
            .remove("properties")
            .and_then(|p| match p {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        let mut props = Map::new();
        if !def.annotations.read_only {
            props.insert(
                "security_risk".into(),
                json!({"type": "string", "description": SECURITY_RISK_DESCRIPTION,
                       "enum": ["UNKNOWN", "LOW", "MEDIUM", "HIGH"]}),
            );
        }
        if !own.contains_key("summary") {
            props.insert(
                "summary".into(),
                json!({"type": "string", "description": SUMMARY_DESCRIPTION}),
            );
        }
        props.extend(own);
        // Keep `type` first, then `properties`, then whatever followed.
        let mut out = Map::new();
        if let Some(t) = obj.remove("type") {
            out.insert("type".into(), t);
        }
        out.insert("properties".into(), Value::Object(props));
        out.extend(std::mem::take(obj));
        *obj = out;
    }
    ToolSchema {
        name: def.name.clone(),
        description: def.description.clone(),
        parameters,
    }
}

/// A tool as the `SystemPromptEvent` lists it (full form, nulls included).
pub fn definition_json(def: &ToolDefinition) -> Value {
    json!({
        "description": def.description,
        "action_type": def.action_kind,
        "observation_type": def.observation_kind,
        "annotations": def.annotations.to_json(),
        "meta": null,
        "kind": def.class_name,
        "title": def.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::agent::ToolSpec;
    use crate::config::Config;

    fn place(dir: &std::path::Path) -> ToolPlace {
        ToolPlace {
            working_dir: dir.to_path_buf(),
            conversation_dir: dir.to_path_buf(),
            vision: false,
            responses_api: false,
            settings: registry::tool_settings(&Config::default()),
            skills: Arc::new(Vec::new()),
            attach_invoke_skill: false,
        }
    }

    fn agent(tools: &[&str]) -> Agent {
        let v = json!({"kind": "Agent", "llm": {"model": "openai/m"},
                       "tools": tools.iter().map(|t| json!({"name": t})).collect::<Vec<_>>()});
        let mut val = crate::api::validate::Validator::new();
        Agent::parse(&v, &crate::api::validate::Path::root("body"), &mut val).unwrap()
    }

    #[test]
    fn specs_then_builtins_with_injected_arguments_first() {
        let dir = tempfile::tempdir().unwrap();
        let set = build(&agent(&["task_tracker", "glob"]), &place(dir.path())).unwrap();
        assert_eq!(set.names(), ["task_tracker", "glob", "finish", "think"]);
        let keys = |i: usize| -> Vec<String> {
            set.schemas[i].parameters["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(keys(0)[..3], ["security_risk", "summary", "command"]);
        assert_eq!(keys(1)[..2], ["summary", "pattern"]);
        assert_eq!(keys(2), ["summary", "message"]);
        let def = definition_json(set.tools[2].definition());
        assert_eq!(def["kind"], "FinishTool");
        assert_eq!(def["title"], "finish");
        assert!(def["meta"].is_null());
    }

    #[test]
    fn invoke_skill_is_attached_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = place(dir.path());
        p.attach_invoke_skill = true;
        let set = build(&agent(&[]), &p).unwrap();
        assert_eq!(set.names(), ["finish", "think", "invoke_skill"]);
        let keys: Vec<&String> = set.schemas[2].parameters["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["summary", "name"]);
        let def = definition_json(set.tools[2].definition());
        assert_eq!(def["kind"], "InvokeSkillTool");
        assert_eq!(def["annotations"]["readOnlyHint"], true);
        let mut a = agent(&[]);
        a.include_default_tools = vec!["InvokeSkillTool".into(), "FinishTool".into()];
        let set = build(&a, &p).unwrap();
        assert_eq!(set.names(), ["invoke_skill", "finish"]);
    }

    #[test]
    fn regex_filter_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = agent(&["task_tracker", "glob", "grep"]);
        a.filter_tools_regex = Some("g".into());
        let set = build(&a, &place(dir.path())).unwrap();
        assert_eq!(set.names(), ["glob", "grep", "finish", "think"]);
        let mut a = agent(&["glob"]);
        a.tools.push(ToolSpec {
            name: "glob".into(),
            params: Map::new(),
        });
        let err = build(&a, &place(dir.path())).err().unwrap();
        assert!(err.contains("Duplicate tool names"), "{err}");
        let mut a = agent(&[]);
        a.include_default_tools = vec!["NoSuchTool".into()];
        assert!(build(&a, &place(dir.path())).is_err());
    }
}
