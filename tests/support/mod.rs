//! Shared helpers for integration tests. Declare it in a test crate's root
//! with `pub mod support;` (or `#[path = "../support/mod.rs"] pub mod support;`
//! from `tests/NAME/main.rs`); public, so helpers a crate does not use are
//! not dead code.
//!
//! * [`ServerBuilder`] starts the real `agent-server` binary on
//!   `127.0.0.1:0` in a temporary working directory with an explicit
//!   environment (the test process's own is never passed on, except `PATH`),
//!   waits for its `agent-server listening on http://ADDR` line, and kills it
//!   when dropped.
//! * [`InProcess`] serves a route table inside the test (for test-only routes).
//! * [`Client`] is a small HTTP/1.1 client on one keep-alive connection;
//!   [`ws_connect`] opens a WebSocket.
//!
//! Every wait is bounded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use agent_server::config::Config;
use agent_server::http::{App, RouteTable};
use agent_server::server::AppState;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How long a server may take to start, and a request to be answered.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The test binary.
pub const BINARY: &str = env!("CARGO_BIN_EXE_agent-server");

/// Describes a server process to start.
pub struct ServerBuilder {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    args: Vec<String>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// `--host 127.0.0.1 --port 0`, an empty environment but `PATH`, and a
    /// fresh working directory. The browser is off (`OH_ENABLE_BROWSER=false`):
    /// its start-up check would launch Chromium, which a server killed on drop
    /// cannot clean up; tests of the browser turn it on. `HOME` points
    /// nowhere, so the terminal's bash does not source the developer's
    /// `~/.bashrc` (without `HOME` it would find it through the password
    /// database, and a `pyenv init` in it, killed halfway with the server,
    /// leaves a lock that stalls every later shell).
    pub fn new() -> Self {
        let mut env = BTreeMap::new();
        if let Some(path) = std::env::var_os("PATH").and_then(|p| p.into_string().ok()) {
            env.insert("PATH".to_string(), path);
        }
        env.insert("HOME".to_string(), "/nonexistent".to_string());
        env.insert("OH_ENABLE_BROWSER".to_string(), "false".to_string());
        ServerBuilder {
            dir: tempfile::tempdir().expect("temp dir"),
            env,
            args: vec![
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                "0".into(),
            ],
        }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Configures `OH_SESSION_API_KEYS_0`.
    pub fn session_key(self, key: &str) -> Self {
        self.env("OH_SESSION_API_KEYS_0", key)
    }

    /// Replaces the command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Appends command-line arguments.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// Writes `config` as the JSON config file and points `OPENHANDS_AGENT_SERVER_CONFIG_PATH` at it.
    pub fn config_file(self, config: &Value) -> Self {
        let path = self.dir.path().join("config.json");
        std::fs::write(&path, config.to_string()).expect("write config");
        let path = path.display().to_string();
        self.env("OPENHANDS_AGENT_SERVER_CONFIG_PATH", &path)
    }

    /// The working directory the server runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The command as configured, for callers that customise it further.
    pub fn command(&self) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }

    /// Runs the binary to completion (for `--version`, bad configs, …).
    pub fn run(self) -> Finished {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn agent-server");
        let mut stdout = collect(child.stdout.take());
        let mut stderr = collect(child.stderr.take());
        let status = wait_bounded(&mut child, TIMEOUT).expect("agent-server did not exit");
        stdout.finish();
        stderr.finish();
        Finished {
            status,
            stdout: stdout.text(),
            stderr: stderr.text(),
        }
    }

    /// Starts the server and waits until it listens.
    pub fn spawn(self) -> TestServer {
        let command = self.command();
        self.spawn_command(command)
    }

    /// Starts a customised [`command`](Self::command) and waits until it listens.
    pub fn spawn_command(self, mut command: Command) -> TestServer {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn agent-server");
        let stderr = collect(child.stderr.take());
        let (lines_tx, lines_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("agent-server listening on http://") {
                        break addr.parse().expect("listening address");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("agent-server did not start; stderr:\n{}", stderr.text());
                }
            }
        };
        TestServer {
            child: Some(child),
            addr,
            _dir: self.dir,
            stderr,
        }
    }
}

/// A process that ran to completion.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

/// A running server process; killed when dropped.
pub struct TestServer {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    stderr: Output,
}

impl TestServer {
    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// What it logged so far (everything, once it was stopped).
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// What it logged so far, waiting (bounded) until that contains
    /// `needle`: a line is read from the pipe a moment after it is logged.
    pub async fn stderr_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.stderr();
            if text.contains(needle) || Instant::now() >= deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A client on a new connection.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// `GET path` on a new connection.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.client().await.get(path).await
    }

    /// Sends `signal` and waits (bounded) for the exit.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
            .expect("signal the server");
        let status =
            wait_bounded(&mut child, TIMEOUT).expect("server did not exit after the signal");
        self.stderr.finish();
        status
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.stop_with(nix::sys::signal::Signal::SIGTERM)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for a child without blocking forever.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Text collected from a pipe by a background thread.
#[derive(Default)]
struct Output {
    text: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().expect("output lock")).into_owned()
    }

    /// Waits until the pipe is closed (the process has exited), so nothing is missed.
    fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> Output {
    let mut output = Output::default();
    if let Some(mut pipe) = pipe {
        let sink = output.text.clone();
        output.reader = Some(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("output lock")
                    .extend_from_slice(&buf[..n]);
            }
        }));
    }
    output
}

/// A route table served inside the test process, on real sockets.
pub struct InProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The state its handlers see.
    pub state: Arc<AppState>,
    shutdown: CancellationToken,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl InProcess {
    /// Serves the production table plus whatever `extra` adds, with `config`.
    pub async fn start(config: Config, extra: impl FnOnce(&mut RouteTable)) -> InProcess {
        let mut table = agent_server::http::routes::table();
        extra(&mut table);
        let state = Arc::new(AppState::new(config));
        state.mark_ready();
        let app = App::new(state.clone(), table).expect("valid route table");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let shutdown = state.shutdown.clone();
        let served = tokio::spawn(agent_server::http::serve(listener, app, shutdown.clone()));
        InProcess {
            addr,
            state,
            shutdown,
            served: Some(served),
        }
    }

    /// A client on a new connection.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Begins a graceful shutdown and waits (bounded) until serving has stopped.
    pub async fn shut_down(mut self) {
        self.shutdown.cancel();
        if let Some(served) = self.served.take() {
            tokio::time::timeout(TIMEOUT, served)
                .await
                .expect("serve did not return")
                .expect("serve task");
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// One header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An HTTP/1.1 client on one keep-alive connection.
pub struct Client {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Client { addr, sender }
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends a request with `headers` and `body`.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .body(Full::new(body.into()))
            .expect("request");
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        self.send(request).await
    }

    /// Sends a prepared request.
    pub async fn send(&mut self, request: hyper::Request<Full<Bytes>>) -> TestResponse {
        let exchange = async {
            // The server closes keep-alive connections idle for longer than
            // its header timeout (as uvicorn does after 5 s); a client opens
            // a new one then, as HTTP clients do.
            if self.sender.is_closed() || self.sender.ready().await.is_err() {
                *self = Client::connect(self.addr).await;
            }
            self.sender.ready().await.expect("connection ready");
            let response = self.sender.send_request(request).await.expect("response");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("body").to_bytes();
            TestResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .expect("request timed out")
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    /// `GET path` with headers.
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.request(Method::GET, path, headers, Bytes::new()).await
    }

    /// `method path` with a JSON body (and `content-type: application/json`).
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> TestResponse {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.request(method, path, &all, body.to_string()).await
    }

    /// `method path` with the session `key` and an optional JSON body; the
    /// status and the body parsed as JSON (`null` when empty, a string when
    /// it is not JSON).
    pub async fn api(
        &mut self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let auth = [("X-Session-API-Key", key)];
        let resp = match body {
            Some(b) => self.json(method, path, &auth, b).await,
            None => self.request(method, path, &auth, Bytes::new()).await,
        };
        let v = if resp.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&resp.body).unwrap_or_else(|_| Value::String(resp.text()))
        };
        (resp.status, v)
    }
}

/// Opens a WebSocket to `path` with extra headers.
pub async fn ws_connect(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("ws request");
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (socket, _response) =
        tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("ws handshake timed out")
            .expect("ws handshake");
    socket
}
