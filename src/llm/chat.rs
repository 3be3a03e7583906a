//! OpenAI Chat Completions: request shape, reply parsing, stream decoding.
//!
//! Messages follow the SDK's `Message.to_chat_dict`: list content
//! `[{"type":"text","text":…}]` (a plain string for models that need it),
//! assistant tool-call turns without `content` when there is no text, tool
//! results `{"content":[…],"role":"tool","tool_call_id":…,"name":…}`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::error::LlmError;
use super::features::{Features, ThinkingMode};
use super::route::Route;
use super::sse::SseEvent;
use super::{count, num, put, pyjson, tool_text, unsupported_param, CompletionRequest};
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

fn cache_control() -> Value {
    json!({"type": "ephemeral"})
}

/// One message in Chat Completions form.
pub fn message_json(message: &Message, style: ChatStyle) -> Value {
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

/// The request body (without `litellm_extra_body`).
pub(crate) fn build_body(
    config: &LlmConfig,
    route: &Route,
    f: &Features,
    request: &CompletionRequest,
    messages: &[Message],
) -> Result<Map<String, Value>, LlmError> {
    let style = ChatStyle {
        vision: f.vision,
        force_string: f.force_string_serializer,
        send_reasoning_content: f.send_reasoning_content,
    };
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        messages.iter().map(|m| message_json(m, style)).collect(),
    );
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
    Ok(body)
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
