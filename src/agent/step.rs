//! One agent step (agent.md §2): pending actions first, else condense or
//! ask the LLM and act on its reply.

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::api::conversation::ExecutionStatus;
use crate::api::event::{
    AgentErrorEvent, Condensation, ErrorClassification, Event, EventBody, MessageEvent,
    ObservationEvent, SecurityAnalysisEvent, SecurityRisk, Source, StreamingDeltaEvent,
};
use crate::api::llm_config::LlmConfig;
use crate::api::message::{Content, Message, Role};
use crate::conversations::{Conversation, ConversationError};
use crate::llm::{
    CompletionRequest, CompletionResponse, LlmError, LlmErrorKind, StreamDelta, ToolSchema,
};
use crate::tools::invoke_skill::INVOKE_SKILL;
use crate::tools::{ExecContext, Observation, ToolError};

use super::calls::{convert, Converted, ResponseExtras};
use super::condenser::{self, Plan, Requirement};
use super::runtime::Inner;
use super::security;
use super::session::{Prepared, Session};
use super::skills;
use super::view::{describe, View};

/// The nudge after a reply with neither text nor tool calls.
const EMPTY_REPLY_NUDGE: &str = "Your last response did not include a function call or a message. Please use a tool to proceed with the task.";

/// The user message after a reply the provider's content filter blocked.
const CONTENT_FILTER_NUDGE: &str = "Your previous response was blocked by the model's content filter. Please continue, rephrasing to avoid the flagged content.";

/// The result text of tool calls an interrupt cut short.
pub const INTERRUPTED: &str =
    "Tool call interrupted before completion. The conversation was paused.";

/// Why a step did not complete.
#[derive(Debug)]
pub enum StepError {
    /// Interrupted (or the conversation closed) while waiting.
    Cancelled,
    /// The conversation was deleted or unloaded.
    Closed,
    /// The LLM call failed for good.
    Llm(LlmError),
    /// Anything else: (exception-style code, detail).
    Failed(String, String),
}

impl From<ConversationError> for StepError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::Closed => StepError::Closed,
            other => StepError::Failed("ConversationError".into(), other.to_string()),
        }
    }
}

/// Everything a step works with.
pub struct Step<'a> {
    /// The runtime.
    pub inner: &'a Inner,
    /// The conversation.
    pub conv: &'a Arc<Conversation>,
    /// Its session.
    pub session: &'a Session,
    /// Its prepared agent.
    pub prepared: &'a Prepared,
    /// Cancelled by interrupt or close.
    pub cancel: &'a CancellationToken,
    /// Microseconds spent waiting for the provider in this step (what is
    /// left of the step is the server's own time).
    pub llm_micros: std::sync::atomic::AtomicU64,
}

impl Step<'_> {
    /// Runs the step.
    pub async fn run(&self) -> Result<(), StepError> {
        let history = self.session.snapshot(self.conv).await?;
        if !history.pending.is_empty() {
            tracing::info!(conversation_id = %self.conv.id(), count = history.pending.len(), "executing pending actions");
            return self.execute(history.pending).await;
        }
        let mut view = View::from_branch(&history.branch);
        if history.unanswered {
            view.enforce_tool_pairs();
        }
        let obs = |e: &Event, o: &ObservationEvent| self.session.observation_content(e, o);
        let messages = view.to_messages(&obs);
        if let Some(c) = &self.prepared.agent.condenser {
            let tokens = condenser::approximate_tokens(&messages);
            let max_input = Some(self.prepared.max_input_tokens).filter(|m| *m > 0);
            if let Some(plan) = condenser::plan(c, &view, tokens, max_input) {
                if let Some(event) = self.condense(plan, &view).await? {
                    self.conv.append(event).await?;
                    return Ok(());
                }
            }
        }
        let config = &self.prepared.agent.llm;
        if !self.prepared.vision && latest_user_has_image(&messages) {
            tracing::info!(conversation_id = %self.conv.id(), model = %config.model, "image input for a model without vision");
            let text = format!("I received your image, but the currently selected model ({}) does not support image understanding. Please switch to a multimodal model to analyze the image.", config.model);
            let reply = Message::assistant(vec![Content::text(text)]);
            self.conv
                .append(Event::with_source(
                    Source::Agent,
                    EventBody::Message(plain_message(reply)),
                ))
                .await?;
            self.conv
                .set_execution_status(ExecutionStatus::Finished)
                .await?;
            return Ok(());
        }
        let response = match self
            .call(
                config,
                messages,
                self.prepared.toolset.schemas.clone(),
                config.stream,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return self.llm_failure(e).await,
        };
        self.record_usage(config, &response, true).await?;
        let message = response.message;
        if message.tool_calls.as_ref().is_some_and(|c| !c.is_empty()) {
            return self.tool_calls(message, &response.id).await;
        }
        let has_text = message
            .content
            .iter()
            .any(|c| c.as_text().is_some_and(|t| !t.trim().is_empty()));
        self.conv
            .append(agent_message(message, &response.id))
            .await?;
        if has_text {
            self.conv
                .set_execution_status(ExecutionStatus::Finished)
                .await?;
        } else {
            tracing::warn!(conversation_id = %self.conv.id(), "LLM reply without text or tool calls");
            self.conv
                .append(environment_message(EMPTY_REPLY_NUDGE))
                .await?;
        }
        Ok(())
    }

    async fn llm_failure(&self, e: LlmError) -> Result<(), StepError> {
        match e.kind {
            LlmErrorKind::Cancelled => Err(StepError::Cancelled),
            LlmErrorKind::ContentPolicyViolation => {
                let msg = Event::with_source(
                    Source::User,
                    EventBody::Message(plain_message(Message::user(CONTENT_FILTER_NUDGE))),
                );
                self.conv.append(msg).await?;
                Ok(())
            }
            LlmErrorKind::ContextWindowExceeded | LlmErrorKind::MalformedConversationHistory
                if self
                    .prepared
                    .agent
                    .condenser
                    .as_ref()
                    .is_some_and(condenser::handles_requests) =>
            {
                tracing::warn!(conversation_id = %self.conv.id(), code = e.code(), "asking the condenser to shorten the history");
                self.conv
                    .append(Event::new(EventBody::CondensationRequest))
                    .await?;
                Ok(())
            }
            _ => Err(StepError::Llm(e)),
        }
    }

    /// One completion; streamed deltas go to the socket subscribers, masked
    /// (a secret split across deltas is held back until it is whole).
    pub async fn call(
        &self,
        config: &LlmConfig,
        messages: Vec<Message>,
        tools: Vec<ToolSchema>,
        stream: bool,
    ) -> Result<CompletionResponse, LlmError> {
        let result = call_llm(
            self.inner,
            self.conv,
            config,
            messages,
            tools,
            stream,
            self.cancel,
        )
        .await;
        if let Ok(r) = &result {
            self.llm_micros.fetch_add(
                (r.usage.latency * 1e6) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        result
    }

    /// Records a call's usage under the LLM's `usage_id`: with a `stats`
    /// state update when the Python server would stream it, quietly
    /// otherwise. Calls that report no tokens are not recorded.
    pub async fn record_usage(
        &self,
        config: &LlmConfig,
        response: &CompletionResponse,
        announce: bool,
    ) -> Result<(), StepError> {
        record_usage(self.conv, config, response, announce).await?;
        Ok(())
    }

    async fn tool_calls(&self, message: Message, response_id: &str) -> Result<(), StepError> {
        let analyzer = self.conv.with_state(|s| s.security_analyzer.clone());
        let policy = self.conv.with_state(|s| s.confirmation_policy);
        let calls = message.tool_calls.clone().unwrap_or_default();
        let mut extras = Some(ResponseExtras {
            thought: message
                .content
                .iter()
                .filter(|c| c.as_text().is_some())
                .cloned()
                .collect(),
            reasoning_content: message.reasoning_content.clone(),
            thinking_blocks: message.thinking_blocks.clone(),
            responses_reasoning_item: message.responses_reasoning_item.clone(),
        });
        let mut actions: Vec<Arc<Event>> = Vec::new();
        for call in &calls {
            let first = extras.take().unwrap_or_default();
            match convert(
                call,
                &self.prepared.toolset,
                analyzer.is_some(),
                response_id,
                first,
            ) {
                Converted::Action(event) => {
                    self.conv.append((*event).clone()).await?;
                    actions.push(Arc::new(*event));
                }
                Converted::Failed(action, error) => {
                    tracing::info!(conversation_id = %self.conv.id(), tool = %call.name, "tool call could not be used");
                    self.conv.append(*action).await?;
                    self.conv.append(*error).await?;
                }
            }
        }
        if actions.is_empty() {
            return Ok(());
        }
        let refs: Vec<&crate::api::event::ActionEvent> = actions
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Action(a) => Some(a),
                _ => None,
            })
            .collect();
        if !security::is_lone_builtin(&refs) {
            let risks = match &analyzer {
                Some(an) => {
                    let analyses = security::analyze(an, &refs);
                    let mut risk_map = Map::new();
                    let mut details = Map::new();
                    for (event, analysis) in actions.iter().zip(&analyses) {
                        risk_map.insert(
                            event.id.clone(),
                            serde_json::to_value(analysis.risk).unwrap_or(Value::Null),
                        );
                        if let Some(d) = &analysis.details {
                            details.insert(event.id.clone(), d.clone());
                        }
                    }
                    self.conv
                        .append(Event::new(EventBody::SecurityAnalysis(
                            SecurityAnalysisEvent {
                                analyzer: an.kind().to_string(),
                                policy: policy.kind().to_string(),
                                risks: risk_map,
                                details,
                            },
                        )))
                        .await?;
                    analyses.iter().map(|a| a.risk).collect()
                }
                None => vec![SecurityRisk::Unknown; refs.len()],
            };
            if security::needs_confirmation(&policy, &risks) {
                self.conv
                    .set_execution_status(ExecutionStatus::WaitingForConfirmation)
                    .await?;
                return Ok(());
            }
        }
        self.execute(actions).await
    }

    /// Executes a batch of actions and stores their results in call order.
    /// Calls after a `finish` are dropped; a batch with `finish` ends the run.
    pub async fn execute(&self, mut actions: Vec<Arc<Event>>) -> Result<(), StepError> {
        let finish_at = actions.iter().position(|e| tool_name(e) == Some("finish"));
        if let Some(i) = finish_at {
            let dropped: Vec<&str> = actions[i + 1..]
                .iter()
                .filter_map(|e| tool_name(e))
                .collect();
            if !dropped.is_empty() {
                tracing::warn!(conversation_id = %self.conv.id(), ?dropped, "discarding tool calls after finish");
            }
            actions.truncate(i + 1);
        }
        let limit = self.prepared.agent.tool_concurrency_limit.max(1) as usize;
        let results = if limit > 1 && actions.len() > 1 {
            self.run_concurrently(&actions, limit).await
        } else {
            let mut out = Vec::with_capacity(actions.len());
            for a in &actions {
                let r = self.run_tool(a).await;
                let stop = matches!(r, Err(ToolError::Cancelled));
                out.push(r);
                if stop {
                    break;
                }
            }
            out
        };
        let mut cancelled = false;
        for (action, result) in actions.iter().zip(results) {
            let Some(name) = tool_name(action) else {
                continue;
            };
            let EventBody::Action(a) = &action.body else {
                continue;
            };
            match result {
                Ok(obs) => {
                    let masker = self.conv.masker();
                    let content: Vec<Content> = obs
                        .llm_content
                        .iter()
                        .map(|c| match c {
                            Content::Text(t) => {
                                Content::text(masker.mask_str(&t.text).into_owned())
                            }
                            other => other.clone(),
                        })
                        .collect();
                    let extended_content = match &a.action {
                        Some(act) if self.prepared.path_rules => self.path_rules(act).await,
                        _ => Vec::new(),
                    };
                    if name == INVOKE_SKILL && !obs.is_error() {
                        self.record_invocation(&obs);
                    }
                    let event = Event::new(EventBody::Observation(ObservationEvent {
                        tool_name: name.to_string(),
                        tool_call_id: a.tool_call_id.clone(),
                        observation: Value::Object(obs.json),
                        action_id: action.id.clone(),
                        extended_content,
                    }));
                    self.session.remember_llm_content(&event.id, content);
                    self.conv.append(event).await?;
                }
                Err(ToolError::Invalid(msg)) => {
                    self.conv
                        .append(Event::new(EventBody::AgentError(AgentErrorEvent {
                            tool_name: name.to_string(),
                            tool_call_id: a.tool_call_id.clone(),
                            error: format!("Error executing tool '{name}': {msg}"),
                            classification: Some(ErrorClassification::agent_action()),
                        })))
                        .await?;
                }
                Err(ToolError::Cancelled) => cancelled = true,
            }
        }
        if cancelled || self.cancel.is_cancelled() {
            return Err(StepError::Cancelled);
        }
        if finish_at.is_some() {
            self.conv
                .set_execution_status(ExecutionStatus::Finished)
                .await?;
        }
        Ok(())
    }

    /// The path rules (agent.md §7) the files an action touches bring in,
    /// each once per conversation (recorded in `activated_path_rules`).
    async fn path_rules(&self, action: &Value) -> Vec<Content> {
        let touched = skills::touched_paths(action);
        if touched.is_empty() {
            return Vec::new();
        }
        let working_dir = self.conv.working_dir().to_path_buf();
        let relative = tokio::task::spawn_blocking(move || {
            touched
                .iter()
                .filter_map(|p| skills::workspace_relative(p, &working_dir))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut active: Vec<String> = self.conv.with_state(|s| {
            s.activated_path_rules
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        });
        let mut out = Vec::new();
        let mut activated = Vec::new();
        for path in relative {
            if let Some((content, names)) =
                skills::path_rule_extension(&path, &self.prepared.skills, &active)
            {
                tracing::info!(conversation_id = %self.conv.id(), rules = ?names, %path, "path rules triggered");
                out.push(content);
                active.extend(names.iter().cloned());
                activated.extend(names);
            }
        }
        if !activated.is_empty() {
            self.conv.update_quietly(|st| {
                st.activated_path_rules
                    .extend(activated.into_iter().map(Value::String))
            });
        }
        out
    }

    /// Records a successful `invoke_skill` in `invoked_skills` (once per name).
    fn record_invocation(&self, obs: &Observation) {
        let Some(name) = obs.json.get("skill_name").and_then(Value::as_str) else {
            return;
        };
        if !self
            .conv
            .with_state(|s| s.invoked_skills.iter().any(|n| n == name))
        {
            let name = name.to_string();
            self.conv.update_quietly(|st| st.invoked_skills.push(name));
        }
    }

    async fn run_concurrently(
        &self,
        actions: &[Arc<Event>],
        limit: usize,
    ) -> Vec<Result<Observation, ToolError>> {
        use std::collections::HashMap;
        let permits = tokio::sync::Semaphore::new(limit);
        let mut keys: HashMap<String, Arc<tokio::sync::Mutex<()>>> = HashMap::new();
        let key_locks: Vec<Option<Arc<tokio::sync::Mutex<()>>>> = actions
            .iter()
            .map(|e| {
                let (EventBody::Action(a), Some(name)) = (&e.body, tool_name(e)) else {
                    return None;
                };
                let tool = self.prepared.toolset.get(name)?;
                let key = tool.resource_key(a.action.as_ref()?)?;
                Some(keys.entry(key).or_default().clone())
            })
            .collect();
        let runs = actions.iter().zip(key_locks).map(|(a, key)| {
            let permits = &permits;
            async move {
                let _permit = permits.acquire().await;
                let _key = match &key {
                    Some(k) => Some(k.lock().await),
                    None => None,
                };
                self.run_tool(a).await
            }
        });
        futures_util::future::join_all(runs).await
    }

    async fn run_tool(&self, action: &Event) -> Result<Observation, ToolError> {
        let EventBody::Action(a) = &action.body else {
            return Err(ToolError::Invalid("not an action".into()));
        };
        let Some(act) = &a.action else {
            return Err(ToolError::Invalid("the call has no action".into()));
        };
        let Some(tool) = self.prepared.toolset.get(&a.tool_name) else {
            return Err(ToolError::Invalid(format!(
                "Tool '{}' not found. Available: {:?}",
                a.tool_name,
                self.prepared.toolset.names()
            )));
        };
        let secrets_all = super::secrets::all_secrets(
            self.conv.secrets(),
            self.prepared.agent.agent_context.as_ref(),
        );
        let secrets = match (
            a.tool_name.as_str(),
            act.get("command").and_then(Value::as_str),
        ) {
            ("terminal", Some(command)) => {
                super::secrets::for_command(
                    command,
                    &secrets_all,
                    &self.inner.outbound,
                    &self.inner.server_url,
                )
                .await
            }
            _ => Vec::new(),
        };
        let lookups: Vec<String> = secrets
            .iter()
            .filter(|(name, _)| {
                secrets_all.iter().any(|(n, s)| {
                    n == name && matches!(s, crate::api::conversation::SecretSource::Lookup { .. })
                })
            })
            .map(|(_, v)| v.clone())
            .collect();
        if self.session.add_fetched(&lookups) {
            self.conv.add_masked_values(&self.session.fetched_values());
        }
        let mut secret_values: Vec<String> = secrets_all
            .iter()
            .filter_map(|(_, s)| match s {
                crate::api::conversation::SecretSource::Static { value, .. } => value.clone(),
                crate::api::conversation::SecretSource::Lookup { .. } => None,
            })
            .collect();
        secret_values.extend(self.session.fetched_values());
        let ctx = ExecContext {
            secrets,
            secret_values,
            cancel: self.cancel.clone(),
        };
        if self.cancel.is_cancelled() {
            return Err(ToolError::Cancelled);
        }
        tool.execute(act, &ctx).await
    }

    /// Summarises the planned events; `None` when a soft condensation
    /// cannot be made (the step then goes on with the full view).
    async fn condense(&self, plan: Plan, view: &View) -> Result<Option<Event>, StepError> {
        let obs = |e: &Event, o: &ObservationEvent| self.session.observation_content(e, o);
        let mut config = plan.condenser.llm.clone();
        config.stream = false;
        let mut range = plan.forgotten.clone();
        let mut offset = plan.summary_offset;
        let mut max_chars: Option<usize> = None;
        let mut attempts = if plan.requirement == Requirement::Hard {
            plan.condenser.hard_context_reset_max_retries.max(1) + 1
        } else {
            1
        };
        loop {
            let texts: Vec<String> = view.items[range.clone()]
                .iter()
                .map(|i| describe(i, &obs))
                .collect();
            let result = self
                .call(
                    &config,
                    condenser::summary_messages(&texts, max_chars),
                    vec![],
                    false,
                )
                .await;
            match result {
                Ok(resp) => {
                    self.record_usage(&config, &resp, true).await?;
                    let summary = resp
                        .message
                        .content
                        .first()
                        .and_then(|c| c.as_text())
                        .map(str::to_string);
                    let event = Event::new(EventBody::Condensation(Condensation {
                        forgotten_event_ids: view.items[range]
                            .iter()
                            .map(|i| i.id().to_string())
                            .collect(),
                        summary,
                        summary_offset: Some(offset as u64),
                        llm_response_id: Some(resp.id),
                    }));
                    return Ok(Some(event));
                }
                Err(e) if e.is_cancelled() => return Err(StepError::Cancelled),
                Err(e) => {
                    attempts -= 1;
                    let masked = self.conv.masker().mask_str(&e.to_string()).into_owned();
                    tracing::warn!(conversation_id = %self.conv.id(), error = %masked, "summarising for condensation failed");
                    if plan.requirement == Requirement::Soft {
                        return Ok(None);
                    }
                    if attempts == 0 {
                        return Err(StepError::Failed(
                            "NoCondensationAvailableException".into(),
                            format!("Summarization LLM call failed: {}", e.detail()),
                        ));
                    }
                    // Hard reset: forget everything after the system prompt,
                    // with ever shorter event texts.
                    let keep = view
                        .items
                        .iter()
                        .position(|i| matches!(i, super::view::ViewItem::Event(e) if matches!(e.body, EventBody::SystemPrompt(_))))
                        .map_or(0, |s| s + 1);
                    range = keep.min(view.len())..view.len();
                    offset = range.start;
                    let longest = texts
                        .iter()
                        .map(|t| t.chars().count())
                        .max()
                        .unwrap_or(1000);
                    let base = max_chars.unwrap_or(longest);
                    max_chars = Some(
                        ((base as f64) * plan.condenser.hard_context_reset_context_scaling)
                            as usize,
                    );
                }
            }
        }
    }
}

/// Whether the latest user message carries an image (the SDK looks no
/// further back: earlier images were already answered).
fn latest_user_has_image(messages: &[Message]) -> bool {
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .is_some_and(|m| m.content.iter().any(|c| matches!(c, Content::Image(_))))
}

fn tool_name(e: &Event) -> Option<&str> {
    match &e.body {
        EventBody::Action(a) => Some(a.tool_name.as_str()),
        _ => None,
    }
}

fn plain_message(msg: Message) -> MessageEvent {
    MessageEvent {
        llm_message: msg,
        llm_response_id: None,
        activated_skills: vec![],
        extended_content: vec![],
        sender: None,
        critic_result: None,
    }
}

/// An agent `MessageEvent` for a reply.
fn agent_message(mut msg: Message, response_id: &str) -> Event {
    msg.role = Role::Assistant;
    let mut body = plain_message(msg);
    body.llm_response_id = Some(response_id.to_string());
    Event::with_source(Source::Agent, EventBody::Message(body))
}

/// An `environment` message the model sees as a user turn (nudges).
pub fn environment_message(text: &str) -> Event {
    Event::with_source(
        Source::Environment,
        EventBody::Message(plain_message(Message::user(text))),
    )
}

/// One completion with streamed deltas published to the socket subscribers.
pub async fn call_llm(
    inner: &Inner,
    conv: &Arc<Conversation>,
    config: &LlmConfig,
    messages: Vec<Message>,
    tools: Vec<ToolSchema>,
    stream: bool,
    cancel: &CancellationToken,
) -> Result<CompletionResponse, LlmError> {
    let request = CompletionRequest {
        messages,
        tools,
        prompt_cache_key: Some(crate::util::ids::dashed(&conv.id())),
        stream,
    };
    if !stream {
        return inner.llm.complete(config, request, None, cancel).await;
    }
    // Unbounded, but bounded in practice by the reply itself (the client
    // caps reply bodies); deltas cannot wait inside the client's callback.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<StreamDelta>();
    let on_delta = move |d: StreamDelta| {
        let _ = tx.send(d);
    };
    let mut text_mask = conv.stream_masker();
    let mut reasoning_mask = conv.stream_masker();
    let publish = |content: Option<String>, reasoning: Option<String>| {
        Event::new(EventBody::StreamingDelta(StreamingDeltaEvent {
            content,
            reasoning_content: reasoning,
        }))
    };
    let call = inner.llm.complete(config, request, Some(&on_delta), cancel);
    tokio::pin!(call);
    let result = loop {
        tokio::select! {
            r = &mut call => break r,
            Some(d) = rx.recv() => {
                let event = match d {
                    StreamDelta::Content(t) => publish(Some(text_mask.feed(&t)), None),
                    StreamDelta::Reasoning(t) => publish(None, Some(reasoning_mask.feed(&t))),
                };
                conv.publish_transient(event).await;
            }
        }
    };
    while let Ok(d) = rx.try_recv() {
        let event = match d {
            StreamDelta::Content(t) => publish(Some(text_mask.feed(&t)), None),
            StreamDelta::Reasoning(t) => publish(None, Some(reasoning_mask.feed(&t))),
        };
        conv.publish_transient(event).await;
    }
    let rest = text_mask.flush();
    if !rest.is_empty() {
        conv.publish_transient(publish(Some(rest), None)).await;
    }
    let rest = reasoning_mask.flush();
    if !rest.is_empty() {
        conv.publish_transient(publish(None, Some(rest))).await;
    }
    result
}

/// Records a call's usage (see [`Step::record_usage`]).
pub async fn record_usage(
    conv: &Arc<Conversation>,
    config: &LlmConfig,
    response: &CompletionResponse,
    announce: bool,
) -> Result<(), ConversationError> {
    let usage = &response.usage;
    if usage.prompt_tokens + usage.completion_tokens == 0 {
        return Ok(());
    }
    let now = crate::util::time::now().as_millisecond() as f64 / 1000.0;
    let record = |st: &mut crate::conversations::ConversationState| {
        st.stats.record(&config.usage_id, &config.model, usage, now)
    };
    if announce {
        conv.update_state("stats", |st| {
            record(st);
            st.stats.snapshot()
        })
        .await
    } else {
        conv.update_quietly(record);
        Ok(())
    }
}
