//! Stuck detection (agent.md §14): repeated action/observation pairs,
//! repeated errors, monologues and alternating patterns, looked for only
//! among the events after the last user message within the last 20 events
//! of the active branch.

use std::sync::Arc;

use crate::api::event::{Event, EventBody, Source};

/// Events of the branch looked at.
pub const WINDOW: usize = 20;
/// Same action and observation this many times.
const ACTION_OBSERVATION: usize = 4;
/// Same action failing more than this many times (nudged at exactly this many).
const ACTION_ERROR: usize = 3;
/// Agent messages in a row.
const MONOLOGUE: usize = 3;
/// Actions and observations alternating A, B, A, B… this long.
const ALTERNATING: usize = 6;

/// One conversation's detector (remembers which error streak it nudged).
#[derive(Debug, Default)]
pub struct StuckDetector {
    last_nudged_error: Option<String>,
}

fn window(branch: &[Arc<Event>]) -> &[Arc<Event>] {
    let tail = &branch[branch.len().saturating_sub(WINDOW)..];
    match tail
        .iter()
        .rposition(|e| e.source == Source::User && matches!(e.body, EventBody::Message(_)))
    {
        Some(i) => &tail[i + 1..],
        None => tail,
    }
}

fn is_observation(e: &Event) -> bool {
    matches!(
        e.body,
        EventBody::Observation(_) | EventBody::AgentError(_) | EventBody::UserReject(_)
    )
}

/// The last `n` actions and observations, newest first.
fn last_pairs(events: &[Arc<Event>], n: usize) -> (Vec<&Event>, Vec<&Event>) {
    let mut actions = Vec::new();
    let mut observations = Vec::new();
    for e in events.iter().rev() {
        if matches!(e.body, EventBody::Action(_)) && actions.len() < n {
            actions.push(e.as_ref());
        } else if is_observation(e) && observations.len() < n {
            observations.push(e.as_ref());
        }
        if actions.len() >= n && observations.len() >= n {
            break;
        }
    }
    (actions, observations)
}

/// Equality that ignores ids and timestamps.
fn same(a: &Event, b: &Event) -> bool {
    if a.source != b.source {
        return false;
    }
    match (&a.body, &b.body) {
        (EventBody::Action(x), EventBody::Action(y)) => {
            x.thought == y.thought && x.action == y.action && x.tool_name == y.tool_name
        }
        (EventBody::Observation(x), EventBody::Observation(y)) => {
            x.observation == y.observation && x.tool_name == y.tool_name
        }
        (EventBody::AgentError(x), EventBody::AgentError(y)) => x.error == y.error,
        (EventBody::Message(x), EventBody::Message(y)) => x.llm_message == y.llm_message,
        _ => a == b,
    }
}

fn error_streak(actions: &[&Event], observations: &[&Event]) -> usize {
    let Some(reference) = actions.first() else {
        return 0;
    };
    actions
        .iter()
        .zip(observations)
        .take_while(|(a, o)| same(reference, a) && matches!(o.body, EventBody::AgentError(_)))
        .count()
}

impl StuckDetector {
    /// The nudge to inject when the same call has just failed exactly
    /// three times in a row (once per streak).
    pub fn action_error_nudge(&mut self, branch: &[Arc<Event>]) -> Option<String> {
        let events = window(branch);
        let (actions, observations) = last_pairs(events, ACTION_ERROR + 1);
        if error_streak(&actions, &observations) != ACTION_ERROR {
            return None;
        }
        let (EventBody::Action(action), EventBody::AgentError(error)) =
            (&actions[0].body, &observations[0].body)
        else {
            return None;
        };
        if self.last_nudged_error.as_deref() == Some(observations[0].id.as_str()) {
            return None;
        }
        self.last_nudged_error = Some(observations[0].id.clone());
        Some(format!(
            "You've called `{}` with the same arguments {ACTION_ERROR} times in a row and gotten the same error each time: {}. Repeating the exact same call again will not work — review the error message and either correct the arguments or try a different approach.",
            action.tool_name, error.error
        ))
    }

    /// Whether the agent is stuck.
    pub fn is_stuck(&self, branch: &[Arc<Event>]) -> bool {
        let events = window(branch);
        if events.len() < ACTION_OBSERVATION.min(ACTION_ERROR).min(MONOLOGUE) {
            return false;
        }
        let (actions, observations) = last_pairs(events, ACTION_OBSERVATION.max(ACTION_ERROR + 1));
        if actions.len() >= ACTION_OBSERVATION
            && observations.len() >= ACTION_OBSERVATION
            && actions[..ACTION_OBSERVATION]
                .iter()
                .all(|a| same(actions[0], a))
            && observations[..ACTION_OBSERVATION]
                .iter()
                .all(|o| same(observations[0], o))
        {
            tracing::warn!("stuck: the same action and observation repeat");
            return true;
        }
        if error_streak(&actions, &observations) > ACTION_ERROR {
            tracing::warn!("stuck: the same action keeps failing");
            return true;
        }
        if monologue(events) {
            tracing::warn!("stuck: the agent keeps talking to itself");
            return true;
        }
        if events.len() >= ALTERNATING && alternating(events) {
            tracing::warn!("stuck: two actions alternate");
            return true;
        }
        false
    }
}

fn monologue(events: &[Arc<Event>]) -> bool {
    if events.len() < MONOLOGUE {
        return false;
    }
    let mut count = 0;
    for e in events.iter().rev() {
        match (&e.body, e.source) {
            (EventBody::Message(_), Source::Agent) => count += 1,
            (EventBody::Message(_), Source::User) => break,
            // Framework nudges neither count nor interrupt a monologue.
            (EventBody::Message(_), _) | (EventBody::CondensationSummary(_), _) => continue,
            _ => break,
        }
    }
    count >= MONOLOGUE
}

fn alternating(events: &[Arc<Event>]) -> bool {
    let mut actions: Vec<&Event> = Vec::new();
    let mut observations: Vec<&Event> = Vec::new();
    for e in events.iter().rev() {
        match e.body {
            EventBody::Action(_) if actions.len() < ALTERNATING => actions.push(e),
            EventBody::Observation(_) | EventBody::AgentError(_)
                if observations.len() < ALTERNATING =>
            {
                observations.push(e)
            }
            _ => {}
        }
        if actions.len() == ALTERNATING && observations.len() == ALTERNATING {
            break;
        }
    }
    actions.len() == ALTERNATING
        && observations.len() == ALTERNATING
        && (0..ALTERNATING - 2).all(|i| same(actions[i], actions[i + 2]))
        && (0..ALTERNATING - 2).all(|i| same(observations[i], observations[i + 2]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event::{ActionEvent, AgentErrorEvent, MessageEvent, ObservationEvent};
    use crate::api::message::{Message, MessageToolCall};
    use serde_json::json;

    fn ev(source: Source, body: EventBody) -> Arc<Event> {
        Arc::new(Event::with_source(source, body))
    }

    fn user() -> Arc<Event> {
        message(Source::User, "go")
    }

    fn message(source: Source, text: &str) -> Arc<Event> {
        ev(
            source,
            EventBody::Message(MessageEvent {
                llm_message: Message::user(text),
                llm_response_id: None,
                activated_skills: vec![],
                extended_content: vec![],
                sender: None,
                critic_result: None,
            }),
        )
    }

    fn action(cmd: &str) -> Arc<Event> {
        ev(
            Source::Agent,
            EventBody::Action(ActionEvent {
                thought: vec![],
                reasoning_content: None,
                thinking_blocks: vec![],
                responses_reasoning_item: None,
                action: Some(json!({"command": cmd})),
                tool_name: "terminal".into(),
                tool_call_id: crate::util::ids::new_event_id(),
                tool_call: MessageToolCall {
                    id: "x".into(),
                    responses_item_id: None,
                    name: "terminal".into(),
                    arguments: "{}".into(),
                    origin: Default::default(),
                },
                llm_response_id: crate::util::ids::new_event_id(),
                security_risk: Default::default(),
                critic_result: None,
                summary: None,
            }),
        )
    }

    fn obs(out: &str) -> Arc<Event> {
        ev(
            Source::Environment,
            EventBody::Observation(ObservationEvent {
                tool_name: "terminal".into(),
                tool_call_id: "x".into(),
                observation: json!({"content": out}),
                action_id: "a".into(),
                extended_content: vec![],
            }),
        )
    }

    fn err() -> Arc<Event> {
        ev(
            Source::Agent,
            EventBody::AgentError(AgentErrorEvent {
                tool_name: "terminal".into(),
                tool_call_id: "x".into(),
                error: "boom".into(),
                classification: None,
            }),
        )
    }

    #[test]
    fn repeated_pairs() {
        let mut b = vec![user()];
        for _ in 0..3 {
            b.extend([action("ls"), obs("a")]);
        }
        let d = StuckDetector::default();
        assert!(!d.is_stuck(&b));
        b.extend([action("ls"), obs("a")]);
        assert!(d.is_stuck(&b));
        b.push(user());
        assert!(!d.is_stuck(&b));
    }

    #[test]
    fn errors_nudge_once_then_stuck() {
        let mut d = StuckDetector::default();
        let mut b = vec![user()];
        for _ in 0..3 {
            b.extend([action("x"), err()]);
        }
        assert!(d
            .action_error_nudge(&b)
            .unwrap()
            .starts_with("You've called `terminal` with the same arguments 3 times"));
        assert!(d.action_error_nudge(&b).is_none());
        assert!(!d.is_stuck(&b));
        b.extend([action("x"), err()]);
        assert!(d.is_stuck(&b));
    }

    #[test]
    fn monologue_and_alternating() {
        let d = StuckDetector::default();
        let b = vec![
            user(),
            message(Source::Agent, "a"),
            message(Source::Agent, "b"),
            message(Source::Agent, "c"),
        ];
        assert!(d.is_stuck(&b));
        let mut b = vec![user()];
        for i in 0..6 {
            let (c, o) = if i % 2 == 0 {
                ("ls", "1")
            } else {
                ("pwd", "2")
            };
            b.extend([action(c), obs(o)]);
        }
        assert!(d.is_stuck(&b));
    }
}
