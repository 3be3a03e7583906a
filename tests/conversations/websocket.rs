//! `/sockets/events/{id}`: auth forms and close codes, replay modes, live
//! frames, client frames, a slow reader next to a fast one, resume with
//! `after_event_id`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::support::ws_connect;
use crate::{all_events, call, create, send, server, start_body, KEY};

type Ws = WebSocketStream<TcpStream>;

/// The next text frame as JSON (bounded wait).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("frame timed out")
            .expect("socket ended")
            .expect("socket error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Reads until the socket closes; returns the close code and reason.
async fn close_of(ws: &mut Ws) -> (u16, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("close timed out")
        {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return (0, String::new()),
            Some(Ok(_)) => continue,
        }
    }
}

/// The HTTP status of a refused handshake.
async fn refused_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let req = format!("ws://{addr}{path}").into_client_request().unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(req, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Ok(_) => 101,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn auth_forms_and_close_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut c = srv.client().await;
    let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
    let path = format!("/sockets/events/{id}");

    let mut ws = ws_connect(srv.addr, &format!("{path}?session_api_key={KEY}"), &[]).await;
    assert_eq!(next_json(&mut ws).await["key"], "full_state");
    let mut ws = ws_connect(srv.addr, &path, &[("X-Session-API-Key", KEY)]).await;
    assert_eq!(next_json(&mut ws).await["key"], "full_state");
    for bad in [
        format!("{path}?session_api_key=wrong"),
        format!("{path}?session_api_key="),
    ] {
        let mut ws = ws_connect(srv.addr, &bad, &[]).await;
        assert_eq!(
            close_of(&mut ws).await,
            (4001, "Authentication failed".into())
        );
    }
    let mut ws = ws_connect(srv.addr, &path, &[("X-Session-API-Key", "wrong")]).await;
    assert_eq!(close_of(&mut ws).await.0, 4001);
    // First-message auth.
    let mut ws = ws_connect(srv.addr, &path, &[]).await;
    ws.send(Message::text(
        json!({"type": "auth", "session_api_key": KEY}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["key"], "full_state");
    // A later auth frame is ignored; the socket stays usable.
    ws.send(Message::text(
        json!({"type": "auth", "session_api_key": KEY}).to_string(),
    ))
    .await
    .unwrap();
    let mut ws2 = ws_connect(srv.addr, &path, &[]).await;
    ws2.send(Message::text(
        json!({"type": "auth", "session_api_key": "wrong"}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(close_of(&mut ws2).await.0, 4001);
    let mut ws3 = ws_connect(srv.addr, &path, &[]).await;
    ws3.send(Message::text(
        json!({"role": "user", "content": []}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(close_of(&mut ws3).await.0, 4001);
    // Unknown conversation, malformed id, bad parameters.
    let mut ws = ws_connect(
        srv.addr,
        &format!("/sockets/events/fed110df-dfcb-413d-b141-e9d6c288be39?session_api_key={KEY}"),
        &[],
    )
    .await;
    assert_eq!(
        close_of(&mut ws).await,
        (4004, "Conversation not found".into())
    );
    assert_eq!(
        refused_status(
            srv.addr,
            &format!("/sockets/events/not-a-uuid?session_api_key={KEY}")
        )
        .await,
        403
    );
    assert_eq!(
        refused_status(
            srv.addr,
            &format!("{path}?session_api_key={KEY}&resend_mode=bogus")
        )
        .await,
        403
    );
    assert_eq!(
        refused_status(
            srv.addr,
            &format!("{path}?session_api_key={KEY}&after_timestamp=yesterday")
        )
        .await,
        403
    );
}

#[tokio::test]
async fn first_message_auth_times_out_after_ten_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut c = srv.client().await;
    let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
    let mut ws = ws_connect(srv.addr, &format!("/sockets/events/{id}"), &[]).await;
    assert_eq!(
        close_of(&mut ws).await,
        (4001, "Authentication failed".into())
    );
}

#[tokio::test]
async fn replay_modes_live_frames_and_client_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut c = srv.client().await;
    let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
    for i in 0..5 {
        send(&mut c, &id, &format!("m{i}")).await;
    }
    let stored = all_events(&mut c, &id).await;
    // 5 messages with their state updates, after the agent's system prompt.
    assert_eq!(stored.len(), 11);
    let base = format!("/sockets/events/{id}?session_api_key={KEY}");

    let mut all = ws_connect(srv.addr, &format!("{base}&resend_mode=all"), &[]).await;
    let first = next_json(&mut all).await;
    assert_eq!(first["key"], "full_state");
    assert_eq!(
        first["value"]["secret_registry"]["secret_sources"]["MY_TOKEN"]["value"],
        "**********"
    );
    for e in &stored {
        assert_eq!(
            &next_json(&mut all).await,
            e,
            "replayed frames equal search items"
        );
    }
    let mut legacy = ws_connect(srv.addr, &format!("{base}&resend_all=true"), &[]).await;
    next_json(&mut legacy).await;
    assert_eq!(next_json(&mut legacy).await["id"], stored[0]["id"]);
    let ts = stored[6]["timestamp"].as_str().unwrap();
    let mut since = ws_connect(
        srv.addr,
        &format!("{base}&resend_mode=since&after_timestamp={ts}"),
        &[],
    )
    .await;
    next_json(&mut since).await;
    assert_eq!(next_json(&mut since).await["id"], stored[6]["id"]);
    let after = stored[7]["id"].as_str().unwrap();
    let mut resume = ws_connect(srv.addr, &format!("{base}&after_event_id={after}"), &[]).await;
    next_json(&mut resume).await;
    assert_eq!(next_json(&mut resume).await["id"], stored[8]["id"]);
    assert_eq!(next_json(&mut resume).await["id"], stored[9]["id"]);
    assert_eq!(next_json(&mut resume).await["id"], stored[10]["id"]);
    let mut live = ws_connect(srv.addr, &base, &[]).await;
    next_json(&mut live).await;

    // A message over the socket is appended like POST …/events with run:true.
    live.send(Message::text(
        json!({"role": "user", "content": [{"type": "text", "text": "via socket"}]}).to_string(),
    ))
    .await
    .unwrap();
    for ws in [&mut all, &mut resume, &mut live] {
        let m = next_json(ws).await;
        assert_eq!(m["llm_message"]["content"][0]["text"], "via socket");
        assert_eq!(next_json(ws).await["key"], "last_user_message_id");
        // The message started the agent; its LLM is unreachable here, so
        // the run ends in `error` (and a final snapshot) before going on.
        loop {
            let f = next_json(ws).await;
            if f["key"] == "full_state" && f["value"]["execution_status"] == "error" {
                break;
            }
        }
    }
    // Bad frames get a ServerErrorEvent on that socket only; it stays open.
    live.send(Message::text("not json")).await.unwrap();
    let e = next_json(&mut live).await;
    assert_eq!(
        (e["kind"].as_str(), e["code"].as_str()),
        (Some("ServerErrorEvent"), Some("JSONDecodeError"))
    );
    assert_eq!(e["detail"], "Expecting value: line 1 column 1 (char 0)");
    live.send(Message::text(json!({"content": []}).to_string()))
        .await
        .unwrap();
    let e = next_json(&mut live).await;
    assert_eq!(e["code"], "ValidationError");
    assert!(e["detail"]
        .as_str()
        .unwrap()
        .starts_with("1 validation error for Message"));
    live.send(Message::binary(b"bytes".to_vec())).await.unwrap();
    let e = next_json(&mut live).await;
    assert_eq!(
        (e["code"].as_str(), e["detail"].as_str()),
        (Some("KeyError"), Some("'text'"))
    );
    send(&mut c, &id, "after the errors").await;
    let m = next_json(&mut live).await;
    assert_eq!(m["llm_message"]["content"][0]["text"], "after the errors");
    let m = next_json(&mut all).await;
    assert_eq!(
        m["kind"], "MessageEvent",
        "the other socket saw no error frames"
    );
    // Client pings are answered.
    live.send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    let pong = loop {
        match tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Pong(p) => break p,
            Message::Text(_) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(&pong[..], b"hi");
    // Deleting the conversation ends its sockets.
    call(
        &mut c,
        Method::DELETE,
        &format!("/api/conversations/{id}"),
        None,
    )
    .await;
    assert_eq!(close_of(&mut live).await.0, 1000);
}

#[tokio::test]
async fn a_slow_reader_next_to_a_fast_one() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut c = srv.client().await;
    let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
    let base = format!("/sockets/events/{id}?session_api_key={KEY}");
    let mut fast = ws_connect(srv.addr, &base, &[]).await;
    let mut slow = ws_connect(srv.addr, &base, &[]).await;
    next_json(&mut fast).await;
    next_json(&mut slow).await;
    // Big messages, so the slow socket's buffers fill and its subscription lags.
    const N: usize = 600;
    let filler = "x".repeat(16 * 1024);
    let fast_reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        // Every message and its state update, after the agent's system prompt.
        while ids.len() < 2 * N + 1 {
            let v = next_json(&mut fast).await;
            if v.get("key").and_then(Value::as_str) != Some("full_state") {
                ids.push(v["id"].as_str().unwrap().to_string());
            }
        }
        ids
    });
    for i in 0..N {
        send(&mut c, &id, &format!("{i} {filler}")).await;
    }
    let fast_ids = tokio::time::timeout(Duration::from_secs(120), fast_reader)
        .await
        .unwrap()
        .unwrap();
    // A reader that fell behind also gets fresh snapshots; only events count here.
    let mut slow_ids = Vec::new();
    while slow_ids.len() < 2 * N + 1 {
        let v = next_json(&mut slow).await;
        if v.get("key").and_then(Value::as_str) != Some("full_state") {
            slow_ids.push(v["id"].as_str().unwrap().to_string());
        }
    }
    let stored: Vec<String> = all_events(&mut c, &id)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fast_ids, stored, "the fast reader got every event in order");
    assert_eq!(
        slow_ids, stored,
        "the slow reader got every event in order, no gaps, no duplicates"
    );
}
