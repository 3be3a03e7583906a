//! The conversation lifecycle routes the agent runtime serves (api.md §3.8,
//! §5.6): `run`, `pause`, `interrupt`, `events/respond_to_confirmation`,
//! `ask_agent`, `condense` and `generate_title`.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::conversations::{api_error, record, service};
use crate::agent::{AgentError, AgentRuntime};
use crate::api::conversation::{
    ask_agent_response, AskAgentRequest, ConfirmationResponseRequest, GenerateTitleRequest,
};
use crate::conversations::{Conversation, ConversationService, RunError};
use crate::http::{response, schema_ref, ApiError, HandlerResult, Request, Route, RouteTable};
use crate::util::ids;

const TAG: &str = "Conversations";

fn path_id(req: &Request) -> Result<Uuid, ApiError> {
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    p.finish()?;
    id.ok_or_else(|| ApiError::internal("parameters checked"))
}

fn runtime(req: &Request) -> Result<AgentRuntime, ApiError> {
    req.state().agent().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server is still initializing",
        )
    })
}

async fn conversation(
    svc: &Arc<ConversationService>,
    id: Uuid,
    not_found: &str,
) -> Result<Arc<Conversation>, ApiError> {
    svc.load(id)
        .await
        .map_err(|e| api_error(e, not_found))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, not_found))
}

fn success() -> HandlerResult {
    response::json(&json!({"success": true}))
}

fn run_refused(e: RunError) -> ApiError {
    match e {
        RunError::AlreadyRunning => ApiError::conflict(e.to_string()),
        RunError::Capacity => ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        RunError::Refused(reason) => ApiError::bad_request(reason),
        RunError::Unavailable => ApiError::bad_request("inactive_service"),
    }
}

fn agent_error(e: AgentError) -> ApiError {
    match e {
        AgentError::Conflict(m) => ApiError::conflict(m),
        AgentError::Failed(m) => ApiError::internal(m),
    }
}

async fn run(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let id = path_id(&req)?;
    req.state().touch();
    match svc.run(id).await.map_err(|e| api_error(e, "Not Found"))? {
        None => Err(ApiError::not_found()),
        Some(Ok(())) => success(),
        Some(Err(e)) => Err(run_refused(e)),
    }
}

async fn pause(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let id = path_id(&req)?;
    if svc.pause(id).await.map_err(|e| api_error(e, "Not Found"))? {
        success()
    } else {
        Err(ApiError::not_found())
    }
}

async fn interrupt(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let id = path_id(&req)?;
    if svc
        .interrupt(id)
        .await
        .map_err(|e| api_error(e, "Not Found"))?
    {
        success()
    } else {
        Err(ApiError::not_found())
    }
}

async fn respond_to_confirmation(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let rt = runtime(&req)?;
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let body = req.json_value().await?;
    let answer = record(&mut p, ConfirmationResponseRequest::from_body(&body));
    p.finish()?;
    let (Some(id), Some(answer)) = (id, answer) else {
        return Err(ApiError::internal("parameters checked"));
    };
    let not_found = format!("Conversation not found: {}", ids::dashed(&id));
    let conv = conversation(&svc, id, &not_found).await?;
    req.state().touch();
    if answer.accept {
        match svc.run(id).await.map_err(|e| api_error(e, &not_found))? {
            None => return Err(ApiError::new(StatusCode::NOT_FOUND, not_found)),
            Some(Ok(())) | Some(Err(RunError::AlreadyRunning)) => {}
            Some(Err(e)) => return Err(run_refused(e)),
        }
    } else {
        rt.reject_pending(&conv, &answer.reason)
            .await
            .map_err(agent_error)?;
    }
    success()
}

async fn ask_agent(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let rt = runtime(&req)?;
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let body = req.json_value().await?;
    let ask = record(&mut p, AskAgentRequest::from_body(&body));
    p.finish()?;
    let (Some(id), Some(ask)) = (id, ask) else {
        return Err(ApiError::internal("parameters checked"));
    };
    let conv = conversation(&svc, id, "Conversation not found").await?;
    let answer = rt
        .ask_agent(&conv, &ask.question)
        .await
        .map_err(agent_error)?;
    response::json(&ask_agent_response(&answer))
}

async fn condense(req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let rt = runtime(&req)?;
    let id = path_id(&req)?;
    let conv = conversation(&svc, id, "Conversation not found").await?;
    req.state().touch();
    rt.condense(&conv).await.map_err(agent_error)?;
    success()
}

async fn generate_title(mut req: Request) -> HandlerResult {
    let svc = service(&req)?;
    let rt = runtime(&req)?;
    let mut p = req.params();
    let id = p.path_uuid("conversation_id");
    let body = req.optional_json_value().await?;
    let ask = record(&mut p, GenerateTitleRequest::from_body(body.as_ref()));
    p.finish()?;
    let (Some(id), Some(ask)) = (id, ask) else {
        return Err(ApiError::internal("parameters checked"));
    };
    let conv = conversation(&svc, id, "Not Found").await?;
    let title = rt
        .generate_title(&conv, ask.max_length, ask.llm)
        .await
        .map_err(agent_error)?;
    response::json(&json!({ "title": title }))
}

fn object(title: &str, properties: serde_json::Value, required: &[&str]) -> serde_json::Value {
    json!({"type": "object", "title": title, "properties": properties, "required": required})
}

/// Adds the routes and their schemas.
pub fn register(table: &mut RouteTable) {
    table
        .schema(
            "ConfirmationResponseRequest",
            object(
                "ConfirmationResponseRequest",
                json!({"accept": {"type": "boolean"},
                       "reason": {"type": "string", "default": "User rejected the action."}}),
                &["accept"],
            ),
        )
        .schema(
            "AskAgentRequest",
            object(
                "AskAgentRequest",
                json!({"question": {"type": "string"}}),
                &["question"],
            ),
        )
        .schema(
            "AskAgentResponse",
            object(
                "AskAgentResponse",
                json!({"response": {"type": "string"}}),
                &["response"],
            ),
        )
        .schema(
            "GenerateTitleRequest",
            object(
                "GenerateTitleRequest",
                json!({"max_length": {"type": "integer", "minimum": 1, "default": 50},
                       "llm": {"type": ["object", "null"]}}),
                &[],
            ),
        )
        .schema(
            "GenerateTitleResponse",
            object(
                "GenerateTitleResponse",
                json!({"title": {"type": "string"}}),
                &["title"],
            ),
        );
    let id = |r: Route| {
        r.path_param(
            "conversation_id",
            json!({"type": "string", "format": "uuid"}),
        )
    };
    table
        .add(
            id(Route::post("/api/conversations/{conversation_id}/run", run))
                .summary("Run Conversation")
                .description("Starts the agent in the background; 409 when it is already running.")
                .tag(TAG)
                .response(200, "Successful Response", Some(schema_ref("Success")))
                .response(404, "Item not found", None)
                .response(409, "Conversation is already running", None)
                .response(429, "Server conversation run capacity is full", None),
        )
        .add(
            id(Route::post(
                "/api/conversations/{conversation_id}/pause",
                pause,
            ))
            .summary("Pause Conversation")
            .description("Pauses between agent steps (an LLM call in progress completes first).")
            .tag(TAG)
            .response(200, "Successful Response", Some(schema_ref("Success")))
            .response(404, "Item not found", None),
        )
        .add(
            id(Route::post(
                "/api/conversations/{conversation_id}/interrupt",
                interrupt,
            ))
            .summary("Interrupt Conversation")
            .description("Cancels the LLM call or tool in progress and pauses.")
            .tag(TAG)
            .response(200, "Successful Response", Some(schema_ref("Success")))
            .response(404, "Item not found", None),
        )
        .add(
            id(Route::post(
                "/api/conversations/{conversation_id}/events/respond_to_confirmation",
                respond_to_confirmation,
            ))
            .summary("Respond To Confirmation")
            .description(
                "`accept: true` runs the pending actions; `false` rejects them with `reason`.",
            )
            .tag("Events")
            .json_body(schema_ref("ConfirmationResponseRequest"), true)
            .response(200, "Successful Response", Some(schema_ref("Success")))
            .response(404, "Item not found", None)
            .response(429, "Server conversation run capacity is full", None),
        )
        .add(
            id(Route::post(
                "/api/conversations/{conversation_id}/ask_agent",
                ask_agent,
            ))
            .summary("Ask Agent")
            .description("One LLM call on the conversation so far; nothing is recorded.")
            .tag(TAG)
            .json_body(schema_ref("AskAgentRequest"), true)
            .response(
                200,
                "Successful Response",
                Some(schema_ref("AskAgentResponse")),
            )
            .response(404, "Item not found", None),
        )
        .add(
            id(Route::post(
                "/api/conversations/{conversation_id}/condense",
                condense,
            ))
            .summary("Condense Conversation")
            .description("Asks the condenser to summarise the history now.")
            .tag(TAG)
            .response(200, "Successful Response", Some(schema_ref("Success")))
            .response(404, "Item not found", None)
            .response(
                409,
                "The agent has no condenser that handles requests",
                None,
            ),
        )
        .add(
            id(Route::post(
                "/api/conversations/{conversation_id}/generate_title",
                generate_title,
            ))
            .summary("Generate Conversation Title")
            .description("A title for the conversation's first user message (not stored).")
            .tag(TAG)
            .json_body(schema_ref("GenerateTitleRequest"), false)
            .response(
                200,
                "Successful Response",
                Some(schema_ref("GenerateTitleResponse")),
            )
            .response(404, "Item not found", None),
        );
}
