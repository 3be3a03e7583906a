//! The accept loop: HTTP/1.1 connections with keep-alive, a header-read
//! timeout (which also bounds idle keep-alive connections), upgrades for
//! WebSockets, and a graceful drain on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::app::App;

/// Serves `listener` until `shutdown` is cancelled, then stops accepting,
/// lets in-flight requests finish (idle connections close at once) and
/// returns when all connections are done or `shutdown_grace_seconds` passed.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    let config = &app.state().config;
    let grace = config.shutdown_grace();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout())
        .keep_alive(true);
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();

    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                connections.spawn(connection(
                    stream,
                    peer,
                    app.clone(),
                    builder.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    drop(listener);
    connections.close();
    tracing::info!(
        open = connections.len(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after {grace:?}; closing them"
        );
    }
}

async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    app: Arc<App>,
    builder: Arc<http1::Builder>,
    shutdown: CancellationToken,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "set_nodelay failed: {e}");
    }
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(request, Some(peer)).await) }
    });
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and resets by clients are routine.
        tracing::debug!(%peer, "connection ended: {e}");
    }
}
