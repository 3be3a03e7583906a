//! The one outgoing HTTP client, shared by LLM calls and webhooks.
//!
//! hyper-util's pooled client over hyper-rustls with the ring provider (no
//! OpenSSL, no aws-lc). Trust roots: the system's (`SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, the distribution bundle) when present, else the compiled-in
//! webpki roots, so the static binary works in an image without a CA bundle.
//! The roots are loaded on first use, off the async threads, so start-up does
//! not pay for it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::OnceCell;

/// Why an outgoing request failed before a response arrived.
#[derive(Debug)]
pub enum OutboundError {
    /// TLS set-up failed (no usable roots).
    Tls(String),
    /// Connecting or sending failed.
    Connect(String),
    /// No response within the deadline.
    Timeout,
}

impl std::fmt::Display for OutboundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboundError::Tls(e) => write!(f, "TLS configuration error: {e}"),
            OutboundError::Connect(e) => write!(f, "connection error: {e}"),
            OutboundError::Timeout => write!(f, "request timed out"),
        }
    }
}

impl std::error::Error for OutboundError {}

type HyperClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A cheap-to-clone handle on the shared client.
#[derive(Clone, Default)]
pub struct Outbound {
    client: Arc<OnceCell<HyperClient>>,
}

fn root_store() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed system certificate is skipped, not fatal.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

fn build_client() -> Result<HyperClient, OutboundError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OutboundError::Tls(e.to_string()))?
        .with_root_certificates(root_store())
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(30)));
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector))
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbound")
    }
}

impl Outbound {
    /// A handle; the client itself is built on first use.
    pub fn new() -> Self {
        Self::default()
    }

    async fn client(&self) -> Result<&HyperClient, OutboundError> {
        self.client
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(build_client)
                    .await
                    .map_err(|e| OutboundError::Tls(e.to_string()))?
            })
            .await
    }

    /// Sends a request and waits for the response head (the body streams).
    /// `timeout` bounds the time to the response head.
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Option<Duration>,
    ) -> Result<http::Response<Incoming>, OutboundError> {
        let client = self.client().await?;
        let fut = client.request(request);
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| OutboundError::Timeout)?,
            None => fut.await,
        };
        result.map_err(|e| OutboundError::Connect(error_chain(&e)))
    }
}

/// The error and its sources on one line ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn plain_http_round_trip_over_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if req.contains("POST /echo") {
                "posted"
            } else {
                "other"
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
        });
        let out = Outbound::new();
        let req = http::Request::post(format!("http://{addr}/echo"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let resp = out.send(req, Some(Duration::from_secs(5))).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"posted");
    }

    #[tokio::test]
    async fn refused_connection_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let req = http::Request::get(format!("http://{addr}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = Outbound::new()
            .send(req, Some(Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::Connect(_)), "{err}");
    }
}
