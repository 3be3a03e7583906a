//! Webhooks (persistence-and-config.md §6).
//!
//! For every configured receiver:
//! - **event batches** go to `{base_url}/events/{id-hex}`: a JSON array of
//!   events in full form (nulls included), posted when `event_buffer_size`
//!   events (or `max_batch_bytes`) are queued, or `flush_delay` seconds after
//!   the first queued event; one queue and one posting task per conversation;
//! - **conversation info** goes to `{base_url}/conversations` at once, on
//!   create, update, pause, interrupt and delete.
//!
//! Every call carries the configured headers plus `X-Session-API-Key` (the
//! first session key), is retried `num_retries` times `retry_delay` apart,
//! and counts as failed on a transport error or a non-2xx status. Queues are
//! bounded (`max_queue_size`, `max_queue_bytes`) and drop their oldest events
//! with a log line. Publishing never waits: a dead receiver never slows a
//! conversation.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::WebhookSpec;
use crate::outbound::Outbound;
use crate::util::ids;

/// Timeout of one webhook call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for queues to drain.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Sends every configured webhook.
pub struct WebhookHub {
    receivers: Vec<Arc<Receiver>>,
}

struct Receiver {
    spec: WebhookSpec,
    base: String,
    headers: Vec<(String, String)>,
    outbound: Outbound,
    queues: Mutex<HashMap<Uuid, Arc<EventQueue>>>,
    /// Conversation-info posts, delivered in order by one task.
    infos: Arc<InfoQueue>,
}

/// Bound of the conversation-info queue of one receiver.
const MAX_INFO_QUEUE: usize = 1000;

#[derive(Default)]
struct InfoQueue {
    items: Mutex<VecDeque<Bytes>>,
    wake: Notify,
    closing: std::sync::atomic::AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Bytes>,
    bytes: usize,
    /// When the flush timer was armed (first event into an empty queue, or
    /// a failed post); `None` while empty.
    armed_at: Option<Instant>,
    closing: bool,
}

struct EventQueue {
    conversation: Uuid,
    state: Mutex<QueueState>,
    wake: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl EventQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl WebhookHub {
    /// A hub for these receivers; `session_key` is sent as `X-Session-API-Key`.
    pub fn new(
        specs: &[WebhookSpec],
        session_key: Option<&str>,
        outbound: Outbound,
    ) -> Arc<WebhookHub> {
        let receivers = specs
            .iter()
            .map(|spec| {
                let mut headers: Vec<(String, String)> = spec
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect();
                if let Some(k) = session_key {
                    headers.push(("X-Session-API-Key".into(), k.to_string()));
                }
                Arc::new(Receiver {
                    base: spec.base_url.trim_end_matches('/').to_string(),
                    spec: spec.clone(),
                    headers,
                    outbound: outbound.clone(),
                    queues: Mutex::new(HashMap::new()),
                    infos: Arc::new(InfoQueue::default()),
                })
            })
            .collect();
        Arc::new(WebhookHub { receivers })
    }

    /// Whether any receiver is configured.
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// Queues one event (its full JSON) for every receiver. Never waits.
    pub fn publish_event(&self, conversation: Uuid, full_json: &Bytes) {
        for r in &self.receivers {
            let q = r.queue(conversation);
            let mut dropped = (0usize, 0usize);
            {
                let mut st = q.lock();
                if st.closing {
                    continue;
                }
                if st.items.is_empty() {
                    st.armed_at = Some(Instant::now());
                }
                st.bytes += full_json.len();
                st.items.push_back(full_json.clone());
                while st.items.len() > r.spec.max_queue_size.max(1)
                    || st.bytes > r.spec.max_queue_bytes
                {
                    match st.items.pop_front() {
                        Some(old) => {
                            st.bytes -= old.len();
                            dropped.0 += 1;
                            dropped.1 += old.len();
                        }
                        None => break,
                    }
                }
            }
            if dropped.0 > 0 {
                tracing::warn!(
                    conversation_id = %conversation,
                    receiver = %r.base,
                    dropped_events = dropped.0,
                    dropped_bytes = dropped.1,
                    "webhook queue full: dropped the oldest events"
                );
            }
            q.wake.notify_one();
        }
    }

    /// Posts a conversation's info to every receiver, in the background and
    /// in order (create before update before delete).
    pub fn post_conversation(&self, info_json: Bytes) {
        for r in &self.receivers {
            let q = &r.infos;
            let dropped = {
                let mut items = q.items.lock().unwrap_or_else(|e| e.into_inner());
                items.push_back(info_json.clone());
                let mut dropped = 0;
                while items.len() > MAX_INFO_QUEUE {
                    items.pop_front();
                    dropped += 1;
                }
                dropped
            };
            if dropped > 0 {
                tracing::warn!(receiver = %r.base, dropped, "conversation webhook queue full: dropped the oldest");
            }
            let mut task = q.task.lock().unwrap_or_else(|e| e.into_inner());
            if task.is_none() {
                *task = Some(tokio::spawn(r.clone().run_infos()));
            }
            drop(task);
            q.wake.notify_one();
        }
    }

    /// Flushes and stops a conversation's event queues (delete, eviction).
    /// Returns once they are drained or given up on.
    pub async fn close_conversation(&self, conversation: Uuid) {
        for r in &self.receivers {
            let q = {
                let mut queues = r.queues.lock().unwrap_or_else(|e| e.into_inner());
                queues.remove(&conversation)
            };
            if let Some(q) = q {
                close_queue(&q).await;
            }
        }
    }

    /// Flushes every queue and waits (bounded) for pending posts.
    pub async fn shutdown(&self) {
        let mut waits = Vec::new();
        for r in &self.receivers {
            let queues: Vec<Arc<EventQueue>> = {
                let mut m = r.queues.lock().unwrap_or_else(|e| e.into_inner());
                m.drain().map(|(_, q)| q).collect()
            };
            for q in queues {
                waits.push(tokio::spawn(async move { close_queue(&q).await }));
            }
            r.infos
                .closing
                .store(true, std::sync::atomic::Ordering::Release);
            r.infos.wake.notify_one();
            let task = r
                .infos
                .task
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            waits.extend(task);
        }
        let all = futures_util::future::join_all(waits);
        if tokio::time::timeout(SHUTDOWN_WAIT, all).await.is_err() {
            tracing::warn!("webhooks: gave up waiting for pending deliveries at shutdown");
        }
    }
}

async fn close_queue(q: &Arc<EventQueue>) {
    q.lock().closing = true;
    q.wake.notify_one();
    let task = q.task.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(t) = task {
        let _ = t.await;
    }
}

impl Receiver {
    /// Delivers conversation infos one after the other.
    async fn run_infos(self: Arc<Self>) {
        let url = format!("{}/conversations", self.base);
        loop {
            let next = self
                .infos
                .items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            match next {
                Some(body) => {
                    if !self.post_with_retries(&url, body).await {
                        tracing::warn!(url = %url, "conversation webhook failed after retries");
                    }
                }
                None => {
                    if self
                        .infos
                        .closing
                        .load(std::sync::atomic::Ordering::Acquire)
                    {
                        return;
                    }
                    self.infos.wake.notified().await;
                }
            }
        }
    }

    fn queue(self: &Arc<Self>, conversation: Uuid) -> Arc<EventQueue> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = queues.get(&conversation) {
            return q.clone();
        }
        let q = Arc::new(EventQueue {
            conversation,
            state: Mutex::new(QueueState::default()),
            wake: Notify::new(),
            task: Mutex::new(None),
        });
        let handle = tokio::spawn(self.clone().run_queue(q.clone()));
        *q.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        queues.insert(conversation, q.clone());
        q
    }

    /// The posting loop of one conversation's queue.
    async fn run_queue(self: Arc<Self>, q: Arc<EventQueue>) {
        let url = format!("{}/events/{}", self.base, ids::hex(&q.conversation));
        let delay = Duration::from_secs_f64(self.spec.flush_delay.max(0.0));
        let buffer = self.spec.event_buffer_size.max(1);
        loop {
            // Wait for a reason to post.
            let closing = loop {
                let (n, bytes, armed_at, closing) = {
                    let st = q.lock();
                    (st.items.len(), st.bytes, st.armed_at, st.closing)
                };
                if n == 0 {
                    if closing {
                        return;
                    }
                    q.wake.notified().await;
                    continue;
                }
                if closing || n >= buffer || bytes >= self.spec.max_batch_bytes {
                    break closing;
                }
                let deadline = armed_at.unwrap_or_else(Instant::now) + delay;
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break false,
                    _ = q.wake.notified() => {}
                }
            };
            // Post batches until the queue is empty or a batch fails.
            loop {
                let batch = self.take_batch(&q, buffer);
                if batch.is_empty() {
                    break;
                }
                let mut body = Vec::with_capacity(
                    batch.iter().map(Bytes::len).sum::<usize>() + batch.len() + 1,
                );
                body.push(b'[');
                for (i, e) in batch.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(e);
                }
                body.push(b']');
                if !self.post_with_retries(&url, Bytes::from(body)).await {
                    if closing {
                        tracing::warn!(url = %url, events = batch.len(), "webhook: dropping events of a closed conversation after failed delivery");
                        return;
                    }
                    tracing::warn!(url = %url, events = batch.len(), "webhook batch failed after retries; will retry after flush_delay");
                    let mut st = q.lock();
                    for e in batch.into_iter().rev() {
                        st.bytes += e.len();
                        st.items.push_front(e);
                    }
                    st.armed_at = Some(Instant::now());
                    break;
                }
            }
        }
    }

    fn take_batch(&self, q: &EventQueue, buffer: usize) -> Vec<Bytes> {
        let mut st = q.lock();
        let mut out = Vec::new();
        let mut size = 0;
        while out.len() < buffer {
            let Some(next) = st.items.front() else { break };
            // An oversize event goes alone.
            if !out.is_empty() && size + next.len() > self.spec.max_batch_bytes {
                break;
            }
            size += next.len();
            if let Some(e) = st.items.pop_front() {
                st.bytes -= e.len();
                out.push(e);
            }
        }
        if st.items.is_empty() {
            st.armed_at = None;
        } else {
            st.armed_at = Some(Instant::now());
        }
        out
    }

    async fn post_with_retries(&self, url: &str, body: Bytes) -> bool {
        let attempts = self.spec.num_retries as usize + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs_f64(self.spec.retry_delay.max(0.0))).await;
            }
            match self.post_once(url, body.clone()).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::debug!(url = %url, attempt = attempt + 1, error = %e, "webhook call failed")
                }
            }
        }
        false
    }

    async fn post_once(&self, url: &str, body: Bytes) -> Result<(), String> {
        let mut req =
            http::Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = self
            .outbound
            .send(req, Some(CALL_TIMEOUT))
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        // Drain the body so the connection can be reused.
        let _ = tokio::time::timeout(CALL_TIMEOUT, resp.into_body().collect()).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A tiny HTTP receiver on 127.0.0.1: records (path, body, headers) and
    /// answers `fail_first` requests with 500.
    /// Requests seen by the test receiver: (path, body, head).
    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

    async fn receiver(fail_first: usize) -> (String, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicUsize::new(0));
        let log2 = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let log = log2.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 8192];
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            let len: usize = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if buf.len() < end + 4 + len {
                                break;
                            }
                            let body =
                                String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                            buf.drain(..end + 4 + len);
                            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                            let n = seen.fetch_add(1, Ordering::SeqCst);
                            let status = if n < fail_first {
                                "500 Internal Server Error"
                            } else {
                                "200 OK"
                            };
                            if n >= fail_first {
                                log.lock().unwrap().push((path, body, head));
                            }
                            let resp =
                                format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\n{{}}");
                            if sock.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (format!("http://{addr}/hook/"), log)
    }

    fn spec(base: &str) -> WebhookSpec {
        serde_json::from_value(serde_json::json!({
            "base_url": base, "headers": {"X-Test": "yes"}, "event_buffer_size": 3,
            "flush_delay": 0.3, "num_retries": 2, "retry_delay": 0.05
        }))
        .unwrap()
    }

    async fn wait_for(log: &Seen, n: usize) {
        for _ in 0..200 {
            if log.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn batches_by_size_then_by_delay_with_headers() {
        let (base, log) = receiver(0).await;
        let hub = WebhookHub::new(&[spec(&base)], Some("k1"), Outbound::new());
        let id = Uuid::new_v4();
        for i in 0..4 {
            hub.publish_event(id, &Bytes::from(format!("{{\"n\":{i},\"x\":null}}")));
        }
        wait_for(&log, 2).await;
        let got = log.lock().unwrap().clone();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, format!("/hook/events/{}", id.simple()));
        assert_eq!(
            got[0].1,
            r#"[{"n":0,"x":null},{"n":1,"x":null},{"n":2,"x":null}]"#
        );
        assert_eq!(got[1].1, r#"[{"n":3,"x":null}]"#);
        let head = got[0].2.to_ascii_lowercase();
        assert!(head.contains("x-test: yes") && head.contains("x-session-api-key: k1"));
        assert!(head.contains("content-type: application/json"));
        hub.post_conversation(Bytes::from_static(b"{\"id\":\"c\"}"));
        wait_for(&log, 3).await;
        assert_eq!(log.lock().unwrap()[2].0, "/hook/conversations");
        hub.shutdown().await;
    }

    #[tokio::test]
    async fn retries_failed_posts_and_keeps_order() {
        let (base, log) = receiver(2).await;
        let hub = WebhookHub::new(&[spec(&base)], None, Outbound::new());
        let id = Uuid::new_v4();
        for i in 0..3 {
            hub.publish_event(id, &Bytes::from(format!("{i}")));
        }
        wait_for(&log, 1).await;
        assert_eq!(log.lock().unwrap()[0].1, "[0,1,2]");
        hub.close_conversation(id).await;
    }

    #[tokio::test]
    async fn overflow_drops_the_oldest_and_a_dead_receiver_never_blocks() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let mut s = spec(&format!("http://{addr}"));
        s.max_queue_size = 5;
        s.event_buffer_size = 100;
        s.flush_delay = 60.0;
        let hub = WebhookHub::new(&[s], None, Outbound::new());
        let id = Uuid::new_v4();
        let started = std::time::Instant::now();
        for i in 0..50 {
            hub.publish_event(id, &Bytes::from(format!("{i}")));
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let r = &hub.receivers[0];
        let q = r.queue(id);
        let items: Vec<Bytes> = q.lock().items.iter().cloned().collect();
        assert_eq!(
            items,
            (45..50)
                .map(|i| Bytes::from(format!("{i}")))
                .collect::<Vec<_>>()
        );
        hub.shutdown().await;
    }
}
