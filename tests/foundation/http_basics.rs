//! Routes, auth, CORS and error shapes of the real binary.

use hyper::{Method, StatusCode};
use serde_json::json;

use crate::support::{ServerBuilder, TestServer};

const KEY: &str = "test-key";

fn keyed() -> TestServer {
    ServerBuilder::new().session_key(KEY).spawn()
}

#[tokio::test]
async fn health_routes() {
    let server = keyed();
    let mut client = server.client().await;
    for path in ["/alive", "/health"] {
        let response = client.get(path).await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.text(), r#"{"status":"ok"}"#);
    }
    let response = client.get("/ready").await;
    assert_eq!(
        (response.status, response.json()),
        (StatusCode::OK, json!({"status": "ready"}))
    );
}

#[tokio::test]
async fn server_info_fields_in_order() {
    let server = ServerBuilder::new()
        .env("OH_BUILD_GIT_SHA", "0123")
        .env("OH_RUNTIME_IDLE_TIMEOUT_SECONDS", "100")
        .spawn();
    let mut client = server.client().await;
    let info = client.get("/server_info").await;
    assert_eq!(info.status, StatusCode::OK);
    let body = info.json();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "uptime",
            "idle_time",
            "title",
            "version",
            "api_compatibility",
            "sdk_version",
            "tools_version",
            "workspace_version",
            "build_git_sha",
            "build_git_ref",
            "python_version",
            "usable_tools",
            "runtime_idle_timeout_seconds",
            "conversation_runtime",
            "available_conversation_runtimes",
            "capabilities",
            "app_backend_ingress_url",
            "max_foreground_terminal_timeout_seconds",
            "docs",
            "redoc",
        ]
    );
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["api_compatibility"], "1.58.2");
    assert_eq!(body["title"], "OpenHands Agent Server");
    assert_eq!(body["build_git_sha"], "0123");
    assert_eq!(body["build_git_ref"], "unknown");
    assert_eq!(body["runtime_idle_timeout_seconds"], 100.0);
    assert_eq!(body["max_foreground_terminal_timeout_seconds"], 90.0);
    assert!(body["uptime"].is_f64() && body["idle_time"].is_f64());
    assert!(body["uptime"].as_f64().unwrap().fract() == 0.0);
    assert_eq!(body["capabilities"], json!([]));
    assert!(
        info.text().contains(r#""uptime":"#) && !info.text().contains(": "),
        "compact JSON"
    );
    let root = client.get("/").await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.json()["title"], "OpenHands Agent Server");
}

#[tokio::test]
async fn docs_and_openapi() {
    let server = keyed();
    let mut client = server.client().await;
    let doc = client.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/",
        "/alive",
        "/health",
        "/ready",
        "/server_info",
        "/openapi.json",
        "/docs",
        "/redoc",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is not documented"
        );
    }
    assert!(doc["components"]["schemas"]["ServerInfo"].is_object());
    for (path, needle) in [
        ("/docs", "swagger-ui-bundle.js"),
        ("/redoc", "redoc.standalone.js"),
    ] {
        let page = client.get(path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(page.text().contains(needle) && page.text().contains("/openapi.json"));
    }
}

#[tokio::test]
async fn auth_forms() {
    let server = ServerBuilder::new()
        .env("OH_SESSION_API_KEYS_0", KEY)
        .env("OH_SESSION_API_KEYS_1", "007")
        .env("OH_SESSION_API_KEYS_3", "after-a-gap")
        .spawn();
    let mut client = server.client().await;
    let unauthorized = json!({"detail": "Unauthorized"});
    for headers in [
        vec![],
        vec![("X-Session-API-Key", "wrong")],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", KEY)],
        vec![("X-Session-API-Key", "after-a-gap")],
        vec![("X-Session-API-Key", "7")],
    ] {
        let response = client.get_with("/api/anything", &headers).await;
        assert_eq!(
            (response.status, response.json()),
            (StatusCode::UNAUTHORIZED, unauthorized.clone()),
            "{headers:?}"
        );
    }
    for headers in [
        vec![("X-Session-API-Key", KEY)],
        vec![("x-session-api-key", "007")],
        vec![("Authorization", "Bearer 007")],
        vec![("authorization", "bearer test-key")],
    ] {
        let response = client.get_with("/api/anything", &headers).await;
        assert_eq!(
            (response.status, response.json()),
            (StatusCode::NOT_FOUND, json!({"detail": "Not Found"})),
            "{headers:?}"
        );
    }
    let public = client
        .get_with("/alive", &[("X-Session-API-Key", "wrong")])
        .await;
    assert_eq!(public.status, StatusCode::OK);
    let public = client.get("/server_info").await;
    assert_eq!(public.status, StatusCode::OK);
    // Auth comes before the body is looked at.
    let response = client
        .json(Method::POST, "/api/conversations", &[], &json!({}))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert!(!client.is_closed());
}

#[tokio::test]
async fn no_keys_means_open_access_with_a_warning() {
    let server = ServerBuilder::new().spawn();
    let response = server.get("/api/anything").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let warnings = server
        .stderr_with("authentication")
        .await
        .matches("authentication")
        .count();
    assert_eq!(warnings, 1, "{}", server.stderr());
}

#[tokio::test]
async fn not_found_method_not_allowed_and_slashes() {
    let server = keyed();
    let mut client = server.client().await;
    let response = client.get("/nope").await;
    assert_eq!(
        (response.status, response.json()),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
    let response = client.request(Method::POST, "/alive", &[], "").await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.json(), json!({"detail": "Method Not Allowed"}));
    assert_eq!(response.header("allow"), Some("GET"));
    let response = client.get("/alive/?x=1").await;
    assert_eq!(response.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(response.header("location"), Some("/alive?x=1"));
    assert!(!client.is_closed());
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let server = ServerBuilder::new().env("OH_MAX_BODY_BYTES", "64").spawn();
    let mut client = server.client().await;
    let response = client
        .request(Method::GET, "/alive", &[], vec![b'x'; 65])
        .await;
    assert_eq!(
        (response.status, response.json()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"detail": "Content Too Large"})
        )
    );
    let mut client = server.client().await;
    let response = client
        .request(Method::GET, "/alive", &[], vec![b'x'; 64])
        .await;
    assert_eq!(response.status, StatusCode::OK);
}

#[tokio::test]
async fn cors() {
    let server = ServerBuilder::new()
        .session_key(KEY)
        .env("OH_ALLOW_CORS_ORIGINS", r#"["https://app.example.com"]"#)
        .env(
            "OH_ALLOW_CORS_ORIGIN_REGEX",
            r"https://[a-z]+\.example\.org",
        )
        .spawn();
    let mut client = server.client().await;

    let plain = client.get("/alive").await;
    assert_eq!(plain.header("vary"), Some("Origin"));
    assert_eq!(plain.header("access-control-allow-origin"), None);

    for origin in [
        "http://localhost:3000",
        "http://127.0.0.1:5173",
        "https://app.example.com",
        "https://docs.example.org",
    ] {
        let response = client.get_with("/alive", &[("Origin", origin)]).await;
        assert_eq!(response.header("access-control-allow-origin"), Some(origin));
        assert_eq!(
            response.header("access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(response.header("vary"), Some("Origin"));
    }
    let denied = client
        .get_with("/alive", &[("Origin", "https://evil.example.com")])
        .await;
    assert_eq!(denied.status, StatusCode::OK);
    assert_eq!(denied.header("access-control-allow-origin"), None);
    assert_eq!(denied.header("vary"), Some("Origin"));

    let preflight = [
        ("Origin", "http://localhost:3000"),
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "x-session-api-key,content-type",
        ),
    ];
    let response = client
        .request(Method::OPTIONS, "/api/conversations", &preflight, "")
        .await;
    assert_eq!(
        (response.status, response.text()),
        (StatusCode::OK, "OK".to_string())
    );
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, QUERY")
    );
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("x-session-api-key,content-type")
    );
    assert_eq!(response.header("access-control-max-age"), Some("600"));
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );

    let evil = [
        ("Origin", "https://evil.example.com"),
        ("Access-Control-Request-Method", "GET"),
    ];
    let response = client
        .request(Method::OPTIONS, "/api/conversations", &evil, "")
        .await;
    assert_eq!(
        (response.status, response.text()),
        (
            StatusCode::BAD_REQUEST,
            "Disallowed CORS origin".to_string()
        )
    );
    assert_eq!(response.header("access-control-allow-origin"), None);

    // Workspace files echo any http(s) origin (they authenticate by cookie).
    let response = client
        .get_with(
            "/api/conversations/abc/workspace/a.txt",
            &[("Origin", "https://evil.example.com")],
        )
        .await;
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://evil.example.com")
    );
    let response = client
        .request(
            Method::OPTIONS,
            "/api/conversations/abc/workspace",
            &evil,
            "",
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
}
