//! Secrets and crashes through the real binary: a secret injected into the
//! terminal and planted in the model's output (plain and split across
//! streamed deltas) never reaches disk, the socket, REST or the log; a run
//! killed with `kill -9` is recovered and can run again.

#[path = "support/mod.rs"]
pub mod support;

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

#[path = "agent_util/mod.rs"]
pub mod agent_util;

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use agent_util::{
    call, create, events, info, of_kind, read_tree, run, wait_status, Harness, Socket,
};
use fake_llm::Turn;

/// A planted conversation secret.
const SECRET: &str = "sekrit-8d41c07e95";

/// The value a lookup secret's URL serves.
const LOOKED_UP: &str = "looked-up-3f0a9b27c1";

/// Serves `LOOKED_UP` to every request on 127.0.0.1; counts the requests
/// and keeps their heads.
async fn lookup_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).to_string());
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{LOOKED_UP}",
                    LOOKED_UP.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}/secret"), seen)
}

#[tokio::test]
async fn secrets_never_leave_the_process_in_clear() {
    let mut h = Harness::start(&[("OH_SECRET_KEY", "test-secret-key")]).await;
    h.llm.add_script(
        "leak",
        vec![
            Turn::tool(
                "terminal",
                json!({"command": "echo value=$MY_TOKEN looked=$LOOKED"}),
            ),
            Turn::tool(
                "finish",
                json!({"message": format!("the token was {SECRET}")}),
            )
            .with_text(&format!("I printed {SECRET} from the environment.")),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body("leak", &["terminal"]);
    let (url, lookups) = lookup_server().await;
    body["secrets"] = json!({
        "MY_TOKEN": {"kind": "StaticSecret", "value": SECRET, "description": "a test token"},
        "LOOKED": {"kind": "LookupSecret", "url": url, "headers": {"X-Ask": "please"}},
    });
    body["agent"]["llm"]["stream"] = json!(true);
    let id = create(&mut c, &body).await;
    let mut socket = Socket::open(&h.server, &id).await;
    run(&mut c, &id).await;
    socket.until_state(&["finished"]).await;
    let evs = events(&mut c, &id).await;

    // The value was exported for the command, and masked in its output.
    let obs = &of_kind(&evs, "ObservationEvent")[0]["observation"];
    assert!(
        obs["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("value=<secret-hidden> looked=<secret-hidden>"),
        "{obs}"
    );
    // The lookup secret was fetched for the command, with its headers.
    let heads = lookups.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].to_lowercase().contains("x-ask: please"));
    // The streamed thought was masked although the secret spanned deltas.
    let streamed: String = socket
        .frames
        .iter()
        .filter(|f| f["kind"] == "StreamingDeltaEvent")
        .filter_map(|f| f["content"].as_str())
        .collect();
    assert!(
        streamed.contains("I printed <secret-hidden> from the environment."),
        "{streamed}"
    );
    let deltas = socket
        .frames
        .iter()
        .filter(|f| f["kind"] == "StreamingDeltaEvent")
        .count();
    assert!(deltas > 3, "the fake splits replies into small pieces");
    let finish = &of_kind(&evs, "ActionEvent")[1];
    assert_eq!(finish["action"]["message"], "the token was <secret-hidden>");
    assert_eq!(
        finish["thought"][0]["text"],
        "I printed <secret-hidden> from the environment."
    );
    // The dynamic prompt names the secret, never its value.
    let system = serde_json::to_string(&of_kind(&evs, "SystemPromptEvent")[0]).unwrap();
    assert!(system.contains("**$MY_TOKEN** - a test token"));

    let mut everything = serde_json::to_string(&evs).unwrap();
    everything.push_str(&serde_json::to_string(&socket.frames).unwrap());
    for e in &evs {
        let eid = e["id"].as_str().unwrap();
        let (status, full) = call(
            &mut c,
            Method::GET,
            &format!("/api/conversations/{id}/events/{eid}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        everything.push_str(&full.to_string());
    }
    everything.push_str(&info(&mut c, &id).await.to_string());
    let (_, final_response) = call(
        &mut c,
        Method::GET,
        &format!("/api/conversations/{id}/agent_final_response"),
        None,
    )
    .await;
    everything.push_str(&final_response.to_string());
    assert!(!everything.contains(SECRET), "the secret reached the wire");
    assert!(
        !everything.contains(LOOKED_UP),
        "the looked-up secret reached the wire"
    );
    // What the model was told back is masked too.
    let second = h.llm.requests()[1].body.to_string();
    assert!(second.contains("value=<secret-hidden>"));

    let status = h.server.terminate();
    assert_eq!(status.code(), Some(0));
    let disk = read_tree(&h.data);
    assert!(disk.contains("<secret-hidden>"));
    assert!(!disk.contains(SECRET), "the secret reached the disk");
    assert!(
        !disk.contains(LOOKED_UP),
        "the looked-up secret reached the disk"
    );
    let log = h.server.stderr();
    assert!(!log.is_empty());
    assert!(!log.contains(SECRET), "the secret reached the log");
    assert!(
        !log.contains(LOOKED_UP),
        "the looked-up secret reached the log"
    );
}

#[tokio::test]
async fn a_run_killed_mid_tool_is_recovered_and_runs_again() {
    let mut h = Harness::start(&[]).await;
    h.llm.add_script(
        "crash",
        vec![
            Turn::tool("terminal", json!({"command": "sleep 30", "timeout": 60})),
            Turn::tool("finish", json!({"message": "recovered"})),
        ],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("crash", &["terminal"])).await;
    run(&mut c, &id).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while of_kind(&events(&mut c, &id).await, "ActionEvent").is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(c);
    h.server.stop_with(nix::sys::signal::Signal::SIGKILL);
    h.server = Harness::spawn(&h.data, &[]);
    let mut c = h.client().await;
    let v = info(&mut c, &id).await;
    assert_eq!(v["execution_status"], "error");
    let evs = events(&mut c, &id).await;
    let err = of_kind(&evs, "AgentErrorEvent");
    assert_eq!(err.len(), 1);
    assert_eq!(
        err[0]["error"],
        "A restart occurred while this tool was in progress. This may indicate a fatal memory error or system crash. The tool execution was interrupted and did not complete."
    );
    assert_eq!(
        err[0]["tool_call_id"],
        of_kind(&evs, "ActionEvent")[0]["tool_call_id"]
    );
    // The crashed action is not run again; the model sees the error and goes on.
    let before = h.llm.requests().len();
    assert_eq!(run(&mut c, &id).await, StatusCode::OK);
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    assert!(of_kind(&evs, "ObservationEvent")
        .iter()
        .all(|o| o["tool_name"] != "terminal"));
    let reqs = h.llm.requests();
    assert_eq!(reqs.len(), before + 1);
    let tool_msgs: Vec<&Value> = reqs[before].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_msgs.len(), 1);
    assert!(tool_msgs[0].to_string().contains("A restart occurred"));
}

/// Runs `command` in the terminal of a new conversation with `secrets`;
/// the observation's text.
async fn run_with_secrets(h: &Harness, script: &str, command: &str, secrets: Value) -> String {
    h.llm.add_script(
        script,
        vec![
            Turn::tool("terminal", json!({"command": command})),
            Turn::tool("finish", json!({"message": "done"})),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body(script, &["terminal"]);
    body["secrets"] = secrets;
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    of_kind(&evs, "ObservationEvent")[0]["observation"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn relative_lookup_urls_resolve_against_the_server() {
    // Without OH_INTERNAL_SERVER_URL: the server's own bound address.
    let h = Harness::start(&[]).await;
    let out = run_with_secrets(
        &h,
        "own",
        "echo \"$SELF_HEALTH\" | tr a-z A-Z",
        json!({"SELF_HEALTH": {"kind": "LookupSecret", "url": "/alive"}}),
    )
    .await;
    assert!(out.contains(r#"{"STATUS":"OK"}"#), "{out}");

    // With it: joined under its path, as Python's urljoin does.
    let (url, lookups) = lookup_server().await;
    let base = url.trim_end_matches("/secret").to_string() + "/base";
    let h = Harness::start(&[("OH_INTERNAL_SERVER_URL", &base)]).await;
    let out = run_with_secrets(
        &h,
        "internal",
        "echo \"$REL\" | tr a-z A-Z",
        json!({"REL": {"kind": "LookupSecret", "url": "vault/rel"}}),
    )
    .await;
    assert!(out.contains(&LOOKED_UP.to_uppercase()), "{out}");
    let heads = lookups.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].starts_with("GET /base/vault/rel HTTP/1.1"),
        "{}",
        heads[0]
    );
}
