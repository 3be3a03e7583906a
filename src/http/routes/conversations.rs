//! `/api/conversations`: search, count, batch get, get, create, update,
//! delete, secrets, confirmation policy, security analyzer and the final
//! response (api.md §3). The lifecycle actions (`run`, `pause`, …) belong to
//! the agent routes.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::api::conversation::{
    parse_batch_ids, parse_count_query, parse_include_skills, ConversationSearchQuery,
    SetConfirmationPolicyRequest, SetSecurityAnalyzerRequest, StartConversationRequest,
    UpdateConversationRequest, UpdateSecretsRequest,
};
use crate::api::validation::{Loc, ValidationErrorItem};
use crate::conversations::{ConversationService, JsonText, ServiceError};
use crate::http::{
    params, response, schema_ref, ApiError, HandlerResult, Params, Request, Route, RouteTable,
};

const TAG: &str = "Conversations";

/// The service of the request's server.
pub(super) fn service(req: &Request) -> Result<Arc<ConversationService>, ApiError> {
    req.state().conversation_service().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server is still initializing",
        )
    })
}

/// The decoded query pairs, repeated keys kept.
pub(super) fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (params::decode(k), params::decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A service error as the HTTP answer; `not_found` is the route's 404 body.
pub(super) fn api_error(e: ServiceError, not_found: &str) -> ApiError {
    match e {
        ServiceError::Validation(items) => ApiError::validation(items),
        ServiceError::Unprocessable(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
        ServiceError::BadRequest(m) => ApiError::bad_request(m),
        ServiceError::NotFound => ApiError::new(StatusCode::NOT_FOUND, not_found),
        ServiceError::Conflict(m) => ApiError::conflict(m),
        ServiceError::TooManyRequests(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, m),
        ServiceError::TooManySubscribers => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many connections for this conversation",
        ),
        ServiceError::Internal(m) => ApiError::internal(m),
    }
}

/// `200` with an already serialised body.
pub(super) fn json_text(text: JsonText) -> HandlerResult {
    Ok(response::json_bytes(StatusCode::OK, text.0))
}

/// Records the items of a failed model parse into the route's parameters.
pub(super) fn record<T>(p: &mut Params, parsed: Result<T, Vec<ValidationErrorItem>>) -> Option<T> {
    match parsed {
        Ok(v) => Some(v),
        Err(items) => {
            for i in items {
                p.error(i);
            }
            None
        }
    }
}

/// Parses the ids of a batch get: each a UUID (`loc` names its index).
fn uuids(ids: &[String], from_query: bool, p: &mut Params) -> Vec<Uuid> {
    ids.iter()
        .enumerate()
        .filter_map(|(i, raw)| match crate::util::ids::parse_uuid(raw) {
            Ok(u) => Some(u),
            Err(e) => {
                let loc = if from_query {
                    vec![Loc::from("query"), Loc::from("ids"), Loc::from(i)]
                } else {
                    vec![Loc::from("body"), Loc::from(i)]
                };
                p.error(ValidationErrorItem::new(
                    "uuid_parsing",
                    loc,
                    format!("Input should be a valid UUID, {e}"),
                    Value::String(raw.clone()),
                    Some(json!({"error": e.to_string()})),
                ));
                None
            }
        })
        .collect()
}

async fn search(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let q =
        ConversationSearchQuery::from_query(&query_pairs(&req)).map_err(ApiError::validation)?;
    json_text(svc.search(&q).await)
}

async fn count(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let status = parse_count_query(&query_pairs(&req)).map_err(ApiError::validation)?;
    response::json(&svc.count(status))
}

async fn batch_get(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let pairs = query_pairs(&req);
    let mut p = req.params();
    let include_skills = record(&mut p, parse_include_skills(&pairs)).unwrap_or(false);
    let from_query = pairs.iter().any(|(k, _)| k == "ids");
    let body = if from_query {
        None
    } else {
        req.optional_json_value().await?
    };
    let ids = record(
        &mut p,
        parse_batch_ids(&pairs, "ids", body.as_ref(), Some(99)),
    )
    .unwrap_or_default();
    let ids = uuids(&ids, from_query, &mut p);
    p.finish()?;
    json_text(svc.batch_get(&ids, include_skills).await)
}

async fn get_conversation(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let include_skills = record(&mut p, parse_include_skills(&query_pairs(&req)));
    p.finish()?;
    let (Some(id), Some(include_skills)) = (id, include_skills) else {
        return Err(ApiError::internal("parameters checked"));
    };
    match svc
        .get_info(id, include_skills)
        .await
        .map_err(|e| api_error(e, "Not Found"))?
    {
        Some(info) => json_text(info),
        None => Err(ApiError::not_found()),
    }
}

/// The observability headers fill the matching body fields the body leaves out.
fn apply_observability_headers(req: &Request, body: &mut Value) -> Result<(), ApiError> {
    let Some(obj) = body.as_object_mut() else {
        return Ok(());
    };
    let absent = |obj: &Map<String, Value>, k: &str| obj.get(k).is_none_or(Value::is_null);
    if let Some(name) = req.header("x-openhands-observability-span-name") {
        if absent(obj, "observability_span_name") {
            obj.insert(
                "observability_span_name".into(),
                Value::String(name.to_string()),
            );
        }
    }
    if let Some(tags) = req.header("x-openhands-observability-tags") {
        if obj
            .get("observability_tags")
            .is_none_or(|t| t.as_array().is_none_or(Vec::is_empty))
        {
            let list: Vec<Value> = tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::String(t.to_string()))
                .collect();
            obj.insert("observability_tags".into(), Value::Array(list));
        }
    }
    if let Some(meta) = req.header("x-openhands-observability-metadata") {
        let parsed: Option<Map<String, Value>> = serde_json::from_str(meta).ok();
        let Some(parsed) = parsed else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "X-OpenHands-Observability-Metadata must be a JSON object",
            ));
        };
        if obj
            .get("observability_metadata")
            .is_none_or(|m| m.as_object().is_none_or(Map::is_empty))
        {
            obj.insert("observability_metadata".into(), Value::Object(parsed));
        }
    }
    if let Some(ctx) = req.header("x-openhands-observability-parent-span-context") {
        if absent(obj, "observability_parent_span_context") {
            obj.insert(
                "observability_parent_span_context".into(),
                Value::String(ctx.to_string()),
            );
        }
    }
    Ok(())
}

async fn create(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let mut p = req.params();
    let include_skills = record(&mut p, parse_include_skills(&query_pairs(&req)));
    let mut body = req.json_value().await?;
    apply_observability_headers(&req, &mut body)?;
    let start = record(&mut p, StartConversationRequest::from_body(&body));
    p.finish()?;
    let (Some(start), Some(include_skills)) = (start, include_skills) else {
        return Err(ApiError::internal("body checked"));
    };
    if StartConversationRequest::wants_foreign_runtime(&body) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This server only runs local conversations",
        ));
    }
    let (info, created) = svc
        .create(start, include_skills)
        .await
        .map_err(|e| api_error(e, "Not Found"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(response::json_bytes(status, info.0))
}

/// A path id and a body model, validated together (FastAPI reports both).
async fn id_and_body<T>(
    req: &mut Request,
    parse: fn(&Value) -> Result<T, Vec<ValidationErrorItem>>,
) -> Result<(Uuid, T), ApiError> {
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let body = req.json_value().await?;
    let model = record(&mut p, parse(&body));
    p.finish()?;
    match (id, model) {
        (Some(id), Some(model)) => Ok((id, model)),
        _ => Err(ApiError::internal("parameters checked")),
    }
}

fn path_id(req: &Request) -> Result<Uuid, ApiError> {
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    p.finish()?;
    id.ok_or_else(|| ApiError::internal("parameters checked"))
}

fn success(found: bool) -> HandlerResult {
    if found {
        response::json(&json!({"success": true}))
    } else {
        Err(ApiError::not_found())
    }
}

async fn update(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let (id, body) = id_and_body(&mut req, UpdateConversationRequest::from_body).await?;
    success(
        svc.update(id, body)
            .await
            .map_err(|e| api_error(e, "Not Found"))?,
    )
}

async fn delete(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let id = path_id(&req)?;
    success(
        svc.delete(id)
            .await
            .map_err(|e| api_error(e, "Not Found"))?,
    )
}

async fn update_secrets(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let (id, body) = id_and_body(&mut req, UpdateSecretsRequest::from_body).await?;
    success(
        svc.update_secrets(id, body.secrets)
            .await
            .map_err(|e| api_error(e, "Not Found"))?,
    )
}

async fn set_confirmation_policy(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let (id, body) = id_and_body(&mut req, SetConfirmationPolicyRequest::from_body).await?;
    success(
        svc.set_confirmation_policy(id, body.policy)
            .await
            .map_err(|e| api_error(e, "Not Found"))?,
    )
}

async fn set_security_analyzer(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let (id, body) = id_and_body(&mut req, SetSecurityAnalyzerRequest::from_body).await?;
    success(
        svc.set_security_analyzer(id, body.security_analyzer)
            .await
            .map_err(|e| api_error(e, "Not Found"))?,
    )
}

async fn agent_final_response(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let id = path_id(&req)?;
    match svc
        .agent_final_response(id)
        .await
        .map_err(|e| api_error(e, "Not Found"))?
    {
        Some(text) => response::json(&json!({ "response": text })),
        None => Err(ApiError::not_found()),
    }
}

fn uuid_schema() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn include_skills_schema() -> Value {
    json!({"type": "boolean", "default": false, "title": "Whether to include agent.agent_context.skills in the response"})
}

fn status_schema() -> Value {
    json!({"type": "string", "enum": ["idle","running","paused","waiting_for_confirmation","finished","error","stuck","deleting"]})
}

fn object(title: &str, properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "title": title, "properties": properties, "required": required})
}

/// Adds the routes and their schemas.
pub fn register(table: &mut RouteTable) {
    table
        .schema("Success", object("Success", json!({"success": {"type": "boolean", "default": true}}), &[]))
        .schema(
            "ConversationInfo",
            object(
                "ConversationInfo",
                json!({
                    "id": uuid_schema(),
                    "workspace": {"type": "object"},
                    "persistence_dir": {"type": ["string", "null"]},
                    "max_iterations": {"type": "integer", "exclusiveMinimum": 0},
                    "stuck_detection": {"type": "boolean"},
                    "execution_status": status_schema(),
                    "confirmation_policy": {"type": "object"},
                    "security_analyzer": {"type": ["object", "null"]},
                    "activated_knowledge_skills": {"type": "array", "items": {"type": "string"}},
                    "invoked_skills": {"type": "array", "items": {"type": "string"}},
                    "blocked_actions": {"type": "object", "additionalProperties": {"type": "string"}},
                    "blocked_messages": {"type": "object", "additionalProperties": {"type": "string"}},
                    "last_user_message_id": {"type": ["string", "null"]},
                    "leaf_event_id": {"type": ["string", "null"]},
                    "stats": {"type": "object"},
                    "secret_registry": {"type": "object"},
                    "agent_state": {"type": "object"},
                    "hook_config": {"type": ["object", "null"]},
                    "title": {"type": ["string", "null"]},
                    "metrics": {"type": ["object", "null"]},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "forked_from_conversation_id": {"type": ["string", "null"], "format": "uuid"},
                    "forked_from_event_id": {"type": ["string", "null"]},
                    "parent_conversation_id": {"type": ["string", "null"], "format": "uuid"},
                    "sub_conversation_ids": {"type": "array", "items": uuid_schema()},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "current_model_id": {"type": ["string", "null"]},
                    "available_models": {"type": "array", "items": {"type": "object"}},
                    "supports_runtime_model_switch": {"type": "boolean"},
                    "launched_agent_profile": {"type": ["object", "null"]},
                    "agent": {"type": "object", "description": "The agent (kind `Agent`) with every default filled; secret values are null."},
                    "client_tools": {"type": "array", "items": {"type": "object"}},
                    "tool_module_qualnames": {"type": "object", "additionalProperties": {"type": "string"}},
                    "runtime_info": {"type": ["object", "null"]}
                }),
                &["id", "workspace", "agent"],
            ),
        )
        .schema(
            "ConversationPage",
            object(
                "ConversationPage",
                json!({"items": {"type": "array", "items": schema_ref("ConversationInfo")}, "next_page_id": {"type": ["string", "null"]}}),
                &["items"],
            ),
        )
        .schema(
            "StartConversationRequest",
            object(
                "StartConversationRequest",
                json!({
                    "workspace": {"type": "object", "properties": {"working_dir": {"type": "string"}, "kind": {"const": "LocalWorkspace"}}, "required": ["working_dir"]},
                    "agent": {"type": "object", "description": "Agent with `llm`, `tools`, `mcp_config`, `condenser`, `agent_context`, …"},
                    "conversation_id": {"type": ["string", "null"], "format": "uuid"},
                    "parent_conversation_id": {"type": ["string", "null"], "format": "uuid"},
                    "confirmation_policy": {"type": "object"},
                    "security_analyzer": {"type": ["object", "null"]},
                    "initial_message": {"anyOf": [schema_ref("SendMessageRequest"), {"type": "null"}]},
                    "max_iterations": {"type": "integer", "minimum": 1, "default": 500},
                    "stuck_detection": {"type": "boolean", "default": true},
                    "secrets": {"type": "object", "additionalProperties": {"type": "object"}},
                    "secrets_encrypted": {"type": "boolean", "default": false},
                    "tool_module_qualnames": {"type": "object", "additionalProperties": {"type": "string"}},
                    "client_tools": {"type": "array", "items": {"type": "object"}},
                    "hook_config": {"type": ["object", "null"]},
                    "plugins": {"type": ["array", "null"]},
                    "tags": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 256}},
                    "autotitle": {"type": "boolean", "default": true},
                    "conversation_runtime": {"enum": ["local", "docker", null]}
                }),
                &["workspace"],
            ),
        )
        .schema(
            "UpdateConversationRequest",
            object(
                "UpdateConversationRequest",
                json!({"title": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
                       "tags": {"type": ["object", "null"], "additionalProperties": {"type": "string"}}}),
                &[],
            ),
        )
        .schema(
            "UpdateSecretsRequest",
            object(
                "UpdateSecretsRequest",
                json!({"secrets": {"type": "object", "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "object"}]}}}),
                &["secrets"],
            ),
        )
        .schema(
            "SetConfirmationPolicyRequest",
            object("SetConfirmationPolicyRequest", json!({"policy": {"type": "object"}}), &["policy"]),
        )
        .schema(
            "SetSecurityAnalyzerRequest",
            object(
                "SetSecurityAnalyzerRequest",
                json!({"security_analyzer": {"type": ["object", "null"]}}),
                &["security_analyzer"],
            ),
        )
        .schema(
            "AgentResponseResult",
            object("AgentResponseResult", json!({"response": {"type": "string"}}), &["response"]),
        );

    let id = |r: Route| r.path_param("conversation_id", uuid_schema());
    table
        .add(
            Route::get("/api/conversations/search", search)
                .summary("Search Conversations")
                .tag(TAG)
                .query_param("page_id", false, json!({"type": ["string", "null"]}))
                .query_param("limit", false, json!({"type": "integer", "exclusiveMinimum": 0, "maximum": 100, "default": 100}))
                .query_param("status", false, status_schema())
                .query_param(
                    "sort_order",
                    false,
                    json!({"enum": ["CREATED_AT", "UPDATED_AT", "CREATED_AT_DESC", "UPDATED_AT_DESC"], "default": "CREATED_AT_DESC"}),
                )
                .query_param("include_skills", false, include_skills_schema())
                .response(200, "Successful Response", Some(schema_ref("ConversationPage"))),
        )
        .add(
            Route::get("/api/conversations/count", count)
                .summary("Count Conversations")
                .tag(TAG)
                .query_param("status", false, status_schema())
                .response(200, "Successful Response", Some(json!({"type": "integer"}))),
        )
        .add(
            Route::get("/api/conversations", batch_get)
                .summary("Batch Get Conversations")
                .description("Ids as repeated `ids` query parameters (at most 99) or as a JSON array body; the query wins.")
                .tag(TAG)
                .query_param("ids", true, json!({"type": "array", "items": uuid_schema(), "maxItems": 99}))
                .query_param("include_skills", false, include_skills_schema())
                .response(
                    200,
                    "Successful Response",
                    Some(json!({"type": "array", "items": {"anyOf": [schema_ref("ConversationInfo"), {"type": "null"}]}})),
                ),
        )
        .add(
            Route::post("/api/conversations", create)
                .summary("Start Conversation")
                .description("Creates a conversation (201), or returns the existing one with the same `conversation_id` unchanged (200).")
                .tag(TAG)
                .query_param("include_skills", false, include_skills_schema())
                .json_body(schema_ref("StartConversationRequest"), true)
                .response(201, "Created", Some(schema_ref("ConversationInfo")))
                .response(200, "Already exists", Some(schema_ref("ConversationInfo")))
                .response(400, "Unusable working directory", None)
                .response(429, "Run limit reached", None),
        )
        .add(
            id(Route::get("/api/conversations/{conversation_id}", get_conversation))
                .summary("Get Conversation")
                .tag(TAG)
                .query_param("include_skills", false, include_skills_schema())
                .response(200, "Successful Response", Some(schema_ref("ConversationInfo")))
                .response(404, "Item not found", None),
        )
        .add(
            id(Route::patch("/api/conversations/{conversation_id}", update))
                .summary("Update Conversation")
                .tag(TAG)
                .json_body(schema_ref("UpdateConversationRequest"), true)
                .response(200, "Successful Response", Some(schema_ref("Success")))
                .response(404, "Item not found", None),
        )
        .add(
            id(Route::delete("/api/conversations/{conversation_id}", delete))
                .summary("Delete Conversation")
                .tag(TAG)
                .response(200, "Successful Response", Some(schema_ref("Success")))
                .response(404, "Item not found", None),
        )
        .add(
            id(Route::post("/api/conversations/{conversation_id}/secrets", update_secrets))
                .summary("Update Conversation Secrets")
                .tag(TAG)
                .json_body(schema_ref("UpdateSecretsRequest"), true)
                .response(200, "Successful Response", Some(schema_ref("Success")))
                .response(404, "Item not found", None),
        )
        .add(
            id(Route::post("/api/conversations/{conversation_id}/confirmation_policy", set_confirmation_policy))
                .summary("Set Conversation Confirmation Policy")
                .description("Also accepts the npm client's `{\"type\":\"always\"|\"never\"|\"risky\"}`; the policy survives a restart.")
                .tag(TAG)
                .json_body(schema_ref("SetConfirmationPolicyRequest"), true)
                .response(200, "Successful Response", Some(schema_ref("Success")))
                .response(404, "Item not found", None),
        )
        .add(
            id(Route::post("/api/conversations/{conversation_id}/security_analyzer", set_security_analyzer))
                .summary("Set Conversation Security Analyzer")
                .tag(TAG)
                .json_body(schema_ref("SetSecurityAnalyzerRequest"), true)
                .response(200, "Successful Response", Some(schema_ref("Success")))
                .response(404, "Item not found", None),
        )
        .add(
            id(Route::get("/api/conversations/{conversation_id}/agent_final_response", agent_final_response))
                .summary("Get Conversation Agent Final Response")
                .tag(TAG)
                .response(200, "Successful Response", Some(schema_ref("AgentResponseResult")))
                .response(404, "Item not found", None),
        );
}
