//! Session recording without rrweb.
//!
//! Upstream injects rrweb from a CDN and saves rrweb event arrays. Over
//! WebDriver (and without network access to a CDN) we record our own event
//! log instead: a page script (`js/recorder.js`) buffers page metadata, a DOM
//! snapshot, clicks, inputs (their length only: typed text may be a
//! credential), scrolls and mutation counts; the session drains it around every tool call and re-installs it
//! after navigations, and adds one `action` event per browser tool call.
//! Events are JSON objects `{type, timestamp, data}` (milliseconds since the
//! epoch), saved as numbered files `1.json`, `2.json`, … under
//! `<working_dir>/.agent_tmp/browser_observations/recording-<timestamp>/`,
//! flushed when 1 MB is buffered, 5 s after the last file, and on stop.
//! Events a page produces after a navigation the agent did not cause, and
//! before the next tool call, are lost; the new page's snapshot is not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where recordings go, relative to the working directory (upstream's constant).
pub const RECORDING_OUTPUT_DIR: &str = ".agent_tmp/browser_observations";

const FLUSH_BYTES: usize = 1024 * 1024;
const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// The page script.
pub const RECORDER_JS: &str = include_str!("js/recorder.js");

/// An active recording.
#[derive(Debug)]
pub struct Recording {
    dir: PathBuf,
    pending: Vec<Value>,
    pending_bytes: usize,
    files: usize,
    total_events: usize,
    last_write: Instant,
}

fn write_file(path: PathBuf, events: Vec<Value>) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = serde_json::to_vec(&events).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

impl Recording {
    /// Creates `recording-<UTC timestamp>/` under the working directory.
    pub async fn create(working_dir: &Path) -> std::io::Result<Self> {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%d-%H%M%S-%6f")
            .to_string();
        let dir = working_dir
            .join(RECORDING_OUTPUT_DIR)
            .join(format!("recording-{stamp}"));
        tokio::fs::create_dir_all(&dir).await?;
        Ok(Self {
            dir,
            pending: Vec::new(),
            pending_bytes: 0,
            files: 0,
            total_events: 0,
            last_write: Instant::now(),
        })
    }

    /// Buffers events drained from the page or made by the session.
    pub fn add(&mut self, events: impl IntoIterator<Item = Value>) {
        for event in events {
            self.pending_bytes += event.to_string().len();
            self.pending.push(event);
        }
    }

    /// Writes the buffer as the next numbered file when it is big or old
    /// enough, or always with `force`.
    pub async fn flush(&mut self, force: bool) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let due = self.pending_bytes >= FLUSH_BYTES || self.last_write.elapsed() >= FLUSH_INTERVAL;
        if !force && !due {
            return Ok(());
        }
        let events = std::mem::take(&mut self.pending);
        let count = events.len();
        self.pending_bytes = 0;
        let path = self.dir.join(format!("{}.json", self.files + 1));
        tokio::task::spawn_blocking(move || write_file(path, events))
            .await
            .map_err(std::io::Error::other)??;
        self.files += 1;
        self.total_events += count;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Saves what is left and returns upstream's summary text.
    pub async fn finish(mut self) -> String {
        if let Err(e) = self.flush(true).await {
            return format!("Error stopping recording: {e}");
        }
        format!(
            "Recording stopped. Captured {} events in {} file(s). Saved to: {}",
            self.total_events,
            self.files,
            self.dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn writes_numbered_files_and_summarises() {
        let work = tempfile::tempdir().unwrap();
        let mut rec = Recording::create(work.path()).await.unwrap();
        assert!(rec
            .dir
            .starts_with(work.path().join(".agent_tmp/browser_observations")));
        let name = rec.dir.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with("recording-")
                && name.len() == "recording-20260101-000000-000000".len()
        );
        rec.add([json!({"type": "meta"}), json!({"type": "click"})]);
        rec.flush(false).await.unwrap();
        assert!(!rec.dir.join("1.json").exists());
        rec.flush(true).await.unwrap();
        rec.add([json!({"type": "scroll"})]);
        let dir = rec.dir.to_path_buf();
        let summary = rec.finish().await;
        assert_eq!(
            summary,
            format!(
                "Recording stopped. Captured 3 events in 2 file(s). Saved to: {}",
                dir.display()
            )
        );
        let first: Vec<Value> =
            serde_json::from_slice(&std::fs::read(dir.join("1.json")).unwrap()).unwrap();
        assert_eq!(first.len(), 2);
        assert!(dir.join("2.json").exists());
    }
}
