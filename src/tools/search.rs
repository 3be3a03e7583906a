//! The directory walk behind `glob` and `grep`, with ripgrep's semantics
//! (the Python tools shell out to `rg`): the `ignore` crate's parallel walker
//! with rg's default filters (hidden files skipped, `.gitignore` honoured in
//! git repositories, `.ignore` and `.rgignore`, symlinks not followed) and a
//! `-g` style override glob, which, as in rg, takes precedence over both the
//! ignore files and the hidden-file rule.
//!
//! One difference: rg anchors `-g` globs at its current directory, which
//! for the Python server is the server's own; we anchor them at the search
//! directory, so `src/**/*.ts` means what the tool description says.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use ignore::overrides::OverrideBuilder;
use ignore::{WalkBuilder, WalkState};
use tokio_util::sync::CancellationToken;

/// How many results the tools return.
pub(crate) const MAX_RESULTS: usize = 100;

/// How long a search may run (the Python tools' subprocess timeout).
pub(crate) const SEARCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a walk produced no result list.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// The override glob does not parse (the text names it).
    BadGlob(String),
    /// The search ran past [`SEARCH_TIMEOUT`].
    TimedOut,
    /// The conversation was interrupted.
    Cancelled,
}

/// Walks `root` and returns the regular files accepted by `accept`, most
/// recently modified first (ties by path), all of them: callers cut to
/// [`MAX_RESULTS`] and report truncation.
///
/// `make_accept` is called once per walker thread, so each thread can own its
/// searcher state.
pub(crate) fn walk<M, F>(
    root: &Path,
    glob: Option<&str>,
    cancel: &CancellationToken,
    make_accept: M,
) -> Result<Vec<PathBuf>, WalkError>
where
    M: Fn() -> F,
    F: FnMut(&Path) -> bool + Send,
{
    let mut builder = WalkBuilder::new(root);
    builder
        .standard_filters(true)
        .follow_links(false)
        .current_dir(root)
        .add_custom_ignore_filename(".rgignore");
    if let Some(glob) = glob {
        let mut ov = OverrideBuilder::new(root);
        ov.add(glob)
            .map_err(|e| WalkError::BadGlob(e.to_string()))?;
        let ov = ov.build().map_err(|e| WalkError::BadGlob(e.to_string()))?;
        builder.overrides(ov);
    }

    let deadline = Instant::now() + SEARCH_TIMEOUT;
    let found: Mutex<Vec<(PathBuf, SystemTime)>> = Mutex::new(Vec::new());
    let timed_out = AtomicBool::new(false);
    builder.build_parallel().run(|| {
        let mut accept = make_accept();
        let found = &found;
        let timed_out = &timed_out;
        Box::new(move |entry| {
            if cancel.is_cancelled() {
                return WalkState::Quit;
            }
            if Instant::now() > deadline {
                timed_out.store(true, Ordering::Relaxed);
                return WalkState::Quit;
            }
            // Unreadable entries are skipped, as rg does (it only warns).
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            if accept(entry.path()) {
                let mtime = entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
                found.push((entry.into_path(), mtime));
            }
            WalkState::Continue
        })
    });

    if cancel.is_cancelled() {
        return Err(WalkError::Cancelled);
    }
    if timed_out.load(Ordering::Relaxed) {
        return Err(WalkError::TimedOut);
    }
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(found.into_iter().map(|(p, _)| p).collect())
}

/// Cuts a result list to [`MAX_RESULTS`] as display strings; true when cut.
pub(crate) fn limit(paths: Vec<PathBuf>) -> (Vec<String>, bool) {
    let truncated = paths.len() > MAX_RESULTS;
    let shown = paths
        .into_iter()
        .take(MAX_RESULTS)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    (shown, truncated)
}

/// The note appended when results were cut.
pub(crate) const TRUNCATED_NOTE: &str =
    "\n\n[Results truncated to first 100 files. Consider using a more specific pattern.]";
