//! Reading what the shell wrote: the prompt blocks that mark the end of a
//! command, and rendering raw terminal bytes into plain text.

use std::sync::LazyLock;

use regex::bytes::Regex;
use serde_json::Value;

/// First line of a prompt block (upstream's marker).
const PS1_BEGIN: &[u8] = b"###PS1JSON###";
/// Last line of a prompt block.
const PS1_END: &[u8] = b"###PS1END###";

/// The prompt the shell prints after every command: upstream's JSON block,
/// plus `command_seq`, the number of the last command line we typed, which
/// tells our own prompts apart from ones caused by stray input.
///
/// `\n`, `\u` and `\h` are prompt escapes; the `$…` parts are expanded when
/// the prompt is shown (never inside `PROMPT_COMMAND`), so a directory name
/// containing `$(…)` is printed, not run.
pub(super) const PS1_TEMPLATE: &str = r#"\n###PS1JSON###\n{\n  "pid": "$!",\n  "exit_code": "$?",\n  "username": "\u",\n  "hostname": "\h",\n  "working_dir": "$PWD",\n  "py_interpreter_path": "$(command -v python 2>/dev/null)",\n  "command_seq": "$__oh_seq"\n}\n###PS1END###\n"#;

/// The values a prompt block carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PromptFields {
    pub exit_code: i64,
    pub pid: i64,
    pub username: Option<String>,
    pub hostname: Option<String>,
    pub working_dir: Option<String>,
    pub py_interpreter_path: Option<String>,
    /// Number of the command line that produced this prompt.
    pub seq: Option<u64>,
}

/// A complete prompt block found in the output buffer.
#[derive(Clone, Debug)]
pub(super) struct Prompt {
    /// Offset of the block's first marker: the command output ends here.
    pub start: usize,
    /// Offset just after the block's last line.
    pub end: usize,
    /// The block's JSON text, exactly as printed (for comparing prompts).
    pub raw: String,
    pub fields: PromptFields,
}

/// Byte searches run on every chunk of output, so they use the regex
/// engine's optimised literal search rather than a naive scan.
fn literal(text: &[u8]) -> Regex {
    let pattern = regex::escape(&String::from_utf8_lossy(text));
    Regex::new(&pattern).expect("an escaped literal is a valid regex")
}

static END_MARKER: LazyLock<Regex> = LazyLock::new(|| literal(PS1_END));
static BEGIN_MARKER: LazyLock<Regex> = LazyLock::new(|| literal(PS1_BEGIN));
static ALT_SCREEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b\[\?(?:1049|1047|47)([hl])").expect("the pattern is valid"));

/// How far before its end marker a prompt block may begin.
const MAX_BLOCK: usize = 16 * 1024;

/// The offset after `\r*\n` at `pos`, if the line really ends there.
fn line_end(data: &[u8], mut pos: usize) -> Option<usize> {
    while data.get(pos) == Some(&b'\r') {
        pos += 1;
    }
    (data.get(pos) == Some(&b'\n')).then_some(pos + 1)
}

fn at_line_start(data: &[u8], pos: usize) -> bool {
    pos == 0 || data[pos - 1] == b'\n'
}

/// Finds the first complete prompt block at or after `from`.
///
/// Returns the block, or where the next search may start when there is none
/// (so a block arriving in pieces is not searched from the top every time).
pub(super) fn find_prompt(data: &[u8], from: usize) -> Result<Prompt, usize> {
    let mut search = from.saturating_sub(PS1_END.len() + 2).min(data.len());
    while let Some(found) = END_MARKER.find_at(data, search) {
        let end_pos = found.start();
        search = found.end();
        if !at_line_start(data, end_pos) {
            continue;
        }
        let Some(end) = line_end(data, end_pos + PS1_END.len()) else {
            // The block's last line is still arriving.
            return Err(end_pos);
        };
        let window = end_pos.saturating_sub(MAX_BLOCK);
        let Some(begin) = BEGIN_MARKER
            .find_iter(&data[window..end_pos])
            .last()
            .map(|m| window + m.start())
        else {
            continue;
        };
        if !at_line_start(data, begin) {
            continue;
        }
        let Some(json_start) = line_end(data, begin + PS1_BEGIN.len()) else {
            continue;
        };
        let raw: String = String::from_utf8_lossy(&data[json_start.min(end_pos)..end_pos])
            .chars()
            .filter(|&c| c != '\r')
            .collect();
        let Some(fields) = parse_fields(&raw) else {
            continue;
        };
        return Ok(Prompt {
            start: begin,
            end,
            raw,
            fields,
        });
    }
    Err(data.len().saturating_sub(PS1_END.len() + 2))
}

/// Upstream's `int(float(value))`, `-1` when that fails.
fn parse_int(value: &str) -> i64 {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => v.trunc() as i64,
        _ => -1,
    }
}

/// Parses the JSON of a prompt block; a value with quotes or backslashes in
/// it (an odd directory name) breaks the JSON, so fall back to reading the
/// `"key": "value"` lines one by one.
fn parse_fields(raw: &str) -> Option<PromptFields> {
    let mut values: Vec<(String, String)> = Vec::new();
    match serde_json::from_str::<Value>(raw.trim()) {
        Ok(Value::Object(map)) => {
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => s,
                    Value::Null => continue,
                    other => other.to_string(),
                };
                values.push((k, text));
            }
        }
        _ => {
            for line in raw.lines() {
                let line = line.trim().trim_end_matches(',');
                let Some((key, value)) = line.split_once("\": \"") else {
                    continue;
                };
                let key = key.trim_start_matches('"');
                let value = value.strip_suffix('"').unwrap_or(value);
                values.push((key.to_string(), value.to_string()));
            }
            if values.is_empty() {
                return None;
            }
        }
    }
    let mut fields = PromptFields {
        exit_code: -1,
        pid: -1,
        ..PromptFields::default()
    };
    for (key, value) in values {
        match key.as_str() {
            "exit_code" => fields.exit_code = parse_int(&value),
            "pid" => fields.pid = parse_int(&value),
            "username" => fields.username = Some(value),
            "hostname" => fields.hostname = Some(value),
            "working_dir" => fields.working_dir = Some(value),
            "py_interpreter_path" => fields.py_interpreter_path = Some(value),
            "command_seq" => fields.seq = value.trim().parse().ok(),
            _ => {}
        }
    }
    Some(fields)
}

/// Whether `bytes` switch the terminal to or from the alternate screen
/// (full-screen programs): the last switch wins.
pub(super) fn alt_screen_switch(bytes: &[u8]) -> Option<bool> {
    ALT_SCREEN
        .captures_iter(bytes)
        .last()
        .map(|c| c.get(1).is_some_and(|m| m.as_bytes() == b"h"))
}

/// One line being drawn, with a cursor, so carriage returns and backspaces
/// overwrite the way a terminal shows them (progress bars end up as their
/// final state).
#[derive(Default)]
struct Line {
    text: String,
    /// Cursor column, in characters.
    col: usize,
    /// Length of `text` in characters.
    len: usize,
}

impl Line {
    fn put(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        let n = s.chars().count();
        if self.col == self.len {
            self.text.push_str(s);
        } else {
            // Overwriting after a carriage return: rare, so done simply.
            let mut chars: Vec<char> = self.text.chars().collect();
            for (i, c) in s.chars().enumerate() {
                match chars.get_mut(self.col + i) {
                    Some(slot) => *slot = c,
                    None => chars.push(c),
                }
            }
            self.text = chars.into_iter().collect();
            self.len = self.text.chars().count();
            self.col += n;
            return;
        }
        self.col += n;
        self.len += n;
    }

    /// Cuts the line at the cursor ("erase in line").
    fn erase_to_end(&mut self) {
        if let Some((i, _)) = self.text.char_indices().nth(self.col) {
            self.text.truncate(i);
            self.len = self.col;
        }
    }

    /// Moves the finished line to `out`, without trailing spaces (as tmux
    /// does: full-screen programs pad every row to the terminal width), and
    /// starts a new one.
    fn finish(&mut self, out: &mut String) {
        out.push_str(self.text.trim_end_matches(' '));
        out.push('\n');
        *self = Line::default();
    }
}

/// Characters that are not simply printed.
static SPECIAL: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"[\x00-\x08\x0a-\x1f\x7f\x{80}-\x{9f}]").expect("the pattern is valid")
});

/// Renders raw terminal output as plain text, roughly as a terminal screen
/// shows it: escape sequences (colours, cursor movement, titles) are
/// removed, `\r` and backspace overwrite within the line, other control
/// characters are dropped, trailing spaces are trimmed.
pub(super) fn render(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive('\n') {
        let (body, newline) = match piece.strip_suffix('\n') {
            Some(body) => (body.trim_end_matches('\r'), true),
            None => (piece, false),
        };
        // Most lines hold nothing but printable text: copy them as they are.
        let plain = !body
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2);
        if plain {
            out.push_str(if newline {
                body.trim_end_matches(' ')
            } else {
                body
            });
        } else {
            render_line(body, &mut out);
        }
        if newline {
            out.push('\n');
        }
    }
    out
}

/// Renders one line that contains control characters or escape sequences
/// (a cursor move may split it into several).
fn render_line(text: &str, out: &mut String) {
    let mut line = Line::default();
    let mut pos = 0;
    while let Some(found) = SPECIAL.find_at(text, pos) {
        line.put(&text[pos..found.start()]);
        let mut rest = text[found.start()..].chars();
        let ends_line = match rest.next() {
            Some('\r') => {
                line.col = 0;
                false
            }
            Some('\u{8}') => {
                line.col = line.col.saturating_sub(1);
                false
            }
            Some('\u{1b}') => match rest.next() {
                Some('[') => csi(&mut rest, &mut line),
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    string_sequence(&mut rest);
                    false
                }
                Some('(' | ')' | '*' | '+' | '-' | '.' | '/' | '#' | '%' | ' ') => {
                    rest.next();
                    false
                }
                _ => false,
            },
            Some('\u{9b}') => csi(&mut rest, &mut line),
            _ => false,
        };
        if ends_line {
            line.finish(out);
        }
        pos = text.len() - rest.as_str().len();
    }
    line.put(&text[pos..]);
    out.push_str(line.text.trim_end_matches(' '));
}

/// Skips a control sequence. "Erase in line" cuts the line at the cursor, so
/// a redrawn line does not keep the tail of its previous contents; a cursor
/// move to another row (full-screen programs draw rows that way) ends the
/// line. Returns whether the line ends.
fn csi(chars: &mut std::str::Chars<'_>, line: &mut Line) -> bool {
    let mut params = String::new();
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            match c {
                'K' if matches!(params.as_str(), "" | "0" | "2") => line.erase_to_end(),
                'H' | 'f' | 'd' => return !line.text.is_empty(),
                _ => {}
            }
            return false;
        }
        params.push(c);
    }
    false
}

/// Skips an OSC/DCS-style string up to BEL or `ESC \`.
fn string_sequence(chars: &mut std::str::Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.as_str().starts_with('\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// Removes the `set -x` trace of our own plumbing (the command-line wrapper
/// and `PROMPT_COMMAND`), which would otherwise surround every output once
/// the model turns tracing on.
pub(super) fn drop_plumbing_trace(text: String) -> String {
    if !text.contains("__oh_") && !text.contains("stty -echo") {
        return text;
    }
    let traced = |line: &str| -> Option<String> {
        let rest = line.trim_start_matches('+');
        (rest.len() < line.len() && rest.starts_with(' ')).then(|| rest[1..].to_string())
    };
    let mut kept = Vec::new();
    let mut after_ours = false;
    for line in text.split('\n') {
        let ours = match traced(line) {
            Some(cmd) => {
                cmd.starts_with("__oh_")
                    || cmd.starts_with("eval -- ")
                    || cmd == "stty -echo"
                    || cmd == "command -v python"
                    || (cmd.starts_with("PS1=") && cmd.contains("###PS1JSON###"))
                    || (after_ours && (cmd == ":" || cmd.starts_with("return ")))
            }
            None => false,
        };
        after_ours = ours;
        if !ours {
            kept.push(line);
        }
    }
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(seq: u64, exit: &str) -> String {
        format!(
            "\r\r\n###PS1JSON###\r\r\n{{\r\r\n  \"pid\": \"\",\r\r\n  \"exit_code\": \"{exit}\",\r\r\n  \"username\": \"root\",\r\r\n  \"hostname\": \"vm\",\r\r\n  \"working_dir\": \"/tmp\",\r\r\n  \"py_interpreter_path\": \"\",\r\r\n  \"command_seq\": \"{seq}\"\r\r\n}}\r\r\n###PS1END###\r\r\n"
        )
    }

    #[test]
    fn finds_a_complete_block() {
        let data = format!("hello\r\n{}after", block(3, "1"));
        let prompt = find_prompt(data.as_bytes(), 0).unwrap();
        assert_eq!(&data[..prompt.start], "hello\r\n\r\r\n");
        assert_eq!(&data[prompt.end..], "after");
        assert_eq!(prompt.fields.exit_code, 1);
        assert_eq!(prompt.fields.pid, -1);
        assert_eq!(prompt.fields.seq, Some(3));
        assert_eq!(prompt.fields.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(prompt.fields.py_interpreter_path.as_deref(), Some(""));
    }

    #[test]
    fn waits_for_a_block_arriving_in_pieces() {
        let full = format!("out\r\n{}", block(1, "0"));
        let cut = full.len() - 3;
        let resume = find_prompt(&full.as_bytes()[..cut], 0).unwrap_err();
        assert!(resume <= cut);
        assert!(find_prompt(full.as_bytes(), resume).is_ok());
    }

    #[test]
    fn ignores_markers_that_are_not_whole_lines() {
        let data = r#"+ PS1='\n###PS1JSON###\n{"exit_code": "0"}\n###PS1END###\n'"#;
        assert!(find_prompt(data.as_bytes(), 0).is_err());
    }

    #[test]
    fn reads_broken_json_line_by_line() {
        let data = "###PS1JSON###\n{\n  \"exit_code\": \"0\",\n  \"working_dir\": \"/tmp/a\"b\",\n  \"command_seq\": \"7\"\n}\n###PS1END###\n";
        let prompt = find_prompt(data.as_bytes(), 0).unwrap();
        assert_eq!(prompt.fields.exit_code, 0);
        assert_eq!(prompt.fields.working_dir.as_deref(), Some("/tmp/a\"b"));
        assert_eq!(prompt.fields.seq, Some(7));
    }

    #[test]
    fn renders_like_a_terminal_shows_it() {
        assert_eq!(render(b"a\r\nb\r\r\n"), "a\nb\n");
        assert_eq!(render(b"pad   \nx"), "pad\nx");
        assert_eq!(render(b"progress 10%\rprogress 100%\n"), "progress 100%\n");
        assert_eq!(render(b"abcdef\rXY\n"), "XYcdef\n");
        assert_eq!(render(b"long line\r\x1b[Kshort\n"), "short\n");
        assert_eq!(render(b"\x1b[1;31mred\x1b[0m plain"), "red plain");
        assert_eq!(render(b"\x1b]0;title\x07text"), "text");
        assert_eq!(render(b"ab\x08c\x07"), "ac");
        assert_eq!(render(b"\x1b[?2004ltab\there"), "tab\there");
        assert_eq!(render("é\u{1b}(Bx".as_bytes()), "éx");
        assert_eq!(
            render(b"\x1b[1;1Hrow one\x1b[2;1Hrow two"),
            "row one\nrow two"
        );
    }

    #[test]
    fn drops_the_trace_of_our_plumbing() {
        let text = "+ __oh_rc=0\n+ __oh_seq=10\n+ __oh_ret 0\n+ return 0\n+ :\n+ eval -- 'echo hi'\n++ echo hi\nhi\n++ stty -echo\n++ PS1='\\n###PS1JSON###\\n'\n++ command -v python\n+ : user";
        assert_eq!(drop_plumbing_trace(text.into()), "++ echo hi\nhi\n+ : user");
        assert_eq!(drop_plumbing_trace("+ return 0".into()), "+ return 0");
    }

    #[test]
    fn tracks_the_alternate_screen() {
        assert_eq!(alt_screen_switch(b"abc"), None);
        assert_eq!(alt_screen_switch(b"\x1b[?1049hpage"), Some(true));
        assert_eq!(
            alt_screen_switch(b"\x1b[?1049hpage\x1b[?1049l"),
            Some(false)
        );
    }
}
