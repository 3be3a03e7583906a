//! Benchmark helper: library-level timings of the conversation core on a
//! generated data directory (see `gen_conversations`): catalog start-up,
//! replay speed of a subscriber, event search and count on the largest
//! conversation. The HTTP/WebSocket figures come from `bench/run.sh`.
//!
//! Usage: `bench_library <conversations dir>`

use std::sync::Arc;
use std::time::Instant;

use agent_server::api::conversation::{EventFilter, EventSearchQuery};
use agent_server::conversations::{ConversationService, ReplayMode, ServiceOptions};
use agent_server::outbound::Outbound;
use agent_server::secrets::SecretCipher;
use agent_server::webhooks::WebhookHub;

#[tokio::main]
async fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: bench_library <conversations dir>");
        std::process::exit(2);
    };
    let opts = ServiceOptions {
        conversations_path: dir.clone().into(),
        idle_ttl: None,
        max_concurrent_runs: 10,
        max_subscribers: 50,
        tool_names: agent_server::tools::registry::tool_names(),
    };
    let t = Instant::now();
    let svc = match ConversationService::start(
        opts,
        Arc::new(SecretCipher::without_key()),
        WebhookHub::new(&[], None, Outbound::new()),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!(
        "catalog of {} conversations: {:.1} ms",
        svc.count(None),
        t.elapsed().as_secs_f64() * 1000.0
    );
    // The largest conversation by file size.
    let mut best = None;
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let len = std::fs::metadata(e.path().join("events.jsonl"))
            .map(|m| m.len())
            .unwrap_or(0);
        if best.as_ref().is_none_or(|(l, _)| len > *l) {
            best = e
                .file_name()
                .to_str()
                .and_then(|n| uuid::Uuid::parse_str(n).ok())
                .map(|id| (len, id));
        }
    }
    let Some((_, id)) = best else { return };
    let t = Instant::now();
    let n = svc
        .count_events(id, &EventFilter::default())
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    println!(
        "load of {n} events (index build): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let mut sub = match svc.subscribe(id, ReplayMode::All).await {
        Ok(Some(s)) => s,
        _ => std::process::exit(1),
    };
    let mut frames = 0usize;
    while frames < n + 1 {
        if sub.next().await.is_none() {
            break;
        }
        frames += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "replay of {frames} frames: {:.1} ms ({:.0} events/s)",
        secs * 1000.0,
        frames as f64 / secs
    );
    let q = EventSearchQuery {
        limit: 100,
        ..Default::default()
    };
    let t = Instant::now();
    for _ in 0..100 {
        let _ = svc.search_events(id, &q).await;
    }
    println!(
        "event search, page of 100: {:.2} ms",
        t.elapsed().as_secs_f64() * 10.0
    );
    let f = EventFilter {
        kind: Some("ActionEvent".into()),
        ..Default::default()
    };
    let t = Instant::now();
    for _ in 0..100 {
        let _ = svc.count_events(id, &f).await;
    }
    println!(
        "event count by kind: {:.2} ms",
        t.elapsed().as_secs_f64() * 10.0
    );
}
