//! Agent runs through the real binary against the scripted fake provider:
//! full runs on each wire API with and without streaming, parallel and
//! malformed tool calls, the iteration limit, LLM errors and retries, the
//! first request compared with the Python server's, and the live event
//! sequence compared with the one the Python server produced.

#[path = "support/mod.rs"]
pub mod support;

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

#[path = "agent_util/mod.rs"]
pub mod agent_util;

use std::collections::BTreeSet;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use agent_util::{
    call, create, events, events_with, kinds, label, of_kind, run, wait_status, Harness, Socket,
};
use fake_llm::Turn;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/python_agent_run.json")).expect("fixture")
}

/// The LLM requests of the run, without title or summary calls.
fn agent_requests(h: &Harness) -> Vec<fake_llm::RecordedRequest> {
    h.llm
        .requests()
        .into_iter()
        .filter(|r| {
            r.body
                .get("tools")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty())
        })
        .collect()
}

#[tokio::test]
async fn full_run_on_each_api_and_streaming_mode() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "steps",
        vec![
            Turn::tool("think", json!({"thought": "plan the work"})).with_text("Thinking first."),
            Turn::tool("finish", json!({"message": "All done."})).with_text("Wrapping up now."),
        ],
    );
    let cases = [
        ("openai/gpt-4o", "chat", "/chat/completions"),
        ("openai/gpt-4o", "responses", "/responses"),
        ("anthropic/claude-sonnet-4-5", "auto", "/messages"),
    ];
    let mut c = h.client().await;
    for (model, api_mode, path) in cases {
        for stream in [false, true] {
            h.llm.clear();
            let mut body = h.body("steps", &[]);
            body["agent"]["llm"]["model"] = json!(model);
            body["agent"]["llm"]["api_mode"] = json!(api_mode);
            body["agent"]["llm"]["stream"] = json!(stream);
            let id = create(&mut c, &body).await;
            let mut socket = Socket::open(&h.server, &id).await;
            assert_eq!(run(&mut c, &id).await, StatusCode::OK);
            socket.until_state(&["finished"]).await;
            let evs = events(&mut c, &id).await;
            let labels: Vec<String> = kinds(&evs)
                .into_iter()
                .filter(|l| !l.contains("[stats]"))
                .collect();
            assert_eq!(
                labels,
                [
                    "SystemPromptEvent",
                    "MessageEvent(user)",
                    "ConversationStateUpdateEvent[last_user_message_id]",
                    "ConversationStateUpdateEvent[execution_status=running]",
                    "ActionEvent",
                    "ObservationEvent",
                    "ActionEvent",
                    "ObservationEvent",
                    "ConversationStateUpdateEvent[execution_status=finished]",
                ],
                "{model} {api_mode} stream={stream}"
            );
            let actions = of_kind(&evs, "ActionEvent");
            assert_eq!(actions[0]["tool_name"], "think");
            assert_eq!(actions[0]["thought"][0]["text"], "Thinking first.");
            assert_eq!(actions[1]["action"]["message"], "All done.");
            let obs = of_kind(&evs, "ObservationEvent");
            assert_eq!(
                obs[0]["observation"]["content"][0]["text"],
                "Your thought has been logged."
            );
            assert_eq!(obs[1]["observation"]["kind"], "FinishObservation");
            assert_eq!(h.llm.requests_to(path).len(), 2, "{model} {api_mode}");
            // Deltas reach the socket before the action they belong to, and only when streaming.
            let deltas: Vec<usize> = socket
                .frames
                .iter()
                .enumerate()
                .filter(|(_, f)| f["kind"] == "StreamingDeltaEvent")
                .map(|(i, _)| i)
                .collect();
            let streamed: String = socket
                .frames
                .iter()
                .filter(|f| f["kind"] == "StreamingDeltaEvent")
                .filter_map(|f| f["content"].as_str())
                .collect();
            if stream {
                assert!(
                    streamed.contains("Thinking first."),
                    "{model}: {streamed:?}"
                );
                let first_action = socket
                    .frames
                    .iter()
                    .position(|f| f["kind"] == "ActionEvent")
                    .unwrap();
                assert!(deltas[0] < first_action);
            } else {
                assert!(deltas.is_empty());
            }
            assert!(evs.iter().all(|e| e["kind"] != "StreamingDeltaEvent"));
            let stats = &evs
                .iter()
                .rev()
                .find(|e| e["key"] == "stats")
                .expect("stats update")["value"]["usage_to_metrics"]["agent"];
            assert_eq!(stats["accumulated_token_usage"]["prompt_tokens"], 200);
            assert!(stats.get("token_usages").is_none(), "snapshot form");
        }
    }
}

#[tokio::test]
async fn parallel_calls_chain_and_report_in_order() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "parallel",
        vec![
            Turn::tools(vec![
                ("think", json!({"thought": "one"})),
                (
                    "think",
                    json!({"thought": "two", "summary": "second thought"}),
                ),
            ])
            .with_text("Two thoughts."),
            Turn::tools(vec![
                ("finish", json!({"message": "done"})),
                ("think", json!({"thought": "after finish"})),
            ]),
        ],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("parallel", &[])).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    let real: Vec<&Value> = evs
        .iter()
        .filter(|e| e["kind"] != "ConversationStateUpdateEvent")
        .collect();
    let labels: Vec<String> = real.iter().map(|e| label(e)).collect();
    assert_eq!(
        labels[2..],
        [
            "ActionEvent",
            "ActionEvent",
            "ObservationEvent",
            "ObservationEvent",
            "ActionEvent",
            "ActionEvent",
            "ObservationEvent"
        ]
    );
    let (a1, a2) = (real[2], real[3]);
    assert_eq!(a1["llm_response_id"], a2["llm_response_id"]);
    assert_eq!(a1["thought"][0]["text"], "Two thoughts.");
    assert_eq!(a2["thought"], json!([]));
    assert_eq!(a2["parent_id"], a1["id"]);
    assert_eq!(a1["summary"], r#"think: {"thought": "one"}"#);
    assert_eq!(a2["summary"], "second thought");
    assert_eq!(
        a2["tool_call"]["arguments"],
        r#"{"thought": "two", "summary": "second thought"}"#
    );
    assert_eq!(real[4]["action_id"], a1["id"]);
    assert_eq!(real[5]["action_id"], a2["id"]);
    // The call after finish is recorded but never executed.
    assert_eq!(real[6]["tool_name"], "finish");
    assert_eq!(real[7]["tool_name"], "think");
    assert_eq!(real[8]["action_id"], real[6]["id"]);
    assert_eq!(real.len(), 9);
    // The second request carries both calls in one assistant turn.
    let reqs = agent_requests(&h);
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    let assistant: Vec<&Value> = msgs.iter().filter(|m| m["role"] == "assistant").collect();
    assert_eq!(assistant.len(), 1);
    assert_eq!(assistant[0]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(msgs.iter().filter(|m| m["role"] == "tool").count(), 2);
    // Run concurrently, the results are still stored in call order.
    let mut body = h.body("parallel", &[]);
    body["agent"]["tool_concurrency_limit"] = json!(4);
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    let actions = of_kind(&evs, "ActionEvent");
    let obs = of_kind(&evs, "ObservationEvent");
    assert_eq!(obs[0]["action_id"], actions[0]["id"]);
    assert_eq!(obs[1]["action_id"], actions[1]["id"]);
}

#[tokio::test]
async fn malformed_and_unknown_calls_are_errors_the_model_sees() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "bad",
        vec![
            Turn::raw_tool("think", "{\"thought\": oops"),
            Turn::tool("no_such_tool", json!({"a": 1})),
            Turn::tool("think", json!({"wrong": 1})),
            Turn::empty(),
            Turn::text("Done talking."),
        ],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("bad", &[])).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let evs = events(&mut c, &id).await;
    let actions = of_kind(&evs, "ActionEvent");
    let errors = of_kind(&evs, "AgentErrorEvent");
    assert_eq!(actions.len(), 3);
    assert_eq!(errors.len(), 3);
    assert!(actions.iter().all(|a| a.get("action").is_none()));
    let malformed: Value =
        serde_json::from_str(actions[0]["tool_call"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(malformed["_openhands_malformed_tool_call"], true);
    assert!(errors[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("Error validating tool 'think': "));
    assert!(errors[0]["error"]
        .as_str()
        .unwrap()
        .ends_with("Arguments: unparseable JSON"));
    assert_eq!(
        errors[1]["error"],
        "Tool 'no_such_tool' not found. Available: ['finish', 'think']"
    );
    assert_eq!(errors[1]["classification"]["kind"], "agent_action");
    assert!(errors[2]["error"]
        .as_str()
        .unwrap()
        .ends_with("Parameters provided: ['wrong']"));
    // The empty reply got the nudge; the text reply finished the run.
    let messages: Vec<(String, String)> = of_kind(&evs, "MessageEvent")
        .iter()
        .map(|m| {
            (
                m["source"].as_str().unwrap().to_string(),
                m["llm_message"]["content"]
                    .as_array()
                    .and_then(|c| c.first())
                    .and_then(|c| c["text"].as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(messages[1].0, "agent");
    assert_eq!(
        messages[2],
        (
            "environment".to_string(),
            "Your last response did not include a function call or a message. Please use a tool to proceed with the task.".to_string()
        )
    );
    assert_eq!(
        messages[3],
        ("agent".to_string(), "Done talking.".to_string())
    );
    // The model saw its errors as tool results.
    let second = &agent_requests(&h)[1].body["messages"];
    let tool_msg = second
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    assert!(tool_msg.to_string().contains("unparseable JSON"));
}

#[tokio::test]
async fn the_iteration_limit_ends_the_run_with_an_error() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "loop",
        (0..5)
            .map(|i| Turn::tool("think", json!({"thought": format!("step {i}")})))
            .collect(),
    );
    let mut c = h.client().await;
    let mut body = h.body("loop", &[]);
    body["max_iterations"] = json!(2);
    let id = create(&mut c, &body).await;
    let mut socket = Socket::open(&h.server, &id).await;
    run(&mut c, &id).await;
    // The run's last snapshot: the task has ended and a new run may start.
    socket.until_state(&["error"]).await;
    let evs = events(&mut c, &id).await;
    let err = of_kind(&evs, "ConversationErrorEvent");
    assert_eq!(err.len(), 1);
    assert_eq!(err[0]["code"], "MaxIterationsReached");
    assert_eq!(
        err[0]["detail"],
        "Agent reached maximum iterations limit (2)."
    );
    assert_eq!(err[0]["classification"]["kind"], "agent_action");
    assert_eq!(of_kind(&evs, "ActionEvent").len(), 2);
    // A new run counts its own iterations (the status is `error` before and
    // after it: its end shows as the second error event).
    run(&mut c, &id).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let evs = loop {
        let evs = events(&mut c, &id).await;
        if of_kind(&evs, "ConversationErrorEvent").len() == 2 {
            break evs;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", kinds(&evs));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(of_kind(&evs, "ActionEvent").len(), 4);
}

#[tokio::test]
async fn a_rejected_key_is_not_retried_and_ends_the_run() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "auth",
        vec![Turn::error(401, r#"{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}"#)],
    );
    let mut c = h.client().await;
    let mut body = h.body("auth", &[]);
    body["agent"]["llm"]["num_retries"] = json!(3);
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["error"]).await;
    let evs = events_with(&mut c, &id, "ConversationErrorEvent").await;
    let err = of_kind(&evs, "ConversationErrorEvent");
    assert_eq!(err[0]["code"], "LLMAuthenticationError");
    assert_eq!(
        err[0]["detail"],
        "Your LLM API key appears to be invalid or has expired."
    );
    assert_eq!(err[0]["classification"]["kind"], "auth");
    assert_eq!(agent_requests(&h).len(), 1);
}

#[tokio::test]
async fn transient_failures_are_retried_on_a_short_schedule() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "flaky",
        vec![
            Turn::tool("think", json!({"thought": "x"})).failing(
                429,
                r#"{"error": {"message": "Rate limit reached"}}"#,
                2,
            ),
            Turn::tool("finish", json!({"message": "ok"})).failing(
                500,
                r#"{"error": {"message": "boom"}}"#,
                1,
            ),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body("flaky", &[]);
    let llm = &mut body["agent"]["llm"];
    llm["num_retries"] = json!(3);
    llm["retry_multiplier"] = json!(0.01);
    llm["retry_min_wait"] = json!(0);
    llm["retry_max_wait"] = json!(1);
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let turns: Vec<usize> = agent_requests(&h).iter().map(|r| r.turn).collect();
    assert_eq!(turns, [0, 0, 0, 1, 1]);
    // Without retries the failure ends the run with the provider's error.
    h.llm.add_script(
        "down",
        vec![Turn::error(503, r#"{"error": {"message": "overloaded"}}"#)],
    );
    let id = create(&mut c, &h.body("down", &[])).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["error"]).await;
    let evs = events_with(&mut c, &id, "ConversationErrorEvent").await;
    let err = of_kind(&evs, "ConversationErrorEvent");
    assert_eq!(err[0]["code"], "LLMServiceUnavailableError");
    assert_eq!(err[0]["classification"]["retryable"], true);
}

fn tags(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"(?m)^<([A-Z_]+)>$").unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

#[tokio::test]
async fn the_first_request_matches_the_python_servers() {
    let expected = &fixture()["first_turn"];
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "first",
        vec![Turn::tool("finish", json!({"message": "ok"}))],
    );
    let mut c = h.client().await;
    let mut body = h.body(
        "first",
        &[
            "terminal",
            "file_editor",
            "task_tracker",
            "glob",
            "grep",
            "apply_patch",
        ],
    );
    body["secrets"] = json!({"MY_TOKEN": {"kind": "StaticSecret", "value": "tok-123"}});
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let req = &agent_requests(&h)[0].body;
    let keys: BTreeSet<&str> = req
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = expected["body_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(keys, want);
    assert_eq!(req["model"], expected["model"]);
    assert_eq!(
        req["max_completion_tokens"],
        expected["max_completion_tokens"]
    );
    assert_eq!(req["prompt_cache_key"], id);
    let msgs = req["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(json!(roles), expected["roles"]);
    for (m, keys) in msgs
        .iter()
        .zip(expected["message_keys"].as_array().unwrap())
    {
        let have: BTreeSet<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = keys
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(have, want);
    }
    let system = msgs[0]["content"].as_array().unwrap();
    assert_eq!(
        system.len() as u64,
        expected["system_parts"].as_u64().unwrap()
    );
    assert_eq!(
        json!(tags(system[0]["text"].as_str().unwrap())),
        expected["static_tags"]
    );
    let dynamic = system[1]["text"].as_str().unwrap();
    assert_eq!(json!(tags(dynamic)), expected["dynamic_tags"]);
    assert!(dynamic.contains(expected["dynamic_secret_line"].as_str().unwrap()));
    assert!(!dynamic.contains("tok-123"));
    assert_eq!(msgs[1]["content"][0]["type"], "text");
    // Every tool schema exactly as the Python server sent it.
    let ours = req["tools"].as_array().unwrap();
    let theirs = expected["tools"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(theirs) {
        let name = t["function"]["name"].as_str().unwrap();
        // The descriptions name the working directory of the recording.
        let t = serde_json::to_string(t)
            .unwrap()
            .replace("/tmp/anchor-ws/work", &h.work.display().to_string());
        let o = serde_json::to_string(o).unwrap();
        assert_eq!(o, t, "{name}");
    }
}

#[tokio::test]
async fn the_live_sequence_matches_the_python_servers() {
    let expected = &fixture()["live_run"];
    let h = Harness::start(&[]).await;
    let path = h.work.join("hello.txt");
    h.llm.add_script(
        "three",
        vec![
            Turn::tool("terminal", json!({"command": "echo hi", "is_input": false})),
            Turn::tool(
                "file_editor",
                json!({"command": "create", "path": path, "file_text": "hello from mock\n"}),
            ),
            Turn::tool(
                "task_tracker",
                json!({"command": "plan", "task_list": [
                {"title": "say hi", "notes": "", "status": "done"},
                {"title": "write file", "notes": "", "status": "done"}]}),
            ),
            Turn::tool("finish", json!({"message": "All three steps done."})),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body("three", &["terminal", "file_editor", "task_tracker"]);
    body.as_object_mut().unwrap().remove("initial_message");
    let id = create(&mut c, &body).await;
    let mut socket = Socket::open(&h.server, &id).await;
    socket.until(|f| f["key"] == "full_state").await;
    socket
        .send_text(&format!(
            "go via websocket [script:three] [workdir:{}]",
            h.work.display()
        ))
        .await;
    socket.until_state(&["finished"]).await;
    let ours: Vec<String> = kinds(&socket.frames[1..]);
    let theirs: Vec<String> = expected["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    // Stats updates depend on the title call's timing: compared separately.
    let without_stats = |l: &[String]| -> Vec<String> {
        l.iter()
            .filter(|x| !x.contains("[stats]"))
            .cloned()
            .collect()
    };
    assert_eq!(without_stats(&ours), without_stats(&theirs));
    // Each LLM call's stats update comes before the actions of its reply.
    for (i, l) in ours.iter().enumerate() {
        if l == "ActionEvent" {
            assert_eq!(
                ours[i - 1],
                "ConversationStateUpdateEvent[stats]",
                "{ours:?}"
            );
        }
    }
    let tools: Vec<&Value> = socket
        .frames
        .iter()
        .filter(|f| f["kind"] == "ActionEvent")
        .map(|f| &f["tool_name"])
        .collect();
    assert_eq!(json!(tools), expected["tools"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello from mock\n");
    let (status, v) = call(
        &mut c,
        Method::GET,
        &format!("/api/conversations/{id}/agent_final_response"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["response"], "All three steps done.");
}

#[tokio::test]
async fn tool_set_up_is_checked_when_the_agent_starts() {
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "tools",
        vec![Turn::tool("finish", json!({"message": "ok"}))],
    );
    let mut c = h.client().await;
    // A name the server does not provide is refused at creation.
    let (status, body) = call(
        &mut c,
        Method::POST,
        "/api/conversations",
        Some(&h.body("tools", &["no_such_tool"])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("no_such_tool"));
    // Duplicates fail the run with a conversation error.
    let id = create(&mut c, &h.body("tools", &["glob", "glob"])).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["error"]).await;
    let evs = events_with(&mut c, &id, "ConversationErrorEvent").await;
    let err = of_kind(&evs, "ConversationErrorEvent");
    assert_eq!(err[0]["code"], "ValueError");
    assert!(err[0]["detail"]
        .as_str()
        .unwrap()
        .contains("Duplicate tool names"));
    // The regex keeps matching names (anchored at the start); built-ins stay.
    let mut body = h.body("tools", &["glob", "grep", "task_tracker"]);
    body["agent"]["filter_tools_regex"] = json!("g");
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let names: Vec<String> = agent_requests(&h).last().unwrap().body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["glob", "grep", "finish", "think"]);
}

#[tokio::test]
async fn log_lines_of_a_run_carry_the_conversation_id() {
    // journald gets the same span field as F_CONVERSATION_ID; the JSON
    // format on stderr shows it in the span list.
    let h = Harness::start(&[("OH_LOG_FORMAT", "json"), ("RUST_LOG", "debug")]).await;
    h.llm.add_script(
        "think",
        vec![
            Turn::tool("think", json!({"thought": "first"})),
            Turn::tool("finish", json!({"message": "done"})),
        ],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("think", &[])).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let logs = h.server.stderr();
    let tagged: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["conversation_id"] == id.as_str()))
        })
        .collect();
    assert!(
        !tagged.is_empty(),
        "no log line carries conversation_id {id}:\n{logs}"
    );
    assert!(tagged.iter().all(|l| l["level"].is_string()));
}
