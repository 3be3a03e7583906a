//! The pseudo-terminal and the bash process running in it.
//!
//! `openpty` gives a master/slave pair; bash runs on the slave as a session
//! leader with the slave as its controlling terminal, so job control, `C-c`
//! and full-screen programs behave as in a real terminal. Our copies of the
//! fds are close-on-exec, the master is non-blocking. A dedicated reader
//! thread drains the master into a capped buffer and bumps a watch counter,
//! so async code waits for output without ever blocking a tokio worker.
//!
//! Echo is switched off on the slave before bash starts: commands we type are
//! never echoed back (readline does not echo either when the terminal does
//! not), which removes the whole class of "strip the echoed command" bugs.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
use tokio::sync::watch;
use tokio::time::Instant;

use super::output::{alt_screen_switch, find_prompt, Prompt};
use super::procs::{kill_session, kill_session_now};

/// Terminal width: wide enough that ordinary output is not wrapped by
/// programs that format to the terminal width.
const COLUMNS: u16 = 256;
/// Terminal height: full-screen programs (`less`, `top`, `vim`) draw pages of
/// this many lines, which keeps their screens a readable size.
const ROWS: u16 = 50;
/// Output kept while a command runs; older output is dropped (at a line
/// boundary) and the observation says the output was cut.
const MAX_BUFFER: usize = 4 << 20;
/// How long typing may stall (a program that does not read its input) before
/// giving up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bash pids of all live sessions, for the shutdown guard.
static LIVE_SESSIONS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn live_sessions() -> MutexGuard<'static, BTreeSet<i32>> {
    LIVE_SESSIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every terminal session of this process at once (SIGKILL, no grace
/// period). For server shutdown; sessions closed normally are not affected.
pub fn kill_all_sessions() {
    let leaders = std::mem::take(&mut *live_sessions());
    for leader in &leaders {
        kill_session_now(*leader);
    }
    for leader in leaders {
        kill_session(leader, false);
    }
}

/// What to start.
pub(super) struct SpawnSpec {
    /// The bash binary.
    pub shell: PathBuf,
    /// The starting directory.
    pub cwd: PathBuf,
    /// The complete environment.
    pub env: Vec<(OsString, OsString)>,
}

/// Output of the shell since the last consumed prompt.
#[derive(Default)]
pub(super) struct OutBuf {
    /// The raw bytes.
    pub data: Vec<u8>,
    /// How much of `data` was already shown in an observation.
    pub seen: usize,
    /// Output was dropped from the front because of the size cap.
    pub trimmed: bool,
    /// The master reported end of file (no process has the terminal open).
    pub eof: bool,
    /// A full-screen program has switched to the alternate screen.
    pub alt_screen: bool,
    /// Where the next prompt search may start.
    scan_from: usize,
}

impl OutBuf {
    fn append(&mut self, bytes: &[u8]) {
        let tail_start = self.data.len().saturating_sub(16);
        self.data.extend_from_slice(bytes);
        if let Some(on) = alt_screen_switch(&self.data[tail_start..]) {
            self.alt_screen = on;
        }
        if self.data.len() > MAX_BUFFER {
            let excess = self.data.len() - MAX_BUFFER * 3 / 4;
            let cut = self.data[excess..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(excess, |i| excess + i + 1);
            self.drop_front(cut);
            self.trimmed = true;
        }
    }

    /// Removes the first `n` bytes.
    pub fn drop_front(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
        self.seen = self.seen.saturating_sub(n);
        self.scan_from = self.scan_from.saturating_sub(n);
    }

    /// The first complete prompt block in the buffer.
    pub fn find_prompt(&mut self) -> Option<Prompt> {
        match find_prompt(&self.data, self.scan_from) {
            Ok(prompt) => Some(prompt),
            Err(resume) => {
                self.scan_from = resume;
                None
            }
        }
    }

    /// Drops everything up to the end of `prompt` and starts a new command's output.
    pub fn consume_through(&mut self, prompt: &Prompt) {
        self.drop_front(prompt.end);
        self.seen = 0;
        self.scan_from = 0;
        self.trimmed = false;
    }

    /// The output not yet shown, now marked as shown.
    pub fn take_unseen(&mut self) -> Vec<u8> {
        let start = self.seen.min(self.data.len());
        let unseen = self.data[start..].to_vec();
        self.seen = self.data.len();
        unseen
    }
}

struct Shared {
    out: Mutex<OutBuf>,
    changes: watch::Sender<u64>,
}

/// A running bash in a pseudo-terminal. Dropping it kills the session.
pub(super) struct Pty {
    master: Arc<OwnedFd>,
    child: Option<Child>,
    pid: i32,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    /// Writing to this pipe stops the reader thread.
    stop: Option<OwnedFd>,
    closed: bool,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(errno)?;
    Ok(())
}

impl Pty {
    /// Starts `spec.shell -i` in a new pseudo-terminal. Blocking: call from
    /// `spawn_blocking`.
    pub fn spawn(spec: &SpawnSpec) -> io::Result<Pty> {
        let size = Winsize {
            ws_row: ROWS,
            ws_col: COLUMNS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pair = openpty(&size, None).map_err(errno)?;
        let (master, slave) = (pair.master, pair.slave);
        set_cloexec(&master)?;
        set_cloexec(&slave)?;
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL).map_err(errno)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(errno)?;
        let mut attrs = tcgetattr(&slave).map_err(errno)?;
        attrs.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&slave, SetArg::TCSANOW, &attrs).map_err(errno)?;

        let mut command = Command::new(&spec.shell);
        command
            .arg("-i")
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe system calls (setsid, ioctl).
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid().map_err(errno)?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        // The parent's copies of the slave must be closed, or the master never
        // sees end of file when the shell exits.
        drop(command);
        let pid = child.id() as i32;
        live_sessions().insert(pid);

        let (stop_rx, stop_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(errno)?;
        let (changes, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            out: Mutex::new(OutBuf::default()),
            changes,
        });
        let master = Arc::new(master);
        let reader = {
            let master = Arc::clone(&master);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("terminal-reader".into())
                .spawn(move || read_loop(&master, &stop_rx, &shared))
        };
        let mut pty = Pty {
            master,
            child: Some(child),
            pid,
            shared,
            reader: None,
            stop: Some(stop_tx),
            closed: false,
        };
        // On failure, dropping `pty` kills the shell.
        pty.reader = Some(reader?);
        Ok(pty)
    }

    /// The shell's pid (= its session id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Runs `f` on the output buffer.
    pub fn with_out<R>(&self, f: impl FnOnce(&mut OutBuf) -> R) -> R {
        let mut out = self.shared.out.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut out)
    }

    /// A receiver that changes whenever output arrives.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Writes all of `bytes` to the terminal, waiting (asynchronously) while
    /// the terminal's input queue is full.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        while !bytes.is_empty() {
            match nix::unistd::write(self.master.as_fd(), bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the terminal does not accept input",
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(e) => return Err(errno(e)),
            }
        }
        Ok(())
    }

    /// Whether the shell process has exited (reaps it if so).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => false,
            Some(Ok(Some(_))) => {
                self.child = None;
                true
            }
            Some(Err(_)) | None => true,
        }
    }

    /// Kills the session (gracefully, then by force), reaps the shell and
    /// stops the reader. Blocking: call from `spawn_blocking`.
    pub fn close_blocking(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        kill_session(self.pid, true);
        live_sessions().remove(&self.pid);
        if let Some(mut child) = self.child.take() {
            // Killed above, so this returns at once.
            let _ = child.wait();
        }
        if let Some(stop) = self.stop.take() {
            let _ = nix::unistd::write(stop.as_fd(), b"x");
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        // Not closed properly (a panic or a dropped future): signal at once
        // and leave the follow-up (processes forked meanwhile) and reaping to
        // a thread, so a drop never waits.
        kill_session_now(self.pid);
        live_sessions().remove(&self.pid);
        if let Some(stop) = self.stop.take() {
            let _ = nix::unistd::write(stop.as_fd(), b"x");
        }
        let pid = self.pid;
        let child = self.child.take();
        let reader = self.reader.take();
        let _ = std::thread::Builder::new()
            .name("terminal-reaper".into())
            .spawn(move || {
                kill_session(pid, false);
                if let Some(mut child) = child {
                    let _ = child.wait();
                }
                if let Some(reader) = reader {
                    let _ = reader.join();
                }
            });
    }
}

fn read_loop(master: &OwnedFd, stop: &OwnedFd, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = [
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            break;
        }
        if fds[0].revents().is_none_or(|r| r.is_empty()) {
            continue;
        }
        match nix::unistd::read(master.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                shared
                    .out
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .append(&buf[..n]);
                shared.changes.send_modify(|v| *v = v.wrapping_add(1));
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            // EIO: every process closed the slave side.
            Err(_) => break,
        }
    }
    shared.out.lock().unwrap_or_else(|e| e.into_inner()).eof = true;
    shared.changes.send_modify(|v| *v = v.wrapping_add(1));
}
