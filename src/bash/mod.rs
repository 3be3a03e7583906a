//! The server-level bash service (`/api/bash/…`, `/sockets/bash-events`).
//!
//! Commands run with `/bin/sh -c` in a session (process group) of their own
//! with piped stdout/stderr, independently of any conversation. Everything
//! that happens is a [`BashEvent`]: the [`BashCommand`] when a command
//! starts, then [`BashOutput`]s (1 MiB chunks, the last one with the exit
//! code). Events are stored one JSON file each under the events directory,
//! named so that names sort by time; the names are indexed in memory at
//! start, so searches never list the directory. Live subscribers get events
//! in storage order from a bounded broadcast and catch up from storage when
//! they fall behind.
//!
//! The HTTP and WebSocket layers call [`BashService`]; this module knows
//! nothing of HTTP.
//!
//! Architecture invariant: no command outlives [`BashService::shutdown`].

mod models;
mod service;
mod services;
mod store;

pub use models::{
    validation_text, BashCommand, BashError, BashEvent, BashEventKind, BashEventPage, BashOutput,
    BashSearch, ExecuteBashRequest, SortOrder, DEFAULT_TIMEOUT,
};
pub use service::{
    BashService, BashServiceConfig, BashServiceError, BashSubscription, MAX_CHUNK_CHARS,
    MAX_SUBSCRIBERS,
};
pub use services::{BashServices, CONVERSATION_EVENTS_DIR};
