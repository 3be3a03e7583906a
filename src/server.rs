//! Start-up wiring: the shared application state, the listener (bound, or
//! inherited from systemd), readiness and watchdog notifications, signals,
//! and the run until a graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::agent::AgentRuntime;
use crate::bash::BashServices;
use crate::config::Config;
use crate::conversations::{ConversationService, ServiceOptions};
use crate::http::{self, App};
use crate::outbound::Outbound;
use crate::secrets::SecretCipher;
use crate::systemd;
use crate::tools::{browser, registry, terminal, ToolSettings};
use crate::webhooks::WebhookHub;

/// Where a conversation keeps its files, for the routes that act inside one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationPlace {
    /// The conversation's own directory (`{conversations_path}/{id-hex}`).
    pub dir: PathBuf,
    /// Its workspace's working directory, absolute.
    pub working_dir: PathBuf,
}

/// Finds conversations for the conversation-scoped bash and workspace
/// routes. The conversation service implements it and is installed with
/// [`AppState::set_conversations`]; until then every conversation is unknown.
pub trait ConversationLookup: Send + Sync {
    /// The conversation's place, or `None` when there is no such conversation.
    fn find(&self, id: Uuid) -> BoxFuture<'_, Option<ConversationPlace>>;
}

/// State shared by every request handler and background task. Later
/// services (conversations, bash, webhooks, …) become fields here.
pub struct AppState {
    /// The effective configuration.
    pub config: Config,
    /// The server-level and conversation-scoped bash services.
    pub bash: BashServices,
    /// The conversations, once a lookup is installed.
    conversations: OnceLock<Arc<dyn ConversationLookup>>,
    /// The conversation service, set once at start-up before the server is ready.
    conversation_service: OnceLock<Arc<ConversationService>>,
    /// The agent runtime, set once at start-up with the conversation service.
    agent: OnceLock<AgentRuntime>,
    /// The one outgoing HTTP client (LLM calls, webhooks).
    pub outbound: Outbound,
    /// Cancelled when shutdown begins; long-lived tasks (WebSockets, agent
    /// runs) watch it to finish in time.
    pub shutdown: CancellationToken,
    started: Instant,
    /// Milliseconds after `started` of the last activity.
    last_activity_ms: AtomicU64,
    ready: AtomicBool,
}

impl AppState {
    /// Fresh state for `config`; not ready until [`mark_ready`](Self::mark_ready).
    pub fn new(config: Config) -> Self {
        AppState {
            bash: BashServices::new(
                config.bash_events_dir.clone(),
                config.bash_events_retention_seconds,
            ),
            conversations: OnceLock::new(),
            conversation_service: OnceLock::new(),
            agent: OnceLock::new(),
            outbound: Outbound::new(),
            config,
            shutdown: CancellationToken::new(),
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// Installs the conversation lookup; `false` if one was installed already.
    pub fn set_conversations(&self, lookup: Arc<dyn ConversationLookup>) -> bool {
        self.conversations.set(lookup).is_ok()
    }

    /// Installs the conversation service (and it as the conversation lookup);
    /// `false` if one was installed already.
    pub fn set_conversation_service(&self, service: Arc<ConversationService>) -> bool {
        let lookup: Arc<dyn ConversationLookup> = service.clone();
        self.conversation_service.set(service).is_ok() && self.set_conversations(lookup)
    }

    /// The conversation service; `None` until start-up installed it.
    pub fn conversation_service(&self) -> Option<&Arc<ConversationService>> {
        self.conversation_service.get()
    }

    /// Creates the agent runtime and installs it as the conversation
    /// service's runner; `false` if one was installed already. `server_url`
    /// is where relative `LookupSecret` URLs point ([`internal_server_url`]).
    pub fn install_agent(&self, service: &Arc<ConversationService>, server_url: String) -> bool {
        let settings = ToolSettings {
            terminal_pool: terminal::server_pool(self.config.terminal_pool_size),
            ..(*registry::tool_settings(&self.config)).clone()
        };
        let runtime = AgentRuntime::new(self.outbound.clone(), Arc::new(settings), server_url);
        runtime.attach(service);
        self.agent.set(runtime).is_ok()
    }

    /// The agent runtime; `None` until start-up installed it.
    pub fn agent(&self) -> Option<&AgentRuntime> {
        self.agent.get()
    }

    /// The conversation `id`'s place; `None` when it is unknown (or no
    /// lookup is installed).
    pub async fn find_conversation(&self, id: Uuid) -> Option<ConversationPlace> {
        let lookup = self.conversations.get()?.clone();
        lookup.find(id).await
    }

    /// The tool names `/server_info` reports as usable: the browser only
    /// once its start-up check has passed.
    pub fn usable_tools(&self) -> Vec<String> {
        let browser = self.config.enable_browser && browser::known_availability() == Some(true);
        registry::usable_tool_names(browser)
    }

    /// Records activity (a conversation event, a bash or file call): resets `idle_time`.
    pub fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_activity_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Time since the last activity (or since start).
    pub fn idle_time(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Whether start-up has finished (`/ready` answers 200).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks start-up as finished.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("bash", &self.bash)
            .field("conversations", &self.conversations.get().is_some())
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The address could not be bound.
    Bind(String, std::io::Error),
    /// systemd passed a socket that cannot be used.
    Inherited(std::io::Error),
    /// The route table or another part of the set-up is invalid.
    Setup(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Inherited(e) => write!(f, "cannot use the socket passed by systemd: {e}"),
            StartError::Setup(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The server's own URL, for relative `LookupSecret` URLs:
/// `OH_INTERNAL_SERVER_URL` when set (behind a proxy, in a container),
/// else the bound address, a wildcard bind reached over 127.0.0.1 (as the
/// Python server does).
pub fn internal_server_url(bound: SocketAddr) -> String {
    let given = std::env::var("OH_INTERNAL_SERVER_URL")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if let Some(given) = given {
        return given;
    }
    let ip = if bound.ip().is_unspecified() {
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    } else {
        bound.ip()
    };
    format!("http://{}", SocketAddr::new(ip, bound.port()))
}

/// Runs the server until SIGTERM or SIGINT, then drains and returns.
pub async fn run(config: Config) -> Result<(), StartError> {
    // Signal handlers exist before anyone can learn the address, so an early
    // SIGTERM is a graceful shutdown rather than the default death.
    let terminate =
        signal(SignalKind::terminate()).map_err(|e| StartError::Setup(e.to_string()))?;
    let interrupt =
        signal(SignalKind::interrupt()).map_err(|e| StartError::Setup(e.to_string()))?;

    let listener = match systemd::inherited_listener().map_err(StartError::Inherited)? {
        Some(listener) => listener,
        None => {
            let addr = (config.effective_host(), config.port);
            TcpListener::bind((addr.0.as_str(), addr.1))
                .await
                .map_err(|e| StartError::Bind(format!("{}:{}", addr.0, addr.1), e))?
        }
    };
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Setup(format!("listener address: {e}")))?;

    let state = Arc::new(AppState::new(config));
    let app = App::new(state.clone(), http::routes::table())
        .map_err(|e| StartError::Setup(e.to_string()))?;
    if state.config.session_api_keys.is_empty() {
        tracing::warn!(
            "no session API keys configured: every request is accepted without authentication"
        );
    }
    let conversations = start_conversations(&state).await?;
    state.set_conversation_service(conversations.clone());
    state.install_agent(&conversations, internal_server_url(addr));
    // Opened in the background (its index is a directory listing) so an
    // unusable events directory shows in the log at start without delaying
    // readiness; the routes try again on every call.
    let bash_state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = bash_state.bash.global().await {
            tracing::error!("bash service: {e}");
        }
    });
    state.mark_ready();
    announce(addr);
    systemd::notify_ready(addr);
    // Once ready, so bash and `~/.bashrc` do not compete with start-up.
    if let Some(pool) = state
        .agent()
        .and_then(|a| a.tool_settings().terminal_pool.clone())
    {
        pool.fill();
    }
    // Started once ready, so Chromium's launch does not delay the first answer.
    let browser_check = state.config.enable_browser.then(|| {
        let settings = registry::tool_settings(&state.config);
        tokio::spawn(async move {
            let usable = browser::browser_available(&settings.browser).await;
            tracing::info!(usable, "browser check finished");
        })
    });
    systemd::spawn_watchdog(state.shutdown.clone());
    tokio::spawn(stop_on_signal(terminate, interrupt, state.shutdown.clone()));

    http::serve(listener, app, state.shutdown.clone()).await;
    conversations.shutdown().await;
    if let Some(pool) = state
        .agent()
        .and_then(|a| a.tool_settings().terminal_pool.clone())
    {
        pool.close().await;
    }
    state.bash.shutdown().await;
    if let Some(check) = browser_check {
        // An unfinished check leaves Chromium behind; the sweep below ends it.
        check.abort();
        browser::shutdown_browsers().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Reads the conversation catalog (and recovers conversations left
/// running) before the server reports ready.
async fn start_conversations(
    state: &Arc<AppState>,
) -> Result<Arc<ConversationService>, StartError> {
    let config = &state.config;
    let cipher = Arc::new(SecretCipher::from_config(config));
    let hooks = WebhookHub::new(
        &config.webhooks,
        config.session_api_keys.first().map(String::as_str),
        state.outbound.clone(),
    );
    let options = ServiceOptions::from_config(config, registry::tool_names());
    let service = ConversationService::start(options, cipher, hooks)
        .await
        .map_err(|e| {
            StartError::Setup(format!(
                "cannot open the conversations directory {}: {e}",
                config.conversations_path.display()
            ))
        })?;
    let weak = Arc::downgrade(state);
    service.set_activity_hook(Arc::new(move || {
        if let Some(s) = weak.upgrade() {
            s.touch();
        }
    }));
    Ok(service)
}

/// Logs the address and prints it on stdout, where test harnesses and scripts read it.
fn announce(addr: SocketAddr) {
    tracing::info!(%addr, "listening on http://{addr}");
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop the server.
    let _ =
        writeln!(stdout, "agent-server listening on http://{addr}").and_then(|()| stdout.flush());
}

async fn stop_on_signal(
    mut terminate: tokio::signal::unix::Signal,
    mut interrupt: tokio::signal::unix::Signal,
    shutdown: CancellationToken,
) {
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!("{name} received: shutting down");
    systemd::notify_stopping();
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_resets_on_touch() {
        let state = AppState::new(Config::default());
        std::thread::sleep(Duration::from_millis(20));
        assert!(state.idle_time() >= Duration::from_millis(20));
        state.touch();
        // The touch came at least 20 ms after start, so idle time trails uptime by as much.
        assert!(state.idle_time() + Duration::from_millis(20) <= state.uptime());
        assert!(!state.is_ready());
        state.mark_ready();
        assert!(state.is_ready());
    }
}
