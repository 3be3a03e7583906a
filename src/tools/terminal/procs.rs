//! Ending everything a terminal session started.
//!
//! An interactive bash with job control puts every job in its own process
//! group, so signalling the shell's group is not enough. Instead every process
//! of the shell's session (the shell is the session leader, so the session id
//! is its pid) and every descendant of the shell (which may have called
//! `setsid` itself) is found in `/proc` and signalled.
//!
//! All functions here block (they read `/proc` and sleep): call them from
//! blocking contexts only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// One process as seen in `/proc/<pid>/stat`.
struct ProcInfo {
    pid: i32,
    ppid: i32,
    session: i32,
    zombie: bool,
}

fn read_stat(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let _pgrp = fields.next()?;
    let session = fields.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        session,
        zombie: matches!(state, "Z" | "X"),
    })
}

fn all_processes() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// The live (non-zombie) processes belonging to the session led by `leader`:
/// its session members and its descendants.
fn members(leader: i32) -> Vec<i32> {
    let procs = all_processes();
    let parents: HashMap<i32, i32> = procs.iter().map(|p| (p.pid, p.ppid)).collect();
    let own = std::process::id() as i32;
    let descends = |mut pid: i32| {
        for _ in 0..128 {
            if pid == leader {
                return true;
            }
            match parents.get(&pid) {
                Some(&parent) if parent > 1 => pid = parent,
                _ => return false,
            }
        }
        false
    };
    procs
        .iter()
        .filter(|p| !p.zombie && p.pid > 1 && p.pid != own)
        .filter(|p| p.session == leader || descends(p.pid))
        .map(|p| p.pid)
        .collect()
}

fn signal(pid: i32, sig: Signal) {
    // The process may be gone already; that is the goal.
    let _ = kill(Pid::from_raw(pid), sig);
}

/// Sends SIGKILL once to every process of the session led by `leader`,
/// without waiting (for drop paths, which must not block).
pub(super) fn kill_session_now(leader: i32) {
    if leader <= 1 || leader == std::process::id() as i32 {
        return;
    }
    for pid in members(leader) {
        signal(pid, Signal::SIGKILL);
    }
}

/// Kills every process of the session led by `leader` (never the server
/// itself). Graceful: SIGHUP to the shell (which passes it to its jobs) and
/// SIGTERM to the rest, a short grace period, then SIGKILL until none is left.
pub(super) fn kill_session(leader: i32, graceful: bool) {
    if leader <= 1 || leader == std::process::id() as i32 {
        return;
    }
    if graceful {
        for pid in members(leader) {
            if pid == leader {
                signal(pid, Signal::SIGHUP);
            } else {
                signal(pid, Signal::SIGTERM);
            }
            signal(pid, Signal::SIGCONT);
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline && !members(leader).is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for _ in 0..100 {
        let left = members(leader);
        if left.is_empty() {
            return;
        }
        for pid in left {
            signal(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::warn!(leader, "terminal processes survived SIGKILL");
}

/// Whether any process of the session led by `leader` is still alive.
#[cfg(test)]
pub(super) fn session_alive(leader: i32) -> bool {
    !members(leader).is_empty()
}
