//! The `LLM` configuration object (`agent.llm`, agent.md §12).
//!
//! Field order and defaults are the Python SDK's, because `ConversationInfo`
//! echoes the whole object with every default filled. Unknown keys are
//! ignored on input, like pydantic's `extra="ignore"`.
//!
//! Secret fields (`api_key`, the AWS credentials) are plain strings here; the
//! layers that write them out decide what they become (`null` over REST,
//! `"**********"` in WebSocket state, age ciphertext on disk): see
//! [`LlmConfig::SECRET_FIELDS`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One LLM's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmConfig {
    /// `provider/model` (`openai/gpt-4o`, `anthropic/claude-…`) or a bare model name.
    pub model: String,
    pub api_key: Option<String>,
    pub provider_connection_id: Option<String>,
    /// `api_key` or `subscription`.
    pub auth_type: String,
    pub subscription_vendor: Option<String>,
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    pub aws_session_token: Option<String>,
    pub aws_region_name: Option<String>,
    pub aws_profile_name: Option<String>,
    pub aws_role_name: Option<String>,
    pub aws_session_name: Option<String>,
    pub aws_bedrock_runtime_endpoint: Option<String>,
    pub openrouter_site_url: String,
    pub openrouter_app_name: String,
    /// Extra attempts after a retryable failure.
    pub num_retries: u32,
    /// Exponential back-off: wait `multiplier × 2^n` seconds, clamped to [min, max].
    pub retry_multiplier: f64,
    pub retry_min_wait: u64,
    pub retry_max_wait: u64,
    /// Whole-request timeout in seconds.
    pub timeout: Option<u64>,
    /// Seconds without a streamed chunk before the stream counts as dead.
    pub stream_idle_timeout: Option<f64>,
    pub max_message_chars: u64,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<f64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub model_canonical_name: Option<String>,
    /// `auto`, `chat` or `responses`.
    pub api_mode: String,
    pub capability_overrides: Map<String, Value>,
    pub extra_headers: Option<Map<String, Value>>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub ollama_base_url: Option<String>,
    /// Stream the response; deltas go to WebSocket subscribers.
    pub stream: bool,
    pub drop_params: bool,
    pub disable_vision: Option<bool>,
    pub disable_stop_word: Option<bool>,
    pub caching_prompt: bool,
    pub log_completions: bool,
    pub log_completions_folder: String,
    pub custom_tokenizer: Option<String>,
    pub native_tool_calling: bool,
    pub force_string_serializer: Option<bool>,
    pub inline_image_urls: Option<bool>,
    /// `low`, `medium`, `high`, `xhigh`, `none` or any provider value.
    pub reasoning_effort: Option<String>,
    /// `auto`, `concise` or `detailed`.
    pub reasoning_summary: Option<String>,
    pub enable_encrypted_reasoning: bool,
    pub prompt_cache_retention: Option<String>,
    pub extended_thinking_budget: Option<u64>,
    pub seed: Option<i64>,
    /// The key of this LLM's metrics in `stats.usage_to_metrics`.
    pub usage_id: String,
    pub litellm_extra_body: Map<String, Value>,
    /// Computed on output; ignored on input.
    #[serde(skip_deserializing)]
    pub is_subscription: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            model: "gpt-5.6".to_string(),
            api_key: None,
            provider_connection_id: None,
            auth_type: "api_key".to_string(),
            subscription_vendor: None,
            base_url: None,
            api_version: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            aws_region_name: None,
            aws_profile_name: None,
            aws_role_name: None,
            aws_session_name: None,
            aws_bedrock_runtime_endpoint: None,
            openrouter_site_url: "https://docs.all-hands.dev/".to_string(),
            openrouter_app_name: "OpenHands".to_string(),
            num_retries: 5,
            retry_multiplier: 8.0,
            retry_min_wait: 8,
            retry_max_wait: 64,
            timeout: Some(300),
            stream_idle_timeout: Some(300.0),
            max_message_chars: 30_000,
            temperature: None,
            top_p: None,
            top_k: None,
            max_input_tokens: None,
            max_output_tokens: None,
            model_canonical_name: None,
            api_mode: "auto".to_string(),
            capability_overrides: Map::new(),
            extra_headers: None,
            input_cost_per_token: None,
            output_cost_per_token: None,
            ollama_base_url: None,
            stream: false,
            drop_params: true,
            disable_vision: None,
            disable_stop_word: Some(false),
            caching_prompt: true,
            log_completions: false,
            log_completions_folder: "logs/completions".to_string(),
            custom_tokenizer: None,
            native_tool_calling: true,
            force_string_serializer: None,
            inline_image_urls: None,
            reasoning_effort: Some("high".to_string()),
            reasoning_summary: None,
            enable_encrypted_reasoning: true,
            prompt_cache_retention: Some("24h".to_string()),
            extended_thinking_budget: Some(200_000),
            seed: None,
            usage_id: "default".to_string(),
            litellm_extra_body: Map::new(),
            is_subscription: false,
        }
    }
}

impl LlmConfig {
    /// Fields that hold secrets and must never be written out in plaintext.
    pub const SECRET_FIELDS: [&'static str; 4] = [
        "api_key",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    ];

    /// The provider prefix of `model` (`openai` for `openai/gpt-4o`), if any.
    pub fn provider(&self) -> Option<&str> {
        self.model.split_once('/').map(|(p, _)| p)
    }

    /// The model name without its provider prefix, as sent on the wire.
    pub fn bare_model(&self) -> &str {
        self.model
            .split_once('/')
            .map(|(_, m)| m)
            .unwrap_or(&self.model)
    }

    /// The secret values this configuration carries (for masking).
    pub fn secret_values(&self) -> Vec<&str> {
        [
            &self.api_key,
            &self.aws_access_key_id,
            &self.aws_secret_access_key,
            &self.aws_session_token,
        ]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .filter(|v| !v.is_empty())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_defaults_and_ignores_unknown_keys() {
        let cfg: LlmConfig = serde_json::from_str(
            r#"{"model":"openai/gpt-4o","api_key":"sk","base_url":"http://x/v1","num_retries":0,"usage_id":"agent","unknown":1,"is_subscription":true}"#,
        )
        .unwrap();
        assert_eq!(cfg.bare_model(), "gpt-4o");
        assert_eq!(cfg.provider(), Some("openai"));
        assert!(!cfg.is_subscription);
        let out = serde_json::to_value(&cfg).unwrap();
        let keys: Vec<&str> = out
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.first(), Some(&"model"));
        assert_eq!(keys.last(), Some(&"is_subscription"));
        assert_eq!(keys.len(), 56);
        assert_eq!(out["retry_multiplier"], serde_json::json!(8.0));
        assert_eq!(out["stream_idle_timeout"], serde_json::json!(300.0));
        assert_eq!(out["timeout"], serde_json::json!(300));
        assert_eq!(out["reasoning_effort"], "high");
    }

    #[test]
    fn bare_model_without_prefix() {
        let cfg = LlmConfig {
            model: "gpt-4o".into(),
            ..LlmConfig::default()
        };
        assert_eq!(cfg.bare_model(), "gpt-4o");
        assert_eq!(cfg.provider(), None);
    }
}
