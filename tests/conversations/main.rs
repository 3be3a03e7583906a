//! Integration tests of the conversation core (issue 3) through the real
//! binary: REST routes, the event WebSocket, persistence across restarts and
//! `kill -9`, secrets, webhooks.

#[path = "../support/mod.rs"]
pub mod support;

mod persistence;
mod rest;
mod webhooks;
mod websocket;

use std::path::Path;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use support::{Client, ServerBuilder, TestServer};

/// The session key every test server uses.
pub const KEY: &str = "test-key";

/// A planted LLM key that must never reach disk or logs.
pub const LLM_KEY: &str = "sk-planted-0f3c9a77e1";

/// A planted conversation secret that must never reach disk or logs.
pub const SECRET: &str = "planted-secret-5b2e81";

/// A server with a session key, storing conversations under `data`.
pub fn builder(data: &Path, secret_key: Option<&str>) -> ServerBuilder {
    let b = ServerBuilder::new()
        .session_key(KEY)
        .env("OH_CONVERSATIONS_PATH", &data.display().to_string());
    match secret_key {
        Some(k) => b.env("OH_SECRET_KEY", k),
        None => b,
    }
}

/// Starts a server on `data`.
pub fn server(data: &Path, secret_key: Option<&str>) -> TestServer {
    builder(data, secret_key).spawn()
}

/// A start request body.
pub fn start_body(working_dir: &Path) -> Value {
    json!({
        "workspace": {"kind": "LocalWorkspace", "working_dir": working_dir},
        "agent": {"kind": "Agent",
                  "llm": {"model": "openai/gpt-4o", "base_url": "http://127.0.0.1:9/v1", "api_key": LLM_KEY, "usage_id": "agent", "num_retries": 0},
                  "tools": [{"name": "terminal"}, {"name": "file_editor"}, {"name": "task_tracker"}]},
        "secrets": {"MY_TOKEN": {"kind": "StaticSecret", "value": SECRET}},
        "tags": {"team": "core"},
        "max_iterations": 50,
        // The agent would title the conversation with an LLM nobody serves here.
        "autotitle": false
    })
}

/// A JSON request with the session key.
pub async fn call(
    client: &mut Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    client.api(KEY, method, path, body).await
}

/// Creates a conversation; returns its id (dashed).
pub async fn create(client: &mut Client, body: &Value) -> String {
    let (status, info) = call(client, Method::POST, "/api/conversations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    info["id"].as_str().unwrap().to_string()
}

/// Sends a user message.
pub async fn send(client: &mut Client, id: &str, text: &str) {
    let (status, body) = call(
        client,
        Method::POST,
        &format!("/api/conversations/{id}/events"),
        Some(&json!({"role": "user", "content": [{"type": "text", "text": text}], "run": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Every event of a conversation (compact form), in log order.
pub async fn all_events(client: &mut Client, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..1000 {
        let path = match &page {
            Some(p) => format!("/api/conversations/{id}/events/search?limit=100&page_id={p}"),
            None => format!("/api/conversations/{id}/events/search?limit=100"),
        };
        let (status, body) = call(client, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        out.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["next_page_id"].as_str() {
            Some(n) => page = Some(n.to_string()),
            None => break,
        }
    }
    out
}

/// Every file under `dir`, read as text and concatenated.
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
