//! Wire types: the JSON shapes clients and LLM providers see.
//!
//! Architecture invariant: these are the only types that derive the API's
//! serialisation; other layers convert to and from them.

pub mod agent;
pub mod compact_json;
pub mod conversation;
pub mod event;
pub mod llm_config;
pub mod message;
pub mod metrics;
pub mod server;
pub mod validate;
pub mod validation;
