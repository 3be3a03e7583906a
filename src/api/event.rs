//! The event model (events.md): every action, observation, message and state
//! change of a conversation.
//!
//! An [`Event`] is the common envelope (`id`, `timestamp`, `source`,
//! `parent_id`) plus a typed [`EventBody`]. It has two JSON forms:
//!
//! - the **full** form ([`Event::to_json`]), nulls included, as served by
//!   `GET /events/{id}`, batch gets and webhooks, and as stored, one per line,
//!   in `events.jsonl`;
//! - the **compact** form ([`compact`]), nulls omitted (pydantic's
//!   `exclude_none`), as sent in WebSocket frames and event search results.
//!
//! In both, `kind` is the last key. Kinds we do not model ([`EventBody::Other`])
//! and fields we do not know survive a round trip through the stored JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::message::{Content, Message, MessageToolCall, TextContent};
use crate::util::{ids, time};

/// Who produced an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Agent,
    User,
    Environment,
    Hook,
}

impl Source {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Agent => "agent",
            Source::User => "user",
            Source::Environment => "environment",
            Source::Hook => "hook",
        }
    }
}

/// Security risk levels, ordered LOW < MEDIUM < HIGH; UNKNOWN stands apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum SecurityRisk {
    #[default]
    Unknown,
    Low,
    Medium,
    High,
}

/// `ErrorClassification` (events.md §1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorClassification {
    /// auth, quota, rate_limit, config, transient, agent_action, internal, unknown.
    pub kind: String,
    pub retryable: bool,
    /// none, retry, settings.
    #[serde(default = "default_user_action")]
    pub user_action: String,
    #[serde(default)]
    pub error_id: Option<String>,
}

fn default_user_action() -> String {
    "none".to_string()
}

impl ErrorClassification {
    /// A classification with the given kind, retryability and user action.
    pub fn new(kind: &str, retryable: bool, user_action: &str) -> Self {
        ErrorClassification {
            kind: kind.to_string(),
            retryable,
            user_action: user_action.to_string(),
            error_id: None,
        }
    }

    /// Agent-correctable failures (malformed tool calls, validation errors).
    pub fn agent_action() -> Self {
        Self::new("agent_action", true, "retry")
    }
}

/// `SystemPromptEvent`: the system prompt and the tool list; always event 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemPromptEvent {
    pub system_prompt: TextContentJson,
    /// Tool definitions as the Python server serialises them
    /// (`description`, `action_type`, `observation_type`, `annotations`, `meta`, `kind`, `title`).
    #[serde(default)]
    pub tools: Vec<Value>,
    #[serde(default)]
    pub dynamic_context: Option<TextContentJson>,
}

/// A `TextContent` as a field value (keeps the content model's key order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextContentJson(pub TextContent);

impl Serialize for TextContentJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Content::Text(self.0.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TextContentJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Content::deserialize(deserializer)? {
            Content::Text(t) => Ok(TextContentJson(t)),
            Content::Image(_) => Err(serde::de::Error::custom("expected text content")),
        }
    }
}

/// `MessageEvent`: a user, agent or environment message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageEvent {
    pub llm_message: Message,
    /// The completion id when the agent wrote it.
    #[serde(default)]
    pub llm_response_id: Option<String>,
    #[serde(default)]
    pub activated_skills: Vec<String>,
    /// Skill text appended to the message when sent to the LLM.
    #[serde(default)]
    pub extended_content: Vec<Content>,
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub critic_result: Option<Value>,
}

/// `ActionEvent`: one tool call of the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    /// The response's text; only on the first action of a batch.
    #[serde(default)]
    pub thought: Vec<Content>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub thinking_blocks: Vec<Value>,
    #[serde(default)]
    pub responses_reasoning_item: Option<Value>,
    /// The validated action (`{…,"kind":"TerminalAction"}`); absent when the
    /// call could not be turned into one (unknown tool, invalid arguments).
    #[serde(default)]
    pub action: Option<Value>,
    pub tool_name: String,
    pub tool_call_id: String,
    pub tool_call: MessageToolCall,
    /// Groups the parallel calls of one response.
    pub llm_response_id: String,
    #[serde(default)]
    pub security_risk: SecurityRisk,
    #[serde(default)]
    pub critic_result: Option<Value>,
    #[serde(default)]
    pub summary: Option<String>,
}

/// `ObservationEvent`: a tool's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationEvent {
    pub tool_name: String,
    pub tool_call_id: String,
    /// The tool's observation object (`content`, `is_error`, …, `kind`).
    pub observation: Value,
    pub action_id: String,
    #[serde(default)]
    pub extended_content: Vec<Content>,
}

/// `AgentErrorEvent`: an error the model sees as the tool result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentErrorEvent {
    pub tool_name: String,
    pub tool_call_id: String,
    pub error: String,
    #[serde(default)]
    pub classification: Option<ErrorClassification>,
}

/// `UserRejectObservation`: an action rejected by the user or a hook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRejectObservation {
    pub tool_name: String,
    pub tool_call_id: String,
    #[serde(default = "default_rejection_reason")]
    pub rejection_reason: String,
    /// `user` or `hook`.
    #[serde(default = "default_rejection_source")]
    pub rejection_source: String,
    pub action_id: String,
}

fn default_rejection_reason() -> String {
    "User rejected the action".to_string()
}

fn default_rejection_source() -> String {
    "user".to_string()
}

/// `ConversationErrorEvent`: a fatal conversation-level error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationErrorEvent {
    pub code: String,
    pub detail: String,
    #[serde(default)]
    pub classification: Option<ErrorClassification>,
}

/// `ConversationStateUpdateEvent`: one state field changed, or the whole
/// state (`key:"full_state"`, never persisted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationStateUpdateEvent {
    pub key: String,
    /// Untyped: nulls inside are kept even in the compact form.
    #[serde(default)]
    pub value: Value,
}

/// `Condensation`: events forgotten from the LLM view, with their summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condensation {
    pub forgotten_event_ids: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub summary_offset: Option<u64>,
    #[serde(default)]
    pub llm_response_id: Option<String>,
}

/// `CondensationSummaryEvent`: synthesised in the LLM view, never stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CondensationSummaryEvent {
    pub summary: String,
}

/// `SecurityAnalysisEvent`: risks the analyzer assigned to a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityAnalysisEvent {
    pub analyzer: String,
    pub policy: String,
    /// action id → risk.
    pub risks: Map<String, Value>,
    /// action id → details (untyped).
    #[serde(default)]
    pub details: Map<String, Value>,
}

/// `LLMCompletionLogEvent`: a raw request/response log when `log_completions` is on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmCompletionLogEvent {
    pub filename: String,
    pub log_data: String,
    #[serde(default = "default_unknown")]
    pub model_name: String,
    #[serde(default = "default_usage_id")]
    pub usage_id: String,
}

fn default_unknown() -> String {
    "unknown".to_string()
}

fn default_usage_id() -> String {
    "default".to_string()
}

/// `StreamingDeltaEvent`: a token delta; WebSocket only, never stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamingDeltaEvent {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
}

/// `ServerErrorEvent`: an error handling a client frame; sent to that socket only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerErrorEvent {
    pub code: String,
    pub detail: String,
}

/// The kind-specific part of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventBody {
    SystemPrompt(SystemPromptEvent),
    Message(MessageEvent),
    Action(ActionEvent),
    Observation(ObservationEvent),
    AgentError(AgentErrorEvent),
    UserReject(UserRejectObservation),
    Pause,
    Interrupt,
    ConversationError(ConversationErrorEvent),
    StateUpdate(ConversationStateUpdateEvent),
    Condensation(Condensation),
    CondensationRequest,
    CondensationSummary(CondensationSummaryEvent),
    SecurityAnalysis(SecurityAnalysisEvent),
    LlmCompletionLog(LlmCompletionLogEvent),
    StreamingDelta(StreamingDeltaEvent),
    ServerError(ServerErrorEvent),
    /// A kind we do not model (`TokenEvent`, `HookExecutionEvent`, …): its
    /// fields in their original order, without the envelope and `kind`.
    Other {
        kind: String,
        fields: Map<String, Value>,
    },
}

impl EventBody {
    /// The `kind` discriminator.
    pub fn kind(&self) -> &str {
        match self {
            EventBody::SystemPrompt(_) => "SystemPromptEvent",
            EventBody::Message(_) => "MessageEvent",
            EventBody::Action(_) => "ActionEvent",
            EventBody::Observation(_) => "ObservationEvent",
            EventBody::AgentError(_) => "AgentErrorEvent",
            EventBody::UserReject(_) => "UserRejectObservation",
            EventBody::Pause => "PauseEvent",
            EventBody::Interrupt => "InterruptEvent",
            EventBody::ConversationError(_) => "ConversationErrorEvent",
            EventBody::StateUpdate(_) => "ConversationStateUpdateEvent",
            EventBody::Condensation(_) => "Condensation",
            EventBody::CondensationRequest => "CondensationRequest",
            EventBody::CondensationSummary(_) => "CondensationSummaryEvent",
            EventBody::SecurityAnalysis(_) => "SecurityAnalysisEvent",
            EventBody::LlmCompletionLog(_) => "LLMCompletionLogEvent",
            EventBody::StreamingDelta(_) => "StreamingDeltaEvent",
            EventBody::ServerError(_) => "ServerErrorEvent",
            EventBody::Other { kind, .. } => kind,
        }
    }

    /// The source an event of this kind gets by default (events.md §3).
    pub fn default_source(&self) -> Source {
        match self {
            EventBody::SystemPrompt(_)
            | EventBody::Action(_)
            | EventBody::AgentError(_)
            | EventBody::StreamingDelta(_) => Source::Agent,
            EventBody::Pause | EventBody::Interrupt => Source::User,
            EventBody::Message(_) => Source::User,
            _ => Source::Environment,
        }
    }

    /// Whether this kind is written to the event log (events.md §2). Not
    /// persisted: `full_state` snapshots, streaming deltas, server errors and
    /// condensation summaries.
    pub fn is_persisted(&self) -> bool {
        match self {
            EventBody::StateUpdate(u) => u.key != "full_state",
            EventBody::StreamingDelta(_)
            | EventBody::ServerError(_)
            | EventBody::CondensationSummary(_) => false,
            _ => true,
        }
    }

    fn fields(&self) -> Result<Map<String, Value>, serde_json::Error> {
        fn obj<T: Serialize>(t: &T) -> Result<Map<String, Value>, serde_json::Error> {
            match serde_json::to_value(t)? {
                Value::Object(m) => Ok(m),
                _ => Ok(Map::new()),
            }
        }
        match self {
            EventBody::SystemPrompt(b) => obj(b),
            EventBody::Message(b) => obj(b),
            EventBody::Action(b) => obj(b),
            EventBody::Observation(b) => obj(b),
            EventBody::AgentError(b) => obj(b),
            EventBody::UserReject(b) => obj(b),
            EventBody::Pause | EventBody::Interrupt | EventBody::CondensationRequest => {
                Ok(Map::new())
            }
            EventBody::ConversationError(b) => obj(b),
            EventBody::StateUpdate(b) => obj(b),
            EventBody::Condensation(b) => obj(b),
            EventBody::CondensationSummary(b) => obj(b),
            EventBody::SecurityAnalysis(b) => obj(b),
            EventBody::LlmCompletionLog(b) => obj(b),
            EventBody::StreamingDelta(b) => obj(b),
            EventBody::ServerError(b) => obj(b),
            EventBody::Other { fields, .. } => Ok(fields.clone()),
        }
    }

    fn from_fields(kind: &str, fields: Map<String, Value>) -> Result<Self, serde_json::Error> {
        fn typed<T: for<'de> Deserialize<'de>>(
            fields: Map<String, Value>,
        ) -> Result<T, serde_json::Error> {
            serde_json::from_value(Value::Object(fields))
        }
        Ok(match kind {
            "SystemPromptEvent" => EventBody::SystemPrompt(typed(fields)?),
            "MessageEvent" => EventBody::Message(typed(fields)?),
            "ActionEvent" => EventBody::Action(typed(fields)?),
            "ObservationEvent" => EventBody::Observation(typed(fields)?),
            "AgentErrorEvent" => EventBody::AgentError(typed(fields)?),
            "UserRejectObservation" => EventBody::UserReject(typed(fields)?),
            "PauseEvent" if fields.is_empty() => EventBody::Pause,
            "InterruptEvent" if fields.is_empty() => EventBody::Interrupt,
            "ConversationErrorEvent" => EventBody::ConversationError(typed(fields)?),
            "ConversationStateUpdateEvent" => EventBody::StateUpdate(typed(fields)?),
            "Condensation" => EventBody::Condensation(typed(fields)?),
            "CondensationRequest" if fields.is_empty() => EventBody::CondensationRequest,
            "CondensationSummaryEvent" => EventBody::CondensationSummary(typed(fields)?),
            "SecurityAnalysisEvent" => EventBody::SecurityAnalysis(typed(fields)?),
            "LLMCompletionLogEvent" => EventBody::LlmCompletionLog(typed(fields)?),
            "StreamingDeltaEvent" => EventBody::StreamingDelta(typed(fields)?),
            "ServerErrorEvent" => EventBody::ServerError(typed(fields)?),
            other => EventBody::Other {
                kind: other.to_string(),
                fields,
            },
        })
    }
}

/// One event: envelope plus body.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// A dashed UUID4 unless derived (`<condensation id>-summary`).
    pub id: String,
    /// Naive ISO-8601, microseconds, UTC (DECISIONS.md).
    pub timestamp: String,
    pub source: Source,
    /// The conversation-tree parent; set by the event pipeline when appended.
    pub parent_id: Option<String>,
    pub body: EventBody,
}

impl Event {
    /// A new event with a fresh id, the current time and the kind's default source.
    pub fn new(body: EventBody) -> Self {
        let source = body.default_source();
        Self::with_source(source, body)
    }

    /// A new event with an explicit source.
    pub fn with_source(source: Source, body: EventBody) -> Self {
        Event {
            id: ids::new_event_id(),
            timestamp: time::event_timestamp(time::now()),
            source,
            parent_id: None,
            body,
        }
    }

    /// The `kind` discriminator.
    pub fn kind(&self) -> &str {
        self.body.kind()
    }

    /// The full JSON form: nulls included, `kind` last.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(self.id.clone()));
        map.insert("timestamp".into(), Value::String(self.timestamp.clone()));
        map.insert("source".into(), Value::String(self.source.as_str().into()));
        map.insert(
            "parent_id".into(),
            self.parent_id
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        // Serialising our own types cannot fail (no maps with non-string keys).
        if let Ok(fields) = self.body.fields() {
            for (k, v) in fields {
                map.insert(k, v);
            }
        }
        map.insert("kind".into(), Value::String(self.kind().to_string()));
        Value::Object(map)
    }

    /// Reads an event in either form. Unknown kinds become
    /// [`EventBody::Other`]; a known kind whose fields do not fit is kept as
    /// `Other` too, so nothing stored is ever refused.
    pub fn from_json(value: Value) -> Result<Event, String> {
        let Value::Object(mut map) = value else {
            return Err("event must be a JSON object".into());
        };
        let kind = match map.remove("kind") {
            Some(Value::String(k)) => k,
            _ => return Err("event has no kind".into()),
        };
        let id = match map.remove("id") {
            Some(Value::String(s)) => s,
            _ => return Err("event has no id".into()),
        };
        let timestamp = match map.remove("timestamp") {
            Some(Value::String(s)) => s,
            _ => return Err("event has no timestamp".into()),
        };
        let source = map
            .remove("source")
            .and_then(|s| serde_json::from_value::<Source>(s).ok())
            .ok_or_else(|| "event has no valid source".to_string())?;
        let parent_id = match map.remove("parent_id") {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let body = EventBody::from_fields(&kind, map.clone())
            .unwrap_or(EventBody::Other { kind, fields: map });
        Ok(Event {
            id,
            timestamp,
            source,
            parent_id,
            body,
        })
    }
}

/// The fully-qualified Python class name of an event kind (event search
/// accepts it as well as the bare class name).
pub fn python_qualified_name(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "ServerErrorEvent" => "openhands.agent_server.models.ServerErrorEvent",
        "ACPToolCallEvent" => "openhands.sdk.event.acp_tool_call.ACPToolCallEvent",
        "Condensation" => "openhands.sdk.event.condenser.Condensation",
        "CondensationRequest" => "openhands.sdk.event.condenser.CondensationRequest",
        "CondensationSummaryEvent" => "openhands.sdk.event.condenser.CondensationSummaryEvent",
        "ConversationErrorEvent" => "openhands.sdk.event.conversation_error.ConversationErrorEvent",
        "ConversationStateUpdateEvent" => {
            "openhands.sdk.event.conversation_state.ConversationStateUpdateEvent"
        }
        "HookExecutionEvent" => "openhands.sdk.event.hook_execution.HookExecutionEvent",
        "LLMCompletionLogEvent" => "openhands.sdk.event.llm_completion_log.LLMCompletionLogEvent",
        "ActionEvent" => "openhands.sdk.event.llm_convertible.action.ActionEvent",
        "MessageEvent" => "openhands.sdk.event.llm_convertible.message.MessageEvent",
        "AgentErrorEvent" => "openhands.sdk.event.llm_convertible.observation.AgentErrorEvent",
        "ObservationEvent" => "openhands.sdk.event.llm_convertible.observation.ObservationEvent",
        "UserRejectObservation" => {
            "openhands.sdk.event.llm_convertible.observation.UserRejectObservation"
        }
        "SystemPromptEvent" => "openhands.sdk.event.llm_convertible.system.SystemPromptEvent",
        "SecurityAnalysisEvent" => "openhands.sdk.event.security.SecurityAnalysisEvent",
        "StreamingDeltaEvent" => "openhands.sdk.event.streaming_delta.StreamingDeltaEvent",
        "TokenEvent" => "openhands.sdk.event.token.TokenEvent",
        "InterruptEvent" => "openhands.sdk.event.user_action.InterruptEvent",
        "PauseEvent" => "openhands.sdk.event.user_action.PauseEvent",
        _ => return None,
    })
}

/// Top-level keys of a kind whose values are untyped: their inner nulls are
/// kept in the compact form, as pydantic keeps them for `Any`/`dict` fields.
fn opaque_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "ConversationStateUpdateEvent" => &["value"],
        "SecurityAnalysisEvent" => &["details"],
        "HookExecutionEvent" => &["hook_input"],
        "ACPToolCallEvent" => &["raw_input", "raw_output", "content"],
        _ => &[],
    }
}

fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let v = if k == "metadata" && map.contains_key("score") {
                        // CriticResult.metadata is an untyped dict.
                        v.clone()
                    } else {
                        strip_nulls(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// The compact form of an event in full form: nulls omitted (except inside
/// untyped fields), key order kept.
pub fn compact(full: &Value) -> Value {
    let Value::Object(map) = full else {
        return full.clone();
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let opaque = opaque_keys(kind);
    Value::Object(
        map.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let v = if opaque.contains(&k.as_str()) {
                    v.clone()
                } else {
                    strip_nulls(v)
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_event() -> Event {
        let mut e = Event::new(EventBody::Message(MessageEvent {
            llm_message: Message::user("Please create hello.txt"),
            llm_response_id: None,
            activated_skills: vec![],
            extended_content: vec![],
            sender: None,
            critic_result: None,
        }));
        e.id = "e5b21e5c-0000-4000-8000-000000000000".into();
        e.timestamp = "2026-11-25T00:40:06.397707".into();
        e.parent_id = Some("03ff0615-0000-4000-8000-000000000000".into());
        e
    }

    #[test]
    fn full_and_compact_forms_match_the_python_server() {
        let e = message_event();
        let full = e.to_json();
        assert_eq!(
            full.to_string(),
            r#"{"id":"e5b21e5c-0000-4000-8000-000000000000","timestamp":"2026-11-25T00:40:06.397707","source":"user","parent_id":"03ff0615-0000-4000-8000-000000000000","llm_message":{"role":"user","content":[{"cache_prompt":false,"type":"text","text":"Please create hello.txt"}],"tool_calls":null,"tool_call_id":null,"name":null,"reasoning_content":null,"thinking_blocks":[],"responses_reasoning_item":null},"llm_response_id":null,"activated_skills":[],"extended_content":[],"sender":null,"critic_result":null,"kind":"MessageEvent"}"#
        );
        assert_eq!(
            compact(&full).to_string(),
            r#"{"id":"e5b21e5c-0000-4000-8000-000000000000","timestamp":"2026-11-25T00:40:06.397707","source":"user","parent_id":"03ff0615-0000-4000-8000-000000000000","llm_message":{"role":"user","content":[{"cache_prompt":false,"type":"text","text":"Please create hello.txt"}],"thinking_blocks":[]},"activated_skills":[],"extended_content":[],"kind":"MessageEvent"}"#
        );
        assert_eq!(Event::from_json(full).unwrap(), e);
    }

    #[test]
    fn state_update_values_keep_inner_nulls() {
        let mut e = Event::new(EventBody::StateUpdate(ConversationStateUpdateEvent {
            key: "stats".into(),
            value: serde_json::json!({"usage_to_metrics":{"agent":{"max_budget_per_task":null}}}),
        }));
        e.parent_id = None;
        let c = compact(&e.to_json());
        assert!(c.get("parent_id").is_none());
        assert_eq!(
            c["value"]["usage_to_metrics"]["agent"]["max_budget_per_task"],
            Value::Null
        );
        assert!(c["value"]["usage_to_metrics"]["agent"]
            .as_object()
            .unwrap()
            .contains_key("max_budget_per_task"));
        let keys: Vec<_> = c.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.last().unwrap(), "kind");
    }

    #[test]
    fn unknown_kinds_and_odd_shapes_round_trip() {
        let raw = serde_json::json!({"id":"x","timestamp":"2026-11-25T00:40:06","source":"hook","parent_id":null,
            "hook_event_type":"PreToolUse","hook_input":{"a":null},"success":true,"kind":"HookExecutionEvent"});
        let e = Event::from_json(raw.clone()).unwrap();
        assert_eq!(e.kind(), "HookExecutionEvent");
        assert_eq!(e.to_json(), raw);
        assert_eq!(compact(&raw)["hook_input"]["a"], Value::Null);
        // A known kind with fields that do not fit is kept, not refused.
        let odd = serde_json::json!({"id":"y","timestamp":"t","source":"agent","parent_id":"p","tool_name":7,"kind":"ActionEvent"});
        let e = Event::from_json(odd.clone()).unwrap();
        assert!(matches!(e.body, EventBody::Other { .. }));
        assert_eq!(e.to_json(), odd);
        assert!(Event::from_json(serde_json::json!({"id":"z"})).is_err());
    }

    #[test]
    fn pause_event_has_only_the_envelope() {
        let mut e = Event::new(EventBody::Pause);
        e.id = "3b7ce7e4".into();
        e.timestamp = "2026-11-25T00:41:15.988238".into();
        e.parent_id = Some("da2dc4c9".into());
        assert_eq!(
            compact(&e.to_json()).to_string(),
            r#"{"id":"3b7ce7e4","timestamp":"2026-11-25T00:41:15.988238","source":"user","parent_id":"da2dc4c9","kind":"PauseEvent"}"#
        );
        assert!(EventBody::Pause.is_persisted());
        assert!(!EventBody::StreamingDelta(StreamingDeltaEvent {
            content: None,
            reasoning_content: None
        })
        .is_persisted());
    }
}
