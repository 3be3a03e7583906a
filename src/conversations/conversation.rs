//! A loaded conversation: its state, its event log, the event pipeline and
//! its subscribers. This is also the API the agent runtime uses.
//!
//! The event pipeline is the only way events enter a conversation:
//! mask secrets → set `parent_id` (HEAD) → assign the sequence number →
//! append the line to `events.jsonl` → update the index, HEAD and
//! `updated_at` → publish to subscribers and webhooks. It runs under one
//! per-conversation async lock, so every subscriber sees events in log
//! order, and nothing is published before it is written.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::conversation::{
    ConfirmationPolicy, ExecutionStatus, SecretSource, SecurityAnalyzer,
};
use crate::api::event::{
    compact, AgentErrorEvent, ConversationStateUpdateEvent, ErrorClassification, Event, EventBody,
    ServerErrorEvent, Source,
};
use crate::api::metrics::ConversationStats;
use crate::conversations::catalog::EntryShared;
use crate::conversations::state::ConversationState;
use crate::conversations::ConversationError;
use crate::secrets::{Masker, SecretCipher, StreamMasker};
use crate::store::{event_log::head_of_line, EventLog};
use crate::webhooks::WebhookHub;

/// Frames kept for subscribers that read slowly; a subscriber further
/// behind catches up from the log instead.
const BUS_CAPACITY: usize = 1024;

/// Appended events are `fdatasync`ed at most this long after being written.
const LOG_SYNC_DELAY: Duration = Duration::from_millis(200);

/// Metadata changes other than status changes are written at most this
/// long after they happen.
const PERSIST_DELAY: Duration = Duration::from_millis(500);

/// Events read from the log per replay step.
const REPLAY_CHUNK: usize = 1024;

/// The envelope keys the masker leaves alone.
const ENVELOPE: [&str; 5] = ["id", "timestamp", "source", "parent_id", "kind"];

/// The sentinel parent of an event appended while HEAD is empty but the log is not.
const ROOT_PARENT: &str = "__root__";

/// The restart-recovery error text (events.md §3.5).
pub const RESTART_ERROR: &str = "A restart occurred while this tool was in progress. This may indicate a fatal memory error or system crash. The tool execution was interrupted and did not complete.";

/// One published event, serialised once and shared by every subscriber.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The sequence number of a stored event; `None` for transient ones.
    pub seq: Option<u32>,
    /// The compact form (WebSocket frames).
    pub compact: Bytes,
    /// The full form (webhooks).
    pub full: Bytes,
}

/// Services a loaded conversation uses, shared by all of them.
pub struct ConversationEnv {
    /// Seals secrets for `metadata.json`.
    pub cipher: Arc<SecretCipher>,
    /// Event and conversation webhooks.
    pub webhooks: Arc<WebhookHub>,
    /// Run permits (`max_concurrent_runs`).
    pub run_permits: Arc<Semaphore>,
    /// Subscriber cap per conversation.
    pub max_subscribers: usize,
    /// Called on every stored event.
    pub activity: std::sync::OnceLock<crate::conversations::service::ActivityHook>,
}

/// What [`Conversation::append`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The event's sequence number in the log.
    pub seq: u32,
    /// The event id.
    pub id: String,
    /// The parent the pipeline gave it.
    pub parent_id: Option<String>,
}

/// A loaded conversation.
pub struct Conversation {
    id: Uuid,
    dir: PathBuf,
    working_dir: PathBuf,
    log: Arc<EventLog>,
    state: Mutex<ConversationState>,
    /// Serialises the pipeline: appends and transient publications.
    pipeline: tokio::sync::Mutex<()>,
    bus: broadcast::Sender<Frame>,
    masker: RwLock<Arc<Masker>>,
    subscribers: AtomicUsize,
    runs: AtomicUsize,
    last_activity: Mutex<Instant>,
    persist_lock: tokio::sync::Mutex<()>,
    persist_scheduled: AtomicBool,
    sync_scheduled: AtomicBool,
    /// Plaintext → stored form, so unchanged secrets are not re-encrypted
    /// on every metadata write.
    sealed: Mutex<HashMap<String, String>>,
    env: Arc<ConversationEnv>,
    entry: Arc<EntryShared>,
    closed: CancellationToken,
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversation")
            .field("id", &self.id)
            .finish()
    }
}

impl Conversation {
    /// Wraps a loaded state and an opened log.
    pub(crate) fn new(
        state: ConversationState,
        dir: PathBuf,
        working_dir: PathBuf,
        log: EventLog,
        env: Arc<ConversationEnv>,
        entry: Arc<EntryShared>,
    ) -> Arc<Conversation> {
        let masker = Masker::new(state.secret_values());
        let (bus, _) = broadcast::channel(BUS_CAPACITY);
        Arc::new(Conversation {
            id: state.id,
            dir,
            working_dir,
            log: Arc::new(log),
            state: Mutex::new(state),
            pipeline: tokio::sync::Mutex::new(()),
            bus,
            masker: RwLock::new(Arc::new(masker)),
            subscribers: AtomicUsize::new(0),
            runs: AtomicUsize::new(0),
            last_activity: Mutex::new(Instant::now()),
            persist_lock: tokio::sync::Mutex::new(()),
            persist_scheduled: AtomicBool::new(false),
            sync_scheduled: AtomicBool::new(false),
            sealed: Mutex::new(HashMap::new()),
            env,
            entry,
            closed: CancellationToken::new(),
        })
    }

    // ----- identity and places -------------------------------------------------

    /// The conversation id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The conversation directory (`persistence_dir`): tools may keep files
    /// here (`observations/`, `TASKS.json`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The absolute working directory of the agent.
    pub fn working_dir(&self) -> &Path {
        &self.working_dir
    }

    /// The event log (read access for the agent and the HTTP layer; call
    /// its methods from `spawn_blocking`).
    pub fn log(&self) -> &Arc<EventLog> {
        &self.log
    }

    /// Cancelled when the conversation is deleted or unloaded.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    // ----- state ----------------------------------------------------------------

    fn lock_state(&self) -> std::sync::MutexGuard<'_, ConversationState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the state.
    pub fn with_state<R>(&self, f: impl FnOnce(&ConversationState) -> R) -> R {
        f(&self.lock_state())
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> ConversationState {
        self.lock_state().clone()
    }

    /// The current status.
    pub fn execution_status(&self) -> ExecutionStatus {
        self.lock_state().execution_status
    }

    /// The agent configuration (secrets in plaintext: for the runtime only).
    pub fn agent(&self) -> crate::api::agent::Agent {
        self.lock_state().agent.clone()
    }

    /// The conversation's secrets with their current values: static values,
    /// lookup secrets as their source (the runtime fetches them).
    pub fn secrets(&self) -> Vec<(String, SecretSource)> {
        self.lock_state().secrets.clone()
    }

    /// The masker over every secret this conversation knows.
    pub fn masker(&self) -> Arc<Masker> {
        self.masker
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A streaming masker (for deltas and terminal output).
    pub fn stream_masker(&self) -> StreamMasker {
        self.masker().stream()
    }

    /// Adds values to mask (e.g. a looked-up secret once fetched).
    pub fn add_masked_values(&self, values: &[String]) {
        let mut all = self.lock_state().secret_values();
        all.extend(values.iter().cloned());
        *self.masker.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Masker::new(all));
    }

    fn rebuild_masker(&self) {
        let values = self.lock_state().secret_values();
        *self.masker.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Masker::new(values));
    }

    // ----- activity, subscribers, runs ------------------------------------------

    /// Marks the conversation as used now (idle eviction).
    pub fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// How long since the last activity.
    pub fn idle_for(&self) -> Duration {
        self.last_activity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Number of attached subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.load(Ordering::Acquire)
    }

    /// Whether a run is active.
    pub fn is_running(&self) -> bool {
        self.runs.load(Ordering::Acquire) > 0
    }

    /// Marks a run as active until the guard is dropped (no eviction meanwhile).
    pub fn run_guard(self: &Arc<Self>) -> RunGuard {
        self.runs.fetch_add(1, Ordering::AcqRel);
        RunGuard { conv: self.clone() }
    }

    /// A run permit, if one is free (`max_concurrent_runs`).
    pub fn try_run_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.env.run_permits.clone().try_acquire_owned().ok()
    }

    // ----- the event pipeline ---------------------------------------------------

    fn mask_body(&self, full: &mut Value) {
        let masker = self.masker();
        if masker.is_empty() {
            return;
        }
        if let Value::Object(m) = full {
            for (k, v) in m.iter_mut() {
                if !ENVELOPE.contains(&k.as_str()) {
                    masker.mask_json(v);
                }
            }
        }
    }

    /// Appends an event: masks it, sets its parent (unless given), stores it
    /// and publishes it. Transient kinds (`full_state`, streaming deltas,
    /// server errors) are refused here: use [`Conversation::publish_transient`].
    pub async fn append(self: &Arc<Self>, event: Event) -> Result<Appended, ConversationError> {
        if !event.body.is_persisted() {
            return Err(ConversationError::Internal(format!(
                "{} events are not stored",
                event.kind()
            )));
        }
        let _pipeline = self.pipeline.lock().await;
        if self.closed.is_cancelled() {
            return Err(ConversationError::Closed);
        }
        let moves_head = !matches!(event.body, EventBody::StateUpdate(_));
        let mut full = event.to_json();
        let parent_id = match &event.parent_id {
            Some(p) => Some(p.clone()),
            None => {
                let head = self.lock_state().leaf_event_id.clone();
                head.or_else(|| (!self.log.is_empty()).then(|| ROOT_PARENT.to_string()))
            }
        };
        full["parent_id"] = parent_id.clone().map(Value::String).unwrap_or(Value::Null);
        self.mask_body(&mut full);
        let line = Bytes::from(
            serde_json::to_vec(&full).map_err(|e| ConversationError::Internal(e.to_string()))?,
        );
        let head = head_of_line(&line)
            .ok_or_else(|| ConversationError::Internal("unreadable event".into()))?;
        let log = self.log.clone();
        let to_write = line.clone();
        let seq = tokio::task::spawn_blocking(move || log.append(&to_write, head))
            .await
            .map_err(|e| ConversationError::Internal(e.to_string()))?
            .map_err(|e| ConversationError::Io(e.to_string()))?;
        if moves_head {
            let now = crate::util::time::now();
            {
                let mut st = self.lock_state();
                st.leaf_event_id = Some(event.id.clone());
                st.updated_at = crate::util::time::utc_timestamp(now);
            }
            self.entry.note_updated(now.as_microsecond());
        }
        self.entry.invalidate_info();
        let compact_bytes = Bytes::from(serde_json::to_vec(&compact(&full)).unwrap_or_default());
        let frame = Frame {
            seq: Some(seq),
            compact: compact_bytes,
            full: line,
        };
        self.env.webhooks.publish_event(self.id, &frame.full);
        let _ = self.bus.send(frame);
        drop(_pipeline);
        self.touch();
        if let Some(hook) = self.env.activity.get() {
            hook();
        }
        self.schedule_sync();
        if moves_head {
            self.schedule_persist();
        }
        Ok(Appended {
            seq,
            id: event.id,
            parent_id,
        })
    }

    /// Publishes an event that is not stored: a `full_state` snapshot (also
    /// to webhooks) or a `StreamingDeltaEvent` (WebSocket subscribers only).
    pub async fn publish_transient(self: &Arc<Self>, event: Event) {
        let to_webhooks = !matches!(event.body, EventBody::StreamingDelta(_));
        let mut full = event.to_json();
        self.mask_body(&mut full);
        let frame = Frame {
            seq: None,
            compact: Bytes::from(serde_json::to_vec(&compact(&full)).unwrap_or_default()),
            full: Bytes::from(serde_json::to_vec(&full).unwrap_or_default()),
        };
        let _pipeline = self.pipeline.lock().await;
        if self.closed.is_cancelled() {
            return;
        }
        if to_webhooks {
            self.env.webhooks.publish_event(self.id, &frame.full);
        }
        let _ = self.bus.send(frame);
    }

    /// The `full_state` snapshot event (secrets `"**********"`).
    pub fn full_state_event(&self) -> Event {
        let value = {
            let st = self.lock_state();
            st.full_state_value(&self.dir, st.leaf_event_id.is_none())
        };
        Event::new(EventBody::StateUpdate(ConversationStateUpdateEvent {
            key: "full_state".into(),
            value,
        }))
    }

    /// Publishes a fresh `full_state` snapshot (after a run ends, a pause,
    /// an interrupt, or when the runtime starts).
    pub async fn publish_full_state(self: &Arc<Self>) {
        let e = self.full_state_event();
        self.publish_transient(e).await;
    }

    /// Changes state and records it with a `ConversationStateUpdateEvent`
    /// for `key`; `change` returns the event's value. Status changes are
    /// persisted at once, other changes shortly after.
    pub async fn update_state(
        self: &Arc<Self>,
        key: &str,
        change: impl FnOnce(&mut ConversationState) -> Value,
    ) -> Result<(), ConversationError> {
        let value = change(&mut self.lock_state());
        self.entry.invalidate_info();
        let event = Event::new(EventBody::StateUpdate(ConversationStateUpdateEvent {
            key: key.to_string(),
            value,
        }));
        self.append(event).await?;
        if key == "execution_status" {
            self.persist().await?;
        } else {
            self.schedule_persist();
        }
        Ok(())
    }

    /// Changes state without a state-update event, as the Python server
    /// does for in-place mutations (LLM usage of calls nobody streams,
    /// activated skills, LLM registration); written shortly after.
    pub fn update_quietly(self: &Arc<Self>, change: impl FnOnce(&mut ConversationState)) {
        change(&mut self.lock_state());
        self.entry.invalidate_info();
        self.schedule_persist();
    }

    /// Sets `execution_status` (with its state-update event, `metadata.json`
    /// written at once), unless it already has that value. Ending statuses
    /// (`finished`, `error`, `stuck`) `fdatasync` the log first.
    pub async fn set_execution_status(
        self: &Arc<Self>,
        status: ExecutionStatus,
    ) -> Result<(), ConversationError> {
        if self.execution_status() == status {
            return Ok(());
        }
        // A run that ends must have its events on stable storage first.
        if matches!(
            status,
            ExecutionStatus::Finished | ExecutionStatus::Error | ExecutionStatus::Stuck
        ) {
            self.sync_log().await?;
        }
        let entry = self.entry.clone();
        self.update_state("execution_status", |st| {
            entry.note_status(status);
            st.execution_status = status;
            Value::String(status.as_str().into())
        })
        .await
    }

    /// Replaces the LLM statistics; the event carries the snapshot form.
    pub async fn set_stats(
        self: &Arc<Self>,
        stats: ConversationStats,
    ) -> Result<(), ConversationError> {
        self.update_state("stats", |st| {
            st.stats = stats;
            st.stats.snapshot()
        })
        .await
    }

    /// Sets `last_user_message_id`.
    pub async fn set_last_user_message_id(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<(), ConversationError> {
        let id = id.to_string();
        self.update_state("last_user_message_id", |st| {
            st.last_user_message_id = Some(id.clone());
            Value::String(id)
        })
        .await
    }

    /// Replaces the confirmation policy.
    pub async fn set_confirmation_policy(
        self: &Arc<Self>,
        policy: ConfirmationPolicy,
    ) -> Result<(), ConversationError> {
        self.update_state("confirmation_policy", |st| {
            st.confirmation_policy = policy;
            policy.to_json()
        })
        .await
    }

    /// Replaces the security analyzer.
    pub async fn set_security_analyzer(
        self: &Arc<Self>,
        analyzer: Option<SecurityAnalyzer>,
    ) -> Result<(), ConversationError> {
        self.update_state("security_analyzer", |st| {
            st.security_analyzer = analyzer.clone();
            analyzer.map(|a| a.to_json()).unwrap_or(Value::Null)
        })
        .await
    }

    /// Replaces the tags.
    pub async fn set_tags(
        self: &Arc<Self>,
        tags: Map<String, Value>,
    ) -> Result<(), ConversationError> {
        self.update_state("tags", |st| {
            st.tags = tags.clone();
            Value::Object(tags)
        })
        .await
    }

    /// Sets `activated_knowledge_skills`.
    pub async fn set_activated_knowledge_skills(
        self: &Arc<Self>,
        skills: Vec<String>,
    ) -> Result<(), ConversationError> {
        self.update_state("activated_knowledge_skills", |st| {
            st.activated_knowledge_skills = skills.clone();
            Value::Array(skills.into_iter().map(Value::String).collect())
        })
        .await
    }

    /// Replaces `agent_state`.
    pub async fn set_agent_state(
        self: &Arc<Self>,
        agent_state: Map<String, Value>,
    ) -> Result<(), ConversationError> {
        self.update_state("agent_state", |st| {
            st.agent_state = agent_state.clone();
            Value::Object(agent_state)
        })
        .await
    }

    /// Adds or replaces secrets; the masker learns the new values before
    /// the state event is written.
    pub async fn update_secrets(
        self: &Arc<Self>,
        secrets: Vec<(String, SecretSource)>,
    ) -> Result<(), ConversationError> {
        {
            let mut st = self.lock_state();
            for (name, src) in secrets {
                match st.secrets.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = src,
                    None => st.secrets.push((name, src)),
                }
            }
        }
        self.rebuild_masker();
        self.update_state("secret_registry", |st| {
            let mut reg = st.registry_json();
            crate::api::conversation::walk_registry_secrets(&mut reg, &mut |v| {
                if v.is_string() {
                    *v = Value::String(crate::secrets::REDACTED.into());
                }
            });
            reg
        })
        .await
    }

    /// Changes the title (stored, no event, like the Python server).
    pub async fn set_title(
        self: &Arc<Self>,
        title: Option<String>,
    ) -> Result<(), ConversationError> {
        self.lock_state().title = title;
        self.entry.invalidate_info();
        self.persist().await
    }

    /// Sets `updated_at` to now (PATCH).
    pub fn bump_updated_at(&self) {
        let now = crate::util::time::now();
        self.lock_state().updated_at = crate::util::time::utc_timestamp(now);
        self.entry.note_updated(now.as_microsecond());
        self.entry.invalidate_info();
    }

    // ----- persistence ----------------------------------------------------------

    /// Writes `metadata.json` now.
    pub async fn persist(&self) -> Result<(), ConversationError> {
        let _g = self.persist_lock.lock().await;
        // After close the directory may be gone (delete); nothing to keep.
        if self.closed.is_cancelled() {
            return Ok(());
        }
        let state = self.snapshot();
        let cipher = self.env.cipher.clone();
        let cache: HashMap<String, String> = self
            .sealed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let dir = self.dir.clone();
        let new_cache = tokio::task::spawn_blocking(move || {
            let mut cache = cache;
            let mut used = HashMap::new();
            let doc = state.to_doc(&mut |plain| {
                let sealed = cache.remove(plain).unwrap_or_else(|| cipher.seal(plain));
                used.insert(plain.to_string(), sealed.clone());
                sealed
            });
            crate::store::write_metadata(&dir, &doc).map(|_| used)
        })
        .await
        .map_err(|e| ConversationError::Internal(e.to_string()))?
        .map_err(|e| ConversationError::Io(e.to_string()))?;
        *self.sealed.lock().unwrap_or_else(|e| e.into_inner()) = new_cache;
        Ok(())
    }

    fn schedule_persist(self: &Arc<Self>) {
        if self.persist_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PERSIST_DELAY).await;
            me.persist_scheduled.store(false, Ordering::Release);
            if let Err(e) = me.persist().await {
                tracing::warn!(conversation_id = %me.id, error = %e, "could not write metadata.json");
            }
        });
    }

    fn schedule_sync(self: &Arc<Self>) {
        if self.sync_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LOG_SYNC_DELAY).await;
            me.sync_scheduled.store(false, Ordering::Release);
            if let Err(e) = me.sync_log().await {
                tracing::warn!(conversation_id = %me.id, error = %e, "could not sync events.jsonl");
            }
        });
    }

    /// `fdatasync`s the event log now (call before reporting a run finished).
    pub async fn sync_log(&self) -> Result<(), ConversationError> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.sync())
            .await
            .map_err(|e| ConversationError::Internal(e.to_string()))?
            .map_err(|e| ConversationError::Io(e.to_string()))
    }

    /// Flushes everything to disk (eviction, shutdown).
    pub async fn flush(&self) -> Result<(), ConversationError> {
        self.sync_log().await?;
        self.persist().await
    }

    /// Stops publishing and ends every subscription (delete, unload).
    pub(crate) async fn close(&self) {
        {
            let _pipeline = self.pipeline.lock().await;
            self.closed.cancel();
        }
        // Wait for a metadata write in flight, so a delete removes a quiet directory.
        drop(self.persist_lock.lock().await);
    }

    // ----- reading history ------------------------------------------------------

    /// Every stored event, typed, in log order.
    pub async fn events(&self) -> Result<Vec<Event>, ConversationError> {
        let n = self.log.len() as u32;
        self.events_between(0, n).await
    }

    /// Stored events with sequence numbers in `from..to`, typed.
    pub async fn events_between(
        &self,
        from: u32,
        to: u32,
    ) -> Result<Vec<Event>, ConversationError> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || {
            let seqs: Vec<u32> = (from..to.min(log.len() as u32)).collect();
            let lines = log.read_lines(&seqs)?;
            Ok::<_, std::io::Error>(
                lines
                    .iter()
                    .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
                    .filter_map(|v| Event::from_json(v).ok())
                    .collect(),
            )
        })
        .await
        .map_err(|e| ConversationError::Internal(e.to_string()))?
        .map_err(|e| ConversationError::Io(e.to_string()))
    }

    /// Stored events of the given kinds, typed, in log order (read via the
    /// index, so other events are not read from disk).
    pub async fn events_of_kinds(&self, kinds: &[&str]) -> Result<Vec<Event>, ConversationError> {
        let seqs: Vec<u32> = self.log.with_index(|idx| {
            let ids: Vec<u16> = kinds.iter().filter_map(|k| idx.kind_id(k)).collect();
            idx.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| ids.contains(&e.kind))
                .map(|(i, _)| i as u32)
                .collect()
        });
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || {
            let lines = log.read_lines(&seqs)?;
            Ok::<_, std::io::Error>(
                lines
                    .iter()
                    .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
                    .filter_map(|v| Event::from_json(v).ok())
                    .collect(),
            )
        })
        .await
        .map_err(|e| ConversationError::Internal(e.to_string()))?
        .map_err(|e| ConversationError::Io(e.to_string()))
    }

    /// Executable actions without an observation, user rejection or agent
    /// error, oldest first (pending confirmations, crash recovery).
    pub async fn unmatched_actions(&self) -> Result<Vec<Event>, ConversationError> {
        let events = self
            .events_of_kinds(&[
                "ActionEvent",
                "ObservationEvent",
                "UserRejectObservation",
                "AgentErrorEvent",
            ])
            .await?;
        Ok(unmatched_actions(&events))
    }

    /// Restart recovery (persistence-and-config.md §2 step 2): a
    /// conversation found `running` becomes `error`, and the first action
    /// left without a result gets the "restart occurred" `AgentErrorEvent`.
    pub(crate) async fn recover_after_restart(self: &Arc<Self>) -> Result<(), ConversationError> {
        self.set_execution_status(ExecutionStatus::Error).await?;
        let events = self
            .events_of_kinds(&[
                "ActionEvent",
                "ObservationEvent",
                "UserRejectObservation",
                "AgentErrorEvent",
            ])
            .await?;
        let pending = unmatched_actions(&events);
        let Some(first) = pending.first() else {
            return Ok(());
        };
        let EventBody::Action(action) = &first.body else {
            return Ok(());
        };
        let observed = events.iter().any(|e| match &e.body {
            EventBody::Observation(o) => o.tool_call_id == action.tool_call_id,
            EventBody::UserReject(o) => o.tool_call_id == action.tool_call_id,
            EventBody::AgentError(o) => o.tool_call_id == action.tool_call_id,
            _ => false,
        });
        if observed {
            return Ok(());
        }
        let mut err = Event::new(EventBody::AgentError(AgentErrorEvent {
            tool_name: action.tool_name.clone(),
            tool_call_id: action.tool_call_id.clone(),
            error: RESTART_ERROR.to_string(),
            classification: Some(ErrorClassification::new("internal", false, "none")),
        }));
        err.parent_id = Some(first.id.clone());
        self.append(err).await?;
        Ok(())
    }

    // ----- subscriptions --------------------------------------------------------

    /// Attaches a subscriber: its first frame is the `full_state` snapshot,
    /// then the requested replay, then live events, with no gaps and no
    /// duplicates.
    pub async fn subscribe(
        self: &Arc<Self>,
        replay: ReplayMode,
    ) -> Result<Subscription, ConversationError> {
        let count = self.subscribers.fetch_add(1, Ordering::AcqRel) + 1;
        let guard = SubscriberGuard { conv: self.clone() };
        if count > self.env.max_subscribers {
            return Err(ConversationError::TooManySubscribers);
        }
        // Under the pipeline lock nothing is appended between the snapshot,
        // the replay bound and the start of the live stream.
        let (rx, head, snapshot) = {
            let _pipeline = self.pipeline.lock().await;
            (
                self.bus.subscribe(),
                self.log.len() as u32,
                self.full_state_event(),
            )
        };
        let mut full = snapshot.to_json();
        self.mask_body(&mut full);
        let first = Bytes::from(serde_json::to_vec(&compact(&full)).unwrap_or_default());
        let replay = match replay {
            ReplayMode::None => None,
            ReplayMode::All => Some(Replay {
                next: 0,
                end: head,
                since: None,
            }),
            ReplayMode::Since(ts) => Some(Replay {
                next: 0,
                end: head,
                since: Some(ts),
            }),
            ReplayMode::AfterEvent(id) => {
                let next = self
                    .log
                    .with_index(|idx| idx.seq_of(&id))
                    .map(|s| s + 1)
                    .unwrap_or(0);
                Some(Replay {
                    next,
                    end: head,
                    since: None,
                })
            }
        };
        self.touch();
        Ok(Subscription {
            conv: self.clone(),
            rx,
            queue: VecDeque::from([first]),
            replay,
            live_floor: head,
            resend_full_state: false,
            _guard: guard,
        })
    }
}

/// Actions (with an `action`) that have no observation, rejection or agent
/// error yet, oldest first.
pub fn unmatched_actions(events: &[Event]) -> Vec<Event> {
    let mut observed_actions = std::collections::HashSet::new();
    let mut observed_calls = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in events.iter().rev() {
        match &e.body {
            EventBody::Observation(o) => {
                observed_actions.insert(o.action_id.clone());
            }
            EventBody::UserReject(o) => {
                observed_actions.insert(o.action_id.clone());
            }
            EventBody::AgentError(o) => {
                observed_calls.insert(o.tool_call_id.clone());
            }
            EventBody::Action(a)
                if a.action.is_some()
                    && !observed_actions.contains(&e.id)
                    && !observed_calls.contains(&a.tool_call_id) =>
            {
                out.push(e.clone());
            }
            _ => {}
        }
    }
    out.reverse();
    out
}

/// Keeps a conversation marked as running while alive.
pub struct RunGuard {
    conv: Arc<Conversation>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.conv.runs.fetch_sub(1, Ordering::AcqRel);
        self.conv.touch();
    }
}

struct SubscriberGuard {
    conv: Arc<Conversation>,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.conv.subscribers.fetch_sub(1, Ordering::AcqRel);
        self.conv.touch();
    }
}

/// Which stored events a new subscriber gets before live ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayMode {
    /// None.
    None,
    /// All of them (`resend_mode=all`, `resend_all=true`).
    All,
    /// Those with `timestamp >= t` (UTC microseconds; `resend_mode=since`).
    Since(i64),
    /// Those after this event id (`after_event_id`); all when it is unknown.
    AfterEvent(String),
}

#[derive(Debug)]
struct Replay {
    next: u32,
    end: u32,
    since: Option<i64>,
}

/// One subscriber's stream of frames (compact JSON, one per WebSocket text
/// frame). Reading slowly never blocks the conversation: a subscriber that
/// falls too far behind catches up from the log, then gets a fresh
/// `full_state` because it may have missed transient snapshots.
pub struct Subscription {
    conv: Arc<Conversation>,
    rx: broadcast::Receiver<Frame>,
    queue: VecDeque<Bytes>,
    replay: Option<Replay>,
    /// Stored events below this sequence number were already delivered.
    live_floor: u32,
    resend_full_state: bool,
    _guard: SubscriberGuard,
}

impl Subscription {
    /// The conversation.
    pub fn conversation(&self) -> &Arc<Conversation> {
        &self.conv
    }

    /// The next frame to send; `None` when the conversation was deleted or
    /// unloaded.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(f) = self.queue.pop_front() {
                return Some(f);
            }
            if let Some(r) = &self.replay {
                if r.next < r.end {
                    if let Err(e) = self.fill_replay().await {
                        tracing::warn!(conversation_id = %self.conv.id, error = %e, "replay failed");
                        self.replay = None;
                    }
                    continue;
                }
                self.replay = None;
                if self.resend_full_state {
                    self.resend_full_state = false;
                    let mut full = self.conv.full_state_event().to_json();
                    self.conv.mask_body(&mut full);
                    self.queue.push_back(Bytes::from(
                        serde_json::to_vec(&compact(&full)).unwrap_or_default(),
                    ));
                }
                continue;
            }
            tokio::select! {
                _ = self.conv.closed.cancelled() => return None,
                r = self.rx.recv() => match r {
                    Ok(frame) => {
                        if let Some(seq) = frame.seq {
                            if seq < self.live_floor {
                                continue;
                            }
                            self.live_floor = seq + 1;
                        }
                        return Some(frame.compact);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let end = self.conv.log.len() as u32;
                        self.replay = Some(Replay { next: self.live_floor, end, since: None });
                        self.live_floor = end;
                        self.resend_full_state = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    /// Whether a frame can be returned without waiting (the WebSocket
    /// writer flushes only when this turns false).
    pub fn has_ready(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The next frame if one is ready now (replayed frames already read).
    pub fn try_next_ready(&mut self) -> Option<Bytes> {
        self.queue.pop_front()
    }

    /// Reads the next chunk of the replay. Cancel-safe: the replay position
    /// only moves once the chunk is queued.
    async fn fill_replay(&mut self) -> std::io::Result<()> {
        let Some(r) = &self.replay else {
            return Ok(());
        };
        let (since, start, end) = (r.since, r.next, r.end);
        let (seqs, next) = self.conv.log.with_index(|idx| {
            let mut seqs = Vec::with_capacity(REPLAY_CHUNK);
            let mut i = start;
            while i < end && seqs.len() < REPLAY_CHUNK {
                let keep = match since {
                    Some(ts) => idx
                        .entries
                        .get(i as usize)
                        .is_some_and(|e| e.ts_micros >= ts),
                    None => true,
                };
                if keep {
                    seqs.push(i);
                }
                i += 1;
            }
            (seqs, i)
        });
        let frames = if seqs.is_empty() {
            Vec::new()
        } else {
            let log = self.conv.log.clone();
            tokio::task::spawn_blocking(move || {
                let lines = log.read_lines(&seqs)?;
                Ok::<_, std::io::Error>(
                    lines
                        .iter()
                        .filter_map(|l| compact_line(l))
                        .collect::<Vec<Bytes>>(),
                )
            })
            .await
            .map_err(std::io::Error::other)??
        };
        if let Some(r) = &mut self.replay {
            r.next = next;
        }
        self.queue.extend(frames);
        Ok(())
    }
}

/// The compact frame of a stored (full-form) line.
pub fn compact_line(line: &[u8]) -> Option<Bytes> {
    if let Some(out) = crate::api::compact_json::compact_line(line) {
        return Some(Bytes::from(out));
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    serde_json::to_vec(&compact(&v)).ok().map(Bytes::from)
}

/// A `ServerErrorEvent` frame for one socket (invalid client frames).
pub fn server_error_frame(code: &str, detail: &str) -> Bytes {
    let e = Event::with_source(
        Source::Environment,
        EventBody::ServerError(ServerErrorEvent {
            code: code.to_string(),
            detail: detail.to_string(),
        }),
    );
    Bytes::from(serde_json::to_vec(&compact(&e.to_json())).unwrap_or_default())
}
