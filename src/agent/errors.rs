//! `ConversationErrorEvent` classification (events.md §3.8): the code
//! first, then words in the detail, then generic wrapper codes.

use crate::api::event::{ConversationErrorEvent, ErrorClassification, Event, EventBody, Source};

/// The classification of a conversation error.
pub fn classify(code: &str, detail: &str) -> ErrorClassification {
    let c = ErrorClassification::new;
    match code {
        "LLMAuthenticationError" | "ACPAuthRequired" => return c("auth", false, "settings"),
        "LLMRateLimitError" => return c("rate_limit", true, "retry"),
        "MaxBudgetReached" => return c("quota", false, "settings"),
        "LLMBadRequestError" | "ACPInitError" | "ACPSpawnError" | "ACPPromptError"
        | "NotFoundError" | "LibTmuxException" => return c("config", false, "settings"),
        "LLMContextWindowExceedError" | "LLMMalformedConversationHistoryError" => {
            return c("agent_action", true, "retry")
        }
        "MaxIterationsReached" | "ConversationOwnershipLostError" => {
            return c("agent_action", false, "none")
        }
        "KeyError"
        | "AssertionError"
        | "PydanticSerializationError"
        | "AttributeError"
        | "TypeError" => return c("internal", false, "none"),
        _ => {}
    }
    let text = detail.to_lowercase();
    let any = |tokens: &[&str]| tokens.iter().any(|t| text.contains(t));
    if any(&[
        "invalid api key",
        "incorrect api key",
        "authentication required",
        "invalid bearer token",
        "invalid proxy server token",
        "unauthorized",
        "error code: 401",
        "status\": 401",
        "token_not_found",
        "api key is missing",
    ]) {
        return c("auth", false, "settings");
    }
    if any(&[
        "weekly usage limit",
        "daily quota",
        "session usage limit",
        "insufficient balance",
        "more credits",
        "budget has been exceeded",
    ]) {
        return c("quota", false, "settings");
    }
    if any(&["rate limit", "error code: 429", "status\": 429"]) {
        return c("rate_limit", true, "retry");
    }
    if any(&[
        "provider not provided",
        "no models loaded",
        "does not support thinking",
        "model is no longer available",
        "model not found",
        "invalid params",
        "inactive_service",
        "powershell is not available",
    ]) {
        return c("config", false, "settings");
    }
    if any(&[
        "timeout",
        "connection error",
        "connection closed",
        "service temporarily unavailable",
        "bad gateway",
        "cloudflare",
        "cannot connect",
        "name or service not known",
        "error code: 5",
    ]) {
        return c("transient", true, "retry");
    }
    if any(&[
        "on_token callback",
        "duplicate tool names",
        "list_tools",
        "on_tools_changed",
        "surrogates not allowed",
    ]) {
        return c("internal", false, "none");
    }
    if matches!(
        code,
        "LLMServiceUnavailableError"
            | "LLMTimeoutError"
            | "ReadTimeout"
            | "LLMNoResponseError"
            | "MCPTimeoutError"
            | "BadGatewayError"
            | "HTTPStatusError"
            | "RequestError"
            | "CloudflareError"
            | "OpenAIError"
            | "APIError"
            | "BaseLLMException"
            | "AnthropicError"
            | "OpenRouterException"
            | "OllamaError"
    ) {
        return c("transient", true, "retry");
    }
    c("unknown", false, "none")
}

/// A `ConversationErrorEvent` (source `environment`) with its classification.
pub fn conversation_error(code: &str, detail: &str) -> Event {
    Event::with_source(
        Source::Environment,
        EventBody::ConversationError(ConversationErrorEvent {
            code: code.to_string(),
            detail: detail.to_string(),
            classification: Some(classify(code, detail)),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_then_details() {
        assert_eq!(classify("MaxIterationsReached", "x").kind, "agent_action");
        assert_eq!(
            classify("LLMAuthenticationError", "").user_action,
            "settings"
        );
        assert_eq!(
            classify("Weird", "Error code: 429 slow down").kind,
            "rate_limit"
        );
        assert!(classify("LLMServiceUnavailableError", "boom").retryable);
        assert_eq!(classify("Weird", "boom").kind, "unknown");
    }
}
