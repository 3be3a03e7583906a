//! The conversation service: catalog, lazy loading and eviction, the
//! per-conversation event pipeline and subscribers, and the plug point of
//! the agent runtime.
//!
//! - [`ConversationService`]: every operation of the conversation and event
//!   routes, start-up (catalog, restart recovery), eviction, shutdown.
//! - [`Conversation`]: one loaded conversation; the event pipeline (the only
//!   way events enter a conversation) and the API the agent loop uses.
//! - [`Subscription`]: one subscriber's ordered stream of frames.
//! - [`Runner`]: what the agent runtime implements.
//!
//! Architecture invariant: events are masked, stored, then published, in
//! that order, under the conversation's pipeline lock.

mod catalog;
mod conversation;
mod runner;
pub(crate) mod service;
mod state;

pub use conversation::{
    compact_line, server_error_frame, unmatched_actions, Appended, Conversation, ConversationEnv,
    Frame, ReplayMode, RunGuard, Subscription, RESTART_ERROR,
};
pub use runner::{BoxFuture, NoRunner, RunError, Runner};
pub use service::{ActivityHook, ConversationService, JsonText, SendOutcome, ServiceOptions};
pub use state::{ConversationConfig, ConversationState, InfoContext};

use crate::api::validation::ValidationErrorItem;

/// Errors of a loaded conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationError {
    /// The conversation was deleted or unloaded.
    Closed,
    /// The subscriber cap is reached.
    TooManySubscribers,
    /// Disk I/O failed.
    Io(String),
    /// Anything else (a bug).
    Internal(String),
}

impl std::fmt::Display for ConversationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConversationError::Closed => write!(f, "the conversation is closed"),
            ConversationError::TooManySubscribers => {
                write!(f, "Too many connections for this conversation")
            }
            ConversationError::Io(e) => write!(f, "I/O error: {e}"),
            ConversationError::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for ConversationError {}

/// Errors of service operations, each with its HTTP meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceError {
    /// 422 with pydantic-style items.
    Validation(Vec<ValidationErrorItem>),
    /// 422 with `{"detail": "<text>"}`.
    Unprocessable(String),
    /// 400 with `{"detail": "<text>"}`.
    BadRequest(String),
    /// 404 (each route has its own body).
    NotFound,
    /// 409 with `{"detail": "<text>"}`.
    Conflict(String),
    /// 429 with `{"detail": "<text>"}`.
    TooManyRequests(String),
    /// The subscriber cap (WebSocket close 1013).
    TooManySubscribers,
    /// 500; the text goes to the log only.
    Internal(String),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::Validation(items) => write!(f, "{} validation error(s)", items.len()),
            ServiceError::Unprocessable(m)
            | ServiceError::BadRequest(m)
            | ServiceError::Conflict(m)
            | ServiceError::TooManyRequests(m)
            | ServiceError::Internal(m) => write!(f, "{m}"),
            ServiceError::NotFound => write!(f, "Not Found"),
            ServiceError::TooManySubscribers => {
                write!(f, "Too many connections for this conversation")
            }
        }
    }
}

impl std::error::Error for ServiceError {}
