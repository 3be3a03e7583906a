//! A small web server for browser tests, on 127.0.0.1 only.
//!
//! Serves the files of `tests/fixtures/browser/` plus three generated pages:
//! - `/submit?…`: echoes the query parameters of a submitted GET form as
//!   `<li>name=value</li>` items;
//! - `/slow?ms=N`: answers after N milliseconds (at most 10 000);
//! - `/long?paragraphs=N`: N numbered paragraphs of text, for paging.
//!
//! Every request's path and query is logged ([`PageServer::requests`]), so
//! tests can check what the browser really asked for (a submitted form's
//! values, a page loaded).
//!
//! Include it with `#[path = "support/pages.rs"] pub mod pages;` (public, so
//! helpers a crate does not use are not dead code).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running page server; stops when dropped.
pub struct PageServer {
    addr: SocketAddr,
    stop: CancellationToken,
    log: Arc<Mutex<Vec<String>>>,
}

impl PageServer {
    /// Starts serving on a free loopback port.
    pub async fn start() -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = stopped.cancelled() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let conn_stop = stopped.clone();
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let line = req
                            .uri()
                            .path_and_query()
                            .map_or_else(String::new, |pq| pq.to_string());
                        sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                        handle(req)
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        () = conn_stop.cancelled() => {}
                    }
                });
            }
        });
        PageServer { addr, stop, log }
    }

    /// The path and query of every request so far, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The absolute URL of `path` (`"form.html"`, `"/slow?ms=500"`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser")
}

fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let params = query_pairs(&query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let response = match path.as_str() {
        "/submit" => {
            let items: String = params
                .iter()
                .map(|(k, v)| format!("<li>{}={}</li>", escape(k), escape(v)))
                .collect();
            html(
                StatusCode::OK,
                format!("<!doctype html><title>Submitted</title><h1>Submitted</h1><ul id=\"result\">{items}</ul>"),
            )
        }
        "/slow" => {
            let ms: u64 = param("ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000)
                .min(10_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            html(
                StatusCode::OK,
                format!("<!doctype html><title>Slow</title><h1>Slow page loaded</h1><p>after {ms} ms</p>"),
            )
        }
        "/long" => {
            let n: usize = param("paragraphs")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100)
                .min(10_000);
            let body: String = (1..=n)
                .map(|i| format!("<p>Paragraph {i} of the long page. It keeps going with more words so it is long.</p>"))
                .collect();
            html(
                StatusCode::OK,
                format!("<!doctype html><title>Long</title><h1>Long page</h1>{body}"),
            )
        }
        _ => {
            let name = path.trim_start_matches('/');
            let name = if name.is_empty() { "index.html" } else { name };
            let valid = !name.contains("..") && !name.contains('/');
            let body = if valid {
                tokio::fs::read_to_string(fixtures_dir().join(name))
                    .await
                    .ok()
            } else {
                None
            };
            match body {
                Some(body) => html(StatusCode::OK, body),
                None => html(StatusCode::NOT_FOUND, "<h1>Not found</h1>".into()),
            }
        }
    };
    Ok(response)
}
