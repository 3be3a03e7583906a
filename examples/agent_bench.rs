//! Agent-loop benchmark (not a test): the server binary against an instant
//! in-process fake LLM.
//!
//! 1. POST to `finished` for a 4-step conversation (terminal, file_editor,
//!    task_tracker, finish): from the create request (initial message with
//!    `run: true`) to the `full_state` frame that says `finished`.
//! 2. Per-step time of a 200-step run (`think` ×200, then `finish`) at the
//!    first and the last steps, two ways: the server's own time per step
//!    (its `agent step` debug log: the step's wall time minus the wait for
//!    the provider), and the gap between consecutive LLM requests as the fake
//!    receives them, minus the fake's parsing of the request (this one also
//!    contains the fake's own work and the HTTP exchange).
//!
//! The server runs with `HOME` set to an empty directory unless `--home`
//! names one (`--home "$HOME"`: the machine's `~/.bashrc`, which can take
//! longer than everything else: `pyenv init` alone takes 140 ms here).
//! `--pool N` sets the server's `terminal_pool_size` (default: the server's
//! default); `--gap-ms` pauses between conversations (default 500 ms), as
//! conversations are not created back to back, so the pool has refilled.
//!
//! ```text
//! cargo build --release --bin agent-server --example agent_bench
//! target/release/examples/agent_bench --server target/release/agent-server \
//!     [--runs 10] [--steps 200] [--home DIR] [--pool N] [--gap-ms 500]
//! ```

#[path = "../tests/support/fake_llm.rs"]
pub mod fake_llm;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_llm::{FakeLlm, Turn};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "bench-key";

struct Args {
    server: String,
    runs: usize,
    steps: usize,
    home: Option<String>,
    pool: Option<usize>,
    gap_ms: u64,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut args = Args {
        server: "target/release/agent-server".into(),
        runs: 10,
        steps: 200,
        home: None,
        pool: None,
        gap_ms: 500,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("server") => {
                args.server = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .to_string_lossy()
                    .into()
            }
            Long("runs") => {
                args.runs = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e: lexopt::Error| e.to_string())?
            }
            Long("steps") => {
                args.steps = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e: lexopt::Error| e.to_string())?
            }
            Long("home") => {
                args.home = Some(
                    p.value()
                        .map_err(|e| e.to_string())?
                        .to_string_lossy()
                        .into(),
                )
            }
            Long("pool") => {
                args.pool = Some(
                    p.value()
                        .map_err(|e| e.to_string())?
                        .parse()
                        .map_err(|e: lexopt::Error| e.to_string())?,
                )
            }
            Long("gap-ms") => {
                args.gap_ms = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e: lexopt::Error| e.to_string())?
            }
            other => {
                return Err(format!(
                    "{}\nusage: agent_bench [--server PATH] [--runs N] [--steps N] [--home DIR] [--pool N] [--gap-ms MS]",
                    other.unexpected()
                ))
            }
        }
    }
    Ok(args)
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    /// Its stderr lines.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(
    binary: &str,
    data: &std::path::Path,
    home: &std::path::Path,
    pool: Option<usize>,
) -> Result<Server, String> {
    let mut command = Command::new(binary);
    command.env_clear();
    if let Some(size) = pool {
        command.env("OH_TERMINAL_POOL_SIZE", size.to_string());
    }
    let mut child = command
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OH_SESSION_API_KEYS_0", KEY)
        .env("OH_CONVERSATIONS_PATH", data)
        .env("OH_ENABLE_BROWSER", "false")
        .env("HOME", home)
        .env("RUST_LOG", "warn,agent_server::agent=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    if let Some(stderr) = child.stderr.take() {
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
    }
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(a) = line.strip_prefix("agent-server listening on http://") {
                    break a.to_string();
                }
            }
            _ => {
                let _ = child.kill();
                return Err("the server did not start".into());
            }
        }
    };
    Ok(Server { child, addr, log })
}

async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("content-type", "application/json")
        .header("x-session-api-key", KEY)
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

fn start_body(
    fake: &FakeLlm,
    work: &std::path::Path,
    script: &str,
    tools: &[&str],
    max_iterations: usize,
) -> Value {
    json!({
        "workspace": {"kind": "LocalWorkspace", "working_dir": work},
        "agent": {"kind": "Agent",
                  "llm": {"model": "openai/gpt-4o", "base_url": fake.base_url(), "api_key": "sk-bench",
                          "usage_id": "agent", "num_retries": 0},
                  "tools": tools.iter().map(|t| json!({"name": t})).collect::<Vec<_>>()},
        "initial_message": {"role": "user", "content": [{"type": "text",
                             "text": format!("Go [script:{script}] [workdir:{}]", work.display())}],
                            "run": true},
        "autotitle": false,
        "max_iterations": max_iterations
    })
}

/// Waits on the event socket for a `full_state` frame saying `finished`.
async fn wait_finished(addr: &str, id: &str) -> Result<(), String> {
    let url = format!("ws://{addr}/sockets/events/{id}?session_api_key={KEY}");
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
                if v["key"] == "full_state" {
                    match v["value"]["execution_status"].as_str() {
                        Some("finished") => return Ok(()),
                        Some("error") | Some("stuck") => {
                            return Err(format!(
                                "the run ended in {}",
                                v["value"]["execution_status"]
                            ))
                        }
                        _ => {}
                    }
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => return Err("the socket ended before the run finished".into()),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn bench(args: Args) -> Result<(), String> {
    let fake = FakeLlm::start().await;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = match &args.home {
        Some(home) => std::path::PathBuf::from(home),
        None => tmp.path().join("home"),
    };
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let server = start_server(&args.server, &tmp.path().join("data"), &home, args.pool)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "HOME {}, terminal pool {}, {} ms between conversations, load average {}",
        home.display(),
        args.pool.map_or("default".to_string(), |n| n.to_string()),
        args.gap_ms,
        load.split_whitespace().next().unwrap_or("?")
    );

    // 1. Four steps, POST to finished.
    let mut times = Vec::new();
    for run in 0..=args.runs {
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
        let work = tmp.path().join(format!("work{run}"));
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        fake.add_script(
            "four",
            vec![
                Turn::tool("terminal", json!({"command": "echo hi"})),
                Turn::tool("file_editor", json!({"command": "create", "path": "{workdir}/hello.txt", "file_text": "hello\n"})),
                Turn::tool("task_tracker", json!({"command": "plan", "task_list": [{"title": "say hi", "notes": "", "status": "done"}]})),
                Turn::tool("finish", json!({"message": "done"})),
            ],
        );
        let started = Instant::now();
        let info = request(
            &server.addr,
            "POST",
            "/api/conversations",
            Some(&start_body(
                &fake,
                &work,
                "four",
                &["terminal", "file_editor", "task_tracker"],
                50,
            )),
        )
        .await?;
        let id = info["id"]
            .as_str()
            .ok_or(format!("no id: {info}"))?
            .to_string();
        wait_finished(&server.addr, &id).await?;
        // The first run warms the server up (outgoing connection pool, page cache).
        if run > 0 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        if run == args.runs {
            let offsets: Vec<String> = fake
                .requests()
                .iter()
                .rev()
                .take(4)
                .rev()
                .map(|r| format!("{:.1}", (r.at - started).as_secs_f64() * 1000.0))
                .collect();
            println!("last 4-step run: LLM requests at {} ms", offsets.join(", "));
        }
    }
    let four = median(times.clone());
    println!("4-step conversation, POST to finished: median {four:.1} ms over {} runs (min {:.1}, max {:.1}); Python 1.54 s: {:.0}x",
        times.len(),
        times.iter().cloned().fold(f64::MAX, f64::min),
        times.iter().cloned().fold(0.0, f64::max),
        1540.0 / four);

    // 2. A long run of think steps (`--steps 0` skips it).
    if args.steps == 0 {
        return Ok(());
    }
    fake.clear();
    let mut turns: Vec<Turn> = (0..args.steps)
        .map(|i| {
            Turn::tool(
                "think",
                json!({"thought": format!("step {i}: consider the next part of the plan")}),
            )
        })
        .collect();
    turns.push(Turn::tool("finish", json!({"message": "done"})));
    fake.add_script("long", turns);
    let work = tmp.path().join("work-long");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let info = request(
        &server.addr,
        "POST",
        "/api/conversations",
        Some(&start_body(&fake, &work, "long", &[], args.steps + 10)),
    )
    .await?;
    let id = info["id"].as_str().ok_or("no id")?.to_string();
    wait_finished(&server.addr, &id).await?;
    let total = started.elapsed();
    let reqs = fake.requests();
    if reqs.len() != args.steps + 1 {
        return Err(format!(
            "expected {} LLM requests, got {}",
            args.steps + 1,
            reqs.len()
        ));
    }
    // The fake's share of each gap: reading and parsing the request body.
    let parse_ms = |i: usize| {
        let text = reqs[i].body.to_string();
        let t = Instant::now();
        for _ in 0..5 {
            let _: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        }
        t.elapsed().as_secs_f64() * 1000.0 / 5.0
    };
    let gap = |i: usize| (reqs[i].at - reqs[i - 1].at).as_secs_f64() * 1000.0 - parse_ms(i);
    // The server's own account: `agent step … iteration=N server_us=M` lines of this conversation.
    let step_re =
        regex::Regex::new(r"iteration\D+(\d+).*server_us\D+(\d+)").map_err(|e| e.to_string())?;
    let mut own: Vec<(usize, f64)> = server
        .log
        .lock()
        .map_err(|_| "log lock")?
        .iter()
        .filter(|l| l.contains("agent step") && l.contains(&id))
        .filter_map(|l| {
            let c = step_re.captures(l)?;
            Some((c[1].parse().ok()?, c[2].parse::<f64>().ok()? / 1000.0))
        })
        .collect();
    own.sort_by_key(|(i, _)| *i);
    if own.len() < args.steps {
        return Err(format!("only {} step timings in the server log", own.len()));
    }
    let own_at =
        |range: std::ops::Range<usize>| median(own[range].iter().map(|(_, ms)| *ms).collect());
    println!(
        "server time per step (its own log): steps 2-6 {:.2} ms, steps {}-{} {:.2} ms",
        own_at(1..6),
        args.steps - 4,
        args.steps,
        own_at(args.steps - 5..args.steps),
    );
    let early: Vec<f64> = (1..6).map(gap).collect();
    let late: Vec<f64> = (args.steps - 4..=args.steps).map(gap).collect();
    let size = |i: usize| reqs[i].body.to_string().len() as f64 / 1024.0;
    println!(
        "{}-step run: {:.2} s in total; gap between LLM requests less the fake's parsing, at step 1: {:.2} ms (request {:.0} KiB), at step {}: {:.2} ms (request {:.0} KiB); Python 100 ms -> 420 ms",
        args.steps,
        total.as_secs_f64(),
        median(early),
        size(1),
        args.steps,
        median(late),
        size(args.steps),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match bench(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
