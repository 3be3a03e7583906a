//! systemd integration: socket activation (`LISTEN_FDS`), readiness
//! (`READY=1`), the watchdog (`WATCHDOG=1` at half of `WATCHDOG_USEC`) and
//! `STOPPING=1`. Everything is a no-op outside systemd.
//!
//! These read the process environment, as `sd_notify(3)` does: the variables
//! are addressed to this very process (`LISTEN_PID`, `WATCHDOG_PID`).

use std::net::SocketAddr;
use std::os::fd::FromRawFd;

use sd_notify::NotifyState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Variables meant for this process only; child processes (shells, browsers)
/// are started without them ([`sanitized_env`](crate::util::env::sanitized_env)).
pub const PRIVATE_ENV: &[&str] = &[
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "CREDENTIALS_DIRECTORY",
];

/// The listening socket systemd passed as fd 3, if `LISTEN_FDS`/`LISTEN_PID`
/// name this process.
pub fn inherited_listener() -> std::io::Result<Option<TcpListener>> {
    let mut fds = sd_notify::listen_fds()?;
    let count = fds.len();
    let Some(fd) = fds.next() else {
        return Ok(None);
    };
    if count > 1 {
        tracing::warn!("systemd passed {count} sockets; serving the first only");
    }
    // SAFETY: `listen_fds` vouches that fd 3 onwards were passed to this
    // process by the service manager and are not owned by anything else.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    // Fails for anything that is not an IP socket, which is all we can serve.
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    tracing::info!(%addr, "using the socket passed by systemd");
    TcpListener::from_std(listener).map(Some)
}

/// Tells systemd the server is listening.
pub fn notify_ready(addr: SocketAddr) {
    let status = format!("listening on http://{addr}");
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Tells systemd the server is shutting down.
pub fn notify_stopping() {
    notify(&[NotifyState::Stopping]);
}

/// Pings the watchdog at half its interval until `shutdown`, if systemd asked for it.
pub fn spawn_watchdog(shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(std::time::Duration::from_millis(1));
    tracing::debug!(?period, "watchdog enabled");
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = ticks.tick() => notify(&[NotifyState::Watchdog]),
                _ = shutdown.cancelled() => break,
            }
        }
    });
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify failed: {e}");
    }
}
