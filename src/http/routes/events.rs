//! `/api/conversations/{conversation_id}/events`: search, count, get, batch
//! get and sending a message (api.md §5). Unknown conversations answer
//! `404 {"detail":"Conversation not found: <uuid>"}`.

use hyper::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::conversations::{api_error, json_text, query_pairs, record, service};
use crate::api::conversation::{
    parse_batch_ids, parse_event_count_query, EventSearchQuery, SendMessageRequest,
};
use crate::api::validation::ValidationErrorItem;
use crate::conversations::SendOutcome;
use crate::http::{response, schema_ref, ApiError, HandlerResult, Request, Route, RouteTable};
use crate::util::ids;

const TAG: &str = "Events";

fn not_found(id: &Uuid) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Conversation not found: {}", ids::dashed(id)),
    )
}

fn conv_not_found(id: &Uuid) -> String {
    format!("Conversation not found: {}", ids::dashed(id))
}

async fn search(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let q = record(&mut p, EventSearchQuery::from_query(&query_pairs(&req)));
    p.finish()?;
    let (Some(id), Some(q)) = (id, q) else {
        return Err(ApiError::internal("parameters checked"));
    };
    match svc
        .search_events(id, &q)
        .await
        .map_err(|e| api_error(e, &conv_not_found(&id)))?
    {
        Some(page) => json_text(page),
        None => Err(not_found(&id)),
    }
}

async fn count(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let filter = record(&mut p, parse_event_count_query(&query_pairs(&req)));
    p.finish()?;
    let (Some(id), Some(filter)) = (id, filter) else {
        return Err(ApiError::internal("parameters checked"));
    };
    match svc
        .count_events(id, &filter)
        .await
        .map_err(|e| api_error(e, &conv_not_found(&id)))?
    {
        Some(n) => response::json(&n),
        None => Err(not_found(&id)),
    }
}

async fn get_event(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let event_id = p.path_str("event_id");
    p.finish()?;
    let (Some(id), Some(event_id)) = (id, event_id) else {
        return Err(ApiError::internal("parameters checked"));
    };
    match svc
        .get_event(id, &event_id)
        .await
        .map_err(|e| api_error(e, &conv_not_found(&id)))?
    {
        None => Err(not_found(&id)),
        Some(None) => Err(ApiError::not_found()),
        Some(Some(event)) => json_text(event),
    }
}

async fn batch_get(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let pairs = query_pairs(&req);
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let from_query = pairs.iter().any(|(k, _)| k == "event_ids");
    let body = if from_query {
        None
    } else {
        req.optional_json_value().await?
    };
    // Upstream reads the ids from the body only, so "missing" names the body.
    let ids = if !from_query && body.is_none() {
        p.error(ValidationErrorItem::missing(
            crate::loc!["body"],
            Value::Null,
        ));
        None
    } else {
        record(
            &mut p,
            parse_batch_ids(&pairs, "event_ids", body.as_ref(), None),
        )
    };
    p.finish()?;
    let (Some(id), Some(event_ids)) = (id, ids) else {
        return Err(ApiError::internal("parameters checked"));
    };
    match svc
        .batch_get_events(id, &event_ids)
        .await
        .map_err(|e| api_error(e, &conv_not_found(&id)))?
    {
        Some(list) => json_text(list),
        None => Err(not_found(&id)),
    }
}

async fn send_message(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let body = req.json_value().await?;
    let msg = record(&mut p, SendMessageRequest::from_body(&body));
    p.finish()?;
    let (Some(id), Some(msg)) = (id, msg) else {
        return Err(ApiError::internal("parameters checked"));
    };
    req.state().touch();
    match svc
        .send_message(id, msg)
        .await
        .map_err(|e| api_error(e, &conv_not_found(&id)))?
    {
        None => Err(not_found(&id)),
        Some(SendOutcome::Stored) => response::json(&json!({"success": true})),
        Some(SendOutcome::StoredNoCapacity(detail)) => {
            Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, detail))
        }
    }
}

/// Adds the routes and their schemas.
pub fn register(table: &mut RouteTable) {
    table
        .schema(
            "Event",
            json!({"type": "object", "title": "Event",
                   "description": "An event: `id`, `timestamp`, `source`, `parent_id`, kind-specific fields, `kind` last.",
                   "properties": {"id": {"type": "string"}, "timestamp": {"type": "string"},
                                  "source": {"enum": ["agent", "user", "environment", "hook"]},
                                  "parent_id": {"type": ["string", "null"]}, "kind": {"type": "string"}},
                   "required": ["kind"]}),
        )
        .schema(
            "EventPage",
            json!({"type": "object", "title": "EventPage",
                   "properties": {"items": {"type": "array", "items": schema_ref("Event")}, "next_page_id": {"type": ["string", "null"]}},
                   "required": ["items"]}),
        )
        .schema(
            "SendMessageRequest",
            json!({"type": "object", "title": "SendMessageRequest",
                   "properties": {"role": {"enum": ["user", "system", "assistant", "tool"], "default": "user"},
                                  "content": {"type": "array", "items": {"type": "object"}, "default": []},
                                  "run": {"type": "boolean", "default": false}}}),
        );
    let conv = |r: Route| {
        r.path_param(
            "conversation_id",
            json!({"type": "string", "format": "uuid"}),
        )
    };
    let filters = |r: Route| {
        r.query_param("kind", false, json!({"type": ["string", "null"], "description": "Class name or fully-qualified Python name"}))
            .query_param("source", false, json!({"type": ["string", "null"]}))
            .query_param("body", false, json!({"type": ["string", "null"], "description": "Case-insensitive text of message events"}))
            .query_param("timestamp__gte", false, json!({"type": ["string", "null"], "format": "date-time"}))
            .query_param("timestamp__lt", false, json!({"type": ["string", "null"], "format": "date-time"}))
    };
    table
        .add(
            filters(conv(Route::get("/api/conversations/{conversation_id}/events/search", search)))
                .summary("Search Conversation Events")
                .tag(TAG)
                .query_param("page_id", false, json!({"type": ["string", "null"]}))
                .query_param("limit", false, json!({"type": "integer", "exclusiveMinimum": 0, "maximum": 100, "default": 100}))
                .query_param("sort_order", false, json!({"enum": ["TIMESTAMP", "TIMESTAMP_DESC"], "default": "TIMESTAMP"}))
                .response(200, "Successful Response", Some(schema_ref("EventPage")))
                .response(404, "Conversation not found", None),
        )
        .add(
            filters(conv(Route::get("/api/conversations/{conversation_id}/events/count", count)))
                .summary("Count Conversation Events")
                .tag(TAG)
                .response(200, "Successful Response", Some(json!({"type": "integer"})))
                .response(404, "Conversation not found", None),
        )
        .add(
            conv(Route::get("/api/conversations/{conversation_id}/events/{event_id}", get_event))
                .summary("Get Conversation Event")
                .tag(TAG)
                .path_param("event_id", json!({"type": "string"}))
                .response(200, "Successful Response", Some(schema_ref("Event")))
                .response(404, "Item not found", None),
        )
        .add(
            conv(Route::get("/api/conversations/{conversation_id}/events", batch_get))
                .summary("Batch Get Conversation Events")
                .description("Ids as repeated `event_ids` query parameters or as a JSON array body; the query wins.")
                .tag(TAG)
                .query_param("event_ids", false, json!({"type": "array", "items": {"type": "string"}}))
                .json_body(json!({"type": "array", "items": {"type": "string"}}), false)
                .response(
                    200,
                    "Successful Response",
                    Some(json!({"type": "array", "items": {"anyOf": [schema_ref("Event"), {"type": "null"}]}})),
                )
                .response(404, "Conversation not found", None),
        )
        .add(
            conv(Route::post("/api/conversations/{conversation_id}/events", send_message))
                .summary("Send Message")
                .description("Appends a user message; with `run: true` the agent runs (once the agent runtime is installed).")
                .tag(TAG)
                .json_body(schema_ref("SendMessageRequest"), true)
                .response(200, "Successful Response", Some(schema_ref("Success")))
                .response(404, "Conversation not found", None)
                .response(429, "Run limit reached", None),
        );
}
