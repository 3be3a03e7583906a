//! The `apply_patch` tool (tools.md §6): the OpenAI `*** Begin Patch` /
//! `*** End Patch` format (Add, Delete, Update with `@@` context hunks and
//! `*** End of File`, Move), applied inside the working directory.
//!
//! - `parser`: the format, context matching with fuzz, the resulting commit.
//! - here: paths, file I/O and the tool.
//!
//! Paths are relative to the working directory; absolute paths are allowed
//! inside it; a path that leaves it (`..`, symlinks) is refused. Unlike the
//! Python tool, every path is checked before anything is written, so a
//! refused patch changes nothing, and a missing file named by `Update File`
//! is reported as such (Python says `Delete File Error`). Files are read and
//! written as UTF-8 (CRLF files keep CRLF, see the `fsutil` module); parent
//! directories are created. As in the reference implementation, an added
//! file's content is its `+` lines joined by `\n`, without a final newline.

mod parser;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};

pub use self::parser::{ChangeType, Commit, FileChange};
use super::args::ArgReader;
use super::fsutil::{atomic_write, encode_text, py_os_error, resolve_path, Encoding};
use super::obs::text_observation;
use super::{
    ExecContext, Observation, Tool, ToolAnnotations, ToolDefinition, ToolEnv, ToolError,
    ToolFactory,
};

const DESCRIPTION: &str = "Apply unified text patches to files in the workspace. Input must start with '*** Begin Patch' and end with '*** End Patch'.";

/// Why a patch was not applied; the text is what the model sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffError(pub String);

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DiffError {}

/// A patch that was applied.
#[derive(Clone, Debug)]
pub struct Applied {
    /// How loosely the context had to be matched (0 = exactly).
    pub fuzz: u64,
    pub commit: Commit,
}

impl Commit {
    /// `{"changes": {path: {type, old_content, new_content, move_path}}}`.
    pub fn to_json(&self) -> Value {
        let mut changes = Map::new();
        for (path, c) in &self.changes {
            changes.insert(
                path.clone(),
                json!({
                    "type": c.kind.as_str(),
                    "old_content": c.old_content,
                    "new_content": c.new_content,
                    "move_path": c.move_path,
                }),
            );
        }
        json!({ "changes": changes })
    }
}

/// Resolves patch paths inside the workspace root.
struct Workspace {
    root: PathBuf,
}

impl Workspace {
    fn resolve(&self, p: &str) -> Result<PathBuf, DiffError> {
        let path = resolve_path(Path::new(p), &self.root);
        if path.starts_with(&self.root) {
            Ok(path)
        } else {
            Err(DiffError(
                "Absolute or escaping paths are not allowed".into(),
            ))
        }
    }

    /// Reads a file the patch updates or deletes; the flag tells whether it
    /// used CRLF line endings.
    fn read(&self, p: &str, kind: ChangeType) -> Result<(String, bool), DiffError> {
        let label = match kind {
            ChangeType::Update => "Update",
            _ => "Delete",
        };
        let path = self.resolve(p)?;
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DiffError(format!("{label} File Error: Missing File: {p}"))
            } else {
                DiffError(format!(
                    "{label} File Error: Cannot read {p}: {}",
                    py_os_error(&e, Some(&path))
                ))
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            DiffError(format!(
                "{label} File Error: Cannot read {p}: the file is not valid UTF-8 text"
            ))
        })?;
        let crlf = text.contains("\r\n");
        Ok((super::fsutil::universal_newlines(text).0, crlf))
    }
}

fn write(path: &Path, shown: &str, bytes: &[u8]) -> Result<(), DiffError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            DiffError(format!(
                "Cannot write {shown}: {}",
                py_os_error(&e, Some(parent))
            ))
        })?;
    }
    atomic_write(path, bytes).map_err(|e| DiffError(format!("Cannot write {shown}: {e}")))
}

fn remove(path: &Path, shown: &str) -> Result<(), DiffError> {
    std::fs::remove_file(path).map_err(|e| {
        DiffError(format!(
            "Cannot delete {shown}: {}",
            py_os_error(&e, Some(path))
        ))
    })
}

/// Applies `patch` to the files under `root` (blocking).
pub fn apply_patch(root: &Path, patch: &str) -> Result<Applied, DiffError> {
    if !patch.starts_with("*** Begin Patch") {
        return Err(DiffError(
            "Invalid patch: must start with '*** Begin Patch'".into(),
        ));
    }
    let ws = Workspace {
        root: resolve_path(root, Path::new("/")),
    };
    let mut orig = HashMap::new();
    let mut crlf = HashMap::new();
    for (path, kind) in parser::files_needed(patch) {
        let (text, is_crlf) = ws.read(&path, kind)?;
        crlf.insert(path.clone(), is_crlf);
        orig.insert(path, text);
    }
    let (commit, fuzz) = parser::text_to_commit(patch, &orig)?;

    enum Op<'c> {
        Write(PathBuf, &'c str, Vec<u8>),
        Remove(PathBuf, &'c str),
    }
    // Every target is resolved (and refused if it escapes) before the first
    // write, so a refused patch leaves the workspace untouched.
    let mut ops = Vec::new();
    for (path, change) in &commit.changes {
        let keep_crlf = crlf.get(path).copied().unwrap_or(false);
        let content = change.new_content.as_deref().unwrap_or_default();
        match change.kind {
            ChangeType::Delete => ops.push(Op::Remove(ws.resolve(path)?, path.as_str())),
            ChangeType::Add => ops.push(Op::Write(
                ws.resolve(path)?,
                path.as_str(),
                content.as_bytes().to_vec(),
            )),
            ChangeType::Update => {
                let bytes = encode_text(content, Encoding::Utf8, keep_crlf);
                match change.move_path.as_deref().filter(|m| !m.is_empty()) {
                    Some(dest) => {
                        ops.push(Op::Write(ws.resolve(dest)?, dest, bytes));
                        ops.push(Op::Remove(ws.resolve(path)?, path.as_str()));
                    }
                    None => ops.push(Op::Write(ws.resolve(path)?, path.as_str(), bytes)),
                }
            }
        }
    }
    for op in ops {
        match op {
            Op::Write(target, shown, bytes) => write(&target, shown, &bytes)?,
            Op::Remove(target, shown) => remove(&target, shown)?,
        }
    }
    Ok(Applied { fuzz, commit })
}

/// The apply_patch tool of one conversation.
pub struct ApplyPatchTool {
    def: ToolDefinition,
    working_dir: PathBuf,
}

impl ApplyPatchTool {
    /// A tool applying patches inside `working_dir`.
    pub fn new(working_dir: PathBuf) -> Self {
        ApplyPatchTool {
            def: ToolDefinition {
                name: "apply_patch".into(),
                class_name: "ApplyPatchTool".into(),
                description: DESCRIPTION.into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "patch": {
                            "type": "string",
                            "description": "Patch content following the '*** Begin Patch' ... '*** End Patch' format as described in OpenAI GPT-5.1 prompting guide."
                        }
                    },
                    "required": ["patch"]
                }),
                action_kind: "ApplyPatchAction".into(),
                observation_kind: "ApplyPatchObservation".into(),
                annotations: ToolAnnotations {
                    title: Some("apply_patch".into()),
                    read_only: false,
                    destructive: true,
                    idempotent: false,
                    open_world: false,
                },
            },
            working_dir,
        }
    }
}

/// The minimal schema the Python tool sends in Responses-API mode (with
/// `"strict": false`), where the provider knows the tool itself.
pub fn responses_parameters() -> Value {
    json!({
        "type": "object",
        "properties": {"patch": {"type": "string"}},
        "required": ["patch"]
    })
}

/// Registry entry for `apply_patch`.
pub fn factory() -> ToolFactory {
    ToolFactory {
        name: "apply_patch",
        module_qualname: "openhands.tools.apply_patch.definition",
        create: |env: &ToolEnv| Ok(vec![Arc::new(ApplyPatchTool::new(env.working_dir.clone()))]),
    }
}

fn to_observation(result: Result<Applied, DiffError>) -> Observation {
    match result {
        Ok(applied) => text_observation(
            "ApplyPatchObservation",
            "Done!",
            false,
            [
                ("message", json!("Done!")),
                ("fuzz", json!(applied.fuzz)),
                ("commit", applied.commit.to_json()),
            ],
        ),
        Err(e) => text_observation(
            "ApplyPatchObservation",
            e.0,
            true,
            [
                ("message", json!("")),
                ("fuzz", json!(0)),
                ("commit", Value::Null),
            ],
        ),
    }
}

impl Tool for ApplyPatchTool {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        let mut r = ArgReader::new("ApplyPatchAction", arguments);
        let patch = r.required_str("patch");
        r.finish()?;
        Ok(json!({"patch": patch, "kind": "ApplyPatchAction"}))
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        _ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        let root = self.working_dir.clone();
        let patch = action["patch"].as_str().unwrap_or_default().to_string();
        Box::pin(async move {
            let result = tokio::task::spawn_blocking(move || apply_patch(&root, &patch))
                .await
                .unwrap_or_else(|e| Err(DiffError(format!("apply_patch failed: {e}"))));
            Ok(to_observation(result))
        })
    }

    /// Patches touch arbitrary files; one at a time per conversation.
    fn resource_key(&self, _action: &Value) -> Option<String> {
        Some("apply_patch".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn observation_matches_the_recorded_shape() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hello.txt"), "hello world\nsecond line\n").unwrap();
        let tool = ApplyPatchTool::new(dir.path().to_path_buf());
        let args = json!({"patch": "*** Begin Patch\n*** Update File: hello.txt\n hello world\n-second line\n+patched line\n*** End Patch"});
        let action = tool.validate(args.as_object().unwrap()).unwrap();
        let obs = tool
            .execute(&action, &ExecContext::default())
            .await
            .unwrap();
        assert_eq!(
            Value::Object(obs.json),
            json!({
                "content": [{"cache_prompt": false, "type": "text", "text": "Done!"}],
                "is_error": false,
                "message": "Done!",
                "fuzz": 0,
                "commit": {"changes": {"hello.txt": {
                    "type": "update",
                    "old_content": "hello world\nsecond line\n",
                    "new_content": "hello world\npatched line\n",
                    "move_path": ""
                }}},
                "kind": "ApplyPatchObservation"
            })
        );
    }

    #[tokio::test]
    async fn errors_are_observations() {
        let dir = tempfile::tempdir().unwrap();
        let tool = ApplyPatchTool::new(dir.path().to_path_buf());
        let args = json!({"patch": "hello"});
        let action = tool.validate(args.as_object().unwrap()).unwrap();
        let obs = tool
            .execute(&action, &ExecContext::default())
            .await
            .unwrap();
        assert_eq!(
            Value::Object(obs.json),
            json!({
                "content": [{"cache_prompt": false, "type": "text", "text": "Invalid patch: must start with '*** Begin Patch'"}],
                "is_error": true,
                "message": "",
                "fuzz": 0,
                "commit": null,
                "kind": "ApplyPatchObservation"
            })
        );
    }
}
