//! From the model's tool calls to `ActionEvent`s (agent.md §4.3): argument
//! parsing and repair, tool-name normalisation, `security_risk` and
//! `summary`, validation, and the error events the model can correct.

use serde_json::{json, Map, Value};

use crate::api::event::{
    ActionEvent, AgentErrorEvent, ErrorClassification, Event, EventBody, SecurityRisk,
};
use crate::api::message::{Content, MessageToolCall};
use crate::llm::pyjson::dumps;
use crate::util::pyfmt::{repr_json, repr_str};

use super::toolset::{has_own_summary, Toolset};

/// What goes on the first action of a response only.
#[derive(Clone, Debug, Default)]
pub struct ResponseExtras {
    /// The response's text parts.
    pub thought: Vec<Content>,
    /// `reasoning_content`.
    pub reasoning_content: Option<String>,
    /// Anthropic thinking blocks.
    pub thinking_blocks: Vec<Value>,
    /// The Responses-API reasoning item.
    pub responses_reasoning_item: Option<Value>,
}

/// One converted call.
#[derive(Debug)]
pub enum Converted {
    /// An executable action.
    Action(Box<Event>),
    /// A call that could not become an action: the `ActionEvent` without
    /// `action` and the `AgentErrorEvent` the model sees as its result.
    Failed(Box<Event>, Box<Event>),
}

/// Tool names the model sometimes uses for ours.
const ALIASES: [(&str, &str); 8] = [
    ("bash", "terminal"),
    ("command", "terminal"),
    ("execute", "terminal"),
    ("execute_bash", "terminal"),
    ("git", "terminal"),
    ("reset", "terminal"),
    ("str_replace", "file_editor"),
    ("str_replace_editor", "file_editor"),
];

/// Converts one tool call of a response.
pub fn convert(
    call: &MessageToolCall,
    toolset: &Toolset,
    analyzer_configured: bool,
    llm_response_id: &str,
    extras: ResponseExtras,
) -> Converted {
    let requested = call.name.as_str();
    let fail = |tool_name: &str, error: String, call: MessageToolCall, extras: ResponseExtras| {
        failed(tool_name, error, call, llm_response_id, extras)
    };
    let arguments = match parse_arguments(&call.arguments) {
        Ok(a) => a,
        Err(e) => {
            let error =
                format!("Error validating tool '{requested}': {e}. Arguments: unparseable JSON");
            let mut call = call.clone();
            call.arguments =
                dumps(&json!({"_openhands_malformed_tool_call": true, "error": error}));
            return fail(requested, error, call, extras);
        }
    };
    let (tool_name, mut arguments) = match normalize(requested, arguments, toolset) {
        Ok(n) => n,
        Err(e) => {
            let error = format!(
                "Error validating tool '{}': {}. Parameters provided: {}",
                e.tool, e.message, e.keys
            );
            return fail(&e.tool, error, call.clone(), extras);
        }
    };
    let Some(tool) = toolset.get(&tool_name) else {
        let available: Vec<String> = toolset.names().iter().map(|n| repr_str(n)).collect();
        let error = format!(
            "Tool '{tool_name}' not found. Available: [{}]",
            available.join(", ")
        );
        return fail(&tool_name, error, call.clone(), extras);
    };
    let def = tool.definition();
    repair_arguments(&mut arguments, &def.parameters);
    let mut normalized_call = call.clone();
    normalized_call.name = tool_name.clone();
    normalized_call.arguments = dumps(&Value::Object(arguments.clone()));

    let raw_risk = arguments.remove("security_risk");
    let risk = if def.annotations.read_only || !analyzer_configured {
        Ok(SecurityRisk::Unknown)
    } else {
        match raw_risk {
            None => Ok(SecurityRisk::Unknown),
            Some(v) => match v.as_str() {
                Some("UNKNOWN") => Ok(SecurityRisk::Unknown),
                Some("LOW") => Ok(SecurityRisk::Low),
                Some("MEDIUM") => Ok(SecurityRisk::Medium),
                Some("HIGH") => Ok(SecurityRisk::High),
                _ => Err(format!("{} is not a valid SecurityRisk", repr_json(&v))),
            },
        }
    };
    let risk = match risk {
        Ok(r) => r,
        Err(e) => {
            let error = format!(
                "Error validating tool '{requested}': {e}. Parameters provided: {}",
                keys_repr(&arguments)
            );
            return fail(requested, error, call.clone(), extras);
        }
    };
    let summary = if has_own_summary(def) {
        match arguments
            .get("summary")
            .and_then(Value::as_str)
            .map(str::trim)
        {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => format!("{tool_name}: {}", dumps(&Value::Object(arguments.clone()))),
        }
    } else {
        match arguments.remove("summary") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            _ => format!("{tool_name}: {}", dumps(&Value::Object(arguments.clone()))),
        }
    };
    let action = match tool.validate(&arguments) {
        Ok(a) => a,
        Err(e) => {
            let error = format!(
                "Error validating tool '{requested}': {e}. Parameters provided: {}",
                keys_repr(&arguments)
            );
            return fail(requested, error, call.clone(), extras);
        }
    };
    Converted::Action(Box::new(Event::new(EventBody::Action(ActionEvent {
        thought: extras.thought,
        reasoning_content: extras.reasoning_content,
        thinking_blocks: extras.thinking_blocks,
        responses_reasoning_item: extras.responses_reasoning_item,
        action: Some(action),
        tool_name,
        tool_call_id: normalized_call.id.clone(),
        tool_call: normalized_call,
        llm_response_id: llm_response_id.to_string(),
        security_risk: risk,
        critic_result: None,
        summary: Some(summary),
    }))))
}

fn failed(
    tool_name: &str,
    error: String,
    call: MessageToolCall,
    llm_response_id: &str,
    extras: ResponseExtras,
) -> Converted {
    let action = Event::new(EventBody::Action(ActionEvent {
        thought: extras.thought,
        reasoning_content: extras.reasoning_content,
        thinking_blocks: extras.thinking_blocks,
        responses_reasoning_item: extras.responses_reasoning_item,
        action: None,
        tool_name: call.name.clone(),
        tool_call_id: call.id.clone(),
        tool_call: call.clone(),
        llm_response_id: llm_response_id.to_string(),
        security_risk: SecurityRisk::Unknown,
        critic_result: None,
        summary: None,
    }));
    let error = Event::new(EventBody::AgentError(AgentErrorEvent {
        tool_name: tool_name.to_string(),
        tool_call_id: call.id,
        error,
        classification: Some(ErrorClassification::agent_action()),
    }));
    Converted::Failed(Box::new(action), Box::new(error))
}

/// Python's `repr` of the argument names (`['command', 'path']`).
fn keys_repr(arguments: &Map<String, Value>) -> String {
    let keys: Vec<String> = arguments.keys().map(|k| repr_str(k)).collect();
    format!("[{}]", keys.join(", "))
}

/// Parses the arguments text; raw control characters inside strings are
/// escaped on a second try (some models emit literal newlines). Anything
/// but an object counts as no arguments; null values are dropped.
fn parse_arguments(text: &str) -> Result<Map<String, Value>, String> {
    let parsed: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(first) => serde_json::from_str(&escape_controls_in_strings(text))
            .map_err(|_| python_json_error(&first))?,
    };
    let Value::Object(map) = parsed else {
        return Ok(Map::new());
    };
    Ok(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
}

/// A JSON error worded like Python's `json.JSONDecodeError`.
fn python_json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "Expecting value",
        _ => "Invalid JSON",
    };
    format!("{what}: line {} column {}", e.line(), e.column())
}

fn escape_controls_in_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

/// Why a call's tool or arguments could not be normalised.
struct NormalizeError {
    tool: String,
    message: String,
    /// The argument names, as Python prints a list.
    keys: String,
}

/// Maps legacy or malformed tool names to ours and infers a missing
/// `file_editor` command.
fn normalize(
    requested: &str,
    mut arguments: Map<String, Value>,
    toolset: &Toolset,
) -> Result<(String, Map<String, Value>), NormalizeError> {
    let has = |n: &str| toolset.get(n).is_some();
    let mut name = requested.to_string();
    if !has(requested) {
        let base: String = requested
            .chars()
            .enumerate()
            .take_while(|(i, c)| {
                c.is_ascii_alphabetic() || *c == '_' || (*i > 0 && c.is_ascii_digit())
            })
            .map(|(_, c)| c)
            .collect();
        let base = if base.is_empty() {
            requested.to_string()
        } else {
            base
        };
        let alias = ALIASES.iter().find(|(a, _)| *a == base).map(|(_, t)| *t);
        if base != requested && has(&base) {
            name = base;
        } else if let Some(target) = alias.filter(|t| has(t)) {
            name = target.to_string();
            if target == "terminal" && base == "git" {
                let command = arguments
                    .get("command")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let mut kept: Map<String, Value> = arguments
                    .iter()
                    .filter(|(k, _)| *k == "security_risk" || *k == "summary")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let full = match command {
                    None => "git".to_string(),
                    Some(c) if c.split_whitespace().next() == Some("git") => c,
                    Some(c) => format!("git {c}"),
                };
                kept.insert("command".into(), Value::String(full));
                arguments = kept;
            }
        }
    }
    if name == "file_editor" && !arguments.contains_key("command") {
        let inferred = if arguments.contains_key("old_str") {
            Some("str_replace")
        } else if arguments.contains_key("insert_line") {
            Some("insert")
        } else if arguments.contains_key("file_text") {
            Some("create")
        } else if arguments.contains_key("path") {
            Some("view")
        } else {
            None
        };
        match inferred {
            Some(cmd) => {
                let mut with = Map::new();
                with.insert("command".into(), Value::String(cmd.into()));
                with.extend(arguments);
                arguments = with;
            }
            None => {
                let hints = ["new_str", "view_range"];
                if !hints.iter().any(|h| arguments.contains_key(*h)) {
                    return Err(NormalizeError {
                        tool: name.clone(),
                        message: format!(
                            "Cannot infer 'command' for tool '{name}' from empty arguments {}. Expected one of: str_replace, insert, create, view with appropriate arguments (e.g., old_str for str_replace, path for view).",
                            repr_json(&Value::Object(arguments.clone()))
                        ),
                        keys: keys_repr(&arguments),
                    });
                }
            }
        }
    }
    Ok((name, arguments))
}

/// Repairs what some models get wrong: lists and objects sent as JSON
/// text, and strings sent as a list of string pieces.
fn repair_arguments(arguments: &mut Map<String, Value>, schema: &Value) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, value) in arguments.iter_mut() {
        let Some(prop) = props.get(key) else { continue };
        let types = schema_types(prop);
        let wants = |t: &str| types.iter().any(|x| x == t);
        match value {
            Value::String(s) if (wants("array") || wants("object")) && !wants("string") => {
                if let Ok(decoded) = serde_json::from_str::<Value>(s) {
                    if (decoded.is_array() && wants("array"))
                        || (decoded.is_object() && wants("object"))
                    {
                        *value = decoded;
                    }
                }
            }
            Value::Array(items)
                if wants("string") && !wants("array") && items.iter().all(Value::is_string) =>
            {
                let joined: String = items.iter().filter_map(Value::as_str).collect();
                *value = Value::String(joined);
            }
            _ => {}
        }
    }
}

fn schema_types(prop: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match prop.get("type") {
        Some(Value::String(t)) => out.push(t.clone()),
        Some(Value::Array(ts)) => {
            out.extend(ts.iter().filter_map(Value::as_str).map(str::to_string))
        }
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(list) = prop.get(key).and_then(Value::as_array) {
            for p in list {
                out.extend(schema_types(p));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::toolset::{build, ToolPlace};
    use crate::config::Config;
    use crate::tools::registry;

    fn toolset(dir: &std::path::Path) -> Toolset {
        let v = json!({"kind": "Agent", "llm": {"model": "openai/m"},
                       "tools": [{"name": "task_tracker"}, {"name": "file_editor"}]});
        let mut val = crate::api::validate::Validator::new();
        let agent = crate::api::agent::Agent::parse(
            &v,
            &crate::api::validate::Path::root("body"),
            &mut val,
        )
        .unwrap();
        build(
            &agent,
            &ToolPlace {
                working_dir: dir.to_path_buf(),
                conversation_dir: dir.to_path_buf(),
                vision: false,
                responses_api: false,
                settings: registry::tool_settings(&Config::default()),
                skills: std::sync::Arc::new(Vec::new()),
                attach_invoke_skill: false,
            },
        )
        .unwrap()
    }

    fn call(name: &str, args: &str) -> MessageToolCall {
        MessageToolCall {
            id: "call_1".into(),
            responses_item_id: None,
            name: name.into(),
            arguments: args.into(),
            origin: Default::default(),
        }
    }

    fn action(c: Converted) -> ActionEvent {
        match c {
            Converted::Action(e) => match e.body {
                EventBody::Action(a) => a,
                other => panic!("not an action: {other:?}"),
            },
            other => panic!("not an action: {other:?}"),
        }
    }

    fn failure(c: Converted) -> (ActionEvent, AgentErrorEvent) {
        match c {
            Converted::Failed(a, e) => match (a.body, e.body) {
                (EventBody::Action(a), EventBody::AgentError(e)) => (a, e),
                other => panic!("not a failure: {other:?}"),
            },
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn summary_risk_and_reserialised_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let set = toolset(dir.path());
        let a = action(convert(
            &call("think", r#"{"thought":"héllo","security_risk":"HIGH"}"#),
            &set,
            true,
            "r1",
            ResponseExtras::default(),
        ));
        assert_eq!(
            a.tool_call.arguments,
            r#"{"thought": "h\u00e9llo", "security_risk": "HIGH"}"#
        );
        assert_eq!(
            a.summary.as_deref(),
            Some(r#"think: {"thought": "h\u00e9llo"}"#)
        );
        assert_eq!(a.security_risk, SecurityRisk::Unknown, "think is read-only");
        let a = action(convert(
            &call(
                "task_tracker",
                r#"{"command":"view","security_risk":"HIGH","summary":"look"}"#,
            ),
            &set,
            true,
            "r1",
            ResponseExtras::default(),
        ));
        assert_eq!(a.security_risk, SecurityRisk::High);
        assert_eq!(a.summary.as_deref(), Some("look"));
        let a = action(convert(
            &call(
                "task_tracker",
                r#"{"command":"view","security_risk":"HIGH"}"#,
            ),
            &set,
            false,
            "r1",
            ResponseExtras::default(),
        ));
        assert_eq!(a.security_risk, SecurityRisk::Unknown, "no analyzer");
    }

    #[test]
    fn unknown_tool_invalid_json_and_validation_errors() {
        let dir = tempfile::tempdir().unwrap();
        let set = toolset(dir.path());
        let (a, e) = failure(convert(
            &call("nope", r#"{"a": 1}"#),
            &set,
            false,
            "r",
            ResponseExtras::default(),
        ));
        assert!(a.action.is_none());
        assert_eq!(a.tool_call.arguments, r#"{"a": 1}"#);
        assert_eq!(
            e.error,
            "Tool 'nope' not found. Available: ['task_tracker', 'file_editor', 'finish', 'think']"
        );
        let (a, e) = failure(convert(
            &call("think", "{not json"),
            &set,
            false,
            "r",
            ResponseExtras::default(),
        ));
        let replaced: Value = serde_json::from_str(&a.tool_call.arguments).unwrap();
        assert_eq!(replaced["_openhands_malformed_tool_call"], true);
        assert!(
            e.error.ends_with("Arguments: unparseable JSON"),
            "{}",
            e.error
        );
        let (_, e) = failure(convert(
            &call("think", r#"{"x": 1}"#),
            &set,
            false,
            "r",
            ResponseExtras::default(),
        ));
        assert!(
            e.error.starts_with("Error validating tool 'think': "),
            "{}",
            e.error
        );
        assert!(
            e.error.ends_with(". Parameters provided: ['x']"),
            "{}",
            e.error
        );
        assert_eq!(e.classification, Some(ErrorClassification::agent_action()));
    }

    #[test]
    fn aliases_and_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let set = toolset(dir.path());
        let a = action(convert(
            &call(
                "str_replace_editor",
                r#"{"path": "/tmp/x", "view_range": "[1, 2]"}"#,
            ),
            &set,
            false,
            "r",
            ResponseExtras::default(),
        ));
        assert_eq!(a.tool_name, "file_editor");
        assert_eq!(
            a.tool_call.arguments,
            r#"{"command": "view", "path": "/tmp/x", "view_range": [1, 2]}"#
        );
        let a = action(convert(
            &call("think", "{\"thought\": \"a\nb\"}"),
            &set,
            false,
            "r",
            ResponseExtras::default(),
        ));
        assert_eq!(a.action.unwrap()["thought"], "a\nb");
    }
}
