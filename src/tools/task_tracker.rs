//! The `task_tracker` tool (tools.md §3): the agent's task list, persisted as
//! `TASKS.json` in the conversation directory.
//!
//! The saved list is loaded on the tool's first use rather than when it is
//! created, so creating tools does no blocking I/O; nothing else writes the
//! file in between, so the model sees the same list either way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::args::ArgReader;
use super::fsutil::atomic_write;
use super::obs::text_observation;
use super::{
    ExecContext, Observation, Tool, ToolAnnotations, ToolDefinition, ToolEnv, ToolError,
    ToolFactory,
};

const DESCRIPTION: &str = r#"This tool provides structured task management capabilities for development workflows.
It enables systematic tracking of work items, progress monitoring, and efficient
organization of complex development activities.

The tool maintains visibility into project status and helps communicate
progress effectively to users.

## Application Guidelines

Utilize this tool in the following situations:

1. Multi-phase development work - When projects involve multiple sequential or
   parallel activities
2. Complex implementation tasks - Work requiring systematic planning and
   coordination across multiple components
3. Explicit user request for task organization - When users specifically ask
   for structured task management
4. Multiple concurrent requirements - When users present several work items
   that need coordination
5. Project initiation - Capture and organize user requirements at project start
6. Work commencement - Update task status to in_progress before beginning
   implementation. Maintain focus by limiting active work to one task
7. Task completion - Update status to done and identify any additional work
   that emerged during implementation

## Situations Where Tool Usage Is Unnecessary

Avoid using this tool when:

1. Single atomic tasks that require no decomposition
2. Trivial operations where tracking adds no organizational value
3. Simple activities completable in minimal steps
4. Pure information exchange or discussion

Note: For single straightforward tasks, proceed with direct implementation
rather than creating tracking overhead.

## Usage Scenarios

**Scenario A: Feature Development with Validation**
User request: "Build a user authentication system with login/logout functionality.
Don't forget to include input validation and error handling!"

Response approach: I'll implement a user authentication system with comprehensive
validation. Let me organize this work systematically.

*Task breakdown includes:*
1. Design authentication API endpoints and data models
2. Implement user login/logout controllers with session management
3. Add client-side form validation and error display
4. Create backend input sanitization and security checks
5. Implement comprehensive error handling for edge cases
6. Perform integration testing and fix any issues

**Scenario B: Codebase Refactoring**
User request: "I need to update all instances of the method 'fetchData' to
'retrieveInformation' throughout the entire project"

Response approach: Let me first analyze your codebase to identify all locations
where 'fetchData' appears.

*After code analysis*

I've located 12 occurrences of 'fetchData' across 6 files in your project.
I'll create a systematic plan to update these references.

*Organized task list includes specific file-by-file updates*

**Scenario C: Multi-feature Development**
User request: "Set up a blog platform with these components: admin dashboard,
article management, comment system, and user profiles."

Response approach: I'll help build your blog platform. Let me break down these
components into manageable implementation phases.

*Creates structured plan with each feature decomposed into specific development tasks*

## Counter-examples - Direct Implementation Preferred

**Counter-example A: Simple inquiry**
User request: "What's the syntax for a for loop in JavaScript?"

Response approach: Here's how to write a for loop in JavaScript:

```javascript
for (let i = 0; i < array.length; i++) {
    console.log(array[i]);
}
```

*No task tracking needed - single informational response*

**Counter-example B: Minor modification**
User request: "Please add a docstring to the processPayment function explaining
its parameters."

Response approach: I'll add a docstring to explain the processPayment function.

*Direct edit without task tracking for simple modification*

## Status Management and Workflow

1. **Status Values**: Track work using these states:
   - todo: Not yet initiated
   - in_progress: Currently active (maintain single focus)
   - done: Successfully completed

2. **Workflow Practices**:
   - Update status dynamically as work progresses
   - Mark completion immediately upon task finish
   - Limit active work to ONE task at any given time
   - Complete current activities before initiating new ones
   - Remove obsolete tasks from tracking entirely

3. **Completion Criteria**:
   - Mark tasks as done only when fully achieved
   - Keep status as in_progress if errors, blocks, or partial completion exist
   - Create new tasks for discovered issues or dependencies
   - Never mark done when:
       - Test suites are failing
       - Implementation remains incomplete
       - Unresolved errors persist
       - Required resources are unavailable

4. **Task Organization**:
   - Write precise, actionable descriptions
   - Decompose complex work into manageable units
   - Use descriptive, clear naming conventions

When uncertain, favor using this tool. Proactive task management demonstrates
systematic approach and ensures comprehensive requirement fulfillment."#;

const STATUSES: [&str; 3] = ["todo", "in_progress", "done"];

/// One task as the model and `TASKS.json` see it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TaskItem {
    title: String,
    notes: String,
    status: String,
}

impl TaskItem {
    fn to_json(&self) -> Value {
        json!({"title": self.title, "notes": self.notes, "status": self.status})
    }

    /// Reads a saved item the way pydantic validates `TaskItem`.
    fn from_json(v: &Value) -> Option<TaskItem> {
        let obj = v.as_object()?;
        let title = obj.get("title")?.as_str()?.to_string();
        let notes = match obj.get("notes") {
            None => String::new(),
            Some(n) => n.as_str()?.to_string(),
        };
        let status = match obj.get("status") {
            None => "todo".to_string(),
            Some(s) => normalize_status(s).filter(|s| STATUSES.contains(&s.as_str()))?,
        };
        Some(TaskItem {
            title,
            notes,
            status,
        })
    }
}

/// Status spelling the models use for ours: case, spaces and dashes are
/// ignored, and other agents' names (`pending`, `completed`…) are accepted.
/// Unknown values are returned unchanged (and then rejected).
fn normalize_status(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let norm = s.trim().to_lowercase().replace(['-', ' '], "_");
    if STATUSES.contains(&norm.as_str()) {
        return Some(norm);
    }
    let alias = match norm.as_str() {
        "pending" | "to_do" => "todo",
        "completed" | "complete" => "done",
        _ => return Some(s.to_string()),
    };
    Some(alias.to_string())
}

fn format_task_list(tasks: &[TaskItem]) -> String {
    let mut out = String::from("# Task List\n\n");
    for (i, task) in tasks.iter().enumerate() {
        let icon = match task.status.as_str() {
            "in_progress" => "🔄",
            "done" => "✅",
            _ => "⏳",
        };
        out.push_str(&format!("{}. {icon} {}\n", i + 1, task.title));
        if !task.notes.is_empty() {
            out.push_str(&format!("   {}\n", task.notes));
        }
        out.push('\n');
    }
    out.trim().to_string()
}

/// JSON with `indent=2` and non-ASCII escaped, as Python's `json.dump` writes it.
fn python_json_dump(tasks: &[TaskItem]) -> String {
    let value = Value::Array(tasks.iter().map(TaskItem::to_json).collect());
    let pretty = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "[]".into());
    let mut out = String::with_capacity(pretty.len());
    for c in pretty.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The list and whether it has been read from disk yet.
#[derive(Default)]
struct State {
    loaded: bool,
    tasks: Vec<TaskItem>,
}

/// The task tracker of one conversation.
pub struct TaskTrackerTool {
    def: ToolDefinition,
    /// `<conversation dir>/TASKS.json`.
    file: PathBuf,
    state: Arc<Mutex<State>>,
}

impl TaskTrackerTool {
    /// A tracker saving to `<conversation_dir>/TASKS.json`.
    pub fn new(conversation_dir: PathBuf) -> Self {
        TaskTrackerTool {
            def: ToolDefinition {
                name: "task_tracker".into(),
                class_name: "TaskTrackerTool".into(),
                description: DESCRIPTION.into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "command": {
                            "type": "string",
                            "description": "The command to execute. `view` shows the current task list. `plan` creates or updates the task list based on provided requirements and progress. Always `view` the current list before making changes.",
                            "enum": ["view", "plan"]
                        },
                        "task_list": {
                            "type": "array",
                            "description": "The full task list. Required parameter of `plan` command.",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "title": {"type": "string", "description": "A brief title for the task."},
                                    "notes": {"type": "string", "description": "Additional details or notes about the task."},
                                    "status": {
                                        "type": "string",
                                        "description": "The current status of the task. One of 'todo', 'in_progress', or 'done'.",
                                        "enum": ["todo", "in_progress", "done"]
                                    }
                                },
                                "required": ["title"]
                            }
                        }
                    }
                }),
                action_kind: "TaskTrackerAction".into(),
                observation_kind: "TaskTrackerObservation".into(),
                annotations: ToolAnnotations {
                    title: None,
                    read_only: false,
                    destructive: false,
                    idempotent: true,
                    open_world: false,
                },
            },
            file: conversation_dir.join("TASKS.json"),
            state: Arc::default(),
        }
    }
}

/// Registry entry for `task_tracker`.
pub fn factory() -> ToolFactory {
    ToolFactory {
        name: "task_tracker",
        module_qualname: "openhands.tools.task_tracker.definition",
        create: |env: &ToolEnv| {
            Ok(vec![Arc::new(TaskTrackerTool::new(
                env.conversation_dir.clone(),
            ))])
        },
    }
}

fn load(file: &std::path::Path) -> Vec<TaskItem> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "failed to load tasks; starting with an empty task list");
            return Vec::new();
        }
    };
    let parsed: Option<Vec<TaskItem>> = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().map(TaskItem::from_json).collect())
        })
        .flatten();
    parsed.unwrap_or_else(|| {
        tracing::warn!(file = %file.display(), "invalid TASKS.json; starting with an empty task list");
        Vec::new()
    })
}

fn save(file: &std::path::Path, tasks: &[TaskItem]) {
    let result = match file.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| e.to_string()),
        None => Ok(()),
    }
    .and_then(|()| atomic_write(file, python_json_dump(tasks).as_bytes()));
    if let Err(e) = result {
        tracing::warn!(file = %file.display(), error = %e, "failed to save tasks");
    }
}

fn run(file: &std::path::Path, state: &Mutex<State>, action: &Value) -> Observation {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    if !state.loaded {
        state.tasks = load(file);
        state.loaded = true;
    }
    let command = action
        .get("command")
        .and_then(Value::as_str)
        .unwrap_or("view");
    if command == "plan" {
        state.tasks = action
            .get("task_list")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(TaskItem::from_json).collect())
            .unwrap_or_default();
        save(file, &state.tasks);
    }
    let list = Value::Array(state.tasks.iter().map(TaskItem::to_json).collect());
    let text = match command {
        "plan" => format!(
            "Task list has been updated with {} item(s).",
            state.tasks.len()
        ),
        _ if state.tasks.is_empty() => {
            "No task list found. Use the \"plan\" command to create one.".to_string()
        }
        _ => format_task_list(&state.tasks),
    };
    text_observation(
        "TaskTrackerObservation",
        text,
        false,
        [
            ("command", Value::String(command.into())),
            ("task_list", list),
        ],
    )
}

impl Tool for TaskTrackerTool {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        let mut r = ArgReader::new("TaskTrackerAction", arguments);
        let command = r.literal("command", &["view", "plan"], Some("view"));
        let tasks = r.object_list("task_list", "TaskItem", |item| {
            let title = item.required_str("title");
            let notes = item.str_or("notes", "");
            let status = match item.raw("status").cloned() {
                None => Some("todo".to_string()),
                Some(original) => {
                    let norm = normalize_status(&original);
                    item.literal_checked("status", norm.as_deref(), &original, &STATUSES)
                }
            };
            Some(TaskItem {
                title: title?,
                notes: notes?,
                status: status?,
            })
        });
        r.finish()?;
        let tasks: Vec<Value> = tasks
            .unwrap_or_default()
            .iter()
            .map(TaskItem::to_json)
            .collect();
        Ok(json!({"command": command, "task_list": tasks, "kind": "TaskTrackerAction"}))
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        _ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        let file = self.file.clone();
        let state = Arc::clone(&self.state);
        let action = action.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || run(&file, &state, &action))
                .await
                .map_err(|e| ToolError::Invalid(format!("task tracker failed: {e}")))
        })
    }

    fn resource_key(&self, _action: &Value) -> Option<String> {
        Some(format!("file:{}", self.file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    async fn exec(tool: &TaskTrackerTool, v: Value) -> Observation {
        let action = tool.validate(&args(v)).unwrap();
        tool.execute(&action, &ExecContext::default())
            .await
            .unwrap()
    }

    #[test]
    fn statuses_are_normalised_and_defaults_filled() {
        let tool = TaskTrackerTool::new(PathBuf::from("/nonexistent"));
        let action = tool
            .validate(&args(json!({"command": "plan", "task_list": [
                {"title": "a", "status": "Completed"},
                {"title": "b", "status": "In Progress", "extra": 1},
                {"title": "c", "status": "to-do"},
                {"title": "d"}
            ]})))
            .unwrap();
        assert_eq!(
            action,
            json!({"command": "plan", "task_list": [
                {"title": "a", "notes": "", "status": "done"},
                {"title": "b", "notes": "", "status": "in_progress"},
                {"title": "c", "notes": "", "status": "todo"},
                {"title": "d", "notes": "", "status": "todo"}
            ], "kind": "TaskTrackerAction"})
        );
        let defaults = tool.validate(&Map::new()).unwrap();
        assert_eq!(
            defaults,
            json!({"command": "view", "task_list": [], "kind": "TaskTrackerAction"})
        );
    }

    #[test]
    fn bad_items_report_pydantic_locations() {
        let tool = TaskTrackerTool::new(PathBuf::from("/nonexistent"));
        let err = tool
            .validate(&args(
                json!({"command": "plan", "task_list": [{"status": "x"}]}),
            ))
            .unwrap_err();
        assert_eq!(
            err,
            "2 validation errors for TaskTrackerAction\ntask_list.0.title\n  Field required [type=missing, input_value={'status': 'x'}, input_type=dict]\n    For further information visit https://errors.pydantic.dev/2.14/v/missing\ntask_list.0.status\n  Input should be 'todo', 'in_progress' or 'done' [type=literal_error, input_value='x', input_type=str]\n    For further information visit https://errors.pydantic.dev/2.14/v/literal_error"
        );
    }

    #[tokio::test]
    async fn plan_persists_and_a_new_tool_reloads_it() {
        let dir = tempfile::tempdir().unwrap();
        let conv = dir.path().join("conv");
        let tool = TaskTrackerTool::new(conv.clone());
        let empty = exec(&tool, json!({})).await;
        assert_eq!(
            empty.llm_content[0].as_text(),
            Some("No task list found. Use the \"plan\" command to create one.")
        );
        let obs = exec(
            &tool,
            json!({"command": "plan", "task_list": [
                {"title": "say hi", "status": "done"},
                {"title": "write file", "notes": "in café  ", "status": "in_progress"},
                {"title": "ship"}
            ]}),
        )
        .await;
        assert_eq!(
            Value::Object(obs.json.clone()),
            json!({"content": [{"cache_prompt": false, "type": "text", "text": "Task list has been updated with 3 item(s)."}],
                   "is_error": false, "command": "plan",
                   "task_list": [{"title": "say hi", "notes": "", "status": "done"},
                                 {"title": "write file", "notes": "in café  ", "status": "in_progress"},
                                 {"title": "ship", "notes": "", "status": "todo"}],
                   "kind": "TaskTrackerObservation"})
        );
        let saved = std::fs::read_to_string(conv.join("TASKS.json")).unwrap();
        assert!(saved.starts_with("[\n  {\n    \"title\": \"say hi\",\n    \"notes\": \"\",\n    \"status\": \"done\"\n  },"));
        assert!(saved.contains("\"in caf\\u00e9  \""));

        let reloaded = TaskTrackerTool::new(conv);
        let view = exec(&reloaded, json!({"command": "view"})).await;
        assert_eq!(
            view.llm_content[0].as_text(),
            Some("# Task List\n\n1. ✅ say hi\n\n2. 🔄 write file\n   in café  \n\n3. ⏳ ship")
        );
        assert_eq!(view.json["task_list"].as_array().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn corrupt_file_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("TASKS.json"), "{not json").unwrap();
        let tool = TaskTrackerTool::new(dir.path().to_path_buf());
        let view = exec(&tool, json!({"command": "view"})).await;
        assert_eq!(view.json["task_list"], json!([]));
    }
}
