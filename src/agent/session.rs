//! What the runtime keeps per loaded conversation: the prepared agent
//! (tools, skills), the active branch read incrementally from the log, the
//! LLM renderings of observations, and the run control.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::agent::Agent;
use crate::api::event::{Event, EventBody, ObservationEvent};
use crate::api::message::Content;
use crate::conversations::{Conversation, ConversationError};

use super::skills::Skill;
use super::stuck::StuckDetector;
use super::toolset::Toolset;

/// The agent of a conversation, ready to run.
pub struct Prepared {
    /// The agent configuration it was prepared from.
    pub agent: Agent,
    /// Its tools.
    pub toolset: Toolset,
    /// The conversation's skills (keyword skills, path rules, the rest).
    pub skills: Vec<Skill>,
    /// Some skill is a path rule.
    pub path_rules: bool,
    /// `agent_context.user_message_suffix`.
    pub user_suffix: Option<String>,
    /// The model's context window (0 when unknown).
    pub max_input_tokens: u64,
    /// The model is sent images.
    pub vision: bool,
}

/// Run control, under one lock so starting a run and ending one cannot race.
#[derive(Debug)]
pub struct Control {
    /// A run task exists.
    pub active: bool,
    /// A run was asked for while one was active: run again if the
    /// conversation is idle when this one ends.
    pub rerun: bool,
    /// Cancels the current run's LLM call and tools (interrupt, close).
    pub cancel: CancellationToken,
    /// The conversation was closed: no new runs.
    pub closed: bool,
}

/// The active branch as read so far, with what is still open, kept up to
/// date as events arrive so a step does not rescan the whole history.
#[derive(Default)]
pub struct History {
    /// Log entries read.
    next_seq: u32,
    /// Events other than state updates, in log order.
    branch: Vec<Arc<Event>>,
    /// Executable actions without an observation, rejection or agent error.
    pending: Vec<Arc<Event>>,
    /// Tool calls (executable or not) without any result yet.
    unanswered: usize,
}

impl History {
    fn ingest(&mut self, e: Arc<Event>) {
        match &e.body {
            EventBody::Action(a) => {
                self.unanswered += 1;
                if a.action.is_some() {
                    self.pending.push(e.clone());
                }
            }
            EventBody::Observation(o) => self.answer(|p| p.id == o.action_id),
            EventBody::UserReject(o) => self.answer(|p| p.id == o.action_id),
            EventBody::AgentError(o) => self.answer(|p| action_call(p) == Some(&o.tool_call_id)),
            _ => {}
        }
        self.branch.push(e);
    }

    fn answer(&mut self, matches: impl Fn(&Event) -> bool) {
        self.unanswered = self.unanswered.saturating_sub(1);
        self.pending.retain(|p| !matches(p));
    }
}

fn action_call(e: &Event) -> Option<&String> {
    match &e.body {
        EventBody::Action(a) => Some(&a.tool_call_id),
        _ => None,
    }
}

/// What a step needs to know about the history.
pub struct Snapshot {
    /// The active branch.
    pub branch: Vec<Arc<Event>>,
    /// Executable actions still waiting for a result, oldest first.
    pub pending: Vec<Arc<Event>>,
    /// Some tool call has no result yet (the view must drop it).
    pub unanswered: bool,
}

/// One conversation's runtime state.
pub struct Session {
    /// Run control.
    pub control: Mutex<Control>,
    /// `true` while a run task exists (interrupt and close wait on it).
    pub running: watch::Sender<bool>,
    /// The prepared agent, once prepared.
    pub prepared: tokio::sync::Mutex<Option<Arc<Prepared>>>,
    /// The branch cache.
    history: tokio::sync::Mutex<History>,
    /// What the LLM was shown for each observation (masked), by event id.
    llm_content: Mutex<HashMap<String, Vec<Content>>>,
    /// Serialises steps (the run loop and `/condense`).
    pub step_lock: tokio::sync::Mutex<()>,
    /// The stuck detector.
    pub stuck: Mutex<StuckDetector>,
    /// An automatic title is being generated.
    pub titling: std::sync::atomic::AtomicBool,
    /// Lookup secret values fetched so far (masked from then on).
    pub fetched: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Session {
    fn default() -> Session {
        Session {
            control: Mutex::new(Control {
                active: false,
                rerun: false,
                cancel: CancellationToken::new(),
                closed: false,
            }),
            running: watch::channel(false).0,
            prepared: tokio::sync::Mutex::new(None),
            history: tokio::sync::Mutex::new(History::default()),
            llm_content: Mutex::new(HashMap::new()),
            step_lock: tokio::sync::Mutex::new(()),
            stuck: Mutex::new(StuckDetector::default()),
            titling: std::sync::atomic::AtomicBool::new(false),
            fetched: Mutex::new(Vec::new()),
        }
    }
}

impl Session {
    /// The run control.
    pub fn control(&self) -> MutexGuard<'_, Control> {
        lock(&self.control)
    }

    /// Reads what the log gained since last time.
    async fn refresh<'a>(
        &'a self,
        conv: &Conversation,
    ) -> Result<tokio::sync::MutexGuard<'a, History>, ConversationError> {
        let mut h = self.history.lock().await;
        let len = conv.log().len() as u32;
        if len > h.next_seq {
            let events = conv.events_between(h.next_seq, len).await?;
            for e in events {
                if !matches!(e.body, EventBody::StateUpdate(_)) {
                    h.ingest(Arc::new(e));
                }
            }
            h.next_seq = len;
        }
        Ok(h)
    }

    /// The active branch.
    pub async fn branch(&self, conv: &Conversation) -> Result<Vec<Arc<Event>>, ConversationError> {
        Ok(self.refresh(conv).await?.branch.clone())
    }

    /// The last `n` events of the active branch.
    pub async fn tail(
        &self,
        conv: &Conversation,
        n: usize,
    ) -> Result<Vec<Arc<Event>>, ConversationError> {
        let h = self.refresh(conv).await?;
        Ok(h.branch[h.branch.len().saturating_sub(n)..].to_vec())
    }

    /// The branch with what is still open.
    pub async fn snapshot(&self, conv: &Conversation) -> Result<Snapshot, ConversationError> {
        let h = self.refresh(conv).await?;
        Ok(Snapshot {
            branch: h.branch.clone(),
            pending: h.pending.clone(),
            unanswered: h.unanswered > 0,
        })
    }

    /// Executable actions still waiting for a result, oldest first.
    pub async fn pending(&self, conv: &Conversation) -> Result<Vec<Arc<Event>>, ConversationError> {
        Ok(self.refresh(conv).await?.pending.clone())
    }

    /// Remembers what the LLM is shown for an observation just stored.
    pub fn remember_llm_content(&self, event_id: &str, content: Vec<Content>) {
        lock(&self.llm_content).insert(event_id.to_string(), content);
    }

    /// What the LLM is shown for a stored observation (rebuilt from the
    /// stored object when it was produced before this session).
    pub fn observation_content(&self, event: &Event, obs: &ObservationEvent) -> Vec<Content> {
        let mut cache = lock(&self.llm_content);
        if let Some(c) = cache.get(&event.id) {
            return c.clone();
        }
        let content = match obs.observation.as_object() {
            Some(o) => crate::tools::llm_content_from_json(o),
            None => Vec::new(),
        };
        cache.insert(event.id.clone(), content.clone());
        content
    }

    /// Every lookup value fetched so far.
    pub fn fetched_values(&self) -> Vec<String> {
        lock(&self.fetched).clone()
    }

    /// Adds fetched lookup values; `true` when one was new.
    pub fn add_fetched(&self, values: &[String]) -> bool {
        let mut f = lock(&self.fetched);
        let mut new = false;
        for v in values {
            if !f.contains(v) {
                f.push(v.clone());
                new = true;
            }
        }
        new
    }

    /// The stuck detector.
    pub fn stuck(&self) -> MutexGuard<'_, StuckDetector> {
        lock(&self.stuck)
    }
}
