//! The agent's view of its history through the real binary: stuck
//! detection, condensation (by size, on request, after a context-window
//! error), `ask_agent`, titles and skills.

#[path = "support/mod.rs"]
pub mod support;

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

#[path = "agent_util/mod.rs"]
pub mod agent_util;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use agent_util::{call, create, events, info, kinds, of_kind, run, send, wait_status, Harness};
use fake_llm::{Turn, ANSWER_REPLY, SUMMARY_REPLY, TITLE_REPLY};

async fn run_to(h: &Harness, script: &str, turns: Vec<Turn>, status: &str) -> (String, Vec<Value>) {
    h.llm.add_script(script, turns);
    let mut c = h.client().await;
    let id = create(&mut c, &h.body(script, &[])).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &[status]).await;
    let evs = events(&mut c, &id).await;
    (id, evs)
}

#[tokio::test]
async fn each_stuck_pattern_ends_the_run() {
    let h = Harness::start(&[]).await;
    // The same action and observation four times.
    let same = (0..8)
        .map(|_| Turn::tool("think", json!({"thought": "again"})))
        .collect();
    let (_, evs) = run_to(&h, "same", same, "stuck").await;
    assert_eq!(of_kind(&evs, "ActionEvent").len(), 4);
    assert!(of_kind(&evs, "ConversationErrorEvent").is_empty());
    assert_eq!(
        kinds(&evs).last().unwrap(),
        "ConversationStateUpdateEvent[execution_status=stuck]"
    );

    // The same failing call: a nudge at three, stuck after four.
    let failing = (0..8)
        .map(|_| Turn::tool("think", json!({"bad": 1})))
        .collect();
    let (_, evs) = run_to(&h, "failing", failing, "stuck").await;
    assert_eq!(of_kind(&evs, "AgentErrorEvent").len(), 4);
    let nudges: Vec<&Value> = of_kind(&evs, "MessageEvent")
        .into_iter()
        .filter(|m| m["source"] == "environment")
        .collect();
    assert_eq!(nudges.len(), 1);
    assert!(nudges[0]["llm_message"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("You've called `think` with the same arguments 3 times in a row and gotten the same error each time: Error validating tool 'think'"));

    // Replies without anything: a monologue of empty agent messages.
    let empty = (0..8).map(|_| Turn::empty()).collect();
    let (_, evs) = run_to(&h, "empty", empty, "stuck").await;
    let agent_msgs = of_kind(&evs, "MessageEvent")
        .into_iter()
        .filter(|m| m["source"] == "agent")
        .count();
    assert_eq!(agent_msgs, 3);

    // Two actions alternating.
    let alternating = (0..10)
        .map(|i| {
            Turn::tool(
                "think",
                json!({"thought": if i % 2 == 0 { "ping" } else { "pong" }}),
            )
        })
        .collect();
    let (_, evs) = run_to(&h, "alternating", alternating, "stuck").await;
    assert_eq!(of_kind(&evs, "ActionEvent").len(), 6);

    // Stuck is left with a new message.
    h.llm.add_script(
        "recover",
        (0..8)
            .map(|_| Turn::tool("think", json!({"thought": "x"})))
            .collect(),
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("recover", &[])).await;
    let mut socket = agent_util::Socket::open(&h.server, &id).await;
    run(&mut c, &id).await;
    // The run's last snapshot: the loop has stopped.
    socket.until_state(&["stuck"]).await;
    send(&mut c, &id, "try something else", false).await;
    assert_eq!(info(&mut c, &id).await["execution_status"], "idle");
}

fn condenser_body(h: &Harness, script: &str, condenser: Value) -> Value {
    let mut body = h.body(script, &[]);
    body["agent"]["condenser"] = condenser;
    body
}

fn summarizing(h: &Harness, max_size: u64, keep_first: u64) -> Value {
    json!({"kind": "LLMSummarizingCondenser", "max_size": max_size, "keep_first": keep_first,
           "llm": {"model": "openai/gpt-4o", "base_url": h.llm.base_url(), "api_key": "sk-fake",
                   "usage_id": "condenser", "num_retries": 0}})
}

#[tokio::test]
async fn condensation_by_size_on_request_and_after_a_context_error() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "talk",
        (0..6).map(|i| Turn::text(&format!("reply {i}"))).collect(),
    );
    let mut c = h.client().await;
    let id = create(&mut c, &condenser_body(&h, "talk", summarizing(&h, 6, 1))).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    for i in 0..3 {
        send(&mut c, &id, &format!("message {i}"), true).await;
        wait_status(&mut c, &id, &["finished"]).await;
    }
    let evs = events(&mut c, &id).await;
    let cond = of_kind(&evs, "Condensation");
    assert_eq!(cond.len(), 1, "{:?}", kinds(&evs));
    assert_eq!(cond[0]["summary"], SUMMARY_REPLY);
    assert_eq!(cond[0]["summary_offset"], 1);
    let forgotten: Vec<&str> = cond[0]["forgotten_event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let first_user = &of_kind(&evs, "MessageEvent")[0];
    assert!(forgotten.contains(&first_user["id"].as_str().unwrap()));
    assert!(
        !evs.iter().any(|e| e["kind"] == "CondensationSummaryEvent"),
        "never stored"
    );
    // The summarising call had no tools; the next agent call saw the summary, not the forgotten events.
    let reqs = h.llm.requests();
    let summarize = reqs
        .iter()
        .position(|r| r.body.get("tools").is_none())
        .unwrap();
    assert!(reqs[summarize].body.to_string().contains("Please do it"));
    let next = reqs[summarize + 1].body.to_string();
    assert!(next.contains(SUMMARY_REPLY));
    assert!(!next.contains("Please do it"));
    let stats = &info(&mut c, &id).await["stats"]["usage_to_metrics"];
    assert_eq!(
        stats["condenser"]["accumulated_token_usage"]["prompt_tokens"],
        100
    );

    // On request: the observed Python behaviour on a three-event view.
    h.llm.add_script("short", vec![Turn::text("hello")]);
    let id = create(&mut c, &condenser_body(&h, "short", summarizing(&h, 10, 2))).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let (status, body) = call(
        &mut c,
        Method::POST,
        &format!("/api/conversations/{id}/condense"),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let evs = events(&mut c, &id).await;
    let labels = kinds(&evs);
    let n = labels.len();
    // The summarising call's usage is announced before the condensation it produced.
    assert_eq!(
        labels[n - 3..],
        [
            "CondensationRequest",
            "ConversationStateUpdateEvent[stats]",
            "Condensation"
        ]
    );
    let cond = &of_kind(&evs, "Condensation")[0];
    assert_eq!(cond["summary_offset"], 1);
    assert_eq!(cond["forgotten_event_ids"].as_array().unwrap().len(), 2);

    // Without a condenser that handles requests: 409.
    let id = create(&mut c, &h.body("short", &[])).await;
    let (status, body) = call(
        &mut c,
        Method::POST,
        &format!("/api/conversations/{id}/condense"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["detail"],
        "Cannot condense conversation: No condenser configured"
    );
    let id = create(
        &mut c,
        &condenser_body(&h, "short", json!({"kind": "NoOpCondenser"})),
    )
    .await;
    let (status, body) = call(
        &mut c,
        Method::POST,
        &format!("/api/conversations/{id}/condense"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["detail"],
        "Cannot condense conversation: Condenser NoOpCondenser does not handle condensation requests"
    );
    let (status, body) = call(
        &mut c,
        Method::POST,
        "/api/conversations/7e0f9a3e-5b6c-4d2a-8f1e-2c3b4a5d6e7f/condense",
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Conversation not found"})
        )
    );

    // A context-window error asks the condenser, then the call is retried.
    h.llm.add_script(
        "overflow",
        vec![Turn::text("fits now").failing(
            400,
            r#"{"error": {"message": "This model's maximum context length is 128000 tokens.", "code": "context_length_exceeded"}}"#,
            1,
        )],
    );
    let id = create(
        &mut c,
        &condenser_body(&h, "overflow", summarizing(&h, 100, 2)),
    )
    .await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished", "error"]).await;
    let evs = events(&mut c, &id).await;
    let labels = kinds(&evs);
    assert!(
        labels.contains(&"CondensationRequest".to_string()),
        "{labels:?}"
    );
    assert!(labels.contains(&"Condensation".to_string()), "{labels:?}");
    assert_eq!(info(&mut c, &id).await["execution_status"], "finished");
}

#[tokio::test]
async fn ask_agent_adds_no_events() {
    let h = Harness::start(&[]).await;
    let (id, before) = run_to(
        &h,
        "asked",
        vec![
            Turn::tool("think", json!({"thought": "x"})),
            Turn::text("done"),
        ],
        "finished",
    )
    .await;
    let mut c = h.client().await;
    let (status, body) = call(
        &mut c,
        Method::POST,
        &format!("/api/conversations/{id}/ask_agent"),
        Some(&json!({"question": "What did you do?"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"response": ANSWER_REPLY}))
    );
    assert_eq!(events(&mut c, &id).await, before);
    let req = h.llm.requests().last().unwrap().body.clone();
    assert!(req["tools"].as_array().is_some_and(|t| !t.is_empty()));
    let last = req["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .to_string();
    assert!(last.contains("<QUESTION>") && last.contains("What did you do?"));
    assert!(req.get("stream").is_none() || req["stream"] == false);
    let stats = &info(&mut c, &id).await["stats"]["usage_to_metrics"];
    assert_eq!(
        stats["ask-agent-llm"]["accumulated_token_usage"]["prompt_tokens"],
        100
    );
    let (status, body) = call(
        &mut c,
        Method::POST,
        "/api/conversations/7e0f9a3e-5b6c-4d2a-8f1e-2c3b4a5d6e7f/ask_agent",
        Some(&json!({"question": "?"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Conversation not found"})
        )
    );
}

#[tokio::test]
async fn titles_automatic_on_request_and_on_failure() {
    let h = Harness::start(&[]).await;
    let mut c = h.client().await;
    let mut body = h.body("t", &[]);
    body["autotitle"] = json!(true);
    let id = create(&mut c, &body).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let title = loop {
        let v = info(&mut c, &id).await;
        if let Some(t) = v["title"].as_str() {
            break t.to_string();
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(title, TITLE_REPLY);
    let title_req = h.llm.requests()[0].body.clone();
    assert!(title_req.get("tools").is_none());
    assert!(title_req.to_string().contains("maximum 50 characters"));
    let (status, v) = call(
        &mut c,
        Method::POST,
        &format!("/api/conversations/{id}/generate_title"),
        Some(&json!({"max_length": 10})),
    )
    .await;
    assert_eq!(
        (status, v),
        (StatusCode::OK, json!({"title": "Fake Co..."}))
    );
    let (status, v) = call(
        &mut c,
        Method::POST,
        &format!("/api/conversations/{id}/generate_title"),
        None,
    )
    .await;
    assert_eq!((status, v), (StatusCode::OK, json!({"title": TITLE_REPLY})));

    // An unreachable LLM: a non-fatal error event and the message as the title.
    let mut body = h.body("t", &[]);
    body["autotitle"] = json!(true);
    body["agent"]["llm"]["base_url"] = json!("http://127.0.0.1:9/v1");
    body["initial_message"]["content"][0]["text"] =
        json!("  Fix the flaky login test in the auth service, it times out on CI  ");
    let id = create(&mut c, &body).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let v = loop {
        let v = info(&mut c, &id).await;
        if v["title"].is_string() {
            break v;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        v["title"],
        "Fix the flaky login test in the auth service, i..."
    );
    assert_eq!(v["execution_status"], "idle");
    let evs = events(&mut c, &id).await;
    let err = of_kind(&evs, "ConversationErrorEvent");
    assert_eq!(err.len(), 1);
    assert_eq!(err[0]["code"], "LLMServiceUnavailableError");
}

#[tokio::test]
async fn project_skills_and_keyword_knowledge() {
    let h = Harness::start(&[]).await;
    std::fs::write(
        h.work.join("AGENTS.md"),
        "Always run `make check` before finishing.",
    )
    .unwrap();
    std::fs::create_dir_all(h.work.join(".openhands/skills")).unwrap();
    std::fs::write(
        h.work.join(".openhands/skills/db.md"),
        "---\nname: database\ntriggers:\n- postgres\n---\nThe test database listens on port 5433.\n",
    )
    .unwrap();
    h.llm
        .add_script("skills", vec![Turn::text("noted"), Turn::text("again")]);
    let mut c = h.client().await;
    let mut body = h.body("skills", &[]);
    body["agent"]["agent_context"] =
        json!({"load_project_skills": true, "user_message_suffix": "Be brief."});
    body["initial_message"]["content"][0]["text"] = json!(format!(
        "Check the Postgres setup [script:skills] [workdir:{}]",
        h.work.display()
    ));
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    let system = &of_kind(&evs, "SystemPromptEvent")[0];
    let dynamic = system["dynamic_context"]["text"].as_str().unwrap();
    assert!(dynamic.contains("<REPO_CONTEXT>"));
    assert!(dynamic.contains(
        "[BEGIN context from [agents]]\nAlways run `make check` before finishing.\n[END Context]"
    ));
    assert!(dynamic.contains("<name>database</name>"));
    assert!(dynamic.contains("<CURRENT_DATETIME>"));
    let user = &of_kind(&evs, "MessageEvent")[0];
    assert_eq!(user["activated_skills"], json!(["database"]));
    let extra = user["extended_content"][0]["text"].as_str().unwrap();
    assert!(
        extra.contains("<EXTRA_INFO>")
            && extra.contains("port 5433")
            && extra.ends_with("Be brief.")
    );
    let req = h
        .llm
        .requests()
        .into_iter()
        .find(|r| r.body.get("tools").is_some())
        .unwrap();
    assert!(req.body["messages"][1].to_string().contains("port 5433"));
    assert_eq!(
        info(&mut c, &id).await["activated_knowledge_skills"],
        json!(["database"])
    );
    // Activated once: a second mention only gets the suffix.
    send(&mut c, &id, "postgres again", false).await;
    let evs = events(&mut c, &id).await;
    let second = of_kind(&evs, "MessageEvent")
        .into_iter()
        .filter(|m| m["source"] == "user")
        .nth(1)
        .unwrap()
        .clone();
    assert_eq!(second["activated_skills"], json!([]));
    assert_eq!(second["extended_content"][0]["text"], "Be brief.");
}
