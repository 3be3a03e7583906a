//! `agent-server healthcheck`: asks a running server's `/health` over
//! loopback and reports the answer through the exit status. It exists for
//! container health checks in images that have no curl (the `FROM scratch`
//! image has nothing but this binary); it reads the same configuration as
//! the server, so it finds the port without being told.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::config::Config;

/// How long connecting, sending and reading may each take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where a server started with `config` can be reached from the same host:
/// a wildcard bind address is reached over loopback.
pub fn target(config: &Config) -> Result<SocketAddr, String> {
    let host = config.effective_host();
    let addr = (host.as_str(), config.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, addr.port()))
}

/// Sends `GET /health` to `addr`; `Ok` with the status line when it answers 200.
pub fn check(addr: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("{addr}: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    // The status line is all we need; a few hundred bytes hold it.
    let mut head = Vec::with_capacity(256);
    stream.take(256).read_to_end(&mut head).map_err(io)?;
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or_default().to_string();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(status_line),
        _ if status_line.is_empty() => Err(format!("{addr}: no answer")),
        _ => Err(format!("{addr}: {status_line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server on loopback that answers `response` and returns the request it got.
    fn serve_once(response: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(response.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (addr, handle)
    }

    #[test]
    fn healthy_server_passes() {
        let (addr, server) = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK");
        assert_eq!(check(addr).unwrap(), "HTTP/1.1 200 OK");
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
    }

    #[test]
    fn other_statuses_and_silence_fail() {
        let (addr, server) = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let err = check(addr).unwrap_err();
        assert!(err.contains("503"), "{err}");
        server.join().unwrap();

        let (addr, server) = serve_once("");
        assert!(check(addr).unwrap_err().contains("no answer"));
        server.join().unwrap();

        // Nothing listens on a port just released.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(check(addr).unwrap_err().contains("cannot connect"));
    }

    #[test]
    fn wildcard_binds_are_reached_over_loopback() {
        let config = |host: &str| Config {
            host: Some(host.into()),
            port: 4004,
            ..Config::default()
        };
        assert_eq!(
            target(&config("0.0.0.0")).unwrap(),
            "127.0.0.1:4004".parse().unwrap()
        );
        assert_eq!(
            target(&config("::")).unwrap(),
            "[::1]:4004".parse().unwrap()
        );
        assert_eq!(
            target(&config("127.0.0.2")).unwrap(),
            "127.0.0.2:4004".parse().unwrap()
        );
    }
}
