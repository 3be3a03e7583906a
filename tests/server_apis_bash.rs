//! `/api/bash/…` and `/sockets/bash-events` through the real binary.

#[path = "server_apis/mod.rs"]
pub mod common;
pub mod support;

use std::time::{Duration, Instant};

use common::{auth, get, keys, send_json, Server, KEY};
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use support::{ws_connect, Client};
use tokio_tungstenite::tungstenite::Message;

const EXECUTE: &str = "/api/bash/execute_bash_command";
const START: &str = "/api/bash/start_bash_command";
const SEARCH: &str = "/api/bash/bash_events/search";

async fn execute(client: &mut Client, body: Value) -> Value {
    let response = send_json(client, Method::POST, EXECUTE, &body).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

async fn search(client: &mut Client, query: &str) -> Value {
    let response = get(client, &format!("{SEARCH}?{query}")).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{query}: {}",
        response.text()
    );
    response.json()
}

/// Polls the search until the command's final output is stored.
async fn final_output(client: &mut Client, command_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = search(client, &format!("command_id__eq={command_id}")).await;
        if let Some(last) = page["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| !i["exit_code"].is_null()))
        {
            return last.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no final output for {command_id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_hex_id(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn execute_start_stop_and_validation() {
    let server = Server::start();
    let mut client = server.client().await;
    let work = server.dir.join("work");
    std::fs::create_dir(&work).unwrap();
    let work_str = work.to_str().unwrap();

    // Separate streams, exit code, cwd; the transcript's shape and key order.
    let out = execute(
        &mut client,
        json!({"command": "echo hello-bash; echo err >&2; exit 3", "cwd": work_str}),
    )
    .await;
    assert_eq!(
        keys(&out),
        [
            "id",
            "timestamp",
            "command_id",
            "order",
            "exit_code",
            "stdout",
            "stderr",
            "kind"
        ]
    );
    assert_eq!(out["exit_code"], 3);
    assert_eq!(out["stdout"], "hello-bash\n");
    assert_eq!(out["stderr"], "err\n");
    assert_eq!(out["order"], 0);
    assert_eq!(out["kind"], "BashOutput");
    assert!(is_hex_id(&out["id"]) && is_hex_id(&out["command_id"]));
    assert!(out["timestamp"].as_str().unwrap().ends_with('Z'));

    // A timeout is exit code -1, nothing printed.
    let timed_out = execute(&mut client, json!({"command": "sleep 30", "timeout": 1})).await;
    assert_eq!(timed_out["exit_code"], -1);
    assert_eq!(timed_out["stdout"], Value::Null);
    assert_eq!(timed_out["stderr"], Value::Null);

    // The default directory is the server's.
    let pwd = execute(&mut client, json!({"command": "pwd"})).await;
    assert_eq!(
        pwd["stdout"].as_str().unwrap().trim(),
        server.dir.to_str().unwrap()
    );

    // Start returns at once; the output follows.
    let started = send_json(
        &mut client,
        Method::POST,
        START,
        &json!({"command": "for i in 1 2 3; do echo line$i; sleep 0.1; done", "cwd": work_str}),
    )
    .await;
    assert_eq!(started.status, StatusCode::OK);
    let command = started.json();
    assert_eq!(
        keys(&command),
        ["command", "cwd", "timeout", "id", "timestamp", "kind"]
    );
    assert_eq!(command["cwd"], work_str);
    assert_eq!(command["timeout"], 300);
    assert_eq!(command["kind"], "BashCommand");
    let command_id = command["id"].as_str().unwrap().to_string();
    let output = final_output(&mut client, &command_id).await;
    assert_eq!(output["stdout"], "line1\nline2\nline3\n");
    assert_eq!(output["exit_code"], 0);

    // Stop: a running command ends with SIGTERM's code; stopping it again
    // (finished) still succeeds; an unknown id is a 404.
    let long = send_json(
        &mut client,
        Method::POST,
        START,
        &json!({"command": "sleep 30"}),
    )
    .await;
    let long_id = long.json()["id"].as_str().unwrap().to_string();
    let stop_path = format!("/api/bash/bash_commands/{long_id}/stop");
    let stopped = client.request(Method::POST, &stop_path, &auth(), "").await;
    assert_eq!(stopped.status, StatusCode::OK);
    assert_eq!(stopped.json(), json!({"success": true}));
    assert_eq!(final_output(&mut client, &long_id).await["exit_code"], -15);
    let again = client.request(Method::POST, &stop_path, &auth(), "").await;
    assert_eq!(again.json(), json!({"success": true}));
    let unknown = client
        .request(
            Method::POST,
            "/api/bash/bash_commands/3c826f6b-72ff-4e7a-b7ea-e823546e8f71/stop",
            &auth(),
            "",
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json(), json!({"detail": "Not Found"}));
    let bad_id = client
        .request(Method::POST, "/api/bash/bash_commands/zz/stop", &auth(), "")
        .await;
    assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad_id.json(),
        json!({"detail": [{"type": "uuid_parsing", "loc": ["path", "command_id"], "msg": "Input should be a valid UUID, invalid character: found `z` at 0", "input": "zz", "ctx": {"error": "invalid character: found `z` at 0"}}]})
    );

    // 422s, as the transcript and the Python router answer them.
    let missing = send_json(&mut client, Method::POST, EXECUTE, &json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        missing.json(),
        json!({"detail": [{"type": "missing", "loc": ["body", "command"], "msg": "Field required", "input": {}}]})
    );
    let wrong_types = send_json(
        &mut client,
        Method::POST,
        START,
        &json!({"command": 1, "timeout": "x"}),
    )
    .await;
    assert_eq!(
        wrong_types.json(),
        json!({"detail": [
            {"type": "string_type", "loc": ["body", "command"], "msg": "Input should be a valid string", "input": 1},
            {"type": "int_parsing", "loc": ["body", "timeout"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "x"}
        ]})
    );
    let no_key = client
        .json(Method::POST, EXECUTE, &[], &json!({"command": "true"}))
        .await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);

    // The global routes have no workspace to confine `cwd` to.
    let anywhere = execute(&mut client, json!({"command": "pwd", "cwd": "/"})).await;
    assert_eq!(anywhere["stdout"], "/\n");

    drop(client);
    server.stop_and_check();
}

#[tokio::test]
async fn search_get_batch_and_clear() {
    let server = Server::start();
    let mut client = server.client().await;
    let mut outputs = Vec::new();
    for i in 0..3 {
        outputs.push(execute(&mut client, json!({"command": format!("echo {i}")})).await);
    }

    // Everything, oldest first: command then output, three times.
    let all = search(&mut client, "").await;
    let kinds: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "BashCommand",
            "BashOutput",
            "BashCommand",
            "BashOutput",
            "BashCommand",
            "BashOutput"
        ]
    );
    assert_eq!(all["next_page_id"], Value::Null);
    assert_eq!(keys(&all), ["items", "next_page_id"]);

    // Paging: `next_page_id` names the first item of the next page.
    let first = search(&mut client, "kind__eq=BashCommand&limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let page_id = first["next_page_id"].as_str().unwrap().to_string();
    assert!(page_id.contains("_BashCommand_"));
    let second = search(
        &mut client,
        &format!("kind__eq=BashCommand&limit=2&page_id={page_id}"),
    )
    .await;
    let items = second["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(page_id.ends_with(items[0]["id"].as_str().unwrap()));
    assert_eq!(second["next_page_id"], Value::Null);

    // Newest first.
    let desc = search(
        &mut client,
        "kind__eq=BashOutput&sort_order=TIMESTAMP_DESC&limit=2",
    )
    .await;
    let stdouts: Vec<&str> = desc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["stdout"].as_str().unwrap())
        .collect();
    assert_eq!(stdouts, ["2\n", "1\n"]);
    assert!(desc["next_page_id"]
        .as_str()
        .unwrap()
        .contains("_BashOutput_"));

    // By command, and `order__gt` drops outputs at or below the order.
    let command_id = outputs[1]["command_id"].as_str().unwrap();
    let by_command = search(&mut client, &format!("command_id__eq={command_id}")).await;
    assert_eq!(by_command["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_command["items"][0]["stdout"], "1\n");
    let newer = search(
        &mut client,
        &format!("command_id__eq={command_id}&order__gt=0"),
    )
    .await;
    assert_eq!(newer["items"], json!([]));
    let older = search(
        &mut client,
        &format!("command_id__eq={command_id}&order__gt=-1"),
    )
    .await;
    assert_eq!(older["items"].as_array().unwrap().len(), 1);

    // Time filters: `gte` includes the instant, `lt` excludes it.
    let ts = outputs[1]["timestamp"].as_str().unwrap();
    let from = search(
        &mut client,
        &format!("kind__eq=BashOutput&timestamp__gte={ts}"),
    )
    .await;
    assert_eq!(from["items"].as_array().unwrap().len(), 2);
    let before = search(
        &mut client,
        &format!("kind__eq=BashOutput&timestamp__lt={ts}"),
    )
    .await;
    assert_eq!(before["items"].as_array().unwrap().len(), 1);
    assert_eq!(before["items"][0]["stdout"], "0\n");

    // Invalid filters.
    for (query, error_type) in [
        ("limit=0", "greater_than"),
        ("limit=101", "less_than_equal"),
        ("kind__eq=BashError", "literal_error"),
        ("sort_order=up", "enum"),
        ("command_id__eq=zz", "uuid_parsing"),
        ("timestamp__gte=x", "datetime_from_date_parsing"),
        ("order__gt=a", "int_parsing"),
    ] {
        let response = get(&mut client, &format!("{SEARCH}?{query}")).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(response.json()["detail"][0]["type"], error_type, "{query}");
    }

    // One event, by hex or dashed id; unknown is 404.
    let output_id = outputs[0]["id"].as_str().unwrap();
    let one = get(&mut client, &format!("/api/bash/bash_events/{output_id}")).await;
    assert_eq!(one.json(), outputs[0]);
    let dashed = uuid::Uuid::parse_str(output_id)
        .unwrap()
        .hyphenated()
        .to_string();
    let same = get(&mut client, &format!("/api/bash/bash_events/{dashed}")).await;
    assert_eq!(same.json(), outputs[0]);
    let unknown = get(
        &mut client,
        "/api/bash/bash_events/3c826f6b-72ff-4e7a-b7ea-e823546e8f71",
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json(), json!({"detail": "Not Found"}));

    // Batch get: a JSON body, the query, and the query winning over a body.
    let missing_id = "3c826f6b72ff4e7ab7eae823546e8f71";
    let body_form = client
        .json(
            Method::GET,
            "/api/bash/bash_events/",
            &auth(),
            &json!([output_id, missing_id]),
        )
        .await;
    assert_eq!(body_form.json(), json!([outputs[0], null]));
    let query_form = get(
        &mut client,
        &format!("/api/bash/bash_events/?ids={output_id}&ids={missing_id}"),
    )
    .await;
    assert_eq!(query_form.json(), json!([outputs[0], null]));
    let both = client
        .json(
            Method::GET,
            &format!("/api/bash/bash_events/?ids={missing_id}"),
            &auth(),
            &json!([output_id]),
        )
        .await;
    assert_eq!(both.json(), json!([null]));
    let no_ids = get(&mut client, "/api/bash/bash_events/").await;
    assert_eq!(no_ids.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        no_ids.json(),
        json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]})
    );
    let not_a_list = client
        .json(
            Method::GET,
            "/api/bash/bash_events/",
            &auth(),
            &json!({"x": 1}),
        )
        .await;
    assert_eq!(not_a_list.json()["detail"][0]["type"], "list_type");

    // Clear: everything goes.
    let cleared = client
        .request(Method::DELETE, "/api/bash/bash_events", &auth(), "")
        .await;
    assert_eq!(cleared.json(), json!({"cleared_count": 6}));
    assert_eq!(search(&mut client, "").await["items"], json!([]));

    // Conversation-scoped copies answer like Python's for conversations this
    // server does not know.
    let scoped = send_json(
        &mut client,
        Method::POST,
        "/api/conversations/583039b3-39ee-4ffa-a884-ba1a421d29f2/bash/execute_bash_command",
        &json!({"command": "true"}),
    )
    .await;
    assert_eq!(scoped.status, StatusCode::NOT_FOUND);
    assert_eq!(
        scoped.json(),
        json!({"detail": "Conversation not found: 583039b3-39ee-4ffa-a884-ba1a421d29f2"})
    );
    let bad = get(
        &mut client,
        "/api/conversations/nope/bash/bash_events/search",
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.json()["detail"][0]["loc"],
        json!(["path", "conversation_id"])
    );

    drop(client);
    server.stop_and_check();
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The next JSON frame (bounded wait).
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("no frame in time")
            .expect("socket ended")
            .expect("socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The close code the server ends the socket with.
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return 0,
            Some(Ok(_)) => continue,
        }
    }
}

async fn send(socket: &mut Socket, text: &str) {
    socket.send(Message::Text(text.into())).await.unwrap();
}

#[tokio::test]
async fn bash_events_socket() {
    let server = Server::start();
    let addr = server.server.addr;
    let mut client = server.client().await;
    let earlier = execute(&mut client, json!({"command": "echo before"})).await;

    // Replay, oldest first, exactly the stored events; then live events of
    // a command sent on the socket.
    let mut socket = ws_connect(
        addr,
        &format!("/sockets/bash-events?session_api_key={KEY}&resend_mode=all"),
        &[],
    )
    .await;
    let replayed_command = next_json(&mut socket).await;
    assert_eq!(replayed_command["kind"], "BashCommand");
    assert_eq!(replayed_command["id"], earlier["command_id"]);
    assert_eq!(next_json(&mut socket).await, earlier);
    send(&mut socket, r#"{"command": "echo via-ws", "timeout": 5}"#).await;
    let command = next_json(&mut socket).await;
    assert_eq!(
        keys(&command),
        ["command", "cwd", "timeout", "id", "timestamp", "kind"]
    );
    assert_eq!(command["command"], "echo via-ws");
    assert_eq!(command["cwd"], Value::Null);
    let output = next_json(&mut socket).await;
    assert_eq!(output["command_id"], command["id"]);
    assert_eq!(output["stdout"], "via-ws\n");
    assert_eq!(output["exit_code"], 0);

    // Bad frames get a BashError and the socket stays usable.
    send(&mut socket, "{}").await;
    let error = next_json(&mut socket).await;
    assert_eq!(keys(&error), ["id", "timestamp", "code", "detail", "kind"]);
    assert_eq!(error["code"], "ValidationError");
    assert_eq!(error["kind"], "BashError");
    assert_eq!(
        error["detail"],
        "1 validation error for ExecuteBashRequest\ncommand\n  Field required [type=missing, input_value={}, input_type=dict]"
    );
    send(&mut socket, "not json").await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["code"], "JSONDecodeError");
    assert_eq!(error["detail"], "Expecting value: line 1 column 1 (char 0)");
    // A leftover auth frame is ignored.
    send(
        &mut socket,
        r#"{"type": "auth", "session_api_key": "testkey"}"#,
    )
    .await;
    send(&mut socket, r#"{"command": "echo still-open"}"#).await;
    assert_eq!(next_json(&mut socket).await["command"], "echo still-open");
    assert_eq!(next_json(&mut socket).await["stdout"], "still-open\n");

    // Client pings are answered at once.
    socket.send(Message::Ping(b"hi"[..].into())).await.unwrap();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("no pong in time")
            .expect("socket ended")
            .expect("socket error");
        if let Message::Pong(payload) = frame {
            assert_eq!(payload.as_ref(), b"hi");
            break;
        }
    }

    // Without replay, and with the header key: only what happens next.
    let mut live = ws_connect(addr, "/sockets/bash-events", &[("X-Session-API-Key", KEY)]).await;
    // A round trip proves the subscription exists before the command starts.
    send(&mut live, "[").await;
    assert_eq!(next_json(&mut live).await["code"], "JSONDecodeError");
    // First-message auth, and the deprecated `resend_all`.
    let mut first = ws_connect(addr, "/sockets/bash-events?resend_all=true", &[]).await;
    send(
        &mut first,
        r#"{"type": "auth", "session_api_key": "testkey"}"#,
    )
    .await;
    assert_eq!(next_json(&mut first).await["command"], "echo before");
    let started = send_json(
        &mut client,
        Method::POST,
        START,
        &json!({"command": "echo live"}),
    )
    .await;
    let started = started.json();
    assert_eq!(next_json(&mut live).await, started);
    assert_eq!(next_json(&mut live).await["stdout"], "live\n");

    // Auth failures: accepted, then closed with 4001.
    let mut wrong = ws_connect(addr, "/sockets/bash-events?session_api_key=wrong", &[]).await;
    assert_eq!(close_code(&mut wrong).await, 4001);
    let mut empty = ws_connect(addr, "/sockets/bash-events?session_api_key=", &[]).await;
    assert_eq!(close_code(&mut empty).await, 4001);
    let mut wrong_header = ws_connect(
        addr,
        "/sockets/bash-events",
        &[("X-Session-API-Key", "nope")],
    )
    .await;
    assert_eq!(close_code(&mut wrong_header).await, 4001);
    let mut not_auth = ws_connect(addr, "/sockets/bash-events", &[]).await;
    send(&mut not_auth, r#"{"command": "echo sneaky"}"#).await;
    assert_eq!(close_code(&mut not_auth).await, 4001);

    // Fifty subscribers at most: three are open, so 47 more fit.
    let mut extra = Vec::new();
    for _ in 0..47 {
        let mut s = ws_connect(
            addr,
            &format!("/sockets/bash-events?session_api_key={KEY}"),
            &[],
        )
        .await;
        // A round trip proves the subscription exists before the next one.
        send(&mut s, "[").await;
        assert_eq!(next_json(&mut s).await["code"], "JSONDecodeError");
        extra.push(s);
    }
    let mut over = ws_connect(
        addr,
        &format!("/sockets/bash-events?session_api_key={KEY}"),
        &[],
    )
    .await;
    assert_eq!(close_code(&mut over).await, 1013);

    // No command was run by the refused sockets.
    let all = search(&mut client, "kind__eq=BashCommand").await;
    let commands: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        ["echo before", "echo via-ws", "echo still-open", "echo live"]
    );

    drop((socket, live, first, extra, client));
    server.stop_and_check();
}
