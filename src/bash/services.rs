//! [`BashServices`]: the server's bash service and one per conversation.
//!
//! Services open on first use (reading their events directory once), so
//! start-up costs nothing for conversations whose bash routes are never
//! called. After [`BashServices::shutdown`] none opens again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, OnceCell};
use uuid::Uuid;

use super::{BashService, BashServiceConfig, BashServiceError};

/// The directory, inside a conversation's directory, of its bash events.
pub const CONVERSATION_EVENTS_DIR: &str = "bash_events";

/// The server-level bash service and the conversation-scoped ones.
pub struct BashServices {
    /// How the server-level service is set up.
    global_config: BashServiceConfig,
    /// The server-level service, once opened.
    global: OnceCell<BashService>,
    /// Conversation-scoped services by conversation id. An async lock, held
    /// while one opens, so two first requests cannot open it twice.
    scoped: Mutex<HashMap<Uuid, BashService>>,
    /// Set by [`shutdown`](Self::shutdown): nothing opens afterwards.
    closed: AtomicBool,
}

impl std::fmt::Debug for BashServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BashServices({})",
            self.global_config.events_dir.display()
        )
    }
}

impl BashServices {
    /// Services storing the server-level events under `events_dir`; events
    /// older than `retention_seconds` are purged (every service).
    pub fn new(events_dir: PathBuf, retention_seconds: Option<u64>) -> Self {
        BashServices {
            global_config: BashServiceConfig {
                events_dir,
                default_cwd: None,
                retention_seconds,
            },
            global: OnceCell::new(),
            scoped: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn check_open(&self) -> Result<(), BashServiceError> {
        if self.closed.load(Ordering::SeqCst) {
            Err(BashServiceError::Closed)
        } else {
            Ok(())
        }
    }

    /// The server-level service (`/api/bash/…`, `/sockets/bash-events`).
    pub async fn global(&self) -> Result<BashService, BashServiceError> {
        self.check_open()?;
        let service = self
            .global
            .get_or_try_init(|| BashService::open(self.global_config.clone()))
            .await?;
        // A shutdown that ran while it opened did not see it.
        if self.closed.load(Ordering::SeqCst) {
            service.shutdown().await;
            return Err(BashServiceError::Closed);
        }
        Ok(service.clone())
    }

    /// The service of one conversation: events under
    /// `<conversation_dir>/bash_events`, commands run in `working_dir` unless
    /// they name a `cwd` inside it.
    pub async fn for_conversation(
        &self,
        id: Uuid,
        conversation_dir: &Path,
        working_dir: &Path,
    ) -> Result<BashService, BashServiceError> {
        self.check_open()?;
        let mut scoped = self.scoped.lock().await;
        if let Some(service) = scoped.get(&id) {
            return Ok(service.clone());
        }
        let service = BashService::open(BashServiceConfig {
            events_dir: conversation_dir.join(CONVERSATION_EVENTS_DIR),
            default_cwd: Some(working_dir.to_string_lossy().into_owned()),
            retention_seconds: self.global_config.retention_seconds,
        })
        .await?;
        // A shutdown that ran while it opened did not see it.
        if self.closed.load(Ordering::SeqCst) {
            service.shutdown().await;
            return Err(BashServiceError::Closed);
        }
        scoped.insert(id, service.clone());
        Ok(service)
    }

    /// Stops a conversation's service, if it was opened (the conversation
    /// was deleted): its running commands are killed.
    pub async fn close_conversation(&self, id: Uuid) {
        let removed = self.scoped.lock().await.remove(&id);
        if let Some(service) = removed {
            service.shutdown().await;
        }
    }

    /// Stops every service; no command outlives this call.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let scoped: Vec<BashService> = self.scoped.lock().await.drain().map(|(_, s)| s).collect();
        let global = self.global.get().cloned();
        let all = global.into_iter().chain(scoped);
        futures_util::future::join_all(all.map(|s| async move { s.shutdown().await })).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bash::ExecuteBashRequest;

    #[tokio::test]
    async fn scoped_services_default_to_the_workspace_and_close() {
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let services = BashServices::new(root.path().join("global"), None);
        let id = Uuid::new_v4();
        let conv_dir = root.path().join("conv");
        let scoped = services
            .for_conversation(id, &conv_dir, &work)
            .await
            .unwrap();
        let out = scoped
            .execute(ExecuteBashRequest::new("pwd"))
            .await
            .unwrap();
        let printed = out.stdout.unwrap_or_default();
        assert_eq!(
            Path::new(printed.trim()).canonicalize().unwrap(),
            work.canonicalize().unwrap()
        );
        assert!(conv_dir.join(CONVERSATION_EVENTS_DIR).is_dir());

        let global = services.global().await.unwrap();
        let out = global
            .execute(ExecuteBashRequest::new("echo hi"))
            .await
            .unwrap();
        assert_eq!(out.stdout.as_deref(), Some("hi\n"));

        services.close_conversation(id).await;
        assert_eq!(
            scoped.start(ExecuteBashRequest::new("true")).await.err(),
            Some(BashServiceError::Closed)
        );
        services.shutdown().await;
        assert_eq!(
            services.global().await.err(),
            Some(BashServiceError::Closed)
        );
        assert_eq!(
            global.start(ExecuteBashRequest::new("true")).await.err(),
            Some(BashServiceError::Closed)
        );
        assert!(services
            .for_conversation(id, &conv_dir, &work)
            .await
            .is_err());
    }
}
