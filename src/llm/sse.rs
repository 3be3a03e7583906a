//! An incremental Server-Sent Events parser.
//!
//! Providers stream `data:` lines (Chat Completions), or `event:` + `data:`
//! pairs (Responses, Anthropic). The network splits the stream anywhere, even
//! inside a UTF-8 character or between `\r` and `\n`, so bytes are buffered
//! until a whole line is there and only complete lines are decoded.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when the stream names its events.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// The stream sent a line longer than any real provider event.
#[derive(Debug, PartialEq, Eq)]
pub struct SseOverflow;

/// Parser state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line.
    pending: Vec<u8>,
    /// A `\r` ended the last chunk: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// `event:` of the event being built.
    event: Option<String>,
    /// `data:` of the event being built.
    data: String,
    /// Whether any `data:` line was seen (an event with empty data still dispatches).
    has_data: bool,
}

/// Longest line accepted; a provider event is a few KiB, a tool call's
/// arguments at most a few MiB.
const MAX_LINE: usize = 32 * 1024 * 1024;

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseOverflow> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(b'\n') = rest.first() {
                rest = &rest[1..];
            }
        }
        while let Some(pos) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.pending.extend_from_slice(&rest[..pos]);
            let line = std::mem::take(&mut self.pending);
            self.line(&line, &mut out);
            if rest[pos] == b'\r' {
                match rest.get(pos + 1) {
                    Some(b'\n') => rest = &rest[pos + 2..],
                    Some(_) => rest = &rest[pos + 1..],
                    None => {
                        self.after_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[pos + 1..];
            }
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_LINE {
            return Err(SseOverflow);
        }
        Ok(out)
    }

    /// Ends the stream: a last event without its blank line still counts.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.line(&line, &mut out);
        }
        self.line(b"", &mut out);
        out.pop()
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                if data.ends_with('\n') {
                    data.pop();
                }
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            self.has_data = false;
            return;
        }
        let text = String::from_utf8_lossy(line);
        if text.starts_with(':') {
            return;
        }
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: keep-alive comment\n\ndata: first\r\ndata: second\r\n\r\nevent:ping\ndata:\n\ndata: caf\u{e9} \u{1f600}\rdata: [DONE]\r\rid: 7\nretry: 10\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                event: None,
                data: "first\nsecond".into(),
            },
            SseEvent {
                event: Some("ping".into()),
                data: String::new(),
            },
            SseEvent {
                event: None,
                data: "caf\u{e9} \u{1f600}\n[DONE]".into(),
            },
        ]
    }

    fn parse_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            out.extend(parser.push(&bytes[start..cut]).unwrap());
            start = cut;
        }
        out.extend(parser.finish());
        out
    }

    #[test]
    fn whole_stream_at_once() {
        assert_eq!(parse_in_pieces(STREAM.as_bytes(), &[]), expected());
    }

    #[test]
    fn every_single_split_point() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(parse_in_pieces(bytes, &[cut]), expected(), "cut at {cut}");
        }
    }

    #[test]
    fn byte_by_byte_and_pseudo_random_splits() {
        let bytes = STREAM.as_bytes();
        let all: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(parse_in_pieces(bytes, &all), expected());
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..200 {
            let mut cuts = Vec::new();
            let mut at = 0;
            loop {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                at += 1 + (seed as usize % 9);
                if at >= bytes.len() {
                    break;
                }
                cuts.push(at);
            }
            assert_eq!(parse_in_pieces(bytes, &cuts), expected(), "cuts {cuts:?}");
        }
    }

    #[test]
    fn unterminated_last_event_is_flushed() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"data: tail").unwrap().is_empty());
        assert_eq!(
            parser.finish(),
            Some(SseEvent {
                event: None,
                data: "tail".into()
            })
        );
        assert_eq!(parser.finish(), None);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"event: lonely\n\n").unwrap().is_empty());
        let out = parser.push(b"data: x\n\n").unwrap();
        assert_eq!(out[0].event, None);
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut parser = SseParser::new();
        let chunk = vec![b'a'; 1024 * 1024];
        let mut failed = false;
        for _ in 0..40 {
            if parser.push(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }
}
