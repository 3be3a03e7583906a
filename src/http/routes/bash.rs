//! `/api/bash/…`: run commands on the server and read their stored events
//! (api.md §7, persistence-and-config.md §9), and the same routes scoped to
//! a conversation under `/api/conversations/{conversation_id}/bash/…`, whose
//! commands run in the conversation's workspace and whose events are stored
//! in the conversation's directory.

use std::future::Future;
use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::validation::{Loc, ValidationErrorItem};
use crate::bash::{
    BashEvent, BashEventKind, BashSearch, BashService, BashServiceError, ExecuteBashRequest,
    SortOrder,
};
use crate::http::params::enum_error;
use crate::http::{response, schema_ref, ApiError, Bounds, HandlerResult, Params, Request};
use crate::http::{Route, RouteTable};
use crate::server::AppState;
use crate::util::{ids, time};

const TAG: &str = "Bash";

/// The route prefixes: the server's own service and a conversation's.
const GLOBAL: &str = "/api/bash";
const SCOPED: &str = "/api/conversations/{conversation_id}/bash";

const KINDS: [&str; 2] = ["BashCommand", "BashOutput"];
const SORT_ORDERS: [&str; 2] = ["TIMESTAMP", "TIMESTAMP_DESC"];

/// Adds the routes and their schemas.
pub fn register(table: &mut RouteTable) {
    register_schemas(table);
    for prefix in [GLOBAL, SCOPED] {
        for route in routes(prefix) {
            let route = if prefix == SCOPED {
                route.path_param(
                    "conversation_id",
                    json!({"type": "string", "format": "uuid", "title": "Conversation Id"}),
                )
            } else {
                route
            };
            table.add(route.tag(TAG));
        }
    }
}

/// The routes under one prefix. Paths must be `'static`, so they are
/// spelled out per prefix.
fn routes(prefix: &'static str) -> Vec<Route> {
    let path = |global: &'static str, scoped: &'static str| {
        if prefix == GLOBAL {
            global
        } else {
            scoped
        }
    };
    let event_schema = || json!({"anyOf": [schema_ref("BashCommand"), schema_ref("BashOutput")], "title": "Response"});
    vec![
        Route::get(
            path(
                "/api/bash/bash_events/search",
                "/api/conversations/{conversation_id}/bash/bash_events/search",
            ),
            search,
        )
        .summary("Search Bash Events")
        .description("Search / List bash event events")
        .query_param(
            "kind__eq",
            false,
            json!({"anyOf": [{"enum": KINDS, "type": "string"}, {"type": "null"}], "title": "Kind  Eq"}),
        )
        .query_param(
            "command_id__eq",
            false,
            json!({"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}], "title": "Command Id  Eq"}),
        )
        .query_param(
            "timestamp__gte",
            false,
            json!({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}], "title": "Timestamp  Gte"}),
        )
        .query_param(
            "timestamp__lt",
            false,
            json!({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}], "title": "Timestamp  Lt"}),
        )
        .query_param(
            "order__gt",
            false,
            json!({
                "anyOf": [{"type": "integer"}, {"type": "null"}],
                "title": "Filter to events with order greater than this value",
                "description": "Only returns BashOutput events with order > this value. Useful for polling to fetch only new events since the last poll.",
            }),
        )
        .query_param(
            "sort_order",
            false,
            json!({"enum": SORT_ORDERS, "type": "string", "default": "TIMESTAMP", "title": "Sort Order"}),
        )
        .query_param(
            "page_id",
            false,
            json!({"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Optional next_page_id from the previously returned page"}),
        )
        .query_param(
            "limit",
            false,
            json!({"type": "integer", "exclusiveMinimum": 0, "maximum": 100, "default": 100, "title": "The max number of results in the page"}),
        )
        .response(200, "Successful Response", Some(schema_ref("BashEventPage"))),
        Route::get(
            path(
                "/api/bash/bash_events/{event_id}",
                "/api/conversations/{conversation_id}/bash/bash_events/{event_id}",
            ),
            get_event,
        )
        .summary("Get Bash Event")
        .description("Get a bash event event given an id")
        .path_param("event_id", json!({"type": "string", "title": "Event Id"}))
        .response(200, "Successful Response", Some(event_schema()))
        .response(404, "Item not found", None),
        Route::get(
            path(
                "/api/bash/bash_events/",
                "/api/conversations/{conversation_id}/bash/bash_events/",
            ),
            batch_get,
        )
        .summary("Batch Get Bash Events")
        .description(
            "Get a batch of bash event events given their ids, returning null for any missing item. \
             The ids come as repeated `ids` (or `event_ids`) query parameters or as a JSON list \
             body; the query wins when both are present.",
        )
        .query_param(
            "ids",
            false,
            json!({"type": "array", "items": {"type": "string"}, "title": "Ids"}),
        )
        .json_body(
            json!({"type": "array", "items": {"type": "string"}, "title": "Event Ids"}),
            false,
        )
        .response(
            200,
            "Successful Response",
            Some(json!({"type": "array", "items": {"anyOf": [schema_ref("BashCommand"), schema_ref("BashOutput"), {"type": "null"}]}})),
        ),
        Route::post(
            path(
                "/api/bash/start_bash_command",
                "/api/conversations/{conversation_id}/bash/start_bash_command",
            ),
            start_command,
        )
        .summary("Start Bash Command")
        .description("Execute a bash command in the background")
        .json_body(schema_ref("ExecuteBashRequest"), true)
        .response(200, "Successful Response", Some(schema_ref("BashCommand"))),
        Route::post(
            path(
                "/api/bash/execute_bash_command",
                "/api/conversations/{conversation_id}/bash/execute_bash_command",
            ),
            execute_command,
        )
        .summary("Execute Bash Command")
        .description("Execute a bash command and wait for a result")
        .json_body(schema_ref("ExecuteBashRequest"), true)
        .response(200, "Successful Response", Some(schema_ref("BashOutput"))),
        Route::delete(
            path(
                "/api/bash/bash_events",
                "/api/conversations/{conversation_id}/bash/bash_events",
            ),
            clear_events,
        )
        .summary("Clear All Bash Events")
        .description("Clear all bash events from storage")
        .response(
            200,
            "Successful Response",
            Some(json!({"type": "object", "additionalProperties": {"type": "integer"}, "title": "Response Clear All Bash Events"})),
        ),
        Route::post(
            path(
                "/api/bash/bash_commands/{command_id}/stop",
                "/api/conversations/{conversation_id}/bash/bash_commands/{command_id}/stop",
            ),
            stop_command,
        )
        .summary("Stop Bash Command")
        .description(
            "Stop a running bash command by id without touching the others. Idempotent: stopping \
             an already-finished command succeeds, while an unknown command id reports not-found.",
        )
        .path_param(
            "command_id",
            json!({"type": "string", "format": "uuid", "title": "Command Id"}),
        )
        .response(200, "Successful Response", Some(schema_ref("Success")))
        .response(404, "Item not found", None),
    ]
}

fn register_schemas(table: &mut RouteTable) {
    let nullable = |ty: &str, title: &str, description: &str| json!({"anyOf": [{"type": ty}, {"type": "null"}], "default": null, "title": title, "description": description});
    let command =
        json!({"type": "string", "title": "Command", "description": "The bash command to execute"});
    let cwd = nullable("string", "Cwd", "The current working directory");
    let timeout = json!({"type": "integer", "default": 300, "title": "Timeout", "description": "The max number of seconds a command may be permitted to run."});
    let id = json!({"type": "string", "format": "uuid", "title": "Id"});
    let timestamp = json!({"type": "string", "format": "date-time", "title": "Timestamp"});
    table
        .schema(
            "ExecuteBashRequest",
            json!({
                "properties": {"command": command, "cwd": cwd, "timeout": timeout},
                "required": ["command"],
                "title": "ExecuteBashRequest",
                "type": "object",
            }),
        )
        .schema(
            "BashCommand",
            json!({
                "properties": {
                    "command": command, "cwd": cwd, "timeout": timeout, "id": id, "timestamp": timestamp,
                    "kind": {"const": "BashCommand", "title": "Kind", "type": "string"},
                },
                "required": ["command"],
                "title": "BashCommand",
                "type": "object",
            }),
        )
        .schema(
            "BashOutput",
            json!({
                "description": "Output of a bash command. A single command may have multiple pieces of output\ndepending on how large the output is.",
                "properties": {
                    "id": id, "timestamp": timestamp,
                    "command_id": {"type": "string", "format": "uuid", "title": "Command Id"},
                    "order": {"type": "integer", "default": 0, "title": "Order", "description": "The order for this output, sequentially starting with 0"},
                    "exit_code": nullable("integer", "Exit Code", "Exit code None implies the command is still running."),
                    "stdout": nullable("string", "Stdout", "The standard output from the command"),
                    "stderr": nullable("string", "Stderr", "The error output from the command"),
                    "kind": {"const": "BashOutput", "title": "Kind", "type": "string"},
                },
                "required": ["command_id"],
                "title": "BashOutput",
                "type": "object",
            }),
        )
        .schema(
            "BashEventPage",
            json!({
                "properties": {
                    "items": {"type": "array", "items": {"anyOf": [schema_ref("BashCommand"), schema_ref("BashOutput")]}, "title": "Items"},
                    "next_page_id": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Next Page Id"},
                },
                "required": ["items"],
                "title": "BashEventPage",
                "type": "object",
            }),
        )
        .schema(
            "Success",
            json!({
                "properties": {"success": {"type": "boolean", "default": true, "title": "Success"}},
                "title": "Success",
                "type": "object",
            }),
        );
}

/// The service a request addresses: the server's, or its conversation's
/// (`404 Conversation not found: <id>` for an unknown one).
pub fn service_for(
    req: &Request,
) -> impl Future<Output = Result<BashService, ApiError>> + Send + 'static {
    // A `Request` is not `Sync`, so the future must not borrow it.
    let state = req.state().clone();
    let conversation = if req.param("conversation_id").is_ok() {
        conversation_id(req).map(Some)
    } else {
        Ok(None)
    };
    async move { service_of(state, conversation?).await }
}

async fn service_of(
    state: Arc<AppState>,
    conversation: Option<Uuid>,
) -> Result<BashService, ApiError> {
    let result = match conversation {
        Some(id) => {
            let place = state.find_conversation(id).await.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("Conversation not found: {}", ids::dashed(&id)),
                )
            })?;
            state
                .bash
                .for_conversation(id, &place.dir, &place.working_dir)
                .await
        }
        None => state.bash.global().await,
    };
    result.map_err(unavailable)
}

/// The validated `conversation_id` path parameter.
pub fn conversation_id(req: &Request) -> Result<Uuid, ApiError> {
    let mut params = req.params();
    let id = params.path_uuid("conversation_id");
    params.finish()?;
    id.ok_or_else(|| ApiError::internal("conversation_id passed validation without a value"))
}

fn unavailable(error: BashServiceError) -> ApiError {
    match error {
        BashServiceError::Closed | BashServiceError::TooManySubscribers => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Bash event service is not available",
        ),
        BashServiceError::Io(e) => ApiError::internal(format!("bash service: {e}")),
    }
}

async fn search(req: Request) -> HandlerResult {
    let service = service_for(&req).await?;
    let mut params = req.params();
    let search = search_params(&mut params);
    params.finish()?;
    response::json(&service.search(search).await.to_json())
}

/// Reads the search filters; errors are recorded in `params`.
fn search_params(params: &mut Params) -> BashSearch {
    let kind = params.str("kind__eq").and_then(|raw| {
        let kind = BashEventKind::parse(&raw).filter(|k| *k != BashEventKind::Error);
        if kind.is_none() {
            params.error(literal_error(query_loc("kind__eq"), &raw, &KINDS));
        }
        kind
    });
    let command_id = params.uuid("command_id__eq");
    let timestamp_gte = datetime(params, "timestamp__gte");
    let timestamp_lt = datetime(params, "timestamp__lt");
    let order_gt = params.int("order__gt", Bounds::new());
    let sort_order = match params.str("sort_order") {
        None => SortOrder::Timestamp,
        Some(raw) => SortOrder::parse(&raw).unwrap_or_else(|| {
            params.error(enum_error(query_loc("sort_order"), &raw, &SORT_ORDERS));
            SortOrder::Timestamp
        }),
    };
    let limit = params
        .int("limit", Bounds::new().gt(0).le(100))
        .unwrap_or(100);
    BashSearch {
        kind,
        command_id,
        timestamp_gte,
        timestamp_lt,
        order_gt,
        sort_order,
        page_id: params.str("page_id").filter(|p| !p.is_empty()),
        limit: usize::try_from(limit).unwrap_or(100),
    }
}

fn query_loc(name: &str) -> Vec<Loc> {
    vec![Loc::from("query"), Loc::from(name)]
}

/// pydantic's `literal_error`: the `enum` wording under another type.
fn literal_error(loc: Vec<Loc>, input: &str, allowed: &[&str]) -> ValidationErrorItem {
    let mut item = enum_error(loc, input, allowed);
    item.error_type = "literal_error".into();
    item
}

/// A datetime query parameter, any ISO-8601 form (naive values are UTC).
fn datetime(params: &mut Params, name: &str) -> Option<jiff::Timestamp> {
    let raw = params.str(name)?;
    let parsed = time::parse_client_timestamp(&raw);
    if parsed.is_none() {
        // pydantic's reason for the common cases; the type is what clients check.
        let reason = if raw.trim().len() < 10 {
            "input is too short"
        } else {
            "invalid character in year"
        };
        params.error(ValidationErrorItem::new(
            "datetime_from_date_parsing",
            query_loc(name),
            format!("Input should be a valid datetime or date, {reason}"),
            Value::String(raw),
            Some(json!({ "error": reason })),
        ));
    }
    parsed
}

async fn get_event(req: Request) -> HandlerResult {
    let service = service_for(&req).await?;
    let event_id = req.param("event_id")?.to_string();
    match service.get(&event_id).await {
        Some(event) => response::json(&event.to_json()),
        None => Err(ApiError::not_found()),
    }
}

async fn batch_get(mut req: Request) -> HandlerResult {
    let service = service_for(&req).await?;
    let params = req.params();
    let mut ids = params.str_list("ids");
    ids.extend(params.str_list("event_ids"));
    if ids.is_empty() && !params.has("ids") && !params.has("event_ids") {
        ids = id_list(&req.json_value().await?)?;
    }
    let events = service.batch_get(&ids).await;
    let body: Vec<Value> = events
        .iter()
        .map(|e| e.as_ref().map_or(Value::Null, BashEvent::to_json))
        .collect();
    response::json(&body)
}

/// A JSON body that must be a list of strings, validated like pydantic.
fn id_list(body: &Value) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = body else {
        return Err(ValidationErrorItem::new(
            "list_type",
            vec![Loc::from("body")],
            "Input should be a valid list",
            body.clone(),
            None,
        )
        .into());
    };
    let mut ids = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => ids.push(s.clone()),
            other => errors.push(ValidationErrorItem::new(
                "string_type",
                vec![Loc::from("body"), Loc::from(i)],
                "Input should be a valid string",
                other.clone(),
                None,
            )),
        }
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// The body as an [`ExecuteBashRequest`] whose `cwd` the service accepts.
async fn command_request(
    req: &mut Request,
    service: &BashService,
) -> Result<ExecuteBashRequest, ApiError> {
    let body = req.json_value().await?;
    let request = ExecuteBashRequest::from_json(&body).map_err(ApiError::validation)?;
    service
        .check_cwd(&request)
        .await
        .map_err(|detail| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail))?;
    Ok(request)
}

async fn start_command(mut req: Request) -> HandlerResult {
    let service = service_for(&req).await?;
    let request = command_request(&mut req, &service).await?;
    req.state().touch();
    let command = service.start(request).await.map_err(unavailable)?;
    response::json(&BashEvent::Command(command).to_json())
}

async fn execute_command(mut req: Request) -> HandlerResult {
    let service = service_for(&req).await?;
    let request = command_request(&mut req, &service).await?;
    req.state().touch();
    let output = service.execute(request).await.map_err(unavailable)?;
    req.state().touch();
    response::json(&BashEvent::Output(output).to_json())
}

async fn clear_events(req: Request) -> HandlerResult {
    let service = service_for(&req).await?;
    let count = service.clear().await.map_err(unavailable)?;
    response::json(&json!({ "cleared_count": count }))
}

async fn stop_command(req: Request) -> HandlerResult {
    let service = service_for(&req).await?;
    let mut params = req.params();
    let command_id = params.path_uuid("command_id");
    params.finish()?;
    let Some(command_id) = command_id else {
        return Err(ApiError::internal(
            "command_id passed validation without a value",
        ));
    };
    req.state().touch();
    if service.stop(command_id).await {
        response::json(&json!({ "success": true }))
    } else {
        Err(ApiError::not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(query: &str) -> Value {
        let mut params = Params::new(Vec::new(), Some(query));
        search_params(&mut params);
        match params.finish() {
            Ok(()) => Value::Null,
            Err(ApiError::Validation(items)) => serde_json::to_value(items).unwrap(),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn search_errors_match_fastapi() {
        // Recorded from the Python server's bash router.
        assert_eq!(
            errors("kind__eq=BashError"),
            json!([{"type":"literal_error","loc":["query","kind__eq"],"msg":"Input should be 'BashCommand' or 'BashOutput'","input":"BashError","ctx":{"expected":"'BashCommand' or 'BashOutput'"}}])
        );
        assert_eq!(
            errors("sort_order=x"),
            json!([{"type":"enum","loc":["query","sort_order"],"msg":"Input should be 'TIMESTAMP' or 'TIMESTAMP_DESC'","input":"x","ctx":{"expected":"'TIMESTAMP' or 'TIMESTAMP_DESC'"}}])
        );
        assert_eq!(
            errors("limit=0"),
            json!([{"type":"greater_than","loc":["query","limit"],"msg":"Input should be greater than 0","input":"0","ctx":{"gt":0}}])
        );
        assert_eq!(
            errors("limit=101"),
            json!([{"type":"less_than_equal","loc":["query","limit"],"msg":"Input should be less than or equal to 100","input":"101","ctx":{"le":100}}])
        );
        assert_eq!(
            errors("command_id__eq=zz"),
            json!([{"type":"uuid_parsing","loc":["query","command_id__eq"],"msg":"Input should be a valid UUID, invalid character: found `z` at 0","input":"zz","ctx":{"error":"invalid character: found `z` at 0"}}])
        );
        assert_eq!(
            errors("order__gt=a"),
            json!([{"type":"int_parsing","loc":["query","order__gt"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"a"}])
        );
        assert_eq!(
            errors("timestamp__gte=x"),
            json!([{"type":"datetime_from_date_parsing","loc":["query","timestamp__gte"],"msg":"Input should be a valid datetime or date, input is too short","input":"x","ctx":{"error":"input is too short"}}])
        );
        assert_eq!(
            errors("kind__eq=BashOutput&sort_order=TIMESTAMP_DESC&limit=5&timestamp__lt=2026-11-25T00:00:00Z"),
            Value::Null
        );
    }

    #[test]
    fn batch_bodies_are_lists_of_strings() {
        assert_eq!(id_list(&json!(["a", "b"])).unwrap(), ["a", "b"]);
        let Err(ApiError::Validation(items)) = id_list(&json!({"x": 1})) else {
            panic!("an object is not a list")
        };
        assert_eq!(
            serde_json::to_value(items).unwrap(),
            json!([{"type":"list_type","loc":["body"],"msg":"Input should be a valid list","input":{"x":1}}])
        );
        let Err(ApiError::Validation(items)) = id_list(&json!([1, "a"])) else {
            panic!("a number is not a string")
        };
        assert_eq!(
            serde_json::to_value(items).unwrap(),
            json!([{"type":"string_type","loc":["body",0],"msg":"Input should be a valid string","input":1}])
        );
    }
}
