//! The agent runtime: the [`Runner`] the conversation service calls, one
//! run task per running conversation, and the out-of-band operations of
//! the lifecycle routes (`ask_agent`, `condense`, `generate_title`, reject).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::api::conversation::{ExecutionStatus, UpdateConversationRequest};
use crate::api::event::{
    AgentErrorEvent, ErrorClassification, Event, EventBody, MessageEvent, SystemPromptEvent,
    TextContentJson, UserRejectObservation,
};
use crate::api::llm_config::LlmConfig;
use crate::api::message::{Message, TextContent};
use crate::api::metrics::Metrics;
use crate::conversations::{
    BoxFuture, Conversation, ConversationError, ConversationService, RunError, RunGuard, Runner,
};
use crate::llm::{LlmClient, LlmErrorKind};
use crate::outbound::Outbound;
use crate::tools::ToolSettings;

use super::condenser;
use super::errors::conversation_error;
use super::prompt::{self, DynamicInput, PromptInput};
use super::session::{Prepared, Session};
use super::skills;
use super::step::{call_llm, environment_message, record_usage, Step, StepError, INTERRUPTED};
use super::title;
use super::toolset::{self, ToolPlace};
use super::view::View;

/// The `usage_id` of `ask_agent` calls.
const ASK_AGENT_USAGE_ID: &str = "ask-agent-llm";

/// How long interrupt and close wait for a run to stop.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The detail of the conversation error for a rejected LLM key.
const AUTH_DETAIL: &str = "Your LLM API key appears to be invalid or has expired.";

/// Why an out-of-band operation failed.
#[derive(Debug)]
pub enum AgentError {
    /// The conversation cannot do this (HTTP 409 with the text).
    Conflict(String),
    /// It failed (HTTP 500; the text goes to the log).
    Failed(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::Conflict(m) | AgentError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<ConversationError> for AgentError {
    fn from(e: ConversationError) -> Self {
        AgentError::Failed(e.to_string())
    }
}

/// Shared by the runtime handle and its tasks.
pub struct Inner {
    /// The LLM client.
    pub llm: LlmClient,
    /// For lookup secrets.
    pub outbound: Outbound,
    /// The server's own URL: the base of relative lookup secret URLs.
    pub server_url: String,
    tool_settings: Arc<ToolSettings>,
    sessions: Mutex<HashMap<Uuid, Arc<Session>>>,
    service: OnceLock<Weak<ConversationService>>,
}

/// The agent runtime.
#[derive(Clone)]
pub struct AgentRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentRuntime")
    }
}

impl AgentRuntime {
    /// A runtime calling LLMs (and lookup secrets) over `outbound`;
    /// relative lookup secret URLs are resolved against `server_url`.
    pub fn new(
        outbound: Outbound,
        tool_settings: Arc<ToolSettings>,
        server_url: String,
    ) -> AgentRuntime {
        AgentRuntime {
            inner: Arc::new(Inner {
                llm: LlmClient::new(outbound.clone()),
                outbound,
                server_url,
                tool_settings,
                sessions: Mutex::new(HashMap::new()),
                service: OnceLock::new(),
            }),
        }
    }

    /// The settings every conversation's tools are created with.
    pub fn tool_settings(&self) -> &Arc<ToolSettings> {
        &self.inner.tool_settings
    }

    /// Installs the runtime as the service's runner.
    pub fn attach(&self, service: &Arc<ConversationService>) {
        let _ = self.inner.service.set(Arc::downgrade(service));
        service.set_runner(Arc::new(self.clone()));
    }

    /// `POST …/ask_agent`: one LLM call on the current view and the
    /// question; nothing is stored but the call's usage.
    pub async fn ask_agent(
        &self,
        conv: &Arc<Conversation>,
        question: &str,
    ) -> Result<String, AgentError> {
        let inner = &self.inner;
        let session = inner.session(conv.id());
        let prepared = inner
            .prepare(conv, &session)
            .await
            .map_err(AgentError::Failed)?;
        let branch = session.branch(conv).await?;
        let mut view = View::from_branch(&branch);
        view.enforce_tool_pairs();
        let mut messages = view.to_messages(&|e, o| session.observation_content(e, o));
        messages.push(Message::user(format!(
            "<QUESTION>\nBased on the activity so far answer the following question\n\n## Question\n{question}\n\n\n<IMPORTANT>\nThis is a question, do not make any tool call and just answer my question.\n</IMPORTANT>\n</QUESTION>"
        )));
        let mut config = prepared.agent.llm.clone();
        config.usage_id = ASK_AGENT_USAGE_ID.to_string();
        config.stream = false;
        let response = call_llm(
            inner,
            conv,
            &config,
            messages,
            prepared.toolset.schemas.clone(),
            false,
            &CancellationToken::new(),
        )
        .await
        .map_err(|e| AgentError::Failed(format!("ask_agent failed: {e}")))?;
        record_usage(conv, &config, &response, false).await?;
        response
            .message
            .content
            .iter()
            .find_map(|c| c.as_text().map(str::to_string))
            .ok_or_else(|| AgentError::Failed("Failed to generate summary".into()))
    }

    /// `POST …/condense`: stores a `CondensationRequest` and runs one step
    /// (a running loop picks the request up at its next step instead).
    pub async fn condense(&self, conv: &Arc<Conversation>) -> Result<(), AgentError> {
        let agent = conv.agent();
        match &agent.condenser {
            None => {
                return Err(AgentError::Conflict(
                    "Cannot condense conversation: No condenser configured".into(),
                ))
            }
            Some(c) if !condenser::handles_requests(c) => {
                return Err(AgentError::Conflict(format!(
                    "Cannot condense conversation: Condenser {} does not handle condensation requests",
                    condenser::kind(c)
                )))
            }
            Some(_) => {}
        }
        conv.append(Event::new(EventBody::CondensationRequest))
            .await?;
        let inner = &self.inner;
        let session = inner.session(conv.id());
        // A running loop condenses at its next step; actions waiting for
        // confirmation must not run as a side effect of condensing.
        if !session.pending(conv).await?.is_empty() {
            return Ok(());
        }
        if session.control().active {
            if conv.execution_status() == ExecutionStatus::Running {
                return Ok(());
            }
            // A run that has just set its final status is still winding
            // down: condense once it has ended, as on an idle conversation.
            let mut running = session.running.subscribe();
            let _ = tokio::time::timeout(STOP_WAIT, running.wait_for(|r| !*r)).await;
            if session.control().active {
                return Ok(());
            }
        }
        let prepared = inner
            .prepare(conv, &session)
            .await
            .map_err(AgentError::Failed)?;
        let _step = session.step_lock.lock().await;
        let cancel = CancellationToken::new();
        let step = Step {
            inner,
            conv,
            session: &session,
            prepared: &prepared,
            cancel: &cancel,
            llm_micros: Default::default(),
        };
        match step.run().await {
            Ok(()) => Ok(()),
            Err(e) => Err(AgentError::Failed(format!("condensation failed: {e:?}"))),
        }
    }

    /// `POST …/generate_title`: a title for the first user message (with
    /// `llm`, else the agent's LLM). Not stored.
    pub async fn generate_title(
        &self,
        conv: &Arc<Conversation>,
        max_length: u64,
        llm: Option<LlmConfig>,
    ) -> Result<String, AgentError> {
        let session = self.inner.session(conv.id());
        let branch = session.branch(conv).await?;
        let first = branch.iter().find_map(|e| match (&e.body, e.source) {
            (EventBody::Message(m), crate::api::event::Source::User) => {
                title::message_text(&m.llm_message)
            }
            _ => None,
        });
        let Some(text) = first else {
            return Err(AgentError::Failed(
                "No user messages found in conversation events".into(),
            ));
        };
        let announce = llm.is_none();
        let mut config = llm.unwrap_or_else(|| conv.agent().llm);
        config.stream = false;
        let prompt = conv.with_state(|s| s.config.prompt.clone());
        let (title, _) = self
            .inner
            .title_for(
                conv,
                &text,
                &config,
                max_length,
                prompt.as_deref(),
                announce,
            )
            .await;
        Ok(title)
    }

    /// `respond_to_confirmation` with `accept: false`: every pending action
    /// gets a `UserRejectObservation`; `waiting_for_confirmation` becomes `idle`.
    pub async fn reject_pending(
        &self,
        conv: &Arc<Conversation>,
        reason: &str,
    ) -> Result<(), AgentError> {
        let session = self.inner.session(conv.id());
        // Not between a step that stops for confirmation and the loop's look
        // at the status: `idle` there would read as new input and run on.
        let _step = session.step_lock.lock().await;
        let pending = session.pending(conv).await?;
        if conv.execution_status() == ExecutionStatus::WaitingForConfirmation {
            conv.set_execution_status(ExecutionStatus::Idle).await?;
        }
        for action in pending {
            let EventBody::Action(a) = &action.body else {
                continue;
            };
            conv.append(Event::new(EventBody::UserReject(UserRejectObservation {
                tool_name: a.tool_name.clone(),
                tool_call_id: a.tool_call_id.clone(),
                rejection_reason: reason.to_string(),
                rejection_source: "user".into(),
                action_id: action.id.clone(),
            })))
            .await?;
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn session(&self, id: Uuid) -> Arc<Session> {
        lock(&self.sessions).entry(id).or_default().clone()
    }

    /// Prepares the agent once per loaded conversation: tools, skills, and
    /// the `SystemPromptEvent` unless the log already starts with one.
    async fn prepare(
        &self,
        conv: &Arc<Conversation>,
        session: &Session,
    ) -> Result<Arc<Prepared>, String> {
        let mut slot = session.prepared.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let agent = conv.agent();
        // One decision for the requests, the image check and the tools.
        let vision = crate::llm::features::vision(&agent.llm);
        let (responses_api, max_input_tokens) = match crate::llm::route::resolve(&agent.llm) {
            Ok(route) => {
                let f = crate::llm::features::resolve(&agent.llm, &route);
                (route.api == crate::llm::Api::Responses, f.max_input_tokens)
            }
            Err(_) => (false, 0),
        };
        let context = agent.agent_context.clone();
        let flag = |k: &str| {
            context
                .as_ref()
                .and_then(|c| c.get(k))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
        };
        let load_project = flag("load_project_skills");
        let load_user = flag("load_user_skills");
        let load_memory = flag("load_memory");
        if flag("load_public_skills") {
            tracing::warn!(conversation_id = %conv.id(), "agent_context.load_public_skills is not supported (it needs the public skills repository); ignored");
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(std::path::PathBuf::from);
        if load_user && home.is_none() {
            tracing::warn!(conversation_id = %conv.id(), "agent_context.load_user_skills: HOME is not set; no user skills");
        }
        let disabled: Vec<String> = context
            .as_ref()
            .and_then(|c| c.get("disabled_skills"))
            .and_then(serde_json::Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let inline = context
            .as_ref()
            .map(skills::inline_skills)
            .unwrap_or_default();
        let working_dir = conv.working_dir().to_path_buf();
        let (all_skills, memory) = tokio::task::spawn_blocking(move || {
            let persistence = skills::persistence_dir(home.as_deref());
            let project = if load_project {
                skills::load_project_skills(&working_dir)
            } else {
                Vec::new()
            };
            let user = if load_user {
                skills::load_user_skills(home.as_deref(), persistence.as_deref())
            } else {
                Vec::new()
            };
            let memory = load_memory
                .then(|| skills::load_memory(&working_dir, persistence.as_deref()))
                .flatten();
            (skills::combine(project, inline, user, &disabled), memory)
        })
        .await
        .map_err(|e| format!("skill loading failed: {e}"))?;
        let place = ToolPlace {
            working_dir: conv.working_dir().to_path_buf(),
            conversation_dir: conv.dir().to_path_buf(),
            vision,
            responses_api,
            settings: self.tool_settings.clone(),
            skills: Arc::new(skills::catalog(&all_skills)),
            attach_invoke_skill: skills::wants_invoke_skill(&all_skills),
        };
        let agent2 = agent.clone();
        let toolset = tokio::task::spawn_blocking(move || toolset::build(&agent2, &place))
            .await
            .map_err(|e| format!("tool set-up failed: {e}"))??;
        let family =
            prompt::model_family(&agent.llm.model, agent.llm.model_canonical_name.as_deref());
        let starts_with_prompt = conv.log().with_index(|idx| {
            idx.entries
                .first()
                .is_some_and(|e| idx.kind_of(e) == "SystemPromptEvent")
        });
        if !starts_with_prompt {
            let secrets = super::secrets::all_secrets(conv.secrets(), context.as_ref());
            let static_text = prompt::static_block(&PromptInput {
                inline: agent.system_prompt.clone(),
                filename: agent.system_prompt_filename.clone(),
                security_policy_filename: agent.security_policy_filename.clone(),
                kwargs: agent.system_prompt_kwargs.clone(),
                persona: agent.persona.clone(),
                model: agent.llm.model.clone(),
                canonical_model: agent.llm.model_canonical_name.clone(),
                tool_guidance: toolset.guidance.clone(),
                load_memory,
            });
            // Python synthesises a default context when there are secrets,
            // which also brings the date.
            let has_context = context.is_some() || !secrets.is_empty();
            let now = has_context
                .then(|| current_datetime(context.as_ref()))
                .flatten();
            let listed: Vec<&skills::Skill> = all_skills.iter().filter(|s| s.is_listed()).collect();
            let dynamic = prompt::dynamic_block(&DynamicInput {
                repo_skills: skills::repo_context(&all_skills, family)
                    .iter()
                    .map(|s| (s.name.clone(), s.content.clone()))
                    .collect(),
                available_skills: (!listed.is_empty())
                    .then(|| skills::available_skills_block(&listed)),
                invoke_skill: toolset
                    .get(crate::tools::invoke_skill::INVOKE_SKILL)
                    .is_some(),
                memory,
                suffix: context
                    .as_ref()
                    .and_then(|c| c.get("system_message_suffix"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
                secrets: super::secrets::infos(&secrets),
                now,
            });
            let event = Event::new(EventBody::SystemPrompt(SystemPromptEvent {
                system_prompt: TextContentJson(TextContent {
                    text: static_text,
                    cache_prompt: false,
                }),
                tools: toolset.event_definitions(),
                dynamic_context: dynamic.map(|d| {
                    TextContentJson(TextContent {
                        text: d,
                        cache_prompt: false,
                    })
                }),
            }));
            if let Err(e) = conv.append(event).await {
                toolset.close().await;
                return Err(format!("could not store the system prompt: {e}"));
            }
        }
        let mut llms = vec![(agent.llm.usage_id.clone(), agent.llm.model.clone())];
        collect_condenser_llms(agent.condenser.as_ref(), &mut llms);
        conv.update_quietly(|st| {
            for (usage_id, model) in llms {
                if st.stats.get(&usage_id).is_none() {
                    st.stats
                        .usage_to_metrics
                        .push((usage_id, Metrics::new(&model)));
                }
            }
        });
        let user_suffix = context
            .as_ref()
            .and_then(|c| c.get("user_message_suffix"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        let prepared = Arc::new(Prepared {
            agent,
            toolset,
            path_rules: skills::has_path_rules(&all_skills),
            skills: all_skills,
            user_suffix,
            max_input_tokens,
            vision,
        });
        *slot = Some(prepared.clone());
        Ok(prepared)
    }

    /// The title for `text`: the LLM's, or the message itself when the
    /// call fails (the failure is returned alongside).
    async fn title_for(
        &self,
        conv: &Arc<Conversation>,
        text: &str,
        config: &LlmConfig,
        max_length: u64,
        prompt: Option<&str>,
        announce: bool,
    ) -> (String, Option<crate::llm::LlmError>) {
        let messages = title::request(text, max_length, prompt);
        let result = call_llm(
            self,
            conv,
            config,
            messages,
            vec![],
            false,
            &CancellationToken::new(),
        )
        .await;
        match result {
            Ok(resp) => {
                if let Err(e) = record_usage(conv, config, &resp, announce).await {
                    tracing::warn!(conversation_id = %conv.id(), error = %e, "could not record the title call");
                }
                let title = title::from_reply(&resp.message, max_length)
                    .unwrap_or_else(|| title::fallback(text, max_length));
                (title, None)
            }
            Err(e) => {
                tracing::warn!(conversation_id = %conv.id(), code = e.code(), "title generation failed; using the message");
                (title::fallback(text, max_length), Some(e))
            }
        }
    }

    async fn autotitle(
        self: Arc<Self>,
        conv: Arc<Conversation>,
        session: Arc<Session>,
        text: String,
    ) {
        let config = {
            let mut c = conv.agent().llm;
            c.stream = false;
            c
        };
        let prompt = conv.with_state(|s| s.config.prompt.clone());
        let (title, failure) = self
            .title_for(&conv, &text, &config, 50, prompt.as_deref(), true)
            .await;
        // The automatic title reports its failure (non-fatal), as Python does.
        if let Some(e) = failure {
            if let Err(err) = conv.append(conversation_error(e.code(), e.detail())).await {
                tracing::warn!(conversation_id = %conv.id(), error = %err, "could not store the title error");
            }
        }
        let service = self.service.get().and_then(Weak::upgrade);
        if conv.with_state(|s| s.title.is_none()) {
            let saved = match service {
                Some(svc) => svc
                    .update(
                        conv.id(),
                        UpdateConversationRequest {
                            title: Some(title),
                            tags: None,
                        },
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => conv.set_title(Some(title)).await.map_err(|e| e.to_string()),
            };
            if let Err(e) = saved {
                tracing::warn!(conversation_id = %conv.id(), error = %e, "could not save the title");
            }
        }
        session.titling.store(false, Ordering::Release);
    }

    /// One run: the loop of agent.md §1, until the conversation stops.
    async fn run_once(
        &self,
        conv: &Arc<Conversation>,
        session: &Session,
        cancel: &CancellationToken,
    ) {
        let prepared = match self.prepare(conv, session).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(conversation_id = %conv.id(), error = %e, "agent could not be prepared");
                let _ = self.fail(conv, "ValueError", &e).await;
                return;
            }
        };
        if let Err(e) = self.loop_steps(conv, session, &prepared, cancel).await {
            match e {
                StepError::Closed => {}
                StepError::Cancelled => {
                    if let Err(e) = self.orphan_errors(conv, session).await {
                        tracing::warn!(conversation_id = %conv.id(), error = ?e, "could not close interrupted calls");
                    }
                }
                StepError::Llm(e) => {
                    let masked = conv.masker().mask_str(&e.detail).into_owned();
                    tracing::warn!(conversation_id = %conv.id(), code = e.code(), detail = %masked, "run failed");
                    let (code, detail) = if e.kind == LlmErrorKind::Authentication {
                        ("LLMAuthenticationError", AUTH_DETAIL)
                    } else {
                        (e.code(), e.detail())
                    };
                    let _ = self.fail(conv, code, detail).await;
                }
                StepError::Failed(code, detail) => {
                    let masked = conv.masker().mask_str(&detail).into_owned();
                    tracing::warn!(conversation_id = %conv.id(), %code, detail = %masked, "run failed");
                    let _ = self.fail(conv, &code, &detail).await;
                }
            }
        }
    }

    async fn loop_steps(
        &self,
        conv: &Arc<Conversation>,
        session: &Session,
        prepared: &Prepared,
        cancel: &CancellationToken,
    ) -> Result<(), StepError> {
        if matches!(
            conv.execution_status(),
            ExecutionStatus::Idle
                | ExecutionStatus::Paused
                | ExecutionStatus::Error
                | ExecutionStatus::Stuck
        ) {
            conv.set_execution_status(ExecutionStatus::Running).await?;
        }
        let (max_iterations, stuck_detection) =
            conv.with_state(|s| (s.config.max_iterations, s.config.stuck_detection));
        let mut iteration: u64 = 0;
        loop {
            let started = std::time::Instant::now();
            if cancel.is_cancelled() {
                return Err(StepError::Cancelled);
            }
            match conv.execution_status() {
                ExecutionStatus::Running => {}
                // A message arrived while the run was ending (finished → idle),
                // or the user accepted pending actions.
                ExecutionStatus::Idle | ExecutionStatus::WaitingForConfirmation => {
                    conv.set_execution_status(ExecutionStatus::Running).await?
                }
                _ => return Ok(()),
            }
            if stuck_detection {
                let branch = session.tail(conv, super::stuck::WINDOW).await?;
                let nudge = session.stuck().action_error_nudge(&branch);
                if let Some(text) = nudge {
                    conv.append(environment_message(&text)).await?;
                } else if session.stuck().is_stuck(&branch) {
                    conv.set_execution_status(ExecutionStatus::Stuck).await?;
                    continue;
                }
            }
            // The status is read before the step lock is released (see
            // `reject_pending`).
            let status = {
                let _step = session.step_lock.lock().await;
                let step = Step {
                    inner: self,
                    conv,
                    session,
                    prepared,
                    cancel,
                    llm_micros: Default::default(),
                };
                step.run().await?;
                let llm = step.llm_micros.load(Ordering::Relaxed);
                tracing::debug!(
                    conversation_id = %conv.id(),
                    iteration,
                    server_us = (started.elapsed().as_micros() as u64).saturating_sub(llm),
                    llm_us = llm,
                    "agent step"
                );
                conv.execution_status()
            };
            iteration += 1;
            if status == ExecutionStatus::WaitingForConfirmation {
                return Ok(());
            }
            if iteration >= max_iterations {
                if status != ExecutionStatus::Finished {
                    let detail =
                        format!("Agent reached maximum iterations limit ({max_iterations}).");
                    self.fail(conv, "MaxIterationsReached", &detail).await?;
                }
                return Ok(());
            }
        }
    }

    /// Status `error` and the `ConversationErrorEvent`.
    async fn fail(
        &self,
        conv: &Arc<Conversation>,
        code: &str,
        detail: &str,
    ) -> Result<(), ConversationError> {
        conv.set_execution_status(ExecutionStatus::Error).await?;
        conv.append(conversation_error(code, detail)).await?;
        Ok(())
    }

    /// After an interrupt: every action left without a result gets the
    /// "interrupted" error, so the history stays valid for the provider.
    async fn orphan_errors(
        &self,
        conv: &Arc<Conversation>,
        session: &Session,
    ) -> Result<(), ConversationError> {
        for action in session.pending(conv).await? {
            let EventBody::Action(a) = &action.body else {
                continue;
            };
            conv.append(Event::new(EventBody::AgentError(AgentErrorEvent {
                tool_name: a.tool_name.clone(),
                tool_call_id: a.tool_call_id.clone(),
                error: INTERRUPTED.to_string(),
                classification: Some(ErrorClassification::agent_action()),
            })))
            .await?;
        }
        Ok(())
    }
}

fn collect_condenser_llms(
    c: Option<&crate::api::agent::Condenser>,
    out: &mut Vec<(String, String)>,
) {
    match c {
        Some(crate::api::agent::Condenser::LlmSummarizing(s))
            if !out.iter().any(|(u, _)| *u == s.llm.usage_id) =>
        {
            out.push((s.llm.usage_id.clone(), s.llm.model.clone()));
        }
        Some(crate::api::agent::Condenser::Pipeline(list)) => {
            for c in list {
                collect_condenser_llms(Some(c), out);
            }
        }
        _ => {}
    }
}

/// `The current date and time is: …`: minute precision (UTC), from
/// `agent_context.current_datetime` when it is a timestamp, verbatim when
/// it is other text, absent when it is null or false.
fn current_datetime(
    context: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Option<String> {
    let value = context.and_then(|c| c.get("current_datetime"));
    match value {
        Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => None,
        Some(serde_json::Value::String(s))
            if crate::util::time::parse_client_timestamp(s).is_none() =>
        {
            Some(s.clone())
        }
        _ => {
            let now = crate::util::time::event_timestamp(crate::util::time::now());
            Some(now.chars().take(16).collect())
        }
    }
}

async fn run_task(
    inner: Arc<Inner>,
    conv: Arc<Conversation>,
    session: Arc<Session>,
    permit: OwnedSemaphorePermit,
    guard: RunGuard,
) {
    loop {
        let cancel = session.control().cancel.clone();
        inner.run_once(&conv, &session, &cancel).await;
        // Every event of the run is published by now (appends publish in
        // order before they return), so this snapshot comes after them.
        conv.publish_full_state().await;
        let mut c = session.control();
        // A run asked for while this one was ending: input that arrived
        // (`idle`) or an accept of the pending actions. A pause wins.
        let again = matches!(
            conv.execution_status(),
            ExecutionStatus::Idle | ExecutionStatus::WaitingForConfirmation
        );
        if c.rerun && !c.closed && again {
            c.rerun = false;
            c.cancel = CancellationToken::new();
            continue;
        }
        c.active = false;
        c.rerun = false;
        break;
    }
    session.running.send_replace(false);
    drop(permit);
    drop(guard);
}

impl Runner for AgentRuntime {
    fn run(&self, conversation: Arc<Conversation>) -> BoxFuture<'static, Result<(), RunError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let session = inner.session(conversation.id());
            let permit = {
                let mut c = session.control();
                if c.closed {
                    return Err(RunError::Refused("inactive_service".into()));
                }
                if c.active || conversation.execution_status() == ExecutionStatus::Running {
                    c.rerun = true;
                    return Err(RunError::AlreadyRunning);
                }
                let permit = conversation.try_run_permit().ok_or(RunError::Capacity)?;
                c.active = true;
                c.rerun = false;
                if c.cancel.is_cancelled() {
                    c.cancel = CancellationToken::new();
                }
                permit
            };
            session.running.send_replace(true);
            let guard = conversation.run_guard();
            // Every log line of the run carries the conversation id (journald: F_CONVERSATION_ID).
            let span = tracing::info_span!("conversation", conversation_id = %conversation.id());
            tokio::spawn(run_task(inner, conversation, session, permit, guard).instrument(span));
            Ok(())
        })
    }

    fn pause(&self, _conversation: Arc<Conversation>) -> BoxFuture<'static, ()> {
        // The loop sees `paused` before its next step.
        Box::pin(async {})
    }

    fn interrupt(&self, conversation: Arc<Conversation>) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let session = inner.session(conversation.id());
            {
                let mut c = session.control();
                c.rerun = false;
                c.cancel.cancel();
            }
            let mut rx = session.running.subscribe();
            let _ = tokio::time::timeout(STOP_WAIT, rx.wait_for(|r| !*r)).await;
        })
    }

    fn close(&self, conversation: Arc<Conversation>) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let Some(session) = lock(&inner.sessions).remove(&conversation.id()) else {
                return;
            };
            {
                let mut c = session.control();
                c.closed = true;
                c.cancel.cancel();
            }
            let mut rx = session.running.subscribe();
            let _ = tokio::time::timeout(STOP_WAIT, rx.wait_for(|r| !*r)).await;
            let prepared = session.prepared.lock().await.take();
            if let Some(p) = prepared {
                p.toolset.close().await;
            }
        })
    }

    fn prepare_message(
        &self,
        conversation: Arc<Conversation>,
        mut message: MessageEvent,
    ) -> BoxFuture<'static, MessageEvent> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let session = inner.session(conversation.id());
            let prepared = match inner.prepare(&conversation, &session).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(conversation_id = %conversation.id(), error = %e, "agent could not be prepared");
                    return message;
                }
            };
            let active = conversation.with_state(|s| s.activated_knowledge_skills.clone());
            if let Some((content, names)) = skills::user_message_extension(
                &message.llm_message,
                &prepared.skills,
                &active,
                prepared.user_suffix.as_deref(),
            ) {
                message.extended_content.push(content);
                if !names.is_empty() {
                    message.activated_skills = names.clone();
                    conversation.update_quietly(|st| st.activated_knowledge_skills.extend(names));
                }
            }
            message
        })
    }

    fn message_stored(
        &self,
        conversation: Arc<Conversation>,
        message: MessageEvent,
    ) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let wanted = conversation.with_state(|s| s.config.autotitle && s.title.is_none());
            let Some(text) = title::message_text(&message.llm_message).filter(|_| wanted) else {
                return;
            };
            let session = inner.session(conversation.id());
            if session.titling.swap(true, Ordering::AcqRel) {
                return;
            }
            let span = tracing::info_span!("conversation", conversation_id = %conversation.id());
            tokio::spawn(
                inner
                    .autotitle(conversation, session, text)
                    .instrument(span),
            );
        })
    }
}
