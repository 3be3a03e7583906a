//! Test helper: creates a conversation and appends events through the real
//! event pipeline until killed, printing `ACK <event id>` after each append
//! returns. The SIGKILL test kills it at a random moment and checks that
//! every acknowledged event is in the log.
//!
//! Usage: `append_until_killed <conversations dir> <workspace dir>`

use std::io::Write;
use std::sync::Arc;

use agent_server::api::conversation::StartConversationRequest;
use agent_server::api::event::{Event, EventBody, MessageEvent, Source};
use agent_server::api::message::{Content, Message};
use agent_server::conversations::{ConversationService, ServiceOptions};
use agent_server::outbound::Outbound;
use agent_server::secrets::SecretCipher;
use agent_server::webhooks::WebhookHub;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(data), Some(ws)) = (args.next(), args.next()) else {
        eprintln!("usage: append_until_killed <conversations dir> <workspace dir>");
        std::process::exit(2);
    };
    let opts = ServiceOptions {
        conversations_path: data.into(),
        idle_ttl: None,
        max_concurrent_runs: 10,
        max_subscribers: 50,
        tool_names: agent_server::tools::registry::tool_names(),
    };
    let hub = WebhookHub::new(&[], None, Outbound::new());
    let svc =
        match ConversationService::start(opts, Arc::new(SecretCipher::new(Some("k"), &[])), hub)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("start failed: {e}");
                std::process::exit(1);
            }
        };
    let body =
        serde_json::json!({"workspace": {"working_dir": ws}, "agent": {"llm": {"model": "m"}}});
    let Ok(req) = StartConversationRequest::from_body(&body) else {
        std::process::exit(1);
    };
    let Ok((info, _)) = svc.create(req, false).await else {
        std::process::exit(1);
    };
    let info = info.to_value();
    let id_text = info["id"].as_str().unwrap_or_default().to_string();
    let Ok(id) = uuid::Uuid::parse_str(&id_text) else {
        std::process::exit(1);
    };
    let Ok(Some(conv)) = svc.load(id).await else {
        std::process::exit(1);
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "CONV {id_text}");
    let _ = out.flush();
    drop(out);
    for i in 0u64.. {
        let e = Event::with_source(
            Source::Agent,
            EventBody::Message(MessageEvent {
                llm_message: Message::assistant(vec![Content::text(format!(
                    "event {i} {}",
                    "x".repeat(300)
                ))]),
                llm_response_id: None,
                activated_skills: vec![],
                extended_content: vec![],
                sender: None,
                critic_result: None,
            }),
        );
        match conv.append(e).await {
            Ok(a) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "ACK {}", a.id);
                let _ = out.flush();
            }
            Err(err) => {
                eprintln!("append failed: {err}");
                std::process::exit(1);
            }
        }
    }
}
