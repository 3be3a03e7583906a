//! The editor commands. Blocking: runs on `spawn_blocking` threads.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;

use super::history::History;
use crate::api::message::Content;
use crate::tools::fsutil::{
    atomic_write, decode_text, encode_text, py_os_error, py_path, universal_newlines, TextFile,
};
use crate::tools::truncate::maybe_truncate;

/// Longest text the editor returns (before line numbers are added).
const MAX_RESPONSE_LEN_CHAR: usize = 16_000;
/// Files larger than this are refused.
const MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
/// Lines of context around an edit in the returned snippet.
const SNIPPET_CONTEXT_WINDOW: usize = 4;

const TEXT_FILE_CONTENT_TRUNCATED_NOTICE: &str = "<response clipped><NOTE>Due to the max output limit, only part of this file has been shown to you. You should retry this tool after you have searched inside the file with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>";
const DIRECTORY_CONTENT_TRUNCATED_NOTICE: &str = "<response clipped><NOTE>Due to the max output limit, only part of this directory has been shown to you. You should use `ls -la` instead to view large directories incrementally.</NOTE>";

const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "gif", "webp", "bmp"];

/// A validated `FileEditorAction`.
#[derive(Clone, Debug, Default)]
pub(super) struct EditAction {
    pub command: String,
    pub path: String,
    pub file_text: Option<String>,
    pub old_str: Option<String>,
    pub new_str: Option<String>,
    pub insert_line: Option<i64>,
    pub view_range: Option<Vec<i64>>,
}

/// What a command produced: the `FileEditorObservation` fields.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub content: Vec<Content>,
    pub is_error: bool,
    pub path: Option<String>,
    pub prev_exist: bool,
    pub old_content: Option<String>,
    pub new_content: Option<String>,
}

impl Outcome {
    fn text(text: String, path: &str) -> Outcome {
        Outcome {
            content: vec![Content::text(text)],
            path: Some(path.to_string()),
            prev_exist: true,
            ..Outcome::default()
        }
    }

    /// An error observation (`path` unset, as upstream's `ToolError` path).
    pub(super) fn error(message: String) -> Outcome {
        Outcome {
            content: vec![Content::text(message)],
            is_error: true,
            prev_exist: true,
            ..Outcome::default()
        }
    }
}

/// The editor of one conversation: its working directory (for path hints)
/// and the undo history.
pub(super) struct Editor {
    cwd: PathBuf,
    history: Mutex<History>,
}

fn invalid(parameter: &str, value: &str, hint: &str) -> String {
    format!("Invalid `{parameter}` parameter: {value}. {hint}")
}

fn missing(command: &str, parameter: &str) -> String {
    format!("Parameter `{parameter}` is required for command: {command}.")
}

fn py_int_list(v: &[i64]) -> String {
    let items: Vec<String> = v.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// `is_host_absolute_path`: absolute after `~` expansion.
fn is_absolute(path: &str) -> bool {
    let p = path.trim();
    p.starts_with('/') || p == "~" || p.starts_with("~/")
}

/// Lines `start..=end` (1-based) with their line endings.
fn line_range(text: &str, start: usize, end: usize) -> String {
    text.split_inclusive('\n')
        .skip(start.saturating_sub(1))
        .take((end + 1).saturating_sub(start.max(1)))
        .collect()
}

/// Lines as Python's text-mode file iteration counts them.
fn count_lines(text: &str) -> usize {
    text.split_inclusive('\n').count()
}

/// The `cat -n` rendering of `snippet`, numbered from `start`.
fn make_output(snippet: &str, description: &str, start: usize) -> String {
    let snippet = maybe_truncate(
        snippet,
        MAX_RESPONSE_LEN_CHAR,
        TEXT_FILE_CONTENT_TRUNCATED_NOTICE,
        None,
    );
    let mut lines: Vec<&str> = snippet.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let numbered: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| format!("{:6}\t{line}", i + start))
        .collect();
    let mut out = format!("Here's the result of running `cat -n` on {description}:\n");
    if !numbered.is_empty() {
        out.push_str(&numbered.join("\n"));
        out.push('\n');
    }
    out
}

fn image_mime(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        _ => "image/png",
    }
}

fn lower_extension(path: &Path) -> Option<String> {
    path.extension().map(|e| e.to_string_lossy().to_lowercase())
}

impl Editor {
    pub(super) fn new(cwd: PathBuf) -> Self {
        Editor {
            cwd,
            history: Mutex::new(History::default()),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one command; errors become error observations.
    pub(super) fn run(&self, action: &EditAction) -> Outcome {
        self.dispatch(action).unwrap_or_else(Outcome::error)
    }

    fn dispatch(&self, a: &EditAction) -> Result<Outcome, String> {
        let shown = py_path(&a.path);
        let path = PathBuf::from(&shown);
        self.validate_path(&a.command, &path, &shown)?;
        match a.command.as_str() {
            "view" => self.view(&path, &shown, a.view_range.as_deref()),
            "create" => {
                let text = a
                    .file_text
                    .as_ref()
                    .ok_or_else(|| missing("create", "file_text"))?;
                self.create(&path, &shown, text)
            }
            "str_replace" => {
                let old = a
                    .old_str
                    .as_ref()
                    .ok_or_else(|| missing("str_replace", "old_str"))?;
                let new = a
                    .new_str
                    .as_ref()
                    .ok_or_else(|| missing("str_replace", "new_str"))?;
                if new == old {
                    return Err(invalid(
                        "new_str",
                        new,
                        "No replacement was performed. `new_str` and `old_str` must be different.",
                    ));
                }
                self.str_replace(&path, &shown, old, new)
            }
            "insert" => {
                let line = a
                    .insert_line
                    .ok_or_else(|| missing("insert", "insert_line"))?;
                let new = a
                    .new_str
                    .as_ref()
                    .ok_or_else(|| missing("insert", "new_str"))?;
                self.insert(&path, &shown, line, new)
            }
            "undo_edit" => self.undo_edit(&path, &shown),
            other => Err(format!(
                "Unrecognized command {other}. The allowed commands for FileEditor tool are: view, create, str_replace, insert, undo_edit"
            )),
        }
    }

    fn validate_path(&self, command: &str, path: &Path, shown: &str) -> Result<(), String> {
        if !is_absolute(shown) {
            let mut hint = "The path should be an absolute path.".to_string();
            let suggested = py_path(&format!("{}/{shown}", self.cwd.display()));
            if Path::new(&suggested).exists() {
                hint.push_str(&format!(" Maybe you meant {suggested}?"));
            }
            return Err(invalid("path", shown, &hint));
        }
        let exists = path.exists();
        if command == "create" && exists {
            return Err(invalid(
                "path",
                shown,
                &format!(
                    "File already exists at: {shown}. Cannot overwrite files using command `create`."
                ),
            ));
        }
        if command != "create" && !exists {
            return Err(invalid(
                "path",
                shown,
                &format!("The path {shown} does not exist. Please provide a valid path."),
            ));
        }
        if command != "view" && path.is_dir() {
            return Err(invalid(
                "path",
                shown,
                &format!(
                    "The path {shown} is a directory and only the `view` command can be used on directories."
                ),
            ));
        }
        Ok(())
    }

    /// Reads and validates a text file: regular, at most 10 MB, not binary.
    fn load(&self, path: &Path, shown: &str) -> Result<TextFile, String> {
        let read_err = |e: &std::io::Error| {
            format!(
                "Ran into {} while trying to read {shown}",
                py_os_error(e, Some(path))
            )
        };
        let meta = fs::metadata(path).map_err(|e| read_err(&e))?;
        // Devices and FIFOs would block or never end.
        if !meta.is_file() {
            return Err(invalid(
                "path",
                shown,
                &format!("The path {shown} is not a regular file."),
            ));
        }
        check_size(meta.len(), shown)?;
        let bytes = fs::read(path).map_err(|e| read_err(&e))?;
        decode_text(&bytes).ok_or_else(|| {
            format!(
                "File validation failed for {shown}: File appears to be binary and this file type cannot be read or edited by this tool."
            )
        })
    }

    fn write(
        &self,
        path: &Path,
        shown: &str,
        text: &str,
        like: Option<&TextFile>,
    ) -> Result<(), String> {
        let bytes = match like {
            Some(f) => encode_text(text, f.encoding, f.crlf),
            None => text.as_bytes().to_vec(),
        };
        atomic_write(path, &bytes)
            .map_err(|e| format!("Ran into {e} while trying to write to {shown}"))
    }

    fn view(&self, path: &Path, shown: &str, range: Option<&[i64]>) -> Result<Outcome, String> {
        let range = range.filter(|r| !r.is_empty());
        if path.is_dir() {
            if let Some(r) = range {
                return Err(invalid(
                    "view_range",
                    &py_int_list(r),
                    "The `view_range` parameter is not allowed when `path` points to a directory.",
                ));
            }
            return Ok(view_directory(path, shown));
        }
        if let Some(ext) = lower_extension(path).filter(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
        {
            return view_image(path, shown, &ext);
        }
        let file = self.load(path, shown)?;
        let Some(range) = range else {
            return Ok(Outcome::text(make_output(&file.text, shown, 1), shown));
        };
        let num_lines = count_lines(&file.text);
        let [start, end] = range else {
            return Err(invalid(
                "view_range",
                &py_int_list(range),
                "It should be a list of two integers.",
            ));
        };
        let (start, mut end) = (*start, *end);
        let n = i64::try_from(num_lines).unwrap_or(i64::MAX);
        if start < 1 || start > n {
            return Err(invalid(
                "view_range",
                &py_int_list(range),
                &format!(
                    "Its first element `{start}` should be within the range of lines of the file: [1, {n}]."
                ),
            ));
        }
        let mut warning = None;
        if end == -1 {
            end = n;
        } else if end > n {
            warning = Some(format!(
                "We only show up to {n} since there're only {n} lines in this file."
            ));
            end = n;
        }
        if end < start {
            return Err(invalid(
                "view_range",
                &py_int_list(range),
                &format!(
                    "Its second element `{end}` should be greater than or equal to the first element `{start}`."
                ),
            ));
        }
        // Both within 1..=num_lines here.
        let (s, e) = (start as usize, end as usize);
        let output = make_output(&line_range(&file.text, s, e), shown, s);
        let text = match warning {
            Some(w) => format!("NOTE: {w}\n{output}"),
            None => output,
        };
        Ok(Outcome::text(text, shown))
    }

    fn create(&self, path: &Path, shown: &str, text: &str) -> Result<Outcome, String> {
        self.write(path, shown, text, None)?;
        self.history().add(shown, text.to_string());
        Ok(Outcome {
            content: vec![Content::text(format!(
                "File created successfully at: {shown}"
            ))],
            path: Some(shown.to_string()),
            prev_exist: false,
            new_content: Some(text.to_string()),
            ..Outcome::default()
        })
    }

    fn str_replace(
        &self,
        path: &Path,
        shown: &str,
        old: &str,
        new: &str,
    ) -> Result<Outcome, String> {
        let file = self.load(path, shown)?;
        let content = &file.text;
        let find = |needle: &str| -> Vec<(usize, usize)> {
            content
                .match_indices(needle)
                .map(|(idx, _)| (content[..idx].matches('\n').count() + 1, idx))
                .collect()
        };
        let mut old = old;
        let mut found = find(old);
        if found.is_empty() {
            // The model often pads old_str with whitespace the file lacks;
            // retry the match (never the replacement) stripped.
            old = old.trim();
            found = find(old);
            if found.is_empty() {
                return Err(format!(
                    "No replacement was performed, old_str `{old}` did not appear verbatim in {shown}."
                ));
            }
        }
        if found.len() > 1 {
            let mut lines: Vec<i64> = found.iter().map(|(l, _)| *l as i64).collect();
            lines.dedup();
            return Err(format!(
                "No replacement was performed. Multiple occurrences of old_str `{old}` in lines {}. Please ensure it is unique.",
                py_int_list(&lines)
            ));
        }
        let (line, idx) = found[0];
        let new_content = format!("{}{new}{}", &content[..idx], &content[idx + old.len()..]);
        self.write(path, shown, &new_content, Some(&file))?;
        self.history().add(shown, content.clone());

        let start = line.saturating_sub(SNIPPET_CONTEXT_WINDOW);
        let end = line + SNIPPET_CONTEXT_WINDOW + new.matches('\n').count();
        let written = universal_newlines(new_content.clone()).0;
        let snippet = line_range(&written, start + 1, end);
        let text = format!(
            "The file {shown} has been edited. {}Review the changes and make sure they are as expected. Edit the file again if necessary.",
            make_output(&snippet, &format!("a snippet of {shown}"), start + 1)
        );
        Ok(Outcome {
            old_content: Some(file.text.clone()),
            new_content: Some(new_content),
            ..Outcome::text(text, shown)
        })
    }

    fn insert(
        &self,
        path: &Path,
        shown: &str,
        insert_line: i64,
        new: &str,
    ) -> Result<Outcome, String> {
        let file = self.load(path, shown)?;
        let num_lines = count_lines(&file.text);
        let at = usize::try_from(insert_line)
            .ok()
            .filter(|l| *l <= num_lines)
            .ok_or_else(|| {
                invalid(
                    "insert_line",
                    &insert_line.to_string(),
                    &format!("It should be within the range of allowed values: [0, {num_lines}]"),
                )
            })?;
        let new_lines: Vec<&str> = new.split('\n').collect();
        let mut before: String = file.text.split_inclusive('\n').take(at).collect();
        // The Python editor glues the insertion onto a last line that has no
        // newline; end that line first.
        if !before.is_empty() && !before.ends_with('\n') {
            before.push('\n');
        }
        let after: String = file.text.split_inclusive('\n').skip(at).collect();
        let mut new_content = before;
        for line in &new_lines {
            new_content.push_str(line);
            new_content.push('\n');
        }
        new_content.push_str(&after);
        self.write(path, shown, &new_content, Some(&file))?;
        self.history().add(shown, file.text.clone());

        let written = universal_newlines(new_content).0;
        let start = at.saturating_sub(SNIPPET_CONTEXT_WINDOW);
        let end = (num_lines + new_lines.len()).min(at + SNIPPET_CONTEXT_WINDOW + new_lines.len());
        let snippet = line_range(&written, start + 1, end);
        let text = format!(
            "The file {shown} has been edited. {}Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.",
            make_output(&snippet, "a snippet of the edited file", start + 1)
        );
        Ok(Outcome {
            old_content: Some(file.text),
            new_content: Some(written),
            ..Outcome::text(text, shown)
        })
    }

    fn undo_edit(&self, path: &Path, shown: &str) -> Result<Outcome, String> {
        let file = self.load(path, shown)?;
        let old = self
            .history()
            .pop(shown)
            .ok_or_else(|| format!("No edit history found for {shown}."))?;
        self.write(path, shown, &old, Some(&file))?;
        let text = format!(
            "Last edit to {shown} undone successfully. {}",
            make_output(&old, shown, 1)
        );
        Ok(Outcome {
            old_content: Some(file.text),
            new_content: Some(old),
            ..Outcome::text(text, shown)
        })
    }
}

fn check_size(len: u64, shown: &str) -> Result<(), String> {
    if len > MAX_FILE_SIZE {
        return Err(format!(
            "File validation failed for {shown}: File is too large ({:.1}MB). Maximum allowed size is 10MB.",
            len as f64 / 1024.0 / 1024.0
        ));
    }
    Ok(())
}

fn view_image(path: &Path, shown: &str, ext: &str) -> Result<Outcome, String> {
    let fail = |e: String| format!("Failed to read image file {shown}: {e}");
    let meta = fs::metadata(path).map_err(|e| fail(py_os_error(&e, Some(path))))?;
    // Unlike the Python editor, images obey the size limit too: a huge data
    // URL only breaks the next LLM call.
    check_size(meta.len(), shown)?;
    let bytes = fs::read(path).map_err(|e| fail(py_os_error(&e, Some(path))))?;
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(Outcome {
        content: vec![
            Content::text(format!(
                "Image file {shown} read successfully. Displaying image content."
            )),
            Content::image(format!("data:{};base64,{data}", image_mime(ext))),
        ],
        path: Some(shown.to_string()),
        prev_exist: true,
        ..Outcome::default()
    })
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Children of `dir` sorted by path, without hidden ones.
fn visible_children(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut children: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| !is_hidden(&e.file_name()))
        .map(|e| e.path())
        .collect();
    children.sort();
    Ok(children)
}

fn view_directory(path: &Path, shown: &str) -> Outcome {
    let listing = (|| -> std::io::Result<(usize, Vec<PathBuf>)> {
        let hidden = fs::read_dir(path)?
            .filter_map(Result::ok)
            .filter(|e| is_hidden(&e.file_name()))
            .count();
        let mut entries = vec![path.to_path_buf()];
        for child in visible_children(path)? {
            let is_dir = child.is_dir();
            entries.push(child.clone());
            if is_dir {
                // An unreadable subdirectory is listed without its children.
                entries.extend(visible_children(&child).unwrap_or_default());
            }
        }
        Ok((hidden, entries))
    })();
    let (hidden, entries) = match listing {
        Ok(l) => l,
        Err(e) => {
            return Outcome {
                is_error: true,
                ..Outcome::text(py_os_error(&e, Some(path)), shown)
            }
        }
    };
    let lines: Vec<String> = entries
        .iter()
        .map(|entry| {
            let display = match entry.strip_prefix(path) {
                Ok(rel) if rel.as_os_str().is_empty() => shown.to_string(),
                Ok(rel) => format!("{shown}/{}", rel.display()),
                Err(_) => entry.display().to_string(),
            };
            if entry.is_dir() {
                format!("{display}/")
            } else {
                display
            }
        })
        .collect();
    let mut msg = format!(
        "Here's the files and directories up to 2 levels deep in {shown}, excluding hidden items:\n{}",
        lines.join("\n")
    );
    if hidden > 0 {
        msg.push_str(&format!(
            "\n\n{hidden} hidden files/directories in this directory are excluded. You can use 'ls -la {shown}' to see them."
        ));
    }
    let text = maybe_truncate(
        &msg,
        MAX_RESPONSE_LEN_CHAR,
        DIRECTORY_CONTENT_TRUNCATED_NOTICE,
        None,
    );
    Outcome::text(text, shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_helpers_follow_python_file_iteration() {
        assert_eq!(count_lines(""), 0);
        assert_eq!(count_lines("a"), 1);
        assert_eq!(count_lines("a\n"), 1);
        assert_eq!(count_lines("a\n\nb"), 3);
        assert_eq!(line_range("1\n2\n3\n4\n", 2, 3), "2\n3\n");
        assert_eq!(line_range("1\n2\n", 0, 1), "1\n");
        assert_eq!(line_range("1\n2\n", 5, 9), "");
    }

    #[test]
    fn cat_n_numbering() {
        assert_eq!(
            make_output("a\nb\n", "/f", 9),
            "Here's the result of running `cat -n` on /f:\n     9\ta\n    10\tb\n"
        );
        assert_eq!(
            make_output("", "/f", 1),
            "Here's the result of running `cat -n` on /f:\n"
        );
    }
}
