//! Helpers shared by the `server_apis_*` test crates: a server started with
//! a session key and a marker in its environment, and the check that no
//! process carrying the marker (a shell, a command, a child of one) is left
//! once the server has stopped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Client, ServerBuilder, TestResponse, TestServer};

/// The session key every test server accepts.
pub const KEY: &str = "testkey";

/// The environment variable that marks a test server and every process it starts.
const MARKER_VAR: &str = "AGENT_SERVER_TEST_MARKER";

/// A running test server with what the checks need.
pub struct Server {
    /// The process.
    pub server: TestServer,
    /// Its working directory.
    pub dir: PathBuf,
    marker: String,
}

impl Server {
    /// Starts a server with the key and a fresh marker (the browser is off).
    pub fn start() -> Server {
        Self::start_with(|b| b)
    }

    /// Like [`start`](Self::start), customised by `configure`.
    pub fn start_with(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Server {
        let marker = uuid::Uuid::new_v4().simple().to_string();
        let builder = ServerBuilder::new()
            .session_key(KEY)
            .env(MARKER_VAR, &marker);
        let builder = configure(builder);
        let dir = builder.dir().canonicalize().expect("server dir");
        Server {
            server: builder.spawn(),
            dir,
            marker,
        }
    }

    /// A client on a new connection.
    pub async fn client(&self) -> Client {
        self.server.client().await
    }

    /// Stops the server with SIGTERM and asserts that a clean exit left no
    /// process of ours behind.
    pub fn stop_and_check(mut self) {
        // The check below can only pass vacuously if the marker is not seen.
        assert!(marked_processes(&self.marker).contains(&self.server.pid()));
        let status = self.server.terminate();
        assert!(
            status.success(),
            "exit {status:?}: {}",
            self.server.stderr()
        );
        assert_no_processes(&self.marker);
    }
}

/// Processes (zombies excepted) whose environment holds `marker`.
fn marked_processes(marker: &str) -> Vec<u32> {
    let needle = format!("{MARKER_VAR}={marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')')
                        .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(true);
            !zombie
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// Waits (bounded: signals take a moment) until no marked process is alive.
pub fn assert_no_processes(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = marked_processes(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The key header.
pub fn auth() -> [(&'static str, &'static str); 1] {
    [("X-Session-API-Key", KEY)]
}

/// `method path` with a JSON body and the key.
pub async fn send_json(
    client: &mut Client,
    method: hyper::Method,
    path: &str,
    body: &Value,
) -> TestResponse {
    client.json(method, path, &auth(), body).await
}

/// `GET path` with the key.
pub async fn get(client: &mut Client, path: &str) -> TestResponse {
    client.get_with(path, &auth()).await
}

/// The keys of a JSON object, in order.
pub fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}
