//! The bash command service: runs commands, stores their events, serves
//! searches and live subscriptions.
//!
//! One writer task owns every change to the store: it stamps each event
//! with a strictly increasing timestamp (so file names, storage order and
//! publication order are the same order), writes its file off the async
//! threads, adds it to the index and only then publishes it. A subscriber
//! that falls behind the bounded broadcast therefore finds everything it
//! missed in the index, and a "replay, then live" subscription is gapless.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::models::{
    BashCommand, BashEvent, BashEventPage, BashOutput, BashSearch, ExecuteBashRequest,
};
use super::store::{self, Index};
use crate::util::{env::sanitized_env, ids, time};

/// Output is stored in chunks of at most this many characters.
pub const MAX_CHUNK_CHARS: usize = 1024 * 1024;
/// At most this many live subscribers (the socket closes with 1013 beyond).
pub const MAX_SUBSCRIBERS: usize = 50;
/// Events buffered for live subscribers; a subscriber further behind
/// catches up from storage.
const LIVE_CAPACITY: usize = 64;
/// Pending store operations.
const WRITER_QUEUE: usize = 256;
/// A stopped or timed-out command gets this long after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);
/// How many stored events a catching-up subscriber reads at a time.
const CATCH_UP_BATCH: usize = 100;

/// Why the service could not do something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BashServiceError {
    /// The service is shutting down.
    Closed,
    /// [`MAX_SUBSCRIBERS`] subscribers are connected.
    TooManySubscribers,
    /// The events directory could not be read.
    Io(String),
}

impl fmt::Display for BashServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BashServiceError::Closed => f.write_str("Bash event service is closed"),
            BashServiceError::TooManySubscribers => f.write_str("Too many bash event connections"),
            BashServiceError::Io(e) => write!(f, "bash events storage: {e}"),
        }
    }
}

impl std::error::Error for BashServiceError {}

/// How to set up a service.
#[derive(Clone, Debug)]
pub struct BashServiceConfig {
    /// Where events are stored (created when missing).
    pub events_dir: PathBuf,
    /// The working directory of commands without a `cwd` (`None`: the
    /// server's; a conversation-scoped service uses its workspace).
    pub default_cwd: Option<String>,
    /// Events older than this are purged periodically (`None`: kept).
    pub retention_seconds: Option<u64>,
}

/// A stored event on its way to subscribers.
struct Published {
    name: String,
    event: BashEvent,
}

enum Deletion {
    All,
    Before(String),
}

enum WriterMsg {
    Store {
        event: BashEvent,
        reply: oneshot::Sender<BashEvent>,
    },
    Delete {
        which: Deletion,
        reply: oneshot::Sender<usize>,
    },
}

/// A command between `start` and the end of its process.
struct Running {
    /// Its process group, once spawned.
    pid: Option<i32>,
    /// A stop arrived before the process existed.
    stop_requested: bool,
    /// Becomes true when the command has finished and its output is stored.
    done: watch::Receiver<bool>,
}

struct Inner {
    dir: PathBuf,
    default_cwd: Option<String>,
    index: Arc<RwLock<Index>>,
    writer: mpsc::Sender<WriterMsg>,
    live: broadcast::Sender<Arc<Published>>,
    running: Mutex<HashMap<Uuid, Running>>,
    closed: AtomicBool,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    subscribers: Arc<AtomicUsize>,
}

fn read_index(index: &RwLock<Index>) -> std::sync::RwLockReadGuard<'_, Index> {
    index.read().unwrap_or_else(|e| e.into_inner())
}

fn write_index(index: &RwLock<Index>) -> std::sync::RwLockWriteGuard<'_, Index> {
    index.write().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn running(&self) -> MutexGuard<'_, HashMap<Uuid, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn store(&self, event: BashEvent) -> Result<BashEvent, BashServiceError> {
        let (reply, stored) = oneshot::channel();
        self.writer
            .send(WriterMsg::Store { event, reply })
            .await
            .map_err(|_| BashServiceError::Closed)?;
        stored.await.map_err(|_| BashServiceError::Closed)
    }

    async fn delete(&self, which: Deletion) -> Result<usize, BashServiceError> {
        let (reply, count) = oneshot::channel();
        self.writer
            .send(WriterMsg::Delete { which, reply })
            .await
            .map_err(|_| BashServiceError::Closed)?;
        count.await.map_err(|_| BashServiceError::Closed)
    }
}

/// The bash service. Cheap to clone; all clones share one service.
#[derive(Clone)]
pub struct BashService {
    inner: Arc<Inner>,
}

impl BashService {
    /// Opens the store (reading the directory once, off the async threads),
    /// and starts the writer and, with a retention, the purge task.
    pub async fn open(config: BashServiceConfig) -> Result<BashService, BashServiceError> {
        let dir = config.events_dir.clone();
        let index = tokio::task::spawn_blocking(move || Index::load(&dir))
            .await
            .map_err(|e| BashServiceError::Io(e.to_string()))?
            .map_err(|e| BashServiceError::Io(e.to_string()))?;
        let index = Arc::new(RwLock::new(index));
        let (writer, queue) = mpsc::channel(WRITER_QUEUE);
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        tokio::spawn(writer_loop(
            config.events_dir.clone(),
            Arc::clone(&index),
            live.clone(),
            queue,
        ));
        let inner = Arc::new(Inner {
            dir: config.events_dir,
            default_cwd: config.default_cwd,
            index,
            writer,
            live,
            running: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            subscribers: Arc::new(AtomicUsize::new(0)),
        });
        if let Some(seconds) = config.retention_seconds {
            tokio::spawn(retention_loop(Arc::downgrade(&inner), seconds));
        }
        Ok(BashService { inner })
    }

    /// Checks a request's `cwd` for a service with a default directory (a
    /// conversation's): it must resolve inside that directory. The error is
    /// the text of the 422 response.
    pub async fn check_cwd(&self, request: &ExecuteBashRequest) -> Result<(), String> {
        let (Some(root), Some(cwd)) = (self.inner.default_cwd.clone(), request.cwd.clone()) else {
            return Ok(());
        };
        let inside = tokio::task::spawn_blocking(move || {
            resolve(Path::new(&cwd)).starts_with(resolve(Path::new(&root)))
        })
        .await
        .unwrap_or(false);
        if inside {
            Ok(())
        } else {
            Err("cwd must be inside the conversation workspace".into())
        }
    }

    /// Starts a command and returns its stored `BashCommand` at once; its
    /// output follows as `BashOutput` events.
    pub async fn start(
        &self,
        request: ExecuteBashRequest,
    ) -> Result<BashCommand, BashServiceError> {
        Ok(self.start_inner(request).await?.0)
    }

    /// Runs a command to its end and returns its output merged into one
    /// `BashOutput` (the last chunk's id, order and time; all text; exit code
    /// `-1` when there is none).
    pub async fn execute(
        &self,
        request: ExecuteBashRequest,
    ) -> Result<BashOutput, BashServiceError> {
        let (command, done) = self.start_inner(request).await?;
        let outputs = done.await.unwrap_or_default();
        Ok(merge_outputs(command.id, outputs))
    }

    async fn start_inner(
        &self,
        request: ExecuteBashRequest,
    ) -> Result<(BashCommand, oneshot::Receiver<Vec<BashOutput>>), BashServiceError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(BashServiceError::Closed);
        }
        let draft = BashCommand {
            id: ids::new_uuid(),
            timestamp: time::now(),
            command: request.command,
            cwd: request.cwd.or_else(|| self.inner.default_cwd.clone()),
            timeout: request.timeout,
        };
        let BashEvent::Command(command) = self.inner.store(BashEvent::Command(draft)).await? else {
            return Err(BashServiceError::Closed);
        };
        let (done_tx, done_rx) = watch::channel(false);
        self.inner.running().insert(
            command.id,
            Running {
                pid: None,
                stop_requested: false,
                done: done_rx,
            },
        );
        let (result_tx, result_rx) = oneshot::channel();
        let inner = Arc::clone(&self.inner);
        let to_run = command.clone();
        self.inner.tasks.spawn(async move {
            let outputs = run_command(&inner, &to_run).await;
            inner.running().remove(&to_run.id);
            let _ = done_tx.send(true);
            let _ = result_tx.send(outputs);
        });
        Ok((command, result_rx))
    }

    /// Stops a running command (SIGTERM to its process group, SIGKILL after
    /// a second). True when the command is known: running, pending or
    /// already finished; false for an unknown id.
    pub async fn stop(&self, command_id: Uuid) -> bool {
        let target = {
            let mut running = self.inner.running();
            match running.get_mut(&command_id) {
                Some(entry) => match entry.pid {
                    Some(pid) => Some((pid, entry.done.clone())),
                    None => {
                        entry.stop_requested = true;
                        return true;
                    }
                },
                None => None,
            }
        };
        match target {
            Some((pid, done)) => {
                stop_group(pid, done).await;
                true
            }
            None => {
                let hex = ids::hex(&command_id);
                read_index(&self.inner.index).name_of(&hex).is_some()
            }
        }
    }

    /// The event with this id (hex or dashed), if stored.
    pub async fn get(&self, event_id: &str) -> Option<BashEvent> {
        self.batch_get(&[event_id.to_string()])
            .await
            .into_iter()
            .next()
            .flatten()
    }

    /// The events with these ids, `None` for unknown ones.
    pub async fn batch_get(&self, event_ids: &[String]) -> Vec<Option<BashEvent>> {
        let names: Vec<Option<String>> = {
            let index = read_index(&self.inner.index);
            event_ids
                .iter()
                .map(|id| {
                    let key = ids::parse_uuid(id).map_or_else(|_| id.clone(), |u| ids::hex(&u));
                    index.name_of(&key).map(str::to_string)
                })
                .collect()
        };
        let dir = self.inner.dir.clone();
        let count = names.len();
        tokio::task::spawn_blocking(move || {
            names
                .into_iter()
                .map(|name| name.and_then(|n| store::read_event(&dir, &n)))
                .collect()
        })
        .await
        .unwrap_or_else(|_| vec![None; count])
    }

    /// One page of stored events matching `search`.
    pub async fn search(&self, search: BashSearch) -> BashEventPage {
        let dir = self.inner.dir.clone();
        let index = Arc::clone(&self.inner.index);
        tokio::task::spawn_blocking(move || {
            let candidates = read_index(&index).candidates(&search);
            let limit = search.limit.max(1);
            let mut items = Vec::new();
            let mut next_page_id = None;
            for name in candidates {
                let Some(event) = store::read_event(&dir, &name) else {
                    continue;
                };
                if let (Some(gt), BashEvent::Output(output)) = (search.order_gt, &event) {
                    if output.order <= gt {
                        continue;
                    }
                }
                if items.len() >= limit {
                    next_page_id = Some(name);
                    break;
                }
                items.push(event);
            }
            BashEventPage {
                items,
                next_page_id,
            }
        })
        .await
        .unwrap_or(BashEventPage {
            items: Vec::new(),
            next_page_id: None,
        })
    }

    /// Deletes every stored event; returns how many.
    pub async fn clear(&self) -> Result<usize, BashServiceError> {
        self.inner.delete(Deletion::All).await
    }

    /// Deletes events stored before `cutoff`; returns how many.
    pub async fn purge_older_than(&self, cutoff: Timestamp) -> Result<usize, BashServiceError> {
        self.inner
            .delete(Deletion::Before(store::time_key(cutoff)))
            .await
    }

    /// Subscribes to events as they are stored; with `replay`, every stored
    /// event comes first (oldest first), with no gap or repeat between the
    /// two.
    pub fn subscribe(&self, replay: bool) -> Result<BashSubscription, BashServiceError> {
        let count = &self.inner.subscribers;
        if count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_SUBSCRIBERS).then_some(n + 1)
            })
            .is_err()
        {
            return Err(BashServiceError::TooManySubscribers);
        }
        let slot = SubscriberSlot(Arc::clone(count));
        // Everything after `start_after` is delivered: first what is already
        // stored (read after subscribing, so nothing falls in between), then
        // live events newer than the last one delivered.
        let start_after = if replay {
            None
        } else {
            read_index(&self.inner.index)
                .last_name()
                .map(str::to_string)
        };
        let live = self.inner.live.subscribe();
        let pending: VecDeque<String> = read_index(&self.inner.index)
            .names_after(start_after.as_deref())
            .into();
        Ok(BashSubscription {
            inner: Arc::clone(&self.inner),
            live,
            last: start_after,
            pending,
            ready: VecDeque::new(),
            _slot: slot,
        })
    }

    /// Stops the service: no new commands, running commands' process groups
    /// are killed, and their tasks are awaited.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let pids: Vec<i32> = self
            .inner
            .running()
            .values()
            .filter_map(|r| r.pid)
            .collect();
        for pid in pids {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

/// Frees a subscriber slot when the subscription is dropped.
struct SubscriberSlot(Arc<AtomicUsize>);

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A live stream of bash events, for the `/sockets/bash-events` socket.
pub struct BashSubscription {
    inner: Arc<Inner>,
    live: broadcast::Receiver<Arc<Published>>,
    /// File name of the last event delivered (or the starting point).
    last: Option<String>,
    /// Stored events still to read, in order.
    pending: VecDeque<String>,
    /// Events read and not yet delivered.
    ready: VecDeque<BashEvent>,
    _slot: SubscriberSlot,
}

impl BashSubscription {
    /// The next event, in storage order; `None` when the service shuts down.
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Option<BashEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if !self.pending.is_empty() {
                self.read_pending().await;
                continue;
            }
            let shutdown = self.inner.shutdown.clone();
            let received = tokio::select! {
                _ = shutdown.cancelled() => return None,
                received = self.live.recv() => received,
            };
            match received {
                Ok(published) => {
                    if self.last.as_ref().is_some_and(|l| published.name <= *l) {
                        continue;
                    }
                    self.last = Some(published.name.clone());
                    return Some(published.event.clone());
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.pending = read_index(&self.inner.index)
                        .names_after(self.last.as_deref())
                        .into();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    async fn read_pending(&mut self) {
        let batch: Vec<String> = self.pending.iter().take(CATCH_UP_BATCH).cloned().collect();
        let dir = self.inner.dir.clone();
        let names = batch.clone();
        let events = tokio::task::spawn_blocking(move || {
            names
                .iter()
                .map(|n| store::read_event(&dir, n))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (name, event) in batch.into_iter().zip(events) {
            self.pending.pop_front();
            // A file deleted meanwhile (clear, retention) is skipped.
            self.ready.extend(event);
            self.last = Some(name);
        }
    }
}

async fn writer_loop(
    dir: PathBuf,
    index: Arc<RwLock<Index>>,
    live: broadcast::Sender<Arc<Published>>,
    mut queue: mpsc::Receiver<WriterMsg>,
) {
    let mut last_micros = 0i64;
    while let Some(msg) = queue.recv().await {
        match msg {
            WriterMsg::Store { mut event, reply } => {
                let micros = time::now().as_microsecond().max(last_micros + 1);
                last_micros = micros;
                if let Ok(ts) = Timestamp::from_microsecond(micros) {
                    event.set_timestamp(ts);
                }
                let name = store::file_name(&event);
                let (d, n, e) = (dir.clone(), name.clone(), event.clone());
                match tokio::task::spawn_blocking(move || store::write_event(&d, &n, &e)).await {
                    Ok(Ok(())) => {
                        if let Some(entry) = store::parse_name(&name) {
                            write_index(&index).insert(name.clone(), entry);
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(file = %name, error = %e, "could not store a bash event")
                    }
                    Err(e) => {
                        tracing::warn!(file = %name, error = %e, "could not store a bash event")
                    }
                }
                let _ = live.send(Arc::new(Published {
                    name,
                    event: event.clone(),
                }));
                let _ = reply.send(event);
            }
            WriterMsg::Delete { which, reply } => {
                let names = {
                    let index = read_index(&index);
                    match &which {
                        Deletion::All => index.names_after(None),
                        Deletion::Before(key) => index.names_before(key),
                    }
                };
                let d = dir.clone();
                let deleted = tokio::task::spawn_blocking(move || store::remove_files(&d, &names))
                    .await
                    .unwrap_or_default();
                let count = deleted.len();
                write_index(&index).remove_all(&deleted);
                if count > 0 {
                    tracing::info!(count, "deleted bash events");
                }
                let _ = reply.send(count);
            }
        }
    }
}

async fn retention_loop(service: Weak<Inner>, seconds: u64) {
    let interval = Duration::from_secs((seconds / 2).max(60));
    loop {
        let Some(inner) = service.upgrade() else {
            return;
        };
        let cutoff = time::now()
            .checked_sub(SignedDuration::from_secs(
                seconds.min(i64::MAX as u64) as i64
            ))
            .unwrap_or(Timestamp::MIN);
        if let Err(e) = inner
            .delete(Deletion::Before(store::time_key(cutoff)))
            .await
        {
            tracing::warn!(error = %e, "bash events retention cleanup failed");
        }
        let shutdown = inner.shutdown.clone();
        drop(inner);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// SIGTERM to the group, then SIGKILL if the command is not done in time.
async fn stop_group(pid: i32, mut done: watch::Receiver<bool>) {
    let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
    if tokio::time::timeout(TERM_GRACE, done.wait_for(|d| *d))
        .await
        .is_err()
    {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = tokio::time::timeout(TERM_GRACE, done.wait_for(|d| *d)).await;
    }
}

/// Kills the process group if the command's task ends early (a panic, or the
/// runtime shutting down), so no command outlives its service.
struct GroupGuard {
    pid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
    }
}

/// One output stream: decoded incrementally (a multi-byte character split
/// across reads is not mangled) and cut into chunks of [`MAX_CHUNK_CHARS`].
#[derive(Default)]
struct Stream {
    undecoded: Vec<u8>,
    text: String,
    chars: usize,
    done: bool,
}

impl Stream {
    fn push(&mut self, bytes: &[u8]) {
        self.undecoded.extend_from_slice(bytes);
        loop {
            match std::str::from_utf8(&self.undecoded) {
                Ok(s) => {
                    self.chars += s.chars().count();
                    self.text.push_str(s);
                    self.undecoded.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    let (good, _) = self.undecoded.split_at(valid);
                    let good = String::from_utf8_lossy(good).into_owned();
                    self.chars += good.chars().count();
                    self.text.push_str(&good);
                    match e.error_len() {
                        Some(bad) => {
                            self.text.push('\u{fffd}');
                            self.chars += 1;
                            self.undecoded.drain(..valid + bad);
                        }
                        None => {
                            self.undecoded.drain(..valid);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self) {
        if !self.undecoded.is_empty() {
            let rest = String::from_utf8_lossy(&self.undecoded).into_owned();
            self.chars += rest.chars().count();
            self.text.push_str(&rest);
            self.undecoded.clear();
        }
        self.done = true;
    }

    /// A full chunk, once more than a chunk's worth is buffered.
    fn take_chunk(&mut self) -> Option<String> {
        if self.chars <= MAX_CHUNK_CHARS {
            return None;
        }
        let cut = self
            .text
            .char_indices()
            .nth(MAX_CHUNK_CHARS)
            .map_or(self.text.len(), |(i, _)| i);
        let rest = self.text.split_off(cut);
        self.chars -= MAX_CHUNK_CHARS;
        Some(std::mem::replace(&mut self.text, rest))
    }

    fn take_rest(&mut self) -> Option<String> {
        self.chars = 0;
        Some(std::mem::take(&mut self.text)).filter(|t| !t.is_empty())
    }
}

fn output(command_id: Uuid, order: i64) -> BashOutput {
    BashOutput {
        id: ids::new_uuid(),
        timestamp: time::now(),
        command_id,
        order,
        exit_code: None,
        stdout: None,
        stderr: None,
    }
}

/// Runs one command and stores its outputs; returns them.
async fn run_command(inner: &Arc<Inner>, command: &BashCommand) -> Vec<BashOutput> {
    let mut outputs = Vec::new();
    if let Err(e) = execute_command(inner, command, &mut outputs).await {
        tracing::warn!(command_id = %ids::hex(&command.id), error = %e, "bash command failed");
        let mut failure = output(command.id, 0);
        failure.exit_code = Some(-1);
        failure.stderr = Some(format!("Error executing command: {e}"));
        if let Ok(BashEvent::Output(stored)) = inner.store(BashEvent::Output(failure)).await {
            outputs.push(stored);
        }
    }
    outputs
}

async fn execute_command(
    inner: &Arc<Inner>,
    command: &BashCommand,
    outputs: &mut Vec<BashOutput>,
) -> std::io::Result<()> {
    let mut process = tokio::process::Command::new("/bin/sh");
    process
        .arg("-c")
        .arg(&command.command)
        .env_clear()
        .envs(sanitized_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = &command.cwd {
        process.current_dir(cwd);
    }
    // SAFETY: runs in the forked child before exec; setsid is
    // async-signal-safe. A session of its own makes the command a process
    // group we can signal as a whole, detached from the server's terminal.
    unsafe {
        process.pre_exec(|| {
            nix::unistd::setsid().map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            Ok(())
        });
    }
    let mut child = process.spawn()?;
    let pid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| std::io::Error::other("the process exited before it could be tracked"))?;
    let mut guard = GroupGuard { pid, armed: true };
    let stop_now = {
        let mut running = inner.running();
        match running.get_mut(&command.id) {
            Some(entry) => {
                entry.pid = Some(pid);
                entry.stop_requested.then(|| entry.done.clone())
            }
            None => None,
        }
    };
    if let Some(done) = stop_now {
        tokio::spawn(stop_group(pid, done));
    }

    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(std::io::Error::other("the output pipes are missing"));
    };
    let mut out = Stream::default();
    let mut err = Stream::default();
    let mut out_buf = vec![0u8; 8192];
    let mut err_buf = vec![0u8; 8192];
    let mut status = None;
    let mut order = 0i64;
    let deadline = Instant::now() + Duration::from_secs(command.timeout.max(0) as u64);
    let exit_code = loop {
        for (stream, is_stderr) in [(&mut out, false), (&mut err, true)] {
            while let Some(chunk) = stream.take_chunk() {
                let mut piece = output(command.id, order);
                if is_stderr {
                    piece.stderr = Some(chunk);
                } else {
                    piece.stdout = Some(chunk);
                }
                order += 1;
                if let Ok(BashEvent::Output(stored)) = inner.store(BashEvent::Output(piece)).await {
                    outputs.push(stored);
                }
            }
        }
        if let (true, true, Some(code)) = (out.done, err.done, status) {
            break code;
        }
        tokio::select! {
            _ = inner.shutdown.cancelled() => {
                // Shutdown: kill, and report nothing more (as upstream).
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = child.wait().await;
                return Ok(());
            }
            read = stdout.read(&mut out_buf), if !out.done => match read {
                Ok(0) | Err(_) => out.finish(),
                Ok(n) => out.push(&out_buf[..n]),
            },
            read = stderr.read(&mut err_buf), if !err.done => match read {
                Ok(0) | Err(_) => err.finish(),
                Ok(n) => err.push(&err_buf[..n]),
            },
            exit = child.wait(), if status.is_none() => {
                status = Some(exit_code_of(exit?));
            }
            _ = sleep_until(deadline) => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
                if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_err() {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
                }
                tracing::warn!(command_id = %ids::hex(&command.id), timeout = command.timeout, "bash command timed out");
                out.finish();
                err.finish();
                break -1;
            }
        }
    };
    // Finished on its own (or timed out and killed): leave whatever it
    // started in the background alone, as upstream does.
    guard.armed = false;
    let mut last = output(command.id, order);
    last.exit_code = Some(exit_code);
    last.stdout = out.take_rest();
    last.stderr = err.take_rest();
    if let Ok(BashEvent::Output(stored)) = inner.store(BashEvent::Output(last)).await {
        outputs.push(stored);
    }
    Ok(())
}

/// Python's `returncode`: the exit status, or minus the killing signal.
fn exit_code_of(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => -i64::from(signal),
        (None, None) => -1,
    }
}

/// Joins a finished command's outputs into one, as `execute_bash_command` returns it.
fn merge_outputs(command_id: Uuid, mut outputs: Vec<BashOutput>) -> BashOutput {
    outputs.sort_by_key(|o| o.order);
    let join = |pick: fn(&BashOutput) -> Option<&String>| -> Option<String> {
        let text: String = outputs
            .iter()
            .filter_map(pick)
            .map(String::as_str)
            .collect();
        Some(text).filter(|t| !t.is_empty())
    };
    let stdout = join(|o| o.stdout.as_ref());
    let stderr = join(|o| o.stderr.as_ref());
    match outputs.pop() {
        Some(mut last) => {
            last.exit_code = Some(last.exit_code.unwrap_or(-1));
            last.stdout = stdout;
            last.stderr = stderr;
            last
        }
        None => {
            let mut empty = output(command_id, 0);
            empty.exit_code = Some(-1);
            empty
        }
    }
}

/// Python's `Path.resolve()` (non-strict): symlinks of the existing part
/// resolved, `.` and `..` applied to the rest.
fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut resolved = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            other => {
                resolved.push(other);
                if let Ok(real) = resolved.canonicalize() {
                    resolved = real;
                }
            }
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_decode_split_characters_and_chunk_by_characters() {
        let mut stream = Stream::default();
        let bytes = "é".as_bytes();
        stream.push(&bytes[..1]);
        stream.push(&bytes[1..]);
        stream.push(b"\xffx");
        stream.finish();
        assert_eq!(stream.take_rest().as_deref(), Some("é\u{fffd}x"));

        let mut stream = Stream::default();
        stream.push("é".repeat(MAX_CHUNK_CHARS + 5).as_bytes());
        let chunk = stream.take_chunk().unwrap();
        assert_eq!(chunk.chars().count(), MAX_CHUNK_CHARS);
        assert!(stream.take_chunk().is_none());
        assert_eq!(stream.take_rest().unwrap().chars().count(), 5);
    }

    #[test]
    fn merging_joins_chunks_in_order() {
        let id = ids::new_uuid();
        let mut first = output(id, 0);
        first.stdout = Some("a".into());
        let mut second = output(id, 1);
        second.stderr = Some("e".into());
        second.exit_code = Some(3);
        let merged = merge_outputs(id, vec![second.clone(), first]);
        assert_eq!(merged.id, second.id);
        assert_eq!(merged.order, 1);
        assert_eq!(merged.exit_code, Some(3));
        assert_eq!(merged.stdout.as_deref(), Some("a"));
        assert_eq!(merged.stderr.as_deref(), Some("e"));
        let none = merge_outputs(id, Vec::new());
        assert_eq!((none.exit_code, none.command_id), (Some(-1), id));
    }

    #[test]
    fn resolves_like_python() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        assert_eq!(resolve(&dir.path().join("a/../b/./c")), real.join("b/c"));
    }
}
