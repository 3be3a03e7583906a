//! The agent loop: what makes conversations run.
//!
//! - [`AgentRuntime`] is the [`crate::conversations::Runner`] the
//!   conversation service calls: one run task per running conversation,
//!   lazy preparation (tools, skills, the `SystemPromptEvent`) on the first
//!   message or run, pause, interrupt, close, and the out-of-band calls of
//!   the lifecycle routes (`ask_agent`, `condense`, `generate_title`,
//!   rejecting pending actions).
//! - `step`: one step (agent.md §2): pending actions, condensation, the LLM
//!   call with streamed deltas, tool calls to actions, confirmation,
//!   execution, results in call order.
//! - `calls`: tool call → `ActionEvent` (argument repair, `security_risk`,
//!   `summary`, validation errors the model can correct).
//! - `view`: events → LLM messages (condensations applied).
//! - `prompt`, `skills`: the system prompt and repository/knowledge skills.
//! - `toolset`: the conversation's tools and their schemas.
//! - `security`, `stuck`, `condenser`, `title`, `secrets`, `errors`.
//!
//! Architecture invariant: the agent reports only through the
//! conversation's event pipeline (which masks secrets); it never writes
//! conversation files itself.

mod calls;
mod condenser;
mod errors;
mod prompt;
mod runtime;
mod secrets;
mod security;
mod session;
mod skills;
mod step;
mod stuck;
mod title;
mod toolset;
mod view;

pub use runtime::{AgentError, AgentRuntime};
