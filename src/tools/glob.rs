//! The `glob` tool (tools.md §4): files by name pattern, most recently
//! modified first, as `rg --files <dir> -g <pattern> --sortr=modified` lists
//! them (see the `tools::search` module).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::args::ArgReader;
use super::fsutil::resolve_path;
use super::obs::text_observation;
use super::search::{self, WalkError};
use super::{
    ExecContext, Observation, Tool, ToolAnnotations, ToolDefinition, ToolEnv, ToolError,
    ToolFactory,
};

const DESCRIPTION: &str = r#"Fast file pattern matching tool.
* Supports glob patterns like "**/*.js" or "src/**/*.ts"
* Use this tool when you need to find files by name patterns
* Returns matching file paths sorted by modification time
* Only the first 100 results are returned. Consider narrowing your search with stricter glob patterns or provide path parameter if you need more results.

Examples:
- Find all JavaScript files: "**/*.js"
- Find TypeScript files in src: "src/**/*.ts"
- Find Python test files: "**/test_*.py"
- Find configuration files: "**/*.{json,yaml,yml,toml}"
"#;

/// The glob tool of one conversation.
pub struct GlobTool {
    def: ToolDefinition,
    working_dir: PathBuf,
}

impl GlobTool {
    /// A glob tool searching `working_dir` by default.
    pub fn new(working_dir: PathBuf) -> Self {
        let description = format!(
            "{DESCRIPTION}\n\nYour current working directory is: {}\nWhen searching for files, patterns are relative to this directory.",
            working_dir.display()
        );
        GlobTool {
            def: ToolDefinition {
                name: "glob".into(),
                class_name: "GlobTool".into(),
                description,
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "pattern": {
                            "type": "string",
                            "description": "The glob pattern to match files (e.g., \"**/*.js\", \"src/**/*.ts\")"
                        },
                        "path": {
                            "type": "string",
                            "description": "The directory (absolute path) to search in. Defaults to the current working directory."
                        }
                    },
                    "required": ["pattern"]
                }),
                action_kind: "GlobAction".into(),
                observation_kind: "GlobObservation".into(),
                annotations: ToolAnnotations {
                    title: Some("glob".into()),
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                    open_world: false,
                },
            },
            working_dir,
        }
    }
}

/// Registry entry for `glob`.
pub fn factory() -> ToolFactory {
    ToolFactory {
        name: "glob",
        module_qualname: "openhands.tools.glob.definition",
        create: |env: &ToolEnv| Ok(vec![Arc::new(GlobTool::new(env.working_dir.clone()))]),
    }
}

fn has_magic(part: &str) -> bool {
    part.contains(['*', '?', '['])
}

/// Splits an absolute pattern (`/ws/src/**/*.py`) into the directory before
/// its first wildcard and the rest; `None` for relative patterns.
fn split_absolute_pattern(pattern: &str) -> (Option<PathBuf>, String) {
    if pattern.is_empty() {
        return (None, "**/*".into());
    }
    let expanded = expand_home(pattern);
    if !expanded.starts_with('/') {
        return (None, expanded);
    }
    let parts: Vec<&str> = expanded
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let fixed = parts.iter().take_while(|p| !has_magic(p)).count();
    let mut dir = PathBuf::from("/");
    dir.extend(&parts[..fixed]);
    let rest = if fixed == parts.len() {
        "**/*".to_string()
    } else {
        parts[fixed..].join("/")
    };
    (Some(dir), rest)
}

/// `os.path.expanduser` for `~` and `~/…`.
fn expand_home(pattern: &str) -> String {
    let home = || std::env::var("HOME").ok().filter(|h| !h.is_empty());
    if pattern == "~" {
        return home().unwrap_or_else(|| pattern.into());
    }
    match (pattern.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => format!("{}/{rest}", h.trim_end_matches('/')),
        _ => pattern.to_string(),
    }
}

fn run(
    working_dir: &Path,
    pattern: &str,
    path: Option<&str>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Observation, ToolError> {
    let working_dir = resolve_path(working_dir, Path::new("/"));
    let (search_path, glob) = match path.filter(|p| !p.is_empty()) {
        Some(p) => (
            resolve_path(Path::new(p), &working_dir),
            pattern.to_string(),
        ),
        None => {
            let (dir, glob) = split_absolute_pattern(pattern);
            let dir = dir.map_or_else(|| working_dir.clone(), |d| resolve_path(&d, Path::new("/")));
            (dir, glob)
        }
    };
    let shown_dir = search_path.to_string_lossy().into_owned();
    let fields = |files: Vec<String>, truncated: bool| {
        [
            ("files", json!(files)),
            ("pattern", json!(pattern)),
            ("search_path", json!(shown_dir)),
            ("truncated", json!(truncated)),
        ]
    };
    let error = |text: String| {
        Ok(text_observation(
            "GlobObservation",
            text,
            true,
            fields(Vec::new(), false),
        ))
    };
    if !search_path.is_dir() {
        return error(format!(
            "Search path '{shown_dir}' is not a valid directory"
        ));
    }
    let found = match search::walk(&search_path, Some(&glob), cancel, || |_: &Path| true) {
        Ok(found) => found,
        Err(WalkError::BadGlob(e)) => return error(e),
        Err(WalkError::TimedOut) => return error("Search timed out after 30 seconds".into()),
        Err(WalkError::Cancelled) => return Err(ToolError::Cancelled),
    };
    let (files, truncated) = search::limit(found);
    let text = if files.is_empty() {
        format!("No files found matching pattern '{pattern}' in directory '{shown_dir}'")
    } else {
        let mut text = format!(
            "Found {} file(s) matching pattern '{pattern}' in '{shown_dir}':\n{}",
            files.len(),
            files.join("\n")
        );
        if truncated {
            text.push_str(search::TRUNCATED_NOTE);
        }
        text
    };
    Ok(text_observation(
        "GlobObservation",
        text,
        false,
        fields(files, truncated),
    ))
}

impl Tool for GlobTool {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        let mut r = ArgReader::new("GlobAction", arguments);
        let pattern = r.required_str("pattern");
        let path = r.optional_str("path");
        r.finish()?;
        Ok(json!({"pattern": pattern, "path": path, "kind": "GlobAction"}))
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        let working_dir = self.working_dir.clone();
        let pattern = action["pattern"].as_str().unwrap_or_default().to_string();
        let path = action["path"].as_str().map(str::to_string);
        let cancel = ctx.cancel.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                run(&working_dir, &pattern, path.as_deref(), &cancel)
            })
            .await
            .map_err(|e| ToolError::Invalid(format!("glob failed: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_patterns_split_at_the_first_wildcard() {
        assert_eq!(
            split_absolute_pattern("/path/to/dir/**/*.py"),
            (Some(PathBuf::from("/path/to/dir")), "**/*.py".into())
        );
        assert_eq!(
            split_absolute_pattern("/path/to/*.py"),
            (Some(PathBuf::from("/path/to")), "*.py".into())
        );
        assert_eq!(
            split_absolute_pattern("/path//./to/"),
            (Some(PathBuf::from("/path/to")), "**/*".into())
        );
        assert_eq!(
            split_absolute_pattern("/*/*.py"),
            (Some(PathBuf::from("/")), "*/*.py".into())
        );
        assert_eq!(split_absolute_pattern("**/*.py"), (None, "**/*.py".into()));
        assert_eq!(split_absolute_pattern(""), (None, "**/*".into()));
    }
}
