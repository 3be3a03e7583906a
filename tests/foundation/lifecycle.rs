//! Start-up, shutdown, systemd and connection hygiene of the real binary.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use hyper::StatusCode;
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ServerBuilder, TIMEOUT};

#[tokio::test]
async fn sigterm_and_sigint_exit_cleanly() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut server = ServerBuilder::new().spawn();
        // An idle keep-alive connection must not hold the shutdown up.
        let mut client = server.client().await;
        assert_eq!(client.get("/alive").await.status, StatusCode::OK);
        let status = server.stop_with(signal);
        assert_eq!(status.code(), Some(0), "{signal}: {}", server.stderr());
        assert!(
            server.stderr().contains("shutting down"),
            "{}",
            server.stderr()
        );
    }
}

#[tokio::test]
async fn reload_is_accepted_and_ignored() {
    let server = ServerBuilder::new().arg("--reload").spawn();
    assert_eq!(server.get("/alive").await.status, StatusCode::OK);
    assert!(
        server.stderr_with("--reload").await.contains("--reload"),
        "{}",
        server.stderr()
    );
}

/// Receives datagrams until one contains `wanted`; all of them are returned.
fn receive_until(socket: &UnixDatagram, wanted: &str, seen: &mut Vec<String>) {
    let mut buf = [0u8; 1024];
    for _ in 0..1000 {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {wanted:?} after {seen:?}: {e}"));
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        let found = message.lines().any(|l| l == wanted);
        seen.push(message);
        if found {
            return;
        }
    }
    panic!("no {wanted:?} in {seen:?}");
}

#[tokio::test]
async fn sd_notify_ready_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut server = ServerBuilder::new()
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "100000")
        .spawn();
    let mut seen = Vec::new();
    receive_until(&socket, "READY=1", &mut seen);
    assert!(
        seen.last()
            .unwrap()
            .contains(&format!("STATUS=listening on http://{}", server.addr)),
        "{seen:?}"
    );
    receive_until(&socket, "WATCHDOG=1", &mut seen);
    receive_until(&socket, "WATCHDOG=1", &mut seen);
    let status = server.terminate();
    receive_until(&socket, "STOPPING=1", &mut seen);
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn socket_activation_uses_fd_3() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let builder = ServerBuilder::new();
    // `sh` learns its own pid before exec'ing the server, so LISTEN_PID names the server.
    let mut command = std::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --port 1"#)
        .arg(crate::support::BINARY)
        .env_clear()
        .current_dir(builder.dir())
        .stdin(std::process::Stdio::null());
    let fd = listener.as_raw_fd();
    // SAFETY: only async-signal-safe calls (dup2/fcntl) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            use std::os::fd::{BorrowedFd, IntoRawFd};
            let listener = BorrowedFd::borrow_raw(fd);
            if fd == 3 {
                nix::fcntl::fcntl(
                    listener,
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                )?;
            } else {
                // fd 3 must stay open for the server: forget its owner.
                let _fd3 = nix::unistd::dup2_raw(listener, 3)?.into_raw_fd();
            }
            Ok(())
        });
    }
    let server = builder.spawn_command(command);
    drop(listener);
    assert_eq!(
        server.addr, addr,
        "the server must serve the inherited socket, not bind port 1"
    );
    assert_eq!(server.get("/alive").await.status, StatusCode::OK);
    assert!(
        server
            .stderr_with("passed by systemd")
            .await
            .contains("passed by systemd"),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn slow_headers_are_cut_off_while_others_are_served() {
    let server = ServerBuilder::new()
        .env("OH_HEADER_READ_TIMEOUT_SECONDS", "1")
        .spawn();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /alive HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        let mut buf = [0u8; 256];
        for i in 0..100 {
            tokio::select! {
                read = slow.read(&mut buf) => return read.map(|n| buf[..n].to_vec()),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    let line = format!("X-Slow-{i}: 1\r\n");
                    slow.write_all(line.as_bytes()).await?;
                }
            }
        }
        Ok(b"never cut off".to_vec())
    };
    let served = async {
        let mut client = server.client().await;
        client.get("/alive").await.status
    };
    let (cut, status) = tokio::join!(trickle, served);
    assert_eq!(status, StatusCode::OK);
    match cut {
        // Closed without an answer, or with a 408.
        Ok(bytes) => assert!(
            bytes.is_empty() || bytes.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }
    assert_eq!(server.get("/alive").await.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_requests_get_400_and_the_server_lives_on() {
    let server = ServerBuilder::new().spawn();
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, raw.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(server.get("/alive").await.status, StatusCode::OK);
}

#[tokio::test]
async fn logs_as_json_and_rust_log_wins() {
    let mut server = ServerBuilder::new().env("OH_LOG_FORMAT", "json").spawn();
    server.terminate();
    let stderr = server.stderr();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["level"] == "INFO"), "{stderr}");

    let mut server = ServerBuilder::new()
        .env("RUST_LOG", "error")
        .env("OH_LOG_LEVEL", "debug")
        .spawn();
    server.terminate();
    assert!(!server.stderr().contains("INFO"), "{}", server.stderr());
}
