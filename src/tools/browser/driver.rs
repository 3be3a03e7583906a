//! Processes: finding `chromedriver` and Chromium, the shared chromedriver,
//! starting one Chromium session, killing what is ours, the concurrency cap
//! and the start-up check.
//!
//! Everything of ours lives under one directory per server process,
//! `<tmp>/agent-server-browsers-<pid>/`: chromedriver's log, the
//! `XDG_CONFIG_HOME`/`XDG_CACHE_HOME` it and its browsers use (so Chromium's
//! crashpad handlers name it too) and one `profile-<uuid>` per session. Every
//! Chromium process carries its profile path in its command line, so a
//! session's processes are found by that marker and all of ours by the root
//! path, even after chromedriver is gone.
//!
//! chromedriver counts as alive only when it answers `GET /status` as
//! ready: a process that was just killed but not yet reaped, or one that
//! hangs, is replaced before a session is created on it; and a new-session
//! request that gets no answer at all checks it again and retries once.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use fantoccini::error::NewSessionError;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::sync::{Mutex, Notify, OnceCell};

use crate::tools::BrowserSettings;

/// The apt command that installs both programs on Debian and Ubuntu.
pub const APT_HINT: &str = "apt-get install -y chromium chromium-driver";

/// How long chromedriver may take to accept connections.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a running chromedriver may take to answer `GET /status`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Start attempts (each on a new port) before chromedriver is given up on.
const START_ATTEMPTS: usize = 3;
/// How long Chromium may take to start and open its first tab.
const SESSION_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Page loads and scripts slower than this fail the action.
pub const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// The window size; in `--headless=new` it includes the (invisible) browser UI.
const WINDOW_SIZE: &str = "1280,1024";

/// The located programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binaries {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
}

fn find_in_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn locate_one(
    what: &str,
    configured: Option<&Path>,
    setting: &str,
    names: &[&str],
    fallback: &str,
) -> Result<PathBuf, String> {
    if let Some(path) = configured {
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(format!(
                "{what} not found at {} (from the {setting} setting). Install it with: {APT_HINT}",
                path.display()
            ))
        };
    }
    if let Some(found) = find_in_path(names) {
        return Ok(found);
    }
    let fallback = Path::new(fallback);
    if is_executable(fallback) {
        return Ok(fallback.to_path_buf());
    }
    Err(format!(
        "{what} not found (looked for {} on PATH and at {}; set {setting} to use another location). Install it with: {APT_HINT}",
        names.join(", "),
        fallback.display()
    ))
}

/// Finds chromedriver and Chromium: the settings' paths, then `PATH`, then
/// Debian's locations. Blocking (file metadata): call it off the runtime.
pub fn locate(settings: &BrowserSettings) -> Result<Binaries, String> {
    let chromedriver = locate_one(
        "chromedriver",
        settings.chromedriver_path.as_deref(),
        "chromedriver_path",
        &["chromedriver"],
        "/usr/bin/chromedriver",
    );
    let chromium = locate_one(
        "Chromium",
        settings.chromium_path.as_deref(),
        "chromium_path",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ],
        "/usr/lib/chromium/chromium",
    );
    match (chromedriver, chromium) {
        (Ok(chromedriver), Ok(chromium)) => Ok(Binaries {
            chromedriver,
            chromium,
        }),
        (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

async fn locate_async(settings: &BrowserSettings) -> Result<Binaries, String> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || locate(&settings))
        .await
        .unwrap_or_else(|e| Err(format!("could not look for the browser: {e}")))
}

/// The directory holding every browser file of this server process.
pub fn browser_root_dir() -> PathBuf {
    std::env::temp_dir().join(format!("agent-server-browsers-{}", std::process::id()))
}

/// One running chromedriver.
struct Driver {
    child: std::process::Child,
    port: u16,
    binary: PathBuf,
    log: PathBuf,
}

/// Why one start attempt failed.
enum StartFailure {
    /// chromedriver exited before it answered: most likely the port picked
    /// for it was taken between our probe and its bind. Worth another port.
    Exited(String),
    /// Anything else: reported as is.
    Fatal(String),
}

impl Driver {
    /// Starts chromedriver on a free loopback port in its own process group
    /// and waits until it answers `GET /status`. A chromedriver that exits
    /// during start-up is tried again on another port.
    async fn start(binary: &Path, dir: &Path) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(binary, dir).await {
                Ok(driver) => return Ok(driver),
                Err(StartFailure::Exited(e)) => last = e,
                Err(StartFailure::Fatal(e)) => return Err(e),
            }
        }
        Err(last)
    }

    async fn start_once(binary: &Path, dir: &Path) -> Result<Self, StartFailure> {
        let binary = binary.to_path_buf();
        let dir = dir.to_path_buf();
        let spawned = tokio::task::spawn_blocking(move || -> io::Result<Driver> {
            use std::os::unix::process::CommandExt as _;
            for sub in ["xdg-config", "xdg-cache"] {
                std::fs::create_dir_all(dir.join(sub))?;
            }
            let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
                .local_addr()?
                .port();
            let log = dir.join(format!("chromedriver-{port}.log"));
            // Chromium inherits chromedriver's environment: neither may see the
            // server's credentials or systemd's notify socket.
            let child = std::process::Command::new(&binary)
                .env_clear()
                .envs(crate::util::env::sanitized_env())
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .arg("--log-level=WARNING")
                .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
                .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()?;
            Ok(Driver {
                child,
                port,
                binary,
                log,
            })
        })
        .await
        .map_err(|e| StartFailure::Fatal(format!("could not start chromedriver: {e}")))?;
        let mut driver = spawned
            .map_err(|e| StartFailure::Fatal(format!("could not start chromedriver: {e}")))?;
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        loop {
            // Asking for its status, not just connecting, tells chromedriver
            // apart from another program that took the port.
            if probe(driver.port).await {
                return Ok(driver);
            }
            if let Some(status) = driver.exit_status() {
                return Err(StartFailure::Exited(format!(
                    "chromedriver exited during start-up ({status}); see {}",
                    driver.log.display()
                )));
            }
            if Instant::now() >= deadline {
                let port = driver.port;
                driver.kill().await;
                return Err(StartFailure::Fatal(format!(
                    "chromedriver did not answer on 127.0.0.1:{port} within {}s",
                    DRIVER_START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The exit status, once chromedriver has exited (reaping it).
    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Whether chromedriver still runs and answers. A process that was
    /// just killed may not have exited yet, so the answer decides.
    async fn is_healthy(&mut self) -> bool {
        self.exit_status().is_none() && probe(self.port).await
    }

    /// Kills chromedriver's whole process group and reaps it.
    async fn kill(mut self) {
        let pid = self.child.id() as i32;
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = tokio::task::spawn_blocking(move || {
            let _ = self.child.kill();
            let _ = self.child.wait();
        })
        .await;
    }
}

/// Whether a chromedriver on `port` answers `GET /status` with `ready: true`.
async fn probe(port: u16) -> bool {
    use http_body_util::BodyExt as _;
    let check = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .ok()?;
        let request = http::Request::get("/status")
            .header(http::header::HOST, format!("127.0.0.1:{port}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .ok()?;
        // Driven on its own task, aborted on return: the connection may
        // close as soon as the answer is sent.
        let _connection = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(connection));
        let response = sender.send_request(request).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        let status: Value = serde_json::from_slice(&body).ok()?;
        status["value"]["ready"].as_bool()
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, check).await,
        Ok(Some(true))
    )
}

/// The chromedriver shared by every session of this process.
static SHARED_DRIVER: Mutex<Option<Driver>> = Mutex::const_new(None);

static STALE_SWEPT: OnceCell<()> = OnceCell::const_new();

/// Kills the browsers of earlier server processes that died without
/// [`shutdown_browsers`] (SIGKILL, a crash) and removes their directories:
/// their root directory names a process id that no longer runs. Blocking.
fn sweep_stale_roots() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("agent-server-browsers-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let root = entry.path();
        for pid in pids_with_marker(&root.display().to_string()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// The shared chromedriver's URL, starting (or restarting) it when needed.
async fn shared_driver(binaries: &Binaries) -> Result<String, String> {
    let mut slot = SHARED_DRIVER.lock().await;
    if let Some(driver) = slot.as_mut() {
        if driver.binary == binaries.chromedriver && driver.is_healthy().await {
            return Ok(driver.url());
        }
    }
    if let Some(old) = slot.take() {
        old.kill().await;
    }
    STALE_SWEPT
        .get_or_init(|| async {
            let _ = tokio::task::spawn_blocking(sweep_stale_roots).await;
        })
        .await;
    let driver = Driver::start(&binaries.chromedriver, &browser_root_dir()).await?;
    let url = driver.url();
    *slot = Some(driver);
    Ok(url)
}

/// Chromium's command-line flags for one session.
fn chromium_args(profile: &Path) -> Vec<String> {
    let mut args = vec![
        "--headless=new".to_string(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-sync".into(),
        "--disable-extensions".into(),
        "--mute-audio".into(),
        format!("--window-size={WINDOW_SIZE}"),
        format!("--user-data-dir={}", profile.display()),
    ];
    // Chromium refuses to start as root with its sandbox enabled.
    if nix::unistd::geteuid().is_root() {
        args.push("--no-sandbox".into());
    }
    args
}

/// A session's profile directory, the marker of its processes. Dropped
/// without [`ProfileGuard::cleanup`] (a session dropped without being
/// closed, a start-up abandoned midway), it kills whatever still uses the
/// directory and removes it on a separate thread.
pub struct ProfileGuard {
    path: PathBuf,
    cleaned: bool,
}

impl ProfileGuard {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            cleaned: false,
        }
    }

    /// Kills the session's remaining processes and removes the directory.
    pub async fn cleanup(&mut self) {
        cleanup_profile(&self.path).await;
        self.cleaned = true;
    }
}

impl Drop for ProfileGuard {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let path = self.path.clone();
        std::thread::spawn(move || {
            let marker = path.display().to_string();
            for pid in pids_with_marker(&marker) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            // Dying processes may still write into the profile.
            for _ in 0..10 {
                match std::fs::remove_dir_all(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    _ => return,
                }
            }
        });
    }
}

/// A started browser session.
pub struct Launched {
    pub client: Client,
    /// The session's own profile directory.
    pub profile: ProfileGuard,
    /// Chromium's version as reported by chromedriver.
    pub browser_version: String,
}

/// Why a session could not be created.
enum ConnectError {
    /// chromedriver did not answer the new-session request at all.
    Unreachable(String),
    /// chromedriver answered with a failure, or we could not even ask.
    Failed(String),
}

impl ConnectError {
    fn into_message(self) -> String {
        match self {
            ConnectError::Unreachable(e) | ConnectError::Failed(e) => e,
        }
    }
}

async fn connect(
    driver_url: &str,
    binaries: &Binaries,
    mut profile: ProfileGuard,
) -> Result<Launched, ConnectError> {
    tokio::fs::create_dir_all(&profile.path)
        .await
        .map_err(|e| {
            ConnectError::Failed(format!(
                "could not create the profile directory {}: {e}",
                profile.path.display()
            ))
        })?;
    let caps = json!({
        "browserName": "chrome",
        "pageLoadStrategy": "normal",
        "unhandledPromptBehavior": "accept",
        "timeouts": {
            "pageLoad": PAGE_LOAD_TIMEOUT.as_millis() as u64,
            "script": PAGE_LOAD_TIMEOUT.as_millis() as u64,
        },
        "goog:chromeOptions": {
            "binary": binaries.chromium.display().to_string(),
            "args": chromium_args(&profile.path),
        },
    });
    let Value::Object(caps) = caps else {
        return Err(ConnectError::Failed(
            "capabilities must be an object".into(),
        ));
    };
    let connecting = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(driver_url)
        .await;
    let client = match connecting {
        Ok(client) => client,
        Err(e) => {
            profile.cleanup().await;
            let message = format!(
                "Chromium ({}) could not be started through chromedriver: {e}",
                binaries.chromium.display()
            );
            return Err(match e {
                NewSessionError::Failed(_)
                | NewSessionError::FailedC(_)
                | NewSessionError::Lost(_) => ConnectError::Unreachable(message),
                _ => ConnectError::Failed(message),
            });
        }
    };
    let browser_version = client
        .capabilities()
        .and_then(|c| c.get("browserVersion"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    Ok(Launched {
        client,
        profile,
        browser_version,
    })
}

fn new_profile() -> ProfileGuard {
    ProfileGuard::new(browser_root_dir().join(format!("profile-{}", uuid::Uuid::new_v4().simple())))
}

/// Starts a new Chromium session on the shared chromedriver. If chromedriver
/// does not answer the new-session request (it died, or stopped answering,
/// since it was checked), it is checked again, restarted if it is not
/// healthy, and the session is tried once more. If the start is abandoned
/// (timeout, cancellation), the profile guard cleans up.
pub async fn launch(settings: &BrowserSettings) -> Result<Launched, String> {
    let binaries = locate_async(settings).await?;
    let start = async {
        let driver_url = shared_driver(&binaries).await?;
        match connect(&driver_url, &binaries, new_profile()).await {
            Err(ConnectError::Unreachable(e)) => {
                tracing::warn!(error = %e, "chromedriver did not answer; checking it and retrying once");
                let driver_url = shared_driver(&binaries).await?;
                connect(&driver_url, &binaries, new_profile())
                    .await
                    .map_err(ConnectError::into_message)
            }
            other => other.map_err(ConnectError::into_message),
        }
    };
    tokio::time::timeout(SESSION_START_TIMEOUT, start)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "Chromium did not start within {}s",
                SESSION_START_TIMEOUT.as_secs()
            ))
        })
}

/// Process ids whose command line contains `marker` (zombies have none).
/// Blocking: reads `/proc`.
pub(super) fn pids_with_marker(marker: &str) -> Vec<i32> {
    let own = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
                String::from_utf8_lossy(&raw)
                    .replace('\0', " ")
                    .contains(marker)
            })
        })
        .collect()
}

/// The processes (by pid) whose command line names `marker`.
pub async fn processes_with_marker(marker: &Path) -> Vec<i32> {
    let marker = marker.display().to_string();
    tokio::task::spawn_blocking(move || pids_with_marker(&marker))
        .await
        .unwrap_or_default()
}

/// SIGKILLs every process whose command line names `marker`.
pub async fn kill_marked(marker: &Path) {
    for pid in processes_with_marker(marker).await {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Removes a directory Chromium may still be writing to while it dies.
async fn remove_dir_with_retries(dir: &Path) {
    for _ in 0..10 {
        match tokio::fs::remove_dir_all(dir).await {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Kills whatever still runs with this profile and removes the directory.
pub async fn cleanup_profile(profile: &Path) {
    kill_marked(profile).await;
    remove_dir_with_retries(profile).await;
}

/// Server-wide shutdown: kills the shared chromedriver and every Chromium
/// process of this server, and removes their files. Call it once when the
/// server stops, after the conversations' tools were closed. A later browser
/// call would start a fresh chromedriver.
pub async fn shutdown_browsers() {
    if let Some(driver) = SHARED_DRIVER.lock().await.take() {
        driver.kill().await;
    }
    let root = browser_root_dir();
    kill_marked(&root).await;
    remove_dir_with_retries(&root).await;
}

/// Counts open browsers against `max_concurrent_browsers`.
struct Limiter {
    open: StdMutex<usize>,
    freed: Notify,
}

static LIMITER: Limiter = Limiter {
    open: StdMutex::new(0),
    freed: Notify::const_new(),
};

/// A slot under the concurrency cap, released on drop.
#[derive(Debug)]
pub struct BrowserPermit(());

impl Drop for BrowserPermit {
    fn drop(&mut self) {
        if let Ok(mut open) = LIMITER.open.lock() {
            *open = open.saturating_sub(1);
        }
        LIMITER.freed.notify_waiters();
    }
}

/// Takes a slot for a new browser, waiting up to `wait` when `cap` browsers
/// are open (`cap == 0`: no cap).
pub async fn acquire_permit(cap: usize, wait: Duration) -> Result<BrowserPermit, String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let freed = LIMITER.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        {
            let mut open = LIMITER
                .open
                .lock()
                .map_err(|_| "the browser limiter is unusable".to_string())?;
            if cap == 0 || *open < cap {
                *open += 1;
                return Ok(BrowserPermit(()));
            }
        }
        if tokio::time::timeout_at(deadline, freed).await.is_err() {
            return Err(format!(
                "Too many browsers are open: the server allows {cap} at a time (max_concurrent_browsers) and none was closed within {}s. Close the browser of another conversation or try again later.",
                wait.as_secs()
            ));
        }
    }
}

async fn command_version(binary: &Path) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(binary)
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match output {
        Ok(Ok(out)) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
        _ => "version unknown".into(),
    }
}

/// Starts a private chromedriver and Chromium, loads a `data:` page and
/// reports what it found; the error says exactly what is missing and how to
/// install it. Nothing is left running afterwards.
pub async fn check_browser(settings: &BrowserSettings) -> Result<String, String> {
    let binaries = locate_async(settings).await?;
    let driver_version = command_version(&binaries.chromedriver).await;
    let dir = browser_root_dir().join(format!("check-{}", uuid::Uuid::new_v4().simple()));
    let result = async {
        let driver = Driver::start(&binaries.chromedriver, &dir).await?;
        let session = tokio::time::timeout(
            SESSION_START_TIMEOUT,
            connect(&driver.url(), &binaries, ProfileGuard::new(dir.join("profile"))),
        )
        .await
        .map(|r| r.map_err(ConnectError::into_message))
        .unwrap_or_else(|_| Err(format!("Chromium did not start within {}s", SESSION_START_TIMEOUT.as_secs())));
        let outcome = match session {
            Ok(launched) => {
                let page = "data:text/html,<title>agent-server browser check</title><p>ok</p>";
                let title = match launched.client.goto(page).await {
                    Ok(()) => launched.client.title().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), launched.client.close()).await;
                let mut profile = launched.profile;
                profile.cleanup().await;
                match title {
                    Ok(title) if title == "agent-server browser check" => Ok(format!(
                        "chromedriver: {} ({driver_version})\nchromium: {} (version {})\npage load: ok (title \"{title}\")",
                        binaries.chromedriver.display(),
                        binaries.chromium.display(),
                        launched.browser_version
                    )),
                    Ok(other) => Err(format!("Chromium loaded the test page but reported the title {other:?}")),
                    Err(e) => Err(format!("Chromium started but could not load a page: {e}")),
                }
            }
            Err(e) => Err(e),
        };
        driver.kill().await;
        outcome
    }
    .await;
    kill_marked(&dir).await;
    remove_dir_with_retries(&dir).await;
    result.map_err(|e| {
        format!(
            "{e}\nchromedriver: {} ({driver_version}); chromium: {}. If a package is missing, install it with: {APT_HINT}",
            binaries.chromedriver.display(),
            binaries.chromium.display()
        )
    })
}

static AVAILABLE: OnceCell<bool> = OnceCell::const_new();

/// Whether the browser works here: runs [`check_browser`] once per process
/// and caches the answer (`/server_info` lists browser tools only when true).
pub async fn browser_available(settings: &BrowserSettings) -> bool {
    *AVAILABLE
        .get_or_init(|| async { check_browser(settings).await.is_ok() })
        .await
}

/// The cached answer of [`browser_available`], if it ran.
pub fn known_availability() -> Option<bool> {
    AVAILABLE.get().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_name_the_apt_command() {
        let settings = BrowserSettings {
            chromedriver_path: Some("/nonexistent/chromedriver".into()),
            chromium_path: Some("/nonexistent/chromium".into()),
            ..BrowserSettings::default()
        };
        let err = locate(&settings).unwrap_err();
        assert!(err.contains("/nonexistent/chromedriver"));
        assert!(err.contains("/nonexistent/chromium"));
        assert!(err.contains(APT_HINT));
    }

    #[test]
    fn sandbox_flag_only_as_root() {
        let args = chromium_args(Path::new("/tmp/p"));
        assert!(args.contains(&"--headless=new".to_string()));
        assert!(args.contains(&"--user-data-dir=/tmp/p".to_string()));
        assert_eq!(
            args.contains(&"--no-sandbox".to_string()),
            nix::unistd::geteuid().is_root()
        );
    }

    #[test]
    fn stale_roots_of_dead_processes_are_removed() {
        // Pid numbers above the kernel's maximum (4194304) never run.
        let stale = std::env::temp_dir().join("agent-server-browsers-4999999");
        std::fs::create_dir_all(stale.join("profile-x")).unwrap();
        let live = browser_root_dir().join("sweep-test-keep");
        std::fs::create_dir_all(&live).unwrap();
        sweep_stale_roots();
        assert!(!stale.exists());
        assert!(live.exists());
        std::fs::remove_dir_all(&live).unwrap();
        let _ = std::fs::remove_dir(browser_root_dir());
    }

    /// Serves one fixed HTTP response to every connection; the port.
    async fn answering(body: &'static str) -> u16 {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn the_probe_wants_a_ready_chromedriver() {
        assert!(
            probe(answering(r#"{"value":{"ready":true,"message":"ChromeDriver ready"}}"#).await)
                .await
        );
        assert!(!probe(answering(r#"{"value":{"ready":false}}"#).await).await);
        assert!(!probe(answering("<html>some other server</html>").await).await);
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!probe(closed).await);
    }

    #[tokio::test]
    async fn permits_queue_then_refuse() {
        // A cap no other test uses keeps this independent of real browsers.
        let cap = 1000;
        let held: Vec<_> = {
            let mut v = Vec::new();
            while let Ok(p) = acquire_permit(cap, Duration::ZERO).await {
                v.push(p);
                if v.len() >= cap {
                    break;
                }
            }
            v
        };
        assert!(!held.is_empty());
        let refused = acquire_permit(cap, Duration::from_millis(50)).await;
        assert!(refused.unwrap_err().contains("max_concurrent_browsers"));
        let waiter = tokio::spawn(acquire_permit(cap, Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(waiter.await.unwrap().is_ok());
    }
}
