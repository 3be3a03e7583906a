//! Bash events on disk: one JSON file per event, named
//! `<UTC YYYYMMDDHHMMSSffffff>_<Kind>[_<command id hex>]_<event id hex>` so
//! that the names sort by time, plus an in-memory index of those names so a
//! search never lists the directory.
//!
//! Every function that touches the disk blocks: call it from
//! `spawn_blocking`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use jiff::{tz::TimeZone, Timestamp};

use super::models::{BashEvent, BashEventKind, BashSearch, SortOrder};
use crate::util::ids;

/// The 20-digit UTC time key that starts every file name.
pub(super) fn time_key(ts: Timestamp) -> String {
    let dt = TimeZone::UTC.to_datetime(ts);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}{:06}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1000
    )
}

/// The file name of an event.
pub(super) fn file_name(event: &BashEvent) -> String {
    let mut name = format!("{}_{}", time_key(event.timestamp()), event.kind().as_str());
    if let BashEvent::Output(output) = event {
        name.push('_');
        name.push_str(&ids::hex(&output.command_id));
    }
    name.push('_');
    name.push_str(&ids::hex(&event.id()));
    name
}

/// What a file name says about its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub kind: BashEventKind,
    /// The command id (outputs only), hex.
    pub command_id: Option<String>,
    /// The event id, hex.
    pub id: String,
}

/// Parses a file name written by [`file_name`]; other files are ignored.
pub(super) fn parse_name(name: &str) -> Option<Entry> {
    let parts: Vec<&str> = name.split('_').collect();
    let is_hex = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (ts, kind, command_id, id) = match parts.as_slice() {
        [ts, kind, id] => (*ts, *kind, None, *id),
        [ts, kind, command, id] if is_hex(command) => (*ts, *kind, Some(command.to_string()), *id),
        _ => return None,
    };
    if ts.len() != 20 || !ts.bytes().all(|b| b.is_ascii_digit()) || !is_hex(id) {
        return None;
    }
    Some(Entry {
        kind: BashEventKind::parse(kind)?,
        command_id,
        id: id.to_string(),
    })
}

/// The names of all stored events, sorted (= by time).
#[derive(Default)]
pub(super) struct Index {
    names: BTreeMap<String, Entry>,
    by_id: HashMap<String, String>,
}

impl Index {
    /// Reads the directory (creating it when missing).
    pub fn load(dir: &Path) -> io::Result<Index> {
        std::fs::create_dir_all(dir)?;
        let mut index = Index::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                if let Some(parsed) = parse_name(name) {
                    index.insert(name.to_string(), parsed);
                }
            }
        }
        Ok(index)
    }

    pub fn insert(&mut self, name: String, entry: Entry) {
        self.by_id.insert(entry.id.clone(), name.clone());
        self.names.insert(name, entry);
    }

    /// The file name of the event with this hex id.
    pub fn name_of(&self, id_hex: &str) -> Option<&str> {
        self.by_id.get(id_hex).map(String::as_str)
    }

    /// The newest name.
    pub fn last_name(&self) -> Option<&str> {
        self.names.keys().next_back().map(String::as_str)
    }

    /// All names after `after` (all names when `None`), oldest first.
    pub fn names_after(&self, after: Option<&str>) -> Vec<String> {
        match after {
            Some(after) => self
                .names
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .map(|(name, _)| name.clone())
                .collect(),
            None => self.names.keys().cloned().collect(),
        }
    }

    /// All names before `cutoff_key` (a [`time_key`]), oldest first.
    pub fn names_before(&self, cutoff_key: &str) -> Vec<String> {
        self.names
            .range::<str, _>((
                std::ops::Bound::Unbounded,
                std::ops::Bound::Excluded(cutoff_key),
            ))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The names a search may return, in its order, from its `page_id` on
    /// (an unknown `page_id` starts from the beginning, as upstream does).
    pub fn candidates(&self, search: &BashSearch) -> Vec<String> {
        let gte = search.timestamp_gte.map(time_key);
        let lt = search.timestamp_lt.map(time_key);
        let command = search.command_id.as_ref().map(ids::hex);
        let matches = |name: &str, entry: &Entry| {
            gte.as_deref().is_none_or(|g| name >= g)
                && lt.as_deref().is_none_or(|l| name < l)
                && search.kind.is_none_or(|k| entry.kind == k)
                && command
                    .as_deref()
                    .is_none_or(|c| entry.command_id.as_deref() == Some(c))
        };
        let mut names: Vec<String> = self
            .names
            .iter()
            .filter(|(name, entry)| matches(name, entry))
            .map(|(name, _)| name.clone())
            .collect();
        if search.sort_order == SortOrder::TimestampDesc {
            names.reverse();
        }
        if let Some(page) = &search.page_id {
            if let Some(start) = names.iter().position(|n| n == page) {
                names.drain(..start);
            }
        }
        names
    }

    /// Forgets these names.
    pub fn remove_all(&mut self, names: &[String]) {
        for name in names {
            if let Some(entry) = self.names.remove(name) {
                self.by_id.remove(&entry.id);
            }
        }
    }
}

/// Deletes the files of `names`; returns the names that are gone.
pub(super) fn remove_files(dir: &Path, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|name| match std::fs::remove_file(dir.join(name)) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "could not delete a bash event");
                false
            }
        })
        .cloned()
        .collect()
}

/// Writes an event's file (pretty JSON, as upstream).
pub(super) fn write_event(dir: &Path, name: &str, event: &BashEvent) -> io::Result<()> {
    let text = serde_json::to_string_pretty(&event.to_json()).map_err(io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), text)
}

/// Reads an event's file; unreadable files are logged and skipped.
pub(super) fn read_event(dir: &Path, name: &str) -> Option<BashEvent> {
    let text = match std::fs::read_to_string(dir.join(name)) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(file = %name, error = %e, "could not read a bash event");
            return None;
        }
    };
    match serde_json::from_str(&text)
        .map_err(|e| e.to_string())
        .and_then(|v| BashEvent::from_json(&v))
    {
        Ok(event) => Some(event),
        Err(e) => {
            tracing::warn!(file = %name, error = %e, "could not parse a bash event");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bash::models::BashOutput;
    use crate::util::time;

    #[test]
    fn names_sort_by_time_and_parse_back() {
        let ts = time::parse_client_timestamp("2026-11-25T00:41:50.784180Z").unwrap();
        assert_eq!(time_key(ts), "20261125004150784180");
        let command_id = ids::new_uuid();
        let output = BashEvent::Output(BashOutput {
            id: ids::new_uuid(),
            timestamp: ts,
            command_id,
            order: 0,
            exit_code: None,
            stdout: None,
            stderr: None,
        });
        let name = file_name(&output);
        assert!(name.starts_with("20261125004150784180_BashOutput_"));
        let entry = parse_name(&name).unwrap();
        assert_eq!(entry.kind, BashEventKind::Output);
        assert_eq!(entry.command_id, Some(ids::hex(&command_id)));
        assert_eq!(entry.id, ids::hex(&output.id()));
        assert!(parse_name("notes.txt").is_none());
        assert!(parse_name("20261125004150784180_BashOutput_x_y").is_none());
    }
}
