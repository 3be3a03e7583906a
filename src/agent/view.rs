//! The LLM's view of a conversation (events.md §5): the active branch with
//! condensations applied, turned into chat messages.

use std::collections::HashSet;
use std::sync::Arc;

use crate::api::event::{Event, EventBody, ObservationEvent};
use crate::api::message::{Content, Message, Role};

/// The text part put before an error observation's content.
pub const ERROR_HEADER: &str = "[An error occurred during execution.]\n";

/// One element of the view.
#[derive(Clone, Debug)]
pub enum ViewItem {
    /// A stored event the LLM sees.
    Event(Arc<Event>),
    /// A condensation's summary (`CondensationSummaryEvent`, never stored).
    Summary {
        /// `<condensation id>-summary`.
        id: String,
        /// The summary text.
        summary: String,
    },
}

impl ViewItem {
    /// The event id.
    pub fn id(&self) -> &str {
        match self {
            ViewItem::Event(e) => &e.id,
            ViewItem::Summary { id, .. } => id,
        }
    }

    fn event(&self) -> Option<&Event> {
        match self {
            ViewItem::Event(e) => Some(e),
            ViewItem::Summary { .. } => None,
        }
    }
}

/// The condensed view.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// What the LLM sees, in order.
    pub items: Vec<ViewItem>,
    /// A `CondensationRequest` came after the last `Condensation`.
    pub unhandled_request: bool,
}

/// Whether the LLM sees events of this kind.
fn llm_visible(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::SystemPrompt(_)
            | EventBody::Message(_)
            | EventBody::Action(_)
            | EventBody::Observation(_)
            | EventBody::AgentError(_)
            | EventBody::UserReject(_)
    )
}

impl View {
    /// The view of an active branch (state updates excluded), applying
    /// each condensation as it comes.
    pub fn from_branch(branch: &[Arc<Event>]) -> View {
        let mut view = View::default();
        for e in branch {
            match &e.body {
                EventBody::Condensation(c) => {
                    let forgotten: HashSet<&str> =
                        c.forgotten_event_ids.iter().map(String::as_str).collect();
                    view.items.retain(|i| !forgotten.contains(i.id()));
                    if let (Some(summary), Some(offset)) = (&c.summary, c.summary_offset) {
                        let at = (offset as usize).min(view.items.len());
                        view.items.insert(
                            at,
                            ViewItem::Summary {
                                id: format!("{}-summary", e.id),
                                summary: summary.clone(),
                            },
                        );
                    }
                    view.unhandled_request = false;
                }
                EventBody::CondensationRequest => view.unhandled_request = true,
                body if llm_visible(body) => view.items.push(ViewItem::Event(e.clone())),
                _ => {}
            }
        }
        view
    }

    /// Drops tool calls without a result and results without a call (a
    /// provider rejects either).
    pub fn enforce_tool_pairs(&mut self) {
        let mut calls = HashSet::new();
        let mut results = HashSet::new();
        for item in &self.items {
            match item.event().map(|e| &e.body) {
                Some(EventBody::Action(a)) => {
                    calls.insert(a.tool_call_id.clone());
                }
                Some(EventBody::Observation(o)) => {
                    results.insert(o.tool_call_id.clone());
                }
                Some(EventBody::AgentError(o)) => {
                    results.insert(o.tool_call_id.clone());
                }
                Some(EventBody::UserReject(o)) => {
                    results.insert(o.tool_call_id.clone());
                }
                _ => {}
            }
        }
        self.items
            .retain(|item| match item.event().map(|e| &e.body) {
                Some(EventBody::Action(a)) => results.contains(&a.tool_call_id),
                Some(EventBody::Observation(o)) => calls.contains(&o.tool_call_id),
                Some(EventBody::AgentError(o)) => calls.contains(&o.tool_call_id),
                Some(EventBody::UserReject(o)) => calls.contains(&o.tool_call_id),
                _ => true,
            });
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// For each index `0..=len`, whether the view may be cut there without
    /// separating a tool call from its result or splitting the calls of
    /// one response.
    pub fn cut_points(&self) -> Vec<bool> {
        let n = self.items.len();
        let mut ok = vec![true; n + 1];
        let mut open: HashSet<&str> = HashSet::new();
        for (i, item) in self.items.iter().enumerate() {
            if !open.is_empty() {
                ok[i] = false;
            }
            match item.event().map(|e| &e.body) {
                Some(EventBody::Action(a)) => {
                    open.insert(&a.tool_call_id);
                    // Calls of one response stay together.
                    if i > 0 {
                        if let Some(EventBody::Action(prev)) =
                            self.items[i - 1].event().map(|e| &e.body)
                        {
                            if prev.llm_response_id == a.llm_response_id {
                                ok[i] = false;
                            }
                        }
                    }
                }
                Some(EventBody::Observation(o)) => {
                    open.remove(o.tool_call_id.as_str());
                }
                Some(EventBody::AgentError(o)) => {
                    open.remove(o.tool_call_id.as_str());
                }
                Some(EventBody::UserReject(o)) => {
                    open.remove(o.tool_call_id.as_str());
                }
                _ => {}
            }
        }
        ok[n] = open.is_empty();
        ok
    }

    /// The chat messages: consecutive actions of one response merged into
    /// one assistant turn, adjacent plain user messages merged.
    pub fn to_messages(
        &self,
        observation_content: &dyn Fn(&Event, &ObservationEvent) -> Vec<Content>,
    ) -> Vec<Message> {
        let mut out: Vec<Message> = Vec::with_capacity(self.items.len());
        let mut i = 0;
        while i < self.items.len() {
            let msg = match &self.items[i] {
                ViewItem::Summary { summary, .. } => Message::user(summary.clone()),
                ViewItem::Event(e) => match &e.body {
                    EventBody::Action(first) => {
                        let mut msg = Message::assistant(first.thought.clone());
                        msg.reasoning_content = first.reasoning_content.clone();
                        msg.thinking_blocks = first.thinking_blocks.clone();
                        msg.responses_reasoning_item = first.responses_reasoning_item.clone();
                        let mut calls = vec![first.tool_call.clone()];
                        while let Some(EventBody::Action(next)) = self
                            .items
                            .get(i + 1)
                            .and_then(|n| n.event())
                            .map(|e| &e.body)
                        {
                            if next.llm_response_id != first.llm_response_id {
                                break;
                            }
                            calls.push(next.tool_call.clone());
                            i += 1;
                        }
                        msg.tool_calls = Some(calls);
                        msg
                    }
                    body => match event_message(e, body, observation_content) {
                        Some(m) => m,
                        None => {
                            i += 1;
                            continue;
                        }
                    },
                },
            };
            match out.last_mut() {
                Some(last) if is_plain_user(last) && is_plain_user(&msg) => {
                    last.content.extend(msg.content)
                }
                _ => out.push(msg),
            }
            i += 1;
        }
        out
    }
}

fn is_plain_user(m: &Message) -> bool {
    m.role == Role::User && m.tool_calls.is_none() && m.tool_call_id.is_none() && m.name.is_none()
}

fn event_message(
    e: &Event,
    body: &EventBody,
    observation_content: &dyn Fn(&Event, &ObservationEvent) -> Vec<Content>,
) -> Option<Message> {
    Some(match body {
        EventBody::SystemPrompt(s) => {
            let mut content = vec![Content::Text(s.system_prompt.0.clone())];
            if let Some(d) = &s.dynamic_context {
                content.push(Content::Text(d.0.clone()));
            }
            Message::system(content)
        }
        EventBody::Message(m) => {
            let mut msg = m.llm_message.clone();
            msg.content.extend(m.extended_content.iter().cloned());
            msg
        }
        EventBody::Observation(o) => {
            let mut content = Vec::new();
            if o.observation
                .get("is_error")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
            {
                content.push(Content::text(ERROR_HEADER));
            }
            content.extend(observation_content(e, o));
            content.extend(o.extended_content.iter().cloned());
            Message::tool(&o.tool_call_id, &o.tool_name, content)
        }
        EventBody::AgentError(a) => Message::tool(
            &a.tool_call_id,
            &a.tool_name,
            vec![Content::text(a.error.clone())],
        ),
        EventBody::UserReject(r) => Message::tool(
            &r.tool_call_id,
            &r.tool_name,
            vec![Content::text(format!(
                "Action rejected: {}",
                r.rejection_reason
            ))],
        ),
        _ => return None,
    })
}

/// How the condenser shows an event to the summarising LLM.
pub fn describe(
    item: &ViewItem,
    observation_content: &dyn Fn(&Event, &ObservationEvent) -> Vec<Content>,
) -> String {
    let text_of = |parts: &[Content]| {
        parts
            .iter()
            .map(|c| c.as_text().unwrap_or("[image]"))
            .collect::<Vec<_>>()
            .join("")
    };
    match item {
        ViewItem::Summary { summary, .. } => format!("Summary of earlier events:\n{summary}"),
        ViewItem::Event(e) => match &e.body {
            EventBody::SystemPrompt(_) => "System prompt".to_string(),
            EventBody::Message(m) => {
                let mut parts = m.llm_message.content.clone();
                parts.extend(m.extended_content.iter().cloned());
                format!("Message from {}:\n{}", e.source.as_str(), text_of(&parts))
            }
            EventBody::Action(a) => {
                let thought = text_of(&a.thought);
                let mut s = format!(
                    "Action: {} called with {}",
                    a.tool_name, a.tool_call.arguments
                );
                if !thought.is_empty() {
                    s = format!("{s}\nThought: {thought}");
                }
                s
            }
            EventBody::Observation(o) => format!(
                "Result of {}:\n{}",
                o.tool_name,
                text_of(&observation_content(e, o))
            ),
            EventBody::AgentError(a) => format!("Error from {}:\n{}", a.tool_name, a.error),
            EventBody::UserReject(r) => {
                format!(
                    "The user rejected the {} call: {}",
                    r.tool_name, r.rejection_reason
                )
            }
            other => other.kind().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event::{ActionEvent, AgentErrorEvent, Condensation, MessageEvent, Source};
    use crate::api::message::MessageToolCall;
    use serde_json::json;

    fn ev(source: Source, body: EventBody) -> Arc<Event> {
        Arc::new(Event::with_source(source, body))
    }

    fn user(text: &str) -> Arc<Event> {
        ev(
            Source::User,
            EventBody::Message(MessageEvent {
                llm_message: Message::user(text),
                llm_response_id: None,
                activated_skills: vec![],
                extended_content: vec![Content::text("extra")],
                sender: None,
                critic_result: None,
            }),
        )
    }

    fn action(call: &str, resp: &str) -> Arc<Event> {
        ev(
            Source::Agent,
            EventBody::Action(ActionEvent {
                thought: vec![],
                reasoning_content: None,
                thinking_blocks: vec![],
                responses_reasoning_item: None,
                action: Some(json!({"thought": "x", "kind": "ThinkAction"})),
                tool_name: "think".into(),
                tool_call_id: call.into(),
                tool_call: MessageToolCall {
                    id: call.into(),
                    responses_item_id: None,
                    name: "think".into(),
                    arguments: "{}".into(),
                    origin: Default::default(),
                },
                llm_response_id: resp.into(),
                security_risk: Default::default(),
                critic_result: None,
                summary: None,
            }),
        )
    }

    fn error(call: &str) -> Arc<Event> {
        ev(
            Source::Agent,
            EventBody::AgentError(AgentErrorEvent {
                tool_name: "think".into(),
                tool_call_id: call.into(),
                error: "bad".into(),
                classification: None,
            }),
        )
    }

    fn none(_: &Event, _: &ObservationEvent) -> Vec<Content> {
        vec![]
    }

    #[test]
    fn merges_parallel_calls_and_user_messages() {
        let branch = vec![
            user("a"),
            user("b"),
            action("c1", "r1"),
            action("c2", "r1"),
            error("c1"),
            error("c2"),
        ];
        let view = View::from_branch(&branch);
        let msgs = view.to_messages(&none);
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[0].content.len(), 4);
        assert_eq!(msgs[1].tool_calls.as_ref().unwrap().len(), 2);
        assert_eq!(msgs[2].role, Role::Tool);
        assert_eq!(
            view.cut_points(),
            [true, true, true, false, false, false, true]
        );
    }

    #[test]
    fn condensation_forgets_and_inserts_the_summary() {
        let u1 = user("one");
        let u2 = user("two");
        let cond = ev(
            Source::Environment,
            EventBody::Condensation(Condensation {
                forgotten_event_ids: vec![u1.id.clone()],
                summary: Some("earlier: one".into()),
                summary_offset: Some(0),
                llm_response_id: None,
            }),
        );
        let req = ev(Source::Environment, EventBody::CondensationRequest);
        let view = View::from_branch(&[u1, u2.clone(), req.clone(), cond.clone()]);
        assert!(!view.unhandled_request);
        assert_eq!(view.items.len(), 2);
        assert_eq!(view.items[0].id(), format!("{}-summary", cond.id));
        let view = View::from_branch(&[u2, req]);
        assert!(view.unhandled_request);
    }

    #[test]
    fn unmatched_calls_are_dropped() {
        let mut view = View::from_branch(&[user("a"), action("c1", "r1"), error("zz")]);
        view.enforce_tool_pairs();
        assert_eq!(view.items.len(), 1);
    }
}
