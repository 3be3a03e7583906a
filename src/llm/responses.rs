//! The OpenAI Responses API: request shape, reply parsing, stream decoding.
//!
//! System messages become `instructions`; the rest become `input` items
//! (the SDK's `responses_serialization.py`): user `message` items with
//! `input_text`/`input_image`, assistant `reasoning` (replayed with its
//! encrypted content), `message` with `output_text` and `function_call`
//! items, tool results as `function_call_output`. Calls are stateless
//! (`store:false`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use super::error::LlmError;
use super::features::Features;
use super::route::Route;
use super::sse::SseEvent;
use super::{count, num, put, tool_text, unsupported_param, CompletionRequest};
use super::{Body, TOOL_TEXT_LIMIT};
use super::{Parsed, RawUsage, StreamDelta, ToolSchema};
use crate::api::llm_config::LlmConfig;
use crate::api::message::{Content, Message, MessageToolCall, Role, ToolCallOrigin};

/// A tool in Responses form.
pub fn tool_json(tool: &ToolSchema) -> Value {
    json!({
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": false,
    })
}

/// One `input` item, borrowing from the history and serialised directly
/// (no intermediate `serde_json::Value` tree).
enum Item<'a> {
    User(Vec<UserPart<'a>>),
    Reasoning(Value),
    Assistant(Vec<&'a str>),
    FunctionCall {
        id: Cow<'a, str>,
        call: &'a MessageToolCall,
    },
    Output {
        call_id: &'a str,
        text: Cow<'a, str>,
    },
    ImageOutput {
        call_id: &'a str,
        url: &'a str,
    },
}

enum UserPart<'a> {
    Text(&'a str),
    Image(&'a str),
}

/// `{"type":"input_image","image_url":…,"detail":"auto"}`.
struct InputImage<'a>(&'a str);

impl Serialize for InputImage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("type", "input_image")?;
        m.serialize_entry("image_url", self.0)?;
        m.serialize_entry("detail", "auto")?;
        m.end()
    }
}

/// `{"type": kind, "text": text}`.
struct Typed<'a>(&'static str, &'a str);

impl Serialize for Typed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", self.0)?;
        m.serialize_entry("text", self.1)?;
        m.end()
    }
}

impl Serialize for UserPart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UserPart::Text(t) => Typed("input_text", t).serialize(s),
            UserPart::Image(url) => InputImage(url).serialize(s),
        }
    }
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Item::Reasoning(v) = self {
            return v.serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        match self {
            Item::User(parts) => {
                m.serialize_entry("type", "message")?;
                m.serialize_entry("role", "user")?;
                m.serialize_entry("content", parts)?;
            }
            Item::Assistant(texts) => {
                let parts: Vec<Typed<'_>> = texts.iter().map(|t| Typed("output_text", t)).collect();
                m.serialize_entry("type", "message")?;
                m.serialize_entry("role", "assistant")?;
                m.serialize_entry("content", &parts)?;
            }
            Item::FunctionCall { id, call } => {
                m.serialize_entry("type", "function_call")?;
                m.serialize_entry("id", id)?;
                m.serialize_entry("call_id", &call.id)?;
                m.serialize_entry("name", &call.name)?;
                m.serialize_entry("arguments", &call.arguments)?;
            }
            Item::Output { call_id, text } => {
                m.serialize_entry("type", "function_call_output")?;
                m.serialize_entry("call_id", call_id)?;
                m.serialize_entry("output", text)?;
            }
            Item::ImageOutput { call_id, url } => {
                m.serialize_entry("type", "function_call_output")?;
                m.serialize_entry("call_id", call_id)?;
                m.serialize_entry("output", &[InputImage(url)])?;
            }
            Item::Reasoning(_) => {}
        }
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

/// `instructions` (system texts) and `input` items for a conversation.
fn input_items(messages: &[Message], vision: bool) -> (Option<String>, Vec<Item<'_>>) {
    let mut instructions: Option<String> = None;
    let mut items = Vec::new();
    for m in messages {
        match m.role {
            Role::System => {
                let text = m
                    .content
                    .iter()
                    .filter_map(Content::as_text)
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n");
                let text = text.trim();
                if !text.is_empty() {
                    instructions = Some(match instructions {
                        None => text.to_string(),
                        Some(prev) => format!("{prev}\n\n---\n\n{text}"),
                    });
                }
            }
            Role::User => {
                let mut parts = Vec::new();
                for c in &m.content {
                    match c {
                        Content::Text(t) => parts.push(UserPart::Text(&t.text)),
                        Content::Image(img) if vision => {
                            parts.extend(img.image_urls.iter().map(|u| UserPart::Image(u)))
                        }
                        Content::Image(_) => {}
                    }
                }
                if parts.is_empty() {
                    parts.push(UserPart::Text(""));
                }
                items.push(Item::User(parts));
            }
            Role::Assistant => {
                if let Some(item) = m.responses_reasoning_item.as_ref().and_then(reasoning_item) {
                    items.push(Item::Reasoning(item));
                }
                let texts: Vec<&str> = m
                    .content
                    .iter()
                    .filter_map(Content::as_text)
                    .filter(|t| !t.is_empty())
                    .collect();
                if !texts.is_empty() {
                    items.push(Item::Assistant(texts));
                }
                for tc in m.tool_calls.as_deref().unwrap_or_default() {
                    let id = match &tc.responses_item_id {
                        Some(id) => Cow::Borrowed(id.as_str()),
                        None if tc.id.starts_with("fc") => Cow::Borrowed(tc.id.as_str()),
                        None => Cow::Owned(format!("fc_{}", tc.id)),
                    };
                    items.push(Item::FunctionCall { id, call: tc });
                }
            }
            Role::Tool => {
                let Some(call_id) = &m.tool_call_id else {
                    continue;
                };
                for c in &m.content {
                    match c {
                        Content::Text(t) => items.push(Item::Output {
                            call_id,
                            text: tool_text_of(&t.text),
                        }),
                        Content::Image(img) if vision => {
                            items.extend(
                                img.image_urls
                                    .iter()
                                    .map(|url| Item::ImageOutput { call_id, url }),
                            );
                        }
                        Content::Image(_) => {}
                    }
                }
            }
        }
    }
    (instructions, items)
}

/// Replays a stored `responses_reasoning_item` (`{id, summary:[str], content, encrypted_content, status}`).
fn reasoning_item(stored: &Value) -> Option<Value> {
    let id = stored.get("id").and_then(Value::as_str)?;
    let strings = |key: &str| -> Vec<String> {
        stored
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut item = Map::new();
    item.insert("type".into(), "reasoning".into());
    item.insert("id".into(), id.into());
    item.insert(
        "summary".into(),
        strings("summary")
            .into_iter()
            .map(|s| json!({"type": "summary_text", "text": s}))
            .collect(),
    );
    let content = strings("content");
    if !content.is_empty() {
        item.insert(
            "content".into(),
            content
                .into_iter()
                .map(|t| json!({"type": "reasoning_text", "text": t}))
                .collect(),
        );
    }
    if let Some(enc) = stored.get("encrypted_content").and_then(Value::as_str) {
        item.insert("encrypted_content".into(), enc.into());
    }
    if let Some(status) = stored.get("status").and_then(Value::as_str) {
        item.insert("status".into(), status.into());
    }
    Some(Value::Object(item))
}

/// The request body (without `litellm_extra_body`).
pub(crate) fn build_body(
    config: &LlmConfig,
    route: &Route,
    f: &Features,
    request: &CompletionRequest,
    messages: &[Message],
) -> Result<Body, LlmError> {
    let (instructions, input) = input_items(messages, f.vision);
    let written = serde_json::to_vec(&input)
        .map_err(|e| LlmError::bad_request(format!("request not serialisable: {e}")))?;
    let mut body = Map::new();
    body.insert("model".into(), route.model.clone().into());
    // Holds the key's place; the written bytes replace it.
    body.insert("input".into(), Value::Null);
    put(&mut body, "instructions", instructions.map(Value::String));
    if !request.tools.is_empty() {
        body.insert(
            "tools".into(),
            request.tools.iter().map(tool_json).collect(),
        );
        body.insert("tool_choice".into(), "auto".into());
    }
    put(
        &mut body,
        "max_output_tokens",
        f.max_output_tokens.map(Value::from),
    );
    if f.sampling_params {
        put(&mut body, "temperature", num(config.temperature));
        put(&mut body, "top_p", num(config.top_p));
    }
    unsupported_param(config, route, "top_k", config.top_k.is_some())?;
    unsupported_param(config, route, "seed", config.seed.is_some())?;
    body.insert("store".into(), false.into());
    if f.reasoning_effort && config.enable_encrypted_reasoning {
        body.insert("include".into(), json!(["reasoning.encrypted_content"]));
    }
    if f.reasoning_effort {
        if let Some(effort) = config.reasoning_effort.as_deref().filter(|e| !e.is_empty()) {
            let mut reasoning = Map::new();
            reasoning.insert("effort".into(), effort.into());
            if let Some(summary) = config
                .reasoning_summary
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                reasoning.insert("summary".into(), summary.into());
            }
            body.insert("reasoning".into(), Value::Object(reasoning));
        }
    }
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
    }
    Ok(Body::with_written(body, "input", written))
}

fn usage_from(v: Option<&Value>) -> RawUsage {
    let Some(u) = v else {
        return RawUsage::default();
    };
    RawUsage {
        prompt: count(u.get("input_tokens")),
        completion: count(u.get("output_tokens")),
        cache_read: count(u.pointer("/input_tokens_details/cached_tokens")),
        cache_write: 0,
        reasoning: count(u.pointer("/output_tokens_details/reasoning_tokens")),
    }
}

fn texts(v: Option<&Value>, kind: &str) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| {
                    p.get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t == kind)
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The assistant message from `output` items (the SDK's `from_llm_responses_output`).
fn message_from_output(output: &[Value]) -> Message {
    let mut text_parts = Vec::new();
    let mut calls = Vec::new();
    let mut reasoning = None;
    for item in output {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(t) = part
                        .get("text")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                    {
                        text_parts.push(t.to_string());
                    }
                }
            }
            Some("function_call") => {
                let item_id = item.get("id").and_then(Value::as_str).map(str::to_string);
                let call_id = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| item_id.clone())
                    .unwrap_or_default();
                calls.push(MessageToolCall {
                    id: call_id,
                    responses_item_id: item_id,
                    name: item
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    arguments: item
                        .get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    origin: ToolCallOrigin::Responses,
                });
            }
            Some("reasoning") => {
                let content = texts(item.get("content"), "reasoning_text");
                reasoning = Some(json!({
                    "id": item.get("id").cloned().unwrap_or(Value::Null),
                    "summary": texts(item.get("summary"), "summary_text"),
                    "content": if content.is_empty() { Value::Null } else { json!(content) },
                    "encrypted_content": item.get("encrypted_content").cloned().unwrap_or(Value::Null),
                    "status": item.get("status").cloned().unwrap_or(Value::Null),
                }));
            }
            _ => {}
        }
    }
    let text = text_parts.join("\n");
    let text = text.trim();
    let mut message = Message::assistant(if text.is_empty() {
        Vec::new()
    } else {
        vec![Content::text(text)]
    });
    if !calls.is_empty() {
        message.tool_calls = Some(calls);
    }
    message.responses_reasoning_item = reasoning;
    message
}

fn finish_reason(response: &Value, message: &Message) -> Option<String> {
    if message.tool_calls.is_some() {
        return Some("tool_calls".into());
    }
    match response.get("status").and_then(Value::as_str) {
        Some("incomplete") => Some(
            match response
                .pointer("/incomplete_details/reason")
                .and_then(Value::as_str)
            {
                Some("max_output_tokens") => "length".to_string(),
                Some(other) => other.to_string(),
                None => "incomplete".to_string(),
            },
        ),
        Some(_) => Some("stop".into()),
        None => None,
    }
}

fn failed(route: &Route, response: &Value) -> Option<LlmError> {
    let status = response.get("status").and_then(Value::as_str);
    let err = response.get("error").filter(|e| !e.is_null());
    if status != Some("failed") && err.is_none() {
        return None;
    }
    let code = err
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("server_error");
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("response failed");
    Some(LlmError::from_stream_error(route.label, code, message))
}

fn parsed_from(route: &Route, response: &Value, fallback: &[Value]) -> Result<Parsed, LlmError> {
    if let Some(err) = failed(route, response) {
        return Err(err);
    }
    let output = response
        .get("output")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
        .map(Vec::as_slice)
        .unwrap_or(fallback);
    let message = message_from_output(output);
    Ok(Parsed {
        id: response
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        finish_reason: finish_reason(response, &message),
        message,
        usage: usage_from(response.get("usage")),
    })
}

/// Parses a non-streamed reply.
pub(crate) fn parse_response(route: &Route, body: &Value) -> Result<Parsed, LlmError> {
    if body.get("output").is_none() && body.get("error").is_none() {
        return Err(LlmError::no_response(format!(
            "{} returned no output",
            route.label
        )));
    }
    parsed_from(route, body, &[])
}

/// Accumulates a streamed reply.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// `response.completed` (or `incomplete`) was seen.
    pub done: bool,
    completed: Option<Value>,
    items: BTreeMap<u64, Value>,
}

impl StreamState {
    /// Consumes one SSE event.
    pub(crate) fn feed(
        &mut self,
        route: &Route,
        event: &SseEvent,
        emit: &dyn Fn(StreamDelta),
    ) -> Result<(), LlmError> {
        if event.data.trim().is_empty() || event.data.trim() == "[DONE]" {
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
        let delta = || {
            v.get("delta")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match kind {
            "response.output_text.delta" | "response.refusal.delta" => {
                emit(StreamDelta::Content(delta()));
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                emit(StreamDelta::Reasoning(delta()));
            }
            "response.output_item.done" => {
                let index = v
                    .get("output_index")
                    .and_then(Value::as_u64)
                    .unwrap_or(self.items.len() as u64);
                if let Some(item) = v.get("item") {
                    self.items.insert(index, item.clone());
                }
            }
            "response.completed" | "response.incomplete" => {
                self.completed = v.get("response").cloned();
                self.done = true;
            }
            "response.failed" => {
                let response = v.get("response").cloned().unwrap_or(Value::Null);
                return Err(failed(route, &response).unwrap_or_else(|| {
                    LlmError::from_stream_error(route.label, "server_error", "response failed")
                }));
            }
            "error" => {
                let code = v
                    .get("code")
                    .and_then(Value::as_str)
                    .or_else(|| v.pointer("/error/code").and_then(Value::as_str))
                    .unwrap_or("server_error");
                let message = v
                    .get("message")
                    .and_then(Value::as_str)
                    .or_else(|| v.pointer("/error/message").and_then(Value::as_str))
                    .unwrap_or("stream error");
                return Err(LlmError::from_stream_error(route.label, code, message));
            }
            _ => {}
        }
        Ok(())
    }

    /// The assembled reply.
    pub(crate) fn finish(self, route: &Route) -> Result<Parsed, LlmError> {
        let Some(response) = self.completed else {
            return Err(LlmError::no_response(
                "Responses stream finished without a completed response",
            ));
        };
        let collected: Vec<Value> = self.items.into_values().collect();
        parsed_from(route, &response, &collected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The previous rendering through `Value`s, kept as the reference the
    /// direct writer must match byte for byte.
    fn reference_items(messages: &[Message], vision: bool) -> (Option<String>, Vec<Value>) {
        let mut instructions: Option<String> = None;
        let mut items = Vec::new();
        for m in messages {
            match m.role {
                Role::System => {
                    let text = m
                        .content
                        .iter()
                        .filter_map(Content::as_text)
                        .filter(|t| !t.is_empty())
                        .collect::<Vec<_>>()
                        .join("\n");
                    let text = text.trim();
                    if !text.is_empty() {
                        instructions = Some(match instructions {
                            None => text.to_string(),
                            Some(prev) => format!("{prev}\n\n---\n\n{text}"),
                        });
                    }
                }
                Role::User => {
                    let mut parts = Vec::new();
                    for c in &m.content {
                        match c {
                            Content::Text(t) => {
                                parts.push(json!({"type": "input_text", "text": t.text}))
                            }
                            Content::Image(img) if vision => {
                                for url in &img.image_urls {
                                    parts.push(json!({"type": "input_image", "image_url": url, "detail": "auto"}));
                                }
                            }
                            Content::Image(_) => {}
                        }
                    }
                    if parts.is_empty() {
                        parts.push(json!({"type": "input_text", "text": ""}));
                    }
                    items.push(json!({"type": "message", "role": "user", "content": parts}));
                }
                Role::Assistant => {
                    if let Some(item) = m.responses_reasoning_item.as_ref().and_then(reasoning_item)
                    {
                        items.push(item);
                    }
                    let texts: Vec<Value> = m
                        .content
                        .iter()
                        .filter_map(Content::as_text)
                        .filter(|t| !t.is_empty())
                        .map(|t| json!({"type": "output_text", "text": t}))
                        .collect();
                    if !texts.is_empty() {
                        items.push(
                            json!({"type": "message", "role": "assistant", "content": texts}),
                        );
                    }
                    for tc in m.tool_calls.as_deref().unwrap_or_default() {
                        let item_id = tc.responses_item_id.clone().unwrap_or_else(|| {
                            if tc.id.starts_with("fc") {
                                tc.id.clone()
                            } else {
                                format!("fc_{}", tc.id)
                            }
                        });
                        items.push(json!({
                            "type": "function_call",
                            "id": item_id,
                            "call_id": tc.id,
                            "name": tc.name,
                            "arguments": tc.arguments,
                        }));
                    }
                }
                Role::Tool => {
                    let Some(call_id) = &m.tool_call_id else {
                        continue;
                    };
                    for c in &m.content {
                        match c {
                            Content::Text(t) => items.push(json!({
                                "type": "function_call_output",
                                "call_id": call_id,
                                "output": tool_text(&t.text),
                            })),
                            Content::Image(img) if vision => {
                                for url in &img.image_urls {
                                    items.push(json!({
                                        "type": "function_call_output",
                                        "call_id": call_id,
                                        "output": [{"type": "input_image", "image_url": url, "detail": "auto"}],
                                    }));
                                }
                            }
                            Content::Image(_) => {}
                        }
                    }
                }
            }
        }
        (instructions, items)
    }

    #[test]
    fn direct_writing_matches_the_value_items_byte_for_byte() {
        let call = |id: &str, item: Option<&str>| MessageToolCall {
            id: id.into(),
            responses_item_id: item.map(str::to_string),
            name: "terminal".into(),
            arguments: "{\"command\": \"ls \\u00e9\"}".into(),
            origin: ToolCallOrigin::Responses,
        };
        let mut image = Content::image("data:image/png;base64,AA");
        if let Content::Image(i) = &mut image {
            i.image_urls.push("https://x/b.png".into());
        }
        let mut a = Message::assistant(vec![Content::text(""), Content::text("é \"q\"\n")]);
        a.responses_reasoning_item = Some(
            json!({"id":"rs_1","summary":["s1"],"content":["c"],"encrypted_content":"enc","status":"done"}),
        );
        a.tool_calls = Some(vec![
            call("call_1", None),
            call("fc_2", None),
            call("c3", Some("fc_item")),
        ]);
        let mut no_call_id = Message::tool("x", "terminal", vec![Content::text("lost")]);
        no_call_id.tool_call_id = None;
        let msgs = vec![
            Message::system(vec![Content::text(" sys "), Content::text("")]),
            Message::system(vec![Content::text("second")]),
            Message::user("hi"),
            Message {
                content: vec![image.clone()],
                ..Message::user("")
            },
            Message::user(""),
            a,
            Message::assistant(vec![]),
            Message::tool("call_1", "terminal", vec![Content::text("out"), image]),
            Message::tool("fc_2", "terminal", vec![Content::text("x".repeat(60_000))]),
            Message::tool("c3", "terminal", vec![Content::text("é".repeat(30_000))]),
            no_call_id,
        ];
        for vision in [true, false] {
            let (want_instructions, want) = reference_items(&msgs, vision);
            let (instructions, items) = input_items(&msgs, vision);
            assert_eq!(instructions, want_instructions);
            let got = serde_json::to_vec(&items).unwrap();
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
    fn input_items_follow_the_sdk() {
        let mut a = Message::assistant(vec![Content::text("thinking aloud")]);
        a.responses_reasoning_item = Some(
            json!({"id":"rs_1","summary":["s1"],"content":null,"encrypted_content":"enc","status":null}),
        );
        a.tool_calls = Some(vec![MessageToolCall {
            id: "call_1".into(),
            responses_item_id: None,
            name: "think".into(),
            arguments: "{}".into(),
            origin: ToolCallOrigin::Responses,
        }]);
        let msgs = vec![
            Message::system(vec![Content::text("sys"), Content::text("dyn")]),
            Message::user("hi"),
            a,
            Message::tool("call_1", "think", vec![Content::text("logged")]),
        ];
        let (instructions, items) = input_items(&msgs, true);
        assert_eq!(instructions.as_deref(), Some("sys\ndyn"));
        assert_eq!(
            serde_json::to_string(&items).unwrap(),
            r#"[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]},{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"s1"}],"encrypted_content":"enc"},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"thinking aloud"}]},{"type":"function_call","id":"fc_call_1","call_id":"call_1","name":"think","arguments":"{}"},{"type":"function_call_output","call_id":"call_1","output":"logged"}]"#
        );
    }

    #[test]
    fn output_items_become_a_message() {
        let output = vec![
            json!({"type":"reasoning","id":"rs_9","summary":[{"type":"summary_text","text":"plan"}],"encrypted_content":"E"}),
            json!({"type":"message","content":[{"type":"output_text","text":" Hello "}]}),
            json!({"type":"function_call","id":"fc_9","call_id":"call_9","name":"finish","arguments":"{\"message\":\"x\"}"}),
        ];
        let m = message_from_output(&output);
        assert_eq!(m.text(), "Hello");
        let tc = &m.tool_calls.as_ref().unwrap()[0];
        assert_eq!(
            (tc.id.as_str(), tc.responses_item_id.as_deref()),
            ("call_9", Some("fc_9"))
        );
        assert_eq!(tc.origin, ToolCallOrigin::Responses);
        assert_eq!(
            m.responses_reasoning_item.unwrap().to_string(),
            r#"{"id":"rs_9","summary":["plan"],"content":null,"encrypted_content":"E","status":null}"#
        );
    }
}
