//! Benchmark helper: writes `count` stored conversations of `events` events
//! each (about 700 bytes per event, a realistic mix) straight into a
//! conversations directory, as the server would have left them.
//!
//! Usage: `gen_conversations <conversations dir> <workspace dir> <count> <events> [secret key]`

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use agent_server::api::conversation::StartConversationRequest;
use agent_server::api::event::{
    ActionEvent, ConversationStateUpdateEvent, Event, EventBody, MessageEvent, ObservationEvent,
    SecurityRisk, Source,
};
use agent_server::api::message::{Content, Message, MessageToolCall};
use agent_server::conversations::ConversationState;
use agent_server::secrets::SecretCipher;
use agent_server::util::{ids, time};
use serde_json::json;

fn event(i: usize, parent: &Option<String>) -> Event {
    let body = match i % 4 {
        0 => EventBody::Message(MessageEvent {
            llm_message: Message::user(format!(
                "Please run step {i} of the plan and report what you find in the logs."
            )),
            llm_response_id: None,
            activated_skills: vec![],
            extended_content: vec![],
            sender: None,
            critic_result: None,
        }),
        1 => EventBody::Action(ActionEvent {
            thought: vec![Content::text("Let me look at the directory first.")],
            reasoning_content: None,
            thinking_blocks: vec![],
            responses_reasoning_item: None,
            action: Some(
                json!({"command": format!("ls -la /tmp/work/step{i}"), "is_input": false, "reset": false, "kind": "TerminalAction"}),
            ),
            tool_name: "terminal".into(),
            tool_call_id: format!("call_{i}"),
            tool_call: MessageToolCall {
                id: format!("call_{i}"),
                responses_item_id: None,
                name: "terminal".into(),
                arguments: format!("{{\"command\": \"ls -la /tmp/work/step{i}\"}}"),
                origin: Default::default(),
            },
            llm_response_id: format!("chatcmpl-{i}"),
            security_risk: SecurityRisk::Unknown,
            critic_result: None,
            summary: Some(format!("list step {i}")),
        }),
        2 => EventBody::Observation(ObservationEvent {
            tool_name: "terminal".into(),
            tool_call_id: format!("call_{}", i - 1),
            observation: json!({"content":[{"cache_prompt":false,"type":"text","text":"total 8\ndrwxr-xr-x 2 root root 4096 .\ndrwxr-xr-x 9 root root 4096 .."}],
                "is_error":false,"command":"ls","exit_code":0,"timeout":false,"kind":"TerminalObservation"}),
            action_id: format!("a{}", i - 1),
            extended_content: vec![],
        }),
        _ => EventBody::StateUpdate(ConversationStateUpdateEvent {
            key: "execution_status".into(),
            value: json!("running"),
        }),
    };
    let source = match &body {
        EventBody::Message(_) => Source::User,
        other => other.default_source(),
    };
    let mut e = Event::with_source(source, body);
    e.parent_id = parent.clone();
    e
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: gen_conversations <conversations dir> <workspace dir> <count> <events> [secret key]");
        std::process::exit(2);
    }
    let root = PathBuf::from(&args[0]);
    let ws = &args[1];
    let count: usize = args[2].parse().unwrap_or(0);
    let per: usize = args[3].parse().unwrap_or(0);
    let cipher = SecretCipher::new(args.get(4).map(String::as_str), &[]);
    std::fs::create_dir_all(ws)?;
    let body = json!({"workspace": {"working_dir": ws},
        "agent": {"llm": {"model": "openai/gpt-4o", "api_key": "sk-bench", "usage_id": "agent"},
                  "tools": [{"name":"terminal"},{"name":"file_editor"},{"name":"task_tracker"}]},
        "tags": {"bench": "yes"}});
    let req = StartConversationRequest::from_body(&body)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let sealed = cipher.seal("sk-bench");
    for _ in 0..count {
        let id = ids::new_uuid();
        let dir = root.join(ids::hex(&id));
        std::fs::create_dir_all(&dir)?;
        let mut state = ConversationState::from_request(id, &req, serde_json::Map::new());
        let mut w = BufWriter::new(std::fs::File::create(dir.join("events.jsonl"))?);
        let mut head: Option<String> = None;
        for i in 0..per {
            let mut e = event(i, &head);
            if matches!(e.body, EventBody::Action(_)) {
                e.id = format!("a{i}-{}", ids::new_event_id());
            }
            if !matches!(e.body, EventBody::StateUpdate(_)) {
                head = Some(e.id.clone());
            }
            serde_json::to_writer(&mut w, &e.to_json())?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        state.leaf_event_id = head;
        state.updated_at = time::utc_timestamp(time::now());
        let doc = state.to_doc(&mut |_| sealed.clone());
        agent_server::store::write_metadata(&dir, &doc)?;
    }
    Ok(())
}
