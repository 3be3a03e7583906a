//! LLM call failures, classified the way the Python SDK classifies them.
//!
//! [`LlmError::code`] is the SDK's exception class name, which becomes
//! `ConversationErrorEvent.code`; [`LlmError::detail`] is the text after it.
//! The recognition rules (context window, malformed history, auth, content
//! policy, quota) are the SDK's `exceptions/classifier.py` substring lists
//! plus LiteLLM's own context-window strings, matched case-insensitively
//! against the provider's whole error body.

use std::time::Duration;

/// What kind of failure, one per SDK exception class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlmErrorKind {
    /// 401/403, or a provider message that says the key is wrong.
    Authentication,
    /// 429 (retried unless the quota is exhausted).
    RateLimit,
    /// The prompt does not fit the model's context window.
    ContextWindowExceeded,
    /// The provider rejected the tool-call/tool-result structure of the history.
    MalformedConversationHistory,
    /// The provider's content filter blocked the request or the reply.
    ContentPolicyViolation,
    /// Any other 4xx, an unsupported provider or a configuration the route cannot carry.
    BadRequest,
    /// 404: wrong model name or endpoint.
    NotFound,
    /// 5xx, connection failures, a broken stream.
    ServiceUnavailable,
    /// No complete reply within `timeout`, or no chunk within `stream_idle_timeout`.
    Timeout,
    /// A 200 without a usable reply (no choices, no completed event, bad JSON).
    NoResponse,
    /// The caller's cancellation token fired.
    Cancelled,
}

/// A failed LLM call.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmError {
    /// The classification.
    pub kind: LlmErrorKind,
    /// Human-readable text: the provider's message with its status code.
    pub detail: String,
    /// The HTTP status, when the provider answered.
    pub status: Option<u16>,
    /// Whether another attempt may succeed (decided before classification,
    /// like the SDK's retry predicate on the raw error).
    pub retryable: bool,
    /// The provider's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail)
    }
}

impl std::error::Error for LlmError {}

const LONG_PROMPT_PATTERNS: &[&str] = &[
    "contextwindowexceedederror",
    "prompt is too long",
    "input length and `max_tokens` exceed context limit",
    "please reduce the length of",
    "exceeds the available context size",
    "context length exceeded",
    "input exceeds the context window",
    "context window exceeds limit",
    "context_length_exceeded",
    "exceed context limit",
    "this model's maximum context length is",
    "model's maximum context limit",
    "is longer than the model's context length",
    "input tokens exceed the configured limit",
    "exceeds the maximum number of tokens allowed",
];

const MALFORMED_HISTORY_PATTERNS: &[&str] = &[
    "tool_use ids were found without `tool_result` blocks immediately after",
    "`tool_use` ids were found without `tool_result` blocks immediately after",
    "each `tool_use` block must have a corresponding `tool_result` block in the next message",
    "each tool_use must have a single result",
    "found multiple `tool_result` blocks with id:",
    "unexpected `tool_use_id` found in `tool_result` blocks",
    "each `tool_result` block must have a corresponding `tool_use` block in the previous message",
    "must be followed by tool messages responding to each 'tool_call_id'",
    "failed to parse tool call arguments as json",
];

const QUOTA_EXHAUSTION_PATTERNS: &[&str] = &[
    "usage_limit_reached",
    "insufficient_quota",
    "budget_exceeded",
    "budget has been exceeded",
];

const AUTH_PATTERNS: &[&str] = &[
    "invalid api key",
    "unauthorized",
    "missing api key",
    "invalid authentication",
    "access denied",
    "status 401",
    "status 403",
];

const CONTENT_POLICY_PATTERNS: &[&str] = &[
    "content_policy",
    "content filtering policy",
    "output blocked by content filtering",
    "content management policy",
];

fn matches_any(haystack: &str, patterns: &[&str]) -> bool {
    patterns.iter().any(|p| haystack.contains(p))
}

impl LlmError {
    /// An error that is never retried.
    pub fn new(kind: LlmErrorKind, detail: impl Into<String>) -> Self {
        LlmError {
            kind,
            detail: detail.into(),
            status: None,
            retryable: false,
            retry_after: None,
        }
    }

    fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// The caller cancelled the call.
    pub fn cancelled() -> Self {
        Self::new(LlmErrorKind::Cancelled, "Operation was cancelled")
    }

    /// A configuration the client cannot send (unsupported provider, bad header…).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(LlmErrorKind::BadRequest, detail)
    }

    /// The connection failed before or while the reply arrived.
    pub fn connection(detail: impl std::fmt::Display) -> Self {
        Self::new(
            LlmErrorKind::ServiceUnavailable,
            format!("Connection error: {detail}"),
        )
        .retryable()
    }

    /// No reply, or no streamed chunk, in time.
    pub fn timeout(what: &str, seconds: f64) -> Self {
        Self::new(
            LlmErrorKind::Timeout,
            format!("LLM {what} after {} seconds", python_g(seconds)),
        )
        .retryable()
    }

    /// A 200 answer without a usable reply.
    pub fn no_response(detail: impl Into<String>) -> Self {
        Self::new(LlmErrorKind::NoResponse, detail).retryable()
    }

    /// The SDK exception class name (`ConversationErrorEvent.code`).
    pub fn code(&self) -> &'static str {
        match self.kind {
            LlmErrorKind::Authentication => "LLMAuthenticationError",
            LlmErrorKind::RateLimit => "LLMRateLimitError",
            LlmErrorKind::ContextWindowExceeded => "LLMContextWindowExceedError",
            LlmErrorKind::MalformedConversationHistory => "LLMMalformedConversationHistoryError",
            LlmErrorKind::ContentPolicyViolation => "LLMContentPolicyViolationError",
            LlmErrorKind::BadRequest => "LLMBadRequestError",
            LlmErrorKind::NotFound => "NotFoundError",
            LlmErrorKind::ServiceUnavailable => "LLMServiceUnavailableError",
            LlmErrorKind::Timeout => "LLMTimeoutError",
            LlmErrorKind::NoResponse => "LLMNoResponseError",
            LlmErrorKind::Cancelled => "OperationCancelled",
        }
    }

    /// The human-readable text (`ConversationErrorEvent.detail`).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Whether this is the caller's own cancellation rather than a failure.
    pub fn is_cancelled(&self) -> bool {
        self.kind == LlmErrorKind::Cancelled
    }

    /// Classifies a non-2xx answer. `body` is the raw response body.
    pub fn from_status(
        provider: &str,
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
    ) -> Self {
        let message = provider_message(body);
        let detail = format!("{provider} error code: {status} - {message}");
        let lower = format!("{body}\n{message}").to_lowercase();
        let context_window = matches_any(&lower, LONG_PROMPT_PATTERNS);
        let quota = matches_any(&lower, QUOTA_EXHAUSTION_PATTERNS);
        let transient = matches!(status, 408 | 409 | 429 | 500..=599);
        let kind = if context_window {
            LlmErrorKind::ContextWindowExceeded
        } else if matches_any(&lower, MALFORMED_HISTORY_PATTERNS) {
            LlmErrorKind::MalformedConversationHistory
        } else if status == 401 || status == 403 {
            LlmErrorKind::Authentication
        } else if status == 429 {
            LlmErrorKind::RateLimit
        } else if status == 408 {
            LlmErrorKind::Timeout
        } else if status >= 500 || status == 409 {
            LlmErrorKind::ServiceUnavailable
        } else if matches_any(&lower, AUTH_PATTERNS) {
            LlmErrorKind::Authentication
        } else if matches_any(&lower, CONTENT_POLICY_PATTERNS) {
            LlmErrorKind::ContentPolicyViolation
        } else if status == 404 {
            LlmErrorKind::NotFound
        } else {
            LlmErrorKind::BadRequest
        };
        LlmError {
            kind,
            detail,
            status: Some(status),
            // Retrying cannot shrink a prompt or refill a quota.
            retryable: transient && !context_window && !quota,
            retry_after,
        }
    }

    /// Classifies an error the provider reported inside a 200 stream
    /// (`response.failed`, Anthropic `error` events).
    pub fn from_stream_error(provider: &str, kind_hint: &str, message: &str) -> Self {
        let hint = kind_hint.to_lowercase();
        let status = match hint.as_str() {
            "rate_limit_error" | "rate_limit_exceeded" => 429,
            "overloaded_error" | "api_error" | "server_error" => 529,
            "authentication_error" => 401,
            "permission_error" => 403,
            "not_found_error" => 404,
            _ => 400,
        };
        let body = format!("{hint}: {message}");
        let mut err = Self::from_status(provider, status, &body, None);
        err.detail = format!("{provider} stream error: {body}");
        err.status = None;
        err
    }
}

/// The provider's error message out of its JSON body, else the body itself.
fn provider_message(body: &str) -> String {
    let trimmed = body.trim();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) {
        let candidates = [
            value.pointer("/error/message"),
            value.pointer("/message"),
            value.pointer("/detail"),
            value.pointer("/error"),
        ];
        for c in candidates.into_iter().flatten() {
            if let Some(s) = c.as_str() {
                return s.to_string();
            }
        }
    }
    let mut text: String = trimmed.chars().take(2000).collect();
    if text.is_empty() {
        text = "(empty body)".to_string();
    }
    text
}

/// Python's `{:g}` for the small positive numbers used in timeout texts.
fn python_g(seconds: f64) -> String {
    if seconds.fract() == 0.0 && seconds.abs() < 1e15 {
        format!("{}", seconds as i64)
    } else {
        format!("{seconds}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        let e = LlmError::from_status(
            "OpenAI",
            401,
            r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#,
            None,
        );
        assert_eq!(e.code(), "LLMAuthenticationError");
        assert!(!e.retryable);
        assert_eq!(
            e.detail(),
            "OpenAI error code: 401 - Incorrect API key provided"
        );

        let e = LlmError::from_status("OpenAI", 429, "slow down", Some(Duration::from_secs(2)));
        assert_eq!(e.code(), "LLMRateLimitError");
        assert!(e.retryable);
        assert_eq!(e.retry_after, Some(Duration::from_secs(2)));

        let e = LlmError::from_status(
            "OpenAI",
            429,
            r#"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#,
            None,
        );
        assert_eq!(e.code(), "LLMRateLimitError");
        assert!(!e.retryable, "quota exhaustion is not retried");

        let e = LlmError::from_status("OpenAI", 503, "", None);
        assert_eq!(e.code(), "LLMServiceUnavailableError");
        assert!(e.retryable);
        assert!(e.detail().ends_with("(empty body)"));

        let e = LlmError::from_status("OpenAI", 404, r#"{"detail":"no such model"}"#, None);
        assert_eq!(e.code(), "NotFoundError");

        let e = LlmError::from_status("OpenAI", 422, "weird", None);
        assert_eq!(e.code(), "LLMBadRequestError");
    }

    #[test]
    fn context_window_recognised_from_provider_texts() {
        for body in [
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","code":"context_length_exceeded"}}"#,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
            "input length and `max_tokens` exceed context limit",
        ] {
            let e = LlmError::from_status("P", 400, body, None);
            assert_eq!(e.code(), "LLMContextWindowExceedError", "{body}");
            assert!(!e.retryable);
        }
        let e = LlmError::from_status("P", 500, "Context window exceeds limit", None);
        assert_eq!(e.code(), "LLMContextWindowExceedError");
        assert!(!e.retryable);
    }

    #[test]
    fn other_recognitions() {
        let e = LlmError::from_status(
            "Anthropic",
            400,
            "messages.3: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
            None,
        );
        assert_eq!(e.code(), "LLMMalformedConversationHistoryError");
        let e = LlmError::from_status("P", 400, "Invalid API key for this org", None);
        assert_eq!(e.code(), "LLMAuthenticationError");
        let e = LlmError::from_status(
            "P",
            400,
            r#"{"error":{"message":"blocked","code":"content_policy_violation"}}"#,
            None,
        );
        assert_eq!(e.code(), "LLMContentPolicyViolationError");
        let e = LlmError::from_stream_error("Anthropic", "overloaded_error", "Overloaded");
        assert_eq!(e.code(), "LLMServiceUnavailableError");
        assert!(e.retryable);
    }

    #[test]
    fn timeout_text_matches_python() {
        assert_eq!(
            LlmError::timeout("hard timeout", 300.0).detail(),
            "LLM hard timeout after 300 seconds"
        );
        assert_eq!(
            LlmError::timeout("stream idle timeout", 0.5).detail(),
            "LLM stream idle timeout after 0.5 seconds"
        );
        assert!(LlmError::cancelled().is_cancelled());
    }
}
