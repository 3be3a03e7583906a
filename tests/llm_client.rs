//! The LLM client against the scripted fake provider, over real HTTP on 127.0.0.1.

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_server::api::llm_config::LlmConfig;
use agent_server::api::message::{Content, Message, MessageToolCall, Role, ToolCallOrigin};
use agent_server::llm::{
    CompletionRequest, CompletionResponse, LlmClient, LlmError, StreamDelta, ToolSchema,
};
use agent_server::outbound::Outbound;
use fake_llm::{FakeLlm, FakeUsage, Turn};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Api {
    Chat,
    Responses,
    Anthropic,
}

fn config(fake: &FakeLlm, model: &str) -> LlmConfig {
    LlmConfig {
        model: model.into(),
        base_url: Some(fake.base_url()),
        api_key: Some("sk-test-key".into()),
        num_retries: 0,
        retry_min_wait: 0,
        retry_max_wait: 1,
        retry_multiplier: 0.01,
        usage_id: "agent".into(),
        ..LlmConfig::default()
    }
}

fn model_for(api: Api) -> &'static str {
    match api {
        Api::Chat => "openai/gpt-4o",
        Api::Responses => "openai/gpt-5-mini",
        Api::Anthropic => "anthropic/claude-sonnet-4-5-20250929",
    }
}

fn path_for(api: Api) -> &'static str {
    match api {
        Api::Chat => "/v1/chat/completions",
        Api::Responses => "/v1/responses",
        Api::Anthropic => "/v1/messages",
    }
}

fn tools() -> Vec<ToolSchema> {
    ["terminal", "think", "finish"]
        .iter()
        .map(|name| ToolSchema {
            name: name.to_string(),
            description: format!("The {name} tool."),
            parameters: json!({"type": "object", "properties": {"x": {"type": "string"}}}),
        })
        .collect()
}

fn request(first_user: &str, stream: bool) -> CompletionRequest {
    CompletionRequest {
        messages: vec![
            Message::system(vec![
                Content::text("You are a test agent."),
                Content::text("Dynamic context."),
            ]),
            Message::user(first_user),
        ],
        tools: tools(),
        prompt_cache_key: Some("0d4dd0f1-0000-4000-8000-000000000001".into()),
        stream,
    }
}

async fn call(
    cfg: &LlmConfig,
    req: CompletionRequest,
    deltas: Option<&Arc<Mutex<Vec<StreamDelta>>>>,
) -> Result<CompletionResponse, LlmError> {
    let client = LlmClient::new(Outbound::new());
    let cancel = CancellationToken::new();
    match deltas {
        Some(sink) => {
            let sink = sink.clone();
            let cb = move |d: StreamDelta| sink.lock().unwrap().push(d);
            client.complete(cfg, req, Some(&cb), &cancel).await
        }
        None => client.complete(cfg, req, None, &cancel).await,
    }
}

fn args(tc: &MessageToolCall) -> Value {
    serde_json::from_str(&tc.arguments).unwrap()
}

/// Text replies, parallel tool calls, reasoning round trip, usage with cache
/// tokens and (when streaming) deltas in order, for one API and mode.
async fn round_trip(api: Api, stream: bool) {
    let fake = FakeLlm::start().await;
    let usage = FakeUsage {
        prompt_tokens: 1000,
        completion_tokens: 50,
        cache_read_tokens: 600,
        cache_write_tokens: 100,
        reasoning_tokens: 30,
    };
    fake.add_script(
        "matrix",
        vec![
            Turn::tools(vec![
                ("terminal", json!({"x": "ls {workdir}"})),
                ("think", json!({"x": "caf\u{e9} plan"})),
            ])
            .with_text("Let me look.")
            .with_reasoning("I should list the files first.")
            .with_usage(usage),
            Turn::text("All done, both tools ran."),
        ],
    );
    let cfg = LlmConfig {
        stream,
        ..config(&fake, model_for(api))
    };
    let deltas = Arc::new(Mutex::new(Vec::new()));
    let first = "[script:matrix] [workdir:/tmp/w s] please work";
    let resp = call(&cfg, request(first, stream), Some(&deltas))
        .await
        .unwrap();

    let m = &resp.message;
    assert_eq!(m.role, Role::Assistant);
    assert_eq!(m.text(), "Let me look.");
    let calls = m.tool_calls.clone().unwrap();
    assert_eq!(
        calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["terminal", "think"]
    );
    assert_eq!(args(&calls[0]), json!({"x": "ls /tmp/w s"}));
    assert_eq!(args(&calls[1]), json!({"x": "caf\u{e9} plan"}));
    assert_ne!(calls[0].id, calls[1].id);
    match api {
        Api::Chat => {
            assert_eq!(
                m.reasoning_content.as_deref(),
                Some("I should list the files first.")
            );
            assert_eq!(resp.finish_reason.as_deref(), Some("tool_calls"));
        }
        Api::Anthropic => {
            assert_eq!(
                m.reasoning_content.as_deref(),
                Some("I should list the files first.")
            );
            assert_eq!(m.thinking_blocks.len(), 1);
            assert_eq!(
                m.thinking_blocks[0]["thinking"],
                "I should list the files first."
            );
            assert!(m.thinking_blocks[0]["signature"]
                .as_str()
                .unwrap()
                .starts_with("sig-fake-"));
            assert_eq!(resp.finish_reason.as_deref(), Some("tool_calls"));
        }
        Api::Responses => {
            let item = m.responses_reasoning_item.clone().unwrap();
            assert_eq!(item["summary"], json!(["I should list the files first."]));
            assert!(item["encrypted_content"]
                .as_str()
                .unwrap()
                .starts_with("enc-fake-"));
            assert!(calls.iter().all(|c| c.origin == ToolCallOrigin::Responses));
            assert!(calls[0]
                .responses_item_id
                .as_deref()
                .unwrap()
                .starts_with("fc_"));
        }
    }

    let u = &resp.usage;
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.cache_read_tokens),
        (1000, 50, 600)
    );
    assert_eq!(
        u.cache_write_tokens,
        if api == Api::Responses { 0 } else { 100 }
    );
    assert_eq!(
        u.reasoning_tokens,
        if api == Api::Anthropic { 0 } else { 30 }
    );
    assert_eq!(
        u.context_window,
        match api {
            Api::Chat => 128_000,
            Api::Responses => 272_000,
            Api::Anthropic => 200_000,
        }
    );
    assert!(!resp.id.is_empty());
    assert_eq!(u.response_id, resp.id);
    assert_eq!(u.cost, 0.0);

    let got = deltas.lock().unwrap().clone();
    if stream {
        let reasoning: String = got
            .iter()
            .filter_map(|d| match d {
                StreamDelta::Reasoning(r) => Some(r.as_str()),
                StreamDelta::Content(_) => None,
            })
            .collect();
        let content: String = got
            .iter()
            .filter_map(|d| match d {
                StreamDelta::Content(c) => Some(c.as_str()),
                StreamDelta::Reasoning(_) => None,
            })
            .collect();
        assert_eq!(reasoning, "I should list the files first.");
        assert_eq!(content, "Let me look.");
        assert!(
            got.len() > 4,
            "the reply arrives in several pieces: {got:?}"
        );
        let first_text = got
            .iter()
            .position(|d| matches!(d, StreamDelta::Content(c) if !c.is_empty()))
            .unwrap();
        let last_reasoning = got
            .iter()
            .rposition(|d| matches!(d, StreamDelta::Reasoning(_)))
            .unwrap();
        assert!(last_reasoning < first_text, "deltas out of order: {got:?}");
    } else {
        assert!(got.is_empty());
    }

    // Second turn: the history with the reasoning and the tool results goes back.
    let mut req = request(first, stream);
    req.messages.push(resp.message.clone());
    for c in &calls {
        req.messages.push(Message::tool(
            &c.id,
            &c.name,
            vec![Content::text(format!("{} output", c.name))],
        ));
    }
    let resp2 = call(&cfg, req, None).await.unwrap();
    assert_eq!(resp2.message.text(), "All done, both tools ran.");
    assert!(resp2.message.tool_calls.is_none());

    let recorded = fake.requests_to(path_for(api));
    assert_eq!(recorded.len(), 2);
    assert_eq!((recorded[0].turn, recorded[1].turn), (0, 1));
    assert_eq!(recorded[0].script.as_deref(), Some("matrix"));
    let body = &recorded[1].body;
    assert_eq!(body["stream"].as_bool().unwrap_or(false), stream);
    match api {
        Api::Chat => {
            assert_eq!(body["model"], "gpt-4o");
            let msgs = body["messages"].as_array().unwrap();
            assert_eq!(msgs.len(), 5);
            assert_eq!(msgs[2]["role"], "assistant");
            assert_eq!(
                msgs[2]["content"],
                json!([{"type": "text", "text": "Let me look."}])
            );
            assert_eq!(msgs[2]["tool_calls"][1]["id"], json!(calls[1].id));
            assert_eq!(
                msgs[4],
                json!({"content": [{"type": "text", "text": "think output"}], "role": "tool", "tool_call_id": calls[1].id, "name": "think"})
            );
            if stream {
                assert_eq!(body["stream_options"], json!({"include_usage": true}));
            }
        }
        Api::Anthropic => {
            assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
            let msgs = body["messages"].as_array().unwrap();
            assert_eq!(msgs.len(), 3, "user, assistant, merged tool results");
            let blocks = msgs[1]["content"].as_array().unwrap();
            assert_eq!(blocks[0]["type"], "thinking");
            assert_eq!(blocks[0]["signature"], m.thinking_blocks[0]["signature"]);
            assert_eq!(blocks[1], json!({"type": "text", "text": "Let me look."}));
            assert_eq!(blocks[2]["type"], "tool_use");
            assert_eq!(blocks[2]["input"], json!({"x": "ls /tmp/w s"}));
            let results = msgs[2]["content"].as_array().unwrap();
            assert_eq!(results.len(), 2);
            assert_eq!(results[0]["tool_use_id"], json!(calls[0].id));
            assert_eq!(results[1]["cache_control"], json!({"type": "ephemeral"}));
            assert_eq!(
                body["thinking"],
                json!({"type": "enabled", "budget_tokens": 63999})
            );
            assert_eq!(
                body["system"][0]["cache_control"],
                json!({"type": "ephemeral"})
            );
            assert!(body["system"][1].get("cache_control").is_none());
        }
        Api::Responses => {
            assert_eq!(body["model"], "gpt-5-mini");
            assert_eq!(
                body["instructions"],
                "You are a test agent.\nDynamic context."
            );
            assert_eq!(body["store"], false);
            assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
            assert_eq!(body["reasoning"], json!({"effort": "high"}));
            assert_eq!(body["tools"][0]["strict"], false);
            let input = body["input"].as_array().unwrap();
            let kinds: Vec<&str> = input.iter().map(|i| i["type"].as_str().unwrap()).collect();
            assert_eq!(
                kinds,
                [
                    "message",
                    "reasoning",
                    "message",
                    "function_call",
                    "function_call",
                    "function_call_output",
                    "function_call_output"
                ]
            );
            assert_eq!(
                input[1]["encrypted_content"],
                m.responses_reasoning_item.as_ref().unwrap()["encrypted_content"]
            );
            assert_eq!(input[3]["call_id"], json!(calls[0].id));
            assert_eq!(
                input[6],
                json!({"type": "function_call_output", "call_id": calls[1].id, "output": "think output"})
            );
        }
    }
}

#[tokio::test]
async fn chat_json_round_trip() {
    round_trip(Api::Chat, false).await;
}

#[tokio::test]
async fn chat_sse_round_trip() {
    round_trip(Api::Chat, true).await;
}

#[tokio::test]
async fn responses_json_round_trip() {
    round_trip(Api::Responses, false).await;
}

#[tokio::test]
async fn responses_sse_round_trip() {
    round_trip(Api::Responses, true).await;
}

#[tokio::test]
async fn anthropic_json_round_trip() {
    round_trip(Api::Anthropic, false).await;
}

#[tokio::test]
async fn anthropic_sse_round_trip() {
    round_trip(Api::Anthropic, true).await;
}

#[tokio::test]
async fn malformed_arguments_and_empty_replies_pass_through() {
    for api in [Api::Chat, Api::Responses, Api::Anthropic] {
        for stream in [false, true] {
            let fake = FakeLlm::start().await;
            fake.add_script(
                "bad",
                vec![Turn::raw_tool("terminal", "{\"x\": oops"), Turn::empty()],
            );
            let cfg = LlmConfig {
                stream,
                ..config(&fake, model_for(api))
            };
            let resp = call(&cfg, request("[script:bad] go", stream), None)
                .await
                .unwrap();
            let calls = resp.message.tool_calls.clone().unwrap();
            assert_eq!(
                calls[0].arguments, "{\"x\": oops",
                "{api:?} stream={stream}"
            );
            let mut req = request("[script:bad] go", stream);
            req.messages.push(resp.message);
            req.messages.push(Message::tool(
                &calls[0].id,
                "terminal",
                vec![Content::text("bad arguments")],
            ));
            let empty = call(&cfg, req, None).await.unwrap();
            assert!(empty.message.content.is_empty(), "{api:?} stream={stream}");
            assert!(empty.message.tool_calls.is_none());
        }
    }
}

#[tokio::test]
async fn retries_429_with_retry_after_and_500_then_succeeds() {
    for api in [Api::Chat, Api::Anthropic] {
        let fake = FakeLlm::start().await;
        fake.add_script(
            "flaky",
            vec![Turn::text("after rate limit")
                .failing(
                    429,
                    r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#,
                    2,
                )
                .with_retry_after("0")],
        );
        fake.add_script(
            "down",
            vec![Turn::text("after outage").failing(500, "upstream exploded", 1)],
        );
        let cfg = LlmConfig {
            num_retries: 3,
            ..config(&fake, model_for(api))
        };
        let resp = call(&cfg, request("[script:flaky] a", false), None)
            .await
            .unwrap();
        assert_eq!(resp.message.text(), "after rate limit");
        assert_eq!(fake.requests().len(), 3, "two failures then success");
        let resp = call(&cfg, request("[script:down] b", false), None)
            .await
            .unwrap();
        assert_eq!(resp.message.text(), "after outage");
        assert_eq!(fake.requests().len(), 5);
    }
}

#[tokio::test]
async fn retries_stop_after_num_retries() {
    let fake = FakeLlm::start().await;
    fake.add_script(
        "limited",
        vec![Turn::error(
            429,
            r#"{"error":{"message":"Rate limit reached"}}"#,
        )],
    );
    let cfg = LlmConfig {
        num_retries: 2,
        ..config(&fake, "openai/gpt-4o")
    };
    let err = call(&cfg, request("[script:limited] x", false), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "LLMRateLimitError");
    assert_eq!(err.status, Some(429));
    assert!(
        err.detail().contains("Rate limit reached"),
        "{}",
        err.detail()
    );
    assert_eq!(fake.requests().len(), 3, "one attempt plus two retries");
}

#[tokio::test]
async fn unauthorized_is_not_retried() {
    for api in [Api::Chat, Api::Responses, Api::Anthropic] {
        let fake = FakeLlm::start().await;
        fake.add_script(
            "auth",
            vec![Turn::error(401, r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#)],
        );
        let cfg = LlmConfig {
            num_retries: 5,
            ..config(&fake, model_for(api))
        };
        let err = call(&cfg, request("[script:auth] hi", false), None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "LLMAuthenticationError", "{api:?}");
        assert!(err.detail().contains("401"));
        assert_eq!(fake.requests().len(), 1, "{api:?}: exactly one request");
    }
}

#[tokio::test]
async fn context_window_errors_are_recognised() {
    let fake = FakeLlm::start().await;
    fake.add_script(
        "openai",
        vec![Turn::error(400, r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","code":"context_length_exceeded"}}"#)],
    );
    fake.add_script(
        "anthropic",
        vec![Turn::error(400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#)],
    );
    for (script, model) in [
        ("openai", "openai/gpt-4o"),
        ("anthropic", "anthropic/claude-sonnet-4-5"),
    ] {
        let cfg = LlmConfig {
            num_retries: 3,
            ..config(&fake, model)
        };
        let err = call(&cfg, request(&format!("[script:{script}] x"), false), None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "LLMContextWindowExceedError", "{script}");
    }
    assert_eq!(fake.requests().len(), 2, "not retried");
}

#[tokio::test]
async fn whole_request_timeout() {
    let fake = FakeLlm::start().await;
    fake.add_script(
        "slow",
        vec![Turn::text("late").with_delay(Duration::from_secs(5))],
    );
    let cfg = LlmConfig {
        timeout: Some(1),
        ..config(&fake, "openai/gpt-4o")
    };
    let err = call(&cfg, request("[script:slow] x", false), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "LLMTimeoutError");
    assert_eq!(err.detail(), "LLM hard timeout after 1 seconds");
}

#[tokio::test]
async fn stream_idle_timeout_between_chunks() {
    let fake = FakeLlm::start().await;
    fake.add_script(
        "trickle",
        vec![Turn::text("one two three").with_chunk_delay(Duration::from_secs(2))],
    );
    let cfg = LlmConfig {
        stream: true,
        stream_idle_timeout: Some(0.3),
        ..config(&fake, "anthropic/claude-sonnet-4-5")
    };
    let err = call(&cfg, request("[script:trickle] x", true), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "LLMTimeoutError");
    assert!(
        err.detail().contains("stream idle timeout"),
        "{}",
        err.detail()
    );
}

#[tokio::test]
async fn cancel_aborts_a_slow_reply_and_a_backoff() {
    let fake = FakeLlm::start().await;
    fake.add_script(
        "slow",
        vec![Turn::text("late").with_delay(Duration::from_secs(30))],
    );
    fake.add_script("backoff", vec![Turn::error(503, "busy")]);
    let client = LlmClient::new(Outbound::new());
    for (script, retries) in [("slow", 0), ("backoff", 5)] {
        fake.clear();
        let cfg = LlmConfig {
            num_retries: retries,
            retry_min_wait: 30,
            retry_max_wait: 60,
            ..config(&fake, "openai/gpt-4o")
        };
        let cancel = CancellationToken::new();
        let task = {
            let (client, cfg, cancel) = (client.clone(), cfg.clone(), cancel.clone());
            let req = request(&format!("[script:{script}] x"), false);
            tokio::spawn(async move { client.complete(&cfg, req, None, &cancel).await })
        };
        fake.wait_for_requests(1, WAIT).await.unwrap();
        cancel.cancel();
        let result = tokio::time::timeout(WAIT, task)
            .await
            .expect("cancel is prompt")
            .unwrap();
        assert!(result.unwrap_err().is_cancelled(), "{script}");
        assert_eq!(fake.requests().len(), 1, "{script}: no further attempt");
    }
}

#[tokio::test]
async fn cost_from_configured_prices() {
    let fake = FakeLlm::start().await;
    let cfg = LlmConfig {
        input_cost_per_token: Some(0.001),
        output_cost_per_token: Some(0.01),
        ..config(&fake, "openai/gpt-4o")
    };
    let resp = call(&cfg, request("no script", false), None).await.unwrap();
    assert_eq!(resp.message.text(), fake_llm::DEFAULT_REPLY);
    assert!((resp.usage.cost - (100.0 * 0.001 + 20.0 * 0.01)).abs() < 1e-12);
}

#[tokio::test]
async fn configuration_errors_make_no_request() {
    let fake = FakeLlm::start().await;
    let bedrock = LlmConfig {
        base_url: None,
        ..config(&fake, "bedrock/anthropic.claude-3")
    };
    let err = call(&bedrock, request("x", false), None).await.unwrap_err();
    assert_eq!(err.code(), "LLMBadRequestError");
    assert!(err.detail().contains("bedrock"));
    let strict = LlmConfig {
        drop_params: false,
        top_k: Some(5.0),
        ..config(&fake, "openai/gpt-4o")
    };
    let err = call(&strict, request("x", false), None).await.unwrap_err();
    assert_eq!(err.code(), "LLMBadRequestError");
    assert!(err.detail().contains("top_k"));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn sampling_params_seed_and_extra_body() {
    let fake = FakeLlm::start().await;
    let mut extra = serde_json::Map::new();
    extra.insert("metadata".into(), json!({"team": "x"}));
    let mut headers = serde_json::Map::new();
    headers.insert("X-Custom".into(), json!("yes"));
    headers.insert("User-Agent".into(), json!("my-gateway-client/1"));
    let cfg = LlmConfig {
        temperature: Some(0.2),
        top_p: Some(0.9),
        top_k: Some(40.0),
        seed: Some(7),
        litellm_extra_body: extra,
        extra_headers: Some(headers),
        ..config(&fake, "openai/gpt-4o")
    };
    call(&cfg, request("x", false), None).await.unwrap();
    let r = &fake.requests()[0];
    assert_eq!(r.body["temperature"], json!(0.2));
    assert_eq!(r.body["top_p"], json!(0.9));
    assert!(
        r.body.get("top_k").is_none(),
        "OpenAI has no top_k: dropped"
    );
    assert_eq!(r.body["seed"], 7);
    assert_eq!(r.body["metadata"], json!({"team": "x"}));
    assert_eq!(r.header("x-custom"), Some("yes"));
    let agents: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "user-agent")
        .collect();
    assert_eq!(
        agents.len(),
        1,
        "extra_headers replace defaults: {agents:?}"
    );
    assert_eq!(r.header("user-agent"), Some("my-gateway-client/1"));

    let reasoning = LlmConfig {
        temperature: Some(0.2),
        ..config(&fake, "openai/o3")
    };
    call(&reasoning, request("y", false), None).await.unwrap();
    let r = &fake.requests()[1];
    assert!(
        r.body.get("temperature").is_none(),
        "reasoning models take no temperature"
    );
    assert_eq!(r.body["reasoning_effort"], "high");
}

#[tokio::test]
async fn canned_replies_for_titles_summaries_and_questions() {
    let fake = FakeLlm::start().await;
    let cfg = config(&fake, "openai/gpt-4o");
    let mut title = request("Generate a title (maximum 50 characters) for this", false);
    title.tools.clear();
    assert_eq!(
        call(&cfg, title, None).await.unwrap().message.text(),
        fake_llm::TITLE_REPLY
    );
    let mut summary = request("Summarise the forgotten events", false);
    summary.tools.clear();
    assert_eq!(
        call(&cfg, summary, None).await.unwrap().message.text(),
        fake_llm::SUMMARY_REPLY
    );
    let mut question = request("[script:none] start", false);
    question
        .messages
        .push(Message::user("<QUESTION>\nWhat did you do?\n</QUESTION>"));
    assert_eq!(
        call(&cfg, question, None).await.unwrap().message.text(),
        fake_llm::ANSWER_REPLY
    );
}

// ---- request shape against the captured Python requests ----

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/python_llm_requests.json")).unwrap()
}

/// Rebuilds SDK messages from a captured Chat Completions `messages` list.
fn messages_from_chat(wire: &Value) -> Vec<Message> {
    wire.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let content: Vec<Content> = m["content"]
                .as_array()
                .map(|parts| {
                    parts
                        .iter()
                        .map(|p| Content::text(p["text"].as_str().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            let mut msg = match m["role"].as_str().unwrap() {
                "system" => Message::system(content),
                "user" => Message {
                    content,
                    ..Message::user("")
                },
                "assistant" => Message::assistant(content),
                "tool" => Message::tool(
                    m["tool_call_id"].as_str().unwrap(),
                    m["name"].as_str().unwrap(),
                    content,
                ),
                other => panic!("role {other}"),
            };
            if let Some(calls) = m["tool_calls"].as_array() {
                msg.tool_calls = Some(
                    calls
                        .iter()
                        .map(|c| MessageToolCall {
                            id: c["id"].as_str().unwrap().into(),
                            responses_item_id: None,
                            name: c["function"]["name"].as_str().unwrap().into(),
                            arguments: c["function"]["arguments"].as_str().unwrap().into(),
                            origin: ToolCallOrigin::Completion,
                        })
                        .collect(),
                );
            }
            msg
        })
        .collect()
}

fn chat_tools(wire: &Value) -> Vec<ToolSchema> {
    wire.as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| ToolSchema {
                    name: t["function"]["name"].as_str().unwrap().into(),
                    description: t["function"]["description"].as_str().unwrap().into(),
                    parameters: t["function"]["parameters"].clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The first path where two JSON values differ, with both sides (shortened).
fn first_difference(got: &Value, want: &Value, path: &str) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for k in g.keys().chain(w.keys()) {
                let sub = format!("{path}.{k}");
                match (g.get(k), w.get(k)) {
                    (Some(a), Some(b)) => {
                        if let Some(d) = first_difference(a, b, &sub) {
                            return Some(d);
                        }
                    }
                    (a, b) => return Some(format!("{sub}: got {a:?}, want {b:?}")),
                }
            }
            None
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(a, b, &format!("{path}[{i}]"))),
        _ if got == want => None,
        _ => {
            let short = |v: &Value| v.to_string().chars().take(300).collect::<String>();
            Some(format!("{path}: got {}, want {}", short(got), short(want)))
        }
    }
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn chat_requests_match_the_python_server() {
    let fx = fixture();
    for sample in [
        "chat_turn_2_history",
        "streaming_request",
        "title_generation_no_tools",
    ] {
        let expected = &fx[sample]["body"];
        let fake = FakeLlm::start().await;
        let cfg = LlmConfig {
            api_key: Some("sk-mock".into()),
            stream: expected.get("stream").is_some(),
            ..config(&fake, "openai/gpt-4o")
        };
        let req = CompletionRequest {
            messages: messages_from_chat(&expected["messages"]),
            tools: chat_tools(&expected["tools"]),
            prompt_cache_key: expected["prompt_cache_key"].as_str().map(str::to_string),
            stream: cfg.stream,
        };
        call(&cfg, req, None).await.unwrap();
        let got = fake.requests_to("/v1/chat/completions").remove(0);
        assert_eq!(first_difference(&got.body, expected, sample), None);
        assert_eq!(keys(&got.body), keys(expected), "{sample}: key order");
        for (i, (g, e)) in got.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .zip(expected["messages"].as_array().unwrap())
            .enumerate()
        {
            assert_eq!(keys(g), keys(e), "{sample}: message {i} key order");
        }
        assert_eq!(got.header("authorization"), Some("Bearer sk-mock"));
        assert_eq!(got.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn anthropic_request_matches_the_python_server() {
    let fx = fixture();
    let expected = &fx["anthropic_messages"]["body"];
    let fake = FakeLlm::start().await;
    let cfg = LlmConfig {
        base_url: Some(fake.root_url()),
        api_key: Some("sk-mock-123".into()),
        ..config(&fake, "anthropic/claude-sonnet-4-5-20250929")
    };
    let system = expected["system"][0]["text"].as_str().unwrap();
    let user = expected["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    let tools = expected["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| ToolSchema {
            name: t["name"].as_str().unwrap().into(),
            description: t["description"].as_str().unwrap().into(),
            parameters: t["input_schema"].clone(),
        })
        .collect();
    let req = CompletionRequest {
        messages: vec![
            Message::system(vec![Content::text(system)]),
            Message::user(user),
        ],
        tools,
        prompt_cache_key: Some("e8192693-deec-48fe-aab0-01b077b7a9c3".into()),
        stream: false,
    };
    let resp = call(&cfg, req, None).await.unwrap();
    assert_eq!(resp.message.text(), fake_llm::DEFAULT_REPLY);
    let got = fake.requests_to("/v1/messages").remove(0);
    assert_eq!(first_difference(&got.body, expected, "anthropic"), None);
    assert_eq!(keys(&got.body), keys(expected), "key order");
    assert_eq!(keys(&got.body["tools"][0]), keys(&expected["tools"][0]));
    assert_eq!(got.header("x-api-key"), Some("sk-mock-123"));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("authorization"), None);
}
