//! The masking function: known secret values → `<secret-hidden>`.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

/// What a secret value is replaced with.
pub const SECRET_HIDDEN: &str = "<secret-hidden>";

/// Masks a fixed set of secret values. Build a new one when the set changes.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// One automaton over every value, longest match first so an overlapping
    /// shorter secret cannot leave half of a longer one in clear text.
    matcher: Option<AhoCorasick>,
    /// Length in bytes of the longest value (the streaming hold-back).
    max_len: usize,
}

impl Masker {
    /// A masker for these values; empty values are ignored.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut vals: Vec<String> = values
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        vals.sort();
        vals.dedup();
        if vals.is_empty() {
            return Masker::default();
        }
        let max_len = vals.iter().map(String::len).max().unwrap_or(0);
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&vals)
            .ok();
        Masker { matcher, max_len }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// The text with every secret replaced.
    pub fn mask_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(m) = &self.matcher else {
            return Cow::Borrowed(text);
        };
        if !m.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for found in m.find_iter(text) {
            out.push_str(&text[last..found.start()]);
            out.push_str(SECRET_HIDDEN);
            last = found.end();
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// Masks every string inside a JSON value, recursively (object keys are
    /// left alone). Base64 `data:` URLs (images) are skipped: masking them
    /// could only corrupt the image.
    pub fn mask_json(&self, v: &mut Value) {
        if self.is_empty() {
            return;
        }
        match v {
            Value::String(s) => {
                if s.starts_with("data:") && s.contains(";base64,") {
                    return;
                }
                if let Cow::Owned(masked) = self.mask_str(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.mask_json(i)),
            Value::Object(map) => map.iter_mut().for_each(|(_, i)| self.mask_json(i)),
            _ => {}
        }
    }

    /// A masker for text that arrives in pieces (streamed LLM deltas,
    /// terminal output).
    pub fn stream(&self) -> StreamMasker {
        StreamMasker {
            masker: self.clone(),
            held: String::new(),
        }
    }
}

/// Masks a stream of text pieces. A secret split across pieces is still
/// caught: the last `longest secret − 1` bytes are held back until more text
/// (or [`StreamMasker::flush`]) shows whether they start a secret.
#[derive(Clone, Debug)]
pub struct StreamMasker {
    masker: Masker,
    held: String,
}

impl StreamMasker {
    /// Adds a piece; returns the masked text that is safe to release now.
    pub fn feed(&mut self, text: &str) -> String {
        if self.masker.is_empty() {
            return text.to_string();
        }
        self.held.push_str(text);
        let keep = self.masker.max_len.saturating_sub(1);
        let mut cut = self.held.len().saturating_sub(keep);
        while !self.held.is_char_boundary(cut) {
            cut -= 1;
        }
        self.release(cut)
    }

    /// Everything still held back, masked; the stream is over.
    pub fn flush(&mut self) -> String {
        let all = self.held.len();
        self.release(all)
    }

    fn release(&mut self, cut: usize) -> String {
        let Some(m) = &self.masker.matcher else {
            return std::mem::take(&mut self.held);
        };
        let mut out = String::new();
        let mut pos = 0;
        let mut end = cut;
        for found in m.find_iter(&self.held) {
            // A match starting before the cut is complete: the hold-back
            // leaves room for the longest secret after its start.
            if found.start() >= cut {
                break;
            }
            out.push_str(&self.held[pos..found.start()]);
            out.push_str(SECRET_HIDDEN);
            pos = found.end();
            end = end.max(found.end());
        }
        out.push_str(&self.held[pos..end]);
        self.held.drain(..end);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_strings_and_json() {
        let m = Masker::new(["sk-123", "sk-1234567", ""]);
        assert_eq!(
            m.mask_str("key sk-1234567 and sk-123."),
            "key <secret-hidden> and <secret-hidden>."
        );
        assert!(matches!(m.mask_str("nothing here"), Cow::Borrowed(_)));
        let mut v =
            json!({"a":["x sk-123 y", {"sk-123": 5}], "img":"data:image/png;base64,sk-123"});
        m.mask_json(&mut v);
        assert_eq!(
            v,
            json!({"a":["x <secret-hidden> y", {"sk-123": 5}], "img":"data:image/png;base64,sk-123"})
        );
        assert!(Masker::new(Vec::<String>::new()).is_empty());
    }

    #[test]
    fn stream_masker_catches_split_secrets() {
        let m = Masker::new(["hunter2-secret"]);
        let mut s = m.stream();
        let pieces = [
            "pass: hun",
            "ter2-se",
            "cret! more",
            " text ünïcode",
            "hunter2-sec",
        ];
        let mut out = String::new();
        for p in pieces {
            out.push_str(&s.feed(p));
        }
        out.push_str(&s.flush());
        assert_eq!(out, "pass: <secret-hidden>! more text ünïcodehunter2-sec");
        let mut none = Masker::default().stream();
        assert_eq!(none.feed("abc"), "abc");
        assert_eq!(none.flush(), "");
    }
}
