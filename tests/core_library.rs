//! Library-level tests of the conversation core: real files in temporary
//! directories, a real webhook receiver on 127.0.0.1, no HTTP server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_server::api::conversation::{
    ConfirmationPolicy, ConversationSearchQuery, ConversationSortOrder, EventFilter,
    EventSearchQuery, EventSortOrder, ExecutionStatus, SecretSource, SecurityAnalyzer,
    SendMessageRequest, StartConversationRequest, UpdateConversationRequest,
};
use agent_server::api::event::{
    ActionEvent, Event, EventBody, MessageEvent, ObservationEvent, SecurityRisk, Source,
    StreamingDeltaEvent,
};
use agent_server::api::message::{Message, MessageToolCall};
use agent_server::config::WebhookSpec;
use agent_server::conversations::{
    Conversation, ConversationService, ReplayMode, ServiceError, ServiceOptions, RESTART_ERROR,
};
use agent_server::outbound::Outbound;
use agent_server::secrets::SecretCipher;
use agent_server::webhooks::WebhookHub;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const API_KEY: &str = "sk-planted-llm-key-0123456789";
const SECRET: &str = "planted-conversation-secret-42";

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    fn data(&self) -> PathBuf {
        self.tmp.path().join("conversations")
    }
    fn ws(&self) -> PathBuf {
        self.tmp.path().join("ws")
    }
    async fn service(&self, key: Option<&str>, hooks: &[WebhookSpec]) -> Arc<ConversationService> {
        self.service_with(key, hooks, None).await
    }
    async fn service_with(
        &self,
        key: Option<&str>,
        hooks: &[WebhookSpec],
        ttl: Option<Duration>,
    ) -> Arc<ConversationService> {
        let opts = ServiceOptions {
            conversations_path: self.data(),
            idle_ttl: ttl,
            max_concurrent_runs: 10,
            max_subscribers: 50,
            tool_names: agent_server::tools::registry::tool_names(),
        };
        let hub = WebhookHub::new(hooks, Some("session-key"), Outbound::new());
        ConversationService::start(opts, Arc::new(SecretCipher::new(key, &[])), hub)
            .await
            .unwrap()
    }
}

fn start_body(ws: &Path) -> Value {
    json!({
        "workspace": {"kind": "LocalWorkspace", "working_dir": ws},
        "agent": {"kind": "Agent", "llm": {"model": "openai/gpt-4o", "base_url": "http://127.0.0.1:9/v1", "api_key": API_KEY, "usage_id": "agent"},
                  "tools": [{"name": "terminal"}, {"name": "file_editor"}]},
        "secrets": {"MY_TOKEN": {"kind": "StaticSecret", "value": SECRET}},
        "tags": {"team": "core"}
    })
}

async fn create(svc: &ConversationService, body: Value) -> (Uuid, Value, bool) {
    let req = StartConversationRequest::from_body(&body).unwrap();
    let (info, created) = svc.create(req, false).await.unwrap();
    let v = info.to_value();
    let id = Uuid::parse_str(v["id"].as_str().unwrap()).unwrap();
    (id, v, created)
}

fn user_message(text: &str, run: bool) -> SendMessageRequest {
    SendMessageRequest::from_body(
        &json!({"role":"user","content":[{"type":"text","text":text}],"run":run}),
    )
    .unwrap()
}

fn action(id: &str, tool: &str) -> Event {
    let mut e = Event::new(EventBody::Action(ActionEvent {
        thought: vec![],
        reasoning_content: None,
        thinking_blocks: vec![],
        responses_reasoning_item: None,
        action: Some(
            json!({"command":"echo hi","is_input":false,"reset":false,"kind":"TerminalAction"}),
        ),
        tool_name: tool.into(),
        tool_call_id: format!("call_{id}"),
        tool_call: MessageToolCall {
            id: format!("call_{id}"),
            responses_item_id: None,
            name: tool.into(),
            arguments: "{}".into(),
            origin: Default::default(),
        },
        llm_response_id: "resp".into(),
        security_risk: SecurityRisk::Unknown,
        critic_result: None,
        summary: None,
    }));
    e.id = id.to_string();
    e
}

fn observation(action_id: &str) -> Event {
    Event::new(EventBody::Observation(ObservationEvent {
        tool_name: "terminal".into(),
        tool_call_id: format!("call_{action_id}"),
        observation: json!({"content":[{"cache_prompt":false,"type":"text","text":"hi"}],"is_error":false,"kind":"TerminalObservation"}),
        action_id: action_id.into(),
        extended_content: vec![],
    }))
}

fn agent_message(text: &str) -> Event {
    Event::with_source(
        Source::Agent,
        EventBody::Message(MessageEvent {
            llm_message: Message::assistant(vec![agent_server::api::message::Content::text(text)]),
            llm_response_id: Some("r1".into()),
            activated_skills: vec![],
            extended_content: vec![],
            sender: None,
            critic_result: None,
        }),
    )
}

async fn all_events(svc: &ConversationService, id: Uuid) -> Vec<Value> {
    let q = EventSearchQuery {
        limit: 100,
        ..EventSearchQuery::default()
    };
    let mut out = Vec::new();
    let mut q = q;
    for _ in 0..100 {
        let page = svc.search_events(id, &q).await.unwrap().unwrap().to_value();
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_page_id"].as_str() {
            Some(n) => q.page_id = Some(n.to_string()),
            None => break,
        }
    }
    out
}

/// Every file under `dir`, concatenated (for secret greps).
fn read_all(dir: &Path) -> String {
    let mut out = String::new();
    for entry in walk(dir) {
        if let Ok(b) = std::fs::read(&entry) {
            out.push_str(&String::from_utf8_lossy(&b));
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn create_get_search_count_and_idempotent_create() {
    let env = Env::new();
    let svc = env.service(Some("k"), &[]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = start_body(&env.ws());
        if i == 0 {
            body["conversation_id"] = json!("8889fa99-195d-48ad-8df3-a7ffe2b3801f");
        }
        let (id, info, created) = create(&svc, body).await;
        assert!(created);
        assert_eq!(info["execution_status"], "idle");
        assert_eq!(info["runtime_info"], Value::Null);
        assert_eq!(info["agent"]["llm"]["api_key"], Value::Null);
        assert_eq!(
            info["secret_registry"]["secret_sources"]["MY_TOKEN"]["value"],
            Value::Null
        );
        assert_eq!(
            info["tool_module_qualnames"],
            json!({"terminal":"openhands.tools.terminal.definition","file_editor":"openhands.tools.file_editor.definition"})
        );
        assert_eq!(
            info["persistence_dir"].as_str().unwrap(),
            env.data().join(id.simple().to_string()).to_str().unwrap()
        );
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Same id again: 200 with the stored conversation, request ignored.
    let mut again = start_body(&env.ws());
    again["conversation_id"] = json!("8889FA99195D48AD8DF3A7FFE2B3801F");
    again["tags"] = json!({"other": "x"});
    let (id0, info, created) = create(&svc, again).await;
    assert!(!created);
    assert_eq!(id0, ids[0]);
    assert_eq!(info["tags"], json!({"team":"core"}));
    assert_eq!(svc.count(None), 5);
    assert_eq!(svc.count(Some(ExecutionStatus::Idle)), 5);
    assert_eq!(svc.count(Some(ExecutionStatus::Running)), 0);

    let got = svc
        .get_info(ids[2], false)
        .await
        .unwrap()
        .unwrap()
        .to_value();
    assert_eq!(got["runtime_info"]["runtime_status"], "available");
    assert!(svc.get_info(Uuid::new_v4(), false).await.unwrap().is_none());

    // Default order: newest first; paging by hex id.
    let mut q = ConversationSearchQuery {
        limit: 2,
        ..ConversationSearchQuery::default()
    };
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = svc.search(&q).await.to_value();
        for it in page["items"].as_array().unwrap() {
            seen.push(Uuid::parse_str(it["id"].as_str().unwrap()).unwrap());
        }
        match page["next_page_id"].as_str() {
            Some(n) => {
                assert_eq!(n.len(), 32);
                q.page_id = Some(n.to_string());
            }
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    q.sort_order = ConversationSortOrder::CreatedAt;
    q.page_id = Some("unknown-page".into());
    q.limit = 100;
    let page = svc.search(&q).await.to_value();
    let oldest: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(oldest[0], ids[0].hyphenated().to_string());
    assert_eq!(page["next_page_id"], Value::Null);

    // Updating bumps updated_at: UPDATED_AT_DESC puts it first.
    svc.update(
        ids[1],
        UpdateConversationRequest {
            title: Some("Renamed".into()),
            tags: None,
        },
    )
    .await
    .unwrap();
    q.sort_order = ConversationSortOrder::UpdatedAtDesc;
    q.page_id = None;
    let page = svc.search(&q).await.to_value();
    assert_eq!(page["items"][0]["id"], ids[1].hyphenated().to_string());
    assert_eq!(page["items"][0]["title"], "Renamed");

    let batch = svc
        .batch_get(&[ids[3], Uuid::new_v4()], false)
        .await
        .to_value();
    assert_eq!(batch[0]["id"], ids[3].hyphenated().to_string());
    assert_eq!(batch[1], Value::Null);
}

#[tokio::test]
async fn bad_working_dir_and_unknown_tools_leave_nothing_behind() {
    let env = Env::new();
    let svc = env.service(None, &[]).await;
    let file = env.tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    for wd in [file.join("sub"), file.clone()] {
        let req = StartConversationRequest::from_body(&start_body(&wd)).unwrap();
        match svc.create(req, false).await {
            Err(ServiceError::BadRequest(m)) => assert!(m.contains("working_dir"), "{m}"),
            other => panic!("expected 400, got {other:?}"),
        }
    }
    let mut body = start_body(&env.ws());
    body["agent"]["tools"] = json!([{"name":"terminal"},{"name":"no_such_tool"}]);
    let req = StartConversationRequest::from_body(&body).unwrap();
    match svc.create(req, false).await {
        Err(ServiceError::Unprocessable(m)) => assert!(m.contains("'no_such_tool'"), "{m}"),
        other => panic!("expected 422, got {other:?}"),
    }
    assert_eq!(svc.count(None), 0);
    assert_eq!(walk(&env.data()).len(), 0);
    // A missing directory is created (and git-initialised when git exists).
    let nested = env.tmp.path().join("new/deeper/dir");
    create(&svc, start_body(&nested)).await;
    assert!(nested.is_dir());
}

#[tokio::test]
async fn messages_events_search_and_the_tree() {
    let env = Env::new();
    let svc = env.service(Some("k"), &[]).await;
    let (id, _, _) = create(&svc, start_body(&env.ws())).await;
    svc.send_message(id, user_message("Please say HELLO", false))
        .await
        .unwrap()
        .unwrap();
    let conv = svc.load(id).await.unwrap().unwrap();
    conv.append(action("a1", "terminal")).await.unwrap();
    conv.append(observation("a1")).await.unwrap();
    conv.append(agent_message("done with reasoning"))
        .await
        .unwrap();
    conv.set_execution_status(ExecutionStatus::Finished)
        .await
        .unwrap();
    // A new user message turns finished into idle first.
    svc.send_message(id, user_message("and again", false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.execution_status(), ExecutionStatus::Idle);

    let events = all_events(&svc, id).await;
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}{}",
                e["kind"].as_str().unwrap(),
                e.get("key")
                    .map(|k| format!("[{}]", k.as_str().unwrap()))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "MessageEvent",
            "ConversationStateUpdateEvent[last_user_message_id]",
            "ActionEvent",
            "ObservationEvent",
            "MessageEvent",
            "ConversationStateUpdateEvent[execution_status]",
            "ConversationStateUpdateEvent[execution_status]",
            "MessageEvent",
            "ConversationStateUpdateEvent[last_user_message_id]",
        ]
    );
    // Tree: the first event has no parent; state updates don't move HEAD.
    assert!(events[0].get("parent_id").is_none());
    let first = events[0]["id"].as_str().unwrap();
    assert_eq!(events[1]["parent_id"], first);
    assert_eq!(events[2]["parent_id"], first);
    assert_eq!(events[3]["parent_id"], "a1");
    assert_eq!(events[7]["parent_id"], events[4]["id"]);
    // Compact form in search results (nulls omitted).
    assert!(events[0]["llm_message"].get("tool_calls").is_none());

    let count = |f: EventFilter| {
        let svc = svc.clone();
        async move { svc.count_events(id, &f).await.unwrap().unwrap() }
    };
    assert_eq!(count(EventFilter::default()).await, 9);
    assert_eq!(
        count(EventFilter {
            kind: Some("ActionEvent".into()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(EventFilter {
            kind: Some("openhands.sdk.event.llm_convertible.message.MessageEvent".into()),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        count(EventFilter {
            source: Some("user".into()),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(EventFilter {
            source: Some("bogus".into()),
            ..Default::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(EventFilter {
            body: Some("hello".into()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(EventFilter {
            body: Some("REASONING".into()),
            ..Default::default()
        })
        .await,
        1
    );
    let mid =
        agent_server::util::time::parse_client_timestamp(events[4]["timestamp"].as_str().unwrap())
            .unwrap()
            .as_microsecond();
    assert_eq!(
        count(EventFilter {
            timestamp_gte: Some(mid),
            ..Default::default()
        })
        .await,
        5
    );
    assert_eq!(
        count(EventFilter {
            timestamp_lt: Some(mid),
            ..Default::default()
        })
        .await,
        4
    );

    // Descending pages with page_id.
    let q = EventSearchQuery {
        limit: 4,
        sort_order: EventSortOrder::TimestampDesc,
        ..Default::default()
    };
    let p1 = svc.search_events(id, &q).await.unwrap().unwrap().to_value();
    assert_eq!(p1["items"][0]["id"], events[8]["id"]);
    assert_eq!(p1["next_page_id"], events[4]["id"]);
    let q2 = EventSearchQuery {
        page_id: Some(events[4]["id"].as_str().unwrap().into()),
        ..q.clone()
    };
    let p2 = svc
        .search_events(id, &q2)
        .await
        .unwrap()
        .unwrap()
        .to_value();
    assert_eq!(p2["items"][0]["id"], events[4]["id"]);
    assert_eq!(p2["items"].as_array().unwrap().len(), 4);

    // Get one (full form, nulls included) and a batch.
    let one = svc
        .get_event(id, "a1")
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .to_value();
    assert_eq!(one["critic_result"], Value::Null);
    assert!(svc.get_event(id, "nope").await.unwrap().unwrap().is_none());
    let batch = svc
        .batch_get_events(id, &["a1".into(), "nope".into()])
        .await
        .unwrap()
        .unwrap()
        .to_value();
    assert_eq!(batch[0]["id"], "a1");
    assert_eq!(batch[1], Value::Null);
    assert!(svc
        .search_events(Uuid::new_v4(), &q)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        svc.agent_final_response(id).await.unwrap().unwrap(),
        "done with reasoning"
    );
}

#[tokio::test]
async fn secrets_are_masked_and_never_on_disk() {
    let env = Env::new();
    let svc = env.service(Some("the-key"), &[]).await;
    let (id, _, _) = create(&svc, start_body(&env.ws())).await;
    svc.send_message(
        id,
        user_message(&format!("my token is {SECRET} and key {API_KEY}"), false),
    )
    .await
    .unwrap();
    svc.update_secrets(
        id,
        vec![("LATE".into(), SecretSource::new_static("late-added-secret"))],
    )
    .await
    .unwrap();
    svc.send_message(id, user_message("late-added-secret here", false))
        .await
        .unwrap();
    let events = all_events(&svc, id).await;
    let text = serde_json::to_string(&events).unwrap();
    assert!(text.contains("my token is <secret-hidden> and key <secret-hidden>"));
    assert!(text.contains("<secret-hidden> here"));
    svc.shutdown().await;
    let disk = read_all(&env.data());
    for s in [SECRET, API_KEY, "late-added-secret"] {
        assert!(!disk.contains(s), "{s} found on disk");
    }
    assert!(disk.contains("age:"));
}

#[tokio::test]
async fn restart_keeps_everything_and_secrets_follow_the_key() {
    let env = Env::new();
    let id = {
        let svc = env.service(Some("k1"), &[]).await;
        let (id, _, _) = create(&svc, start_body(&env.ws())).await;
        svc.send_message(id, user_message("before restart", false))
            .await
            .unwrap();
        svc.set_confirmation_policy(id, ConfirmationPolicy::AlwaysConfirm)
            .await
            .unwrap();
        svc.set_security_analyzer(
            id,
            Some(SecurityAnalyzer(
                serde_json::from_value(json!({"kind":"LLMSecurityAnalyzer"})).unwrap(),
            )),
        )
        .await
        .unwrap();
        svc.update(
            id,
            UpdateConversationRequest {
                title: Some("T".into()),
                tags: Some(serde_json::from_value(json!({"a":"b"})).unwrap()),
            },
        )
        .await
        .unwrap();
        svc.shutdown().await;
        id
    };
    // Same key: everything is back, secrets usable.
    {
        let svc = env.service(Some("k1"), &[]).await;
        assert_eq!(svc.count(None), 1);
        assert!(!svc.is_loaded(&id), "start-up must not load events");
        let info = svc.get_info(id, false).await.unwrap().unwrap().to_value();
        assert_eq!(info["title"], "T");
        assert_eq!(info["tags"], json!({"a":"b"}));
        assert_eq!(info["confirmation_policy"], json!({"kind":"AlwaysConfirm"}));
        assert_eq!(
            info["security_analyzer"],
            json!({"kind":"LLMSecurityAnalyzer"})
        );
        assert_eq!(all_events(&svc, id).await.len(), 5);
        let conv = svc.load(id).await.unwrap().unwrap();
        assert_eq!(conv.agent().llm.api_key.as_deref(), Some(API_KEY));
        assert_eq!(conv.secrets()[0].1, SecretSource::new_static(SECRET));
        svc.shutdown().await;
    }
    // Other key: the conversation loads, the secrets are gone.
    {
        let svc = env.service(Some("other"), &[]).await;
        let conv = svc.load(id).await.unwrap().unwrap();
        assert_eq!(conv.agent().llm.api_key, None);
        assert_eq!(
            conv.secrets()[0].1,
            SecretSource::Static {
                description: None,
                value: None
            }
        );
        svc.shutdown().await;
    }
}

#[tokio::test]
async fn without_a_key_secrets_are_redacted_on_disk_and_lost() {
    let env = Env::new();
    let id = {
        let svc = env.service(None, &[]).await;
        let (id, _, _) = create(&svc, start_body(&env.ws())).await;
        let conv = svc.load(id).await.unwrap().unwrap();
        // In memory the value is usable until restart.
        assert_eq!(conv.agent().llm.api_key.as_deref(), Some(API_KEY));
        svc.shutdown().await;
        id
    };
    let disk = read_all(&env.data());
    assert!(!disk.contains(API_KEY) && !disk.contains(SECRET));
    assert!(disk.contains("**********"));
    let svc = env.service(None, &[]).await;
    let conv = svc.load(id).await.unwrap().unwrap();
    assert_eq!(conv.agent().llm.api_key, None);
}

#[tokio::test]
async fn torn_last_line_and_restart_recovery() {
    let env = Env::new();
    let id = {
        let svc = env.service(Some("k"), &[]).await;
        let (id, _, _) = create(&svc, start_body(&env.ws())).await;
        svc.send_message(id, user_message("go", false))
            .await
            .unwrap();
        let conv = svc.load(id).await.unwrap().unwrap();
        conv.set_execution_status(ExecutionStatus::Running)
            .await
            .unwrap();
        conv.append(action("a-done", "terminal")).await.unwrap();
        conv.append(observation("a-done")).await.unwrap();
        conv.append(action("a-open", "terminal")).await.unwrap();
        conv.sync_log().await.unwrap();
        // Simulate a crash: no shutdown, the process "dies" here.
        id
    };
    let log = env
        .data()
        .join(id.simple().to_string())
        .join("events.jsonl");
    let before = std::fs::metadata(&log).unwrap().len();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"{\"id\":\"torn\",\"timestamp\":\"2026")
            .unwrap();
    }
    let svc = env.service(Some("k"), &[]).await;
    // Recovered at start: status error, restart error for the open action.
    let info = svc.get_info(id, false).await.unwrap().unwrap().to_value();
    assert_eq!(info["execution_status"], "error");
    assert_eq!(svc.count(Some(ExecutionStatus::Error)), 1);
    let events = all_events(&svc, id).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "AgentErrorEvent");
    assert_eq!(last["error"], RESTART_ERROR);
    assert_eq!(last["parent_id"], "a-open");
    assert_eq!(last["tool_call_id"], "call_a-open");
    assert_eq!(last["classification"]["kind"], "internal");
    assert!(events.iter().all(|e| e["id"] != "torn"));
    assert!(std::fs::metadata(&log).unwrap().len() >= before);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("\"torn\""));
    assert!(text.ends_with('\n'));
}

#[tokio::test]
async fn subscribers_get_snapshot_replay_and_live_without_gaps() {
    let env = Env::new();
    let svc = env.service(Some("k"), &[]).await;
    let (id, _, _) = create(&svc, start_body(&env.ws())).await;
    for i in 0..10 {
        svc.send_message(id, user_message(&format!("m{i}"), false))
            .await
            .unwrap();
    }
    let conv = svc.load(id).await.unwrap().unwrap();
    let stored = all_events(&svc, id).await;
    assert_eq!(stored.len(), 20);

    let frame = |b: bytes::Bytes| serde_json::from_slice::<Value>(&b).unwrap();
    // resend all
    let mut all = svc.subscribe(id, ReplayMode::All).await.unwrap().unwrap();
    let first = frame(all.next().await.unwrap());
    assert_eq!(first["key"], "full_state");
    assert_eq!(first["value"]["agent"]["llm"]["api_key"], "**********");
    assert_eq!(
        first["value"]["secret_registry"]["secret_sources"]["MY_TOKEN"]["value"],
        "**********"
    );
    assert!(first.get("parent_id").is_none());
    for e in &stored {
        assert_eq!(frame(all.next().await.unwrap())["id"], e["id"]);
    }
    // since a timestamp, after an event id, none
    let ts =
        agent_server::util::time::parse_client_timestamp(stored[10]["timestamp"].as_str().unwrap())
            .unwrap()
            .as_microsecond();
    let mut since = svc
        .subscribe(id, ReplayMode::Since(ts))
        .await
        .unwrap()
        .unwrap();
    since.next().await.unwrap();
    assert_eq!(frame(since.next().await.unwrap())["id"], stored[10]["id"]);
    let mut after = svc
        .subscribe(
            id,
            ReplayMode::AfterEvent(stored[15]["id"].as_str().unwrap().into()),
        )
        .await
        .unwrap()
        .unwrap();
    after.next().await.unwrap();
    assert_eq!(frame(after.next().await.unwrap())["id"], stored[16]["id"]);
    let mut none = svc.subscribe(id, ReplayMode::None).await.unwrap().unwrap();
    none.next().await.unwrap();

    // Live: stored events, then a transient delta (not stored).
    svc.send_message(id, user_message("live", false))
        .await
        .unwrap();
    conv.publish_transient(Event::new(EventBody::StreamingDelta(StreamingDeltaEvent {
        content: Some("Hel".into()),
        reasoning_content: None,
    })))
    .await;
    for sub in [&mut all, &mut none] {
        let m = frame(sub.next().await.unwrap());
        assert_eq!(m["llm_message"]["content"][0]["text"], "live");
        assert_eq!(
            frame(sub.next().await.unwrap())["key"],
            "last_user_message_id"
        );
        assert_eq!(
            frame(sub.next().await.unwrap())["kind"],
            "StreamingDeltaEvent"
        );
    }
    assert_eq!(
        svc.count_events(id, &EventFilter::default())
            .await
            .unwrap()
            .unwrap(),
        22
    );
    assert_eq!(conv.subscriber_count(), 4);
    drop(since);
    assert_eq!(conv.subscriber_count(), 3);
}

#[tokio::test]
async fn a_slow_subscriber_never_blocks_and_never_misses() {
    let env = Env::new();
    let svc = env.service(Some("k"), &[]).await;
    let (id, _, _) = create(&svc, start_body(&env.ws())).await;
    let conv = svc.load(id).await.unwrap().unwrap();
    let mut fast = svc.subscribe(id, ReplayMode::None).await.unwrap().unwrap();
    let mut slow = svc.subscribe(id, ReplayMode::None).await.unwrap().unwrap();
    fast.next().await.unwrap();
    slow.next().await.unwrap();
    const N: usize = 3000;
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < N {
            let f = fast.next().await.unwrap();
            let v: Value = serde_json::from_slice(&f).unwrap();
            if v["kind"] == "MessageEvent" {
                ids.push(v["id"].as_str().unwrap().to_string());
            }
        }
        ids
    });
    // The writer is never held up by the slow subscriber, which reads nothing meanwhile.
    for i in 0..N {
        conv.append(agent_message(&format!("e{i}"))).await.unwrap();
    }
    let fast_ids = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap();
    let mut slow_ids = Vec::new();
    let mut snapshots_after_lag = 0;
    while slow_ids.len() < N {
        let f = tokio::time::timeout(Duration::from_secs(30), slow.next())
            .await
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&f).unwrap();
        if v["kind"] == "MessageEvent" {
            slow_ids.push(v["id"].as_str().unwrap().to_string());
        } else if v["key"] == "full_state" {
            snapshots_after_lag += 1;
        }
    }
    assert_eq!(fast_ids, slow_ids);
    assert_eq!(fast_ids.len(), N);
    if snapshots_after_lag == 0 {
        // The catch-up replay ended with the last event; the snapshot follows.
        let f = tokio::time::timeout(Duration::from_secs(5), slow.next())
            .await
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(
            v["key"], "full_state",
            "a lagging subscriber gets a fresh snapshot: {v}"
        );
    }
}

#[tokio::test]
async fn subscriber_cap_eviction_and_delete() {
    let env = Env::new();
    let svc = env
        .service_with(Some("k"), &[], Some(Duration::from_millis(300)))
        .await;
    let (id, _, _) = create(&svc, start_body(&env.ws())).await;
    let mut subs = Vec::new();
    for _ in 0..50 {
        subs.push(svc.subscribe(id, ReplayMode::None).await.unwrap().unwrap());
    }
    assert!(matches!(
        svc.subscribe(id, ReplayMode::None).await,
        Err(ServiceError::TooManySubscribers)
    ));
    // Never evicted while a subscriber is attached.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(svc.evict_idle(Duration::from_millis(300)).await, 0);
    assert!(svc.is_loaded(&id));
    subs.clear();
    // Evicted once idle for the TTL after the last subscriber let go (the
    // subscribers' tasks end a moment after they are dropped).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while svc.evict_idle(Duration::from_millis(300)).await == 0 {
        assert!(std::time::Instant::now() < deadline, "never evicted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!svc.is_loaded(&id));
    // Loads again on use.
    assert_eq!(
        svc.count_events(id, &EventFilter::default()).await.unwrap(),
        Some(0)
    );
    let mut sub = svc.subscribe(id, ReplayMode::None).await.unwrap().unwrap();
    sub.next().await.unwrap();
    assert!(svc.delete(id).await.unwrap());
    assert!(tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .is_none());
    assert!(!env.data().join(id.simple().to_string()).exists());
    assert!(!svc.delete(id).await.unwrap());
    assert_eq!(svc.count(None), 0);
    assert!(env.ws().exists(), "the workspace is kept");
}

/// A webhook receiver on 127.0.0.1 that records (path, body).
async fn receiver() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
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
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            break;
                        }
                        let body: Value = serde_json::from_slice(&buf[end + 4..end + 4 + len])
                            .unwrap_or(Value::Null);
                        buf.drain(..end + 4 + len);
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                        seen.lock().unwrap().push((path, body));
                        if sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/hook"), seen)
}

#[tokio::test]
async fn webhooks_get_the_snapshot_first_then_batches_and_conversation_posts() {
    let env = Env::new();
    let (base, seen) = receiver().await;
    let spec: WebhookSpec = serde_json::from_value(json!({"base_url": base, "event_buffer_size": 3, "flush_delay": 0.2, "num_retries": 1, "retry_delay": 0.1})).unwrap();
    let svc = env.service(Some("k"), &[spec]).await;
    let (id, _, _) = create(&svc, start_body(&env.ws())).await;
    svc.send_message(id, user_message("hook me", false))
        .await
        .unwrap();
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    svc.delete(id).await.unwrap();
    for _ in 0..100 {
        if seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, b)| b["execution_status"] == "deleting")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = seen.lock().unwrap().clone();
    let event_posts: Vec<&Value> = got
        .iter()
        .filter(|(p, _)| *p == format!("/hook/events/{}", id.simple()))
        .map(|(_, b)| b)
        .collect();
    let events: Vec<&Value> = event_posts
        .iter()
        .flat_map(|b| b.as_array().unwrap().iter())
        .collect();
    assert_eq!(events[0]["key"], "full_state");
    assert_eq!(
        events[0]["parent_id"],
        Value::Null,
        "webhook events include nulls"
    );
    assert_eq!(events[1]["kind"], "MessageEvent");
    assert_eq!(event_posts[0].as_array().unwrap().len(), 3);
    let convs: Vec<&Value> = got
        .iter()
        .filter(|(p, _)| p == "/hook/conversations")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(convs[0]["execution_status"], "idle");
    assert_eq!(convs[0]["runtime_info"], Value::Null);
    assert_eq!(convs.last().unwrap()["execution_status"], "deleting");
    let text = serde_json::to_string(&got.iter().map(|(_, b)| b).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(API_KEY) && !text.contains(SECRET));
}

/// The path of an example binary built next to this test.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

#[tokio::test]
async fn sigkill_while_appending_loses_nothing_acknowledged() {
    let bin = example("append_until_killed");
    if !bin.exists() {
        // `cargo test` builds examples; a filtered run may not have.
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", "append_until_killed"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(bin.exists(), "{}", bin.display());
    let env = Env::new();
    let mut child = tokio::process::Command::new(&bin)
        .arg(env.data())
        .arg(env.ws())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    use tokio::io::AsyncBufReadExt;
    let mut acked = Vec::new();
    let mut conv_id = None;
    // A pseudo-random stopping point from the clock.
    let stop_after = 50
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 400) as usize;
    let mut line = String::new();
    while acked.len() < stop_after {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(30), out.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "writer exited early");
        if let Some(c) = line.trim().strip_prefix("CONV ") {
            conv_id = Some(Uuid::parse_str(c).unwrap());
        } else if let Some(a) = line.trim().strip_prefix("ACK ") {
            acked.push(a.to_string());
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Acknowledgements printed before the kill are still in the pipe.
    loop {
        line.clear();
        match out.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Some(a) = line.trim().strip_prefix("ACK ") {
                    acked.push(a.to_string());
                }
            }
        }
    }
    let _ = child.wait().await;
    let id = conv_id.unwrap();
    let svc = env.service(Some("k"), &[]).await;
    let stored: std::collections::HashSet<String> = all_events(&svc, id)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for a in &acked {
        assert!(stored.contains(a), "acknowledged event {a} lost");
    }
    assert!(acked.len() >= stop_after);
}

#[test]
fn the_conversation_type_is_shareable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Conversation>();
    shareable::<ConversationService>();
}

#[tokio::test]
async fn parents_must_exist_share_the_workspace_and_list_their_children() {
    let env = Env::new();
    let svc = env.service(Some("k"), &[]).await;
    let (parent, _, _) = create(&svc, start_body(&env.ws())).await;
    let child_of = |p: &str, ws: &Path| {
        let mut b = start_body(ws);
        b["parent_conversation_id"] = json!(p);
        StartConversationRequest::from_body(&b).unwrap()
    };
    let unknown = Uuid::new_v4().hyphenated().to_string();
    let cases = [
        (
            child_of(&unknown, &env.ws()),
            format!("Parent conversation {unknown} not found"),
        ),
        (
            child_of(
                &parent.hyphenated().to_string(),
                &env.tmp.path().join("elsewhere"),
            ),
            format!("Parent conversation {parent} belongs to a different workspace"),
        ),
    ];
    for (req, want) in cases {
        match svc.create(req, false).await {
            Err(ServiceError::Unprocessable(m)) => assert_eq!(m, want),
            other => panic!("{other:?}"),
        }
    }
    let mut own = start_body(&env.ws());
    own["conversation_id"] = json!("11111111-2222-4333-8444-555555555555");
    own["parent_conversation_id"] = json!("11111111-2222-4333-8444-555555555555");
    match svc
        .create(StartConversationRequest::from_body(&own).unwrap(), false)
        .await
    {
        Err(ServiceError::Unprocessable(m)) => {
            assert_eq!(m, "A conversation cannot be its own parent")
        }
        other => panic!("{other:?}"),
    }
    let (child, info, _) = create(&svc, {
        let mut b = start_body(&env.ws());
        b["parent_conversation_id"] = json!(parent.hyphenated().to_string());
        b
    })
    .await;
    assert_eq!(
        info["parent_conversation_id"],
        parent.hyphenated().to_string()
    );
    let p = svc
        .get_info(parent, false)
        .await
        .unwrap()
        .unwrap()
        .to_value();
    assert_eq!(
        p["sub_conversation_ids"],
        json!([child.hyphenated().to_string()])
    );
    svc.delete(child).await.unwrap();
    let p = svc
        .get_info(parent, false)
        .await
        .unwrap()
        .unwrap()
        .to_value();
    assert_eq!(p["sub_conversation_ids"], json!([]));
}
