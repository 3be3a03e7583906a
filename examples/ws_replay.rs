//! Benchmark helper: opens the event socket of a conversation with
//! `resend_mode=all` and reads frames until `count` arrived (the snapshot
//! plus the replayed events), then prints the rate.
//!
//! Usage: `ws_replay <host:port> <conversation id> <session key> <count>`

use std::time::Instant;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: ws_replay <host:port> <conversation id> <session key> <count>");
        std::process::exit(2);
    }
    let (addr, id, key) = (&args[0], &args[1], &args[2]);
    let count: usize = args[3].parse().unwrap_or(0);
    let url = format!("ws://{addr}/sockets/events/{id}?resend_mode=all&session_api_key={key}");
    let Ok(request) = url.into_client_request() else {
        eprintln!("bad url");
        std::process::exit(2);
    };
    let start = Instant::now();
    let Ok(stream) = tokio::net::TcpStream::connect(addr.as_str()).await else {
        eprintln!("cannot connect to {addr}");
        std::process::exit(1);
    };
    let Ok((mut ws, _)) = tokio_tungstenite::client_async(request, stream).await else {
        eprintln!("handshake failed");
        std::process::exit(1);
    };
    let mut frames = 0usize;
    let mut bytes = 0usize;
    while frames < count {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                frames += 1;
                bytes += t.len();
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"frames\":{frames},\"bytes\":{bytes},\"seconds\":{secs:.4},\"events_per_second\":{:.0}}}",
        frames as f64 / secs
    );
}
