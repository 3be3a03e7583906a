//! The conversation-scoped routes (`/api/conversations/{id}/bash/…` and
//! `/api/conversations/{id}/workspace/…`) over real HTTP, served in-process so
//! a conversation lookup can be installed: the conversation service that
//! will provide it is not part of this build yet.

#[path = "server_apis/mod.rs"]
pub mod common;
pub mod support;

use std::collections::HashMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_server::config::Config;
use agent_server::server::{ConversationLookup, ConversationPlace};
use common::{auth, get, send_json, KEY};
use futures_util::future::BoxFuture;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Client, InProcess, TestResponse};
use uuid::Uuid;

/// Conversations by id, as the conversation service would report them.
struct Places(HashMap<Uuid, ConversationPlace>);

impl ConversationLookup for Places {
    fn find(&self, id: Uuid) -> BoxFuture<'_, Option<ConversationPlace>> {
        Box::pin(async move { self.0.get(&id).cloned() })
    }
}

struct Fixture {
    server: InProcess,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

const CONVERSATION: &str = "73deccdd-2ddb-4034-8198-aef6245191e0";
/// A conversation whose working directory is gone.
const HOMELESS: &str = "5bfdbbb0-b124-4de0-8d6d-25430e251295";
const UNKNOWN: &str = "583039b3-39ee-4ffa-a884-ba1a421d29f2";

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("work/site")).unwrap();
    std::fs::create_dir_all(root.join("conv")).unwrap();
    let config = Config {
        session_api_keys: vec![KEY.into()],
        bash_events_dir: root.join("bash_events"),
        ..Config::default()
    };
    let server = InProcess::start(config, |_| {}).await;
    let place = |work: &str| ConversationPlace {
        dir: root.join("conv"),
        working_dir: root.join(work),
    };
    let places = HashMap::from([
        (Uuid::parse_str(CONVERSATION).unwrap(), place("work")),
        (Uuid::parse_str(HOMELESS).unwrap(), place("gone")),
    ]);
    assert!(server.state.set_conversations(Arc::new(Places(places))));
    Fixture {
        server,
        root,
        _dir: dir,
    }
}

impl Fixture {
    async fn stop(self) {
        self.server.state.bash.shutdown().await;
        self.server.shut_down().await;
    }
}

fn scoped(path: &str) -> String {
    format!("/api/conversations/{CONVERSATION}/bash{path}")
}

#[tokio::test]
async fn scoped_bash_runs_in_the_workspace() {
    let f = fixture().await;
    let mut client = f.server.client().await;
    let work = f.root.join("work");

    let out = send_json(
        &mut client,
        Method::POST,
        &scoped("/execute_bash_command"),
        &json!({"command": "echo conv-scoped; pwd"}),
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text());
    assert_eq!(
        out.json()["stdout"],
        format!("conv-scoped\n{}\n", work.display())
    );

    // A `cwd` inside the workspace is fine, one outside is refused.
    let inside = send_json(
        &mut client,
        Method::POST,
        &scoped("/start_bash_command"),
        &json!({"command": "pwd", "cwd": work.join("site")}),
    )
    .await;
    assert_eq!(inside.status, StatusCode::OK);
    for outside in [
        f.root.display().to_string(),
        format!("{}/../conv", work.display()),
    ] {
        let refused = send_json(
            &mut client,
            Method::POST,
            &scoped("/execute_bash_command"),
            &json!({"command": "pwd", "cwd": outside}),
        )
        .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            refused.json(),
            json!({"detail": "cwd must be inside the conversation workspace"})
        );
    }

    // The conversation's events are its own, stored in its directory.
    let page = get(
        &mut client,
        &scoped("/bash_events/search?kind__eq=BashCommand"),
    )
    .await;
    let commands = page.json()["items"].as_array().unwrap().clone();
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[0]["cwd"], work.display().to_string());
    let global = get(&mut client, "/api/bash/bash_events/search").await;
    assert_eq!(global.json()["items"], json!([]));
    let stored = std::fs::read_dir(f.root.join("conv/bash_events"))
        .unwrap()
        .count();
    assert!(stored >= 3, "{stored} events stored");
    let id = commands[0]["id"].as_str().unwrap();
    let one = get(&mut client, &scoped(&format!("/bash_events/{id}"))).await;
    assert_eq!(one.json(), commands[0]);
    let not_here = get(&mut client, &format!("/api/bash/bash_events/{id}")).await;
    assert_eq!(not_here.status, StatusCode::NOT_FOUND);

    // Unknown conversations.
    let unknown = send_json(
        &mut client,
        Method::POST,
        &format!("/api/conversations/{UNKNOWN}/bash/execute_bash_command"),
        &json!({"command": "true"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json(),
        json!({"detail": format!("Conversation not found: {UNKNOWN}")})
    );

    let cleared = client
        .request(Method::DELETE, &scoped("/bash_events"), &auth(), "")
        .await;
    assert!(cleared.json()["cleared_count"].as_u64().unwrap() >= 3);
    drop(client);
    f.stop().await;
}

fn workspace(path: &str) -> String {
    format!("/api/conversations/{CONVERSATION}/workspace{path}")
}

fn status_detail(response: &TestResponse) -> (StatusCode, Value) {
    (response.status, response.json())
}

async fn ws_get(client: &mut Client, path: &str) -> TestResponse {
    get(client, &workspace(path)).await
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn workspace_files_stay_inside() {
    let f = fixture().await;
    let mut client = f.server.client().await;
    let work = f.root.join("work");
    write(&work.join("hello.txt"), "hello from mock\n");
    write(&work.join("site/index.html"), "<p>site</p>");
    write(&work.join("site/app.js"), "1;");
    write(&f.root.join("secret.txt"), "secret");
    symlink(f.root.join("secret.txt"), work.join("leak")).unwrap();
    symlink(&f.root, work.join("up")).unwrap();
    symlink("site", work.join("inner")).unwrap();

    // Files, with a guessed type and Starlette's validators.
    let file = ws_get(&mut client, "/hello.txt").await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body.as_ref(), b"hello from mock\n");
    assert_eq!(
        file.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(file.header("content-length"), Some("16"));
    assert_eq!(file.header("accept-ranges"), Some("bytes"));
    assert!(file.header("etag").is_some() && file.header("last-modified").is_some());
    assert!(file.header("content-disposition").is_none());
    let script = ws_get(&mut client, "/site/app.js").await;
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let part = client
        .get_with(
            &workspace("/hello.txt"),
            &[("X-Session-API-Key", KEY), ("range", "bytes=-5")],
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body.as_ref(), b"mock\n");

    // Directories serve their index.html; a symlink inside is followed.
    for path in ["/site", "/site/", "/inner/"] {
        let index = ws_get(&mut client, path).await;
        assert_eq!(index.status, StatusCode::OK, "{path}");
        assert_eq!(index.body.as_ref(), b"<p>site</p>");
        assert_eq!(
            index.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    assert_eq!(
        status_detail(&ws_get(&mut client, "").await),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "No index.html in directory"})
        )
    );
    assert_eq!(
        status_detail(&ws_get(&mut client, "/nope.txt").await),
        (StatusCode::NOT_FOUND, json!({"detail": "File not found"}))
    );

    // Every way out is refused: `..`, encoded dots and slashes, absolute
    // paths, symlinks to files and directories outside.
    let outside = (
        StatusCode::BAD_REQUEST,
        json!({"detail": "Path is outside the workspace"}),
    );
    for path in [
        "/../secret.txt",
        "/site/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2Fsecret.txt",
        "/site%2F..%2F..%2Fsecret.txt",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "/leak",
        "/up/secret.txt",
        "/up/work/hello.txt/../../secret.txt",
    ] {
        let response = ws_get(&mut client, path).await;
        assert_eq!(status_detail(&response), outside, "{path}");
    }

    // Auth: header, bearer or the workspace cookie; nothing else.
    let path = workspace("/hello.txt");
    let cookie = format!("theme=dark; oh_workspace_session_key={KEY}");
    let by_cookie = client.get_with(&path, &[("cookie", &cookie)]).await;
    assert_eq!(by_cookie.status, StatusCode::OK);
    let bearer = format!("Bearer {KEY}");
    let by_bearer = client.get_with(&path, &[("authorization", &bearer)]).await;
    assert_eq!(by_bearer.status, StatusCode::OK);
    let wrong_cookie = client
        .get_with(&path, &[("cookie", "oh_workspace_session_key=wrong")])
        .await;
    assert_eq!(
        status_detail(&wrong_cookie),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Unauthorized"}))
    );
    assert_eq!(client.get(&path).await.status, StatusCode::UNAUTHORIZED);
    // The cookie opens the workspace routes only.
    let elsewhere = client
        .get_with("/api/bash/bash_events/search", &[("cookie", &cookie)])
        .await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);

    // Conversations: unknown, malformed, without a working directory.
    let unknown = get(
        &mut client,
        &format!("/api/conversations/{UNKNOWN}/workspace"),
    )
    .await;
    assert_eq!(
        status_detail(&unknown),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": format!("Conversation not found: {UNKNOWN}")})
        )
    );
    let malformed = get(&mut client, "/api/conversations/nope/workspace/x").await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let homeless = get(
        &mut client,
        &format!("/api/conversations/{HOMELESS}/workspace/a"),
    )
    .await;
    assert_eq!(
        status_detail(&homeless),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Workspace directory does not exist"})
        )
    );
    drop(client);
    f.stop().await;
}
