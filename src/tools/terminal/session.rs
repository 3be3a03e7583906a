//! One persistent shell: typing command lines, waiting for their prompts,
//! timeouts, input to running programs.
//!
//! # How a command is sent
//!
//! Every command line we type is printable ASCII of the form
//!
//! ```text
//!  __oh_rc=$? __oh_seq=N; __oh_ret "$__oh_rc" && :; eval -- $'<command, ANSI-C quoted>'
//! ```
//!
//! * The command travels as one `$'…'` string: tabs, newlines, non-ASCII and
//!   control characters are `\xHH` escapes, so readline never sees a tab
//!   (completion), a newline (a heredoc typed line by line, each line racing
//!   the terminal's canonical-mode buffer) or a meta byte. A 500-line heredoc
//!   is one line of input that readline reads in non-canonical mode, where the
//!   4096-byte tty line limit does not apply; the write loop waits while the
//!   terminal's input queue is full. No temporary file is involved, so a
//!   command (or a secret) never touches the disk.
//! * `eval` runs it in the shell itself, so `cd`, variables and job control
//!   behave as if it had been typed, and bash's own error texts are unchanged.
//! * `__oh_ret` restores `$?` so `echo $?` still reports the previous
//!   command; `&& :` keeps that safe under `set -e`.
//! * The leading space keeps our lines out of the history.
//! * `__oh_seq` numbers the line; the prompt prints it. After input was typed
//!   into a running program (which may leave stray keystrokes for the shell),
//!   a "barrier" line that only sets `__oh_seq` is sent first and its prompt
//!   awaited, so a stray prompt is never mistaken for the next command's.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::output::{PromptFields, PS1_TEMPLATE};
use super::pty::{Pty, SpawnSpec};
use super::shell::ansi_c_quote;

/// How long the shell (and `~/.bashrc`) may take to show its first prompt.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a barrier or export line may take.
const LINE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an interrupted command gets to return to the prompt.
const INTERRUPT_SETTLE: Duration = Duration::from_secs(1);
/// How often to check whether the shell itself has exited.
const EXIT_POLL: Duration = Duration::from_millis(500);

/// The bytes sent for Enter (what a terminal sends).
const ENTER: &[u8] = b"\r";

/// Why a shell could not be started.
#[derive(Debug)]
pub(super) enum StartError {
    /// The caller cancelled while the shell was starting.
    Cancelled,
    /// The shell could not be started or never showed its prompt.
    Failed(String),
}

/// How long to wait for a command.
#[derive(Clone, Copy, Debug)]
pub(super) struct Wait {
    /// Return when there was no new output for this long.
    pub soft: Option<Duration>,
    /// Return when the command has run this long (`None`: no limit; an
    /// explicit timeout too large to represent also ends up here).
    pub hard: Option<Duration>,
    /// A hard timeout was given, which disables the soft one.
    pub blocking: bool,
}

/// What waiting for a command produced.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The prompt came back.
    Completed {
        output: Vec<u8>,
        fields: PromptFields,
        /// Output was dropped from the front because of the size cap.
        trimmed: bool,
        /// Part of this command's output was shown before (after a timeout).
        continued: bool,
    },
    /// No new output for the soft timeout; the command keeps running.
    SoftTimeout { output: Vec<u8>, continued: bool },
    /// The hard timeout passed; the command keeps running.
    HardTimeout { output: Vec<u8>, continued: bool },
    /// The command could not be sent: the shell is busy with something else.
    Busy { output: Vec<u8>, continued: bool },
    /// The shell exited.
    Closed,
}

/// Why waiting stopped.
enum WaitEnd {
    Prompt,
    Soft,
    Hard,
    Closed,
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At a prompt.
    Idle,
    /// A command was sent and its prompt not yet seen.
    Running {
        /// Its line number.
        seq: u64,
        /// Nothing was typed since the command line, so its prompt is the next one.
        fresh: bool,
        /// Part of its output was shown in an observation.
        reported: bool,
        /// It was interrupted by a cancellation: its remaining output is not wanted.
        discard: bool,
    },
    /// The shell is gone.
    Exited,
}

/// A persistent bash session.
pub(super) struct Session {
    pty: Pty,
    next_seq: u64,
    state: State,
    /// Input was typed into a program; stray keystrokes may reach the shell.
    stray_input: bool,
    /// Output of a finished command that nobody has seen yet, shown with the
    /// next command's output.
    leftover: Vec<u8>,
    /// The JSON of the last prompt consumed (to recognise a prompt bash
    /// repeats without running our line).
    last_prompt: String,
}

/// The line that turns an interactive bash into one we can drive.
fn init_line() -> String {
    format!(
        " set +H; bind 'set enable-bracketed-paste off' 2>/dev/null; HISTCONTROL=ignorespace; PS2=; \
         __oh_ret() {{ return \"$1\"; }}; export -f __oh_ret; export __oh_ps1={}; \
         export PROMPT_COMMAND='stty -echo 2>/dev/null; PS1=$__oh_ps1'; __oh_seq=0\r",
        ansi_c_quote(PS1_TEMPLATE)
    )
}

impl Session {
    /// Starts a shell and waits until it shows our prompt.
    pub async fn start(spec: SpawnSpec, cancel: &CancellationToken) -> Result<Session, StartError> {
        let failed = |e: &dyn std::fmt::Display| {
            StartError::Failed(format!("Failed to start the terminal: {e}"))
        };
        let pty = tokio::task::spawn_blocking(move || Pty::spawn(&spec))
            .await
            .map_err(|e| failed(&e))?
            .map_err(|e| failed(&e))?;
        let mut session = Session {
            pty,
            next_seq: 1,
            state: State::Idle,
            stray_input: false,
            leftover: Vec::new(),
            last_prompt: String::new(),
        };
        if let Err(e) = session.pty.write_all(init_line().as_bytes()).await {
            session.close().await;
            return Err(failed(&e));
        }
        match session.await_line(0, START_TIMEOUT, cancel).await {
            Ok(true) => Ok(session),
            Ok(false) => {
                session.close().await;
                Err(failed(&"the shell did not show its prompt"))
            }
            Err(()) => {
                session.close().await;
                Err(StartError::Cancelled)
            }
        }
    }

    /// The shell's pid.
    pub fn pid(&self) -> i32 {
        self.pty.pid()
    }

    /// Whether a command is still running (its prompt has not been consumed).
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Whether the shell is gone.
    pub fn has_exited(&mut self) -> bool {
        if self.state != State::Exited && self.pty.has_exited() {
            self.state = State::Exited;
        }
        self.state == State::Exited
    }

    /// Whether the running command's prompt has arrived unseen.
    pub fn completion_pending(&self) -> bool {
        self.pty.with_out(|out| out.find_prompt().is_some())
    }

    /// The running command's output not shown yet, for the refusal of a new
    /// command; returns it with whether earlier output was shown.
    pub fn take_unseen(&mut self) -> (Vec<u8>, bool) {
        let output = self.pty.with_out(|out| out.take_unseen());
        let continued = match &mut self.state {
            State::Running { reported, .. } => std::mem::replace(reported, true),
            _ => false,
        };
        let mut all = std::mem::take(&mut self.leftover);
        all.extend(output);
        (all, continued)
    }

    /// Kills the shell and everything it started.
    pub async fn close(self) {
        let mut pty = self.pty;
        // If the blocking task cannot run, dropping the pty still kills the session.
        let _ = tokio::task::spawn_blocking(move || pty.close_blocking()).await;
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Types a line that only sets `__oh_seq` (keeping `$?`) and waits for
    /// its prompt; everything before it is discarded. `Ok(false)` on timeout.
    async fn barrier(&mut self, cancel: &CancellationToken) -> Result<bool, ()> {
        let seq = self.next_seq();
        let line = format!(" __oh_rc=$? __oh_seq={seq}; __oh_ret \"$__oh_rc\" && :\r");
        if self.pty.write_all(line.as_bytes()).await.is_err() {
            return Ok(false);
        }
        self.await_line(seq, LINE_TIMEOUT, cancel).await
    }

    /// Waits for the prompt of line `seq`, discarding everything up to it.
    /// `Ok(false)` when it does not come in time, `Err` when cancelled.
    async fn await_line(
        &mut self,
        seq: u64,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<bool, ()> {
        Ok(self.await_prompt(seq, timeout, cancel).await?.is_some())
    }

    /// [`await_line`](Self::await_line) returning the prompt's fields.
    async fn await_prompt(
        &mut self,
        seq: u64,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<PromptFields>, ()> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.pty.changes();
        loop {
            let found = self.pty.with_out(|out| {
                while let Some(prompt) = out.find_prompt() {
                    out.consume_through(&prompt);
                    if prompt.fields.seq == Some(seq) {
                        return Some(prompt);
                    }
                }
                None
            });
            if let Some(prompt) = found {
                self.last_prompt = prompt.raw;
                return Ok(Some(prompt.fields));
            }
            if self.pty.with_out(|out| out.eof) {
                return Ok(None);
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(()),
                changed = changes.changed() => {
                    if changed.is_err() && !self.pty.with_out(|out| out.eof) {
                        return Ok(None);
                    }
                }
                _ = sleep_until(deadline) => return Ok(None),
            }
        }
    }

    /// Makes the shell ready for a new command line: folds in the output of a
    /// finished command nobody saw, and clears stray prompts.
    async fn prepare(&mut self, cancel: &CancellationToken) -> Result<bool, ()> {
        if let State::Running { discard, .. } = self.state {
            let leftover = self.pty.with_out(|out| {
                let prompt = out.find_prompt()?;
                let start = out.seen.min(prompt.start);
                let unseen = out.data[start..prompt.start].to_vec();
                out.consume_through(&prompt);
                Some((unseen, prompt.raw))
            });
            let Some((unseen, raw)) = leftover else {
                return Ok(false);
            };
            if !discard {
                self.leftover.extend(unseen);
            }
            self.last_prompt = raw;
            self.state = State::Idle;
        }
        if std::mem::take(&mut self.stray_input) && !self.barrier(cancel).await? {
            return Ok(false);
        }
        self.pty.with_out(|out| {
            while let Some(prompt) = out.find_prompt() {
                out.consume_through(&prompt);
            }
            out.trimmed = false;
        });
        Ok(true)
    }

    /// Exports `vars` into the shell with a line of its own whose text and
    /// output never reach an observation.
    async fn export(
        &mut self,
        vars: &[(String, String)],
        cancel: &CancellationToken,
    ) -> Result<bool, ()> {
        if vars.is_empty() {
            return Ok(true);
        }
        let seq = self.next_seq();
        let assignments: Vec<String> = vars
            .iter()
            .map(|(name, value)| format!("{name}={}", ansi_c_quote(value)))
            .collect();
        let line = format!(
            " __oh_rc=$? __oh_seq={seq}; export {}; __oh_ret \"$__oh_rc\" && :\r",
            assignments.join(" ")
        );
        if self.pty.write_all(line.as_bytes()).await.is_err() {
            return Ok(false);
        }
        self.await_line(seq, LINE_TIMEOUT, cancel).await
    }

    /// Moves a pre-started idle shell to `dir` as if it had started there:
    /// `$PWD` physical, `OLDPWD` as bash set it at start (inherited, or
    /// exported but unset), `SECONDS` from 0, `$?` 0 and `$_` as after the
    /// start-up line. `Ok(false)` when the shell did
    /// not get there (it should then be closed).
    pub async fn enter(&mut self, dir: &Path, cancel: &CancellationToken) -> Result<bool, ()> {
        let seq = self.next_seq();
        let line = format!(
            " __oh_seq={seq}; __oh_old=${{OLDPWD-}} __oh_had=${{OLDPWD+1}}; builtin cd -P -- {} && {{ \
             if [ -n \"$__oh_had\" ]; then OLDPWD=$__oh_old; else unset OLDPWD; declare -x OLDPWD; fi; \
             unset __oh_old __oh_had; SECONDS=0; \
             export PROMPT_COMMAND='stty -echo 2>/dev/null; PS1=$__oh_ps1'; }}\r",
            ansi_c_quote(&dir.to_string_lossy())
        );
        if self.pty.write_all(line.as_bytes()).await.is_err() {
            return Ok(false);
        }
        let Some(fields) = self.await_prompt(seq, LINE_TIMEOUT, cancel).await? else {
            return Ok(false);
        };
        let physical = tokio::fs::canonicalize(dir).await.ok();
        Ok(fields.exit_code == 0
            && physical.is_some()
            && fields.working_dir.as_deref().map(Path::new) == physical.as_deref())
    }

    /// Runs a new command (after exporting `vars`) and waits for it.
    pub async fn run_command(
        &mut self,
        command: &str,
        vars: &[(String, String)],
        wait: Wait,
        cancel: &CancellationToken,
    ) -> Result<Outcome, ()> {
        if !self.prepare(cancel).await? || !self.export(vars, cancel).await? {
            return Ok(self.busy());
        }
        let seq = self.next_seq();
        let line = format!(
            " __oh_rc=$? __oh_seq={seq}; __oh_ret \"$__oh_rc\" && :; eval -- {}\r",
            ansi_c_quote(command)
        );
        self.state = State::Running {
            seq,
            fresh: true,
            reported: false,
            discard: false,
        };
        if self.pty.write_all(line.as_bytes()).await.is_err() {
            return Ok(self.busy());
        }
        self.wait(wait, cancel).await
    }

    /// Types `input` (text followed by Enter, or a key) into the running program.
    pub async fn send_input(
        &mut self,
        input: &[u8],
        wait: Wait,
        cancel: &CancellationToken,
    ) -> Result<Outcome, ()> {
        self.stray_input = true;
        if let State::Running { fresh, .. } = &mut self.state {
            *fresh = false;
        }
        // A program that stopped reading its input makes this fail; waiting
        // then shows the program's state, which is the useful answer.
        let _ = self.pty.write_all(input).await;
        self.wait(wait, cancel).await
    }

    /// Waits for more output of the running command.
    pub async fn wait_more(
        &mut self,
        wait: Wait,
        cancel: &CancellationToken,
    ) -> Result<Outcome, ()> {
        self.wait(wait, cancel).await
    }

    /// The outcome when our line could not be sent: the shell is busy.
    fn busy(&mut self) -> Outcome {
        let seq = self.next_seq;
        if !self.is_running() {
            self.state = State::Running {
                seq,
                fresh: false,
                reported: false,
                discard: false,
            };
        }
        let (output, continued) = self.take_unseen();
        Outcome::Busy { output, continued }
    }

    async fn wait(&mut self, wait: Wait, cancel: &CancellationToken) -> Result<Outcome, ()> {
        match self.wait_for_prompt(wait, cancel).await {
            WaitEnd::Prompt => Ok(self.complete()),
            WaitEnd::Soft => {
                let (output, continued) = self.take_unseen();
                Ok(Outcome::SoftTimeout { output, continued })
            }
            WaitEnd::Hard => {
                let (output, continued) = self.take_unseen();
                Ok(Outcome::HardTimeout { output, continued })
            }
            WaitEnd::Closed => {
                self.state = State::Exited;
                Ok(Outcome::Closed)
            }
            WaitEnd::Cancelled => {
                // Interrupt whatever runs and give it a moment to return to
                // the prompt, so the next command finds the shell idle. If it
                // does not, its prompt (and output) are dropped later.
                let _ = self.pty.write_all(&[0x03]).await;
                self.stray_input = true;
                if let State::Running { discard, fresh, .. } = &mut self.state {
                    *discard = true;
                    *fresh = false;
                }
                let settle = Wait {
                    soft: None,
                    hard: Some(INTERRUPT_SETTLE),
                    blocking: true,
                };
                if let WaitEnd::Prompt = self
                    .wait_for_prompt(settle, &CancellationToken::new())
                    .await
                {
                    // The interrupted command's result is not wanted.
                    let _ = self.complete();
                }
                Err(())
            }
        }
    }

    fn complete(&mut self) -> Outcome {
        let taken = self.pty.with_out(|out| {
            let prompt = out.find_prompt()?;
            let start = out.seen.min(prompt.start);
            let output = out.data[start..prompt.start].to_vec();
            let trimmed = out.trimmed;
            out.consume_through(&prompt);
            Some((output, prompt, trimmed))
        });
        let Some((output, prompt, trimmed)) = taken else {
            return Outcome::Closed;
        };
        let (seq, fresh, continued) = match self.state {
            State::Running {
                seq,
                fresh,
                reported,
                ..
            } => (seq, fresh, reported),
            _ => (0, false, false),
        };
        let mut fields = prompt.fields;
        // After a parse error inside `eval` (an unterminated quote) bash shows
        // the previous prompt again without running PROMPT_COMMAND; the
        // command's real status is bash's syntax-error status.
        if fresh && fields.seq != Some(seq) && prompt.raw == self.last_prompt {
            fields.exit_code = 2;
        }
        self.last_prompt = prompt.raw;
        self.state = State::Idle;
        let mut all = std::mem::take(&mut self.leftover);
        all.extend(output);
        Outcome::Completed {
            output: all,
            fields,
            trimmed,
            continued,
        }
    }

    async fn wait_for_prompt(&mut self, wait: Wait, cancel: &CancellationToken) -> WaitEnd {
        let mut changes = self.pty.changes();
        let start = Instant::now();
        let mut last_change = start;
        let mut next_exit_check = start + EXIT_POLL;
        loop {
            let (prompt, eof, alt_screen) = self
                .pty
                .with_out(|out| (out.find_prompt().is_some(), out.eof, out.alt_screen));
            if prompt {
                return WaitEnd::Prompt;
            }
            if eof {
                return WaitEnd::Closed;
            }
            let now = Instant::now();
            let hard_deadline = wait.hard.map(|d| start + d);
            let soft_deadline = match (wait.blocking, wait.soft) {
                (false, Some(d)) => Some(last_change + d),
                _ => None,
            };
            if hard_deadline.is_some_and(|d| now >= d) {
                return WaitEnd::Hard;
            }
            if soft_deadline.is_some_and(|d| now >= d) {
                return WaitEnd::Soft;
            }
            if now >= next_exit_check {
                if self.pty.has_exited() {
                    return WaitEnd::Closed;
                }
                next_exit_check = now + EXIT_POLL;
            }
            let deadline = [hard_deadline, soft_deadline, Some(next_exit_check)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_exit_check);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return WaitEnd::Cancelled,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return WaitEnd::Closed;
                    }
                    // A full-screen program redrawing itself (`top`) is not
                    // progress: only output outside the alternate screen
                    // postpones the soft timeout.
                    if !alt_screen {
                        last_change = Instant::now();
                    }
                }
                _ = sleep_until(deadline) => {}
            }
        }
    }
}

/// The bytes for `is_input` text: a named key (`C-c`, `UP`, `ENTER`, …) as
/// its key code, anything else typed with Enter after each line.
pub(super) fn input_bytes(input: &str) -> Vec<u8> {
    let upper = input.trim().to_uppercase();
    let named: Option<&[u8]> = match upper.as_str() {
        "ENTER" => Some(ENTER),
        "TAB" => Some(b"\t"),
        "BS" => Some(b"\x7f"),
        "ESC" => Some(b"\x1b"),
        "UP" => Some(b"\x1b[A"),
        "DOWN" => Some(b"\x1b[B"),
        "RIGHT" => Some(b"\x1b[C"),
        "LEFT" => Some(b"\x1b[D"),
        "HOME" => Some(b"\x1b[H"),
        "END" => Some(b"\x1b[F"),
        "PGUP" => Some(b"\x1b[5~"),
        "PGDN" => Some(b"\x1b[6~"),
        _ => None,
    };
    if let Some(bytes) = named {
        return bytes.to_vec();
    }
    let letter = upper
        .strip_prefix("C-")
        .or_else(|| upper.strip_prefix("CTRL-"))
        .or_else(|| upper.strip_prefix("CTRL+"));
    if let Some(letter) = letter {
        if let [c @ b'A'..=b'Z'] = letter.as_bytes() {
            return vec![c & 0x1f];
        }
    }
    let normalized = input.replace("\r\n", "\n").replace('\r', "\n");
    let mut bytes = normalized.replace('\n', "\r").into_bytes();
    if !bytes.ends_with(ENTER) {
        bytes.extend_from_slice(ENTER);
    }
    bytes
}

/// The environment for a new shell: the server's (without its credentials),
/// then the spec's `env`, then what the session needs.
pub(super) fn shell_env(extra: &[(String, String)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = crate::util::env::sanitized_env()
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.to_str(),
                Some("PS1" | "PS2" | "PROMPT_COMMAND" | "__oh_ps1" | "COLUMNS" | "LINES")
            )
        })
        .collect();
    let mut set = |key: &str, value: &str| {
        env.retain(|(k, _)| k != key);
        env.push((key.into(), value.into()));
    };
    for (key, value) in extra {
        set(key, value);
    }
    let chosen = |key: &str| extra.iter().any(|(k, _)| k == key);
    for (key, value) in [
        ("PAGER", "cat"),
        ("GIT_PAGER", "cat"),
        ("TERM", "xterm-256color"),
    ] {
        if !chosen(key) {
            set(key, value);
        }
    }
    let has_locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .any(|k| std::env::var_os(k).is_some() || chosen(k));
    if !has_locale {
        // Without a locale, tools print UTF-8 file names and text as escapes.
        set("LANG", "C.UTF-8");
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_like_upstream() {
        assert_eq!(input_bytes("C-c"), vec![3]);
        assert_eq!(input_bytes("ctrl+d"), vec![4]);
        assert_eq!(input_bytes("CTRL-z"), vec![0x1a]);
        assert_eq!(input_bytes(" up "), b"\x1b[A".to_vec());
        assert_eq!(input_bytes("ENTER"), b"\r".to_vec());
        assert_eq!(input_bytes("PGDN"), b"\x1b[6~".to_vec());
        assert_eq!(input_bytes("q"), b"q\r".to_vec());
        assert_eq!(input_bytes("a\nb"), b"a\rb\r".to_vec());
        assert_eq!(input_bytes("C-1"), b"C-1\r".to_vec());
    }

    #[test]
    fn environment_disables_pagers_and_keeps_the_spec_env() {
        let env = shell_env(&[
            ("FOO".into(), "bar".into()),
            ("PAGER".into(), "more".into()),
        ]);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("FOO").as_deref(), Some("bar"));
        assert_eq!(get("PAGER").as_deref(), Some("more"));
        assert_eq!(get("GIT_PAGER").as_deref(), Some("cat"));
        assert_eq!(get("TERM").as_deref(), Some("xterm-256color"));
        assert!(get("PROMPT_COMMAND").is_none());
    }
}
