//! # agent-server
//!
//! A Rust re-implementation of the OpenHands agent server: REST and WebSocket
//! APIs to create, run, persist and stream AI-agent conversations, wire
//! compatible with the Python server 1.58.2 and its clients.
//!
//! # Layout
//!
//! - [`config`]: settings from defaults, the JSON file, `OH_*` environment
//!   variables (upstream naming) and flags, layered with figment.
//! - [`server`]: start-up wiring: builds the shared application state, binds
//!   (or inherits) the listener, runs until shutdown.
//! - [`http`]: the only layer that knows HTTP: routing from one route table
//!   (which also generates `/openapi.json`), auth, CORS, error bodies,
//!   WebSocket upgrades and framing, and the route handlers.
//! - [`api`]: the wire types: requests, responses, events, validation errors.
//! - [`conversations`]: the conversation service: catalog, lazy load and
//!   eviction, the per-conversation event pipeline and subscribers, run control.
//! - [`store`]: on-disk persistence: `metadata.json` (atomic) and
//!   `events.jsonl` (append-only, indexed, crash-recovered).
//! - [`agent`]: the agent loop: system prompt, steps, confirmation, security
//!   analysis, stuck detection, condensation, titles.
//! - [`llm`]: the LLM client: provider routing, OpenAI Chat Completions and
//!   Responses, Anthropic Messages, streaming, retries, usage and cost.
//! - [`tools`]: terminal (PTY), file editor, task tracker, glob, grep,
//!   apply_patch, the browser tool set, and the built-in `finish`/`think`.
//! - [`bash`]: the server-level bash command service and its events.
//! - [`secrets`]: age encryption at rest and the one masking function.
//! - [`webhooks`]: batched event and conversation webhooks.
//! - [`telemetry`]: tracing to journald or stderr.
//! - [`healthcheck`]: the `healthcheck` subcommand for container health checks.
//! - [`systemd`]: sd-notify readiness, watchdog, stopping; socket activation.
//! - [`outbound`]: the one outgoing HTTP client (LLM calls, webhooks):
//!   hyper + rustls with ring, system roots or compiled-in webpki roots.
//! - [`util`]: timestamps and ids in the Python server's formats.

pub mod agent;
pub mod api;
pub mod bash;
pub mod config;
pub mod conversations;
pub mod healthcheck;
pub mod http;
pub mod llm;
pub mod outbound;
pub mod secrets;
pub mod server;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod tools;
pub mod util;
pub mod webhooks;
