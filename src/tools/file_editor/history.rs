//! Per-file edit history for `undo_edit`.
//!
//! The Python editor keeps the last 10 versions per file in a disk cache; we
//! keep them in memory, bounded twice: 10 versions per file and a total byte
//! budget across files, beyond which the oldest versions (of any file) go
//! first.

use std::collections::{HashMap, VecDeque};

/// Versions kept per file (as upstream).
const MAX_PER_FILE: usize = 10;
/// Total bytes of saved versions per editor.
const MAX_BYTES: usize = 64 << 20;

/// Saved file versions, newest last.
#[derive(Default)]
pub(super) struct History {
    /// Versions per path, each with the sequence number it was saved under.
    files: HashMap<String, VecDeque<(u64, String)>>,
    next_seq: u64,
    bytes: usize,
}

impl History {
    /// Saves `content` as the newest version of `path`.
    pub(super) fn add(&mut self, path: &str, content: String) {
        self.bytes += content.len();
        let seq = self.next_seq;
        self.next_seq += 1;
        let versions = self.files.entry(path.to_string()).or_default();
        versions.push_back((seq, content));
        if versions.len() > MAX_PER_FILE {
            if let Some((_, old)) = versions.pop_front() {
                self.bytes -= old.len();
            }
        }
        self.evict_over_budget();
    }

    /// Removes and returns the newest version of `path`.
    pub(super) fn pop(&mut self, path: &str) -> Option<String> {
        let versions = self.files.get_mut(path)?;
        let (_, content) = versions.pop_back()?;
        if versions.is_empty() {
            self.files.remove(path);
        }
        self.bytes -= content.len();
        Some(content)
    }

    fn evict_over_budget(&mut self) {
        while self.bytes > MAX_BYTES {
            let oldest = self
                .files
                .iter()
                .filter_map(|(path, v)| v.front().map(|(seq, _)| (*seq, path.clone())))
                .min();
            let Some((seq, path)) = oldest else { return };
            // The version just saved always stays, however large.
            if seq + 1 == self.next_seq {
                return;
            }
            if let Some(versions) = self.files.get_mut(&path) {
                if let Some((_, old)) = versions.pop_front() {
                    self.bytes -= old.len();
                }
                if versions.is_empty() {
                    self.files.remove(&path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_ten_versions_per_file() {
        let mut h = History::default();
        for i in 0..12 {
            h.add("/a", format!("v{i}"));
        }
        h.add("/b", "b0".into());
        let popped: Vec<String> = std::iter::from_fn(|| h.pop("/a")).collect();
        assert_eq!(popped.len(), 10);
        assert_eq!(popped.first().unwrap(), "v11");
        assert_eq!(popped.last().unwrap(), "v2");
        assert_eq!(h.pop("/b").as_deref(), Some("b0"));
        assert_eq!(h.pop("/b"), None);
    }

    #[test]
    fn byte_budget_drops_oldest_versions_first() {
        let mut h = History::default();
        let big = "x".repeat(MAX_BYTES / 2);
        h.add("/a", big.clone());
        h.add("/b", big.clone());
        h.add("/c", big);
        assert_eq!(h.pop("/a"), None);
        assert!(h.pop("/b").is_some());
        assert!(h.pop("/c").is_some());
    }
}
