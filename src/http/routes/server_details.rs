//! `/`, `/alive`, `/health`, `/ready` and `/server_info`: public, no key needed.

use hyper::StatusCode;
use serde_json::json;

use crate::api::server::{HealthStatus, ReadyStatus, ServerInfo};
use crate::http::{response, schema_ref, HandlerResult, Request, Route, RouteTable};

/// The Python server version whose API this server speaks.
pub const API_COMPATIBILITY: &str = "1.58.2";

const TAG: &str = "Server Details";

/// Adds the routes and their schemas.
pub fn register(table: &mut RouteTable) {
    table
        .schema("HealthStatus", health_schema())
        .schema("ServerInfo", server_info_schema())
        .add(
            Route::get("/", server_info)
                .summary("Get Server Info")
                .tag(TAG)
                .response(200, "Successful Response", Some(schema_ref("ServerInfo"))),
        )
        .add(
            Route::get("/alive", alive)
                .summary("Alive")
                .description("Basic liveness check - returns OK if the server process is running.")
                .tag(TAG)
                .response(200, "Successful Response", Some(schema_ref("HealthStatus"))),
        )
        .add(
            Route::get("/health", alive)
                .summary("Health")
                .description("Basic health check - returns OK if the server process is running.")
                .tag(TAG)
                .response(200, "Successful Response", Some(schema_ref("HealthStatus"))),
        )
        .add(
            Route::get("/ready", ready)
                .summary("Ready")
                .description(
                    "Readiness check - returns OK only if the server has completed initialization.",
                )
                .tag(TAG)
                .response(200, "Successful Response", Some(ready_schema()))
                .response(503, "Still initializing", Some(ready_schema())),
        )
        .add(
            Route::get("/server_info", server_info)
                .summary("Get Server Info")
                .tag(TAG)
                .response(200, "Successful Response", Some(schema_ref("ServerInfo"))),
        );
}

async fn alive(_req: Request) -> HandlerResult {
    response::json(&HealthStatus {
        status: "ok".into(),
    })
}

async fn ready(req: Request) -> HandlerResult {
    if req.state().is_ready() {
        response::json(&ReadyStatus {
            status: "ready".into(),
            message: None,
        })
    } else {
        response::json_with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            &ReadyStatus {
                status: "initializing".into(),
                message: Some("Server is still initializing".into()),
            },
        )
    }
}

async fn server_info(req: Request) -> HandlerResult {
    let state = req.state();
    let version = env!("CARGO_PKG_VERSION").to_string();
    let idle_limit = state.config.runtime_idle_timeout_seconds;
    response::json(&ServerInfo {
        uptime: state.uptime().as_secs() as f64,
        idle_time: state.idle_time().as_secs() as f64,
        title: crate::http::openapi::TITLE.into(),
        version: version.clone(),
        api_compatibility: API_COMPATIBILITY.into(),
        sdk_version: version.clone(),
        tools_version: version,
        workspace_version: "unknown".into(),
        build_git_sha: state.config.build_git_sha.clone(),
        build_git_ref: state.config.build_git_ref.clone(),
        python_version: format!(
            "agent-server {} (Rust, {}-{})",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            std::env::consts::OS
        ),
        usable_tools: state.usable_tools(),
        runtime_idle_timeout_seconds: idle_limit,
        conversation_runtime: "local".into(),
        available_conversation_runtimes: Vec::new(),
        capabilities: Vec::new(),
        app_backend_ingress_url: None,
        max_foreground_terminal_timeout_seconds: idle_limit.map(|s| s * 0.9),
        docs: "/docs".into(),
        redoc: "/redoc".into(),
    })
}

fn health_schema() -> serde_json::Value {
    json!({
        "properties": {"status": {"type": "string", "title": "Status"}},
        "type": "object",
        "required": ["status"],
        "title": "HealthStatus",
    })
}

fn ready_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "additionalProperties": {"type": "string"},
        "title": "Response Ready Ready Get",
    })
}

fn server_info_schema() -> serde_json::Value {
    let string = |title: &str| json!({"type": "string", "title": title});
    let strings =
        |title: &str| json!({"items": {"type": "string"}, "type": "array", "title": title});
    let nullable_number =
        |title: &str| json!({"anyOf": [{"type": "number"}, {"type": "null"}], "title": title});
    json!({
        "properties": {
            "uptime": {"type": "number", "title": "Uptime"},
            "idle_time": {"type": "number", "title": "Idle Time"},
            "title": string("Title"),
            "version": string("Version"),
            "api_compatibility": string("Api Compatibility"),
            "sdk_version": string("Sdk Version"),
            "tools_version": string("Tools Version"),
            "workspace_version": string("Workspace Version"),
            "build_git_sha": string("Build Git Sha"),
            "build_git_ref": string("Build Git Ref"),
            "python_version": string("Python Version"),
            "usable_tools": strings("Usable Tools"),
            "runtime_idle_timeout_seconds": nullable_number("Runtime Idle Timeout Seconds"),
            "conversation_runtime": {"type": "string", "enum": ["local", "docker"], "title": "Conversation Runtime"},
            "available_conversation_runtimes": strings("Available Conversation Runtimes"),
            "capabilities": strings("Capabilities"),
            "app_backend_ingress_url": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "App Backend Ingress Url"},
            "max_foreground_terminal_timeout_seconds": nullable_number("Max Foreground Terminal Timeout Seconds"),
            "docs": string("Docs"),
            "redoc": string("Redoc"),
        },
        "type": "object",
        "required": ["uptime", "idle_time"],
        "title": "ServerInfo",
    })
}
