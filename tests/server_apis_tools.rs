//! `/api/tools/`, the VSCode and desktop routes, `/workspace`, and the
//! browser's place in `/server_info.usable_tools`, through the real binary.

#[path = "server_apis/mod.rs"]
pub mod common;
pub mod support;

use std::time::{Duration, Instant};

use common::{get, Server};
use hyper::StatusCode;
use serde_json::{json, Value};

const TOOLS: [&str; 7] = [
    "file_editor",
    "task_tracker",
    "terminal",
    "browser_tool_set",
    "glob",
    "grep",
    "apply_patch",
];

#[tokio::test]
async fn tools_vscode_desktop_and_workspace() {
    let server = Server::start();
    let mut client = server.client().await;

    let tools = get(&mut client, "/api/tools/").await;
    assert_eq!(tools.status, StatusCode::OK);
    assert_eq!(tools.json(), json!(TOOLS));
    let no_slash = get(&mut client, "/api/tools").await;
    assert_eq!(no_slash.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(no_slash.header("location"), Some("/api/tools/"));
    assert_eq!(
        client.get("/api/tools/").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A server with VSCode disabled, as the Python server answers.
    let status = get(&mut client, "/api/vscode/status").await;
    assert_eq!(
        (status.status, status.json()),
        (
            StatusCode::OK,
            json!({"running": false, "enabled": false, "message": "VSCode is disabled in configuration"})
        )
    );
    let url = get(&mut client, "/api/vscode/url?workspace_dir=x").await;
    assert_eq!(
        (url.status, url.json()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"detail": "Internal Server Error", "exception": "503: VSCode is disabled in configuration. Set enable_vscode=true to enable."})
        )
    );
    let desktop = get(
        &mut client,
        "/api/desktop/url?base_url=http://localhost:8002",
    )
    .await;
    assert_eq!(
        (desktop.status, desktop.json()),
        (StatusCode::OK, json!({"url": null}))
    );

    // With the browser disabled, it is not usable.
    let info = client.get("/server_info").await.json();
    let usable: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| *t != "browser_tool_set")
        .collect();
    assert_eq!(info["usable_tools"], json!(usable));

    // The default workspace.
    let project = server.dir.join("workspace/project");
    let absent = get(&mut client, "/workspace").await;
    assert_eq!(
        absent.json(),
        json!({"working_dir": project.to_str().unwrap(), "exists": false, "free_bytes": null, "total_bytes": null})
    );
    std::fs::create_dir_all(&project).unwrap();
    let present = get(&mut client, "/workspace").await.json();
    assert_eq!(present["exists"], true);
    let free = present["free_bytes"].as_u64().unwrap();
    let total = present["total_bytes"].as_u64().unwrap();
    assert!(free > 0 && free <= total, "{present}");
    assert_eq!(
        client.get("/workspace").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Every route is documented.
    let openapi = client.get("/openapi.json").await.json();
    for path in [
        "/api/bash/execute_bash_command",
        "/api/bash/bash_events/search",
        "/api/conversations/{conversation_id}/bash/bash_commands/{command_id}/stop",
        "/api/file/upload",
        "/api/file/download/{path}",
        "/api/conversations/{conversation_id}/workspace/{file_path}",
        "/workspace",
        "/api/tools/",
        "/api/vscode/url",
        "/api/desktop/url",
        "/sockets/bash-events",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
    assert!(openapi["components"]["schemas"]["BashOutput"].is_object());

    drop(client);
    server.stop_and_check();
}

/// Processes whose command line names `marker`.
fn naming(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

#[tokio::test]
async fn the_browser_becomes_usable_after_its_check() {
    let server = Server::start_with(|b| b.env("OH_ENABLE_BROWSER", "true"));
    let browsers = format!("/tmp/agent-server-browsers-{}", server.server.pid());
    let mut client = server.client().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let info: Value = client.get("/server_info").await.json();
        if info["usable_tools"] == json!(TOOLS) {
            break;
        }
        // Until the check has passed, the browser is left out.
        assert_eq!(
            info["usable_tools"].as_array().unwrap().len(),
            TOOLS.len() - 1
        );
        assert!(
            Instant::now() < deadline,
            "the browser check did not pass: {info}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(client);
    server.stop_and_check();
    assert!(
        naming(&browsers).is_empty(),
        "browser processes left behind"
    );
}

#[tokio::test]
async fn a_stop_during_the_browser_check_leaves_no_browser() {
    let server = Server::start_with(|b| b.env("OH_ENABLE_BROWSER", "true"));
    let browsers = format!("/tmp/agent-server-browsers-{}", server.server.pid());
    // Give the check time to start Chromium, not to finish.
    let deadline = Instant::now() + Duration::from_secs(20);
    while naming(&browsers).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop_and_check();
    assert!(
        naming(&browsers).is_empty(),
        "browser processes left behind"
    );
}
