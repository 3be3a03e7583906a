//! The shared middle-truncation helper (tools.md §9).
//!
//! Long outputs keep their head and tail around a notice, to exactly `limit`
//! characters (Python string length: chars, not bytes). When a save directory
//! is given, the full text is written once to
//! `<save_dir>/<prefix>_output_<sha256[:8]>.txt` and the notice names it.
//!
//! Saving writes a file: call it from blocking context (`spawn_blocking`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The notice used when no save directory is given (113 chars).
pub const DEFAULT_TRUNCATE_NOTICE: &str = "<response clipped><NOTE>Due to the max output limit, only part of the full response has been shown to you.</NOTE>";

/// Where and under which prefix the full text is saved.
#[derive(Clone, Copy, Debug)]
pub struct SaveTo<'a> {
    /// The directory (created when missing).
    pub dir: &'a Path,
    /// The file name prefix (`terminal`, `browser`).
    pub prefix: &'a str,
}

fn char_prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn char_suffix(s: &str, n: usize) -> &str {
    let total = s.chars().count();
    if n >= total {
        return s;
    }
    match s.char_indices().nth(total - n) {
        Some((i, _)) => &s[i..],
        None => "",
    }
}

fn save_full(content: &str, save: SaveTo<'_>) -> Option<PathBuf> {
    let digest = Sha256::digest(content.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(save.dir).ok()?;
    let path = save.dir.join(format!("{}_output_{hex}.txt", save.prefix));
    if !path.exists() {
        std::fs::write(&path, content).ok()?;
    }
    Some(path)
}

/// The number of lines Python's `str.splitlines()` yields: `\r\n` is one
/// break, and `\r`, `\x0b`, `\x0c`, `\x1c`–`\x1e`, `\x85`, U+2028 and
/// U+2029 are breaks too.
fn splitlines_count(s: &str) -> usize {
    let mut lines = 0;
    let mut open = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines += 1;
                open = false;
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => {
                lines += 1;
                open = false;
            }
            _ => open = true,
        }
    }
    lines + usize::from(open)
}

/// Middle-truncates `content` to `limit` characters with `notice` in the
/// middle; unchanged when it already fits (or `limit` is 0, Python's "no
/// limit"). With `save`, the full content is saved and the notice names the
/// file and the line where the cut starts. When the notice alone does not
/// fit, the result is the notice cut to `limit`.
pub fn maybe_truncate(
    content: &str,
    limit: usize,
    notice: &str,
    save: Option<SaveTo<'_>>,
) -> String {
    if limit == 0 || content.chars().count() <= limit {
        return content.to_string();
    }
    let notice_len = notice.chars().count();
    if notice_len >= limit {
        return char_prefix(notice, limit).to_string();
    }
    let available = limit - notice_len;
    let proposed_head = available.div_ceil(2);
    let final_notice = match save.and_then(|s| save_full(content, s)) {
        Some(path) => {
            let line = splitlines_count(char_prefix(content, proposed_head)) + 1;
            format!(
                "<response clipped><NOTE>Due to the max output limit, only part of the full response has been shown to you. The complete output has been saved to {} - you can use other tools to view the full content (truncated part starts around line {line}).</NOTE>",
                path.display()
            )
        }
        None => notice.to_string(),
    };
    let final_len = final_notice.chars().count();
    if final_len >= limit {
        return char_prefix(&final_notice, limit).to_string();
    }
    let remaining = limit - final_len;
    let head_len = proposed_head.min(remaining);
    let tail_len = remaining - head_len;
    let tail = if tail_len > 0 {
        char_suffix(content, tail_len)
    } else {
        ""
    };
    format!("{}{final_notice}{tail}", char_prefix(content, head_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_content_is_unchanged() {
        assert_eq!(
            maybe_truncate("abc", 10, DEFAULT_TRUNCATE_NOTICE, None),
            "abc"
        );
    }

    #[test]
    fn keeps_head_and_tail_to_exactly_the_limit() {
        let content: String = (0..500)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let out = maybe_truncate(&content, 200, DEFAULT_TRUNCATE_NOTICE, None);
        assert_eq!(out.chars().count(), 200);
        assert!(out.starts_with(char_prefix(&content, 44)));
        assert!(out.contains(DEFAULT_TRUNCATE_NOTICE));
        assert!(out.ends_with(char_suffix(&content, 43)));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let content = "é".repeat(300);
        let out = maybe_truncate(&content, 200, DEFAULT_TRUNCATE_NOTICE, None);
        assert_eq!(out.chars().count(), 200);
    }

    #[test]
    fn saves_the_full_text_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let content: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let save = SaveTo {
            dir: dir.path(),
            prefix: "terminal",
        };
        let out = maybe_truncate(&content, 1000, DEFAULT_TRUNCATE_NOTICE, Some(save));
        assert!(out.chars().count() <= 1000);
        let saved: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(saved.len(), 1);
        let path = saved[0].as_ref().unwrap().path();
        assert!(path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("terminal_output_"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        assert!(out.contains(&path.display().to_string()));
        assert!(out.contains("truncated part starts around line"));
    }

    fn saved_line(content: &str, limit: usize) -> String {
        let dir = tempfile::tempdir().unwrap();
        let save = SaveTo {
            dir: dir.path(),
            prefix: "t",
        };
        let out = maybe_truncate(content, limit, DEFAULT_TRUNCATE_NOTICE, Some(save));
        assert_eq!(out.chars().count(), limit);
        let start = out.find("around line ").unwrap() + "around line ".len();
        out[start..].split(')').next().unwrap().to_string()
    }

    // Expected values produced by the Python `maybe_truncate`.
    #[test]
    fn line_number_counts_like_python_splitlines() {
        assert_eq!(saved_line(&"abcdefg\n".repeat(500), 1000), "57");
        assert_eq!(saved_line(&"ab\r".repeat(1000), 1000), "149");
    }

    #[test]
    fn notice_longer_than_limit_is_cut() {
        assert_eq!(
            maybe_truncate(&"x".repeat(300), 100, DEFAULT_TRUNCATE_NOTICE, None),
            char_prefix(DEFAULT_TRUNCATE_NOTICE, 100)
        );
        assert_eq!(
            maybe_truncate("abc", 0, DEFAULT_TRUNCATE_NOTICE, None),
            "abc"
        );
    }

    #[test]
    fn long_saved_notice_shrinks_the_head_not_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let save = SaveTo {
            dir: dir.path(),
            prefix: "t",
        };
        let out = maybe_truncate(&"y".repeat(5000), 400, DEFAULT_TRUNCATE_NOTICE, Some(save));
        assert_eq!(out.chars().count(), 400);
        assert!(out.starts_with('y'));
        assert!(out.ends_with("starts around line 2).</NOTE>"));
    }
}
