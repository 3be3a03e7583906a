//! The `file_editor` tool (tools.md §2): view, create, str_replace, insert
//! and undo_edit on absolute paths, with the Python editor's texts.
//!
//! - `editor`: the commands (blocking; run on `spawn_blocking`).
//! - `history`: the per-file undo history.
//!
//! Encodings and line endings: see the `tools::fsutil` module.

mod editor;
mod history;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};

use self::editor::{EditAction, Editor, Outcome};
use super::args::ArgReader;
use super::fsutil::normalize_lexically;
use super::obs::{observation, opt_str};
use super::{
    ExecContext, Observation, Tool, ToolAnnotations, ToolDefinition, ToolEnv, ToolError,
    ToolFactory,
};

const DESCRIPTION: &str = r#"Custom editing tool for viewing, creating and editing files in plain-text format
* State is persistent across command calls and discussions with the user
* If `path` is a text file, `view` displays the result of applying `cat -n`. If `path` is a directory, `view` lists non-hidden files and directories up to 2 levels deep
* The `create` command cannot be used if the specified `path` already exists as a file
* If a `command` generates a long output, it will be truncated and marked with `<response clipped>`
* The `undo_edit` command will revert the last edit made to the file at `path`
* This tool can be used for creating and editing files in plain-text format.


Before using this tool:
1. Use the view tool to understand the file's contents and context
2. Verify the directory path is correct (only applicable when creating new files):
   - Use the view tool to verify the parent directory exists and is the correct location

When making edits:
   - Ensure the edit results in idiomatic, correct code
   - Do not leave the code in a broken state
   - Always use absolute file paths (starting with /)

CRITICAL REQUIREMENTS FOR USING THIS TOOL:

1. EXACT MATCHING: The `old_str` parameter must match EXACTLY one or more consecutive lines from the file, including all whitespace and indentation. The tool will fail if `old_str` matches multiple locations or doesn't match exactly with the file content.

2. UNIQUENESS: The `old_str` must uniquely identify a single instance in the file:
   - Include sufficient context before and after the change point (3-5 lines recommended)
   - If not unique, the replacement will not be performed

3. REPLACEMENT: The `new_str` parameter should contain the edited lines that replace the `old_str`. Both strings must be different.

Remember: when making multiple file edits in a row to the same file, you should prefer to send all edits in a single message with multiple calls to this tool, rather than multiple messages with a single call each.
"#;

const IMAGE_LINE: &str = "* If `path` is an image file (.png, .jpg, .jpeg, .gif, .webp, .bmp), `view` displays the image content";

const COMMANDS: [&str; 5] = ["view", "create", "str_replace", "insert", "undo_edit"];

/// The description for a model with or without vision, naming the working
/// directory.
fn description(working_dir: &Path, vision: bool) -> String {
    let base = if vision {
        let mut lines: Vec<&str> = DESCRIPTION.split('\n').collect();
        lines.insert(2, IMAGE_LINE);
        lines.join("\n")
    } else {
        DESCRIPTION.to_string()
    };
    format!(
        "{base}\n\nYour current working directory is: {}\nWhen exploring project structure, start with this directory instead of the root filesystem.",
        working_dir.display()
    )
}

/// The file editor of one conversation.
pub struct FileEditorTool {
    def: ToolDefinition,
    editor: Arc<Editor>,
}

impl FileEditorTool {
    /// An editor whose relative-path hints point into `working_dir`;
    /// `vision` adds the image-viewing line to the description.
    pub fn new(working_dir: PathBuf, vision: bool) -> Self {
        FileEditorTool {
            def: ToolDefinition {
                name: "file_editor".into(),
                class_name: "FileEditorTool".into(),
                description: description(&working_dir, vision),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "command": {
                            "type": "string",
                            "description": "The commands to run. Allowed options are: `view`, `create`, `str_replace`, `insert`, `undo_edit`.",
                            "enum": COMMANDS
                        },
                        "path": {"type": "string", "description": "Absolute path to file or directory."},
                        "file_text": {
                            "type": "string",
                            "description": "Required parameter of `create` command, with the content of the file to be created."
                        },
                        "old_str": {
                            "type": "string",
                            "description": "Required parameter of `str_replace` command containing the string in `path` to replace."
                        },
                        "new_str": {
                            "type": "string",
                            "description": "Optional parameter of `str_replace` command containing the new string (if not given, no string will be added). Required parameter of `insert` command containing the string to insert."
                        },
                        "insert_line": {
                            "type": "integer",
                            "description": "Required parameter of `insert` command. The `new_str` will be inserted AFTER the line `insert_line` of `path`."
                        },
                        "view_range": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "description": "Optional parameter of `view` command when `path` points to a file. If none is given, the full file is shown. If provided, the file will be shown in the indicated line number range, e.g. [11, 12] will show lines 11 and 12. Indexing at 1 to start. Setting `[start_line, -1]` shows all lines from `start_line` to the end of the file."
                        }
                    },
                    "required": ["command", "path"]
                }),
                action_kind: "FileEditorAction".into(),
                observation_kind: "FileEditorObservation".into(),
                annotations: ToolAnnotations {
                    title: Some("file_editor".into()),
                    read_only: false,
                    destructive: true,
                    idempotent: false,
                    open_world: false,
                },
            },
            editor: Arc::new(Editor::new(working_dir)),
        }
    }
}

/// Registry entry for `file_editor`.
pub fn factory() -> ToolFactory {
    ToolFactory {
        name: "file_editor",
        module_qualname: "openhands.tools.file_editor.definition",
        create: |env: &ToolEnv| {
            Ok(vec![Arc::new(FileEditorTool::new(
                env.working_dir.clone(),
                env.vision,
            ))])
        },
    }
}

fn parse_action(v: &Value) -> EditAction {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    EditAction {
        command: s("command").unwrap_or_default(),
        path: s("path").unwrap_or_default(),
        file_text: s("file_text"),
        old_str: s("old_str"),
        new_str: s("new_str"),
        insert_line: v.get("insert_line").and_then(Value::as_i64),
        view_range: v
            .get("view_range")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect()),
    }
}

fn to_observation(command: &str, o: Outcome) -> Observation {
    observation(
        "FileEditorObservation",
        o.content,
        o.is_error,
        [
            ("command", json!(command)),
            ("path", opt_str(o.path.as_deref())),
            ("prev_exist", json!(o.prev_exist)),
            ("old_content", opt_str(o.old_content.as_deref())),
            ("new_content", opt_str(o.new_content.as_deref())),
        ],
    )
}

impl Tool for FileEditorTool {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        let mut r = ArgReader::new("FileEditorAction", arguments);
        let command = r.literal("command", &COMMANDS, None);
        let path = r.required_str("path");
        let file_text = r.optional_str("file_text");
        let old_str = r.optional_str("old_str");
        let new_str = r.optional_str("new_str");
        let insert_line = r.optional_int("insert_line", Some(0));
        let view_range = r.optional_int_list("view_range");
        r.finish()?;
        Ok(json!({
            "command": command,
            "path": path,
            "file_text": file_text,
            "old_str": old_str,
            "new_str": new_str,
            "insert_line": insert_line,
            "view_range": view_range,
            "kind": "FileEditorAction",
        }))
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        _ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        let editor = Arc::clone(&self.editor);
        let action = parse_action(action);
        Box::pin(async move {
            let command = action.command.clone();
            let outcome = tokio::task::spawn_blocking(move || editor.run(&action))
                .await
                .unwrap_or_else(|e| Outcome::error(format!("file editor failed: {e}")));
            Ok(to_observation(&command, outcome))
        })
    }

    /// Every command, `view` included, locks its file: a view never sees a
    /// half-applied edit.
    fn resource_key(&self, action: &Value) -> Option<String> {
        let path = action.get("path").and_then(Value::as_str)?;
        Some(format!(
            "file:{}",
            normalize_lexically(Path::new(path)).display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    async fn run(tool: &FileEditorTool, args: Value) -> Observation {
        let action = tool.validate(args.as_object().unwrap()).unwrap();
        tool.execute(&action, &ExecContext::default())
            .await
            .unwrap()
    }

    fn text(obs: &Observation) -> &str {
        obs.llm_content[0].as_text().unwrap()
    }

    #[test]
    fn validation_fills_nulls_and_rejects_bad_input() {
        let tool = FileEditorTool::new(PathBuf::from("/ws"), false);
        let action = tool
            .validate(
                json!({"command": "view", "path": "/ws/a", "insert_line": "3"})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            serde_json::to_string(&action).unwrap(),
            r#"{"command":"view","path":"/ws/a","file_text":null,"old_str":null,"new_str":null,"insert_line":3,"view_range":null,"kind":"FileEditorAction"}"#
        );
        let err = tool
            .validate(
                json!({"command": "view", "path": "/a", "insert_line": -1, "bogus": true})
                    .as_object()
                    .unwrap(),
            )
            .unwrap_err();
        assert!(
            err.starts_with("2 validation errors for FileEditorAction\ninsert_line\n"),
            "{err}"
        );
        assert!(err.contains("bogus\n  Extra inputs are not permitted"));
        assert_eq!(
            tool.resource_key(&json!({"path": "/ws/./x/../a.txt"})),
            Some("file:/ws/a.txt".into())
        );
    }

    #[tokio::test]
    async fn large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.txt");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(10 * 1024 * 1024 + 1).unwrap();
        let tool = FileEditorTool::new(dir.path().to_path_buf(), false);
        let obs = run(&tool, json!({"command": "view", "path": big})).await;
        assert!(obs.is_error());
        assert_eq!(
            text(&obs),
            format!("File validation failed for {}: File is too large (10.0MB). Maximum allowed size is 10MB.", big.display())
        );
    }

    #[tokio::test]
    async fn fifos_are_refused_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let tool = FileEditorTool::new(dir.path().to_path_buf(), false);
        let obs = run(&tool, json!({"command": "view", "path": fifo})).await;
        assert!(obs.is_error());
        assert!(
            text(&obs).ends_with("is not a regular file."),
            "{}",
            text(&obs)
        );
    }

    #[tokio::test]
    async fn edits_keep_mode_and_write_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("run.sh");
        std::fs::write(&real, "echo hi\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o750)).unwrap();
        let link = dir.path().join("link.sh");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let tool = FileEditorTool::new(dir.path().to_path_buf(), false);
        let obs = run(
            &tool,
            json!({"command": "str_replace", "path": link, "old_str": "hi", "new_str": "bye"}),
        )
        .await;
        assert!(!obs.is_error(), "{}", text(&obs));
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "echo bye\n");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
    }

    #[tokio::test]
    async fn big_directories_are_clipped() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..400 {
            std::fs::write(dir.path().join(format!("{i:04}_{}", "n".repeat(40))), "").unwrap();
        }
        let tool = FileEditorTool::new(dir.path().to_path_buf(), false);
        let obs = run(&tool, json!({"command": "view", "path": dir.path()})).await;
        let out = text(&obs);
        assert_eq!(out.chars().count(), 16_000);
        assert!(out.contains("<response clipped><NOTE>Due to the max output limit, only part of this directory has been shown to you. You should use `ls -la` instead to view large directories incrementally.</NOTE>"));
        assert!(out.ends_with(&format!("0399_{}", "n".repeat(40))));
    }
}
