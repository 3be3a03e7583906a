//! The plug point for the agent loop.
//!
//! The conversation service never runs an agent itself: it calls a
//! [`Runner`] when a message arrives with `run: true` (REST or WebSocket),
//! when a conversation is paused or interrupted, and when one is deleted,
//! evicted or the server shuts down. Until the agent runtime is installed
//! with [`crate::conversations::ConversationService::set_runner`], the
//! [`NoRunner`] is used: `run: true` then only stores the message.

use std::sync::Arc;

pub use futures_util::future::BoxFuture;

use crate::api::event::MessageEvent;
use crate::conversations::Conversation;

/// Why a run did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// A run is already active; the running loop picks up new messages.
    AlreadyRunning,
    /// No run permit is free (`max_concurrent_runs`): the caller answers 429.
    Capacity,
    /// The run was refused for another reason (answered 400 with this text).
    Refused(String),
    /// No agent runtime is installed: the message is stored, nothing runs.
    Unavailable,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::AlreadyRunning => write!(
                f,
                "Conversation already running. Wait for completion or pause first."
            ),
            RunError::Capacity => write!(
                f,
                "Conversation run limit reached. Retry the request later."
            ),
            RunError::Refused(r) => write!(f, "{r}"),
            RunError::Unavailable => write!(f, "no agent runtime is installed"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs the agent of a conversation. Implementations start work in the
/// background and return once it is started (or refused); they report
/// progress only through the conversation's event pipeline
/// ([`Conversation::append`], [`Conversation::set_execution_status`], …).
pub trait Runner: Send + Sync + 'static {
    /// Starts (or wakes) the agent loop. A run holds a permit from
    /// [`Conversation::try_run_permit`] and a [`Conversation::run_guard`]
    /// while it is active, so the conversation is never evicted under it.
    fn run(&self, conversation: Arc<Conversation>) -> BoxFuture<'static, Result<(), RunError>>;

    /// Asks the loop to stop between steps (status and `PauseEvent` are
    /// already recorded by the service).
    fn pause(&self, conversation: Arc<Conversation>) -> BoxFuture<'static, ()>;

    /// Cancels the in-flight step at once (status and `InterruptEvent` are
    /// already recorded by the service).
    fn interrupt(&self, conversation: Arc<Conversation>) -> BoxFuture<'static, ()>;

    /// The conversation is being deleted, evicted or the server is shutting
    /// down: stop everything and release tools (terminal, browser…). Must
    /// return within a few seconds.
    fn close(&self, conversation: Arc<Conversation>) -> BoxFuture<'static, ()>;

    /// A user message is about to be stored: the runtime initialises the
    /// agent on first use (so the `SystemPromptEvent` precedes the first
    /// message) and may add keyword-triggered skill text. Returns the
    /// message to store.
    fn prepare_message(
        &self,
        _conversation: Arc<Conversation>,
        message: MessageEvent,
    ) -> BoxFuture<'static, MessageEvent> {
        Box::pin(async move { message })
    }

    /// A user message was stored (with its `last_user_message_id` update):
    /// the runtime may start the automatic title.
    fn message_stored(
        &self,
        _conversation: Arc<Conversation>,
        _message: MessageEvent,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// The runner used until the agent runtime exists: nothing runs.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRunner;

impl Runner for NoRunner {
    fn run(&self, _conversation: Arc<Conversation>) -> BoxFuture<'static, Result<(), RunError>> {
        Box::pin(async { Err(RunError::Unavailable) })
    }

    fn pause(&self, _conversation: Arc<Conversation>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    fn interrupt(&self, _conversation: Arc<Conversation>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    fn close(&self, _conversation: Arc<Conversation>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}
