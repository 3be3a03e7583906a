//! The built-in tools every agent has: `finish` and `think` (tools.md §8).
//!
//! `finish` only echoes its message; ending the run is the agent loop's job
//! (it recognises the tool by name).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::args::ArgReader;
use super::obs::text_observation;
use super::{
    ExecContext, Observation, Tool, ToolAnnotations, ToolDefinition, ToolEnv, ToolError,
    ToolFactory, ToolSetResult,
};

const FINISH_DESCRIPTION: &str = "Signals the completion of the current task or conversation.

Use this tool when:
- You have successfully completed the user's requested task
- You cannot proceed further due to technical limitations or missing information

The message should include:
- A clear summary of actions taken and their results
- Any next steps for the user
- Explanation if you're unable to complete the task
- Any follow-up questions if more information is needed
";

const THINK_DESCRIPTION: &str = "Use the tool to think about something. It will not obtain new information or make any changes to the repository, but just log the thought. Use it when complex reasoning or brainstorming is needed.

Common use cases:
1. When exploring a repository and discovering the source of a bug, call this tool to brainstorm several unique ways of fixing the bug, and assess which change(s) are likely to be simplest and most effective.
2. After receiving test results, use this tool to brainstorm ways to fix failing tests.
3. When planning a complex refactoring, use this tool to outline different approaches and their tradeoffs.
4. When designing a new feature, use this tool to think through architecture decisions and implementation details.
5. When debugging a complex issue, use this tool to organize your thoughts and hypotheses.

The tool simply logs your thought process for better transparency and does not execute any code or make changes.";

/// Which built-in a [`BuiltinTool`] is.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Finish,
    Think,
}

/// `finish` or `think`: tools without side effects.
struct BuiltinTool {
    kind: Kind,
    def: ToolDefinition,
}

fn string_param(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name],
    })
}

/// The `finish` tool: `{message}` → `FinishObservation` with the message.
pub fn finish_tool() -> Arc<dyn Tool> {
    Arc::new(BuiltinTool {
        kind: Kind::Finish,
        def: ToolDefinition {
            name: "finish".into(),
            class_name: "FinishTool".into(),
            description: FINISH_DESCRIPTION.into(),
            parameters: string_param("message", "Final message to send to the user."),
            action_kind: "FinishAction".into(),
            observation_kind: "FinishObservation".into(),
            annotations: ToolAnnotations {
                title: Some("finish".into()),
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
        },
    })
}

/// The `think` tool: `{thought}` → `Your thought has been logged.`
pub fn think_tool() -> Arc<dyn Tool> {
    Arc::new(BuiltinTool {
        kind: Kind::Think,
        def: ToolDefinition {
            name: "think".into(),
            class_name: "ThinkTool".into(),
            description: THINK_DESCRIPTION.into(),
            parameters: string_param("thought", "The thought to log."),
            action_kind: "ThinkAction".into(),
            observation_kind: "ThinkObservation".into(),
            annotations: ToolAnnotations {
                title: None,
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
        },
    })
}

fn no_params(env: &ToolEnv, class: &str) -> Result<(), String> {
    if env.params.is_empty() {
        Ok(())
    } else {
        Err(format!("{class} doesn't accept parameters"))
    }
}

/// Registry entry for `finish` (the agent adds it by default).
pub fn finish_factory() -> ToolFactory {
    ToolFactory {
        name: "finish",
        module_qualname: "openhands.sdk.tool.builtins.finish",
        create: |env| -> ToolSetResult {
            no_params(env, "FinishTool")?;
            Ok(vec![finish_tool()])
        },
    }
}

/// Registry entry for `think` (the agent adds it by default).
pub fn think_factory() -> ToolFactory {
    ToolFactory {
        name: "think",
        module_qualname: "openhands.sdk.tool.builtins.think",
        create: |env| -> ToolSetResult {
            no_params(env, "ThinkTool")?;
            Ok(vec![think_tool()])
        },
    }
}

impl Tool for BuiltinTool {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        let (model, field) = match self.kind {
            Kind::Finish => ("FinishAction", "message"),
            Kind::Think => ("ThinkAction", "thought"),
        };
        let mut r = ArgReader::new(model, arguments);
        let text = r.required_str(field);
        r.finish()?;
        Ok(json!({ field: text.unwrap_or_default(), "kind": model }))
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        _ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        let obs = match self.kind {
            Kind::Finish => {
                let message = action.get("message").and_then(Value::as_str);
                text_observation("FinishObservation", message.unwrap_or_default(), false, [])
            }
            Kind::Think => text_observation(
                "ThinkObservation",
                "Your thought has been logged.",
                false,
                [],
            ),
        };
        Box::pin(async move { Ok(obs) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[tokio::test]
    async fn finish_echoes_the_message() {
        let tool = finish_tool();
        let action = tool
            .validate(&args(json!({"message": "All done."})))
            .unwrap();
        assert_eq!(
            action,
            json!({"message": "All done.", "kind": "FinishAction"})
        );
        let obs = tool
            .execute(&action, &ExecContext::default())
            .await
            .unwrap();
        assert_eq!(
            Value::Object(obs.json),
            json!({"content": [{"cache_prompt": false, "type": "text", "text": "All done."}],
                   "is_error": false, "kind": "FinishObservation"})
        );
        assert_eq!(obs.llm_content[0].as_text(), Some("All done."));
    }

    #[tokio::test]
    async fn think_logs() {
        let tool = think_tool();
        let action = tool.validate(&args(json!({"thought": "hmm"}))).unwrap();
        assert_eq!(action, json!({"thought": "hmm", "kind": "ThinkAction"}));
        let obs = tool
            .execute(&action, &ExecContext::default())
            .await
            .unwrap();
        assert_eq!(
            obs.llm_content[0].as_text(),
            Some("Your thought has been logged.")
        );
        assert_eq!(obs.json["kind"], "ThinkObservation");
    }

    #[test]
    fn missing_message_is_a_validation_error() {
        let err = finish_tool().validate(&Map::new()).unwrap_err();
        assert!(err.starts_with("1 validation error for FinishAction\nmessage\n  Field required"));
    }

    #[test]
    fn descriptions_match_the_recorded_request() {
        assert!(FINISH_DESCRIPTION.ends_with("if more information is needed\n"));
        assert_eq!(
            finish_tool().definition().parameters["required"],
            json!(["message"])
        );
        assert!(think_tool().definition().annotations.title.is_none());
    }
}
