//! The catalog: what the service knows of every stored conversation without
//! loading it (ids, times, status, parent, a cached REST form), and the
//! per-status counters that make `count` O(1).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::api::conversation::ExecutionStatus;

/// Conversation counts per status.
#[derive(Debug, Default)]
pub(crate) struct StatusCounts {
    counts: Mutex<[usize; 8]>,
}

impl StatusCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, [usize; 8]> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(&self, s: ExecutionStatus) {
        self.lock()[s.index()] += 1;
    }

    pub(crate) fn remove(&self, s: ExecutionStatus) {
        let mut c = self.lock();
        c[s.index()] = c[s.index()].saturating_sub(1);
    }

    fn moved(&self, from: ExecutionStatus, to: ExecutionStatus) {
        let mut c = self.lock();
        c[from.index()] = c[from.index()].saturating_sub(1);
        c[to.index()] += 1;
    }

    pub(crate) fn get(&self, s: ExecutionStatus) -> usize {
        self.lock()[s.index()]
    }
}

/// The catalog facts of one conversation.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    /// `created_at` in UTC microseconds.
    pub created_us: i64,
    /// `updated_at` in UTC microseconds.
    pub updated_us: i64,
    /// Current status.
    pub status: ExecutionStatus,
    /// Owning conversation.
    pub parent: Option<Uuid>,
    /// The working directory, absolute.
    pub working_dir: PathBuf,
    /// The REST form for GET/search (skills trimmed, `runtime_info`
    /// filled), dropped whenever anything in it changes.
    pub info: Option<Arc<str>>,
}

/// Shared between the catalog entry and the loaded conversation, which
/// reports its changes here.
#[derive(Debug)]
pub(crate) struct EntryShared {
    pub id: Uuid,
    pub dir: PathBuf,
    summary: Mutex<Summary>,
    counts: Arc<StatusCounts>,
}

impl EntryShared {
    pub(crate) fn new(id: Uuid, dir: PathBuf, summary: Summary, counts: Arc<StatusCounts>) -> Self {
        EntryShared {
            id,
            dir,
            summary: Mutex::new(summary),
            counts,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Summary> {
        self.summary.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the summary.
    pub(crate) fn summary(&self) -> Summary {
        self.lock().clone()
    }

    /// The status changed.
    pub(crate) fn note_status(&self, status: ExecutionStatus) {
        let mut s = self.lock();
        if s.status != status {
            self.counts.moved(s.status, status);
            s.status = status;
        }
        s.info = None;
    }

    /// `updated_at` moved.
    pub(crate) fn note_updated(&self, micros: i64) {
        let mut s = self.lock();
        s.updated_us = micros;
        s.info = None;
    }

    /// The cached REST form is stale.
    pub(crate) fn invalidate_info(&self) {
        self.lock().info = None;
    }

    /// Stores the REST form.
    pub(crate) fn set_info(&self, info: Arc<str>) {
        self.lock().info = Some(info);
    }
}
