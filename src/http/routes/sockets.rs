//! `GET /sockets/events/{conversation_id}`: the conversation event stream
//! (websocket.md §1–4, DECISIONS.md).
//!
//! Handshake: a conversation id that is not a UUID, or an invalid
//! `resend_mode`/`after_timestamp`/`resend_all`, is refused with `403`.
//! Auth: a key in the `session_api_key` query or the `X-Session-API-Key`
//! header, else a first frame `{"type":"auth","session_api_key":…}` within
//! 10 s; a wrong key closes with 4001. An unknown conversation closes with
//! 4004, a full one with 1013. Then: the `full_state` snapshot, the replay,
//! live frames. Client text frames are messages (appended and run) or auth
//! frames (ignored); bad ones get a `ServerErrorEvent` on this socket only.
//! The server pings every 20 s and closes with 1011 when no pong came back
//! within 20 s.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;

use super::conversations::{query_pairs, service};
use crate::api::conversation::{parse_socket_frame, SocketFrame};
use crate::conversations::{
    server_error_frame, ConversationService, ReplayMode, SendOutcome, ServiceError,
};
use crate::http::auth::{ApiKeys, SESSION_API_KEY_HEADER};
use crate::http::ws::{self, WebSocket};
use crate::http::{response, HandlerResult, Request, Route, RouteTable};
use crate::server::AppState;

/// Time a client has to send its first-message auth.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Server pings this often; a ping unanswered for as long closes the socket.
const PING_INTERVAL: Duration = Duration::from_secs(20);

/// A frame the client does not take within this long ends the socket.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// How the socket authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// Accepted (no keys configured, or a valid key in the query or header).
    Accepted,
    /// A wrong key in the query or header: close with 4001.
    Refused,
    /// No key given: the first frame must authenticate.
    FirstMessage,
}

fn forbidden() -> HandlerResult {
    Ok(response::empty(StatusCode::FORBIDDEN))
}

/// The replay a socket asked for; `None` when a parameter is invalid.
fn replay_mode(pairs: &[(String, String)]) -> Option<ReplayMode> {
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let after_ts = match get("after_timestamp") {
        None => None,
        Some(t) => Some(crate::util::time::parse_client_timestamp(t)?.as_microsecond()),
    };
    let resend_all = match get("resend_all").map(|s| s.to_ascii_lowercase()) {
        None => false,
        Some(s) => match s.as_str() {
            "1" | "true" | "on" | "yes" | "t" | "y" => true,
            "0" | "false" | "off" | "no" | "f" | "n" => false,
            _ => return None,
        },
    };
    let mode = match get("resend_mode") {
        None => None,
        Some("all") => Some(ReplayMode::All),
        Some("since") => match after_ts {
            Some(ts) => Some(ReplayMode::Since(ts)),
            None => {
                tracing::warn!("resend_mode=since without after_timestamp: nothing is replayed");
                Some(ReplayMode::None)
            }
        },
        Some(_) => return None,
    };
    Some(match get("after_event_id") {
        Some(id) if !id.is_empty() => ReplayMode::AfterEvent(id.to_string()),
        _ => mode.unwrap_or(if resend_all {
            ReplayMode::All
        } else {
            ReplayMode::None
        }),
    })
}

async fn events_socket(mut req: Request) -> HandlerResult {
    let mut p = req.params();
    let Some(id) = p.path_uuid("conversation_id") else {
        return forbidden();
    };
    let pairs = query_pairs(&req);
    let Some(mode) = replay_mode(&pairs) else {
        return forbidden();
    };
    let svc = service(&req)?;
    let keys = req.api_keys().clone();
    let given = pairs
        .iter()
        .find(|(k, _)| k == "session_api_key")
        .map(|(_, v)| v.clone())
        .or_else(|| req.header(SESSION_API_KEY_HEADER).map(String::from));
    let auth = if keys.is_open() {
        Auth::Accepted
    } else {
        match &given {
            Some(k) if keys.allows(Some(k)) => Auth::Accepted,
            Some(_) => Auth::Refused,
            None => Auth::FirstMessage,
        }
    };
    let state = req.state().clone();
    let (response, socket) = ws::upgrade(&mut req)?;
    tokio::spawn(async move {
        let Ok(socket) = socket.await else { return };
        run(socket, svc, id, mode, auth, keys, state).await;
    });
    Ok(response)
}

async fn close(ws: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
    // Let the client's close reply arrive, bounded.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Waits for `{"type":"auth","session_api_key":…}` as the first text frame.
async fn first_message_auth(ws: &mut WebSocket, keys: &ApiKeys) -> bool {
    let deadline = Instant::now() + AUTH_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next()).await;
        match next {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                let is_auth = v.get("type").and_then(Value::as_str) == Some("auth");
                let key = v
                    .get("session_api_key")
                    .and_then(Value::as_str)
                    .filter(|k| !k.is_empty());
                return is_auth && key.is_some() && keys.allows(key);
            }
            Ok(Some(Ok(Message::Ping(_)))) | Ok(Some(Ok(Message::Pong(_)))) => {
                let _ = ws.flush().await;
            }
            _ => return false,
        }
    }
}

async fn send(ws: &mut WebSocket, text: bytes::Bytes, flush: bool) -> bool {
    let Ok(text) = Utf8Bytes::try_from(text) else {
        return true;
    };
    let op = async {
        ws.feed(Message::Text(text)).await?;
        if flush {
            ws.flush().await?;
        }
        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
    };
    matches!(tokio::time::timeout(SEND_TIMEOUT, op).await, Ok(Ok(())))
}

async fn run(
    mut ws: WebSocket,
    svc: Arc<ConversationService>,
    id: Uuid,
    mode: ReplayMode,
    auth: Auth,
    keys: ApiKeys,
    state: Arc<AppState>,
) {
    match auth {
        Auth::Accepted => {}
        Auth::Refused => return close(&mut ws, 4001, "Authentication failed").await,
        Auth::FirstMessage => {
            if !first_message_auth(&mut ws, &keys).await {
                return close(&mut ws, 4001, "Authentication failed").await;
            }
        }
    }
    let mut sub = match svc.subscribe(id, mode).await {
        Ok(Some(s)) => s,
        Ok(None) => return close(&mut ws, 4004, "Conversation not found").await,
        Err(ServiceError::TooManySubscribers) => {
            return close(&mut ws, 1013, "Too many connections for this conversation").await;
        }
        Err(e) => {
            tracing::error!(conversation_id = %id, error = %e, "socket subscription failed");
            return close(&mut ws, 1011, "Internal error").await;
        }
    };
    let shutdown = state.shutdown.clone();
    let mut ticker = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return close(&mut ws, 1001, "Server shutting down").await,
            frame = sub.next() => match frame {
                Some(f) => {
                    // Write every frame that is ready, then flush once; one
                    // deadline for the batch (a client that stops reading
                    // for SEND_TIMEOUT is dropped).
                    let batch = async {
                        let mut next = Some(f);
                        while let Some(f) = next.take() {
                            if let Ok(text) = Utf8Bytes::try_from(f) {
                                ws.feed(Message::Text(text)).await?;
                            }
                            next = sub.try_next_ready();
                        }
                        ws.flush().await
                    };
                    if !matches!(tokio::time::timeout(SEND_TIMEOUT, batch).await, Ok(Ok(()))) {
                        return;
                    }
                }
                None => return close(&mut ws, 1000, "Conversation closed").await,
            },
            incoming = ws.next() => match incoming {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Text(t))) => {
                    state.touch();
                    let reply = handle_client_frame(&svc, id, &t).await;
                    if let Some(err) = reply {
                        if !send(&mut ws, err, true).await {
                            // Python closes with 1000 when the error frame cannot be sent.
                            return close(&mut ws, 1000, "Connection closed").await;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    if !send(&mut ws, server_error_frame("KeyError", "'text'"), true).await {
                        return close(&mut ws, 1000, "Connection closed").await;
                    }
                }
                Some(Ok(Message::Ping(_))) => {
                    // tungstenite queued the pong; send it now, even mid-replay.
                    let _ = ws.flush().await;
                }
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                Some(Ok(Message::Close(_))) => {
                    let _ = ws.flush().await;
                    return;
                }
                Some(Ok(Message::Frame(_))) => {}
            },
            _ = ticker.tick() => {
                if awaiting_pong {
                    return close(&mut ws, 1011, "keepalive ping timeout").await;
                }
                let payload = Uuid::new_v4().as_bytes()[..4].to_vec();
                if ws.send(Message::Ping(payload.into())).await.is_err() {
                    return;
                }
                awaiting_pong = true;
            }
        }
    }
}

/// Handles one text frame from the client; returns the error frame to send back, if any.
async fn handle_client_frame(
    svc: &ConversationService,
    id: Uuid,
    text: &str,
) -> Option<bytes::Bytes> {
    match parse_socket_frame(text) {
        Ok(SocketFrame::Auth) => None,
        Ok(SocketFrame::Message(msg)) => match svc.send_message(id, msg).await {
            Ok(Some(SendOutcome::Stored)) => None,
            Ok(Some(SendOutcome::StoredNoCapacity(detail))) => {
                Some(server_error_frame("RunLimitReached", &detail))
            }
            Ok(None) => Some(server_error_frame("KeyError", &format!("'{id}'"))),
            Err(ServiceError::Validation(items)) => {
                let detail = items
                    .iter()
                    .map(|i| i.msg.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                Some(server_error_frame("ValidationError", &detail))
            }
            Err(e) => Some(server_error_frame("ServerError", &e.to_string())),
        },
        Err((code, detail)) => Some(server_error_frame(&code, &detail)),
    }
}

/// Adds the route.
pub fn register(table: &mut RouteTable) {
    table.add(
        Route::get("/sockets/events/{conversation_id}", events_socket)
            .public()
            .summary("Events Socket")
            .description(
                "WebSocket stream of a conversation's events: a `full_state` snapshot, an optional replay \
                 (`resend_mode=all|since` with `after_timestamp`, deprecated `resend_all`, or `after_event_id`), \
                 then live events. Auth: `session_api_key` query, `X-Session-API-Key` header, or a first frame \
                 `{\"type\":\"auth\",\"session_api_key\":…}` within 10 s. Close codes: 4001 auth, 4004 unknown \
                 conversation, 1013 too many subscribers, 1011 keepalive timeout.",
            )
            .tag("WebSockets")
            .path_param("conversation_id", json!({"type": "string", "format": "uuid"}))
            .query_param("session_api_key", false, json!({"type": ["string", "null"]}))
            .query_param("resend_mode", false, json!({"enum": ["all", "since", null]}))
            .query_param("after_timestamp", false, json!({"type": ["string", "null"], "format": "date-time"}))
            .query_param("after_event_id", false, json!({"type": ["string", "null"]}))
            .response(101, "Switching Protocols", None)
            .response(403, "Invalid handshake parameters", None),
    );
}
