//! Runs the scripted fake LLM provider on 127.0.0.1 for benchmarks and manual runs.
//!
//! ```text
//! cargo run --example fake_llm -- --port 4199 \
//!     --script default=script.json --think-steps 200 --default-script default
//! ```
//!
//! Prints `fake LLM listening on http://127.0.0.1:PORT/v1` (the `base_url` for
//! every API) and serves until Ctrl-C. Built-in scripts: `finish` (calls
//! `finish` at once) and, with `--think-steps N`, `think-N` (N `think` calls,
//! then `finish`). Script files are JSON lists of turns (see
//! `Turn::script_from_json`). Conversations choose a script with a
//! `[script:NAME]` marker in their first message.

#[path = "../tests/support/fake_llm.rs"]
pub mod fake_llm;

use std::net::SocketAddr;
use std::process::ExitCode;

use fake_llm::{FakeLlm, Turn};
use serde_json::json;

struct Args {
    port: u16,
    scripts: Vec<(String, Vec<Turn>)>,
    default_script: Option<String>,
}

const USAGE: &str =
    "usage: fake_llm [--port N] [--script NAME=FILE]... [--think-steps N] [--default-script NAME]";

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut args = Args {
        port: 0,
        scripts: vec![(
            "finish".to_string(),
            vec![Turn::tool("finish", json!({"message": "Done."}))],
        )],
        default_script: None,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("port") => {
                args.port = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e: lexopt::Error| e.to_string())?;
            }
            Long("script") => {
                let spec = parser.value().map_err(|e| e.to_string())?;
                let spec = spec.to_string_lossy().to_string();
                let (name, path) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--script wants NAME=FILE, got '{spec}'"))?;
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                let value =
                    serde_json::from_str(&text).map_err(|e| format!("{path} is not JSON: {e}"))?;
                let turns = Turn::script_from_json(&value).map_err(|e| format!("{path}: {e}"))?;
                args.scripts.push((name.to_string(), turns));
            }
            Long("think-steps") => {
                let n: usize = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e: lexopt::Error| e.to_string())?;
                let mut turns: Vec<Turn> = (0..n)
                    .map(|i| Turn::tool("think", json!({"thought": format!("step {i}")})))
                    .collect();
                turns.push(Turn::tool("finish", json!({"message": "Done."})));
                args.scripts.push((format!("think-{n}"), turns));
            }
            Long("default-script") => {
                let name = parser.value().map_err(|e| e.to_string())?;
                args.default_script = Some(name.to_string_lossy().to_string());
            }
            Long("help") | Short('h') => return Err(USAGE.to_string()),
            other => return Err(format!("{}\n{USAGE}", other.unexpected())),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeLlm::start_on(SocketAddr::from(([127, 0, 0, 1], args.port))).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{}: {e}", args.port);
            return ExitCode::FAILURE;
        }
    };
    for (name, turns) in args.scripts {
        fake.add_script(&name, turns);
    }
    fake.set_default_script(args.default_script.as_deref());
    println!("fake LLM listening on {}", fake.base_url());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    println!("{} requests served", fake.requests().len());
    ExitCode::SUCCESS
}
