//! A scripted fake LLM provider: a real HTTP server on 127.0.0.1 speaking
//! OpenAI Chat Completions (`POST …/chat/completions`), the Responses API
//! (`POST …/responses`) and Anthropic Messages (`POST …/messages`), as JSON
//! or as SSE when the request says `"stream": true`.
//!
//! Include it from a test (or example) crate root as a **pub** module, so
//! helpers a given test does not use are not dead code:
//! `#[path = "support/fake_llm.rs"] pub mod fake_llm;`
//!
//! # Scripts
//! Scripts are registered by name ([`FakeLlm::add_script`]) and chosen by a
//! `[script:NAME]` marker in the conversation's first user message (or the
//! default script, [`FakeLlm::set_default_script`]). The turn index is the
//! number of assistant turns in the request, so the server is stateless per
//! conversation: concurrent conversations and retried requests get the
//! right turn. Past the end of a script the reply is [`DEFAULT_REPLY`].
//! `{workdir}` in a turn's text or arguments is replaced by the path of a
//! `[workdir:/abs/path]` marker in the first user message.
//!
//! Requests without tools get canned text: [`TITLE_REPLY`] when the last
//! user message mentions a title, else [`SUMMARY_REPLY`] (condensation).
//! Requests whose last user message contains `<QUESTION>` get
//! [`ANSWER_REPLY`].
//!
//! # Recording
//! Every request is recorded ([`RecordedRequest`]); tests read them with
//! [`FakeLlm::requests`] or wait for a count with
//! [`FakeLlm::wait_for_requests`]. `POST /hook/…` is a catch-all that is
//! recorded and answered `{}` (webhook tests may use it).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Reply to a request without tools that asks for a title.
pub const TITLE_REPLY: &str = "Fake Conversation Title";
/// Reply to any other request without tools (condensation).
pub const SUMMARY_REPLY: &str = "This is a summary of forgotten events.";
/// Reply to an `ask_agent` question.
pub const ANSWER_REPLY: &str = "The agent has been working on a file.";
/// Reply past the end of a script, or without a script.
pub const DEFAULT_REPLY: &str = "Nothing more to do.";

/// One tool call of a scripted turn.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeToolCall {
    /// The call id; generated when `None`.
    pub id: Option<String>,
    /// The tool name.
    pub name: String,
    /// The arguments as JSON text (may be deliberately invalid).
    pub arguments: String,
}

/// Token counts a turn reports. `prompt_tokens` is the total prompt,
/// cache reads and writes included (Anthropic's `input_tokens` is derived).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeUsage {
    /// All prompt tokens (default 100).
    pub prompt_tokens: u64,
    /// Completion tokens (default 20).
    pub completion_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Completion tokens spent reasoning.
    pub reasoning_tokens: u64,
}

impl Default for FakeUsage {
    fn default() -> Self {
        FakeUsage {
            prompt_tokens: 100,
            completion_tokens: 20,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
        }
    }
}

/// An HTTP error returned for the first `times` attempts at a turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The HTTP status.
    pub status: u16,
    /// The response body, verbatim.
    pub body: String,
    /// The `Retry-After` header value, if any.
    pub retry_after: Option<String>,
    /// How many attempts fail before the turn succeeds (`u32::MAX`: always).
    pub times: u32,
}

/// One scripted assistant turn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Turn {
    /// Reply text.
    pub text: Option<String>,
    /// Tool calls (several = parallel calls).
    pub tool_calls: Vec<FakeToolCall>,
    /// Reasoning: `reasoning_content` (Chat), a signed thinking block
    /// (Anthropic), a reasoning item with this summary (Responses).
    pub reasoning: Option<String>,
    /// Reported usage.
    pub usage: FakeUsage,
    /// Wait before answering.
    pub delay: Duration,
    /// Wait between streamed chunks.
    pub chunk_delay: Duration,
    /// Fail the first attempts.
    pub failure: Option<Failure>,
}

impl Turn {
    /// A text reply.
    pub fn text(text: &str) -> Turn {
        Turn {
            text: Some(text.to_string()),
            ..Turn::default()
        }
    }

    /// One tool call.
    pub fn tool(name: &str, arguments: Value) -> Turn {
        Turn::default().and_tool(name, arguments)
    }

    /// Parallel tool calls.
    pub fn tools(calls: Vec<(&str, Value)>) -> Turn {
        calls
            .into_iter()
            .fold(Turn::default(), |t, (n, a)| t.and_tool(n, a))
    }

    /// One tool call whose arguments are the given (possibly invalid) JSON text.
    pub fn raw_tool(name: &str, arguments: &str) -> Turn {
        let mut t = Turn::default();
        t.tool_calls.push(FakeToolCall {
            id: None,
            name: name.to_string(),
            arguments: arguments.to_string(),
        });
        t
    }

    /// A reply with neither text nor tool calls.
    pub fn empty() -> Turn {
        Turn::default()
    }

    /// An HTTP error on every attempt.
    pub fn error(status: u16, body: &str) -> Turn {
        Turn::text(DEFAULT_REPLY).failing(status, body, u32::MAX)
    }

    /// Adds a tool call.
    pub fn and_tool(mut self, name: &str, arguments: Value) -> Turn {
        self.tool_calls.push(FakeToolCall {
            id: None,
            name: name.to_string(),
            arguments: arguments.to_string(),
        });
        self
    }

    /// Sets the text (the thought before tool calls).
    pub fn with_text(mut self, text: &str) -> Turn {
        self.text = Some(text.to_string());
        self
    }

    /// Sets the reasoning.
    pub fn with_reasoning(mut self, reasoning: &str) -> Turn {
        self.reasoning = Some(reasoning.to_string());
        self
    }

    /// Sets the reported usage.
    pub fn with_usage(mut self, usage: FakeUsage) -> Turn {
        self.usage = usage;
        self
    }

    /// Waits before answering.
    pub fn with_delay(mut self, delay: Duration) -> Turn {
        self.delay = delay;
        self
    }

    /// Waits between streamed chunks.
    pub fn with_chunk_delay(mut self, delay: Duration) -> Turn {
        self.chunk_delay = delay;
        self
    }

    /// Fails the first `times` attempts with `status` and `body`.
    pub fn failing(mut self, status: u16, body: &str, times: u32) -> Turn {
        self.failure = Some(Failure {
            status,
            body: body.to_string(),
            retry_after: None,
            times,
        });
        self
    }

    /// Adds a `Retry-After` header to the failure.
    pub fn with_retry_after(mut self, value: &str) -> Turn {
        if let Some(f) = &mut self.failure {
            f.retry_after = Some(value.to_string());
        }
        self
    }

    /// Reads a script from JSON: a list of
    /// `{"content", "tool_calls":[{"name","arguments"(object or text),"id"}],
    /// "reasoning", "usage":{…}, "delay_ms", "chunk_delay_ms",
    /// "error":{"status","body","retry_after","times"}, "repeat"}`.
    pub fn script_from_json(value: &Value) -> Result<Vec<Turn>, String> {
        let items = value.as_array().ok_or("a script is a JSON list of turns")?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let obj = item
                .as_object()
                .ok_or(format!("turn {i} is not an object"))?;
            let string = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
            let mut t = Turn {
                text: string("content"),
                reasoning: string("reasoning"),
                ..Turn::default()
            };
            for call in obj
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = call
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or(format!("turn {i}: tool call without name"))?;
                let arguments = match call.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "{}".to_string(),
                };
                t.tool_calls.push(FakeToolCall {
                    id: call.get("id").and_then(Value::as_str).map(str::to_string),
                    name: name.to_string(),
                    arguments,
                });
            }
            if let Some(u) = obj.get("usage") {
                let n = |k: &str, d: u64| u.get(k).and_then(Value::as_u64).unwrap_or(d);
                t.usage = FakeUsage {
                    prompt_tokens: n("prompt_tokens", 100),
                    completion_tokens: n("completion_tokens", 20),
                    cache_read_tokens: n("cache_read_tokens", 0),
                    cache_write_tokens: n("cache_write_tokens", 0),
                    reasoning_tokens: n("reasoning_tokens", 0),
                };
            }
            let ms =
                |k: &str| Duration::from_millis(obj.get(k).and_then(Value::as_u64).unwrap_or(0));
            t.delay = ms("delay_ms");
            t.chunk_delay = ms("chunk_delay_ms");
            if let Some(e) = obj.get("error") {
                t.failure = Some(Failure {
                    status: e.get("status").and_then(Value::as_u64).unwrap_or(500) as u16,
                    body: e
                        .get("body")
                        .and_then(Value::as_str)
                        .unwrap_or("{}")
                        .to_string(),
                    retry_after: e
                        .get("retry_after")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    times: e
                        .get("times")
                        .and_then(Value::as_u64)
                        .map_or(u32::MAX, |n| n.min(u32::MAX as u64) as u32),
                });
            }
            let repeat = obj.get("repeat").and_then(Value::as_u64).unwrap_or(1);
            for _ in 0..repeat {
                out.push(t.clone());
            }
        }
        Ok(out)
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body (`Value::String` when it was not JSON).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The script the conversation selected, if any.
    pub script: Option<String>,
    /// The turn index (assistant turns in the request).
    pub turn: usize,
}

impl RecordedRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    scripts: Mutex<HashMap<String, Vec<Turn>>>,
    default_script: Mutex<Option<String>>,
    /// Failed attempts per (conversation key, turn).
    attempts: Mutex<HashMap<(String, usize), u32>>,
    requests: Mutex<Vec<RecordedRequest>>,
    count: watch::Sender<usize>,
    seq: AtomicU64,
}

/// The running fake; stops when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> FakeLlm {
        FakeLlm::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind 127.0.0.1:0")
    }

    /// Starts on the given address.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeLlm> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            scripts: Mutex::new(HashMap::new()),
            default_script: Mutex::new(None),
            attempts: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            seq: AtomicU64::new(1),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FakeLlm { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT/v1`: the `base_url` for every API.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers (or replaces) a script.
    pub fn add_script(&self, name: &str, turns: Vec<Turn>) {
        lock(&self.shared.scripts).insert(name.to_string(), turns);
    }

    /// The script used when the first user message has no `[script:…]` marker.
    pub fn set_default_script(&self, name: Option<&str>) {
        *lock(&self.shared.default_script) = name.map(str::to_string);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Requests whose path ends with `suffix`.
    pub fn requests_to(&self, suffix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.path
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .ends_with(suffix)
            })
            .collect()
    }

    /// Forgets recorded requests and failure counters.
    pub fn clear(&self) {
        lock(&self.shared.requests).clear();
        lock(&self.shared.attempts).clear();
        self.shared.count.send_replace(0);
    }

    /// Waits until at least `n` requests were recorded, at most `timeout`.
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, String> {
        let mut rx = self.shared.count.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await;
        match waited {
            Ok(Ok(_)) => Ok(self.requests()),
            _ => Err(format!(
                "waited {timeout:?} for {n} LLM requests, got {}",
                lock(&self.shared.requests).len()
            )),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()).boxed()))
}

fn json_response(status: u16, value: &Value) -> http::Response<Body> {
    full(status, "application/json", value.to_string())
}

/// A body fed by a channel, so streamed chunks can be paced.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

fn sse_response(chunks: Vec<String>, pace: Duration) -> http::Response<Body> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        for chunk in chunks {
            if !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
    });
    http::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(ChannelBody(rx).boxed())
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()).boxed()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Chat,
    Responses,
    Anthropic,
}

/// What the fake needs to know about a request.
#[derive(Default)]
struct View {
    user_texts: Vec<String>,
    assistant_turns: usize,
    has_tools: bool,
    stream: bool,
    model: String,
}

fn text_of(content: Option<&Value>, kinds: &[&str]) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| {
                p.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| kinds.contains(&t))
            })
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn view(api: Api, body: &Value) -> View {
    let mut v = View {
        has_tools: body
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty()),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("fake-model")
            .to_string(),
        ..View::default()
    };
    match api {
        Api::Chat | Api::Anthropic => {
            for m in body
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match m.get("role").and_then(Value::as_str) {
                    Some("user") => {
                        let t = text_of(m.get("content"), &["text"]);
                        if !t.is_empty() || api == Api::Chat {
                            v.user_texts.push(t);
                        }
                    }
                    Some("assistant") => v.assistant_turns += 1,
                    _ => {}
                }
            }
        }
        Api::Responses => match body.get("input") {
            Some(Value::String(s)) => v.user_texts.push(s.clone()),
            Some(Value::Array(items)) => {
                let mut in_assistant_run = false;
                for item in items {
                    let kind = item
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("message");
                    let role = item.get("role").and_then(Value::as_str);
                    let assistant_side = matches!(kind, "reasoning" | "function_call")
                        || (kind == "message" && role == Some("assistant"));
                    if assistant_side && !in_assistant_run {
                        v.assistant_turns += 1;
                    }
                    in_assistant_run = assistant_side;
                    if kind == "message" && role == Some("user") {
                        v.user_texts
                            .push(text_of(item.get("content"), &["input_text", "text"]));
                    }
                }
            }
            _ => {}
        },
    }
    v
}

fn marker<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("[{name}:");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(']')? + start;
    Some(text[start..end].trim())
}

async fn handle(
    shared: Arc<Shared>,
    req: http::Request<Incoming>,
) -> Result<http::Response<Body>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    let raw = match http_body_util::Limited::new(req.into_body(), 64 * 1024 * 1024)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => return Ok(full(413, "text/plain", "body too large")),
    };
    let body: Value = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).to_string()));
    let route = path.split('?').next().unwrap_or_default();
    let api = if route.ends_with("/chat/completions") {
        Some(Api::Chat)
    } else if route.ends_with("/responses") {
        Some(Api::Responses)
    } else if route.ends_with("/messages") {
        Some(Api::Anthropic)
    } else {
        None
    };
    let v = api.map(|a| view(a, &body)).unwrap_or_default();
    let first_user = v.user_texts.first().cloned().unwrap_or_default();
    let script = marker(&first_user, "script")
        .map(str::to_string)
        .or_else(|| lock(&shared.default_script).clone());
    let record = RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        headers,
        body: body.clone(),
        at: Instant::now(),
        script: script.clone(),
        turn: v.assistant_turns,
    };
    {
        let mut requests = lock(&shared.requests);
        requests.push(record);
        let n = requests.len();
        shared.count.send_replace(n);
    }
    if route.starts_with("/hook") {
        return Ok(json_response(200, &json!({})));
    }
    let (Some(api), "POST") = (api, method.as_str()) else {
        return Ok(json_response(
            404,
            &json!({"error": {"message": format!("no route {method} {route}")}}),
        ));
    };

    let last_user = v.user_texts.last().cloned().unwrap_or_default();
    let turn = if !v.has_tools {
        Turn::text(if last_user.to_lowercase().contains("title") {
            TITLE_REPLY
        } else {
            SUMMARY_REPLY
        })
    } else if last_user.contains("<QUESTION>") {
        Turn::text(ANSWER_REPLY)
    } else {
        script
            .as_ref()
            .and_then(|name| {
                lock(&shared.scripts)
                    .get(name)
                    .and_then(|s| s.get(v.assistant_turns).cloned())
            })
            .unwrap_or_else(|| Turn::text(DEFAULT_REPLY))
    };

    if let Some(f) = &turn.failure {
        let failed_so_far = {
            let mut attempts = lock(&shared.attempts);
            let n = attempts
                .entry((first_user.clone(), v.assistant_turns))
                .or_insert(0);
            let before = *n;
            if before < f.times {
                *n += 1;
            }
            before
        };
        if failed_so_far < f.times {
            let mut resp = full(f.status, "application/json", f.body.clone());
            if let Some(ra) = &f.retry_after {
                if let Ok(value) = http::HeaderValue::from_str(ra) {
                    resp.headers_mut().insert("retry-after", value);
                }
            }
            return Ok(resp);
        }
    }
    if !turn.delay.is_zero() {
        tokio::time::sleep(turn.delay).await;
    }
    let turn = substitute_workdir(turn, marker(&first_user, "workdir"));
    let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
    let reply = Reply::new(&turn, seq, &v.model);
    Ok(match (api, v.stream) {
        (Api::Chat, false) => json_response(200, &reply.chat_json()),
        (Api::Chat, true) => sse_response(reply.chat_sse(), turn.chunk_delay),
        (Api::Responses, false) => json_response(200, &reply.responses_json()),
        (Api::Responses, true) => sse_response(reply.responses_sse(), turn.chunk_delay),
        (Api::Anthropic, false) => json_response(200, &reply.anthropic_json()),
        (Api::Anthropic, true) => sse_response(reply.anthropic_sse(), turn.chunk_delay),
    })
}

fn substitute_workdir(mut turn: Turn, workdir: Option<&str>) -> Turn {
    let Some(dir) = workdir else { return turn };
    // Arguments are JSON text: the path goes in JSON-escaped.
    let escaped = Value::String(dir.to_string()).to_string();
    let escaped = &escaped[1..escaped.len() - 1];
    if let Some(t) = &mut turn.text {
        *t = t.replace("{workdir}", dir);
    }
    for call in &mut turn.tool_calls {
        call.arguments = call.arguments.replace("{workdir}", escaped);
    }
    turn
}

/// Pieces of a text for streaming: a few characters each.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect()).collect()
}

/// A turn rendered with concrete ids.
struct Reply {
    seq: u64,
    model: String,
    text: Option<String>,
    reasoning: Option<String>,
    calls: Vec<(String, String, String)>,
    usage: FakeUsage,
}

impl Reply {
    fn new(turn: &Turn, seq: u64, model: &str) -> Reply {
        Reply {
            seq,
            model: model.to_string(),
            text: turn.text.clone(),
            reasoning: turn.reasoning.clone(),
            calls: turn
                .tool_calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let id = c.id.clone().unwrap_or_else(|| format!("fake_{seq}_{i}"));
                    (id, c.name.clone(), c.arguments.clone())
                })
                .collect(),
            usage: turn.usage,
        }
    }

    fn chat_usage(&self) -> Value {
        let u = self.usage;
        let mut details = Map::new();
        details.insert("cached_tokens".into(), u.cache_read_tokens.into());
        if u.cache_write_tokens > 0 {
            details.insert("cache_creation_tokens".into(), u.cache_write_tokens.into());
        }
        json!({
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens,
            "prompt_tokens_details": details,
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        })
    }

    fn call_id(&self, id: &str) -> String {
        if id.starts_with("call_") || id.starts_with("toolu_") {
            id.to_string()
        } else {
            format!("call_{id}")
        }
    }

    fn finish_reason(&self) -> &'static str {
        if self.calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    fn chat_json(&self) -> Value {
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        message.insert(
            "content".into(),
            self.text.clone().map_or(Value::Null, Value::String),
        );
        if let Some(r) = &self.reasoning {
            message.insert("reasoning_content".into(), r.clone().into());
        }
        if !self.calls.is_empty() {
            message.insert(
                "tool_calls".into(),
                self.calls
                    .iter()
                    .map(|(id, name, args)| {
                        json!({"id": self.call_id(id), "type": "function", "function": {"name": name, "arguments": args}})
                    })
                    .collect(),
            );
        }
        json!({
            "id": format!("chatcmpl-fake-{}", self.seq),
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": self.finish_reason()}],
            "usage": self.chat_usage(),
        })
    }

    fn chat_sse(&self) -> Vec<String> {
        let id = format!("chatcmpl-fake-{}", self.seq);
        let chunk = |delta: Value, finish: Value| {
            let c = json!({
                "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            });
            format!("data: {c}\n\n")
        };
        let mut out = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        if let Some(r) = &self.reasoning {
            for p in pieces(r) {
                out.push(chunk(json!({"reasoning_content": p}), Value::Null));
            }
        }
        if let Some(t) = &self.text {
            for p in pieces(t) {
                out.push(chunk(json!({"content": p}), Value::Null));
            }
        }
        for (i, (cid, name, args)) in self.calls.iter().enumerate() {
            out.push(chunk(
                json!({"tool_calls": [{"index": i, "id": self.call_id(cid), "type": "function", "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            for p in pieces(args) {
                out.push(chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": p}}]}),
                    Value::Null,
                ));
            }
        }
        out.push(chunk(json!({}), json!(self.finish_reason())));
        let usage = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": self.model, "choices": [], "usage": self.chat_usage()});
        out.push(format!("data: {usage}\n\n"));
        out.push("data: [DONE]\n\n".to_string());
        out
    }

    fn responses_items(&self) -> Vec<Value> {
        let mut items = Vec::new();
        if let Some(r) = &self.reasoning {
            items.push(json!({
                "type": "reasoning", "id": format!("rs_fake_{}", self.seq),
                "summary": [{"type": "summary_text", "text": r}],
                "encrypted_content": format!("enc-fake-{}", self.seq),
            }));
        }
        if let Some(t) = &self.text {
            items.push(json!({
                "type": "message", "id": format!("msg_fake_{}", self.seq), "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": t, "annotations": []}],
            }));
        }
        for (id, name, args) in &self.calls {
            items.push(json!({
                "type": "function_call", "id": format!("fc_{id}"), "call_id": self.call_id(id),
                "name": name, "arguments": args, "status": "completed",
            }));
        }
        items
    }

    fn responses_usage(&self) -> Value {
        let u = self.usage;
        json!({
            "input_tokens": u.prompt_tokens,
            "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
            "output_tokens": u.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.prompt_tokens + u.completion_tokens,
        })
    }

    fn responses_json(&self) -> Value {
        json!({
            "id": format!("resp_fake_{}", self.seq), "object": "response", "created_at": 1_700_000_000,
            "status": "completed", "model": self.model, "output": self.responses_items(),
            "usage": self.responses_usage(),
        })
    }

    fn responses_sse(&self) -> Vec<String> {
        let mut seq = 0u64;
        let mut out = Vec::new();
        let mut event = |kind: &str, mut data: Value| {
            data["type"] = kind.into();
            data["sequence_number"] = seq.into();
            seq += 1;
            out.push(format!("event: {kind}\ndata: {data}\n\n"));
        };
        let id = format!("resp_fake_{}", self.seq);
        event(
            "response.created",
            json!({"response": {"id": id, "object": "response", "status": "in_progress", "model": self.model, "output": []}}),
        );
        for (index, item) in self.responses_items().into_iter().enumerate() {
            let item_id = item["id"].clone();
            let mut start = item.clone();
            match item["type"].as_str() {
                Some("reasoning") => start["summary"] = json!([]),
                Some("message") => start["content"] = json!([]),
                Some("function_call") => start["arguments"] = json!(""),
                _ => {}
            }
            event(
                "response.output_item.added",
                json!({"output_index": index, "item": start}),
            );
            match item["type"].as_str() {
                Some("reasoning") => {
                    let text = item["summary"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    for p in pieces(&text) {
                        event(
                            "response.reasoning_summary_text.delta",
                            json!({"item_id": item_id, "output_index": index, "summary_index": 0, "delta": p}),
                        );
                    }
                    event(
                        "response.reasoning_summary_text.done",
                        json!({"item_id": item_id, "output_index": index, "summary_index": 0, "text": text}),
                    );
                }
                Some("message") => {
                    let text = item["content"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    for p in pieces(&text) {
                        event(
                            "response.output_text.delta",
                            json!({"item_id": item_id, "output_index": index, "content_index": 0, "delta": p}),
                        );
                    }
                    event(
                        "response.output_text.done",
                        json!({"item_id": item_id, "output_index": index, "content_index": 0, "text": text}),
                    );
                }
                Some("function_call") => {
                    let args = item["arguments"].as_str().unwrap_or_default().to_string();
                    for p in pieces(&args) {
                        event(
                            "response.function_call_arguments.delta",
                            json!({"item_id": item_id, "output_index": index, "delta": p}),
                        );
                    }
                    event(
                        "response.function_call_arguments.done",
                        json!({"item_id": item_id, "output_index": index, "arguments": args}),
                    );
                }
                _ => {}
            }
            event(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            );
        }
        event(
            "response.completed",
            json!({"response": self.responses_json()}),
        );
        out
    }

    fn anthropic_blocks(&self) -> Vec<Value> {
        let mut blocks = Vec::new();
        if let Some(r) = &self.reasoning {
            blocks.push(json!({"type": "thinking", "thinking": r, "signature": format!("sig-fake-{}", self.seq)}));
        }
        if let Some(t) = &self.text {
            blocks.push(json!({"type": "text", "text": t}));
        }
        for (id, name, args) in &self.calls {
            // Invalid arguments cannot be an object; a string carries them.
            let input = serde_json::from_str::<Value>(args)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| Value::String(args.clone()));
            blocks.push(json!({"type": "tool_use", "id": self.tool_use_id(id), "name": name, "input": input}));
        }
        blocks
    }

    fn tool_use_id(&self, id: &str) -> String {
        if id.starts_with("toolu_") {
            id.to_string()
        } else {
            format!("toolu_{id}")
        }
    }

    fn anthropic_usage(&self) -> Value {
        let u = self.usage;
        json!({
            "input_tokens": u.prompt_tokens.saturating_sub(u.cache_read_tokens + u.cache_write_tokens),
            "cache_creation_input_tokens": u.cache_write_tokens,
            "cache_read_input_tokens": u.cache_read_tokens,
            "output_tokens": u.completion_tokens,
        })
    }

    fn stop_reason(&self) -> &'static str {
        if self.calls.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        }
    }

    fn anthropic_json(&self) -> Value {
        json!({
            "id": format!("msg_fake_{}", self.seq), "type": "message", "role": "assistant", "model": self.model,
            "content": self.anthropic_blocks(), "stop_reason": self.stop_reason(), "stop_sequence": null,
            "usage": self.anthropic_usage(),
        })
    }

    fn anthropic_sse(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut event = |kind: &str, mut data: Value| {
            data["type"] = kind.into();
            out.push(format!("event: {kind}\ndata: {data}\n\n"));
        };
        let mut start_usage = self.anthropic_usage();
        start_usage["output_tokens"] = 1.into();
        event(
            "message_start",
            json!({"message": {"id": format!("msg_fake_{}", self.seq), "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
        );
        event("ping", json!({}));
        for (index, block) in self.anthropic_blocks().into_iter().enumerate() {
            match block["type"].as_str() {
                Some("thinking") => {
                    event(
                        "content_block_start",
                        json!({"index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
                    );
                    for p in pieces(block["thinking"].as_str().unwrap_or_default()) {
                        event(
                            "content_block_delta",
                            json!({"index": index, "delta": {"type": "thinking_delta", "thinking": p}}),
                        );
                    }
                    event(
                        "content_block_delta",
                        json!({"index": index, "delta": {"type": "signature_delta", "signature": block["signature"]}}),
                    );
                }
                Some("text") => {
                    event(
                        "content_block_start",
                        json!({"index": index, "content_block": {"type": "text", "text": ""}}),
                    );
                    for p in pieces(block["text"].as_str().unwrap_or_default()) {
                        event(
                            "content_block_delta",
                            json!({"index": index, "delta": {"type": "text_delta", "text": p}}),
                        );
                    }
                }
                Some("tool_use") => {
                    event(
                        "content_block_start",
                        json!({"index": index, "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}),
                    );
                    let json_text = match &block["input"] {
                        Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    };
                    for p in pieces(&json_text) {
                        event(
                            "content_block_delta",
                            json!({"index": index, "delta": {"type": "input_json_delta", "partial_json": p}}),
                        );
                    }
                }
                _ => {}
            }
            event("content_block_stop", json!({"index": index}));
        }
        event(
            "message_delta",
            json!({"delta": {"stop_reason": self.stop_reason(), "stop_sequence": null}, "usage": {"output_tokens": self.usage.completion_tokens}}),
        );
        event("message_stop", json!({}));
        out
    }
}
