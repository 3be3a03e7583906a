//! The Anthropic Messages API: request shape, reply parsing, stream decoding.
//!
//! Shaped as LiteLLM shapes it for the SDK: the leading system message
//! becomes `system` (a list of text blocks), consecutive user and tool
//! messages merge into one user turn (tool results as `tool_result` blocks),
//! consecutive assistant messages into one assistant turn (thinking blocks
//! first, then text, then `tool_use`), `cache_control` markers on the blocks
//! the caching pass flagged, tools as `{name, input_schema, type:"custom",
//! description}`.

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
use crate::api::message::{Content, ImageContent, Message, MessageToolCall, Role, ToolCallOrigin};

/// LiteLLM's placeholder for empty text, which Anthropic rejects.
const EMPTY_TEXT_PLACEHOLDER: &str =
    "[System: Empty message content sanitised to satisfy protocol]";
/// `max_tokens` is required; LiteLLM's default when the model is unknown.
const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

/// A tool in Anthropic form.
pub fn tool_json(tool: &ToolSchema) -> Value {
    json!({
        "name": tool.name,
        "input_schema": tool.parameters,
        "type": "custom",
        "description": tool.description,
    })
}

/// Anthropic ids must match `^[a-zA-Z0-9_-]+$`.
fn sanitize_id(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".to_string()
    } else {
        s
    }
}

/// One content block, borrowing from the history and serialised directly
/// (no intermediate `serde_json::Value` tree).
enum Block<'a> {
    Text {
        text: Cow<'a, str>,
        cache: bool,
    },
    Image {
        url: &'a str,
        cache: bool,
    },
    ToolResult {
        id: String,
        content: Vec<Block<'a>>,
        cache: bool,
    },
    /// A replayed thinking block.
    Stored(&'a Value),
    ToolUse {
        id: String,
        name: &'a str,
        input: Value,
    },
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

/// An image's `source`: base64 data from a data URL, else the URL.
struct Source<'a>(&'a str);

impl Serialize for Source<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0.strip_prefix("data:").and_then(|r| r.split_once(',')) {
            Some((meta, data)) if meta.ends_with(";base64") => {
                m.serialize_entry("type", "base64")?;
                m.serialize_entry("media_type", meta.trim_end_matches(";base64"))?;
                m.serialize_entry("data", data)?;
            }
            _ => {
                m.serialize_entry("type", "url")?;
                m.serialize_entry("url", self.0)?;
            }
        }
        m.end()
    }
}

impl Serialize for Block<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Block::Stored(v) = self {
            return v.serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        let cache = match self {
            Block::Text { text, cache } => {
                m.serialize_entry("type", "text")?;
                m.serialize_entry("text", text)?;
                *cache
            }
            Block::Image { url, cache } => {
                m.serialize_entry("type", "image")?;
                m.serialize_entry("source", &Source(url))?;
                *cache
            }
            Block::ToolResult { id, content, cache } => {
                m.serialize_entry("type", "tool_result")?;
                m.serialize_entry("tool_use_id", id)?;
                m.serialize_entry("content", content)?;
                *cache
            }
            Block::ToolUse { id, name, input } => {
                m.serialize_entry("type", "tool_use")?;
                m.serialize_entry("id", id)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("input", input)?;
                false
            }
            Block::Stored(_) => false,
        };
        if cache {
            m.serialize_entry("cache_control", &Ephemeral)?;
        }
        m.end()
    }
}

/// One turn of `messages`.
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

impl Serialize for Turn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("role", self.role)?;
        m.serialize_entry("content", &self.content)?;
        m.end()
    }
}

/// The image's blocks; `cache_last` marks the last one.
fn image_blocks<'a>(img: &'a ImageContent, cache_last: bool, out: &mut Vec<Block<'a>>) {
    let n = img.image_urls.len();
    out.extend(
        img.image_urls
            .iter()
            .enumerate()
            .map(|(i, url)| Block::Image {
                url,
                cache: cache_last && i + 1 == n,
            }),
    );
}

fn text_block(text: &str, cache: bool) -> Block<'_> {
    Block::Text {
        text: Cow::Borrowed(text),
        cache,
    }
}

fn user_blocks<'a>(m: &'a Message, vision: bool, out: &mut Vec<Block<'a>>) {
    let before = out.len();
    for c in &m.content {
        match c {
            Content::Text(t) => {
                let text = if t.text.trim().is_empty() {
                    EMPTY_TEXT_PLACEHOLDER
                } else {
                    &t.text
                };
                out.push(text_block(text, t.cache_prompt));
            }
            Content::Image(img) if vision => image_blocks(img, img.cache_prompt, out),
            Content::Image(_) => {}
        }
    }
    if out.len() == before {
        out.push(text_block(EMPTY_TEXT_PLACEHOLDER, false));
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

fn tool_result_block(m: &Message, vision: bool) -> Block<'_> {
    let mut content = Vec::new();
    let mut cache = false;
    for c in &m.content {
        match c {
            Content::Text(t) => {
                cache |= t.cache_prompt;
                content.push(Block::Text {
                    text: tool_text_of(&t.text),
                    cache: false,
                });
            }
            Content::Image(img) => {
                cache |= img.cache_prompt;
                if vision {
                    image_blocks(img, false, &mut content);
                }
            }
        }
    }
    Block::ToolResult {
        id: sanitize_id(m.tool_call_id.as_deref().unwrap_or_default()),
        content,
        cache,
    }
}

/// A thinking block without a signature cannot be replayed.
fn signable(block: &Value) -> bool {
    match block.get("type").and_then(Value::as_str) {
        Some("thinking") => block
            .get("signature")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty()),
        Some("redacted_thinking") => block.get("data").and_then(Value::as_str).is_some(),
        _ => false,
    }
}

fn assistant_blocks<'a>(m: &'a Message, out: &mut Vec<Block<'a>>, seen_ids: &mut Vec<String>) {
    out.extend(
        m.thinking_blocks
            .iter()
            .filter(|b| signable(b))
            .map(Block::Stored),
    );
    for c in &m.content {
        if let Content::Text(t) = c {
            if !t.text.is_empty() {
                out.push(text_block(&t.text, t.cache_prompt));
            }
        }
    }
    for tc in m.tool_calls.as_deref().unwrap_or_default() {
        let id = sanitize_id(&tc.id);
        if seen_ids.contains(&id) {
            continue;
        }
        seen_ids.push(id.clone());
        // History with malformed arguments (already reported to the model) is replayed as {}.
        let input = serde_json::from_str::<Value>(&tc.arguments)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        out.push(Block::ToolUse {
            id,
            name: &tc.name,
            input,
        });
    }
}

/// `system` blocks and the alternating `messages` for a conversation.
fn messages_json(messages: &[Message], vision: bool) -> (Vec<Block<'_>>, Vec<Turn<'_>>) {
    let mut system = Vec::new();
    let mut i = 0;
    while i < messages.len() && messages[i].role == Role::System {
        for c in &messages[i].content {
            if let Content::Text(t) = c {
                if !t.text.is_empty() {
                    system.push(text_block(&t.text, t.cache_prompt));
                }
            }
        }
        i += 1;
    }
    let mut out = Vec::new();
    let rest = &messages[i..];
    let mut j = 0;
    while j < rest.len() {
        let mut user = Vec::new();
        while j < rest.len() && matches!(rest[j].role, Role::User | Role::Tool | Role::System) {
            match rest[j].role {
                Role::Tool => user.push(tool_result_block(&rest[j], vision)),
                // A later system message stays in the conversation as user text.
                _ => user_blocks(&rest[j], vision, &mut user),
            }
            j += 1;
        }
        if !user.is_empty() {
            out.push(Turn {
                role: "user",
                content: user,
            });
        }
        let mut assistant = Vec::new();
        let mut seen_ids = Vec::new();
        while j < rest.len() && rest[j].role == Role::Assistant {
            assistant_blocks(&rest[j], &mut assistant, &mut seen_ids);
            j += 1;
        }
        if !assistant.is_empty() {
            out.push(Turn {
                role: "assistant",
                content: assistant,
            });
        } else if j > 0 && rest[j - 1].role == Role::Assistant {
            out.push(Turn {
                role: "assistant",
                content: vec![text_block(EMPTY_TEXT_PLACEHOLDER, false)],
            });
        }
    }
    (system, out)
}

/// LiteLLM's `reasoning_effort` → thinking budget table.
fn effort_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        "xhigh" => Some(8192),
        "max" => Some(16384),
        _ => None,
    }
}

fn thinking_param(
    config: &LlmConfig,
    f: &Features,
    max_tokens: u64,
    messages: &[Message],
) -> Option<Value> {
    let effort = config
        .reasoning_effort
        .as_deref()
        .filter(|e| !e.is_empty() && *e != "none");
    let param = match f.thinking {
        ThinkingMode::Manual => {
            let budget = config.extended_thinking_budget.filter(|b| *b > 0)?;
            f.max_output_tokens?;
            if max_tokens <= MIN_THINKING_BUDGET {
                return None;
            }
            json!({"type": "enabled", "budget_tokens": budget.min(max_tokens - 1)})
        }
        ThinkingMode::Adaptive => {
            effort?;
            json!({"type": "adaptive", "display": "summarized"})
        }
        ThinkingMode::Effort => {
            if max_tokens <= MIN_THINKING_BUDGET {
                return None;
            }
            let budget = effort_budget(effort?)?;
            json!({"type": "enabled", "budget_tokens": budget.min(max_tokens - 1)})
        }
        ThinkingMode::None => return None,
    };
    // Anthropic rejects thinking when a replayed tool-use turn has no
    // thinking block (a conversation begun without thinking): drop it then,
    // as LiteLLM does with modify_params.
    let assistants = || messages.iter().filter(|m| m.role == Role::Assistant);
    let has_tool_turn = assistants().any(|m| m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()));
    let any_thinking = assistants().any(|m| !m.thinking_blocks.is_empty());
    if has_tool_turn && !any_thinking {
        return None;
    }
    Some(param)
}

/// The request body (without `litellm_extra_body`).
pub(crate) fn build_body(
    config: &LlmConfig,
    route: &Route,
    f: &Features,
    request: &CompletionRequest,
    messages: &[Message],
) -> Result<Body, LlmError> {
    let (system, msgs) = messages_json(messages, f.vision);
    let unserialisable =
        |e: serde_json::Error| LlmError::bad_request(format!("request not serialisable: {e}"));
    let written = serde_json::to_vec(&msgs).map_err(unserialisable)?;
    let max_tokens = f.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let thinking = thinking_param(config, f, max_tokens, messages);
    let mut body = Map::new();
    body.insert("model".into(), route.model.clone().into());
    // Holds the key's place; the written bytes replace it.
    body.insert("messages".into(), Value::Null);
    body.insert("max_tokens".into(), max_tokens.into());
    if !request.tools.is_empty() {
        body.insert(
            "tools".into(),
            request.tools.iter().map(tool_json).collect(),
        );
    }
    let sampling = f.sampling_params && thinking.is_none();
    put(&mut body, "thinking", thinking);
    if !system.is_empty() {
        body.insert(
            "system".into(),
            serde_json::to_value(&system).map_err(unserialisable)?,
        );
    }
    if sampling {
        put(&mut body, "temperature", num(config.temperature));
        put(&mut body, "top_p", num(config.top_p));
        put(&mut body, "top_k", num(config.top_k));
    }
    unsupported_param(config, route, "seed", config.seed.is_some())?;
    if request.stream {
        body.insert("stream".into(), true.into());
    }
    Ok(Body::with_written(body, "messages", written))
}

/// LiteLLM's `prompt_tokens` counts cached input too.
fn usage_from(u: &Value) -> RawUsage {
    let cache_read = count(u.get("cache_read_input_tokens"));
    let cache_write = count(u.get("cache_creation_input_tokens"));
    RawUsage {
        prompt: count(u.get("input_tokens")) + cache_read + cache_write,
        completion: count(u.get("output_tokens")),
        cache_read,
        cache_write,
        reasoning: 0,
    }
}

fn finish_reason(stop: Option<&str>) -> Option<String> {
    stop.map(|s| {
        match s {
            "end_turn" | "stop_sequence" | "pause_turn" => "stop",
            "tool_use" => "tool_calls",
            "max_tokens" => "length",
            other => other,
        }
        .to_string()
    })
}

/// Builds the assistant message from content blocks.
fn message_from_blocks(blocks: &[Value]) -> Message {
    let mut text = String::new();
    let mut reasoning: Option<String> = None;
    let mut thinking_blocks = Vec::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default())
            }
            Some("thinking") => {
                let t = b
                    .get("thinking")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                reasoning.get_or_insert_with(String::new).push_str(t);
                thinking_blocks.push(json!({
                    "type": "thinking",
                    "thinking": t,
                    "signature": b.get("signature").cloned().unwrap_or(Value::Null),
                }));
            }
            Some("redacted_thinking") => thinking_blocks.push(json!({
                "type": "redacted_thinking",
                "data": b.get("data").cloned().unwrap_or(Value::Null),
            })),
            Some("tool_use") => {
                let arguments = match b.get("input") {
                    Some(Value::String(raw)) => raw.clone(),
                    Some(v) => pyjson::dumps(v),
                    None => "{}".to_string(),
                };
                calls.push(MessageToolCall {
                    id: b
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    responses_item_id: None,
                    name: b
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    arguments,
                    origin: ToolCallOrigin::Completion,
                });
            }
            _ => {}
        }
    }
    let mut message = Message::assistant(if text.is_empty() {
        Vec::new()
    } else {
        vec![Content::text(text)]
    });
    message.reasoning_content = reasoning;
    message.thinking_blocks = thinking_blocks;
    if !calls.is_empty() {
        message.tool_calls = Some(calls);
    }
    message
}

fn error_event(route: &Route, v: &Value) -> LlmError {
    let kind = v
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let message = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("stream error");
    LlmError::from_stream_error(route.label, kind, message)
}

/// Parses a non-streamed reply.
pub(crate) fn parse_response(route: &Route, body: &Value) -> Result<Parsed, LlmError> {
    if body.get("type").and_then(Value::as_str) == Some("error") {
        return Err(error_event(route, body));
    }
    let Some(blocks) = body.get("content").and_then(Value::as_array) else {
        return Err(LlmError::no_response(format!(
            "{} returned no content",
            route.label
        )));
    };
    Ok(Parsed {
        id: body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        message: message_from_blocks(blocks),
        usage: body.get("usage").map(usage_from).unwrap_or_default(),
        finish_reason: finish_reason(body.get("stop_reason").and_then(Value::as_str)),
    })
}

/// A content block being assembled.
#[derive(Debug, Default)]
struct PartialBlock {
    start: Value,
    text: String,
    signature: String,
    json: String,
}

/// Accumulates a streamed reply.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// `message_stop` was seen.
    pub done: bool,
    id: String,
    started: bool,
    blocks: BTreeMap<u64, PartialBlock>,
    usage: Map<String, Value>,
    stop_reason: Option<String>,
}

impl StreamState {
    /// Consumes one SSE event.
    pub(crate) fn feed(
        &mut self,
        route: &Route,
        event: &SseEvent,
        emit: &dyn Fn(StreamDelta),
    ) -> Result<(), LlmError> {
        if event.data.trim().is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(&event.data).map_err(|e| {
            LlmError::no_response(format!("{} sent an invalid stream event: {e}", route.label))
        })?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        match kind {
            "message_start" => {
                self.started = true;
                if let Some(id) = v.pointer("/message/id").and_then(Value::as_str) {
                    self.id = id.to_string();
                }
                self.merge_usage(v.pointer("/message/usage"));
            }
            "content_block_start" => {
                let index = v
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(self.blocks.len() as u64);
                let start = v.get("content_block").cloned().unwrap_or(Value::Null);
                self.blocks.insert(
                    index,
                    PartialBlock {
                        start,
                        ..PartialBlock::default()
                    },
                );
            }
            "content_block_delta" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = self.blocks.entry(index).or_default();
                let delta = v.get("delta").cloned().unwrap_or(Value::Null);
                let s = |key: &str| {
                    delta
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = s("text");
                        block.text.push_str(&t);
                        emit(StreamDelta::Content(t));
                    }
                    Some("thinking_delta") => {
                        let t = s("thinking");
                        block.text.push_str(&t);
                        emit(StreamDelta::Reasoning(t));
                    }
                    Some("signature_delta") => block.signature.push_str(&s("signature")),
                    Some("input_json_delta") => block.json.push_str(&s("partial_json")),
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_string());
                }
                self.merge_usage(v.get("usage"));
            }
            "message_stop" => self.done = true,
            "error" => return Err(error_event(route, &v)),
            _ => {}
        }
        Ok(())
    }

    fn merge_usage(&mut self, u: Option<&Value>) {
        if let Some(Value::Object(map)) = u {
            for (k, v) in map {
                if !v.is_null() {
                    self.usage.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// The assembled reply.
    pub(crate) fn finish(self, route: &Route) -> Result<Parsed, LlmError> {
        if !self.started {
            return Err(LlmError::no_response(format!(
                "{} stream ended before message_start",
                route.label
            )));
        }
        let blocks: Vec<Value> = self
            .blocks
            .into_values()
            .map(|b| {
                let mut block = match b.start {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let mut text = block
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        text.push_str(&b.text);
                        block.insert("text".into(), text.into());
                    }
                    Some("thinking") => {
                        let mut text = block
                            .get("thinking")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        text.push_str(&b.text);
                        block.insert("thinking".into(), text.into());
                        if !b.signature.is_empty() {
                            block.insert("signature".into(), b.signature.into());
                        }
                    }
                    Some("tool_use") if !b.json.is_empty() => {
                        // Invalid JSON is kept as text for the agent to report.
                        let input =
                            serde_json::from_str::<Value>(&b.json).unwrap_or(Value::String(b.json));
                        block.insert("input".into(), input);
                    }
                    _ => {}
                }
                Value::Object(block)
            })
            .collect();
        Ok(Parsed {
            id: self.id,
            message: message_from_blocks(&blocks),
            usage: usage_from(&Value::Object(self.usage)),
            finish_reason: finish_reason(self.stop_reason.as_deref()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::message::TextContent;

    fn call(id: &str, name: &str, args: &str) -> MessageToolCall {
        MessageToolCall {
            id: id.into(),
            responses_item_id: None,
            name: name.into(),
            arguments: args.into(),
            origin: ToolCallOrigin::Completion,
        }
    }

    fn ref_cache_control() -> Value {
        json!({"type": "ephemeral"})
    }

    fn ref_image_blocks(img: &ImageContent) -> Vec<Value> {
        let mut out: Vec<Value> = img
            .image_urls
            .iter()
            .map(|url| {
                let source = match url.strip_prefix("data:").and_then(|r| r.split_once(',')) {
                    Some((meta, data)) if meta.ends_with(";base64") => json!({
                        "type": "base64",
                        "media_type": meta.trim_end_matches(";base64"),
                        "data": data,
                    }),
                    _ => json!({"type": "url", "url": url}),
                };
                json!({"type": "image", "source": source})
            })
            .collect();
        if img.cache_prompt {
            if let Some(Value::Object(last)) = out.last_mut() {
                last.insert("cache_control".into(), ref_cache_control());
            }
        }
        out
    }

    fn ref_text_block(text: &str, cache: bool) -> Value {
        let mut b = Map::new();
        b.insert("type".into(), "text".into());
        b.insert("text".into(), text.into());
        if cache {
            b.insert("cache_control".into(), ref_cache_control());
        }
        Value::Object(b)
    }

    fn ref_user_blocks(m: &Message, vision: bool, out: &mut Vec<Value>) {
        let before = out.len();
        for c in &m.content {
            match c {
                Content::Text(t) => {
                    let text = if t.text.trim().is_empty() {
                        EMPTY_TEXT_PLACEHOLDER
                    } else {
                        &t.text
                    };
                    out.push(ref_text_block(text, t.cache_prompt));
                }
                Content::Image(img) if vision => out.extend(ref_image_blocks(img)),
                Content::Image(_) => {}
            }
        }
        if out.len() == before {
            out.push(ref_text_block(EMPTY_TEXT_PLACEHOLDER, false));
        }
    }

    fn ref_tool_result_block(m: &Message, vision: bool) -> Value {
        let mut content = Vec::new();
        let mut cache = false;
        for c in &m.content {
            match c {
                Content::Text(t) => {
                    cache |= t.cache_prompt;
                    content.push(json!({"type": "text", "text": tool_text(&t.text)}));
                }
                Content::Image(img) => {
                    cache |= img.cache_prompt;
                    if vision {
                        let plain = ImageContent {
                            image_urls: img.image_urls.clone(),
                            cache_prompt: false,
                        };
                        content.extend(ref_image_blocks(&plain));
                    }
                }
            }
        }
        let mut block = Map::new();
        block.insert("type".into(), "tool_result".into());
        block.insert(
            "tool_use_id".into(),
            sanitize_id(m.tool_call_id.as_deref().unwrap_or_default()).into(),
        );
        block.insert("content".into(), Value::Array(content));
        if cache {
            block.insert("cache_control".into(), ref_cache_control());
        }
        Value::Object(block)
    }

    fn ref_assistant_blocks(m: &Message, out: &mut Vec<Value>, seen_ids: &mut Vec<String>) {
        out.extend(m.thinking_blocks.iter().filter(|b| signable(b)).cloned());
        for c in &m.content {
            if let Content::Text(t) = c {
                if !t.text.is_empty() {
                    out.push(ref_text_block(&t.text, t.cache_prompt));
                }
            }
        }
        for tc in m.tool_calls.as_deref().unwrap_or_default() {
            let id = sanitize_id(&tc.id);
            if seen_ids.contains(&id) {
                continue;
            }
            seen_ids.push(id.clone());
            // History with malformed arguments (already reported to the model) is replayed as {}.
            let input = serde_json::from_str::<Value>(&tc.arguments)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            out.push(json!({"type": "tool_use", "id": id, "name": tc.name, "input": input}));
        }
    }

    /// The previous rendering through `Value`s, kept as the reference the
    /// direct writer must match byte for byte.
    fn ref_messages_json(messages: &[Message], vision: bool) -> (Vec<Value>, Vec<Value>) {
        let mut system = Vec::new();
        let mut i = 0;
        while i < messages.len() && messages[i].role == Role::System {
            for c in &messages[i].content {
                if let Content::Text(t) = c {
                    if !t.text.is_empty() {
                        system.push(ref_text_block(&t.text, t.cache_prompt));
                    }
                }
            }
            i += 1;
        }
        let mut out = Vec::new();
        let rest = &messages[i..];
        let mut j = 0;
        while j < rest.len() {
            let mut user = Vec::new();
            while j < rest.len() && matches!(rest[j].role, Role::User | Role::Tool | Role::System) {
                match rest[j].role {
                    Role::Tool => user.push(ref_tool_result_block(&rest[j], vision)),
                    // A later system message stays in the conversation as user text.
                    _ => ref_user_blocks(&rest[j], vision, &mut user),
                }
                j += 1;
            }
            if !user.is_empty() {
                out.push(json!({"role": "user", "content": user}));
            }
            let mut assistant = Vec::new();
            let mut seen_ids = Vec::new();
            while j < rest.len() && rest[j].role == Role::Assistant {
                ref_assistant_blocks(&rest[j], &mut assistant, &mut seen_ids);
                j += 1;
            }
            if !assistant.is_empty() {
                out.push(json!({"role": "assistant", "content": assistant}));
            } else if j > 0 && rest[j - 1].role == Role::Assistant {
                out.push(json!({"role": "assistant", "content": [ref_text_block(EMPTY_TEXT_PLACEHOLDER, false)]}));
            }
        }
        (system, out)
    }

    #[test]
    fn direct_writing_matches_the_value_tree_byte_for_byte() {
        let cached = |text: &str| {
            Content::Text(TextContent {
                text: text.into(),
                cache_prompt: true,
            })
        };
        let image = |cache_prompt: bool| {
            Content::Image(ImageContent {
                image_urls: vec![
                    "data:image/png;base64,QUJD".into(),
                    "https://x/y.png".into(),
                ],
                cache_prompt,
            })
        };
        let mut a1 = Message::assistant(vec![Content::text(""), cached("é \"q\"")]);
        a1.thinking_blocks = vec![
            json!({"type":"thinking","thinking":"hmm","signature":"sig"}),
            json!({"type":"redacted_thinking","data":"d"}),
            json!({"type":"thinking","thinking":"unsigned","signature":""}),
        ];
        a1.tool_calls = Some(vec![
            call(
                "toolu_1",
                "terminal",
                "{\"command\": \"ls \\u00e9\", \"n\": 1.5}",
            ),
            call("call.2", "think", "not json"),
        ]);
        let mut a2 = Message::assistant(vec![]);
        a2.tool_calls = Some(vec![call("call_2", "think", "[1]"), call("", "x", "{}")]);
        let msgs = vec![
            Message::system(vec![
                cached("static"),
                Content::text("dynamic"),
                Content::text(""),
            ]),
            Message {
                content: vec![Content::text(" "), image(true), cached("end")],
                ..Message::user("")
            },
            a1,
            a2,
            Message::tool(
                "toolu_1",
                "terminal",
                vec![Content::text("a.txt"), image(true)],
            ),
            Message::tool("call.2", "think", vec![Content::text("x".repeat(60_000))]),
            Message::system(vec![Content::text("later system")]),
            Message::assistant(vec![Content::text("")]),
            Message::tool("t", "think", vec![Content::text("é".repeat(30_000))]),
            Message::user(""),
        ];
        for vision in [true, false] {
            let (want_system, want) = ref_messages_json(&msgs, vision);
            let (system, out) = messages_json(&msgs, vision);
            assert_eq!(
                serde_json::to_value(&system).unwrap(),
                Value::Array(want_system)
            );
            let got = serde_json::to_vec(&out).unwrap();
            let want = serde_json::to_vec(&want).unwrap();
            assert!(
                got == want,
                "vision {vision}\n got: {}\nwant: {}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
    }

    #[test]
    fn conversation_shape() {
        let mut a1 = Message::assistant(vec![]);
        a1.thinking_blocks = vec![
            json!({"type":"thinking","thinking":"hmm","signature":"sig"}),
            json!({"type":"thinking","thinking":"unsigned","signature":null}),
        ];
        a1.tool_calls = Some(vec![
            call("toolu_1", "terminal", "{\"command\": \"ls\"}"),
            call("call.2", "think", "not json"),
        ]);
        let msgs = vec![
            Message::system(vec![
                Content::Text(TextContent {
                    text: "static".into(),
                    cache_prompt: true,
                }),
                Content::text("dynamic"),
            ]),
            Message::user("do it"),
            a1,
            Message::tool("toolu_1", "terminal", vec![Content::text("a.txt")]),
            Message::tool(
                "call.2",
                "think",
                vec![Content::Text(TextContent {
                    text: "ok".into(),
                    cache_prompt: true,
                })],
            ),
            Message::user(""),
        ];
        let (system, out) = messages_json(&msgs, true);
        assert_eq!(
            serde_json::to_string(&system).unwrap(),
            r#"[{"type":"text","text":"static","cache_control":{"type":"ephemeral"}},{"type":"text","text":"dynamic"}]"#
        );
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            concat!(
                r#"[{"role":"user","content":[{"type":"text","text":"do it"}]},"#,
                r#"{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"sig"},"#,
                r#"{"type":"tool_use","id":"toolu_1","name":"terminal","input":{"command":"ls"}},"#,
                r#"{"type":"tool_use","id":"call_2","name":"think","input":{}}]},"#,
                r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"a.txt"}]},"#,
                r#"{"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"ok"}],"cache_control":{"type":"ephemeral"}},"#,
                r#"{"type":"text","text":"[System: Empty message content sanitised to satisfy protocol]"}]}]"#
            )
        );
    }

    fn thinking_for(
        model: &str,
        cfg: impl FnOnce(&mut LlmConfig),
        messages: &[Message],
    ) -> Option<Value> {
        let mut config = LlmConfig {
            model: model.into(),
            ..LlmConfig::default()
        };
        cfg(&mut config);
        let route = crate::llm::route::resolve(&config).unwrap();
        let f = crate::llm::features::resolve(&config, &route);
        let max = f.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        thinking_param(&config, &f, max, messages)
    }

    #[test]
    fn thinking_decisions() {
        let fresh = [Message::user("hi")];
        assert_eq!(
            thinking_for("anthropic/claude-sonnet-4-5", |_| {}, &fresh),
            Some(json!({"type": "enabled", "budget_tokens": 63999}))
        );
        assert_eq!(
            thinking_for(
                "anthropic/claude-sonnet-4-5",
                |c| c.extended_thinking_budget = Some(2000),
                &fresh
            ),
            Some(json!({"type": "enabled", "budget_tokens": 2000}))
        );
        assert_eq!(
            thinking_for(
                "anthropic/claude-sonnet-4-5",
                |c| c.max_output_tokens = Some(1000),
                &fresh
            ),
            None
        );
        let mut a = Message::assistant(vec![]);
        a.tool_calls = Some(vec![call("toolu_1", "think", "{}")]);
        let without_thinking = [
            Message::user("hi"),
            a.clone(),
            Message::tool("toolu_1", "think", vec![Content::text("ok")]),
        ];
        assert_eq!(
            thinking_for("anthropic/claude-sonnet-4-5", |_| {}, &without_thinking),
            None
        );
        a.thinking_blocks = vec![json!({"type":"thinking","thinking":"t","signature":"s"})];
        let with_thinking = [
            Message::user("hi"),
            a,
            Message::tool("toolu_1", "think", vec![Content::text("ok")]),
        ];
        assert!(thinking_for("anthropic/claude-sonnet-4-5", |_| {}, &with_thinking).is_some());
        assert_eq!(
            thinking_for("anthropic/claude-opus-4-6", |_| {}, &fresh),
            Some(json!({"type": "adaptive", "display": "summarized"}))
        );
        assert_eq!(
            thinking_for(
                "anthropic/claude-opus-4-6",
                |c| c.reasoning_effort = Some("none".into()),
                &fresh
            ),
            None
        );
        assert_eq!(
            thinking_for(
                "anthropic/claude-opus-4-1",
                |c| c.reasoning_effort = Some("medium".into()),
                &fresh
            ),
            Some(json!({"type": "enabled", "budget_tokens": 2048}))
        );
        assert_eq!(
            thinking_for("anthropic/claude-3-5-haiku", |_| {}, &fresh),
            None
        );
    }

    #[test]
    fn data_url_images_become_base64_sources() {
        let img = ImageContent {
            image_urls: vec![
                "data:image/png;base64,QUJD".into(),
                "https://x/y.png".into(),
            ],
            cache_prompt: true,
        };
        assert_eq!(
            {
                let mut blocks = Vec::new();
                image_blocks(&img, img.cache_prompt, &mut blocks);
                serde_json::to_string(&blocks).unwrap()
            },
            r#"[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QUJD"}},{"type":"image","source":{"type":"url","url":"https://x/y.png"},"cache_control":{"type":"ephemeral"}}]"#
        );
    }

    #[test]
    fn reply_blocks_become_a_message() {
        let m = message_from_blocks(&[
            json!({"type":"thinking","thinking":"plan","signature":"s1"}),
            json!({"type":"text","text":"Sure."}),
            json!({"type":"tool_use","id":"toolu_9","name":"finish","input":{"message":"café"}}),
        ]);
        assert_eq!(m.text(), "Sure.");
        assert_eq!(m.reasoning_content.as_deref(), Some("plan"));
        assert_eq!(
            m.thinking_blocks[0],
            json!({"type":"thinking","thinking":"plan","signature":"s1"})
        );
        assert_eq!(
            m.tool_calls.unwrap()[0].arguments,
            r#"{"message": "caf\u00e9"}"#
        );
        let u = usage_from(
            &json!({"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20}),
        );
        assert_eq!(
            u,
            RawUsage {
                prompt: 130,
                completion: 5,
                cache_read: 100,
                cache_write: 20,
                reasoning: 0
            }
        );
    }
}
