//! `GET /api/tools/` (the registered tool names), and the VSCode and desktop
//! routes of a server that bundles neither (api.md §8, DECISIONS.md):
//! `/api/vscode/status` answers the disabled form, `/api/vscode/url` the
//! `503` the Python server renders for it, `/api/desktop/url` `{"url": null}`.

use hyper::StatusCode;
use serde_json::json;

use crate::http::{response, ApiError, HandlerResult, Request, Route, RouteTable};
use crate::tools::registry;

const VSCODE_DISABLED: &str =
    "VSCode is disabled in configuration. Set enable_vscode=true to enable.";

/// Adds the routes.
pub fn register(table: &mut RouteTable) {
    let url_schema = json!({
        "type": "object",
        "properties": {"url": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Url"}},
        "required": ["url"],
    });
    let nullable_string = json!({"anyOf": [{"type": "string"}, {"type": "null"}]});
    table
        .add(
            Route::get("/api/tools/", list_tools)
                .summary("List Available Tools")
                .description("List all available tools.")
                .tag("Tools")
                .response(
                    200,
                    "Successful Response",
                    Some(json!({"type": "array", "items": {"type": "string"}, "title": "Response List Available Tools Api Tools  Get"})),
                ),
        )
        .add(
            Route::get("/api/vscode/url", vscode_url)
                .summary("Get Vscode Url")
                .description("Get the VSCode URL with authentication token. VSCode is not bundled: always 503.")
                .tag("VSCode")
                .query_param("base_url", false, nullable_string.clone())
                .query_param("workspace_dir", false, json!({"type": "string", "default": "workspace"}))
                .response(200, "Successful Response", Some(url_schema.clone()))
                .response(503, "VSCode is disabled", None),
        )
        .add(
            Route::get("/api/vscode/status", vscode_status)
                .summary("Get Vscode Status")
                .description("Get the VSCode server status.")
                .tag("VSCode")
                .response(
                    200,
                    "Successful Response",
                    Some(json!({"type": "object", "additionalProperties": {"anyOf": [{"type": "boolean"}, {"type": "string"}]}})),
                ),
        )
        .add(
            Route::get("/api/desktop/url", desktop_url)
                .summary("Get Desktop Url")
                .description("The desktop (noVNC) URL; null, as no desktop is bundled.")
                .tag("Desktop")
                .query_param("base_url", false, nullable_string)
                .response(200, "Successful Response", Some(url_schema)),
        );
}

async fn list_tools(_req: Request) -> HandlerResult {
    response::json(&registry::tool_names())
}

async fn vscode_url(_req: Request) -> HandlerResult {
    // An HTTPException of 500 and above goes through the Python server's
    // generic handler, which words it so.
    Err(ApiError::with_body(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({
            "detail": "Internal Server Error",
            "exception": format!("503: {VSCODE_DISABLED}"),
        }),
    ))
}

async fn vscode_status(_req: Request) -> HandlerResult {
    response::json(&json!({
        "running": false,
        "enabled": false,
        "message": "VSCode is disabled in configuration",
    }))
}

async fn desktop_url(_req: Request) -> HandlerResult {
    response::json(&json!({ "url": null }))
}
