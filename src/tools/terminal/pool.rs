//! Pre-started idle shells, so a conversation's first terminal command does
//! not wait for bash and `~/.bashrc` (which can take longer than the rest of
//! a short conversation: `pyenv init` alone takes 140 ms on a dev machine).
//!
//! # When a pooled shell is used
//!
//! The pool starts its shells exactly as a terminal without `env` params
//! would: the default bash found on `PATH`, the server's sanitized
//! environment plus the terminal's fixed variables (`TERM`, `PAGER`, …),
//! with `$HOME` as the starting directory. A terminal takes one only when it
//! would start the very same program with the very same environment, so
//! `~/.bashrc` saw exactly what it would have seen. A terminal whose `env`
//! params or `shell_path` make any difference starts its own shell as
//! before: an env param may be read by `~/.bashrc`, and the pool's shells
//! never see a conversation's values (nor its secrets).
//!
//! On handover the shell changes to the working directory (`cd -P`, so
//! `$PWD` is the physical path, as a shell started there computes it),
//! `OLDPWD` is reset to the exported-but-unset state a new bash has, and
//! `SECONDS` restarts at 0. What remains different from a shell started in
//! the working directory: `~/.bashrc` ran in `$HOME` and earlier, so an rc
//! file that looks at its starting directory (e.g. one that activates a
//! virtualenv found there) or at the clock behaves as it would in `$HOME`.
//! Set `terminal_pool_size` to 0 for the old behaviour.
//!
//! The server closes its pool when it stops; every pooled shell is also a
//! registered session, which the shutdown guard kills like any other.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::pty::SpawnSpec;
use super::session::{shell_env, Session};

/// A server's pool of `size` idle shells of the default bash (`None` when
/// `size` is 0 or there is no bash on `PATH`); nothing starts before
/// [`ShellPool::fill`].
pub fn server_pool(size: usize) -> Option<Arc<ShellPool>> {
    if size == 0 {
        return None;
    }
    let shell = super::find_bash()?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cwd = home
        .filter(|h| h.is_absolute() && h.is_dir())
        .unwrap_or_else(|| PathBuf::from("/"));
    Some(ShellPool::new(size, shell, shell_env(&[]), cwd))
}

struct Idle {
    /// Ready shells, oldest first.
    ready: Vec<Session>,
    /// Shells being started.
    starting: usize,
    /// Set by `close`: shells that finish starting are closed at once.
    closed: bool,
}

/// A bounded set of idle shells started from one spawn spec, refilled in the
/// background whenever one is taken.
pub struct ShellPool {
    size: usize,
    shell: PathBuf,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
    idle: Mutex<Idle>,
}

impl ShellPool {
    /// A pool of `size` shells of `shell` with environment `env`, started in
    /// `cwd`. Nothing starts until [`fill`](Self::fill).
    pub(super) fn new(
        size: usize,
        shell: PathBuf,
        env: Vec<(OsString, OsString)>,
        cwd: PathBuf,
    ) -> Arc<ShellPool> {
        Arc::new(ShellPool {
            size,
            shell,
            env,
            cwd,
            idle: Mutex::new(Idle {
                ready: Vec::new(),
                starting: 0,
                closed: false,
            }),
        })
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        // A panic while holding the lock leaves only plain counters behind.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts shells in the background until `size` are ready or starting
    /// (from the runtime; elsewhere it does nothing).
    pub fn fill(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let missing = {
            let mut idle = self.idle();
            let missing = match idle.closed {
                true => 0,
                false => self.size.saturating_sub(idle.ready.len() + idle.starting),
            };
            idle.starting += missing;
            missing
        };
        for _ in 0..missing {
            let pool = Arc::downgrade(self);
            let spec = SpawnSpec {
                shell: self.shell.clone(),
                cwd: self.cwd.clone(),
                env: self.env.clone(),
            };
            runtime.spawn(async move {
                let started = Session::start(spec, &CancellationToken::new()).await;
                // A pool dropped meanwhile drops (and so kills) the new shell.
                let Some(pool) = pool.upgrade() else { return };
                let surplus = {
                    let mut idle = pool.idle();
                    idle.starting -= 1;
                    match started {
                        Ok(session) if idle.closed => Some(session),
                        Ok(session) => {
                            idle.ready.push(session);
                            None
                        }
                        Err(e) => {
                            tracing::warn!(error = ?e, "could not pre-start a terminal shell");
                            None
                        }
                    }
                };
                if let Some(session) = surplus {
                    session.close().await;
                }
            });
        }
    }

    /// A ready shell for a terminal that would start `shell` with `env`, or
    /// `None` when none is ready or the terminal's shell would differ. Taking
    /// one starts its replacement.
    pub(super) async fn take(
        self: &Arc<Self>,
        shell: &Path,
        env: &[(OsString, OsString)],
    ) -> Option<Session> {
        if shell != self.shell || env != self.env.as_slice() {
            return None;
        }
        let mut dead = Vec::new();
        let taken = {
            let mut idle = self.idle();
            let mut taken = None;
            while let Some(mut session) = idle.ready.pop() {
                if session.has_exited() {
                    dead.push(session);
                } else {
                    taken = Some(session);
                    break;
                }
            }
            taken
        };
        for session in dead {
            session.close().await;
        }
        self.fill();
        taken
    }

    /// Kills the idle shells; shells still starting are killed when they are
    /// up, and none is started any more.
    pub async fn close(&self) {
        let ready = {
            let mut idle = self.idle();
            idle.closed = true;
            std::mem::take(&mut idle.ready)
        };
        for session in ready {
            session.close().await;
        }
    }

    /// How many shells are ready now.
    #[cfg(test)]
    pub fn ready(&self) -> usize {
        self.idle().ready.len()
    }
}

impl std::fmt::Debug for ShellPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellPool")
            .field("size", &self.size)
            .field("shell", &self.shell)
            .field("cwd", &self.cwd)
            .finish_non_exhaustive()
    }
}
