//! `/sockets/bash-events`: the server-level bash events, live (websocket.md §5).
//!
//! Authentication as on every socket ([`crate::http::socket`]). No initial
//! frame; with `resend_mode=all` (or the deprecated `resend_all=true`) every
//! stored event comes first, oldest first. Frames are the events' JSON with
//! nulls. A client frame is an `ExecuteBashRequest` that starts a command; a
//! frame that is not one gets a `BashError` frame back and the socket stays
//! open. Beyond 50 subscribers the socket closes with 1013.

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::api::validation::{Loc, ValidationErrorItem};
use crate::bash::{
    validation_text, BashError, BashEvent, BashService, BashServiceError, ExecuteBashRequest,
};
use crate::http::socket::{self, Keepalive, KeepaliveAction, SocketAuth};
use crate::http::ws::{self, WebSocket};
use crate::http::{body, ApiError, HandlerResult, Request, Route, RouteTable};

/// Adds the route.
pub fn register(table: &mut RouteTable) {
    table.add(
        Route::get("/sockets/bash-events", bash_events_socket)
            .summary("Bash Events Socket")
            .description(
                "WebSocket of the server-level bash events. Query: `session_api_key`, \
                 `resend_mode` (`all`). Send `ExecuteBashRequest` frames to start commands.",
            )
            .tag("WebSockets")
            .query_param(
                "session_api_key",
                false,
                json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
            )
            .query_param(
                "resend_mode",
                false,
                json!({"anyOf": [{"const": "all", "type": "string"}, {"type": "null"}]}),
            ),
    );
}

async fn bash_events_socket(mut req: Request) -> HandlerResult {
    let auth = SocketAuth::of(&req);
    let params = req.params();
    let resend = params.str("resend_mode").as_deref() == Some("all")
        || params.str("resend_all").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
    let (response, socket) = ws::upgrade(&mut req)?;
    let state = req.state().clone();
    let keys = req.api_keys().clone();
    tokio::spawn(async move {
        let Ok(mut socket) = socket.await else {
            return;
        };
        if !socket::authenticate(&mut socket, auth, &keys).await {
            return;
        }
        let service = match state.bash.global().await {
            Ok(service) => service,
            Err(e) => {
                tracing::error!("bash events socket: {e}");
                socket::close(&mut socket, 1011, "Bash event service is not available").await;
                return;
            }
        };
        serve(socket, service, resend, state.shutdown.clone()).await;
    });
    Ok(response)
}

async fn serve(
    mut socket: WebSocket,
    service: BashService,
    resend: bool,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut subscription = match service.subscribe(resend) {
        Ok(subscription) => subscription,
        Err(BashServiceError::TooManySubscribers) => {
            tracing::warn!("subscriber limit reached for bash events");
            socket::close(
                &mut socket,
                socket::TRY_AGAIN_LATER,
                "Too many bash event connections",
            )
            .await;
            return;
        }
        Err(e) => {
            socket::close(&mut socket, 1001, &e.to_string()).await;
            return;
        }
    };
    let (mut sink, mut stream) = socket.split();
    let mut keepalive = Keepalive::new(socket::PING_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = sink.send(socket::close_message(1001, "Server shutting down")).await;
                break;
            }
            event = subscription.next() => {
                let Some(event) = event else {
                    let _ = sink.send(socket::close_message(1001, "Server shutting down")).await;
                    break;
                };
                if send_json(&mut sink, &event.to_json()).await.is_err() {
                    break;
                }
            }
            action = keepalive.tick() => {
                let message = match action {
                    KeepaliveAction::Ping(payload) => Message::Ping(payload.into()),
                    KeepaliveAction::TimedOut => {
                        let _ = sink.send(socket::ping_timeout_message()).await;
                        break;
                    }
                };
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                    Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Some(Ok(Message::Pong(_))) => {
                        keepalive.pong();
                        continue;
                    }
                    // The protocol layer queued the pong; send it now.
                    Some(Ok(Message::Ping(_))) => {
                        if sink.flush().await.is_err() {
                            break;
                        }
                        continue;
                    }
                    Some(Ok(Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                if let Some(error) = handle_frame(&service, &text).await {
                    if send_json(&mut sink, &BashEvent::Error(error).to_json()).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

async fn send_json(
    sink: &mut SplitSink<WebSocket, Message>,
    value: &Value,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    sink.send(Message::Text(value.to_string().into())).await
}

/// Starts the command a client frame asks for; a frame that is not a
/// request gets the error to send back, worded as Python words it.
async fn handle_frame(service: &BashService, text: &str) -> Option<BashError> {
    let value = match parse_frame(text) {
        Ok(value) => value,
        Err(detail) => return Some(BashError::new("JSONDecodeError", detail)),
    };
    if socket::is_auth_control_frame(&value) {
        return None;
    }
    let request = match request_of(&value) {
        Ok(request) => request,
        Err(detail) => return Some(BashError::new("ValidationError", detail)),
    };
    match service.start(request).await {
        Ok(_) => None,
        Err(e) => Some(BashError::new("RuntimeError", e.to_string())),
    }
}

/// Parses a frame as JSON; the error is `json.loads`' message
/// (`Expecting value: line 1 column 1 (char 0)`).
fn parse_frame(text: &str) -> Result<Value, String> {
    let expecting_value = || python_json_error(text, "Expecting value", 0);
    match body::parse_json(Some("application/json"), text.as_bytes()) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(expecting_value()),
        Err(ApiError::Validation(items)) => {
            let Some(item) = items.first() else {
                return Err(expecting_value());
            };
            let message = item
                .ctx
                .as_ref()
                .and_then(|c| c.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("Expecting value");
            let mut position = match item.loc.get(1) {
                Some(Loc::Index(position)) => *position,
                _ => 0,
            };
            if message == "Expecting value" {
                // Python points at the start of a misspelt literal (`nul`), serde after it.
                let chars: Vec<char> = text.chars().take(position).collect();
                position -= chars
                    .iter()
                    .rev()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
            }
            Err(python_json_error(text, message, position))
        }
        Err(_) => Err(expecting_value()),
    }
}

/// `<message>: line L column C (char P)`, with `position` in characters.
fn python_json_error(text: &str, message: &str, position: usize) -> String {
    let before: String = text.chars().take(position).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    format!("{message}: line {line} column {column} (char {position})")
}

/// Validates a frame into a request; the error is pydantic's text.
fn request_of(value: &Value) -> Result<ExecuteBashRequest, String> {
    if !value.is_object() {
        let item = ValidationErrorItem::new(
            "model_type",
            Vec::new(),
            "Input should be a valid dictionary or instance of ExecuteBashRequest",
            value.clone(),
            None,
        );
        return Err(validation_text("ExecuteBashRequest", &[item]));
    }
    ExecuteBashRequest::from_json(value)
        .map_err(|errors| validation_text("ExecuteBashRequest", &errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_read_like_python() {
        // json.loads' messages for the same inputs.
        assert_eq!(
            parse_frame("").unwrap_err(),
            "Expecting value: line 1 column 1 (char 0)"
        );
        assert_eq!(
            parse_frame("{bad").unwrap_err(),
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
        );
        assert_eq!(
            parse_frame("nul").unwrap_err(),
            "Expecting value: line 1 column 1 (char 0)"
        );
        assert_eq!(
            parse_frame("[1,]").unwrap_err(),
            "Expecting value: line 1 column 4 (char 3)"
        );
        assert_eq!(
            parse_frame("{\n \"a\": x}").unwrap_err(),
            "Expecting value: line 2 column 7 (char 8)"
        );
    }

    #[test]
    fn validation_errors_read_like_pydantic() {
        assert_eq!(
            request_of(&json!([1])).unwrap_err(),
            "1 validation error for ExecuteBashRequest\n  Input should be a valid dictionary or instance of ExecuteBashRequest [type=model_type, input_value=[1], input_type=list]"
        );
        assert_eq!(
            request_of(&json!({})).unwrap_err(),
            "1 validation error for ExecuteBashRequest\ncommand\n  Field required [type=missing, input_value={}, input_type=dict]"
        );
        assert_eq!(request_of(&json!({"command": "ls"})).unwrap().command, "ls");
    }
}
