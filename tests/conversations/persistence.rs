//! Restarts on the same data directory (with and without `OH_SECRET_KEY`),
//! `kill -9` while events are appended, restart recovery, torn lines, and a
//! grep of disk and logs for planted secrets.

use std::time::Duration;

use futures_util::StreamExt;
use hyper::{Method, StatusCode};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::support::ws_connect;
use crate::{
    all_events, builder, call, create, read_tree, send, server, start_body, KEY, LLM_KEY, SECRET,
};

/// The first frame of the event socket (the `full_state` snapshot).
async fn full_state(addr: std::net::SocketAddr, id: &str) -> Value {
    let mut ws = ws_connect(
        addr,
        &format!("/sockets/events/{id}?session_api_key={KEY}"),
        &[],
    )
    .await;
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    serde_json::from_str(frame.to_text().unwrap()).unwrap()
}

#[tokio::test]
async fn restart_with_and_without_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ws = tmp.path().join("ws");
    let (id, events_before) = {
        let mut srv = server(&data, Some("key-1"));
        let mut c = srv.client().await;
        let id = create(&mut c, &start_body(&ws)).await;
        send(&mut c, &id, "before the restart").await;
        let path = format!("/api/conversations/{id}");
        call(
            &mut c,
            Method::PATCH,
            &path,
            Some(&json!({"title": "Kept", "tags": {"a": "b"}})),
        )
        .await;
        call(
            &mut c,
            Method::POST,
            &format!("{path}/confirmation_policy"),
            Some(&json!({"policy": {"kind": "AlwaysConfirm"}})),
        )
        .await;
        call(
            &mut c,
            Method::POST,
            &format!("{path}/security_analyzer"),
            Some(&json!({"security_analyzer": {"kind": "LLMSecurityAnalyzer"}})),
        )
        .await;
        let events = all_events(&mut c, &id).await;
        let status = srv.terminate();
        assert_eq!(status.code(), Some(0), "{}", srv.stderr());
        (id, events)
    };
    {
        // Same key: everything is back, and the secret still masks.
        let srv = server(&data, Some("key-1"));
        let mut c = srv.client().await;
        let (_, n) = call(&mut c, Method::GET, "/api/conversations/count", None).await;
        assert_eq!(n, json!(1));
        let (status, info) = call(
            &mut c,
            Method::GET,
            &format!("/api/conversations/{id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["title"], "Kept");
        assert_eq!(info["tags"], json!({"a": "b"}));
        assert_eq!(
            info["confirmation_policy"],
            json!({"kind": "AlwaysConfirm"})
        );
        assert_eq!(
            info["security_analyzer"],
            json!({"kind": "LLMSecurityAnalyzer"})
        );
        assert_eq!(all_events(&mut c, &id).await, events_before);
        let state = full_state(srv.addr, &id).await;
        assert_eq!(state["value"]["agent"]["llm"]["api_key"], "**********");
        send(&mut c, &id, &format!("the token is {SECRET}")).await;
        let last = all_events(&mut c, &id)
            .await
            .into_iter()
            .rev()
            .find(|e| e["kind"] == "MessageEvent")
            .unwrap();
        assert_eq!(
            last["llm_message"]["content"][0]["text"],
            "the token is <secret-hidden>"
        );
    }
    {
        // Another key: the conversation loads; its secrets are gone.
        let srv = server(&data, Some("key-2"));
        let mut c = srv.client().await;
        let (status, _) = call(
            &mut c,
            Method::GET,
            &format!("/api/conversations/{id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let state = full_state(srv.addr, &id).await;
        assert!(
            state["value"]["agent"]["llm"].get("api_key").is_none(),
            "{}",
            state["value"]["agent"]["llm"]
        );
        assert!(
            srv.stderr_with("could not be decrypted")
                .await
                .contains("could not be decrypted"),
            "{}",
            srv.stderr()
        );
    }
}

#[tokio::test]
async fn without_a_key_secrets_are_redacted_and_lost_and_one_warning_is_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = {
        let mut srv = server(&data, None);
        let mut c = srv.client().await;
        let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
        let state = full_state(srv.addr, &id).await;
        assert_eq!(state["value"]["agent"]["llm"]["api_key"], "**********");
        srv.terminate();
        let log = srv.stderr();
        assert_eq!(log.matches("OH_SECRET_KEY is not set").count(), 1, "{log}");
        id
    };
    let disk = read_tree(&data);
    assert!(!disk.contains(LLM_KEY) && !disk.contains(SECRET));
    assert!(disk.contains("**********"));
    let srv = server(&data, None);
    let state = full_state(srv.addr, &id).await;
    assert!(state["value"]["agent"]["llm"].get("api_key").is_none());
}

#[tokio::test]
async fn planted_secrets_never_reach_disk_or_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for key in [Some("the-key"), None] {
        let mut srv = builder(&data, key).env("RUST_LOG", "debug").spawn();
        let mut c = srv.client().await;
        let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
        send(&mut c, &id, &format!("here: {SECRET} and {LLM_KEY}")).await;
        call(
            &mut c,
            Method::POST,
            &format!("/api/conversations/{id}/secrets"),
            Some(&json!({"secrets": {"LATE": "late-secret-value-77"}})),
        )
        .await;
        send(&mut c, &id, "late-secret-value-77").await;
        // A 422 echoing the key is redacted too.
        let mut bad = start_body(&tmp.path().join("ws"));
        bad["agent"]["tools"] = json!("x");
        let (status, body) = call(&mut c, Method::POST, "/api/conversations", Some(&bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!body.to_string().contains(LLM_KEY));
        let events = all_events(&mut c, &id).await;
        let text = serde_json::to_string(&events).unwrap();
        assert!(
            text.contains("here: <secret-hidden> and <secret-hidden>"),
            "{text}"
        );
        srv.terminate();
        let disk = read_tree(&data);
        let log = srv.stderr();
        for s in [SECRET, LLM_KEY, "late-secret-value-77"] {
            assert!(!disk.contains(s), "{s} on disk (key {key:?})");
            assert!(!log.contains(s), "{s} in the log (key {key:?})");
        }
    }
}

#[tokio::test]
async fn kill_9_while_appending_then_a_clean_load() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut srv = server(&data, Some("k"));
    let mut c = srv.client().await;
    let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
    // Several writers; every acknowledged message must survive.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..3 {
        let addr = srv.addr;
        let id = id.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                return;
            };
            let Ok((mut sender, conn)) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
            else {
                return;
            };
            tokio::spawn(conn);
            for i in 0..100_000 {
                let text = format!("w{w}-m{i}");
                let body =
                    json!({"role":"user","content":[{"type":"text","text":text}]}).to_string();
                let req = hyper::Request::post(format!("/api/conversations/{id}/events"))
                    .header("host", addr.to_string())
                    .header("content-type", "application/json")
                    .header("X-Session-API-Key", KEY)
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap();
                if sender.ready().await.is_err() {
                    return;
                }
                match sender.send_request(req).await {
                    Ok(r) if r.status() == StatusCode::OK => acked.lock().unwrap().push(text),
                    _ => return,
                }
            }
        }));
    }
    let target = 50 + (std::process::id() as usize % 150);
    for _ in 0..600 {
        if acked.lock().unwrap().len() >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.stop_with(Signal::SIGKILL);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= target, "{}", acked.len());
    let srv = server(&data, Some("k"));
    let mut c = srv.client().await;
    let texts: std::collections::HashSet<String> = all_events(&mut c, &id)
        .await
        .iter()
        .filter_map(|e| {
            e["llm_message"]["content"][0]["text"]
                .as_str()
                .map(String::from)
        })
        .collect();
    for a in &acked {
        assert!(texts.contains(a), "acknowledged message {a} lost");
    }
    // The log is clean: every line is JSON and it ends with a newline.
    let log = std::fs::read_to_string(data.join(id.replace('-', "")).join("events.jsonl")).unwrap();
    assert!(log.ends_with('\n'));
    assert!(log
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
}

#[tokio::test]
async fn restart_recovery_and_a_torn_last_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = {
        let mut srv = server(&data, Some("k"));
        let mut c = srv.client().await;
        let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
        send(&mut c, &id, "start").await;
        srv.terminate();
        id
    };
    // Simulate a crash in the middle of a tool call: status running, an
    // action without observation, and half a line.
    let dir = data.join(id.replace('-', ""));
    let meta_path = dir.join("metadata.json");
    let mut meta: Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["execution_status"] = json!("running");
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let action = json!({"id":"act-1","timestamp":"2026-11-25T00:40:08.119505","source":"agent","parent_id":null,
        "thought":[],"reasoning_content":null,"thinking_blocks":[],"responses_reasoning_item":null,
        "action":{"command":"sleep 100","is_input":false,"reset":false,"kind":"TerminalAction"},
        "tool_name":"terminal","tool_call_id":"call_1",
        "tool_call":{"id":"call_1","responses_item_id":null,"name":"terminal","arguments":"{}","origin":"completion"},
        "llm_response_id":"r1","security_risk":"UNKNOWN","critic_result":null,"summary":null,"kind":"ActionEvent"});
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("events.jsonl"))
            .unwrap();
        writeln!(f, "{action}").unwrap();
        f.write_all(b"{\"id\":\"torn\",\"times").unwrap();
    }
    let srv = server(&data, Some("k"));
    let mut c = srv.client().await;
    let (_, info) = call(
        &mut c,
        Method::GET,
        &format!("/api/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(info["execution_status"], "error");
    let (_, n) = call(
        &mut c,
        Method::GET,
        "/api/conversations/count?status=error",
        None,
    )
    .await;
    assert_eq!(n, json!(1));
    let events = all_events(&mut c, &id).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "AgentErrorEvent");
    assert_eq!(last["parent_id"], "act-1");
    assert!(last["error"]
        .as_str()
        .unwrap()
        .starts_with("A restart occurred while this tool was in progress."));
    assert!(events
        .iter()
        .any(|e| e["key"] == "execution_status" && e["value"] == "error"));
    assert!(!events.iter().any(|e| e["id"] == "torn"));
    assert!(
        srv.stderr_with("recovered").await.contains("recovered"),
        "{}",
        srv.stderr()
    );
}
