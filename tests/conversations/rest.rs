//! The REST routes: every route and filter, paging edges, the 404 and 422
//! forms recorded from the Python server.

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::Client;
use crate::{all_events, call, create, send, server, start_body, KEY};

/// Exchanges recorded from the Python server 1.58.2 (copied from the
/// reference transcripts).
fn transcript(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/transcripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Replays a recorded request against our server (same path, query, body).
async fn replay(client: &mut Client, step: &Value) -> (StatusCode, Value) {
    let req = &step["request"];
    let method = Method::from_bytes(req["method"].as_str().unwrap().as_bytes()).unwrap();
    let mut path = req["path"].as_str().unwrap().to_string();
    if let Some(params) = req["params"].as_object() {
        let mut q = Vec::new();
        for (k, v) in params {
            match v {
                Value::Array(items) => {
                    q.extend(items.iter().map(|i| format!("{k}={}", i.as_str().unwrap())))
                }
                Value::String(s) => q.push(format!("{k}={s}")),
                other => q.push(format!("{k}={other}")),
            }
        }
        path = format!("{path}?{}", q.join("&"));
    }
    let auth = [
        ("X-Session-API-Key", KEY),
        ("content-type", "application/json"),
    ];
    let body = match &req["body"] {
        Value::Null => bytes::Bytes::new(),
        Value::String(s) => bytes::Bytes::from(s.clone()),
        other => bytes::Bytes::from(other.to_string()),
    };
    let resp = client.request(method, &path, &auth, body).await;
    let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status, v)
}

#[tokio::test]
async fn validation_errors_match_the_python_transcript() {
    let t = transcript("validation_errors.json");
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut client = srv.client().await;
    let mut checked = 0;
    for step in t["steps"].as_array().unwrap() {
        let want = &step["response"];
        // Python answers 500 for a workspace without working_dir; we answer 422.
        if want["status"] != 422 {
            continue;
        }
        let (status, body) = replay(&mut client, step).await;
        assert_eq!(status.as_u16(), 422, "{}: {body}", step["label"]);
        assert_eq!(body, want["body"], "{}", step["label"]);
        checked += 1;
    }
    assert!(checked >= 14, "{checked}");
    // Our answer to the case Python crashes on.
    let (status, body) = call(
        &mut client,
        Method::POST,
        "/api/conversations",
        Some(&json!({"agent": {"kind": "Agent", "llm": {"model": "m"}}, "workspace": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "workspace", "working_dir"])
    );
}

#[tokio::test]
async fn unknown_ids_answer_each_routes_python_404() {
    let t = transcript("unknown_ids.json");
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut client = srv.client().await;
    let ours = [
        "/secrets",
        "/confirmation_policy",
        "/agent_final_response",
        "/events/search",
        "/events/count",
    ];
    let mut checked = 0;
    for step in t["steps"].as_array().unwrap() {
        let path = step["request"]["path"].as_str().unwrap();
        let method = step["request"]["method"].as_str().unwrap();
        let tail = path
            .split_once("/api/conversations")
            .map(|(_, t)| t)
            .unwrap_or("");
        let segments = tail.split('/').filter(|s| !s.is_empty()).count();
        let is_ours = segments == 1
            || (segments == 0 && method == "GET")
            || ours.iter().any(|o| tail.ends_with(o))
            || (tail.contains("/events/") && method == "GET")
            || (tail.ends_with("/events") && method == "POST");
        if !is_ours {
            continue;
        }
        let (status, body) = replay(&mut client, step).await;
        assert_eq!(
            status.as_u16() as u64,
            step["response"]["status"].as_u64().unwrap(),
            "{}",
            step["label"]
        );
        assert_eq!(body, step["response"]["body"], "{}", step["label"]);
        checked += 1;
    }
    assert!(checked >= 11, "{checked}");
}

#[tokio::test]
async fn create_get_and_the_info_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let srv = server(&data, Some("k"));
    let mut client = srv.client().await;
    let ws = tmp.path().join("ws");
    let mut body = start_body(&ws);
    body["conversation_id"] = json!("73deccdd-2ddb-4034-8198-aef6245191e0");
    body["agent"]["llm"]["base_url"] = json!("http://127.0.0.1:4199/v1");
    body["tool_module_qualnames"] =
        json!({"apply_patch": "openhands.tools.apply_patch.definition"});
    body["agent"]["tools"] = json!([{"name":"terminal"},{"name":"file_editor"},{"name":"task_tracker"},{"name":"glob"},{"name":"grep"},{"name":"apply_patch"}]);
    let (status, info) = call(&mut client, Method::POST, "/api/conversations", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    // Same keys, same order, same agent shape as the Python server's answer.
    {
        let t = transcript("create_response.json");
        let want = &t["body"];
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&info), keys(want));
        assert_eq!(keys(&info["agent"]), keys(&want["agent"]));
        assert_eq!(keys(&info["agent"]["llm"]), keys(&want["agent"]["llm"]));
        assert_eq!(info["agent"], want["agent"]);
        assert_eq!(info["tool_module_qualnames"], want["tool_module_qualnames"]);
        assert_eq!(info["secret_registry"], want["secret_registry"]);
    }
    assert_eq!(info["runtime_info"], Value::Null);
    assert_eq!(info["execution_status"], "idle");
    assert!(ws.is_dir());
    // Idempotent create: 200 with the stored conversation.
    let mut again = body.clone();
    again["tags"] = json!({"other": "x"});
    let (status, info2) = call(
        &mut client,
        Method::POST,
        "/api/conversations",
        Some(&again),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info2["tags"], json!({"team": "core"}));
    let (status, got) = call(
        &mut client,
        Method::GET,
        "/api/conversations/73DECCDD2DDB40348198AEF6245191E0",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        got["runtime_info"],
        json!({"runtime_status":"available","can_resume":true,"runtime_error":null})
    );
    assert_eq!(got["agent"]["llm"]["api_key"], Value::Null);

    // A relative working directory resolves against the server's directory.
    let mut rel = start_body(std::path::Path::new("relative/dir"));
    rel["conversation_id"] = Value::Null;
    let (status, info) = call(&mut client, Method::POST, "/api/conversations", Some(&rel)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(info["workspace"]["working_dir"], "relative/dir");
    assert!(srv_dir(&srv).join("relative/dir").is_dir());

    // Unusable working directories: 400, nothing left behind.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let before = std::fs::read_dir(&data).unwrap().count();
    for wd in [file.join("sub"), file.clone()] {
        let (status, body) = call(
            &mut client,
            Method::POST,
            "/api/conversations",
            Some(&start_body(&wd)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("working_dir"),
            "{body}"
        );
    }
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), before);
    // Tools the server cannot provide: 422 naming them.
    let mut bad = start_body(&ws);
    bad["agent"]["tools"] = json!([{"name": "terminal"}, {"name": "no_such_tool"}]);
    let (status, body) = call(&mut client, Method::POST, "/api/conversations", Some(&bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"].as_str().unwrap().contains("'no_such_tool'"),
        "{body}"
    );
    // Only the local runtime.
    let mut docker = start_body(&ws);
    docker["conversation_runtime"] = json!("docker");
    let (status, body) = call(
        &mut client,
        Method::POST,
        "/api/conversations",
        Some(&docker),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": "This server only runs local conversations"})
        )
    );
    // Fernet tokens with secrets_encrypted are refused naming the field.
    let mut fernet = start_body(&ws);
    fernet["secrets_encrypted"] = json!(true);
    fernet["secrets"]["MY_TOKEN"]["value"] = json!("gAAAAABfakefernettoken");
    let (status, body) = call(
        &mut client,
        Method::POST,
        "/api/conversations",
        Some(&fernet),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "secrets", "MY_TOKEN", "value"])
    );
    // Observability headers fill the body.
    let auth = [
        ("X-Session-API-Key", KEY),
        ("X-OpenHands-Observability-Metadata", "not json"),
    ];
    let resp = client
        .json(Method::POST, "/api/conversations", &auth, &start_body(&ws))
        .await;
    assert_eq!(resp.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        resp.json(),
        json!({"detail": "X-OpenHands-Observability-Metadata must be a JSON object"})
    );
}

fn srv_dir(srv: &crate::support::TestServer) -> std::path::PathBuf {
    // The server runs in its own temporary directory; find it from /proc.
    std::fs::read_link(format!("/proc/{}/cwd", srv.pid())).unwrap()
}

#[tokio::test]
async fn search_count_batch_and_paging() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut c = srv.client().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(create(&mut c, &start_body(&tmp.path().join("ws"))).await);
    }
    let hex = |id: &str| id.replace('-', "");
    let (_, n) = call(&mut c, Method::GET, "/api/conversations/count", None).await;
    assert_eq!(n, json!(5));
    let (_, n) = call(
        &mut c,
        Method::GET,
        "/api/conversations/count?status=idle",
        None,
    )
    .await;
    assert_eq!(n, json!(5));
    let (_, n) = call(
        &mut c,
        Method::GET,
        "/api/conversations/count?status=finished",
        None,
    )
    .await;
    assert_eq!(n, json!(0));
    let (status, e) = call(
        &mut c,
        Method::GET,
        "/api/conversations/count?status=bogus",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["detail"][0]["type"], "enum");

    // Newest first, 2 per page, next_page_id is the hex id of the next item.
    let (_, p1) = call(
        &mut c,
        Method::GET,
        "/api/conversations/search?limit=2",
        None,
    )
    .await;
    assert_eq!(p1["items"][0]["id"], ids[4]);
    assert_eq!(p1["items"][1]["id"], ids[3]);
    assert_eq!(p1["next_page_id"], hex(&ids[2]));
    let (_, p3) = call(
        &mut c,
        Method::GET,
        &format!("/api/conversations/search?limit=2&page_id={}", hex(&ids[0])),
        None,
    )
    .await;
    assert_eq!(p3["items"].as_array().unwrap().len(), 1);
    assert_eq!(p3["next_page_id"], Value::Null);
    let (_, all) = call(
        &mut c,
        Method::GET,
        "/api/conversations/search?sort_order=CREATED_AT&page_id=unknown",
        None,
    )
    .await;
    assert_eq!(all["items"][0]["id"], ids[0]);
    assert_eq!(all["items"][4]["id"], ids[4]);
    // Touching one moves it to the front of UPDATED_AT_DESC and the back of UPDATED_AT.
    send(&mut c, &ids[1], "bump").await;
    let (_, upd) = call(
        &mut c,
        Method::GET,
        "/api/conversations/search?sort_order=UPDATED_AT_DESC&limit=1",
        None,
    )
    .await;
    assert_eq!(upd["items"][0]["id"], ids[1]);
    let (_, upd) = call(
        &mut c,
        Method::GET,
        "/api/conversations/search?sort_order=UPDATED_AT",
        None,
    )
    .await;
    assert_eq!(upd["items"][4]["id"], ids[1]);
    let (_, none) = call(
        &mut c,
        Method::GET,
        "/api/conversations/search?status=running",
        None,
    )
    .await;
    assert_eq!(none, json!({"items": [], "next_page_id": null}));
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "sort_order=bogus",
        "status=bogus",
    ] {
        let (status, _) = call(
            &mut c,
            Method::GET,
            &format!("/api/conversations/search?{bad}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // Batch get: query, body, query wins, nulls for unknown ids.
    let unknown = "583039b3-39ee-4ffa-a884-ba1a421d29f2";
    let (_, b) = call(
        &mut c,
        Method::GET,
        &format!("/api/conversations?ids={}&ids={unknown}", ids[2]),
        None,
    )
    .await;
    assert_eq!(b[0]["id"], ids[2]);
    assert_eq!(b[1], Value::Null);
    let (_, b) = call(
        &mut c,
        Method::GET,
        "/api/conversations",
        Some(&json!([ids[3], unknown])),
    )
    .await;
    assert_eq!(b[0]["id"], ids[3]);
    assert_eq!(b[1], Value::Null);
    let (_, b) = call(
        &mut c,
        Method::GET,
        &format!("/api/conversations?ids={}", ids[0]),
        Some(&json!([ids[3]])),
    )
    .await;
    assert_eq!(b.as_array().unwrap().len(), 1);
    assert_eq!(b[0]["id"], ids[0]);
    let (status, e) = call(&mut c, Method::GET, "/api/conversations?ids=nope", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["detail"][0]["loc"], json!(["query", "ids", 0]));
    let many: Vec<String> = (0..100).map(|_| format!("ids={unknown}")).collect();
    let (status, _) = call(
        &mut c,
        Method::GET,
        &format!("/api/conversations?{}", many.join("&")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn update_delete_secrets_policy_analyzer_final_response() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let srv = server(&data, Some("k"));
    let mut c = srv.client().await;
    let ws = tmp.path().join("ws");
    let id = create(&mut c, &start_body(&ws)).await;
    let path = format!("/api/conversations/{id}");

    let (status, body) = call(
        &mut c,
        Method::PATCH,
        &path,
        Some(&json!({"title": "  Renamed  "})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, body) = call(
        &mut c,
        Method::PATCH,
        &path,
        Some(&json!({"tags": {"Bad-Key": "x"}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["input"], json!({"Bad-Key": "<redacted>"}));
    call(
        &mut c,
        Method::PATCH,
        &path,
        Some(&json!({"tags": {"team": "b", "env": "test"}})),
    )
    .await;
    let (_, info) = call(&mut c, Method::GET, &path, None).await;
    assert_eq!(info["title"], "Renamed");
    assert_eq!(info["tags"], json!({"team": "b", "env": "test"}));

    let (status, _) = call(
        &mut c,
        Method::POST,
        &format!("{path}/secrets"),
        Some(&json!({"secrets": {"NEW_SECRET": "new-value", "OBJ": {"value": "v2"}, "LOOKED_UP": {"kind": "LookupSecret", "url": "http://127.0.0.1:9/x", "headers": {"Authorization": "Bearer t", "Accept": "a"}}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (policy, want) in [
        (
            json!({"kind": "AlwaysConfirm"}),
            json!({"kind": "AlwaysConfirm"}),
        ),
        (
            json!({"kind": "ConfirmRisky", "threshold": "MEDIUM"}),
            json!({"threshold":"MEDIUM","confirm_unknown":true,"kind":"ConfirmRisky"}),
        ),
        (json!({"type": "never"}), json!({"kind": "NeverConfirm"})),
        (json!({"type": "always"}), json!({"kind": "AlwaysConfirm"})),
    ] {
        let (status, body) = call(
            &mut c,
            Method::POST,
            &format!("{path}/confirmation_policy"),
            Some(&json!({"policy": policy})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, info) = call(&mut c, Method::GET, &path, None).await;
        assert_eq!(info["confirmation_policy"], want);
    }
    let (status, body) = call(
        &mut c,
        Method::POST,
        &format!("{path}/confirmation_policy"),
        Some(&json!({"policy": {"kind": "ConfirmRisky", "threshold": "UNKNOWN"}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"][0]["msg"],
        "Value error, Threshold cannot be UNKNOWN"
    );
    call(
        &mut c,
        Method::POST,
        &format!("{path}/security_analyzer"),
        Some(&json!({"security_analyzer": {"kind": "LLMSecurityAnalyzer"}})),
    )
    .await;
    let (_, info) = call(&mut c, Method::GET, &path, None).await;
    assert_eq!(
        info["security_analyzer"],
        json!({"kind": "LLMSecurityAnalyzer"})
    );
    let (status, _) = call(
        &mut c,
        Method::POST,
        &format!("{path}/security_analyzer"),
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    call(
        &mut c,
        Method::POST,
        &format!("{path}/security_analyzer"),
        Some(&json!({"security_analyzer": null})),
    )
    .await;
    let (_, info) = call(&mut c, Method::GET, &path, None).await;
    assert_eq!(info["security_analyzer"], Value::Null);
    let sources = &info["secret_registry"]["secret_sources"];
    assert_eq!(
        sources["NEW_SECRET"],
        json!({"description": null, "value": null, "kind": "StaticSecret"})
    );
    assert_eq!(sources["LOOKED_UP"]["headers"], json!({"Accept": "a"}));

    // State updates were recorded as events.
    let keys: Vec<String> = all_events(&mut c, &id)
        .await
        .iter()
        .filter_map(|e| e["key"].as_str().map(String::from))
        .collect();
    for k in [
        "tags",
        "secret_registry",
        "confirmation_policy",
        "security_analyzer",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
    }

    let (_, r) = call(
        &mut c,
        Method::GET,
        &format!("{path}/agent_final_response"),
        None,
    )
    .await;
    assert_eq!(r, json!({"response": ""}));

    let (status, body) = call(&mut c, Method::DELETE, &path, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    assert!(!data.join(id.replace('-', "")).exists());
    assert!(ws.exists());
    let (status, _) = call(&mut c, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&mut c, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn event_routes_filters_and_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut c = srv.client().await;
    let id = create(&mut c, &start_body(&tmp.path().join("ws"))).await;
    let base = format!("/api/conversations/{id}/events");
    send(&mut c, &id, "Run the DEFAULT SCRIPT please").await;
    send(&mut c, &id, "second message").await;
    let (status, _) = call(
        &mut c,
        Method::POST,
        &base,
        Some(&json!({"role": "user", "content": []})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = call(
        &mut c,
        Method::POST,
        &base,
        Some(&json!({"role": "bogus", "content": [{"type":"text","text":"x"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["detail"][0]["type"], "literal_error");

    // The agent's system prompt comes before the first message.
    let events = all_events(&mut c, &id).await;
    assert_eq!(events.len(), 7);
    assert_eq!(events[0]["kind"], "SystemPromptEvent");
    assert!(events[0].get("parent_id").is_none());
    assert_eq!(events[1]["parent_id"], events[0]["id"]);
    assert_eq!(events[2]["parent_id"], events[1]["id"]);
    assert_eq!(events[3]["parent_id"], events[1]["id"]);
    assert_eq!(
        events[3]["llm_message"]["content"][0]["text"],
        "second message"
    );

    let count = |q: &'static str| {
        let base = base.clone();
        async move { format!("{base}/count{q}") }
    };
    let checks = [
        ("", 7),
        ("?kind=MessageEvent", 3),
        (
            "?kind=openhands.sdk.event.llm_convertible.message.MessageEvent",
            3,
        ),
        ("?kind=ConversationStateUpdateEvent", 3),
        ("?kind=SystemPromptEvent", 1),
        ("?kind=Nope", 0),
        ("?source=user", 3),
        ("?source=environment", 3),
        ("?source=bogus", 0),
        ("?body=default%20script", 1),
        ("?body=MESSAGE", 1),
    ];
    for (q, n) in checks {
        let (status, body) = call(&mut c, Method::GET, &count(q).await, None).await;
        assert_eq!((status, body), (StatusCode::OK, json!(n)), "{q}");
    }
    let mid = events[3]["timestamp"].as_str().unwrap().to_string();
    let (_, n) = call(
        &mut c,
        Method::GET,
        &format!("{base}/count?timestamp__gte={mid}"),
        None,
    )
    .await;
    assert_eq!(n, json!(4));
    let (_, n) = call(
        &mut c,
        Method::GET,
        &format!("{base}/count?timestamp__gte={mid}Z"),
        None,
    )
    .await;
    assert_eq!(n, json!(4));
    let (_, n) = call(
        &mut c,
        Method::GET,
        &format!("{base}/count?timestamp__lt={mid}"),
        None,
    )
    .await;
    assert_eq!(n, json!(3));

    // Search: filters, descending order, paging, bogus page id.
    let (_, s) = call(
        &mut c,
        Method::GET,
        &format!("{base}/search?kind=MessageEvent&limit=2"),
        None,
    )
    .await;
    assert_eq!(s["items"].as_array().unwrap().len(), 2);
    assert_eq!(s["next_page_id"], events[5]["id"]);
    let (_, s) = call(
        &mut c,
        Method::GET,
        &format!("{base}/search?sort_order=TIMESTAMP_DESC&limit=2"),
        None,
    )
    .await;
    assert_eq!(s["items"][0]["id"], events[6]["id"]);
    assert_eq!(s["next_page_id"], events[4]["id"]);
    let (_, s) = call(
        &mut c,
        Method::GET,
        &format!(
            "{base}/search?sort_order=TIMESTAMP_DESC&limit=2&page_id={}",
            events[4]["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(s["items"][0]["id"], events[4]["id"]);
    let (_, s) = call(
        &mut c,
        Method::GET,
        &format!("{base}/search?page_id=bogus-page&limit=1"),
        None,
    )
    .await;
    assert_eq!(s["items"][0]["id"], events[0]["id"]);
    for bad in [
        "limit=0",
        "limit=101",
        "sort_order=x",
        "timestamp__gte=yesterday",
    ] {
        let (status, _) = call(&mut c, Method::GET, &format!("{base}/search?{bad}"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // One event: the full form, nulls included.
    let (status, e) = call(
        &mut c,
        Method::GET,
        &format!("{base}/{}", events[0]["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(e["parent_id"], Value::Null);
    let first = events[1]["id"].as_str().unwrap();
    let (status, e) = call(&mut c, Method::GET, &format!("{base}/{first}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(e["llm_message"]["tool_calls"], Value::Null);
    assert_eq!(e["llm_message"]["name"], Value::Null);
    let (status, e) = call(
        &mut c,
        Method::GET,
        &format!("{base}/8fb8f958-94bf-4f15-a41a-5e77eda1a204"),
        None,
    )
    .await;
    assert_eq!(
        (status, e),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
    // Batch: JSON body on GET, or ?event_ids=; the query wins.
    let (_, b) = call(&mut c, Method::GET, &base, Some(&json!([first, "nope"]))).await;
    assert_eq!(b[0]["id"], first);
    assert_eq!(b[0]["sender"], Value::Null);
    assert_eq!(b[1], Value::Null);
    let second = events[2]["id"].as_str().unwrap();
    let (_, b) = call(
        &mut c,
        Method::GET,
        &format!("{base}?event_ids={second}"),
        Some(&json!([first])),
    )
    .await;
    assert_eq!(b.as_array().unwrap().len(), 1);
    assert_eq!(b[0]["id"], second);
    let (status, e) = call(&mut c, Method::GET, &base, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["detail"][0]["loc"], json!(["body"]));
}

#[tokio::test]
async fn conversation_scoped_routes_find_real_conversations() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = server(&tmp.path().join("data"), Some("k"));
    let mut c = srv.client().await;
    let ws = tmp.path().join("ws");
    let id = create(&mut c, &start_body(&ws)).await;
    std::fs::write(ws.join("hello.txt"), "hi from the workspace").unwrap();
    let resp = c
        .get_with(
            &format!("/api/conversations/{id}/workspace/hello.txt"),
            &[("X-Session-API-Key", KEY)],
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.text(), "hi from the workspace");
    let unknown = "583039b3-39ee-4ffa-a884-ba1a421d29f2";
    let resp = c
        .get_with(
            &format!("/api/conversations/{unknown}/workspace/hello.txt"),
            &[("X-Session-API-Key", KEY)],
        )
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(
        resp.json(),
        json!({"detail": format!("Conversation not found: {unknown}")})
    );
}
