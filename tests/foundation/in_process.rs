//! The HTTP layer with test-only routes, served in this process on real
//! sockets: body parsing, parameter validation, 500s and panics, WebSocket
//! upgrades and the graceful drain.

use std::sync::Arc;
use std::time::Duration;

use agent_server::config::Config;
use agent_server::http::{
    response, ws, ApiError, Bounds, HandlerResult, Request, Route, RouteTable,
};
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{ws_connect, InProcess};

#[derive(serde::Deserialize, serde::Serialize)]
struct Title {
    title: String,
    tags: Vec<String>,
}

async fn echo_json(mut req: Request) -> HandlerResult {
    let body: Title = req.json().await?;
    response::json(&body)
}

async fn search(req: Request) -> HandlerResult {
    let mut p = req.params();
    let id = p.path_uuid("thing_id");
    let limit = p.int("limit", Bounds::new().gt(0).le(100)).unwrap_or(100);
    let status: Option<String> = p.enumeration("status", &["idle", "running", "finished"]);
    let ids = p.uuid_list("ids");
    p.finish()?;
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    response::json(
        &json!({"id": id.map(|id| id.to_string()), "limit": limit, "status": status, "ids": ids}),
    )
}

async fn fail(_req: Request) -> HandlerResult {
    Err(ApiError::internal("database on fire: secret details"))
}

async fn explode(_req: Request) -> HandlerResult {
    panic!("handler blew up")
}

async fn teapot(_req: Request) -> HandlerResult {
    Err(ApiError::with_body(
        StatusCode::CONFLICT,
        json!({"detail": "busy", "retryable": true}),
    ))
}

async fn echo_socket(mut req: Request) -> HandlerResult {
    let (response, socket) = ws::upgrade(&mut req)?;
    let shutdown = req.state().shutdown.clone();
    tokio::spawn(async move {
        let Ok(mut socket) = socket.await else { return };
        loop {
            tokio::select! {
                message = socket.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if socket.send(Message::Text(format!("echo: {text}").into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                _ = shutdown.cancelled() => break,
            }
        }
    });
    Ok(response)
}

async fn download(_req: Request) -> HandlerResult {
    let chunks = futures_util::stream::iter(
        ["first,", "second,", "third"].map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c))),
    );
    Ok(response::stream(
        StatusCode::OK,
        hyper::header::HeaderValue::from_static("text/plain"),
        chunks,
    ))
}

fn test_routes(table: &mut RouteTable) {
    table
        .add(Route::post("/api/test/echo", echo_json))
        .add(Route::get("/api/test/things/{thing_id}", search))
        .add(Route::get("/api/test/fail", fail))
        .add(Route::get("/api/test/explode", explode))
        .add(Route::get("/api/test/teapot", teapot))
        .add(Route::get("/test/socket", echo_socket))
        .add(Route::get("/test/download", download));
}

async fn start(config: Config) -> InProcess {
    InProcess::start(config, test_routes).await
}

#[tokio::test]
async fn json_bodies() {
    let server = start(Config::default()).await;
    let mut client = server.client().await;
    let ok = client
        .json(
            Method::POST,
            "/api/test/echo",
            &[],
            &json!({"title": "é ✓", "tags": []}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.text(),
        r#"{"title":"é ✓","tags":[]}"#,
        "compact, non-ASCII unescaped"
    );

    type Headers<'a> = &'a [(&'a str, &'a str)];
    let json = [("content-type", "application/json")];
    let cases: Vec<(Headers, &str, Value)> = vec![
        (
            &json,
            "{not json",
            json!({"type":"json_invalid","loc":["body",1],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting property name enclosed in double quotes"}}),
        ),
        (
            &json,
            "",
            json!({"type":"missing","loc":["body"],"msg":"Field required","input":null}),
        ),
        (
            &[("content-type", "text/plain")],
            r#"{"title":"a","tags":[]}"#,
            json!({"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":"{\"title\":\"a\",\"tags\":[]}"}),
        ),
        (
            &json,
            r#"{"title":"a","tags":"x"}"#,
            json!({"type":"list_type","loc":["body","tags"],"msg":"Input should be a valid list","input":"x"}),
        ),
        (
            &json,
            r#"{"tags":[]}"#,
            json!({"type":"missing","loc":["body","title"],"msg":"Field required","input":{"tags":[]}}),
        ),
    ];
    for (headers, body, item) in cases {
        let response = client
            .request(Method::POST, "/api/test/echo", headers, body)
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(response.json(), json!({"detail": [item]}), "{body}");
    }
    assert!(!client.is_closed(), "422s keep the connection");
}

#[tokio::test]
async fn chunked_bodies_over_the_limit() {
    let server = start(Config {
        max_body_bytes: 32,
        ..Config::default()
    })
    .await;
    let mut client = server.client().await;
    let chunks = futures_util::stream::iter((0..4).map(|_| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(bytes::Bytes::from(vec![
            b' ';
            16
        ])))
    }));
    let body = http_body_util::StreamBody::new(chunks);
    let request = hyper::Request::post("/api/test/echo")
        .header("host", "x")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["connection"], "close");
    assert_eq!(client.get("/alive").await.status, StatusCode::OK);
}

#[tokio::test]
async fn parameters_like_fastapi() {
    let server = start(Config::default()).await;
    let mut client = server.client().await;
    let id = "8889fa99-195d-48ad-8df3-a7ffe2b3801f";
    let ok = client.get(&format!("/api/test/things/8889FA99195D48AD8DF3A7FFE2B3801F?limit=5&limit=7&status=running&ids={id}")).await;
    assert_eq!(
        ok.json(),
        json!({"id": id, "limit": 7, "status": "running", "ids": [id]})
    );
    let bad = client
        .get("/api/test/things/not-a-uuid?limit=0&status=bogus&ids=1")
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let types: Vec<Value> = bad.json()["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].clone())
        .collect();
    assert_eq!(
        types,
        ["uuid_parsing", "greater_than", "enum", "uuid_parsing"]
    );
    assert_eq!(
        bad.json()["detail"][2]["msg"],
        "Input should be 'idle', 'running' or 'finished'"
    );
}

#[tokio::test]
async fn errors_keep_the_connection() {
    let server = start(Config::default()).await;
    let mut client = server.client().await;
    for path in ["/api/test/fail", "/api/test/explode"] {
        let response = client.get(path).await;
        assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.json();
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
        assert_eq!(body["detail"], "Internal Server Error");
        let id = body["error_id"].as_str().unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        assert!(!response.text().contains("secret") && !response.text().contains("blew"));
        assert_eq!(
            client.get("/alive").await.status,
            StatusCode::OK,
            "after {path}"
        );
    }
    let custom = client.get("/api/test/teapot").await;
    assert_eq!(
        (custom.status, custom.json()),
        (
            StatusCode::CONFLICT,
            json!({"detail": "busy", "retryable": true})
        )
    );
    assert!(!client.is_closed());
}

#[tokio::test]
async fn streamed_responses() {
    let server = start(Config::default()).await;
    let mut client = server.client().await;
    let response = client.get("/test/download").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.text(), "first,second,third");
    assert_eq!(client.get("/alive").await.status, StatusCode::OK);
}

#[tokio::test]
async fn websocket_echo() {
    let server = start(Config::default()).await;
    let mut socket = ws_connect(server.addr, "/test/socket", &[]).await;
    socket.send(Message::Text("hello".into())).await.unwrap();
    let reply = tokio::time::timeout(crate::support::TIMEOUT, socket.next())
        .await
        .unwrap();
    assert_eq!(reply.unwrap().unwrap(), Message::Text("echo: hello".into()));
    socket.close(None).await.unwrap();

    let mut client = server.client().await;
    let plain = client.get("/test/socket").await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let entered = Arc::new(Notify::new());
    let signal = entered.clone();
    let server = InProcess::start(Config::default(), move |table| {
        table.add(Route::get("/test/slow", move |_req| {
            let signal = signal.clone();
            async move {
                signal.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                response::json(&json!({"slow": "done"}))
            }
        }));
    })
    .await;
    let mut client = server.client().await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { client.get("/test/slow").await });
    entered.notified().await;
    server.shut_down().await;
    let response = in_flight.await.unwrap();
    assert_eq!(
        (response.status, response.json()),
        (StatusCode::OK, json!({"slow": "done"}))
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
