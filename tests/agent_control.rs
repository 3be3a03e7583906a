//! Controlling runs through the real binary: run while running, pause,
//! interrupt (of a slow LLM reply and of a running tool), confirmation
//! accept and reject, the risky threshold with the LLM analyzer, messages
//! that arrive during a run, and the run limit.

#[path = "support/mod.rs"]
pub mod support;

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

#[path = "agent_util/mod.rs"]
pub mod agent_util;

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use agent_util::{call, create, events, kinds, of_kind, run, send, wait_status, Harness, Socket};
use fake_llm::Turn;

async fn post(
    c: &mut support::Client,
    id: &str,
    action: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    call(
        c,
        Method::POST,
        &format!("/api/conversations/{id}/{action}"),
        body,
    )
    .await
}

#[tokio::test]
async fn run_while_running_and_pause_between_steps() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "slow",
        vec![
            Turn::tool("think", json!({"thought": "slowly"}))
                .with_delay(Duration::from_millis(800)),
            Turn::tool("finish", json!({"message": "done"})),
        ],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("slow", &[])).await;
    let mut socket = Socket::open(&h.server, &id).await;
    assert_eq!(run(&mut c, &id).await, StatusCode::OK);
    h.llm
        .wait_for_requests(1, Duration::from_secs(10))
        .await
        .unwrap();
    let (status, body) = post(&mut c, &id, "run", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"detail": "Conversation already running. Wait for completion or pause first."})
    );
    let (status, _) = post(&mut c, &id, "pause", None).await;
    assert_eq!(status, StatusCode::OK);
    // The reply in flight is still acted on, then the run stops: the pause
    // publishes a snapshot at once, the run another when it has stopped.
    socket.until_state(&["paused"]).await;
    socket.until_state(&["paused"]).await;
    let evs = events(&mut c, &id).await;
    let labels = kinds(&evs);
    let pause = labels.iter().position(|l| l == "PauseEvent").unwrap();
    assert_eq!(
        labels[pause - 1],
        "ConversationStateUpdateEvent[execution_status=paused]"
    );
    assert_eq!(of_kind(&evs, "ObservationEvent").len(), 1);
    assert_eq!(h.llm.requests().len(), 1, "no LLM call after the pause");
    // Resume.
    assert_eq!(run(&mut c, &id).await, StatusCode::OK);
    socket.until_state(&["finished"]).await;
    let evs = events(&mut c, &id).await;
    assert_eq!(of_kind(&evs, "ObservationEvent").len(), 2);
    // From finished without a new message the run ends at once.
    assert_eq!(run(&mut c, &id).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        wait_status(&mut c, &id, &["finished"]).await["execution_status"],
        "finished"
    );
    assert_eq!(h.llm.requests().len(), 2);
    // Pause and run on unknown conversations.
    let unknown = "0f7f2c8e-3e65-4d0e-9f62-5b6f2a7d8e11";
    for action in ["run", "pause", "interrupt"] {
        let (status, body) = post(&mut c, unknown, action, None).await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({"detail": "Not Found"})),
            "{action}"
        );
    }
}

#[tokio::test]
async fn interrupt_cancels_a_slow_llm_reply() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "stall",
        vec![Turn::tool("think", json!({"thought": "never"})).with_delay(Duration::from_secs(30))],
    );
    let mut c = h.client().await;
    let mut body = h.body("stall", &[]);
    body["agent"]["llm"]["stream"] = json!(true);
    let id = create(&mut c, &body).await;
    let mut socket = Socket::open(&h.server, &id).await;
    run(&mut c, &id).await;
    h.llm
        .wait_for_requests(1, Duration::from_secs(10))
        .await
        .unwrap();
    let (status, _) = post(&mut c, &id, "interrupt", None).await;
    assert_eq!(status, StatusCode::OK);
    let state = socket.until_state(&["paused"]).await;
    assert_eq!(state["value"]["execution_status"], "paused");
    let evs = events(&mut c, &id).await;
    let labels = kinds(&evs);
    assert!(labels.contains(&"InterruptEvent".to_string()), "{labels:?}");
    assert!(of_kind(&evs, "ActionEvent").is_empty());
    assert_eq!(info_status(&mut c, &id).await, "paused");
}

async fn info_status(c: &mut support::Client, id: &str) -> String {
    agent_util::info(c, id).await["execution_status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn interrupt_stops_a_running_tool_and_the_run_resumes() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "sleepy",
        vec![
            Turn::tool("terminal", json!({"command": "sleep 30", "timeout": 60})),
            Turn::tool("finish", json!({"message": "resumed"})),
        ],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("sleepy", &["terminal"])).await;
    run(&mut c, &id).await;
    // Wait for the action, then for the shell to start the command.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while of_kind(&events(&mut c, &id).await, "ActionEvent").is_empty() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = post(&mut c, &id, "interrupt", None).await;
    assert_eq!(status, StatusCode::OK);
    wait_status(&mut c, &id, &["paused"]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let err = loop {
        let evs = events(&mut c, &id).await;
        if let Some(e) = of_kind(&evs, "AgentErrorEvent").first() {
            break (*e).clone();
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", kinds(&evs));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        err["error"],
        "Tool call interrupted before completion. The conversation was paused."
    );
    assert!(of_kind(&events(&mut c, &id).await, "ObservationEvent").is_empty());
    // The interrupted call is closed: resuming asks the LLM, which finishes.
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let reqs = h.llm.requests();
    let last = reqs.last().unwrap().body.to_string();
    assert!(last.contains("Tool call interrupted before completion"));
}

#[tokio::test]
async fn confirmation_accept_reject_and_implicit_accept() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "confirm",
        vec![
            Turn::tool("task_tracker", json!({"command": "view"})),
            Turn::tool("finish", json!({"message": "checked"})),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body("confirm", &["task_tracker"]);
    body["confirmation_policy"] = json!({"kind": "AlwaysConfirm"});

    // Accept: the pending action runs first, then the agent goes on.
    let id = create(&mut c, &body).await;
    let mut socket = Socket::open(&h.server, &id).await;
    run(&mut c, &id).await;
    socket.until_state(&["waiting_for_confirmation"]).await;
    let evs = events(&mut c, &id).await;
    assert_eq!(of_kind(&evs, "ActionEvent").len(), 1);
    assert!(of_kind(&evs, "ObservationEvent").is_empty());
    let (status, _) = post(
        &mut c,
        &id,
        "events/respond_to_confirmation",
        Some(&json!({"accept": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    let tail: Vec<String> = kinds(&evs)
        .into_iter()
        .skip_while(|l| {
            l != "ConversationStateUpdateEvent[execution_status=waiting_for_confirmation]"
        })
        .filter(|l| !l.contains("[stats]"))
        .collect();
    assert_eq!(
        tail,
        [
            "ConversationStateUpdateEvent[execution_status=waiting_for_confirmation]",
            "ConversationStateUpdateEvent[execution_status=running]",
            "ObservationEvent",
            "ActionEvent",
            "ObservationEvent",
            "ConversationStateUpdateEvent[execution_status=finished]",
        ]
    );
    // Nothing pending: accepting is a no-op success.
    let (status, _) = post(
        &mut c,
        &id,
        "events/respond_to_confirmation",
        Some(&json!({"accept": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Reject: a rejection per pending action, idle, no run.
    h.llm.clear();
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["waiting_for_confirmation"]).await;
    let (status, _) = post(
        &mut c,
        &id,
        "events/respond_to_confirmation",
        Some(&json!({"accept": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_status(&mut c, &id, &["idle"]).await;
    let evs = events(&mut c, &id).await;
    let rejected = of_kind(&evs, "UserRejectObservation");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["rejection_reason"], "User rejected the action.");
    assert_eq!(rejected[0]["rejection_source"], "user");
    assert_eq!(
        rejected[0]["action_id"],
        of_kind(&evs, "ActionEvent")[0]["id"]
    );
    let labels = kinds(&evs);
    let n = labels.len();
    assert_eq!(
        labels[n - 2..],
        [
            "ConversationStateUpdateEvent[execution_status=idle]",
            "UserRejectObservation"
        ]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.llm.requests().len(), 1);
    let (status, _) = post(
        &mut c,
        &id,
        "events/respond_to_confirmation",
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A message with run:true while waiting accepts implicitly.
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["waiting_for_confirmation"]).await;
    send(&mut c, &id, "go ahead", true).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    assert_eq!(
        of_kind(&evs, "ObservationEvent").len(),
        2,
        "{:?}",
        kinds(&evs)
    );
}

#[tokio::test]
async fn the_risky_threshold_with_the_llm_analyzer() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "risky",
        vec![
            Turn::tool(
                "task_tracker",
                json!({"command": "view", "security_risk": "LOW"}),
            ),
            Turn::tool(
                "task_tracker",
                json!({"command": "view", "security_risk": "HIGH"}),
            ),
            Turn::tool("finish", json!({"message": "ok"})),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body("risky", &["task_tracker"]);
    body["confirmation_policy"] =
        json!({"kind": "ConfirmRisky", "threshold": "MEDIUM", "confirm_unknown": false});
    body["security_analyzer"] = json!({"kind": "LLMSecurityAnalyzer"});
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["waiting_for_confirmation"]).await;
    let evs = events(&mut c, &id).await;
    let actions = of_kind(&evs, "ActionEvent");
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0]["security_risk"], "LOW");
    assert_eq!(actions[1]["security_risk"], "HIGH");
    let analyses = of_kind(&evs, "SecurityAnalysisEvent");
    assert_eq!(analyses.len(), 2);
    assert_eq!(analyses[0]["analyzer"], "LLMSecurityAnalyzer");
    assert_eq!(analyses[0]["policy"], "ConfirmRisky");
    assert_eq!(
        analyses[1]["risks"][actions[1]["id"].as_str().unwrap()],
        "HIGH"
    );
    assert_eq!(
        of_kind(&evs, "ObservationEvent").len(),
        1,
        "the LOW action ran"
    );
    post(
        &mut c,
        &id,
        "events/respond_to_confirmation",
        Some(&json!({"accept": true})),
    )
    .await;
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    assert_eq!(
        of_kind(&evs, "SecurityAnalysisEvent").len(),
        2,
        "a lone finish is not analysed"
    );
    // Without an analyzer the model's risk is ignored.
    let mut body = h.body("risky", &["task_tracker"]);
    body["confirmation_policy"] = json!({"kind": "ConfirmRisky"});
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["waiting_for_confirmation"]).await;
    let evs = events(&mut c, &id).await;
    assert_eq!(of_kind(&evs, "ActionEvent")[0]["security_risk"], "UNKNOWN");
    assert!(of_kind(&evs, "SecurityAnalysisEvent").is_empty());
}

#[tokio::test]
async fn messages_during_and_after_a_run() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "chat",
        vec![
            Turn::tool("think", json!({"thought": "hm"})).with_delay(Duration::from_millis(600)),
            Turn::text("first answer"),
            Turn::text("second answer"),
        ],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("chat", &[])).await;
    run(&mut c, &id).await;
    h.llm
        .wait_for_requests(1, Duration::from_secs(10))
        .await
        .unwrap();
    let (status, _) = send(&mut c, &id, "also this", true).await;
    assert_eq!(status, StatusCode::OK);
    wait_status(&mut c, &id, &["finished"]).await;
    let reqs = h.llm.requests();
    assert!(
        reqs[1].body.to_string().contains("also this"),
        "picked up in the same run"
    );
    // After finished, a new message sets idle and runs again.
    let mut socket = Socket::open(&h.server, &id).await;
    socket.send_text("and more").await;
    socket
        .until(|f| f["key"] == "execution_status" && f["value"] == "idle")
        .await;
    socket.until_state(&["finished"]).await;
    let evs = events(&mut c, &id).await;
    let agent_texts: Vec<&str> = of_kind(&evs, "MessageEvent")
        .iter()
        .filter(|m| m["source"] == "agent")
        .filter_map(|m| m["llm_message"]["content"][0]["text"].as_str())
        .collect();
    assert_eq!(agent_texts, ["first answer", "second answer"]);
}

#[tokio::test]
async fn the_run_limit_answers_429() {
    let h = Harness::start(&[("OH_MAX_CONCURRENT_RUNS", "1")]).await;
    h.llm.add_script(
        "slow",
        vec![Turn::tool("finish", json!({"message": "x"})).with_delay(Duration::from_millis(1500))],
    );
    h.llm
        .add_script("quick", vec![Turn::tool("finish", json!({"message": "y"}))]);
    let mut c = h.client().await;
    let a = create(&mut c, &h.body("slow", &[])).await;
    let b = create(&mut c, &h.body("quick", &[])).await;
    run(&mut c, &a).await;
    h.llm
        .wait_for_requests(1, Duration::from_secs(10))
        .await
        .unwrap();
    let (status, body) = post(&mut c, &b, "run", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body["detail"],
        "Conversation run limit reached. Retry the request later."
    );
    let (status, body) = send(&mut c, &b, "please", true).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body["detail"],
        format!(
            "Message saved, but the conversation run limit was reached. Retry POST /api/conversations/{}/run without resending the message.",
            b.replace('-', "")
        )
    );
    let evs = events(&mut c, &b).await;
    assert_eq!(
        of_kind(&evs, "MessageEvent").len(),
        2,
        "the message was saved"
    );
    wait_status(&mut c, &a, &["finished"]).await;
    // The permit comes back once the first run has published its end.
    let mut started = false;
    for _ in 0..100 {
        if run(&mut c, &b).await == StatusCode::OK {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started);
    wait_status(&mut c, &b, &["finished"]).await;
}
