//! History condensation (agent.md §9): when the view grows too long, or
//! the user or a context-window error asks for it, older events are
//! forgotten and replaced by a summary written by the condenser's LLM.
//!
//! This module decides *what* to forget; the step makes the LLM call and
//! stores the `Condensation`.

use crate::api::agent::{Condenser, LlmSummarizingCondenser};
use crate::api::event::EventBody;
use crate::api::message::{Content, Message};

use super::view::{View, ViewItem};

/// Why a condensation is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The view is longer than `max_size`: condense if a valid cut exists.
    Soft,
    /// Requested, or over the token limit: condense, resetting the whole
    /// history if no ordinary cut works.
    Hard,
}

/// What to forget.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The summarising condenser.
    pub condenser: LlmSummarizingCondenser,
    /// Indices (in the view) of the forgotten items, contiguous.
    pub forgotten: std::ops::Range<usize>,
    /// Where the summary goes once they are gone.
    pub summary_offset: usize,
    /// How strongly it is needed.
    pub requirement: Requirement,
}

/// Whether a condenser acts on explicit requests (`/condense`,
/// context-window errors).
pub fn handles_requests(condenser: &Condenser) -> bool {
    match condenser {
        Condenser::LlmSummarizing(_) => true,
        Condenser::NoOp => false,
        Condenser::Pipeline(list) => list.iter().any(handles_requests),
    }
}

/// The class name of a condenser (409 texts).
pub fn kind(condenser: &Condenser) -> &'static str {
    match condenser {
        Condenser::LlmSummarizing(_) => "LLMSummarizingCondenser",
        Condenser::NoOp => "NoOpCondenser",
        Condenser::Pipeline(_) => "PipelineCondenser",
    }
}

/// A rough token count of the view (4 characters per token): there is no
/// tokenizer for every model, and the limit is a safety margin anyway.
pub fn approximate_tokens(messages: &[Message]) -> u64 {
    let chars: usize = messages
        .iter()
        .map(|m| {
            m.content
                .iter()
                .map(|c| c.as_text().map_or(1000, str::len))
                .sum::<usize>()
                + m.tool_calls.as_ref().map_or(0, |calls| {
                    calls.iter().map(|c| c.arguments.len() + c.name.len()).sum()
                })
        })
        .sum();
    (chars / 4) as u64
}

/// The plan of the first condenser (in pipeline order) that wants to act
/// on this view, or `None`.
pub fn plan(
    condenser: &Condenser,
    view: &View,
    tokens: u64,
    model_max_input: Option<u64>,
) -> Option<Plan> {
    match condenser {
        Condenser::NoOp => None,
        Condenser::Pipeline(list) => list
            .iter()
            .find_map(|c| plan(c, view, tokens, model_max_input)),
        Condenser::LlmSummarizing(c) => summarizing_plan(c, view, tokens, model_max_input),
    }
}

fn summarizing_plan(
    c: &LlmSummarizingCondenser,
    view: &View,
    tokens: u64,
    model_max_input: Option<u64>,
) -> Option<Plan> {
    let max_tokens = match (c.max_tokens, model_max_input) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let over_tokens = max_tokens.is_some_and(|m| tokens > m);
    let over_size = view.len() as u64 > c.max_size;
    if !view.unhandled_request && !over_tokens && !over_size {
        return None;
    }
    let requirement = if view.unhandled_request || over_tokens {
        Requirement::Hard
    } else {
        Requirement::Soft
    };
    let keep_first = c.keep_first as usize;
    let system = view.items.iter().position(|i| match i {
        ViewItem::Event(e) => matches!(e.body, EventBody::SystemPrompt(_)),
        ViewItem::Summary { .. } => false,
    });
    // A tail length below zero (a request on a view shorter than twice the
    // protected head) has no ordinary cut: Python's index search fails and
    // falls back to the hard reset, and so do we.
    let mut keep_tail: Vec<Option<usize>> = Vec::new();
    if view.unhandled_request {
        keep_tail.push((view.len() / 2).checked_sub(keep_first + 1));
    }
    if over_size {
        keep_tail.push(((c.max_size / 2) as usize).checked_sub(keep_first + 1));
    }
    if over_tokens {
        // Keep about half of the limit's worth of the most recent events.
        let per_event = (tokens as usize / view.len().max(1)).max(1);
        let budget = max_tokens.unwrap_or(0) as usize / 2;
        keep_tail.push(Some(budget / per_event));
    }
    let Some(from_tail) = keep_tail.into_iter().min().flatten() else {
        return (requirement == Requirement::Hard).then(|| hard_reset(c, view, system));
    };
    let naive_end = view.len().saturating_sub(from_tail);
    let protected = system.map_or(keep_first, |s| keep_first.max(s + 1));
    let cuts = view.cut_points();
    let next_cut = |from: usize| (from..=view.len()).find(|i| cuts[*i]).unwrap_or(view.len());
    let start = next_cut(protected.min(view.len()));
    let end = next_cut(naive_end.max(start));
    let progress_ok = (end - start) as f64 >= view.len() as f64 * c.minimum_progress;
    if start < end && progress_ok {
        return Some(Plan {
            condenser: c.clone(),
            forgotten: start..end,
            summary_offset: start,
            requirement,
        });
    }
    (requirement == Requirement::Hard).then(|| hard_reset(c, view, system))
}

/// Forgets everything after the system prompt.
fn hard_reset(c: &LlmSummarizingCondenser, view: &View, system: Option<usize>) -> Plan {
    let keep = system.map_or(0, |s| s + 1);
    Plan {
        condenser: c.clone(),
        forgotten: keep.min(view.len())..view.len(),
        summary_offset: keep.min(view.len()),
        requirement: Requirement::Hard,
    }
}

/// The summarising request: our instructions as the system message, the
/// forgotten events as the user message. Each event text is cut to
/// `max_event_chars` when given (retries after a too-long request).
pub fn summary_messages(events: &[String], max_event_chars: Option<usize>) -> Vec<Message> {
    let mut body = String::new();
    for e in events {
        let text = match max_event_chars {
            Some(max) if e.chars().count() > max => {
                let cut: String = e.chars().take(max).collect();
                format!("{cut}... [truncated]")
            }
            _ => e.clone(),
        };
        body.push_str(&format!("<EVENT>\n{text}\n</EVENT>\n"));
    }
    body.push_str("\nWrite the summary now, following the instructions.");
    vec![
        Message::system(vec![Content::text(SUMMARY_INSTRUCTIONS)]),
        Message::user(body),
    ]
}

const SUMMARY_INSTRUCTIONS: &str = "You keep the working memory of an autonomous software agent. The agent's oldest events are about to be dropped from its context; you receive them (earlier summaries included) and write the summary that replaces them.

The agent will continue the task from your summary alone, so keep everything it still needs and nothing else. Use these sections, leaving out any that would be empty:

USER_CONTEXT: what the user wants, with requirements, constraints and clarifications
TASK_TRACKING: every tracked task with its exact ID and status (required whenever the events contain task tracking)
COMPLETED: what has been done, with results
PENDING: what is left to do
CURRENT_STATE: the state the work is in now: open files, variables, where in the plan it stands
CODE_STATE: files, functions and data structures touched, with their paths
TESTS: failing tests, error messages, outputs worth keeping
CHANGES: code changes made so far
DEPS: dependencies installed or needed
VERSION_CONTROL_STATUS: repository, branch, commits, pull request

Be concise and precise: keep exact names, paths, identifiers and error texts.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event::{Event, MessageEvent, Source};
    use crate::api::llm_config::LlmConfig;
    use std::sync::Arc;

    fn summarizing(max_size: u64, keep_first: u64) -> Condenser {
        Condenser::LlmSummarizing(Box::new(LlmSummarizingCondenser {
            llm: LlmConfig::default(),
            max_size,
            max_tokens: None,
            keep_first,
            minimum_progress: 0.1,
            hard_context_reset_max_retries: 5,
            hard_context_reset_context_scaling: 0.8,
        }))
    }

    fn view(n: usize, request: bool) -> View {
        let items = (0..n)
            .map(|i| {
                ViewItem::Event(Arc::new(Event::with_source(
                    Source::User,
                    EventBody::Message(MessageEvent {
                        llm_message: Message::user(format!("m{i}")),
                        llm_response_id: None,
                        activated_skills: vec![],
                        extended_content: vec![],
                        sender: None,
                        critic_result: None,
                    }),
                )))
            })
            .collect();
        View {
            items,
            unhandled_request: request,
        }
    }

    #[test]
    fn size_trigger_keeps_the_head_and_a_tail() {
        let c = summarizing(10, 2);
        assert!(plan(&c, &view(10, false), 0, None).is_none());
        let p = plan(&c, &view(11, false), 0, None).unwrap();
        assert_eq!(p.requirement, Requirement::Soft);
        // keep 2 at the head and 10/2 - 2 - 1 = 2 at the tail
        assert_eq!(p.forgotten, 2..9);
        assert_eq!(p.summary_offset, 2);
        assert!(plan(&Condenser::NoOp, &view(50, true), 0, None).is_none());
        assert!(handles_requests(&Condenser::Pipeline(vec![
            Condenser::NoOp,
            c
        ])));
    }

    #[test]
    fn a_request_on_a_short_view_resets_hard() {
        let c = summarizing(10, 2);
        let p = plan(&c, &view(3, true), 0, None).unwrap();
        assert_eq!(p.requirement, Requirement::Hard);
        assert_eq!(p.forgotten, 0..3);
        let msgs = summary_messages(&["a".repeat(50)], Some(10));
        assert!(msgs[1].text().contains("aaaaaaaaaa... [truncated]"));
    }
}
