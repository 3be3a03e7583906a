//! The `grep` tool (tools.md §5): files whose contents match a regex
//! (case-insensitive), most recently modified first, as
//! `rg -l -i <pattern> <dir> --sortr=modified [-g <include>]` finds them
//! (see the `tools::search` module). Binary files are skipped as rg skips them in a
//! recursive search: a NUL byte ends the search of that file.
//!
//! Differences from the Python tool, which re-filters rg's output with
//! `fnmatch` on the file name: an `include` such as `*.{ts,tsx}` or
//! `src/*.ts` works (Python's filter drops every such match), and a relative
//! `path` is taken relative to the working directory rather than the
//! server's own.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};
use serde_json::{json, Map, Value};

use super::args::ArgReader;
use super::fsutil::resolve_path;
use super::obs::{opt_str, text_observation};
use super::search::{self, WalkError};
use super::{
    ExecContext, Observation, Tool, ToolAnnotations, ToolDefinition, ToolEnv, ToolError,
    ToolFactory,
};

const DESCRIPTION: &str = r#"Fast content search tool.
* Searches file contents using regular expressions
* Supports full regex syntax (eg. "log.*Error", "function\s+\w+", etc.)
* Filter files by pattern with the include parameter (eg. "*.js", "*.{ts,tsx}")
* Returns matching file paths sorted by modification time.
* Only the first 100 results are returned. Consider narrowing your search with stricter regex patterns or provide path parameter if you need more results.
* Use this tool when you need to find files containing specific patterns.
"#;

/// The grep tool of one conversation.
pub struct GrepTool {
    def: ToolDefinition,
    working_dir: PathBuf,
}

impl GrepTool {
    /// A grep tool searching `working_dir` by default.
    pub fn new(working_dir: PathBuf) -> Self {
        let description = format!(
            "{DESCRIPTION}\n\nYour current working directory is: {}\nWhen searching for content, searches are performed in this directory.",
            working_dir.display()
        );
        GrepTool {
            def: ToolDefinition {
                name: "grep".into(),
                class_name: "GrepTool".into(),
                description,
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "pattern": {
                            "type": "string",
                            "description": "The regex pattern to search for in file contents"
                        },
                        "path": {
                            "type": "string",
                            "description": "The directory (absolute path) to search in. Defaults to the current working directory."
                        },
                        "include": {
                            "type": "string",
                            "description": "Optional file pattern to filter which files to search (e.g., \"*.js\", \"*.{ts,tsx}\")"
                        }
                    },
                    "required": ["pattern"]
                }),
                action_kind: "GrepAction".into(),
                observation_kind: "GrepObservation".into(),
                annotations: ToolAnnotations {
                    title: Some("grep".into()),
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

/// Registry entry for `grep`.
pub fn factory() -> ToolFactory {
    ToolFactory {
        name: "grep",
        module_qualname: "openhands.tools.grep.definition",
        create: |env: &ToolEnv| Ok(vec![Arc::new(GrepTool::new(env.working_dir.clone()))]),
    }
}

/// The Python tool drops matches inside hidden directories (reachable when
/// `include` whitelists them) and, without `include`, hidden files.
fn surfaced(path: &Path, root: &Path, include: Option<&str>) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return true;
    };
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let hidden = |n: &&std::ffi::OsStr| n.to_string_lossy().starts_with('.');
    let Some((file, dirs)) = names.split_last() else {
        return true;
    };
    if dirs.iter().any(hidden) {
        return false;
    }
    include.is_some() || !hidden(file)
}

/// Records whether a file matches and stops at the first match (`rg -l`).
struct FirstMatch(bool);

impl Sink for FirstMatch {
    type Error = std::io::Error;

    fn matched(&mut self, _: &Searcher, _: &SinkMatch<'_>) -> Result<bool, std::io::Error> {
        self.0 = true;
        Ok(false)
    }
}

struct Request<'a> {
    working_dir: &'a Path,
    pattern: &'a str,
    path: Option<&'a str>,
    /// `include` as given (reported back, even when empty).
    include_raw: Option<&'a str>,
}

fn run(
    req: &Request<'_>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Observation, ToolError> {
    let working_dir = resolve_path(req.working_dir, Path::new("/"));
    let search_path = match req.path.filter(|p| !p.is_empty()) {
        Some(p) => resolve_path(Path::new(p), &working_dir),
        None => working_dir,
    };
    let shown_dir = search_path.to_string_lossy().into_owned();
    let fields = |matches: Vec<String>, truncated: bool| {
        [
            ("matches", json!(matches)),
            ("pattern", json!(req.pattern)),
            ("search_path", json!(shown_dir)),
            ("include_pattern", opt_str(req.include_raw)),
            ("truncated", json!(truncated)),
        ]
    };
    let error = |text: String| {
        Ok(text_observation(
            "GrepObservation",
            text,
            true,
            fields(Vec::new(), false),
        ))
    };
    if let Some(raw) = req.path.filter(|p| !p.is_empty()) {
        if !search_path.is_dir() {
            return error(format!("Search path '{raw}' is not a valid directory"));
        }
    }
    let matcher = match RegexMatcherBuilder::new()
        .case_insensitive(true)
        .line_terminator(Some(b'\n'))
        .build(req.pattern)
    {
        Ok(m) => m,
        Err(e) => return error(format!("Invalid regex pattern: {e}")),
    };
    let root = search_path.clone();
    let include = req.include_raw.filter(|i| !i.is_empty());
    let found = search::walk(&search_path, include, cancel, || {
        let matcher = matcher.clone();
        let mut searcher = SearcherBuilder::new()
            .binary_detection(BinaryDetection::quit(b'\x00'))
            .line_number(false)
            .build();
        let root = root.clone();
        move |path: &Path| {
            if !surfaced(path, &root, include) {
                return false;
            }
            let mut sink = FirstMatch(false);
            // Unreadable files are skipped, as rg does.
            let _ = searcher.search_path(&matcher, path, &mut sink);
            sink.0
        }
    });
    let found = match found {
        Ok(found) => found,
        Err(WalkError::BadGlob(e)) => return error(e),
        Err(WalkError::TimedOut) => return error("Search timed out after 30 seconds".into()),
        Err(WalkError::Cancelled) => return Err(ToolError::Cancelled),
    };
    let (matches, truncated) = search::limit(found);
    let filter = include
        .map(|i| format!(" (filtered by '{i}')"))
        .unwrap_or_default();
    let pattern = req.pattern;
    let text = if matches.is_empty() {
        format!("No files found containing pattern '{pattern}' in directory '{shown_dir}'{filter}")
    } else {
        let mut text = format!(
            "Found {} file(s) containing pattern '{pattern}' in '{shown_dir}'{filter}:\n{}",
            matches.len(),
            matches.join("\n")
        );
        if truncated {
            text.push_str(search::TRUNCATED_NOTE);
        }
        text
    };
    Ok(text_observation(
        "GrepObservation",
        text,
        false,
        fields(matches, truncated),
    ))
}

impl Tool for GrepTool {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        let mut r = ArgReader::new("GrepAction", arguments);
        let pattern = r.required_str("pattern");
        let path = r.optional_str("path");
        let include = r.optional_str("include");
        r.finish()?;
        Ok(json!({"pattern": pattern, "path": path, "include": include, "kind": "GrepAction"}))
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        let working_dir = self.working_dir.clone();
        let action = action.clone();
        let cancel = ctx.cancel.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let req = Request {
                    working_dir: &working_dir,
                    pattern: action["pattern"].as_str().unwrap_or_default(),
                    path: action["path"].as_str(),
                    include_raw: action["include"].as_str(),
                };
                run(&req, &cancel)
            })
            .await
            .map_err(|e| ToolError::Invalid(format!("grep failed: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_directories_are_never_surfaced() {
        let root = Path::new("/ws");
        assert!(surfaced(Path::new("/ws/a/b.txt"), root, None));
        assert!(!surfaced(Path::new("/ws/.git/config"), root, Some("*")));
        assert!(!surfaced(Path::new("/ws/.env"), root, None));
        assert!(surfaced(Path::new("/ws/.env"), root, Some(".env*")));
    }
}
