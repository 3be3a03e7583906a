//! `browser_get_content`: the clean-up, paging and wrapper text around the
//! markdown the page script produces (upstream's `extract_clean_markdown`
//! post-processing and `_get_content`).
//!
//! Lengths and offsets are in characters (Python string indices).

use std::sync::LazyLock;

use regex::Regex;

/// At most this many characters of markdown per call.
pub const MAX_CHAR_LIMIT: usize = 30_000;

static URL_ENCODING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"%[0-9A-Fa-f]{2}").expect("valid regex"));
static JSON_IN_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?s)`\{["\w].*?\}`"#).expect("valid regex"));
static JSON_TYPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\{"\$type":[^}]{100,}\}"#).expect("valid regex"));
static JSON_NESTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\{"[^"]{5,}":\{[^}]{100,}\}"#).expect("valid regex"));
static MANY_NEWLINES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\n{4,}").expect("valid regex"));

/// What the page script extracted.
#[derive(Clone, Debug, Default)]
pub struct RawContent {
    /// Length of the page's serialised HTML.
    pub html_chars: usize,
    /// The markdown conversion before clean-up.
    pub markdown: String,
}

struct Cleaned {
    content: String,
    initial_chars: usize,
    filtered_removed: usize,
}

fn clean(markdown: &str) -> Cleaned {
    let initial_chars = markdown.chars().count();
    let content = URL_ENCODING.replace_all(markdown, "");
    let original = content.chars().count();
    let content = JSON_IN_CODE.replace_all(&content, "");
    let content = JSON_TYPE.replace_all(&content, "");
    let content = JSON_NESTED.replace_all(&content, "");
    let content = MANY_NEWLINES.replace_all(&content, "\n\n\n");
    let kept: Vec<&str> = content
        .split('\n')
        .filter(|line| {
            let stripped = line.trim();
            !stripped.is_empty()
                && !((stripped.starts_with('{') || stripped.starts_with('['))
                    && stripped.chars().count() > 100)
        })
        .collect();
    let content = kept.join("\n").trim().to_string();
    let filtered_removed = original.saturating_sub(content.chars().count());
    Cleaned {
        content,
        initial_chars,
        filtered_removed,
    }
}

/// Python's `f"{n:,}"`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Python's `s.rfind(needle, start, end)` over a char slice (`needle` ASCII).
fn rfind(chars: &[char], needle: &[char], start: usize, end: usize) -> Option<usize> {
    let end = end.min(chars.len());
    if end < needle.len() {
        return None;
    }
    (start..=end - needle.len())
        .rev()
        .find(|&i| chars[i..i + needle.len()] == *needle)
}

/// The observation text for one page of content.
pub fn render(url: &str, raw: &RawContent, start_from_char: usize) -> String {
    let cleaned = clean(&raw.markdown);
    let final_filtered = cleaned.content.chars().count();
    let mut chars: Vec<char> = cleaned.content.chars().collect();

    if start_from_char > 0 {
        if start_from_char >= chars.len() {
            return format!(
                "start_from_char ({start_from_char}) exceeds content length ({}). Content has {final_filtered} characters after filtering.",
                chars.len()
            );
        }
        chars.drain(..start_from_char);
    }

    let mut next_start = None;
    if chars.len() > MAX_CHAR_LIMIT {
        let mut truncate_at = MAX_CHAR_LIMIT;
        match rfind(&chars, &['\n', '\n'], MAX_CHAR_LIMIT - 500, MAX_CHAR_LIMIT) {
            Some(p) if p > 0 => truncate_at = p,
            _ => {
                if let Some(p) = rfind(&chars, &['.'], MAX_CHAR_LIMIT - 200, MAX_CHAR_LIMIT) {
                    if p > 0 {
                        truncate_at = p + 1;
                    }
                }
            }
        }
        chars.truncate(truncate_at);
        next_start = Some(start_from_char + truncate_at);
    }
    let content: String = chars.iter().collect();

    let mut stats = format!(
        "Content processed: {} HTML chars → {} initial markdown → {} filtered markdown",
        thousands(raw.html_chars),
        thousands(cleaned.initial_chars),
        thousands(final_filtered)
    );
    if start_from_char > 0 {
        stats.push_str(&format!(
            " (started from char {})",
            thousands(start_from_char)
        ));
    }
    if let Some(next) = next_start {
        stats.push_str(&format!(
            " → {} final chars (truncated, use start_from_char={next} to continue)",
            thousands(chars.len())
        ));
    } else if cleaned.filtered_removed > 0 {
        stats.push_str(&format!(
            " (filtered {} chars of noise)",
            thousands(cleaned.filtered_removed)
        ));
    }

    format!(
        "<url>\n{url}\n</url>\n<content>\n<content_stats>\n{stats}\n</content_stats>\n\n<webpage_content>\n{content}\n</webpage_content>\n</content>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn wraps_short_content() {
        let raw = RawContent {
            html_chars: 1500,
            markdown: "# Title\n\n\nSome text %20here\n   \n- item".into(),
        };
        let text = render("http://x/", &raw, 0);
        assert_eq!(
            text,
            "<url>\nhttp://x/\n</url>\n<content>\n<content_stats>\nContent processed: 1,500 HTML chars → 38 initial markdown → 29 filtered markdown (filtered 6 chars of noise)\n</content_stats>\n\n<webpage_content>\n# Title\nSome text here\n- item\n</webpage_content>\n</content>"
        );
    }

    #[test]
    fn pages_long_content_at_sentence_breaks() {
        let sentence = "This is one sentence of the page. ";
        let markdown = sentence.repeat(2000);
        let raw = RawContent {
            html_chars: 80_000,
            markdown,
        };
        let first = render("u", &raw, 0);
        let hint = "use start_from_char=";
        let at = first.find(hint).unwrap() + hint.len();
        let next: usize = first[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(next <= MAX_CHAR_LIMIT && next > MAX_CHAR_LIMIT - 200);
        assert!(first.contains("of the page.\n</webpage_content>"));
        let second = render("u", &raw, next);
        assert!(second.contains(&format!("(started from char {})", thousands(next))));
        let beyond = render("u", &raw, 10_000_000);
        assert!(beyond.starts_with("start_from_char (10000000) exceeds content length ("));
    }

    #[test]
    fn drops_long_json_lines() {
        let json_line = format!("{{\"k\":\"{}\"}}", "v".repeat(120));
        let raw = RawContent {
            html_chars: 10,
            markdown: format!("keep\n{json_line}\nalso"),
        };
        assert!(render("u", &raw, 0).contains("<webpage_content>\nkeep\nalso\n</webpage_content>"));
    }
}
