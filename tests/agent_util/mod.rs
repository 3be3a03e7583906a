//! Helpers shared by the agent tests (`tests/agent_*.rs`): a real server
//! with a scripted fake LLM, conversation creation, waiting for a status,
//! reading events, and an event-socket reader. Include from a test crate
//! root with `#[path = "agent_util/mod.rs"] pub mod agent_util;` after the
//! `support` and `fake_llm` modules.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::fake_llm::FakeLlm;
use crate::support::{ws_connect, Client, ServerBuilder, TestServer};

/// The session key of every test server.
pub const KEY: &str = "agent-test-key";

/// Everything a test needs: the fake provider, the server and its directories.
pub struct Harness {
    /// The scripted provider.
    pub llm: FakeLlm,
    /// The server.
    pub server: TestServer,
    /// Where conversations are stored.
    pub data: PathBuf,
    /// The agent's working directory.
    pub work: PathBuf,
    _dirs: tempfile::TempDir,
}

impl Harness {
    /// Starts a fake LLM and a server (extra environment in `env`).
    pub async fn start(env: &[(&str, &str)]) -> Harness {
        let llm = FakeLlm::start().await;
        let dirs = tempfile::tempdir().expect("temp dir");
        let data = dirs.path().join("conversations");
        let work = dirs.path().join("work");
        std::fs::create_dir_all(&work).expect("work dir");
        let server = Self::spawn(&data, env);
        Harness {
            llm,
            server,
            data,
            work,
            _dirs: dirs,
        }
    }

    /// A server on `data` (also used to restart).
    pub fn spawn(data: &Path, env: &[(&str, &str)]) -> TestServer {
        let mut b = ServerBuilder::new()
            .session_key(KEY)
            .env("OH_CONVERSATIONS_PATH", &data.display().to_string())
            .env("RUST_LOG", "info");
        for (k, v) in env {
            b = b.env(k, v);
        }
        b.spawn()
    }

    /// A client on a new connection.
    pub async fn client(&self) -> Client {
        self.server.client().await
    }

    /// A start request: `openai/gpt-4o` at the fake, the given tools, the
    /// first message naming `script` (not run), no automatic title.
    pub fn body(&self, script: &str, tools: &[&str]) -> Value {
        json!({
            "workspace": {"kind": "LocalWorkspace", "working_dir": self.work},
            "agent": {"kind": "Agent",
                      "llm": {"model": "openai/gpt-4o", "base_url": self.llm.base_url(),
                              "api_key": "sk-fake", "usage_id": "agent", "num_retries": 0},
                      "tools": tools.iter().map(|t| json!({"name": t})).collect::<Vec<_>>()},
            "initial_message": {"role": "user", "content": [{"type": "text",
                                 "text": format!("Please do it [script:{script}] [workdir:{}]", self.work.display())}],
                                "run": false},
            "autotitle": false,
            "max_iterations": 30
        })
    }
}

/// A JSON request with the session key; the status and the parsed body.
pub async fn call(
    client: &mut Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    client.api(KEY, method, path, body).await
}

/// Creates a conversation; its id.
pub async fn create(client: &mut Client, body: &Value) -> String {
    let (status, info) = call(client, Method::POST, "/api/conversations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    info["id"].as_str().expect("id").to_string()
}

/// `POST …/run`; the status.
pub async fn run(client: &mut Client, id: &str) -> StatusCode {
    call(
        client,
        Method::POST,
        &format!("/api/conversations/{id}/run"),
        None,
    )
    .await
    .0
}

/// Sends a user message with `run`.
pub async fn send(client: &mut Client, id: &str, text: &str, run: bool) -> (StatusCode, Value) {
    call(
        client,
        Method::POST,
        &format!("/api/conversations/{id}/events"),
        Some(&json!({"role": "user", "content": [{"type": "text", "text": text}], "run": run})),
    )
    .await
}

/// The conversation info.
pub async fn info(client: &mut Client, id: &str) -> Value {
    let (status, v) = call(
        client,
        Method::GET,
        &format!("/api/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// `DELETE /api/conversations/{id}`, which must succeed.
pub async fn delete(client: &mut Client, id: &str) {
    let (status, body) = call(
        client,
        Method::DELETE,
        &format!("/api/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Polls until the status is one of `wanted` (at most 20 s); the info.
pub async fn wait_status(client: &mut Client, id: &str, wanted: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = info(client, id).await;
        let status = v["execution_status"].as_str().unwrap_or("").to_string();
        if wanted.contains(&status.as_str()) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "status {status}, wanted {wanted:?}; events: {:?}",
            kinds(&events(client, id).await)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until an event of `kind` is stored (at most 20 s); every event.
/// A run that fails sets its status before it stores the error event, as
/// Python does, so waiting for the status alone races the event.
pub async fn wait_event(client: &mut Client, id: &str, kind: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let evs = events(client, id).await;
        if evs.iter().any(|e| e["kind"] == kind) {
            return evs;
        }
        assert!(Instant::now() < deadline, "no {kind}: {:?}", kinds(&evs));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every stored event (compact form), in log order.
pub async fn events(client: &mut Client, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..1000 {
        let path = match &page {
            Some(p) => format!("/api/conversations/{id}/events/search?limit=100&page_id={p}"),
            None => format!("/api/conversations/{id}/events/search?limit=100"),
        };
        let (status, body) = call(client, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        out.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["next_page_id"].as_str() {
            Some(n) => page = Some(n.to_string()),
            None => break,
        }
    }
    out
}

/// `Kind` or `Kind[key=value]` for state updates (stats values left out).
pub fn label(e: &Value) -> String {
    let kind = e["kind"].as_str().unwrap_or("?");
    match e["key"].as_str() {
        Some("execution_status") => format!(
            "{kind}[execution_status={}]",
            e["value"].as_str().unwrap_or("?")
        ),
        Some(key) => format!("{kind}[{key}]"),
        None => match (kind, e["source"].as_str()) {
            ("MessageEvent", Some(src)) => format!("MessageEvent({src})"),
            _ => kind.to_string(),
        },
    }
}

/// The labels of a list of events.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(label).collect()
}

/// The events of one kind.
pub fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// An open event socket.
pub struct Socket {
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    /// Every frame read so far.
    pub frames: Vec<Value>,
}

impl Socket {
    /// Connects to a conversation's event socket.
    pub async fn open(server: &TestServer, id: &str) -> Socket {
        let ws = ws_connect(
            server.addr,
            &format!("/sockets/events/{id}?session_api_key={KEY}"),
            &[],
        )
        .await;
        Socket {
            ws,
            frames: Vec::new(),
        }
    }

    /// Reads frames until `done` holds for one (at most 20 s); returns it.
    pub async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, self.ws.next()).await;
            let Ok(Some(Ok(msg))) = next else {
                panic!(
                    "socket ended or timed out; frames: {:?}",
                    kinds(&self.frames)
                );
            };
            if let WsMessage::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("frame JSON");
                self.frames.push(v.clone());
                if done(&v) {
                    return v;
                }
            }
        }
    }

    /// Reads until a `full_state` frame whose status is one of `statuses`.
    pub async fn until_state(&mut self, statuses: &[&str]) -> Value {
        self.until(|v| {
            v["key"] == "full_state"
                && statuses.contains(&v["value"]["execution_status"].as_str().unwrap_or(""))
        })
        .await
    }

    /// Sends a user message over the socket.
    pub async fn send_text(&mut self, text: &str) {
        use futures_util::SinkExt;
        let frame = json!({"role": "user", "content": [{"type": "text", "text": text}]});
        self.ws
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .expect("send frame");
    }
}

/// Every file under `dir`, as text.
pub fn read_tree(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push_str(&String::from_utf8_lossy(&b));
            }
        }
    }
    out
}

/// The text of an event's observation.
pub fn obs_text(event: &Value) -> String {
    event["observation"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect()
}

/// What the model was told for the call `call_id`: the tool message of the
/// first LLM request that carries it.
pub fn told(h: &Harness, call_id: &str) -> String {
    for req in h.llm.requests() {
        let Some(messages) = req.body["messages"].as_array() else {
            continue;
        };
        if let Some(m) = messages
            .iter()
            .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        {
            return match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
                other => other.to_string(),
            };
        }
    }
    panic!("no LLM request carried the result of {call_id}");
}
