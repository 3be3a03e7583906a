//! The terminal through its public API. This binary holds the one test that
//! uses the process-wide shutdown guard, which kills every session of the
//! process and so cannot share a process with other terminal tests.

use std::sync::Arc;

use agent_server::tools::terminal::{factory, shutdown_guard};
use agent_server::tools::{ExecContext, ToolEnv, ToolSettings};
use serde_json::{json, Map};

/// Live processes of session `sid` (zombies excepted).
fn session_members(sid: i32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter(|stat| {
            let rest = &stat[stat.rfind(')').unwrap() + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields[0] != "Z" && fields[3] == sid.to_string()
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_guard_kills_every_session() {
    let guard = shutdown_guard();
    let work = tempfile::tempdir().unwrap();
    let conv = tempfile::tempdir().unwrap();
    let env = ToolEnv {
        vision: true,
        working_dir: work.path().to_path_buf(),
        conversation_dir: conv.path().to_path_buf(),
        params: Map::new(),
        settings: Arc::new(ToolSettings::default()),
    };
    let mut shells = Vec::new();
    let mut tools = Vec::new();
    for _ in 0..2 {
        let tool = (factory().create)(&env).unwrap().remove(0);
        let action = tool
            .validate(
                json!({"command": "sleep 1000 & echo $$"})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        let obs = tool
            .execute(&action, &ExecContext::default())
            .await
            .unwrap();
        let text = obs.json["content"][0]["text"].as_str().unwrap().to_string();
        let shell: i32 = text.lines().last().unwrap().trim().parse().unwrap();
        assert_eq!(session_members(shell), 2, "bash and sleep");
        shells.push(shell);
        tools.push(tool);
    }
    drop(guard);
    for shell in shells {
        assert_eq!(session_members(shell), 0);
    }
}
