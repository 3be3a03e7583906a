//! `events.jsonl`: the append-only event log of one conversation, with an
//! in-memory index so search, count and get never rescan the file.
//!
//! Every method here does blocking file I/O: call them from
//! `tokio::task::spawn_blocking` (the conversation layer does).
//!
//! Durability: each event is one `write` of its line plus `\n` on an
//! `O_APPEND` descriptor, done before the event is published, so a
//! `kill -9` at any moment loses nothing a client has seen (the data is in
//! the page cache). Power loss is covered by [`EventLog::sync`]
//! (`fdatasync`), which the conversation layer calls on a short debounce and
//! always before a run is reported finished and at shutdown. On open, a torn
//! last line (no newline, or not JSON) is truncated away; nothing before it
//! is touched.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Deserialize;

use crate::api::event::Source;

/// The file name inside a conversation directory.
pub const EVENTS_FILE: &str = "events.jsonl";

/// What the index keeps of one event.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    /// Byte offset of the line in the file.
    pub offset: u64,
    /// Line length without the newline.
    pub len: u32,
    /// Index into [`Index::kinds`].
    pub kind: u16,
    /// The event's source, `None` for a value we do not know.
    pub source: Option<Source>,
    /// The timestamp in UTC microseconds (`i64::MIN` when unparsable).
    pub ts_micros: i64,
    /// The event id.
    pub id: Arc<str>,
    /// Lower-cased searchable text of a `MessageEvent` (content, extended
    /// content, reasoning), `None` for other kinds.
    pub text: Option<Box<str>>,
}

/// The in-memory index: one entry per event, in log order (the position is
/// the event's sequence number).
#[derive(Debug, Default)]
pub struct Index {
    /// Entries by sequence number.
    pub entries: Vec<IndexEntry>,
    /// Event id → sequence number.
    pub by_id: HashMap<Arc<str>, u32>,
    /// Interned kind names.
    pub kinds: Vec<Arc<str>>,
}

impl Index {
    fn intern(&mut self, kind: &str) -> u16 {
        if let Some(i) = self.kinds.iter().position(|k| &**k == kind) {
            return i as u16;
        }
        self.kinds.push(Arc::from(kind));
        (self.kinds.len() - 1) as u16
    }

    /// The kind name of an entry.
    pub fn kind_of(&self, e: &IndexEntry) -> &str {
        self.kinds.get(e.kind as usize).map(|k| &**k).unwrap_or("")
    }

    /// The index of a kind name, if any event has it.
    pub fn kind_id(&self, kind: &str) -> Option<u16> {
        self.kinds
            .iter()
            .position(|k| &**k == kind)
            .map(|i| i as u16)
    }

    /// The sequence number of an event id.
    pub fn seq_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The facts of an event the index needs, taken when it is appended.
#[derive(Clone, Debug)]
pub struct EntryHead {
    /// Event id.
    pub id: String,
    /// `kind`.
    pub kind: String,
    /// `source`.
    pub source: Option<Source>,
    /// Timestamp in UTC microseconds.
    pub ts_micros: i64,
    /// Searchable message text (lower-cased), for `MessageEvent`s.
    pub text: Option<String>,
}

/// Only the parts of a stored line the index needs; everything else is
/// skipped by the parser without being built.
#[derive(Deserialize)]
struct LineHead<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    timestamp: std::borrow::Cow<'a, str>,
    #[serde(default)]
    source: Option<Source>,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    llm_message: Option<MessageHead>,
    #[serde(default)]
    extended_content: Option<Vec<ContentHead>>,
}

#[derive(Deserialize)]
struct MessageHead {
    #[serde(default)]
    content: Option<Vec<ContentHead>>,
    #[serde(default)]
    reasoning_content: Option<String>,
}

#[derive(Deserialize)]
struct ContentHead {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_urls: Option<Vec<serde::de::IgnoredAny>>,
}

/// The searchable text of a message, as the Python server builds it:
/// text parts, `[Image: N URLs]` for images, extended content, reasoning,
/// joined by spaces and lower-cased.
fn message_text(
    content: &[ContentHead],
    extended: &[ContentHead],
    reasoning: Option<&str>,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in content.iter().chain(extended) {
        if let Some(t) = &c.text {
            parts.push(t.clone());
        } else if let Some(urls) = &c.image_urls {
            parts.push(format!("[Image: {} URLs]", urls.len()));
        }
    }
    if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
        parts.push(r.to_string());
    }
    parts.join(" ").to_lowercase()
}

/// Reads the index facts of one stored line.
pub fn head_of_line(line: &[u8]) -> Option<EntryHead> {
    let h: LineHead = serde_json::from_slice(line).ok()?;
    let text = if h.kind == "MessageEvent" {
        let m = h.llm_message.as_ref();
        let content = m.and_then(|m| m.content.as_deref()).unwrap_or(&[]);
        let extended = h.extended_content.as_deref().unwrap_or(&[]);
        Some(message_text(
            content,
            extended,
            m.and_then(|m| m.reasoning_content.as_deref()),
        ))
    } else {
        None
    };
    Some(EntryHead {
        ts_micros: crate::util::time::parse_event_timestamp(&h.timestamp)
            .map(|t| t.as_microsecond())
            .unwrap_or(i64::MIN),
        id: h.id.into_owned(),
        kind: h.kind.into_owned(),
        source: h.source,
        text,
    })
}

/// The facts of an event for the index, taken from its full JSON form.
pub fn head_of_json(full: &serde_json::Value) -> Option<EntryHead> {
    let line = serde_json::to_vec(full).ok()?;
    head_of_line(&line)
}

struct Writer {
    file: File,
    /// Where the next line starts.
    end: u64,
}

/// One conversation's event log.
pub struct EventLog {
    path: PathBuf,
    writer: Mutex<Writer>,
    reader: File,
    index: RwLock<Index>,
    /// Appended bytes not yet covered by an `fdatasync`.
    dirty: AtomicBool,
}

/// What opening a log found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes of a torn tail that were truncated away.
    pub truncated_bytes: u64,
    /// Complete lines in the middle that could not be read (kept, skipped).
    pub skipped_lines: usize,
}

impl EventLog {
    /// Opens (creating if needed) the log in `dir` and builds its index,
    /// truncating a torn last line.
    pub fn open(dir: &Path) -> std::io::Result<(EventLog, OpenReport)> {
        let path = dir.join(EVENTS_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        let mut index = Index::default();
        let mut report = OpenReport::default();
        let mut good_end = 0u64;
        let mut pending_bad = 0usize;
        {
            file.seek(SeekFrom::Start(0))?;
            let mut r = BufReader::with_capacity(256 * 1024, &file);
            let mut line = Vec::with_capacity(4096);
            let mut offset = 0u64;
            loop {
                line.clear();
                let n = r.read_until(b'\n', &mut line)?;
                if n == 0 {
                    break;
                }
                let complete = line.last() == Some(&b'\n');
                let body = if complete { &line[..n - 1] } else { &line[..] };
                let parsed = if complete { head_of_line(body) } else { None };
                match parsed {
                    Some(head) => {
                        report.skipped_lines += pending_bad;
                        pending_bad = 0;
                        push_entry(&mut index, offset, body.len() as u32, head);
                        good_end = offset + n as u64;
                    }
                    None => pending_bad += 1,
                }
                offset += n as u64;
            }
            if pending_bad > 0 {
                report.truncated_bytes = offset - good_end;
            }
        }
        if report.truncated_bytes > 0 {
            file.set_len(good_end)?;
            file.sync_data()?;
        }
        let reader = File::open(&path)?;
        Ok((
            EventLog {
                path,
                writer: Mutex::new(Writer {
                    file,
                    end: good_end,
                }),
                reader,
                index: RwLock::new(index),
                dirty: AtomicBool::new(false),
            },
            report,
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (the event's full JSON, without newline) and indexes
    /// it. Returns the event's sequence number.
    pub fn append(&self, line: &[u8], head: EntryHead) -> std::io::Result<u32> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        if let Err(e) = w.file.write_all(&buf) {
            // A partial write would leave a torn line for the next event to
            // be glued to; cut the file back to the last complete line.
            let end = w.end;
            let _ = w.file.set_len(end);
            return Err(e);
        }
        let offset = w.end;
        w.end += buf.len() as u64;
        self.dirty.store(true, Ordering::Release);
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        let seq = idx.entries.len() as u32;
        push_entry(&mut idx, offset, line.len() as u32, head);
        Ok(seq)
    }

    /// `fdatasync`s appended data, if any.
    pub fn sync(&self) -> std::io::Result<()> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let r = w.file.sync_data();
        if r.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        r
    }

    /// Whether appended data awaits an `fdatasync`.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Runs `f` with the index read-locked.
    pub fn with_index<R>(&self, f: impl FnOnce(&Index) -> R) -> R {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        f(&idx)
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.with_index(|i| i.len())
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the stored lines of these sequence numbers (in the given
    /// order). Neighbouring lines are read with one `pread`.
    pub fn read_lines(&self, seqs: &[u32]) -> std::io::Result<Vec<Vec<u8>>> {
        let spans: Vec<(u64, u32)> = self.with_index(|idx| {
            seqs.iter()
                .filter_map(|s| idx.entries.get(*s as usize).map(|e| (e.offset, e.len)))
                .collect()
        });
        let mut out = Vec::with_capacity(spans.len());
        let mut i = 0;
        while i < spans.len() {
            // Grow a run of lines that follow each other in the file.
            let (start, _) = spans[i];
            let mut j = i;
            let mut end = spans[i].0 + spans[i].1 as u64 + 1;
            while j + 1 < spans.len() && spans[j + 1].0 == end && end - start < 4 * 1024 * 1024 {
                j += 1;
                end = spans[j].0 + spans[j].1 as u64 + 1;
            }
            let mut buf = vec![0u8; (end - start) as usize];
            self.reader.read_exact_at(&mut buf, start)?;
            for (off, len) in &spans[i..=j] {
                let s = (off - start) as usize;
                out.push(buf[s..s + *len as usize].to_vec());
            }
            i = j + 1;
        }
        Ok(out)
    }

    /// Reads one line by sequence number.
    pub fn read_line(&self, seq: u32) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.read_lines(&[seq])?.into_iter().next())
    }
}

fn push_entry(idx: &mut Index, offset: u64, len: u32, head: EntryHead) {
    let kind = idx.intern(&head.kind);
    let id: Arc<str> = Arc::from(head.id);
    let seq = idx.entries.len() as u32;
    idx.by_id.entry(id.clone()).or_insert(seq);
    idx.entries.push(IndexEntry {
        offset,
        len,
        kind,
        source: head.source,
        ts_micros: head.ts_micros,
        id,
        text: head.text.map(String::into_boxed_str),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(id: &str, kind: &str, text: Option<&str>) -> Vec<u8> {
        let mut v = json!({"id": id, "timestamp": "2026-11-25T00:40:06.345706", "source": "user", "parent_id": null, "kind": kind});
        if let Some(t) = text {
            v["llm_message"] = json!({"role":"user","content":[{"cache_prompt":false,"type":"text","text":t},{"type":"image","image_urls":["a","b"]}],"reasoning_content":null});
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn appends_indexes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (log, report) = EventLog::open(dir.path()).unwrap();
        assert_eq!(report, OpenReport::default());
        for i in 0..5 {
            let l = line(
                &format!("e{i}"),
                if i % 2 == 0 {
                    "MessageEvent"
                } else {
                    "PauseEvent"
                },
                (i % 2 == 0).then_some("Hello World"),
            );
            let seq = log.append(&l, head_of_line(&l).unwrap()).unwrap();
            assert_eq!(seq, i);
        }
        assert!(log.is_dirty());
        log.sync().unwrap();
        assert!(!log.is_dirty());
        let lines = log.read_lines(&[1, 2, 4, 0]).unwrap();
        assert_eq!(lines[0], line("e1", "PauseEvent", None));
        assert_eq!(lines[3], line("e0", "MessageEvent", Some("Hello World")));
        log.with_index(|idx| {
            assert_eq!(idx.seq_of("e3"), Some(3));
            assert_eq!(
                idx.entries[0].text.as_deref(),
                Some("hello world [image: 2 urls]")
            );
            assert_eq!(idx.kind_of(&idx.entries[1]), "PauseEvent");
            assert_eq!(idx.entries[0].source, Some(Source::User));
        });
        drop(log);
        let (again, _) = EventLog::open(dir.path()).unwrap();
        assert_eq!(again.len(), 5);
        assert_eq!(
            again.read_line(4).unwrap().unwrap(),
            line("e4", "MessageEvent", Some("Hello World"))
        );
    }

    #[test]
    fn torn_tail_is_truncated_and_middle_garbage_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EVENTS_FILE);
        let mut content = Vec::new();
        content.extend(line("a", "PauseEvent", None));
        content.push(b'\n');
        content.extend(b"garbage in the middle\n");
        content.extend(line("b", "PauseEvent", None));
        content.push(b'\n');
        let good_len = content.len() as u64;
        content.extend(&line("c", "PauseEvent", None)[..20]);
        std::fs::write(&path, &content).unwrap();
        let (log, report) = EventLog::open(dir.path()).unwrap();
        assert_eq!(report.skipped_lines, 1);
        assert_eq!(report.truncated_bytes, 20);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(log.len(), 2);
        // Appending after recovery starts on a clean line.
        let l = line("d", "PauseEvent", None);
        log.append(&l, head_of_line(&l).unwrap()).unwrap();
        drop(log);
        let (log, report) = EventLog::open(dir.path()).unwrap();
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(log.len(), 3);
        assert_eq!(log.read_line(2).unwrap().unwrap(), l);
    }
}
