//! OpenAI Chat Completions: request shape, reply parsing, stream decoding.
//!
//! Messages follow the SDK's `Message.to_chat_dict`: list content
//! `[{"type":"text","text":…}]` (a plain string for models that need it),
//! assistant tool-call turns without `content` when there is no text, tool
//! results `{"content":[…],"role":"tool","tool_call_id":…,"name":…}`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use super::error::LlmError;
use super::features::{Features, ThinkingMode};
use super::route::Route;
use super::sse::SseEvent;
use super::{count, num, put, pyjson, tool_text, unsupported_param, CompletionRequest};
use super::{Body, TOOL_TEXT_LIMIT};
use super::{Parsed, RawUsage, StreamDelta, ToolSchema};
use crate::api::llm_config::LlmConfig;
use crate::api::message::{Content, Message, MessageToolCall, Role, ToolCallOrigin};

/// How messages are serialised for one model.
#[derive(Clone, Copy, Debug)]
pub struct ChatStyle {
    /// Keep image parts.
    pub vision: bool,
    /// Plain-string content instead of part lists.
    pub force_string: bool,
    /// Echo `reasoning_content` on assistant messages.
    pub send_reasoning_content: bool,
}

/// A tool in Chat Completions form.
pub fn tool_json(tool: &ToolSchema) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        }
    })
}

fn role_str(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::System => "system",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// The `cache_control` marker.
struct Ephemeral;

impl Serialize for Ephemeral {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("type", "ephemeral")?;
        m.end()
    }
}

/// A tool result's text as sent: cut to the SDK's limit (borrowed when it
/// fits, which a byte length within the limit guarantees).
fn tool_text_of(text: &str) -> Cow<'_, str> {
    if text.len() <= TOOL_TEXT_LIMIT {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(tool_text(text))
    }
}

/// One content part.
enum Part<'a> {
    Text { text: Cow<'a, str>, cache: bool },
    Image { url: &'a str, cache: bool },
}

impl Serialize for Part<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let cache = match self {
            Part::Text { text, cache } => {
                m.serialize_entry("type", "text")?;
                m.serialize_entry("text", text)?;
                cache
            }
            Part::Image { url, cache } => {
                m.serialize_entry("type", "image_url")?;
                m.serialize_entry("image_url", &ImageUrl(url))?;
                cache
            }
        };
        if *cache {
            m.serialize_entry("cache_control", &Ephemeral)?;
        }
        m.end()
    }
}

struct ImageUrl<'a>(&'a str);

impl Serialize for ImageUrl<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("url", self.0)?;
        m.end()
    }
}

/// A message's `content`: a string or a part list.
enum ChatContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
}

impl Serialize for ChatContent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ChatContent::Text(t) => s.serialize_str(t),
            ChatContent::Parts(p) => p.serialize(s),
        }
    }
}

struct ToolCallOut<'a>(&'a MessageToolCall);

impl Serialize for ToolCallOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("id", &self.0.id)?;
        m.serialize_entry("type", "function")?;
        m.serialize_entry("function", &FunctionOut(self.0))?;
        m.end()
    }
}

struct FunctionOut<'a>(&'a MessageToolCall);

impl Serialize for FunctionOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("name", &self.0.name)?;
        m.serialize_entry("arguments", &self.0.arguments)?;
        m.end()
    }
}

/// One message in Chat Completions form (the SDK's `to_chat_dict`),
/// borrowing from the history and serialised directly: the request is
/// written without an intermediate `serde_json::Value` tree, whose cost
/// grows with the history.
pub struct ChatMessage<'a> {
    content: Option<ChatContent<'a>>,
    role: &'static str,
    cache_control: bool,
    thinking_blocks: &'a [Value],
    tool_calls: &'a [MessageToolCall],
    /// `tool_call_id` and `name` of a tool result.
    tool_result: Option<(&'a str, &'a str)>,
    reasoning_content: Option<&'a str>,
}

impl<'a> ChatMessage<'a> {
    /// `message` as `style` renders it.
    pub fn new(message: &'a Message, style: ChatStyle) -> ChatMessage<'a> {
        let is_tool = message.role == Role::Tool;
        let is_assistant = message.role == Role::Assistant;
        let mut cache_control = false;
        let mut thinking_blocks: &[Value] = &[];
        let content = if style.force_string {
            let text = message
                .content
                .iter()
                .filter_map(Content::as_text)
                .collect::<Vec<_>>()
                .join("\n");
            let text = if is_tool { tool_text(&text) } else { text };
            ChatContent::Text(Cow::Owned(text))
        } else {
            let mut parts = Vec::with_capacity(message.content.len());
            for part in &message.content {
                match part {
                    Content::Text(t) => {
                        let text = if is_tool {
                            tool_text_of(&t.text)
                        } else {
                            Cow::Borrowed(t.text.as_str())
                        };
                        // Tool messages carry the marker on the message itself (LiteLLM #6422).
                        cache_control |= is_tool && t.cache_prompt;
                        parts.push(Part::Text {
                            text,
                            cache: t.cache_prompt && !is_tool,
                        });
                    }
                    Content::Image(img) => {
                        cache_control |= is_tool && img.cache_prompt;
                        if !style.vision {
                            continue;
                        }
                        let n = img.image_urls.len();
                        parts.extend(img.image_urls.iter().enumerate().map(|(i, url)| {
                            Part::Image {
                                url,
                                cache: img.cache_prompt && !is_tool && i + 1 == n,
                            }
                        }));
                    }
                }
            }
            if is_assistant {
                thinking_blocks = &message.thinking_blocks;
            }
            ChatContent::Parts(parts)
        };
        let tool_calls: &[MessageToolCall] = if is_assistant {
            message.tool_calls.as_deref().unwrap_or_default()
        } else {
            &[]
        };
        let content = if !tool_calls.is_empty() {
            without_empty_text(content)
        } else if is_assistant && matches!(&content, ChatContent::Parts(p) if p.is_empty()) {
            Some(ChatContent::Text(Cow::Borrowed("")))
        } else {
            Some(content)
        };
        ChatMessage {
            content,
            role: role_str(message.role),
            cache_control,
            thinking_blocks,
            tool_calls,
            tool_result: match (is_tool, &message.tool_call_id) {
                (true, Some(id)) => Some((id, message.name.as_deref().unwrap_or_default())),
                _ => None,
            },
            reasoning_content: message
                .reasoning_content
                .as_deref()
                .filter(|r| style.send_reasoning_content && !r.is_empty()),
        }
    }
}

impl Serialize for ChatMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(c) = &self.content {
            m.serialize_entry("content", c)?;
        }
        m.serialize_entry("role", self.role)?;
        if self.cache_control {
            m.serialize_entry("cache_control", &Ephemeral)?;
        }
        if !self.thinking_blocks.is_empty() {
            m.serialize_entry("thinking_blocks", self.thinking_blocks)?;
        }
        if !self.tool_calls.is_empty() {
            let calls: Vec<ToolCallOut<'_>> = self.tool_calls.iter().map(ToolCallOut).collect();
            m.serialize_entry("tool_calls", &calls)?;
        }
        if let Some((id, name)) = self.tool_result {
            m.serialize_entry("tool_call_id", id)?;
            m.serialize_entry("name", name)?;
        }
        if let Some(r) = self.reasoning_content {
            m.serialize_entry("reasoning_content", r)?;
        }
        m.end()
    }
}

/// The SDK's `_remove_content_if_empty` for assistant tool-call turns:
/// blank text parts go, and the content with them when nothing is left.
fn without_empty_text(content: ChatContent<'_>) -> Option<ChatContent<'_>> {
    match content {
        ChatContent::Text(t) if t.trim().is_empty() => None,
        ChatContent::Parts(mut parts) => {
            parts.retain(|p| !matches!(p, Part::Text { text, .. } if text.trim().is_empty()));
            (!parts.is_empty()).then_some(ChatContent::Parts(parts))
        }
        other => Some(other),
    }
}

/// The messages of a request, written as one JSON array.
pub(crate) fn messages_bytes(
    messages: &[Message],
    style: ChatStyle,
) -> serde_json::Result<Vec<u8>> {
    let rendered: Vec<ChatMessage<'_>> = messages
        .iter()
        .map(|m| ChatMessage::new(m, style))
        .collect();
    serde_json::to_vec(&rendered)
}

/// Whether an OpenAI-compatible provider takes `top_k`.
fn takes_top_k(provider: &str) -> bool {
    matches!(
        provider,
        "openrouter"
            | "ollama"
            | "litellm_proxy"
            | "openhands"
            | "hosted_vllm"
            | "lm_studio"
            | "together_ai"
            | "fireworks_ai"
            | "custom"
    )
}

/// The request body (without `litellm_extra_body`); the messages are
/// written ahead ([`Body::written`]).
pub(crate) fn build_body(
    config: &LlmConfig,
    route: &Route,
    f: &Features,
    request: &CompletionRequest,
    messages: &[Message],
) -> Result<Body, LlmError> {
    let style = ChatStyle {
        vision: f.vision,
        force_string: f.force_string_serializer,
        send_reasoning_content: f.send_reasoning_content,
    };
    let written = messages_bytes(messages, style)
        .map_err(|e| LlmError::bad_request(format!("request not serialisable: {e}")))?;
    let mut body = Map::new();
    // Holds the key's place; the written bytes replace it.
    body.insert("messages".into(), Value::Null);
    body.insert("model".into(), route.model.clone().into());
    let thinking = f.thinking == ThinkingMode::Manual
        && config.extended_thinking_budget.unwrap_or(0) > 0
        && f.max_output_tokens.is_some();
    if f.sampling_params && !thinking {
        put(&mut body, "temperature", num(config.temperature));
        put(&mut body, "top_p", num(config.top_p));
        if takes_top_k(route.provider) {
            put(&mut body, "top_k", num(config.top_k));
        } else {
            unsupported_param(config, route, "top_k", config.top_k.is_some())?;
        }
    }
    if let Some(max) = f.max_output_tokens {
        let key = if route.provider == "azure" {
            "max_tokens"
        } else {
            "max_completion_tokens"
        };
        body.insert(key.into(), max.into());
    }
    if f.reasoning_effort {
        put(
            &mut body,
            "reasoning_effort",
            config.reasoning_effort.clone().map(Value::String),
        );
    }
    if thinking {
        if let (Some(budget), Some(max)) = (config.extended_thinking_budget, f.max_output_tokens) {
            body.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget.min(max.saturating_sub(1))}),
            );
            body.insert("max_tokens".into(), max.into());
        }
    }
    put(&mut body, "seed", config.seed.map(Value::from));
    if f.prompt_cache_key {
        put(
            &mut body,
            "prompt_cache_key",
            request.prompt_cache_key.clone().map(Value::String),
        );
    }
    if f.prompt_cache_retention {
        put(
            &mut body,
            "prompt_cache_retention",
            config.prompt_cache_retention.clone().map(Value::String),
        );
    }
    if request.stream {
        body.insert("stream".into(), true.into());
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !request.tools.is_empty() {
        body.insert(
            "tools".into(),
            request.tools.iter().map(tool_json).collect(),
        );
    }
    Ok(Body::with_written(body, "messages", written))
}

fn usage_from(v: Option<&Value>) -> RawUsage {
    let Some(u) = v else {
        return RawUsage::default();
    };
    let cache_write = count(u.pointer("/prompt_tokens_details/cache_creation_tokens"))
        .max(count(u.get("cache_creation_input_tokens")));
    RawUsage {
        prompt: count(u.get("prompt_tokens")),
        completion: count(u.get("completion_tokens")),
        cache_read: count(u.pointer("/prompt_tokens_details/cached_tokens")),
        cache_write,
        reasoning: count(u.pointer("/completion_tokens_details/reasoning_tokens")),
    }
}

fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => pyjson::dumps(other),
    }
}

fn reasoning_of(v: &Value) -> Option<&str> {
    v.get("reasoning_content")
        .or_else(|| v.get("reasoning"))
        .and_then(Value::as_str)
}

/// An error object a gateway put inside a 200 body.
fn embedded_error(route: &Route, body: &Value) -> Option<LlmError> {
    let err = body.get("error").filter(|e| !e.is_null())?;
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| err.to_string());
    let code = err
        .get("code")
        .map(|c| {
            c.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| c.to_string())
        })
        .or_else(|| err.get("type").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let status = code.parse::<u16>().ok();
    Some(match status {
        Some(s) if (400..600).contains(&s) => {
            LlmError::from_status(route.label, s, &err.to_string(), None)
        }
        _ => LlmError::from_stream_error(route.label, &code, &message),
    })
}

/// Parses a non-streamed reply.
pub(crate) fn parse_response(route: &Route, body: &Value) -> Result<Parsed, LlmError> {
    let choice = body
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let Some(choice) = choice else {
        if let Some(err) = embedded_error(route, body) {
            return Err(err);
        }
        return Err(LlmError::no_response(format!(
            "Response choices is less than 1. Response: {}",
            truncate_for_error(body)
        )));
    };
    let msg = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut message = Message::assistant(Vec::new());
    if let Some(text) = msg.get("content").and_then(Value::as_str) {
        message.content.push(Content::text(text));
    }
    message.reasoning_content = reasoning_of(&msg).map(str::to_string);
    if let Some(blocks) = msg.get("thinking_blocks").and_then(Value::as_array) {
        message.thinking_blocks = blocks.clone();
    }
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        let mut out = Vec::new();
        for call in calls {
            let kind = call
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("function");
            if kind != "function" {
                continue;
            }
            let function = call.get("function").cloned().unwrap_or(Value::Null);
            out.push(MessageToolCall {
                id: call
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                responses_item_id: None,
                name: function
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                arguments: arguments_text(function.get("arguments")),
                origin: ToolCallOrigin::Completion,
            });
        }
        if out.is_empty() && !calls.is_empty() {
            return Err(LlmError::no_response(
                "LLM returned tool calls but none are of type 'function'",
            ));
        }
        if !out.is_empty() {
            message.tool_calls = Some(out);
        }
    }
    Ok(Parsed {
        id: body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        message,
        usage: usage_from(body.get("usage")),
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn truncate_for_error(body: &Value) -> String {
    body.to_string().chars().take(500).collect()
}

/// A tool call being assembled from chunks.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Accumulates a streamed reply.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// `[DONE]` was seen.
    pub done: bool,
    id: String,
    content: Option<String>,
    reasoning: Option<String>,
    calls: BTreeMap<u64, PartialCall>,
    thinking_blocks: Vec<Value>,
    usage: RawUsage,
    finish_reason: Option<String>,
    saw_choice: bool,
}

impl StreamState {
    /// Consumes one SSE event.
    pub(crate) fn feed(
        &mut self,
        route: &Route,
        event: &SseEvent,
        emit: &dyn Fn(StreamDelta),
    ) -> Result<(), LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            LlmError::no_response(format!("{} sent an invalid stream chunk: {e}", route.label))
        })?;
        if let Some(err) = embedded_error(route, &chunk) {
            return Err(err);
        }
        if self.id.is_empty() {
            if let Some(id) = chunk.get("id").and_then(Value::as_str) {
                self.id = id.to_string();
            }
        }
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = usage_from(Some(u));
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(());
        };
        self.saw_choice = true;
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        let Some(delta) = choice.get("delta") else {
            return Ok(());
        };
        if let Some(r) = reasoning_of(delta) {
            self.reasoning.get_or_insert_with(String::new).push_str(r);
            emit(StreamDelta::Reasoning(r.to_string()));
        }
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            self.content.get_or_insert_with(String::new).push_str(text);
            emit(StreamDelta::Content(text.to_string()));
        }
        if let Some(blocks) = delta.get("thinking_blocks").and_then(Value::as_array) {
            self.thinking_blocks.extend(blocks.iter().cloned());
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (pos, call) in calls.iter().enumerate() {
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(pos as u64);
                let entry = self.calls.entry(index).or_default();
                if let Some(id) = call
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    entry.id = id.to_string();
                }
                if let Some(function) = call.get("function") {
                    if let Some(name) = function.get("name").and_then(Value::as_str) {
                        if entry.name.is_empty() {
                            entry.name = name.to_string();
                        }
                    }
                    match function.get("arguments") {
                        Some(Value::String(piece)) => entry.arguments.push_str(piece),
                        Some(Value::Null) | None => {}
                        Some(other) => entry.arguments.push_str(&pyjson::dumps(other)),
                    }
                }
            }
        }
        Ok(())
    }

    /// The assembled reply.
    pub(crate) fn finish(self, route: &Route) -> Result<Parsed, LlmError> {
        if !self.saw_choice {
            return Err(LlmError::no_response(format!(
                "{} stream ended without any choices",
                route.label
            )));
        }
        let mut message = Message::assistant(Vec::new());
        if let Some(text) = self.content.filter(|t| !t.is_empty()) {
            message.content.push(Content::text(text));
        }
        message.reasoning_content = self.reasoning;
        message.thinking_blocks = self.thinking_blocks;
        let calls: Vec<MessageToolCall> = self
            .calls
            .into_values()
            .map(|c| MessageToolCall {
                id: c.id,
                responses_item_id: None,
                name: c.name,
                arguments: c.arguments,
                origin: ToolCallOrigin::Completion,
            })
            .collect();
        if !calls.is_empty() {
            message.tool_calls = Some(calls);
        }
        Ok(Parsed {
            id: self.id,
            message,
            usage: self.usage,
            finish_reason: self.finish_reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::message::TextContent;

    fn message_json(message: &Message, style: ChatStyle) -> Value {
        serde_json::to_value(ChatMessage::new(message, style)).unwrap()
    }

    const STYLE: ChatStyle = ChatStyle {
        vision: true,
        force_string: false,
        send_reasoning_content: false,
    };

    #[test]
    fn message_shapes_match_the_sdk() {
        let mut a = Message::assistant(vec![Content::text("  ")]);
        a.tool_calls = Some(vec![MessageToolCall {
            id: "call_1".into(),
            responses_item_id: None,
            name: "terminal".into(),
            arguments: "{\"command\": \"ls\"}".into(),
            origin: ToolCallOrigin::Completion,
        }]);
        assert_eq!(
            message_json(&a, STYLE).to_string(),
            r#"{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"terminal","arguments":"{\"command\": \"ls\"}"}}]}"#
        );
        let t = Message::tool(
            "call_1",
            "terminal",
            vec![Content::Text(TextContent {
                text: "out".into(),
                cache_prompt: true,
            })],
        );
        assert_eq!(
            message_json(&t, STYLE).to_string(),
            r#"{"content":[{"type":"text","text":"out"}],"role":"tool","cache_control":{"type":"ephemeral"},"tool_call_id":"call_1","name":"terminal"}"#
        );
        let empty = Message::assistant(vec![]);
        assert_eq!(
            message_json(&empty, STYLE).to_string(),
            r#"{"content":"","role":"assistant"}"#
        );
        let u = Message {
            content: vec![
                Content::text("look"),
                Content::image("data:image/png;base64,AA"),
            ],
            ..Message::user("")
        };
        let no_vision = ChatStyle {
            vision: false,
            ..STYLE
        };
        assert_eq!(
            message_json(&u, no_vision).to_string(),
            r#"{"content":[{"type":"text","text":"look"}],"role":"user"}"#
        );
        assert_eq!(
            message_json(&u, STYLE)["content"][1],
            json!({"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}})
        );
        let s = ChatStyle {
            force_string: true,
            send_reasoning_content: true,
            ..STYLE
        };
        let mut r = Message::assistant(vec![Content::text("a"), Content::text("b")]);
        r.reasoning_content = Some("why".into());
        assert_eq!(
            message_json(&r, s).to_string(),
            r#"{"content":"a\nb","role":"assistant","reasoning_content":"why"}"#
        );
    }

    fn cache_control() -> Value {
        json!({"type": "ephemeral"})
    }

    /// The previous rendering through a `Value` tree, kept as the reference
    /// the direct writer must match byte for byte.
    fn reference_json(message: &Message, style: ChatStyle) -> Value {
        let is_tool = message.role == Role::Tool;
        let mut out = Map::new();
        if style.force_string {
            let text = message
                .content
                .iter()
                .filter_map(Content::as_text)
                .collect::<Vec<_>>()
                .join("\n");
            let text = if is_tool { tool_text(&text) } else { text };
            out.insert("content".into(), Value::String(text));
            out.insert("role".into(), role_str(message.role).into());
        } else {
            let mut parts = Vec::new();
            let mut tool_cache = false;
            for part in &message.content {
                match part {
                    Content::Text(t) => {
                        let mut p = Map::new();
                        p.insert("type".into(), "text".into());
                        let text = if is_tool {
                            tool_text(&t.text)
                        } else {
                            t.text.clone()
                        };
                        p.insert("text".into(), text.into());
                        // Tool messages carry the marker on the message itself (LiteLLM #6422).
                        if t.cache_prompt {
                            if is_tool {
                                tool_cache = true;
                            } else {
                                p.insert("cache_control".into(), cache_control());
                            }
                        }
                        parts.push(Value::Object(p));
                    }
                    Content::Image(img) => {
                        if is_tool && img.cache_prompt {
                            tool_cache = true;
                        }
                        if !style.vision {
                            continue;
                        }
                        let n = img.image_urls.len();
                        for (i, url) in img.image_urls.iter().enumerate() {
                            let mut p = Map::new();
                            p.insert("type".into(), "image_url".into());
                            p.insert("image_url".into(), json!({"url": url}));
                            if img.cache_prompt && !is_tool && i + 1 == n {
                                p.insert("cache_control".into(), cache_control());
                            }
                            parts.push(Value::Object(p));
                        }
                    }
                }
            }
            out.insert("content".into(), Value::Array(parts));
            out.insert("role".into(), role_str(message.role).into());
            if tool_cache {
                out.insert("cache_control".into(), cache_control());
            }
            if message.role == Role::Assistant && !message.thinking_blocks.is_empty() {
                out.insert(
                    "thinking_blocks".into(),
                    Value::Array(message.thinking_blocks.clone()),
                );
            }
        }
        let tool_calls = message.tool_calls.as_deref().unwrap_or_default();
        if message.role == Role::Assistant && !tool_calls.is_empty() {
            out.insert(
                "tool_calls".into(),
                tool_calls
                    .iter()
                    .map(|tc| {
                        json!({
                            "id": tc.id,
                            "type": "function",
                            "function": {"name": tc.name, "arguments": tc.arguments},
                        })
                    })
                    .collect(),
            );
            drop_empty_content(&mut out);
        } else if message.role == Role::Assistant && out.get("content") == Some(&json!([])) {
            out.insert("content".into(), "".into());
        }
        if is_tool {
            if let Some(id) = &message.tool_call_id {
                out.insert("tool_call_id".into(), id.clone().into());
                out.insert(
                    "name".into(),
                    message.name.clone().unwrap_or_default().into(),
                );
            }
        }
        if style.send_reasoning_content {
            if let Some(r) = message
                .reasoning_content
                .as_deref()
                .filter(|r| !r.is_empty())
            {
                out.insert("reasoning_content".into(), r.into());
            }
        }
        Value::Object(out)
    }

    /// The SDK's `_remove_content_if_empty` for assistant tool-call turns.
    fn drop_empty_content(out: &mut Map<String, Value>) {
        let keep = match out.get_mut("content") {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Array(parts)) => {
                parts.retain(|p| {
                    p.get("type").and_then(Value::as_str) != Some("text")
                        || p.get("text")
                            .and_then(Value::as_str)
                            .is_some_and(|t| !t.trim().is_empty())
                });
                !parts.is_empty()
            }
            _ => true,
        };
        if !keep {
            out.shift_remove("content");
        }
    }

    #[test]
    fn direct_writing_matches_the_value_tree_byte_for_byte() {
        let call = |id: &str| MessageToolCall {
            id: id.into(),
            responses_item_id: None,
            name: "terminal".into(),
            arguments: "{\"command\": \"ls \\u00e9\"}".into(),
            origin: ToolCallOrigin::Completion,
        };
        let cached = |text: &str| {
            Content::Text(TextContent {
                text: text.into(),
                cache_prompt: true,
            })
        };
        let mut image = Content::image("data:image/png;base64,AA");
        if let Content::Image(i) = &mut image {
            i.image_urls.push("https://x/b.png".into());
            i.cache_prompt = true;
        }
        let mut with_calls =
            Message::assistant(vec![Content::text(" "), Content::text("é \"q\"\n")]);
        with_calls.tool_calls = Some(vec![call("a"), call("b")]);
        with_calls.thinking_blocks =
            vec![json!({"type": "thinking", "thinking": "t", "signature": "s"})];
        with_calls.reasoning_content = Some("because".into());
        let mut blank_calls = Message::assistant(vec![Content::text("  ")]);
        blank_calls.tool_calls = Some(vec![call("c")]);
        let mut empty_calls = Message::assistant(vec![]);
        empty_calls.tool_calls = Some(vec![]);
        let mut unnamed_tool = Message::tool("d", "x", vec![Content::text("r")]);
        unnamed_tool.name = None;
        let messages = vec![
            Message::system(vec![Content::text("sys")]),
            Message {
                content: vec![cached("static"), Content::text("dynamic")],
                ..Message::system(vec![])
            },
            Message {
                content: vec![Content::text("look"), image.clone(), cached("end")],
                ..Message::user("")
            },
            with_calls,
            blank_calls,
            empty_calls,
            Message::assistant(vec![]),
            Message::assistant(vec![image.clone()]),
            Message::tool("a", "terminal", vec![cached("out"), image]),
            Message::tool("b", "terminal", vec![Content::text("x".repeat(60_000))]),
            Message::tool("b", "terminal", vec![Content::text("é".repeat(30_000))]),
            unnamed_tool,
        ];
        for vision in [true, false] {
            for force_string in [true, false] {
                for send_reasoning_content in [true, false] {
                    let style = ChatStyle {
                        vision,
                        force_string,
                        send_reasoning_content,
                    };
                    let want: Vec<Value> =
                        messages.iter().map(|m| reference_json(m, style)).collect();
                    let want = serde_json::to_vec(&want).unwrap();
                    let got = messages_bytes(&messages, style).unwrap();
                    assert!(
                        got == want,
                        "{style:?}\n got: {}\nwant: {}",
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want)
                    );
                }
            }
        }
    }

    #[test]
    fn long_tool_text_is_truncated() {
        let long = "x".repeat(60_000);
        let t = Message::tool("c", "terminal", vec![Content::text(long)]);
        let text = message_json(&t, STYLE)["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(text.chars().count(), 50_000);
        assert!(text.contains("<response clipped>"));
    }
}
