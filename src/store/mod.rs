//! On-disk persistence of conversations (DECISIONS.md):
//!
//! ```text
//! {conversations_path}/{id-hex}/metadata.json   settings + agent state, atomic rewrite
//! {conversations_path}/{id-hex}/events.jsonl    one full-form event per line, append-only
//! ```
//!
//! Architecture invariant: `events.jsonl` is only ever appended; a torn last
//! line is the only thing recovery may remove. Everything here is blocking
//! file I/O, called from `spawn_blocking` by the conversation layer.

pub mod event_log;
pub mod metadata;

pub use event_log::{EntryHead, EventLog, Index, IndexEntry, OpenReport, EVENTS_FILE};
pub use metadata::{
    read_metadata, scan, write_atomic, write_metadata, CatalogRecord, Scan, FORMAT_VERSION,
    METADATA_FILE,
};
