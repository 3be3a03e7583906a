//! The conversation service: the catalog of stored conversations, loading
//! and eviction, and every operation the REST and WebSocket routes need.
//!
//! Start-up reads only each conversation's `metadata.json` (in parallel);
//! events are loaded on first use and idle conversations are unloaded after
//! `conversation_idle_ttl_seconds`. Conversations found `running` are
//! recovered at once (status `error`, "restart occurred" error for an
//! unfinished tool call).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::agent::walk_secrets_at;
use crate::api::conversation::{
    ConfirmationPolicy, ConversationSearchQuery, ConversationSortOrder, EventFilter,
    EventSearchQuery, EventSortOrder, ExecutionStatus, SecretSource, SecurityAnalyzer,
    SendMessageRequest, StartConversationRequest, UpdateConversationRequest,
};
use crate::api::event::{python_qualified_name, Event, EventBody, MessageEvent, Source};
use crate::api::message::{Message, Role};
use crate::api::validation::ValidationErrorItem;
use crate::config::Config;
use crate::conversations::catalog::{EntryShared, StatusCounts, Summary};
use crate::conversations::conversation::{Conversation, ConversationEnv, ReplayMode, Subscription};
use crate::conversations::runner::{NoRunner, RunError, Runner};
use crate::conversations::state::{ConversationState, InfoContext};
use crate::conversations::{ConversationError, ServiceError};
use crate::secrets::SecretCipher;
use crate::store::{self, EventLog};
use crate::util::{ids, time};
use crate::webhooks::WebhookHub;

/// The Python module of a tool, echoed in `tool_module_qualnames` so the
/// Python client can import the tool's event classes.
fn tool_module(name: &str) -> String {
    match name {
        "browser_tool_set" => "openhands.tools.browser_use.definition".to_string(),
        other => format!("openhands.tools.{other}.definition"),
    }
}

/// Settings of the service.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// Absolute directory of the conversations.
    pub conversations_path: PathBuf,
    /// Idle conversations are unloaded after this long (`None`: never).
    pub idle_ttl: Option<Duration>,
    /// Run and creation permits.
    pub max_concurrent_runs: usize,
    /// Subscribers per conversation (WebSockets).
    pub max_subscribers: usize,
    /// Tool names an agent may use.
    pub tool_names: Vec<String>,
}

impl ServiceOptions {
    /// Options from the configuration; a relative `conversations_path` is
    /// resolved against the current directory.
    pub fn from_config(config: &Config, tool_names: Vec<String>) -> Self {
        ServiceOptions {
            conversations_path: absolute(&config.conversations_path),
            idle_ttl: config
                .conversation_idle_ttl_seconds
                .filter(|s| *s > 0.0)
                .map(Duration::from_secs_f64),
            max_concurrent_runs: config.max_concurrent_runs.max(1),
            max_subscribers: 50,
            tool_names,
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// A JSON response body, already serialised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonText(pub String);

impl JsonText {
    /// Parses it (tests, callers that need a value).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

struct Entry {
    shared: Arc<EntryShared>,
    slot: tokio::sync::Mutex<Option<Arc<Conversation>>>,
}

impl std::fmt::Debug for ConversationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationService")
            .field("conversations_path", &self.opts.conversations_path)
            .field("conversations", &self.count(None))
            .finish()
    }
}

/// What happened to a sent message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Stored; a run was started or the running loop will pick it up.
    Stored,
    /// Stored, but no run permit was free (answer 429 with this text).
    StoredNoCapacity(String),
}

/// Called on every stored event (server `idle_time`).
pub type ActivityHook = Arc<dyn Fn() + Send + Sync>;

/// The conversation service.
pub struct ConversationService {
    opts: ServiceOptions,
    env: Arc<ConversationEnv>,
    cipher: Arc<SecretCipher>,
    catalog: RwLock<HashMap<Uuid, Arc<Entry>>>,
    counts: Arc<StatusCounts>,
    runner: RwLock<Arc<dyn Runner>>,
    webhooks: Arc<WebhookHub>,
    /// Serialises creates so a repeated id is idempotent.
    create_lock: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

fn ts_micros(s: &str) -> i64 {
    time::parse_client_timestamp(s)
        .map(|t| t.as_microsecond())
        .unwrap_or(0)
}

impl ConversationService {
    /// Reads the catalog, recovers conversations left `running`, and starts
    /// the eviction task.
    pub async fn start(
        opts: ServiceOptions,
        cipher: Arc<SecretCipher>,
        webhooks: Arc<WebhookHub>,
    ) -> std::io::Result<Arc<ConversationService>> {
        let root = opts.conversations_path.clone();
        let scan = tokio::task::spawn_blocking(move || store::scan(&root))
            .await
            .map_err(std::io::Error::other)??;
        for (dir, why) in &scan.failures {
            tracing::warn!(dir = %dir.display(), error = %why, "skipping unreadable conversation");
        }
        let counts = Arc::new(StatusCounts::default());
        let env = Arc::new(ConversationEnv {
            cipher: cipher.clone(),
            webhooks: webhooks.clone(),
            run_permits: Arc::new(Semaphore::new(opts.max_concurrent_runs)),
            max_subscribers: opts.max_subscribers,
            activity: std::sync::OnceLock::new(),
        });
        let mut catalog = HashMap::with_capacity(scan.records.len());
        let mut to_recover = Vec::new();
        for r in scan.records {
            let status =
                ExecutionStatus::from_wire(&r.execution_status).unwrap_or(ExecutionStatus::Idle);
            if status == ExecutionStatus::Running {
                to_recover.push(r.id);
            }
            counts.add(status);
            let shared = Arc::new(EntryShared::new(
                r.id,
                r.dir,
                Summary {
                    created_us: ts_micros(&r.created_at),
                    updated_us: ts_micros(&r.updated_at),
                    status,
                    parent: r.parent_conversation_id,
                    working_dir: absolute(Path::new(&r.working_dir)),
                    info: None,
                },
                counts.clone(),
            ));
            catalog.insert(
                r.id,
                Arc::new(Entry {
                    shared,
                    slot: tokio::sync::Mutex::new(None),
                }),
            );
        }
        let svc = Arc::new(ConversationService {
            opts,
            env,
            cipher,
            catalog: RwLock::new(catalog),
            counts,
            runner: RwLock::new(Arc::new(NoRunner)),
            webhooks,
            create_lock: tokio::sync::Mutex::new(()),
            shutdown: CancellationToken::new(),
        });
        for id in to_recover {
            match svc.load(id).await {
                Ok(Some(conv)) => {
                    if let Err(e) = conv.recover_after_restart().await {
                        tracing::error!(conversation_id = %id, error = %e, "restart recovery failed");
                    } else {
                        tracing::info!(conversation_id = %id, "recovered a conversation that was running at shutdown");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(conversation_id = %id, error = %e, "could not load a conversation to recover it")
                }
            }
        }
        if let Some(ttl) = svc.opts.idle_ttl {
            let weak = Arc::downgrade(&svc);
            let stop = svc.shutdown.clone();
            tokio::spawn(async move {
                // Check every ttl/2, between 1 s and 60 s.
                let period = (ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(period) => {}
                    }
                    let Some(svc) = weak.upgrade() else { return };
                    svc.evict_idle(ttl).await;
                }
            });
        }
        Ok(svc)
    }

    /// Calls `hook` whenever an event is stored (the server's idle clock).
    pub fn set_activity_hook(&self, hook: ActivityHook) {
        let _ = self.env.activity.set(hook);
    }

    /// Installs the agent runtime.
    pub fn set_runner(&self, runner: Arc<dyn Runner>) {
        *self.runner.write().unwrap_or_else(|e| e.into_inner()) = runner;
    }

    fn runner(&self) -> Arc<dyn Runner> {
        self.runner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The run permits (`max_concurrent_runs`).
    pub fn run_permits(&self) -> Arc<Semaphore> {
        self.env.run_permits.clone()
    }

    /// The absolute conversations directory.
    pub fn conversations_path(&self) -> &Path {
        &self.opts.conversations_path
    }

    fn entry(&self, id: &Uuid) -> Option<Arc<Entry>> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn entries(&self) -> Vec<Arc<Entry>> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Whether a conversation exists.
    pub fn exists(&self, id: &Uuid) -> bool {
        self.entry(id).is_some()
    }

    /// Number of conversations, optionally with one status. O(1).
    pub fn count(&self, status: Option<ExecutionStatus>) -> usize {
        match status {
            None => self.catalog.read().unwrap_or_else(|e| e.into_inner()).len(),
            Some(s) => self.counts.get(s),
        }
    }

    /// The loaded conversation, loading it if needed; `None` if unknown.
    pub async fn load(&self, id: Uuid) -> Result<Option<Arc<Conversation>>, ServiceError> {
        let Some(entry) = self.entry(&id) else {
            return Ok(None);
        };
        let mut slot = entry.slot.lock().await;
        if let Some(c) = slot.as_ref() {
            c.touch();
            return Ok(Some(c.clone()));
        }
        if !self.exists(&id) {
            return Ok(None);
        }
        let dir = entry.shared.dir.clone();
        let cipher = self.cipher.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let doc = store::read_metadata(&dir).map_err(|e| e.to_string())?;
            let mut lost = 0usize;
            let mut open = |s: &str| match cipher.open(s) {
                Ok(v) => Some(v),
                Err(_) => {
                    lost += 1;
                    None
                }
            };
            let state = ConversationState::from_doc(&doc, Some(&mut open))?;
            let (log, report) = EventLog::open(&dir).map_err(|e| e.to_string())?;
            Ok((state, log, lost, report))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let (mut state, log, lost, report) = loaded.map_err(|e| {
            tracing::error!(conversation_id = %id, error = %e, "could not load conversation");
            ServiceError::Internal(format!("conversation {id} could not be loaded"))
        })?;
        if lost > 0 {
            tracing::warn!(
                conversation_id = %id,
                values = lost,
                "secret values could not be decrypted (missing or different OH_SECRET_KEY); they are unset"
            );
        }
        if report.truncated_bytes > 0 || report.skipped_lines > 0 {
            tracing::warn!(
                conversation_id = %id,
                truncated_bytes = report.truncated_bytes,
                skipped_lines = report.skipped_lines,
                "event log recovered after an unclean stop"
            );
        }
        // The log is authoritative for HEAD and the last activity: metadata
        // is written a little after events.
        let (head, last_ts) = log.with_index(|idx| {
            let state_kind = idx.kind_id("ConversationStateUpdateEvent");
            idx.entries
                .iter()
                .rev()
                .find(|e| Some(e.kind) != state_kind)
                .map(|e| (Some(e.id.to_string()), e.ts_micros))
                .unwrap_or((None, i64::MIN))
        });
        if head.is_some() {
            state.leaf_event_id = head;
        }
        if last_ts > ts_micros(&state.updated_at) {
            if let Ok(t) = jiff::Timestamp::from_microsecond(last_ts) {
                state.updated_at = time::utc_timestamp(t);
                entry.shared.note_updated(last_ts);
            }
        }
        let working_dir = absolute(Path::new(&state.config.workspace.working_dir));
        let wd = working_dir.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || std::fs::create_dir_all(&wd))
            .await
            .unwrap_or(Ok(()))
        {
            tracing::warn!(conversation_id = %id, error = %e, "working directory could not be created");
        }
        let conv = Conversation::new(
            state,
            entry.shared.dir.clone(),
            working_dir,
            log,
            self.env.clone(),
            entry.shared.clone(),
        );
        *slot = Some(conv.clone());
        drop(slot);
        conv.publish_full_state().await;
        Ok(Some(conv))
    }

    fn children_index(&self) -> HashMap<Uuid, Vec<(i64, Uuid)>> {
        let mut out: HashMap<Uuid, Vec<(i64, Uuid)>> = HashMap::new();
        for e in self.entries() {
            let s = e.shared.summary();
            if let Some(p) = s.parent {
                out.entry(p).or_default().push((s.created_us, e.shared.id));
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        out
    }

    fn children_of(&self, id: &Uuid) -> Vec<Uuid> {
        let mut kids: Vec<(i64, Uuid)> = self
            .entries()
            .iter()
            .filter_map(|e| {
                let s = e.shared.summary();
                (s.parent == Some(*id)).then_some((s.created_us, e.shared.id))
            })
            .collect();
        kids.sort();
        kids.into_iter().map(|(_, k)| k).collect()
    }

    /// The REST info of a conversation: from memory when loaded, else from
    /// its metadata (secrets are null in this form, so nothing is decrypted).
    async fn info_of(&self, entry: &Arc<Entry>, ctx: InfoContext) -> Option<Value> {
        let loaded = entry.slot.try_lock().ok().and_then(|s| s.clone());
        if let Some(conv) = loaded {
            return Some(conv.with_state(|st| st.to_info(&ctx)));
        }
        let dir = entry.shared.dir.clone();
        let id = entry.shared.id;
        let res = tokio::task::spawn_blocking(move || -> Result<Value, String> {
            let doc = store::read_metadata(&dir).map_err(|e| e.to_string())?;
            let st = ConversationState::from_doc(&doc, None)?;
            Ok(st.to_info(&ctx))
        })
        .await
        .ok()?;
        match res {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(conversation_id = %id, error = %e, "unreadable conversation skipped");
                None
            }
        }
    }

    fn info_ctx(&self, entry: &Entry, include_skills: bool, children: Vec<Uuid>) -> InfoContext {
        InfoContext {
            persistence_dir: entry.shared.dir.to_string_lossy().into_owned(),
            include_skills,
            runtime_info: true,
            sub_conversation_ids: children,
            status_override: None,
        }
    }

    /// The GET form (cached when skills are trimmed).
    async fn cached_info(
        &self,
        entry: &Arc<Entry>,
        include_skills: bool,
        children: impl FnOnce() -> Vec<Uuid>,
    ) -> Option<Arc<str>> {
        if !include_skills {
            if let Some(c) = entry.shared.summary().info {
                return Some(c);
            }
        }
        let ctx = self.info_ctx(entry, include_skills, children());
        let v = self.info_of(entry, ctx).await?;
        let text: Arc<str> = Arc::from(v.to_string());
        if !include_skills {
            entry.shared.set_info(text.clone());
        }
        Some(text)
    }

    /// `GET /api/conversations/{id}`.
    pub async fn get_info(
        &self,
        id: Uuid,
        include_skills: bool,
    ) -> Result<Option<JsonText>, ServiceError> {
        let Some(entry) = self.entry(&id) else {
            return Ok(None);
        };
        Ok(self
            .cached_info(&entry, include_skills, || self.children_of(&id))
            .await
            .map(|t| JsonText(t.to_string())))
    }

    /// `GET /api/conversations?ids=…`: infos or nulls, in order.
    pub async fn batch_get(&self, ids: &[Uuid], include_skills: bool) -> JsonText {
        let mut out = String::from("[");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let info = match self.entry(id) {
                Some(e) => {
                    self.cached_info(&e, include_skills, || self.children_of(id))
                        .await
                }
                None => None,
            };
            match info {
                Some(t) => out.push_str(&t),
                None => out.push_str("null"),
            }
        }
        out.push(']');
        JsonText(out)
    }

    /// `GET /api/conversations/search`.
    pub async fn search(&self, q: &ConversationSearchQuery) -> JsonText {
        let mut rows: Vec<(Arc<Entry>, Summary)> = self
            .entries()
            .into_iter()
            .map(|e| {
                let s = e.shared.summary();
                (e, s)
            })
            .filter(|(_, s)| q.status.is_none_or(|st| s.status == st))
            .collect();
        let key = |s: &Summary| match q.sort_order {
            ConversationSortOrder::CreatedAt | ConversationSortOrder::CreatedAtDesc => s.created_us,
            ConversationSortOrder::UpdatedAt | ConversationSortOrder::UpdatedAtDesc => s.updated_us,
        };
        rows.sort_by(|(ea, a), (eb, b)| key(a).cmp(&key(b)).then(ea.shared.id.cmp(&eb.shared.id)));
        if matches!(
            q.sort_order,
            ConversationSortOrder::CreatedAtDesc | ConversationSortOrder::UpdatedAtDesc
        ) {
            rows.reverse();
        }
        let start = q
            .page_id
            .as_deref()
            .and_then(|p| rows.iter().position(|(e, _)| ids::hex(&e.shared.id) == p))
            .unwrap_or(0);
        let children = std::sync::OnceLock::new();
        let mut items = Vec::new();
        let mut next = None;
        for (e, _) in rows.iter().skip(start) {
            if items.len() >= q.limit {
                next = Some(ids::hex(&e.shared.id));
                break;
            }
            let id = e.shared.id;
            let kids = || {
                children
                    .get_or_init(|| self.children_index())
                    .get(&id)
                    .map(|v| v.iter().map(|(_, k)| *k).collect())
                    .unwrap_or_default()
            };
            if let Some(info) = self.cached_info(e, q.include_skills, kids).await {
                items.push(info);
            }
        }
        let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 40);
        out.push_str("{\"items\":[");
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(it);
        }
        out.push_str("],\"next_page_id\":");
        match next {
            Some(n) => out.push_str(&Value::String(n).to_string()),
            None => out.push_str("null"),
        }
        out.push('}');
        JsonText(out)
    }

    /// `POST /api/conversations`: returns the REST info (runtime_info null)
    /// and whether it was created (201) or already existed (200).
    pub async fn create(
        &self,
        req: StartConversationRequest,
        include_skills: bool,
    ) -> Result<(JsonText, bool), ServiceError> {
        let _create = self.create_lock.lock().await;
        let id = req.conversation_id.unwrap_or_else(ids::new_uuid);
        if let Some(entry) = self.entry(&id) {
            let ctx = InfoContext {
                runtime_info: false,
                ..self.info_ctx(&entry, include_skills, self.children_of(&id))
            };
            let info = self.info_of(&entry, ctx).await.ok_or_else(|| {
                ServiceError::Internal(format!("conversation {id} is unreadable"))
            })?;
            return Ok((JsonText(info.to_string()), false));
        }
        // Tools the server cannot provide would fail on the first run.
        let missing: Vec<String> = req
            .agent
            .tools
            .iter()
            .filter(|t| !self.opts.tool_names.contains(&t.name))
            .map(|t| {
                let why = req
                    .tool_module_qualnames
                    .get(&t.name)
                    .and_then(Value::as_str)
                    .map(String::from)
                    .unwrap_or_else(|| "not registered".to_string());
                format!("'{}' ({why})", t.name)
            })
            .collect();
        if !missing.is_empty() {
            return Err(ServiceError::Unprocessable(format!(
                "The agent uses tools whose modules the agent server cannot import: {}",
                missing.join(", ")
            )));
        }
        if let Some(parent) = req.parent_conversation_id {
            self.check_parent(id, parent, &req.workspace.working_dir)
                .await?;
        }
        let mut req = req;
        if req.secrets_encrypted {
            self.open_client_secrets(&mut req)?;
        }
        let _permit = self
            .env
            .run_permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::TooManyRequests(RunError::Capacity.to_string()))?;
        let working_dir = absolute(Path::new(&req.workspace.working_dir));
        prepare_working_dir(&req.workspace.working_dir, &working_dir).await?;

        let mut qualnames = req.tool_module_qualnames.clone();
        for t in &req.agent.tools {
            if !qualnames.contains_key(&t.name) {
                qualnames.insert(t.name.clone(), Value::String(tool_module(&t.name)));
            }
        }
        let state = ConversationState::from_request(id, &req, qualnames);
        let dir = self.opts.conversations_path.join(ids::hex(&id));
        let summary = Summary {
            created_us: ts_micros(&state.created_at),
            updated_us: ts_micros(&state.updated_at),
            status: ExecutionStatus::Idle,
            parent: req.parent_conversation_id,
            working_dir: working_dir.clone(),
            info: None,
        };
        let shared = Arc::new(EntryShared::new(
            id,
            dir.clone(),
            summary,
            self.counts.clone(),
        ));
        let dir2 = dir.clone();
        let log = tokio::task::spawn_blocking(move || -> std::io::Result<EventLog> {
            std::fs::create_dir_all(&dir2)?;
            Ok(EventLog::open(&dir2)?.0)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(|e| {
            ServiceError::Internal(format!("could not create the conversation directory: {e}"))
        })?;
        let conv = Conversation::new(
            state,
            dir.clone(),
            working_dir,
            log,
            self.env.clone(),
            shared.clone(),
        );
        if let Err(e) = conv.persist().await {
            let d = dir.clone();
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(d)).await;
            return Err(ServiceError::Internal(format!(
                "could not write metadata.json: {e}"
            )));
        }
        self.counts.add(ExecutionStatus::Idle);
        self.catalog
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id,
                Arc::new(Entry {
                    shared,
                    slot: tokio::sync::Mutex::new(Some(conv.clone())),
                }),
            );
        if let Some(parent) = req.parent_conversation_id.and_then(|p| self.entry(&p)) {
            parent.shared.invalidate_info();
        }
        drop(_create);
        conv.publish_full_state().await;
        if let Some(msg) = req.initial_message.clone() {
            drop(_permit);
            self.deliver_message(&conv, msg, false).await?;
        }
        let webhook_info = conv.with_state(|st| {
            st.to_info(&InfoContext {
                persistence_dir: dir.to_string_lossy().into_owned(),
                include_skills: true,
                runtime_info: false,
                sub_conversation_ids: vec![],
                status_override: None,
            })
        });
        if !self.webhooks.is_empty() {
            self.webhooks
                .post_conversation(Bytes::from(webhook_info.to_string()));
        }
        let info = conv.with_state(|st| {
            st.to_info(&InfoContext {
                persistence_dir: dir.to_string_lossy().into_owned(),
                include_skills,
                runtime_info: false,
                sub_conversation_ids: vec![],
                status_override: None,
            })
        });
        Ok((JsonText(info.to_string()), true))
    }

    async fn check_parent(
        &self,
        id: Uuid,
        parent: Uuid,
        working_dir: &str,
    ) -> Result<(), ServiceError> {
        if parent == id {
            return Err(ServiceError::Unprocessable(
                "A conversation cannot be its own parent".into(),
            ));
        }
        let dashed = ids::dashed(&parent);
        let Some(entry) = self.entry(&parent) else {
            return Err(ServiceError::Unprocessable(format!(
                "Parent conversation {dashed} not found"
            )));
        };
        let ctx = self.info_ctx(&entry, false, vec![]);
        let parent_wd = self
            .info_of(&entry, ctx)
            .await
            .and_then(|v| v["workspace"]["working_dir"].as_str().map(String::from))
            .unwrap_or_default();
        let resolve = |p: &str| {
            let a = absolute(Path::new(p));
            std::fs::canonicalize(&a).unwrap_or(a)
        };
        if resolve(&parent_wd) != resolve(working_dir) {
            return Err(ServiceError::Unprocessable(format!(
                "Parent conversation {dashed} belongs to a different workspace"
            )));
        }
        Ok(())
    }

    /// `secrets_encrypted: true`: every secret value must be our own sealed
    /// form; a Fernet token (Python server) is refused naming the field.
    fn open_client_secrets(&self, req: &mut StartConversationRequest) -> Result<(), ServiceError> {
        let mut errors: Vec<ValidationErrorItem> = Vec::new();
        let cipher = self.cipher.clone();
        let mut check = |value: &mut Option<String>, loc: Vec<crate::api::validation::Loc>| {
            let Some(v) = value.as_ref() else { return };
            match cipher.open_client_sealed(v) {
                Ok(plain) => *value = Some(plain),
                Err(e) => errors.push(ValidationErrorItem::new(
                    "value_error",
                    loc,
                    format!("Value error, cannot decrypt this value: {e}"),
                    Value::String("<redacted>".into()),
                    Some(serde_json::json!({"error": format!("cannot decrypt this value: {e}")})),
                )),
            }
        };
        for (name, src) in req.secrets.iter_mut() {
            if let SecretSource::Static { value, .. } = src {
                check(
                    value,
                    crate::loc!["body", "secrets", name.as_str(), "value"],
                );
            }
        }
        let mut agent_json = req.agent.to_json();
        walk_secrets_at(&mut agent_json, &mut |path, v| {
            let mut value = v.as_str().map(String::from);
            let mut loc = crate::loc!["body", "agent"];
            loc.extend(
                path.iter()
                    .map(|k| crate::api::validation::Loc::Key(k.clone())),
            );
            check(&mut value, loc);
            if let Some(plain) = value {
                *v = Value::String(plain);
            }
        });
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let mut val = crate::api::validate::Validator::new();
        if let Some(agent) = crate::api::agent::Agent::parse(
            &agent_json,
            &crate::api::validate::Path::root("body").key("agent"),
            &mut val,
        ) {
            req.agent = agent;
        }
        Ok(())
    }

    /// `PATCH /api/conversations/{id}`; `false` when unknown.
    pub async fn update(
        &self,
        id: Uuid,
        req: UpdateConversationRequest,
    ) -> Result<bool, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(false);
        };
        if let Some(tags) = req.tags {
            conv.set_tags(tags).await.map_err(ServiceError::from)?;
        }
        if req.title.is_some() {
            conv.set_title(req.title)
                .await
                .map_err(ServiceError::from)?;
        }
        conv.bump_updated_at();
        conv.persist().await.map_err(ServiceError::from)?;
        self.post_conversation_webhook(&conv, None);
        Ok(true)
    }

    fn post_conversation_webhook(&self, conv: &Arc<Conversation>, status: Option<ExecutionStatus>) {
        if self.webhooks.is_empty() {
            return;
        }
        let info = conv.with_state(|st| {
            st.to_info(&InfoContext {
                persistence_dir: conv.dir().to_string_lossy().into_owned(),
                include_skills: true,
                runtime_info: false,
                sub_conversation_ids: vec![],
                status_override: status,
            })
        });
        self.webhooks
            .post_conversation(Bytes::from(info.to_string()));
    }

    /// `DELETE /api/conversations/{id}`; `false` when unknown.
    pub async fn delete(&self, id: Uuid) -> Result<bool, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(false);
        };
        let Some(entry) = self
            .catalog
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        else {
            return Ok(false);
        };
        self.post_conversation_webhook(&conv, Some(ExecutionStatus::Deleting));
        let runner = self.runner();
        let _ = tokio::time::timeout(Duration::from_secs(10), runner.close(conv.clone())).await;
        conv.close().await;
        *entry.slot.lock().await = None;
        self.counts.remove(entry.shared.summary().status);
        self.webhooks.close_conversation(id).await;
        let dir = entry.shared.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| {
                ServiceError::Internal(format!("could not remove the conversation directory: {e}"))
            })?;
        if let Some(parent) = entry.shared.summary().parent.and_then(|p| self.entry(&p)) {
            parent.shared.invalidate_info();
        }
        Ok(true)
    }

    /// `POST …/secrets`; `false` when unknown.
    pub async fn update_secrets(
        &self,
        id: Uuid,
        secrets: Vec<(String, SecretSource)>,
    ) -> Result<bool, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(false);
        };
        conv.update_secrets(secrets)
            .await
            .map_err(ServiceError::from)?;
        conv.persist().await.map_err(ServiceError::from)?;
        Ok(true)
    }

    /// `POST …/confirmation_policy` (persisted); `false` when unknown.
    pub async fn set_confirmation_policy(
        &self,
        id: Uuid,
        policy: ConfirmationPolicy,
    ) -> Result<bool, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(false);
        };
        conv.set_confirmation_policy(policy)
            .await
            .map_err(ServiceError::from)?;
        conv.persist().await.map_err(ServiceError::from)?;
        Ok(true)
    }

    /// `POST …/security_analyzer` (persisted); `false` when unknown.
    pub async fn set_security_analyzer(
        &self,
        id: Uuid,
        analyzer: Option<SecurityAnalyzer>,
    ) -> Result<bool, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(false);
        };
        conv.set_security_analyzer(analyzer)
            .await
            .map_err(ServiceError::from)?;
        conv.persist().await.map_err(ServiceError::from)?;
        Ok(true)
    }

    /// `GET …/agent_final_response`: the last `finish` message or agent
    /// text; `None` when the conversation is unknown.
    pub async fn agent_final_response(&self, id: Uuid) -> Result<Option<String>, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(None);
        };
        let events = conv
            .events_of_kinds(&["ActionEvent", "MessageEvent"])
            .await
            .map_err(ServiceError::from)?;
        for e in events.iter().rev() {
            if e.source != Source::Agent {
                continue;
            }
            match &e.body {
                EventBody::Action(a) if a.tool_name == "finish" => {
                    let msg = a
                        .action
                        .as_ref()
                        .filter(|act| {
                            act.get("kind").and_then(Value::as_str) == Some("FinishAction")
                        })
                        .and_then(|act| act.get("message"))
                        .and_then(Value::as_str);
                    return Ok(Some(msg.unwrap_or("").to_string()));
                }
                EventBody::Message(m) => return Ok(Some(m.llm_message.text_joined())),
                _ => {}
            }
        }
        Ok(Some(String::new()))
    }

    // ----- events ---------------------------------------------------------------

    /// `GET …/events/search`; `None` when the conversation is unknown.
    pub async fn search_events(
        &self,
        id: Uuid,
        q: &EventSearchQuery,
    ) -> Result<Option<JsonText>, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(None);
        };
        let reverse = q.sort_order == EventSortOrder::TimestampDesc;
        let (seqs, next) = conv.log().with_index(|idx| {
            let m = Matcher::new(idx, &q.filter);
            let total = idx.entries.len();
            let start = q
                .page_id
                .as_deref()
                .and_then(|p| idx.seq_of(p))
                .map(|s| s as usize);
            let order: Box<dyn Iterator<Item = usize>> = match (reverse, start) {
                (false, s) => Box::new(s.unwrap_or(0)..total),
                (true, Some(s)) => Box::new((0..=s.min(total.saturating_sub(1))).rev()),
                (true, None) => Box::new((0..total).rev()),
            };
            let mut seqs = Vec::with_capacity(q.limit);
            let mut next = None;
            for i in order {
                let e = &idx.entries[i];
                if !m.matches(e) {
                    continue;
                }
                if seqs.len() >= q.limit {
                    next = Some(e.id.to_string());
                    break;
                }
                seqs.push(i as u32);
            }
            (seqs, next)
        });
        let log = conv.log().clone();
        let frames = tokio::task::spawn_blocking(move || log.read_lines(&seqs))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut out = String::from("{\"items\":[");
        let mut first = true;
        for line in frames {
            let Some(c) = crate::conversations::conversation::compact_line(&line) else {
                continue;
            };
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&String::from_utf8_lossy(&c));
        }
        out.push_str("],\"next_page_id\":");
        out.push_str(
            &next
                .map(|n| Value::String(n).to_string())
                .unwrap_or_else(|| "null".into()),
        );
        out.push('}');
        Ok(Some(JsonText(out)))
    }

    /// `GET …/events/count`; `None` when the conversation is unknown.
    pub async fn count_events(
        &self,
        id: Uuid,
        filter: &EventFilter,
    ) -> Result<Option<usize>, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(None);
        };
        Ok(Some(conv.log().with_index(|idx| {
            if filter == &EventFilter::default() {
                return idx.entries.len();
            }
            let m = Matcher::new(idx, filter);
            idx.entries.iter().filter(|e| m.matches(e)).count()
        })))
    }

    /// `GET …/events/{event_id}` (full form); outer `None`: unknown
    /// conversation, inner `None`: unknown event.
    pub async fn get_event(
        &self,
        id: Uuid,
        event_id: &str,
    ) -> Result<Option<Option<JsonText>>, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(None);
        };
        let mut out = self
            .read_events_full(&conv, &[event_id.to_string()])
            .await?;
        Ok(Some(out.pop().flatten()))
    }

    /// Batch get of events (full form or null, in order); `None` when the
    /// conversation is unknown.
    pub async fn batch_get_events(
        &self,
        id: Uuid,
        event_ids: &[String],
    ) -> Result<Option<JsonText>, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(None);
        };
        let items = self.read_events_full(&conv, event_ids).await?;
        let mut out = String::from("[");
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match it {
                Some(t) => out.push_str(&t.0),
                None => out.push_str("null"),
            }
        }
        out.push(']');
        Ok(Some(JsonText(out)))
    }

    async fn read_events_full(
        &self,
        conv: &Arc<Conversation>,
        ids: &[String],
    ) -> Result<Vec<Option<JsonText>>, ServiceError> {
        let seqs: Vec<Option<u32>> = conv
            .log()
            .with_index(|idx| ids.iter().map(|i| idx.seq_of(i)).collect());
        let wanted: Vec<u32> = seqs.iter().flatten().copied().collect();
        let log = conv.log().clone();
        let lines = tokio::task::spawn_blocking(move || log.read_lines(&wanted))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut lines = lines.into_iter();
        Ok(seqs
            .iter()
            .map(|s| {
                s.and_then(|_| lines.next())
                    .map(|l| JsonText(String::from_utf8_lossy(&l).into_owned()))
            })
            .collect())
    }

    /// `POST …/events`: appends the user message (`finished`/`stuck` become
    /// `idle` first) and, with `run`, hands over to the runner.
    pub async fn send_message(
        &self,
        id: Uuid,
        req: SendMessageRequest,
    ) -> Result<Option<SendOutcome>, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(None);
        };
        self.deliver_message(&conv, req, true).await.map(Some)
    }

    async fn deliver_message(
        &self,
        conv: &Arc<Conversation>,
        req: SendMessageRequest,
        check_role: bool,
    ) -> Result<SendOutcome, ServiceError> {
        if check_role && req.role != "user" {
            return Err(ServiceError::Validation(vec![ValidationErrorItem::new(
                "literal_error",
                crate::loc!["body", "role"],
                "Input should be 'user'",
                Value::String(req.role.clone()),
                Some(serde_json::json!({"expected": "'user'"})),
            )]));
        }
        if matches!(
            conv.execution_status(),
            ExecutionStatus::Finished | ExecutionStatus::Stuck
        ) {
            conv.set_execution_status(ExecutionStatus::Idle)
                .await
                .map_err(ServiceError::from)?;
        }
        let mut msg = Message::user("");
        msg.role = Role::User;
        msg.content = req.content;
        let runner = self.runner();
        let message = runner
            .prepare_message(
                conv.clone(),
                MessageEvent {
                    llm_message: msg,
                    llm_response_id: None,
                    activated_skills: vec![],
                    extended_content: vec![],
                    sender: None,
                    critic_result: None,
                },
            )
            .await;
        let event = Event::with_source(Source::User, EventBody::Message(message.clone()));
        let appended = conv.append(event).await.map_err(ServiceError::from)?;
        conv.set_last_user_message_id(&appended.id)
            .await
            .map_err(ServiceError::from)?;
        runner.message_stored(conv.clone(), message).await;
        if !req.run {
            return Ok(SendOutcome::Stored);
        }
        match runner.run(conv.clone()).await {
            Ok(()) | Err(RunError::AlreadyRunning) => Ok(SendOutcome::Stored),
            Err(RunError::Unavailable) => {
                tracing::debug!(conversation_id = %conv.id(), "message stored; no agent runtime installed");
                Ok(SendOutcome::Stored)
            }
            Err(RunError::Capacity) => Ok(SendOutcome::StoredNoCapacity(format!(
                "Message saved, but the conversation run limit was reached. Retry POST /api/conversations/{}/run without resending the message.",
                ids::hex(&conv.id())
            ))),
            Err(RunError::Refused(r)) => Err(ServiceError::BadRequest(r)),
        }
    }

    /// Pauses a conversation (status `paused`, `PauseEvent`, snapshot,
    /// webhook) when it is idle or running; `false` when unknown.
    pub async fn pause(&self, id: Uuid) -> Result<bool, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(false);
        };
        if matches!(
            conv.execution_status(),
            ExecutionStatus::Idle | ExecutionStatus::Running
        ) {
            conv.set_execution_status(ExecutionStatus::Paused)
                .await
                .map_err(ServiceError::from)?;
            conv.append(Event::new(EventBody::Pause))
                .await
                .map_err(ServiceError::from)?;
            self.runner().pause(conv.clone()).await;
            conv.publish_full_state().await;
            self.post_conversation_webhook(&conv, None);
        }
        Ok(true)
    }

    /// Interrupts a running conversation (status `paused`,
    /// `InterruptEvent`); `false` when unknown.
    pub async fn interrupt(&self, id: Uuid) -> Result<bool, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(false);
        };
        if conv.execution_status() == ExecutionStatus::Running {
            conv.set_execution_status(ExecutionStatus::Paused)
                .await
                .map_err(ServiceError::from)?;
            conv.append(Event::new(EventBody::Interrupt))
                .await
                .map_err(ServiceError::from)?;
            self.runner().interrupt(conv.clone()).await;
            conv.publish_full_state().await;
            self.post_conversation_webhook(&conv, None);
        }
        Ok(true)
    }

    /// Starts the agent on a conversation (the `run` route of the agent
    /// issue uses it); `None` when unknown.
    pub async fn run(&self, id: Uuid) -> Result<Option<Result<(), RunError>>, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(None);
        };
        Ok(Some(self.runner().run(conv).await))
    }

    /// Attaches a subscriber (WebSocket); `None` when unknown.
    pub async fn subscribe(
        &self,
        id: Uuid,
        replay: ReplayMode,
    ) -> Result<Option<Subscription>, ServiceError> {
        let Some(conv) = self.load(id).await? else {
            return Ok(None);
        };
        conv.subscribe(replay)
            .await
            .map(Some)
            .map_err(ServiceError::from)
    }

    /// Unloads conversations idle for `ttl` (no subscriber, no run).
    pub async fn evict_idle(&self, ttl: Duration) -> usize {
        let mut evicted = 0;
        for entry in self.entries() {
            let Ok(mut slot) = entry.slot.try_lock() else {
                continue;
            };
            let Some(conv) = slot.as_ref() else { continue };
            if conv.subscriber_count() > 0
                || conv.is_running()
                || conv.idle_for() < ttl
                || Arc::strong_count(conv) > 1
            {
                continue;
            }
            let conv = conv.clone();
            if let Err(e) = conv.flush().await {
                tracing::warn!(conversation_id = %conv.id(), error = %e, "could not flush before eviction; kept loaded");
                continue;
            }
            let _ =
                tokio::time::timeout(Duration::from_secs(10), self.runner().close(conv.clone()))
                    .await;
            conv.close().await;
            self.webhooks.close_conversation(conv.id()).await;
            *slot = None;
            evicted += 1;
            tracing::debug!(conversation_id = %conv.id(), "evicted idle conversation");
        }
        evicted
    }

    /// Whether a conversation is loaded in memory.
    pub fn is_loaded(&self, id: &Uuid) -> bool {
        self.entry(id)
            .and_then(|e| e.slot.try_lock().ok().map(|s| s.is_some()))
            .unwrap_or(false)
    }

    /// Graceful shutdown: stops runs, writes every loaded conversation, and
    /// flushes webhooks.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let runner = self.runner();
        for entry in self.entries() {
            let conv = entry.slot.lock().await.clone();
            if let Some(conv) = conv {
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), runner.close(conv.clone())).await;
                if let Err(e) = conv.flush().await {
                    tracing::warn!(conversation_id = %conv.id(), error = %e, "could not flush at shutdown");
                }
                conv.close().await;
            }
        }
        self.webhooks.shutdown().await;
    }
}

/// Resolves, creates and checks the working directory before anything of
/// the conversation exists, so a bad one leaves nothing behind.
async fn prepare_working_dir(given: &str, dir: &Path) -> Result<(), ServiceError> {
    let d = dir.to_path_buf();
    let res = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        std::fs::create_dir_all(&d)?;
        let meta = std::fs::metadata(&d)?;
        if !meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(d.ancestors().any(|a| a.join(".git").exists()))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let in_repo = res.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotADirectory => "it is not a directory".to_string(),
            _ => e.to_string(),
        };
        ServiceError::BadRequest(format!("Cannot use workspace.working_dir '{given}': {why}"))
    })?;
    if !in_repo {
        git_init(dir).await;
    }
    Ok(())
}

/// `git init`s a working directory that is not inside a repository, as the
/// Python server does; failures (no git) are only logged.
async fn git_init(dir: &Path) {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("init")
        .arg("-q")
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(10), cmd.status()).await {
        Ok(Ok(s)) if s.success() => {}
        Ok(Ok(s)) => tracing::debug!(dir = %dir.display(), status = %s, "git init failed"),
        Ok(Err(e)) => tracing::debug!(dir = %dir.display(), error = %e, "git init not run"),
        Err(_) => tracing::debug!(dir = %dir.display(), "git init timed out"),
    }
}

/// Event filters compiled against one index.
struct Matcher<'a> {
    filter: &'a EventFilter,
    kinds: Option<Vec<u16>>,
    source: Option<Option<Source>>,
    body: Option<String>,
}

impl<'a> Matcher<'a> {
    fn new(idx: &store::Index, filter: &'a EventFilter) -> Self {
        let kinds = filter.kind.as_ref().map(|want| {
            idx.kinds
                .iter()
                .enumerate()
                .filter(|(_, k)| &***k == want || python_qualified_name(k) == Some(want.as_str()))
                .map(|(i, _)| i as u16)
                .collect()
        });
        let source = filter
            .source
            .as_ref()
            .map(|s| serde_json::from_value::<Source>(Value::String(s.clone())).ok());
        Matcher {
            filter,
            kinds,
            source,
            body: filter.body.as_ref().map(|b| b.to_lowercase()),
        }
    }

    fn matches(&self, e: &store::IndexEntry) -> bool {
        if let Some(k) = &self.kinds {
            if !k.contains(&e.kind) {
                return false;
            }
        }
        if let Some(s) = &self.source {
            if s.is_none() || e.source != *s {
                return false;
            }
        }
        if let Some(t) = self.filter.timestamp_gte {
            if e.ts_micros < t {
                return false;
            }
        }
        if let Some(t) = self.filter.timestamp_lt {
            if e.ts_micros >= t {
                return false;
            }
        }
        if let Some(b) = &self.body {
            match &e.text {
                Some(text) if text.contains(b.as_str()) => {}
                _ => return false,
            }
        }
        true
    }
}

impl crate::server::ConversationLookup for ConversationService {
    fn find(
        &self,
        id: Uuid,
    ) -> futures_util::future::BoxFuture<'_, Option<crate::server::ConversationPlace>> {
        Box::pin(async move {
            let entry = self.entry(&id)?;
            Some(crate::server::ConversationPlace {
                dir: entry.shared.dir.clone(),
                working_dir: entry.shared.summary().working_dir,
            })
        })
    }
}

impl From<ConversationError> for ServiceError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::TooManySubscribers => ServiceError::TooManySubscribers,
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// The message text of an agent reply, as `agent_final_response` joins it.
trait JoinedText {
    fn text_joined(&self) -> String;
}

impl JoinedText for Message {
    fn text_joined(&self) -> String {
        self.content
            .iter()
            .map(|c| match c {
                crate::api::message::Content::Text(t) => t.text.clone(),
                crate::api::message::Content::Image(i) => {
                    format!("[Image: {} URLs]", i.image_urls.len())
                }
            })
            .collect::<Vec<_>>()
            .join("")
    }
}
