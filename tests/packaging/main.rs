//! The nginx server block (`packaging/nginx/agent-server.conf`) in front of
//! the server: real nginx on loopback, started with the block as shipped
//! (only its listen address and upstream port changed), a REST round trip to
//! the real binary and a real conversation's event stream from the binary on
//! both socket paths.
//!
//! Ignored by default because they need nginx; `.ci/run nginx` installs
//! Debian's nginx-light and runs them with `--ignored`. `NGINX` names another
//! nginx binary.
//!
//! The upload and header checks run against the same HTTP stack in process
//! (`InProcess`) with two test routes: one that receives an upload whole and
//! reports its size, one that shows the headers nginx adds.

#[path = "../support/mod.rs"]
pub mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_server::config::Config;
use agent_server::http::response;
use agent_server::http::{HandlerResult, Request, Route};
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use support::{wait_bounded, ws_connect, Client, InProcess, ServerBuilder, TIMEOUT};

/// The server block as shipped.
const BLOCK: &str = include_str!("../../packaging/nginx/agent-server.conf");

/// Real nginx serving the block on a free loopback port, stopped when dropped.
struct Nginx {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

/// `text` with `from` replaced by `to`, which must occur exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the server block must contain {from:?} exactly once"
    );
    text.replacen(from, to, 1)
}

fn nginx_binary() -> PathBuf {
    let path = PathBuf::from(std::env::var_os("NGINX").unwrap_or_else(|| "/usr/sbin/nginx".into()));
    assert!(
        path.exists(),
        "{} not found: `.ci/run nginx` installs nginx-light",
        path.display()
    );
    path
}

impl Nginx {
    /// Starts nginx with the block proxying to `upstream`.
    fn start(upstream: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        // nginx started as root serves from worker processes running as nobody.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let block = replace_once(
            BLOCK,
            "    listen 4004;\n",
            &format!("    listen {addr};\n"),
        );
        let block = replace_once(&block, "    listen [::]:4004;\n", "");
        let block = replace_once(
            &block,
            "server 127.0.0.1:8000;",
            &format!("server {upstream};"),
        );
        std::fs::write(dir.path().join("agent-server.conf"), block).unwrap();
        let d = dir.path().display();
        let main = format!(
            "worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             access_log {d}/access.log;\n\
             client_body_temp_path {d}/client_body;\n\
             proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             include {d}/agent-server.conf;\n\
             }}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, main).unwrap();

        let check = Command::new(nginx_binary())
            .args(["-t", "-q", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            check.status.success() && check.stderr.is_empty(),
            "nginx -t: {}",
            String::from_utf8_lossy(&check.stderr)
        );

        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Nginx { addr, child, dir };
        for _ in 0..200 {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return nginx;
            }
            if let Some(status) = nginx.child.try_wait().unwrap() {
                panic!("nginx exited with {status}: {}", nginx.error_log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nginx did not listen on {addr}: {}", nginx.error_log());
    }

    fn error_log(&self) -> String {
        read(&self.dir.path().join("error.log"))
    }

    fn access_log(&self) -> String {
        read(&self.dir.path().join("access.log"))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: graceful stop of master and workers.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
        if wait_bounded(&mut self.child, TIMEOUT).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
#[ignore = "needs nginx: run by `.ci/run nginx`"]
async fn rest_calls_reach_the_binary_through_nginx() {
    let server = ServerBuilder::new().session_key("nginx-key").spawn();
    let nginx = Nginx::start(server.addr);
    let mut client = Client::connect(nginx.addr).await;

    let health = client.get("/health").await;
    assert_eq!(health.status, StatusCode::OK, "{}", nginx.error_log());
    assert_eq!(health.json(), json!({"status": "ok"}));
    let info = client.get("/server_info").await;
    assert_eq!(info.status, StatusCode::OK);
    assert!(info.json()["uptime"].is_number(), "{}", info.text());

    // The prefixed mount reaches the same routes with the prefix removed.
    let prefixed = client.get("/apps/conversations/api/health").await;
    assert_eq!(prefixed.status, StatusCode::OK);
    assert_eq!(prefixed.json(), json!({"status": "ok"}));

    // The session key header passes through: the server, not nginx, decides.
    let denied = client.get("/api/no-such-route").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED, "{}", denied.text());
    let allowed = client
        .get_with("/api/no-such-route", &[("X-Session-API-Key", "nginx-key")])
        .await;
    assert_eq!(allowed.status, StatusCode::NOT_FOUND, "{}", allowed.text());
    assert!(allowed.json()["detail"].is_string(), "{}", allowed.text());

    assert!(
        nginx
            .access_log()
            .contains("GET /apps/conversations/api/health HTTP/1.1\" 200"),
        "{}",
        nginx.access_log()
    );
}

/// The next event frame (pings skipped), bounded.
async fn next_event<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(TIMEOUT, socket.next())
            .await
            .expect("no event in time")
            .expect("socket ended")
            .expect("socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON event"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads events until a user `MessageEvent` with `text` (bounded); the
/// events read on the way are returned with it last.
async fn until_message<S>(socket: &mut S, text: &str) -> Vec<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut seen = Vec::new();
    for _ in 0..100 {
        let event = next_event(socket).await;
        let done =
            event["kind"] == "MessageEvent" && event["llm_message"]["content"][0]["text"] == text;
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("no message {text:?} among {seen:?}");
}

/// Receives an upload whole and reports its size.
async fn upload(mut req: Request) -> HandlerResult {
    let body = req.body_bytes().await?;
    response::json(&json!({"received": body.len(), "all_x": body.iter().all(|b| *b == b'x')}))
}

/// The request headers nginx sets or passes on.
async fn headers(req: Request) -> HandlerResult {
    let header = |name| req.header(name).unwrap_or_default().to_string();
    response::json(&json!({
        "host": header("host"),
        "x-forwarded-for": header("x-forwarded-for"),
        "x-forwarded-proto": header("x-forwarded-proto"),
        "x-forwarded-host": header("x-forwarded-host"),
        "x-real-ip": header("x-real-ip"),
    }))
}

/// Waits (bounded) until nginx's access log has `line`: nginx writes a
/// request's line when the request ends, for WebSockets when the socket closes.
async fn wait_for_log(nginx: &Nginx, line: &str) {
    for _ in 0..200 {
        if nginx.access_log().contains(line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {line:?} in the access log: {}", nginx.access_log());
}

#[tokio::test]
#[ignore = "needs nginx: run by `.ci/run nginx`"]
async fn uploads_and_headers_through_nginx() {
    let server = InProcess::start(Config::default(), |table| {
        table
            .add(Route::post("/api/test/upload", upload).streaming_body())
            .add(Route::get("/api/test/headers", headers));
    })
    .await;
    let nginx = Nginx::start(server.addr);
    let mut client = Client::connect(nginx.addr).await;

    // Larger than nginx's default limit (1 MiB), streamed through whole.
    let size = 8 * 1024 * 1024;
    let uploaded = client
        .request(Method::POST, "/api/test/upload", &[], vec![b'x'; size])
        .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text());
    assert_eq!(uploaded.json(), json!({"received": size, "all_x": true}));

    // The client's Host reaches the server, as do the forwarding headers.
    let seen = client.get("/api/test/headers").await.json();
    let host = nginx.addr.to_string();
    assert_eq!(seen["host"], host, "{seen}");
    assert_eq!(seen["x-forwarded-host"], host, "{seen}");
    assert_eq!(seen["x-forwarded-proto"], "http", "{seen}");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "{seen}");
    assert_eq!(seen["x-real-ip"], "127.0.0.1", "{seen}");

    server.shut_down().await;
}

#[tokio::test]
#[ignore = "needs nginx: run by `.ci/run nginx`"]
async fn a_conversation_event_stream_through_nginx_on_both_paths() {
    let key = "nginx-key";
    let server = ServerBuilder::new().session_key(key).spawn();
    let nginx = Nginx::start(server.addr);
    let work = tempfile::tempdir().unwrap();
    let auth = [("X-Session-API-Key", key)];
    let mut client = Client::connect(nginx.addr).await;
    // No run: the messages are stored and streamed, no LLM is called.
    let start = json!({
        "workspace": {"kind": "LocalWorkspace", "working_dir": work.path()},
        "agent": {"kind": "Agent",
                  "llm": {"model": "openai/gpt-4o", "base_url": "http://127.0.0.1:9/v1",
                          "api_key": "sk-unused", "usage_id": "agent"},
                  "tools": []},
        "autotitle": false
    });
    let created = client
        .json(Method::POST, "/api/conversations", &auth, &start)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();

    for (prefix, api) in [
        ("/sockets/events/", "/api/conversations/"),
        (
            "/apps/conversations/api/sockets/events/",
            "/apps/conversations/api/api/conversations/",
        ),
    ] {
        let mut socket = ws_connect(
            nginx.addr,
            &format!("{prefix}{id}?session_api_key={key}"),
            &[],
        )
        .await;
        let first = next_event(&mut socket).await;
        assert_eq!(first["key"], "full_state", "{prefix}: {first}");
        assert_eq!(first["value"]["id"], id.as_str());

        // A message posted over REST (through nginx) arrives as a frame.
        let posted = format!("posted via {prefix}");
        let message =
            json!({"role": "user", "content": [{"type": "text", "text": posted}], "run": false});
        let sent = client
            .json(Method::POST, &format!("{api}{id}/events"), &auth, &message)
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{api}: {}", sent.text());
        let seen = until_message(&mut socket, &posted).await;
        assert_eq!(seen.last().unwrap()["source"], "user");

        // A frame sent by the client is stored and streamed back.
        let typed = format!("typed via {prefix}");
        let frame = json!({"role": "user", "content": [{"type": "text", "text": typed}]});
        socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        until_message(&mut socket, &typed).await;
        socket.close(None).await.unwrap();
    }
    for prefix in [
        "/sockets/events/",
        "/apps/conversations/api/sockets/events/",
    ] {
        wait_for_log(
            &nginx,
            &format!("GET {prefix}{id}?session_api_key={key} HTTP/1.1\" 101"),
        )
        .await;
    }
    // Both messages of each path are in the conversation.
    let search = client
        .get_with(
            &format!("/api/conversations/{id}/events/search?limit=100"),
            &auth,
        )
        .await;
    let texts: Vec<String> = search.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "MessageEvent")
        .map(|e| {
            e["llm_message"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
}

/// The shipped example files against the real configuration loader.
mod examples {
    use std::collections::BTreeMap;

    use agent_server::config::{self, Config, Env, Overrides, CONFIG_PATH_ENV, FIELDS};
    use serde_json::Value;

    const ROOT: &str = env!("CARGO_MANIFEST_DIR");

    fn example_path() -> String {
        format!("{ROOT}/packaging/config.example.json")
    }

    #[test]
    fn config_example_has_every_setting_at_its_default() {
        let text = std::fs::read_to_string(example_path()).unwrap();
        let example: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        for name in &names {
            assert!(
                example.contains_key(*name),
                "config.example.json lacks {name}"
            );
        }
        for key in example.keys() {
            assert!(
                names.contains(&key.as_str()),
                "config.example.json has unknown {key}"
            );
        }

        let env: Env = [(CONFIG_PATH_ENV.to_string(), example_path())].into();
        let loaded = config::load(&env, &Overrides::default()).unwrap();
        let state = "/var/lib/agent-server";
        let expected = Config {
            conversations_path: format!("{state}/conversations").into(),
            workspace_path: format!("{state}/workspace").into(),
            bash_events_dir: format!("{state}/bash_events").into(),
            conversation_worktree_root: format!("{state}/worktrees").into(),
            ..Config::default()
        };
        assert_eq!(loaded, expected);
    }

    #[test]
    fn config_table_documents_every_setting() {
        let table = std::fs::read_to_string(format!("{ROOT}/packaging/config.md")).unwrap();
        for field in FIELDS {
            assert!(
                table.contains(&format!("| `{}` |", field.name)),
                "packaging/config.md does not document {}",
                field.name
            );
        }
    }

    #[test]
    fn env_example_names_real_settings_with_valid_values() {
        let text = std::fs::read_to_string(format!("{ROOT}/packaging/agent-server.env")).unwrap();
        let mut env: Env = BTreeMap::new();
        for line in text.lines() {
            let Some(assignment) = line.strip_prefix("#OH_") else {
                continue;
            };
            let (name, value) = assignment.split_once('=').unwrap();
            let setting = name.to_lowercase();
            assert!(
                FIELDS
                    .iter()
                    .any(|f| setting == f.name || setting.starts_with(&format!("{}_", f.name))),
                "agent-server.env names OH_{name}, which is no setting"
            );
            env.insert(format!("OH_{name}"), value.to_string());
        }
        assert!(env.len() >= 10, "{env:?}");
        env.insert(
            CONFIG_PATH_ENV.into(),
            format!("{ROOT}/no-such-config.json"),
        );
        let loaded = config::load(&env, &Overrides::default()).unwrap();
        assert_eq!(loaded.session_api_keys.len(), 2);
        assert_eq!(loaded.previous_secret_keys.len(), 1);
        assert!(loaded.trust_forwarded_headers);
    }
}
