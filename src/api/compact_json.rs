//! The compact form of a stored event, computed on the raw JSON bytes.
//!
//! Replaying a long conversation turns every stored (full-form) line into
//! its compact form ([`crate::api::event::compact`]). Parsing each line into
//! a `Value` and serialising it again costs more than the whole WebSocket
//! send; this scanner copies the bytes and drops `"key":null` members with
//! the same rules, so the output is byte-identical to
//! `serde_json::to_vec(&compact(&parsed))` for lines serde_json wrote.

/// Top-level keys whose values are untyped for a kind (inner nulls kept).
fn opaque_keys(kind: &[u8]) -> &'static [&'static [u8]] {
    match kind {
        b"ConversationStateUpdateEvent" => &[b"value"],
        b"SecurityAnalysisEvent" => &[b"details"],
        b"HookExecutionEvent" => &[b"hook_input"],
        b"ACPToolCallEvent" => &[b"raw_input", b"raw_output", b"content"],
        _ => &[],
    }
}

/// The compact form of one stored line, or `None` when the line is not a
/// JSON object ending with its `kind` (callers then fall back to parsing).
pub fn compact_line(line: &[u8]) -> Option<Vec<u8>> {
    let kind = top_level_kind(line)?;
    let opaque = opaque_keys(kind);
    let mut out = Vec::with_capacity(line.len());
    let mut s = Scanner { b: line, i: 0 };
    s.ws();
    s.object(&mut out, Mode::Top(opaque))?;
    s.ws();
    (s.i == line.len()).then_some(out)
}

/// The value of the last top-level key, which our writers always make `kind`.
fn top_level_kind(line: &[u8]) -> Option<&[u8]> {
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if line[end] != b'}' || end < 2 || line[end - 1] != b'"' {
        return None;
    }
    let close = end - 1;
    let open = line[..close].iter().rposition(|b| *b == b'"')?;
    let kind = &line[open + 1..close];
    if kind.contains(&b'\\') || !line[..open].ends_with(b"\"kind\":") {
        return None;
    }
    Some(kind)
}

#[derive(Clone, Copy)]
enum Mode {
    /// The event object itself: these keys are copied verbatim.
    Top(&'static [&'static [u8]]),
    /// Any nested object: nulls dropped recursively.
    Nested,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips one JSON value and returns its byte span.
    fn skip_value(&mut self) -> Option<(usize, usize)> {
        self.ws();
        let start = self.i;
        match self.peek()? {
            b'"' => self.skip_string()?,
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
            }
        }
        Some((start, self.i))
    }

    fn skip_string(&mut self) -> Option<()> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                _ => self.i += 1,
            }
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Copies a value with nulls dropped from every object inside it.
    fn value(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(out, Mode::Nested),
            b'[' => self.array(out),
            _ => {
                let (a, b) = self.skip_value()?;
                out.extend_from_slice(&self.b[a..b]);
                Some(())
            }
        }
    }

    fn array(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.expect(b'[')?;
        out.push(b'[');
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            out.push(b']');
            return Some(());
        }
        loop {
            self.value(out)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    out.push(b',');
                }
                b']' => {
                    self.i += 1;
                    out.push(b']');
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, out: &mut Vec<u8>, mode: Mode) -> Option<()> {
        self.expect(b'{')?;
        // Members as (key span, value span); decided after the whole object
        // is known (a CriticResult's `metadata` depends on its `score`).
        let mut members: Vec<((usize, usize), (usize, usize))> = Vec::new();
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let ks = self.i;
                self.skip_string()?;
                let key = (ks, self.i);
                self.expect(b':')?;
                let val = self.skip_value()?;
                members.push((key, val));
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let b = self.b;
        let key_name = |(a, z): (usize, usize)| &b[a + 1..z - 1];
        let has_score = members.iter().any(|(k, _)| key_name(*k) == b"score");
        out.push(b'{');
        let mut first = true;
        for (k, (va, vz)) in members {
            if &b[va..vz] == b"null" {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&b[k.0..k.1]);
            out.push(b':');
            let name = key_name(k);
            let verbatim = match mode {
                Mode::Top(opaque) => opaque.contains(&name),
                Mode::Nested => name == b"metadata" && has_score,
            };
            if verbatim {
                out.extend_from_slice(&b[va..vz]);
            } else {
                let mut sub = Scanner { b: &b[..vz], i: va };
                sub.value(out)?;
            }
        }
        out.push(b'}');
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event::compact;
    use serde_json::{json, Value};

    fn check(v: Value) {
        let line = serde_json::to_vec(&v).unwrap();
        let want = serde_json::to_vec(&compact(&v)).unwrap();
        assert_eq!(
            String::from_utf8(compact_line(&line).unwrap()).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn matches_the_value_based_compact_form() {
        check(
            json!({"id":"a","timestamp":"t","source":"user","parent_id":null,
            "llm_message":{"role":"user","content":[{"cache_prompt":false,"type":"text","text":"q\"uo\\te} null {"}],"tool_calls":null,"thinking_blocks":[]},
            "n":[1,2.5,-3e10,null,{"x":null,"y":[null]}],"critic_result":{"score":0.5,"message":null,"metadata":{"a":null}},"kind":"MessageEvent"}),
        );
        check(
            json!({"id":"b","timestamp":"t","source":"environment","parent_id":"p","key":"stats",
            "value":{"usage_to_metrics":{"agent":{"max_budget_per_task":null}}},"kind":"ConversationStateUpdateEvent"}),
        );
        check(
            json!({"id":"c","timestamp":"t","source":"hook","parent_id":null,"hook_input":{"a":null},"other":{"b":null},"kind":"HookExecutionEvent"}),
        );
        check(
            json!({"id":"d","timestamp":"t","source":"user","parent_id":null,"kind":"PauseEvent"}),
        );
        check(
            json!({"id":"e","timestamp":"t","source":"agent","parent_id":null,"text":"ünïcode \u{1F600} \n","empty":{},"kind":"X"}),
        );
    }

    #[test]
    fn refuses_what_it_cannot_handle() {
        assert!(compact_line(b"[1,2]").is_none());
        assert!(compact_line(br#"{"kind":"A","x":1}"#).is_none());
        assert!(compact_line(br#"{"a":1,"kind":"A"}"#).is_some());
        assert!(compact_line(br#"{"a":,"kind":"A"}"#).is_none());
    }
}
