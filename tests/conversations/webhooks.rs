//! Webhooks against a local receiver: event batches by size and by delay,
//! the snapshot first, conversation posts, headers, retries, and a dead
//! receiver that never slows the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{builder, call, create, send, start_body, KEY, LLM_KEY, SECRET};

/// What the receiver saw: (path, headers lower-cased, body).
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A receiver on 127.0.0.1 that answers 500 to its first `fail_first` requests.
async fn receiver(fail_first: usize) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (seen, count) = (seen2.clone(), count.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 65536];
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            break;
                        }
                        let body: Value = serde_json::from_slice(&buf[end + 4..end + 4 + len])
                            .unwrap_or(Value::Null);
                        buf.drain(..end + 4 + len);
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let status = if n < fail_first {
                            "500 Internal Server Error"
                        } else {
                            "200 OK"
                        };
                        if n >= fail_first {
                            seen.lock().unwrap().push((path, head, body));
                        }
                        let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/hook"), seen)
}

async fn wait_until(seen: &Seen, what: impl Fn(&[(String, String, Value)]) -> bool) {
    for _ in 0..500 {
        if what(&seen.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "webhooks never arrived: {:?}",
        seen.lock()
            .unwrap()
            .iter()
            .map(|(p, _, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn event_batches_conversation_posts_and_retries() {
    let tmp = tempfile::tempdir().unwrap();
    // Two failures: the first post succeeds on its third attempt.
    let (base, seen) = receiver(2).await;
    let config = json!({"webhooks": [{"base_url": base, "headers": {"X-Test": "yes"}, "event_buffer_size": 4,
        "flush_delay": 0.5, "num_retries": 3, "retry_delay": 0.1}]});
    let srv = builder(&tmp.path().join("data"), Some("k"))
        .config_file(&config)
        .spawn();
    let mut c = srv.client().await;
    let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
    let hex = id.replace('-', "");
    send(&mut c, &id, "one").await;
    // full_state + the agent's system prompt + message + state update: a full batch of 4.
    wait_until(&seen, |s| s.iter().any(|(p, _, _)| p.contains("/events/"))).await;
    send(&mut c, &id, "two").await;
    // 2 more events: a partial batch, posted after flush_delay.
    wait_until(&seen, |s| {
        s.iter().filter(|(p, _, _)| p.contains("/events/")).count() >= 2
    })
    .await;
    call(
        &mut c,
        Method::PATCH,
        &format!("/api/conversations/{id}"),
        Some(&json!({"title": "hooked"})),
    )
    .await;
    let (status, _) = call(
        &mut c,
        Method::DELETE,
        &format!("/api/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_until(&seen, |s| {
        s.iter()
            .any(|(_, _, b)| b["execution_status"] == "deleting")
    })
    .await;

    let got = seen.lock().unwrap().clone();
    let batches: Vec<&Value> = got
        .iter()
        .filter(|(p, _, _)| *p == format!("/hook/events/{hex}"))
        .map(|(_, _, b)| b)
        .collect();
    assert_eq!(batches[0].as_array().unwrap().len(), 4);
    let events: Vec<&Value> = batches
        .iter()
        .flat_map(|b| b.as_array().unwrap().iter())
        .collect();
    assert_eq!(events[0]["key"], "full_state", "the snapshot comes first");
    assert_eq!(events[0]["parent_id"], Value::Null, "nulls included");
    assert_eq!(events[1]["kind"], "SystemPromptEvent");
    assert_eq!(events[2]["llm_message"]["content"][0]["text"], "one");
    assert_eq!(events[4]["llm_message"]["content"][0]["text"], "two");
    assert_eq!(
        batches[1].as_array().unwrap().len(),
        2,
        "a partial batch after flush_delay"
    );
    let convs: Vec<&Value> = got
        .iter()
        .filter(|(p, _, _)| p == "/hook/conversations")
        .map(|(_, _, b)| b)
        .collect();
    assert_eq!(convs[0]["execution_status"], "idle");
    assert_eq!(convs[0]["runtime_info"], Value::Null);
    assert!(convs.iter().any(|c| c["title"] == "hooked"));
    assert_eq!(convs.last().unwrap()["execution_status"], "deleting");
    for (_, head, _) in &got {
        assert!(head.contains("x-test: yes"), "{head}");
        assert!(
            head.contains(&format!("x-session-api-key: {KEY}")),
            "{head}"
        );
    }
    let text = serde_json::to_string(&got.iter().map(|(_, _, b)| b).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(LLM_KEY) && !text.contains(SECRET));
}

#[tokio::test]
async fn a_dead_receiver_never_slows_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let config = json!({"webhooks": [{"base_url": format!("http://{addr}"), "event_buffer_size": 1,
        "flush_delay": 0.1, "num_retries": 5, "retry_delay": 1.0, "max_queue_size": 10}]});
    let mut srv = builder(&tmp.path().join("data"), Some("k"))
        .config_file(&config)
        .spawn();
    let mut c = srv.client().await;
    let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
    for i in 0..30 {
        send(&mut c, &id, &format!("m{i}")).await;
    }
    let (status, n) = call(
        &mut c,
        Method::GET,
        &format!("/api/conversations/{id}/events/count"),
        None,
    )
    .await;
    // 30 messages with their state updates, after the agent's system prompt.
    assert_eq!((status, n), (StatusCode::OK, json!(61)));
    let exit = srv.terminate();
    assert_eq!(exit.code(), Some(0));
    assert!(
        srv.stderr().contains("dropped the oldest events"),
        "{}",
        srv.stderr()
    );
}
