//! Parsing the `*** Begin Patch` format against the current file contents
//! (context lines are located while parsing, as in the reference
//! implementation), and turning the parsed patch into a [`Commit`].
//!
//! Context matching tries progressively looser comparisons; each loosening
//! adds to the reported fuzz: exact (0), trailing whitespace ignored (1),
//! surrounding whitespace ignored (100), typographic punctuation and
//! exotic spaces normalised (1000; this pass is ours, the Python tool stops
//! at 100), and an `*** End of File` hunk not found at the end (+10000).

use std::borrow::Cow;
use std::collections::HashMap;

use super::DiffError;

/// What a patch does to one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Add,
    Delete,
    Update,
}

impl ChangeType {
    /// The wire name (`add`, `delete`, `update`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Add => "add",
            ChangeType::Delete => "delete",
            ChangeType::Update => "update",
        }
    }
}

/// One replaced run of lines: at `orig_index`, `del_lines` become `ins_lines`.
#[derive(Clone, Debug, Default)]
struct Chunk {
    orig_index: usize,
    del_lines: Vec<String>,
    ins_lines: Vec<String>,
}

#[derive(Debug)]
struct PatchAction {
    kind: ChangeType,
    new_file: Option<String>,
    chunks: Vec<Chunk>,
    /// `Some("")` for an update without `*** Move to:` (as upstream).
    move_path: Option<String>,
}

/// The change to one file, as reported in `commit.changes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    pub kind: ChangeType,
    pub old_content: Option<String>,
    pub new_content: Option<String>,
    /// For updates: the new path, or `""` when the file stays.
    pub move_path: Option<String>,
}

/// All changes of a patch, in patch order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    pub changes: Vec<(String, FileChange)>,
}

const SECTION_ENDS: [&str; 5] = [
    "*** End Patch",
    "*** Update File:",
    "*** Delete File:",
    "*** Add File:",
    "*** End of File",
];

fn err(msg: impl Into<String>) -> DiffError {
    DiffError(msg.into())
}

fn starts_with_any(s: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| s.starts_with(p))
}

/// Python's `str.strip()` / `str.rstrip()` (Unicode whitespace).
fn py_strip(s: &str) -> &str {
    s.trim()
}

/// Typographic dashes, quotes and spaces folded to ASCII, then trimmed.
fn normalise_punctuation(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            '\u{2018}'..='\u{201B}' => '\'',
            '\u{201C}'..='\u{201F}' => '"',
            '\u{00A0}' | '\u{2002}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => ' ',
            other => other,
        })
        .collect()
}

/// A line comparison key: lines match when their keys are equal.
type Normalise = fn(&str) -> Cow<'_, str>;

/// The passes of the context search, loosest last, with their fuzz.
const PASSES: [(u64, Normalise); 4] = [
    (0, |s| Cow::Borrowed(s)),
    (1, |s| Cow::Borrowed(s.trim_end())),
    (100, |s| Cow::Borrowed(py_strip(s))),
    (1000, |s| Cow::Owned(normalise_punctuation(s))),
];

fn window_matches(lines: &[String], context: &[String], i: usize, key: Normalise) -> bool {
    i + context.len() <= lines.len()
        && lines[i..i + context.len()]
            .iter()
            .zip(context)
            .all(|(a, b)| key(a) == key(b))
}

fn find_context_core(lines: &[String], context: &[String], start: usize) -> Option<(usize, u64)> {
    if context.is_empty() {
        return Some((start, 0));
    }
    for (fuzz, key) in PASSES {
        if let Some(i) = (start..lines.len()).find(|&i| window_matches(lines, context, i, key)) {
            return Some((i, fuzz));
        }
    }
    None
}

fn find_context(
    lines: &[String],
    context: &[String],
    start: usize,
    eof: bool,
) -> Option<(usize, u64)> {
    if eof {
        let at_end = lines.len().saturating_sub(context.len());
        if let Some(found) = find_context_core(lines, context, at_end) {
            return Some(found);
        }
        return find_context_core(lines, context, start).map(|(i, f)| (i, f + 10_000));
    }
    find_context_core(lines, context, start)
}

/// The next hunk: its old lines (context and deletions), its chunks, where
/// it ends, and whether it is anchored at the end of file.
fn peek_next_section(
    lines: &[&str],
    mut index: usize,
) -> Result<(Vec<String>, Vec<Chunk>, usize, bool), DiffError> {
    #[derive(PartialEq, Eq, Clone, Copy)]
    enum Mode {
        Keep,
        Add,
        Delete,
    }
    let mut old: Vec<String> = Vec::new();
    let mut del_lines: Vec<String> = Vec::new();
    let mut ins_lines: Vec<String> = Vec::new();
    let mut chunks = Vec::new();
    let mut mode = Mode::Keep;
    let orig_index = index;
    let flush = |old: &Vec<String>,
                 del: &mut Vec<String>,
                 ins: &mut Vec<String>,
                 chunks: &mut Vec<Chunk>| {
        if !ins.is_empty() || !del.is_empty() {
            chunks.push(Chunk {
                orig_index: old.len() - del.len(),
                del_lines: std::mem::take(del),
                ins_lines: std::mem::take(ins),
            });
        }
    };
    while index < lines.len() {
        let s = lines[index];
        if s.starts_with("@@") || starts_with_any(s, &SECTION_ENDS) || s == "***" {
            break;
        }
        if s.starts_with("***") {
            return Err(err(format!("Invalid Line: {s}")));
        }
        index += 1;
        let last_mode = mode;
        let s = if s.is_empty() { " " } else { s };
        mode = match s.as_bytes()[0] {
            b'+' => Mode::Add,
            b'-' => Mode::Delete,
            b' ' => Mode::Keep,
            _ => return Err(err(format!("Invalid Line: {s}"))),
        };
        let text = s[1..].to_string();
        if mode == Mode::Keep && last_mode != mode {
            flush(&old, &mut del_lines, &mut ins_lines, &mut chunks);
        }
        match mode {
            Mode::Delete => {
                del_lines.push(text.clone());
                old.push(text);
            }
            Mode::Add => ins_lines.push(text),
            Mode::Keep => old.push(text),
        }
    }
    flush(&old, &mut del_lines, &mut ins_lines, &mut chunks);
    if lines.get(index) == Some(&"*** End of File") {
        return Ok((old, chunks, index + 1, true));
    }
    if index == orig_index {
        return Err(err(format!(
            "Nothing in this section - index={index} {}",
            lines.get(index).unwrap_or(&"")
        )));
    }
    Ok((old, chunks, index, false))
}

struct Parser<'a> {
    current_files: &'a HashMap<String, String>,
    lines: Vec<&'a str>,
    index: usize,
    actions: Vec<(String, PatchAction)>,
    fuzz: u64,
}

impl<'a> Parser<'a> {
    fn is_done(&self, prefixes: &[&str]) -> bool {
        match self.lines.get(self.index) {
            None => true,
            Some(line) => starts_with_any(line, prefixes),
        }
    }

    fn current(&self) -> Result<&'a str, DiffError> {
        self.lines
            .get(self.index)
            .copied()
            .ok_or_else(|| err(format!("Unexpected end of patch at index {}", self.index)))
    }

    /// The rest of the current line after `prefix` (consuming it), or `""`.
    fn read_str(&mut self, prefix: &str) -> Result<&'a str, DiffError> {
        let line = self.current()?;
        match line.strip_prefix(prefix) {
            Some(rest) => {
                self.index += 1;
                Ok(rest)
            }
            None => Ok(""),
        }
    }

    fn has_action(&self, path: &str) -> bool {
        self.actions.iter().any(|(p, _)| p == path)
    }

    fn parse(&mut self) -> Result<(), DiffError> {
        while !self.is_done(&["*** End Patch"]) {
            let path = self.read_str("*** Update File: ")?;
            if !path.is_empty() {
                if self.has_action(path) {
                    return Err(err(format!("Update File Error: Duplicate Path: {path}")));
                }
                let move_to = self.read_str("*** Move to: ")?;
                if !move_to.is_empty()
                    && (move_to.split('/').any(|c| c == "..") || move_to.starts_with('/'))
                {
                    return Err(err(format!(
                        "Update File Error: Invalid move path '{move_to}': must be a relative path without '..' components"
                    )));
                }
                let text = self
                    .current_files
                    .get(path)
                    .ok_or_else(|| err(format!("Update File Error: Missing File: {path}")))?;
                let mut action = self.parse_update_file(text)?;
                action.move_path = Some(move_to.to_string());
                self.actions.push((path.to_string(), action));
                continue;
            }
            let path = self.read_str("*** Delete File: ")?;
            if !path.is_empty() {
                if self.has_action(path) {
                    return Err(err(format!("Delete File Error: Duplicate Path: {path}")));
                }
                if !self.current_files.contains_key(path) {
                    return Err(err(format!("Delete File Error: Missing File: {path}")));
                }
                self.actions.push((
                    path.to_string(),
                    PatchAction {
                        kind: ChangeType::Delete,
                        new_file: None,
                        chunks: Vec::new(),
                        move_path: None,
                    },
                ));
                continue;
            }
            let path = self.read_str("*** Add File: ")?;
            if !path.is_empty() {
                if self.has_action(path) {
                    return Err(err(format!("Add File Error: Duplicate Path: {path}")));
                }
                let action = self.parse_add_file()?;
                self.actions.push((path.to_string(), action));
                continue;
            }
            return Err(err(format!("Unknown Line: {}", self.current()?)));
        }
        if !self.current()?.starts_with("*** End Patch") {
            return Err(err("Missing End Patch"));
        }
        self.index += 1;
        Ok(())
    }

    fn parse_update_file(&mut self, text: &str) -> Result<PatchAction, DiffError> {
        let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let mut chunks = Vec::new();
        let mut index = 0usize;
        while !self.is_done(&SECTION_ENDS) {
            let def_str = self.read_str("@@ ")?;
            let mut section = false;
            if def_str.is_empty() && self.current()? == "@@" {
                section = true;
                self.index += 1;
            }
            if def_str.is_empty() && !section && index != 0 {
                return Err(err(format!("Invalid Line:\n{}", self.current()?)));
            }
            if !py_strip(def_str).is_empty() {
                self.seek_section_header(&lines, &mut index, def_str);
            }
            let (context, section_chunks, end_index, eof) =
                peek_next_section(&self.lines, self.index)?;
            let Some((new_index, fuzz)) = find_context(&lines, &context, index, eof) else {
                let label = if eof {
                    "Invalid EOF Context"
                } else {
                    "Invalid Context"
                };
                return Err(err(format!("{label} {index}:\n{}", context.join("\n"))));
            };
            self.fuzz += fuzz;
            for mut chunk in section_chunks {
                chunk.orig_index += new_index;
                chunks.push(chunk);
            }
            index = new_index + context.len();
            self.index = end_index;
        }
        Ok(PatchAction {
            kind: ChangeType::Update,
            new_file: None,
            chunks,
            move_path: None,
        })
    }

    /// Moves `index` past the `@@ <header>` line, unless the header already
    /// occurred before `index`; an inexact (stripped) find adds fuzz 1.
    fn seek_section_header(&mut self, lines: &[String], index: &mut usize, def_str: &str) {
        let start = (*index).min(lines.len());
        let mut found = false;
        if !lines[..start].iter().any(|s| s == def_str) {
            if let Some(i) = (start..lines.len()).find(|&i| lines[i] == def_str) {
                *index = i + 1;
                found = true;
            }
        }
        let start = (*index).min(lines.len());
        let wanted = py_strip(def_str);
        if !found && !lines[..start].iter().any(|s| py_strip(s) == wanted) {
            if let Some(i) = (start..lines.len()).find(|&i| py_strip(&lines[i]) == wanted) {
                *index = i + 1;
                self.fuzz += 1;
            }
        }
    }

    fn parse_add_file(&mut self) -> Result<PatchAction, DiffError> {
        let mut lines = Vec::new();
        while !self.is_done(&SECTION_ENDS[..4]) {
            let s = self.read_str("")?;
            let Some(rest) = s.strip_prefix('+') else {
                return Err(err(format!("Invalid Add File Line: {s}")));
            };
            lines.push(rest);
        }
        Ok(PatchAction {
            kind: ChangeType::Add,
            new_file: Some(lines.join("\n")),
            chunks: Vec::new(),
            move_path: None,
        })
    }
}

/// Checks the envelope and parses the patch against `orig` (the contents of
/// every file it updates or deletes); returns the commit and its fuzz.
pub(super) fn text_to_commit(
    text: &str,
    orig: &HashMap<String, String>,
) -> Result<(Commit, u64), DiffError> {
    let lines: Vec<&str> = text.trim().split('\n').collect();
    if lines.len() < 2
        || !lines[0].starts_with("*** Begin Patch")
        || lines.last() != Some(&"*** End Patch")
    {
        return Err(err("Invalid patch text"));
    }
    let mut parser = Parser {
        current_files: orig,
        lines,
        index: 1,
        actions: Vec::new(),
        fuzz: 0,
    };
    parser.parse()?;
    let mut commit = Commit::default();
    for (path, action) in parser.actions {
        let change = match action.kind {
            ChangeType::Delete => FileChange {
                kind: ChangeType::Delete,
                old_content: orig.get(&path).cloned(),
                new_content: None,
                move_path: None,
            },
            ChangeType::Add => FileChange {
                kind: ChangeType::Add,
                old_content: None,
                new_content: action.new_file,
                move_path: None,
            },
            ChangeType::Update => {
                let old = orig.get(&path).cloned().unwrap_or_default();
                let new = updated_file(&old, &action.chunks, &path)?;
                FileChange {
                    kind: ChangeType::Update,
                    old_content: Some(old),
                    new_content: Some(new),
                    move_path: action.move_path,
                }
            }
        };
        commit.changes.push((path, change));
    }
    Ok((commit, parser.fuzz))
}

/// The paths a patch updates or deletes, in order of appearance, with the
/// kind of section naming them first.
pub(super) fn files_needed(text: &str) -> Vec<(String, ChangeType)> {
    let mut out: Vec<(String, ChangeType)> = Vec::new();
    for line in text.trim().split('\n') {
        let found = if let Some(p) = line.strip_prefix("*** Update File: ") {
            Some((p, ChangeType::Update))
        } else {
            line.strip_prefix("*** Delete File: ")
                .map(|p| (p, ChangeType::Delete))
        };
        if let Some((path, kind)) = found {
            if !out.iter().any(|(p, _)| p == path) {
                out.push((path.to_string(), kind));
            }
        }
    }
    out
}

fn updated_file(text: &str, chunks: &[Chunk], path: &str) -> Result<String, DiffError> {
    let orig: Vec<&str> = text.split('\n').collect();
    let mut dest: Vec<&str> = Vec::with_capacity(orig.len());
    let mut orig_index = 0usize;
    for chunk in chunks {
        if chunk.orig_index > orig.len() {
            return Err(err(format!(
                "_get_updated_file: {path}: chunk.orig_index {} > len(lines) {}",
                chunk.orig_index,
                orig.len()
            )));
        }
        if orig_index > chunk.orig_index {
            return Err(err(format!(
                "_get_updated_file: {path}: orig_index {orig_index} > chunk.orig_index {}",
                chunk.orig_index
            )));
        }
        dest.extend_from_slice(&orig[orig_index..chunk.orig_index]);
        dest.extend(chunk.ins_lines.iter().map(String::as_str));
        orig_index = chunk.orig_index + chunk.del_lines.len();
    }
    if orig_index > orig.len() {
        return Err(err(format!(
            "_get_updated_file: {path}: did not consume all original lines (orig_index={orig_index}, len={})",
            orig.len()
        )));
    }
    dest.extend_from_slice(&orig[orig_index..]);
    Ok(dest.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn update_with_context_and_fuzz() {
        let orig = files(&[("a.py", "def f():\n    return 1  \n\nx = 2\n")]);
        let patch = "*** Begin Patch\n*** Update File: a.py\n@@ def f():\n-    return 1\n+    return 2\n*** End Patch";
        let (commit, fuzz) = text_to_commit(patch, &orig).unwrap();
        assert_eq!(fuzz, 1, "trailing whitespace differs");
        let change = &commit.changes[0].1;
        assert_eq!(
            change.new_content.as_deref(),
            Some("def f():\n    return 2\n\nx = 2\n")
        );
        assert_eq!(change.move_path.as_deref(), Some(""));
    }

    #[test]
    fn typographic_quotes_match_with_fuzz_1000() {
        let orig = files(&[("t.md", "say \u{201C}hi\u{201D} \u{2014} ok\n")]);
        let patch =
            "*** Begin Patch\n*** Update File: t.md\n-say \"hi\" - ok\n+say hello\n*** End Patch";
        let (commit, fuzz) = text_to_commit(patch, &orig).unwrap();
        assert_eq!(fuzz, 1000);
        assert_eq!(
            commit.changes[0].1.new_content.as_deref(),
            Some("say hello\n")
        );
    }

    #[test]
    fn eof_hunk_not_at_end_costs_10000() {
        let orig = files(&[("f", "a\nb\nc\n")]);
        let patch =
            "*** Begin Patch\n*** Update File: f\n a\n-b\n+B\n*** End of File\n*** End Patch";
        let (commit, fuzz) = text_to_commit(patch, &orig).unwrap();
        assert_eq!(fuzz, 10_000);
        assert_eq!(
            commit.changes[0].1.new_content.as_deref(),
            Some("a\nB\nc\n")
        );
    }

    #[test]
    fn envelope_and_line_errors() {
        let none = HashMap::new();
        assert_eq!(
            text_to_commit("*** Begin Patch", &none).unwrap_err().0,
            "Invalid patch text"
        );
        assert_eq!(
            text_to_commit("*** Begin Patch\ngarbage\n*** End Patch", &none)
                .unwrap_err()
                .0,
            "Unknown Line: garbage"
        );
        assert_eq!(
            text_to_commit(
                "*** Begin Patch\n*** Add File: x\nno plus\n*** End Patch",
                &none
            )
            .unwrap_err()
            .0,
            "Invalid Add File Line: no plus"
        );
        let orig = files(&[("f", "a\n")]);
        assert_eq!(
            text_to_commit(
                "*** Begin Patch\n*** Update File: f\n-zzz\n+y\n*** End Patch",
                &orig
            )
            .unwrap_err()
            .0,
            "Invalid Context 0:\nzzz"
        );
    }

    #[test]
    fn needed_files_in_order() {
        let t = "*** Begin Patch\n*** Delete File: b\n*** Update File: a\n*** Update File: b\n*** End Patch";
        assert_eq!(
            files_needed(t),
            vec![
                ("b".to_string(), ChangeType::Delete),
                ("a".to_string(), ChangeType::Update)
            ]
        );
    }
}
