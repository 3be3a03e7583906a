//! The LLM client: provider routing, OpenAI Chat Completions and Responses,
//! Anthropic Messages, streaming, retries, usage and cost.
//!
//! One entry point, [`LlmClient::complete`]: it routes the [`LlmConfig`]
//! ([`route`]), shapes the request for the route's wire API ([`chat`],
//! [`responses`], [`anthropic`]) the way the Python server (through LiteLLM)
//! shapes it, sends it over the shared [`Outbound`] client, retries transient
//! failures, and returns the assistant [`Message`] with the call's
//! [`CallUsage`]. The caller records the usage into `ConversationStats`.
//!
//! # Configuration fields
//!
//! Honoured:
//! - `model` (routing, prefix stripped on the wire), `model_canonical_name`
//!   (capability lookup), `base_url`, `api_key`, `api_version` (Azure),
//!   `ollama_base_url`, `openrouter_site_url` / `openrouter_app_name`
//!   (OpenRouter headers), `extra_headers` (override ours), `api_mode`.
//! - `num_retries` (extra attempts), `retry_multiplier`, `retry_min_wait`,
//!   `retry_max_wait`, `timeout` (per attempt, whole request including the
//!   stream; 0 or null means none), `stream_idle_timeout` (between streamed
//!   chunks).
//! - `temperature`, `top_p`, `top_k` (Anthropic and OpenAI-compatible
//!   gateways that take it), `max_output_tokens`, `max_input_tokens`
//!   (`context_window`), `reasoning_effort`, `reasoning_summary` and
//!   `enable_encrypted_reasoning` (Responses), `extended_thinking_budget`
//!   (Anthropic), `seed` (Chat Completions), `caching_prompt`,
//!   `prompt_cache_retention`, `capability_overrides`, `disable_vision`,
//!   `force_string_serializer`, `litellm_extra_body` (merged into the request
//!   body last), `drop_params`, `input_cost_per_token` /
//!   `output_cost_per_token`, `usage_id` (the caller's metrics key).
//! - `drop_params`: the client only sends what the route takes; a configured
//!   `top_k` or `seed` the wire API has no field for is dropped when true
//!   (default) and refused with `LLMBadRequestError` when false, as LiteLLM
//!   does. Sampling parameters are dropped for reasoning models either way,
//!   as the SDK does.
//!
//! Ignored, and why:
//! - `aws_*`: Bedrock needs SigV4 signing; the `bedrock/` provider is refused
//!   with a clear error (use a LiteLLM proxy in front of it).
//! - `provider_connection_id`, `auth_type`, `subscription_vendor`,
//!   `is_subscription`: ChatGPT-subscription OAuth is a desktop-app flow the
//!   server does not run; the API key is used as given.
//! - `max_message_chars`: applied by the tools when they render observations,
//!   not by the client (tool text is still capped at 50 000 characters on the
//!   wire, as the SDK does).
//! - `disable_stop_word`: no stop words are sent in native tool calling.
//! - `log_completions`, `log_completions_folder`: completion logs would put
//!   prompts (and secrets in them) on disk; not written.
//! - `custom_tokenizer`: no local token counting; usage comes from the provider.
//! - `native_tool_calling: false`: prompt-based tool calling is not
//!   implemented; tools are always sent natively.
//! - `inline_image_urls`: image URLs are passed through; providers that only
//!   take `data:` URLs need the caller to inline them.
//!
//! # Cost
//!
//! Cost per call = `prompt_tokens × input_cost_per_token +
//! completion_tokens × output_cost_per_token` when either price is set; a
//! LiteLLM proxy's `x-litellm-response-cost` header wins when present. There
//! is no built-in price table, so unknown prices cost 0 (as the Python server
//! reports for models missing from LiteLLM's table).

pub mod anthropic;
pub mod chat;
pub mod error;
pub mod features;
pub mod pyjson;
pub mod responses;
pub mod route;
pub mod sse;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

pub use error::{LlmError, LlmErrorKind};
pub use route::Api;

use crate::api::llm_config::LlmConfig;
use crate::api::message::{Content, Message, Role};
use crate::api::metrics::CallUsage;
use crate::outbound::Outbound;
use crate::tools::ToolDefinition;
use features::Features;
use route::Route;
use sse::SseParser;

/// A tool as the model sees it: name, description and the final JSON schema
/// of its arguments (with `security_risk`/`summary` already added by the agent).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSchema {
    /// The function name.
    pub name: String,
    /// The description, verbatim.
    pub description: String,
    /// The JSON schema of the arguments object.
    pub parameters: Value,
}

impl From<&ToolDefinition> for ToolSchema {
    fn from(def: &ToolDefinition) -> Self {
        ToolSchema {
            name: def.name.clone(),
            description: def.description.clone(),
            parameters: def.parameters.clone(),
        }
    }
}

/// One call's input.
#[derive(Clone, Debug, Default)]
pub struct CompletionRequest {
    /// The conversation as LLM messages (system first).
    pub messages: Vec<Message>,
    /// The tools offered; empty for title, summary and other plain calls.
    pub tools: Vec<ToolSchema>,
    /// The conversation id (dashed), sent as `prompt_cache_key` where the
    /// provider takes it.
    pub prompt_cache_key: Option<String>,
    /// Stream the reply over SSE and report deltas (the agent sets this from `LlmConfig::stream`).
    pub stream: bool,
}

/// One call's result.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionResponse {
    /// The provider's response id (`chatcmpl-…`, `resp_…`, `msg_…`), the events' `llm_response_id`.
    pub id: String,
    /// The assistant message: text, tool calls, `reasoning_content`,
    /// `thinking_blocks`, `responses_reasoning_item`.
    pub message: Message,
    /// Tokens, latency and cost of the successful attempt.
    pub usage: CallUsage,
    /// `stop`, `tool_calls`, `length`, … when the provider said.
    pub finish_reason: Option<String>,
}

/// A streamed piece of the reply, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamDelta {
    /// Reply text (may be empty: providers send empty chunks at boundaries).
    Content(String),
    /// Reasoning / thinking text.
    Reasoning(String),
}

/// A parsed reply before usage and cost are priced.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    pub id: String,
    pub message: Message,
    pub usage: RawUsage,
    pub finish_reason: Option<String>,
}

/// Token counts as the provider reported them, normalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawUsage {
    pub prompt: u64,
    pub completion: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

/// The LLM client. Cheap to clone; shares the process's outgoing connection pool.
#[derive(Clone, Default)]
pub struct LlmClient {
    outbound: Outbound,
}

/// Longest non-streamed reply body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Longest error body kept for the error text.
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Tool results longer than this are middle-truncated on the wire (the SDK's
/// `DEFAULT_TEXT_CONTENT_LIMIT`).
pub(crate) const TOOL_TEXT_LIMIT: usize = 50_000;

impl LlmClient {
    /// A client on the shared outgoing HTTP client.
    pub fn new(outbound: Outbound) -> Self {
        LlmClient { outbound }
    }

    /// Runs one completion: routes, sends, retries, parses.
    ///
    /// With `request.stream`, `on_delta` receives text and reasoning deltas
    /// as they arrive (a retried attempt streams again from the start).
    /// `cancel` aborts the in-flight attempt or back-off sleep at once with
    /// an [`LlmErrorKind::Cancelled`] error.
    pub async fn complete(
        &self,
        config: &LlmConfig,
        request: CompletionRequest,
        on_delta: Option<&(dyn Fn(StreamDelta) + Send + Sync)>,
        cancel: &CancellationToken,
    ) -> Result<CompletionResponse, LlmError> {
        let route = route::resolve(config)?;
        let features = features::resolve(config, &route);
        let body = build_body(config, &route, &features, &request)?;
        let body = Bytes::from(
            body.to_bytes()
                .map_err(|e| LlmError::bad_request(format!("request not serialisable: {e}")))?,
        );
        let timeout = config.timeout.filter(|t| *t > 0).map(Duration::from_secs);
        let noop = |_: StreamDelta| {};
        let emit: &(dyn Fn(StreamDelta) + Send + Sync) = on_delta.unwrap_or(&noop);
        let mut retries_done = 0u32;
        loop {
            let started = Instant::now();
            let attempt = self.attempt(config, &route, body.clone(), request.stream, emit);
            let result = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(LlmError::cancelled()),
                r = with_timeout(timeout, attempt) => r,
            };
            match result {
                Ok((parsed, header_cost)) => {
                    return Ok(finish(
                        config,
                        &features,
                        parsed,
                        header_cost,
                        started.elapsed(),
                    ));
                }
                Err(err) if err.retryable && retries_done < config.num_retries => {
                    let wait = backoff(config, retries_done, err.retry_after);
                    retries_done += 1;
                    // A provider may echo the key it was given; the log never sees it.
                    let masker = crate::secrets::Masker::new(config.secret_values());
                    tracing::warn!(
                        model = %config.model,
                        code = err.code(),
                        detail = %masker.mask_str(&err.detail),
                        attempt = retries_done,
                        wait_secs = wait.as_secs_f64(),
                        "LLM call failed; retrying"
                    );
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return Err(LlmError::cancelled()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn attempt(
        &self,
        config: &LlmConfig,
        route: &Route,
        body: Bytes,
        stream: bool,
        emit: &(dyn Fn(StreamDelta) + Send + Sync),
    ) -> Result<(Parsed, Option<f64>), LlmError> {
        let builder = http::Request::post(route.url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::ACCEPT,
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .header(
                http::header::USER_AGENT,
                concat!("agent-server/", env!("CARGO_PKG_VERSION")),
            );
        let mut request = builder.body(Full::new(body)).map_err(|e| {
            LlmError::bad_request(format!("invalid LLM endpoint '{}': {e}", route.url))
        })?;
        // Route headers (auth, provider, the user's extra_headers) replace defaults of the same name.
        for (name, value) in &route.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let response = self
            .outbound
            .send(request, None)
            .await
            .map_err(LlmError::connection)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        if !status.is_success() {
            let raw = read_body(&mut body, MAX_ERROR_BODY, true).await?;
            return Err(LlmError::from_status(
                route.label,
                status.as_u16(),
                &String::from_utf8_lossy(&raw),
                retry_after(&headers),
            ));
        }
        let header_cost = headers
            .get("x-litellm-response-cost")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|c| c.is_finite() && *c >= 0.0);
        let is_sse = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
        let parsed = if stream && is_sse {
            let idle = config
                .stream_idle_timeout
                .filter(|t| t.is_finite() && *t > 0.0);
            read_stream(route, &mut body, idle, emit).await?
        } else {
            let raw = read_body(&mut body, MAX_BODY, false).await?;
            let value: Value = serde_json::from_slice(&raw).map_err(|e| {
                LlmError::no_response(format!("{} returned invalid JSON: {e}", route.label))
            })?;
            match route.api {
                Api::Chat => chat::parse_response(route, &value)?,
                Api::Responses => responses::parse_response(route, &value)?,
                Api::Anthropic => anthropic::parse_response(route, &value)?,
            }
        };
        Ok((parsed, header_cost))
    }
}

async fn with_timeout<T>(
    timeout: Option<Duration>,
    fut: impl std::future::Future<Output = Result<T, LlmError>>,
) -> Result<T, LlmError> {
    match timeout {
        Some(t) => tokio::time::timeout(t, fut)
            .await
            .unwrap_or_else(|_| Err(LlmError::timeout("hard timeout", t.as_secs_f64()))),
        None => fut.await,
    }
}

/// Reads a whole body up to `limit` bytes; an error body is cut at the limit,
/// a reply body over it is an error.
async fn read_body(
    body: &mut hyper::body::Incoming,
    limit: usize,
    truncate: bool,
) -> Result<Vec<u8>, LlmError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(LlmError::connection)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                if truncate {
                    out.extend_from_slice(&data[..limit - out.len()]);
                    break;
                }
                return Err(LlmError::no_response(format!(
                    "LLM reply larger than {limit} bytes"
                )));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The decoder of one streamed reply.
enum Decoder {
    Chat(chat::StreamState),
    Responses(responses::StreamState),
    Anthropic(anthropic::StreamState),
}

impl Decoder {
    fn feed(
        &mut self,
        route: &Route,
        event: &sse::SseEvent,
        emit: &dyn Fn(StreamDelta),
    ) -> Result<(), LlmError> {
        match self {
            Decoder::Chat(s) => s.feed(route, event, emit),
            Decoder::Responses(s) => s.feed(route, event, emit),
            Decoder::Anthropic(s) => s.feed(route, event, emit),
        }
    }

    fn done(&self) -> bool {
        match self {
            Decoder::Chat(s) => s.done,
            Decoder::Responses(s) => s.done,
            Decoder::Anthropic(s) => s.done,
        }
    }

    fn finish(self, route: &Route) -> Result<Parsed, LlmError> {
        match self {
            Decoder::Chat(s) => s.finish(route),
            Decoder::Responses(s) => s.finish(route),
            Decoder::Anthropic(s) => s.finish(route),
        }
    }
}

async fn read_stream(
    route: &Route,
    body: &mut hyper::body::Incoming,
    idle: Option<f64>,
    emit: &(dyn Fn(StreamDelta) + Send + Sync),
) -> Result<Parsed, LlmError> {
    let mut parser = SseParser::new();
    let mut decoder = match route.api {
        Api::Chat => Decoder::Chat(chat::StreamState::default()),
        Api::Responses => Decoder::Responses(responses::StreamState::default()),
        Api::Anthropic => Decoder::Anthropic(anthropic::StreamState::default()),
    };
    let overflow = |_| LlmError::no_response(format!("{} stream line too long", route.label));
    loop {
        let next = match idle {
            Some(secs) => tokio::time::timeout(Duration::from_secs_f64(secs), body.frame())
                .await
                .map_err(|_| LlmError::timeout("stream idle timeout", secs))?,
            None => body.frame().await,
        };
        let Some(frame) = next else { break };
        let frame = frame.map_err(LlmError::connection)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for event in parser.push(&data).map_err(overflow)? {
            decoder.feed(route, &event, emit)?;
        }
        if decoder.done() {
            break;
        }
    }
    if let Some(event) = parser.finish() {
        decoder.feed(route, &event, emit)?;
    }
    decoder.finish(route)
}

fn finish(
    config: &LlmConfig,
    features: &Features,
    parsed: Parsed,
    header_cost: Option<f64>,
    latency: Duration,
) -> CompletionResponse {
    let u = parsed.usage;
    let priced = config.input_cost_per_token.is_some() || config.output_cost_per_token.is_some();
    let cost = match header_cost {
        Some(c) => c,
        None if priced => {
            u.prompt as f64 * config.input_cost_per_token.unwrap_or(0.0)
                + u.completion as f64 * config.output_cost_per_token.unwrap_or(0.0)
        }
        None => 0.0,
    };
    CompletionResponse {
        usage: CallUsage {
            prompt_tokens: u.prompt,
            completion_tokens: u.completion,
            cache_read_tokens: u.cache_read,
            cache_write_tokens: u.cache_write,
            reasoning_tokens: u.reasoning,
            context_window: features.max_input_tokens,
            response_id: parsed.id.clone(),
            latency: latency.as_secs_f64(),
            cost: if cost.is_finite() { cost.max(0.0) } else { 0.0 },
        },
        id: parsed.id,
        message: parsed.message,
        finish_reason: parsed.finish_reason,
    }
}

/// The wait before retry number `n + 1`: `multiplier × 2^n` clamped to
/// [min, max], raised to the provider's `Retry-After` (still at most max).
pub fn backoff(config: &LlmConfig, n: u32, retry_after: Option<Duration>) -> Duration {
    let min = config.retry_min_wait as f64;
    let max = (config.retry_max_wait as f64).max(min);
    let exp = config.retry_multiplier.max(0.0) * 2f64.powi(n.min(60) as i32);
    let mut secs = if exp.is_finite() {
        exp.clamp(min, max)
    } else {
        max
    };
    if let Some(hint) = retry_after {
        secs = secs.max(hint.as_secs_f64()).min(max);
    }
    Duration::from_secs_f64(secs.max(0.0))
}

/// `Retry-After` (seconds or an HTTP date) or `retry-after-ms`.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let text = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    parse_retry_after(text, jiff::Timestamp::now())
}

/// Parses a `Retry-After` value relative to `now`.
pub fn parse_retry_after(text: &str, now: jiff::Timestamp) -> Option<Duration> {
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = jiff::fmt::rfc2822::parse(text).ok()?.timestamp();
    let delta = when.duration_since(now);
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

/// A request body: its fields in order, one of which may be written ahead
/// of time (the history, the part that grows) and spliced in at its place.
pub(crate) struct Body {
    fields: Map<String, Value>,
    written: Option<(&'static str, Vec<u8>)>,
}

impl Body {
    /// `fields` with `key`'s value already serialised as `json`.
    pub(crate) fn with_written(
        fields: Map<String, Value>,
        key: &'static str,
        json: Vec<u8>,
    ) -> Body {
        Body {
            fields,
            written: Some((key, json)),
        }
    }

    /// Sets a field; a written one it replaces is dropped.
    fn insert(&mut self, key: String, value: Value) {
        if self.written.as_ref().is_some_and(|(k, _)| *k == key) {
            self.written = None;
        }
        self.fields.insert(key, value);
    }

    /// The JSON text: exactly what `serde_json::to_vec` gives for the same
    /// fields with the written value in its place.
    fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let extra = self.written.as_ref().map_or(0, |(_, w)| w.len());
        let mut out = Vec::with_capacity(extra + 4096);
        out.push(b'{');
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key)?;
            out.push(b':');
            match &self.written {
                Some((k, json)) if k == key => out.extend_from_slice(json),
                _ => serde_json::to_writer(&mut out, value)?,
            }
        }
        out.push(b'}');
        Ok(out)
    }
}

fn build_body(
    config: &LlmConfig,
    route: &Route,
    features: &Features,
    request: &CompletionRequest,
) -> Result<Body, LlmError> {
    // Only the cache markers need a copy of the history.
    let marked;
    let messages: &[Message] = if features.prompt_cache {
        marked = with_cache_markers(&request.messages);
        &marked
    } else {
        &request.messages
    };
    let mut body = match route.api {
        Api::Chat => chat::build_body(config, route, features, request, messages)?,
        Api::Responses => responses::build_body(config, route, features, request, messages)?,
        Api::Anthropic => anthropic::build_body(config, route, features, request, messages)?,
    };
    for (k, v) in &config.litellm_extra_body {
        body.insert(k.clone(), v.clone());
    }
    Ok(body)
}

/// The SDK's prompt-caching breakpoints: the static system block (the first
/// part only when there is a dynamic second part) and the last part of the
/// last user or tool message.
pub fn with_cache_markers(messages: &[Message]) -> Vec<Message> {
    let mut out = messages.to_vec();
    if let Some(first) = out.first_mut() {
        if first.role == Role::System {
            for (i, part) in first.content.iter_mut().enumerate().take(2) {
                set_cache(part, i == 0);
            }
        }
    }
    if let Some(last) = out
        .iter_mut()
        .rev()
        .find(|m| matches!(m.role, Role::User | Role::Tool))
    {
        if let Some(part) = last.content.last_mut() {
            set_cache(part, true);
        }
    }
    out
}

fn set_cache(part: &mut Content, on: bool) {
    match part {
        Content::Text(t) => t.cache_prompt = on,
        Content::Image(i) => i.cache_prompt = on,
    }
}

/// Inserts `key` when the value is present.
pub(crate) fn put(body: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        body.insert(key.to_string(), v);
    }
}

/// A float as a JSON number (non-finite values are dropped).
pub(crate) fn num(v: Option<f64>) -> Option<Value> {
    v.and_then(serde_json::Number::from_f64).map(Value::Number)
}

/// Refuses (or drops) a configured parameter the wire API cannot carry.
pub(crate) fn unsupported_param(
    config: &LlmConfig,
    route: &Route,
    name: &str,
    set: bool,
) -> Result<(), LlmError> {
    if set && !config.drop_params {
        return Err(LlmError::bad_request(format!(
            "{} does not support the parameter '{name}' for model {}; set drop_params to true to drop it",
            route.label, config.model
        )));
    }
    Ok(())
}

/// Tool result text capped like the SDK's `_maybe_truncate_tool_text`.
pub(crate) fn tool_text(text: &str) -> String {
    crate::tools::truncate::maybe_truncate(
        text,
        TOOL_TEXT_LIMIT,
        crate::tools::truncate::DEFAULT_TRUNCATE_NOTICE,
        None,
    )
}

/// Parses a token count that may be missing, null or a float.
pub(crate) fn count(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_written_field_is_spliced_in_place() {
        let messages = json!([{"content": "é \"x\"", "role": "user"}]);
        let mut fields = Map::new();
        fields.insert("messages".into(), Value::Null);
        fields.insert("model".into(), "m".into());
        let written = serde_json::to_vec(&messages).unwrap();
        let mut body = Body::with_written(fields.clone(), "messages", written);
        let mut want = fields;
        want.insert("messages".into(), messages);
        assert_eq!(body.to_bytes().unwrap(), serde_json::to_vec(&want).unwrap());
        // `litellm_extra_body` may replace it, in place.
        body.insert("messages".into(), json!([]));
        body.insert("extra".into(), json!(1));
        assert_eq!(
            String::from_utf8(body.to_bytes().unwrap()).unwrap(),
            r#"{"messages":[],"model":"m","extra":1}"#
        );
    }

    #[test]
    fn backoff_schedule_matches_tenacity() {
        let cfg = LlmConfig::default();
        let secs: Vec<f64> = (0..5)
            .map(|n| backoff(&cfg, n, None).as_secs_f64())
            .collect();
        assert_eq!(secs, vec![8.0, 16.0, 32.0, 64.0, 64.0]);
        let fast = LlmConfig {
            retry_min_wait: 0,
            retry_max_wait: 1,
            retry_multiplier: 0.01,
            ..LlmConfig::default()
        };
        assert_eq!(backoff(&fast, 0, None), Duration::from_millis(10));
        assert_eq!(backoff(&fast, 2, None), Duration::from_millis(40));
        assert_eq!(
            backoff(&fast, 0, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            backoff(&fast, 0, Some(Duration::from_secs(100))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn retry_after_forms() {
        let now: jiff::Timestamp = "2015-10-21T07:27:50Z".parse().unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn cache_markers_follow_the_sdk() {
        let msgs = vec![
            Message::system(vec![Content::text("static"), Content::text("dynamic")]),
            Message::user("first"),
            Message::assistant(vec![Content::text("ok")]),
            Message::tool("c1", "think", vec![Content::text("a"), Content::text("b")]),
            Message::assistant(vec![Content::text("done")]),
        ];
        let out = with_cache_markers(&msgs);
        let flag = |m: &Message, i: usize| match &m.content[i] {
            Content::Text(t) => t.cache_prompt,
            Content::Image(i) => i.cache_prompt,
        };
        assert!(flag(&out[0], 0));
        assert!(!flag(&out[0], 1));
        assert!(!flag(&out[1], 0));
        assert!(!flag(&out[3], 0));
        assert!(flag(&out[3], 1));
        assert!(!flag(&msgs[3], 1), "the caller's messages are untouched");
    }
}
