//! Start-up wiring: the shared application state, the listener (bound, or
//! inherited from systemd), readiness and watchdog notifications, signals,
//! and the run until a graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::conversations::{ConversationService, ServiceOptions, DEFAULT_TOOL_NAMES};
use crate::http::{self, App};
use crate::outbound::Outbound;
use crate::secrets::SecretCipher;
use crate::systemd;
use crate::webhooks::WebhookHub;

/// State shared by every request handler and background task. Later
/// services (conversations, bash, webhooks, …) become fields here.
#[derive(Debug)]
pub struct AppState {
    /// The effective configuration.
    pub config: Config,
    /// Tool names reported by `/server_info` as usable.
    pub usable_tools: Vec<String>,
    /// Cancelled when shutdown begins; long-lived tasks (WebSockets, agent
    /// runs) watch it to finish in time.
    pub shutdown: CancellationToken,
    /// The one outgoing HTTP client (LLM calls, webhooks).
    pub outbound: Outbound,
    /// The conversation service, set once at start-up before the server is ready.
    pub conversations: OnceLock<Arc<ConversationService>>,
    started: Instant,
    /// Milliseconds after `started` of the last activity.
    last_activity_ms: AtomicU64,
    ready: AtomicBool,
}

impl AppState {
    /// Fresh state for `config`; not ready until [`mark_ready`](Self::mark_ready).
    pub fn new(config: Config) -> Self {
        AppState {
            config,
            usable_tools: Vec::new(),
            shutdown: CancellationToken::new(),
            outbound: Outbound::new(),
            conversations: OnceLock::new(),
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
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
    let _ = state.conversations.set(conversations.clone());
    state.mark_ready();
    announce(addr);
    systemd::notify_ready(addr);
    systemd::spawn_watchdog(state.shutdown.clone());
    tokio::spawn(stop_on_signal(terminate, interrupt, state.shutdown.clone()));

    http::serve(listener, app, state.shutdown.clone()).await;
    conversations.shutdown().await;
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
    let tools = DEFAULT_TOOL_NAMES.iter().map(|t| t.to_string()).collect();
    let service =
        ConversationService::start(ServiceOptions::from_config(config, tools), cipher, hooks)
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
