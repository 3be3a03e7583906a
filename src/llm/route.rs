//! Provider routing: from `provider/model` and `base_url` to an endpoint.
//!
//! LiteLLM's convention: the prefix names the provider and is stripped from
//! the model name on the wire. Three wire APIs exist here: OpenAI Chat
//! Completions (most providers speak it), the OpenAI Responses API and the
//! Anthropic Messages API.

use http::{HeaderName, HeaderValue};

use super::error::LlmError;
use crate::api::llm_config::LlmConfig;

/// The wire protocol of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `POST …/chat/completions`.
    Chat,
    /// `POST …/responses`.
    Responses,
    /// `POST …/v1/messages`.
    Anthropic,
}

/// Where and how one configuration's calls go.
#[derive(Clone, Debug)]
pub struct Route {
    /// The wire protocol.
    pub api: Api,
    /// The provider key (`openai`, `anthropic`, `openrouter`, …); `custom`
    /// for an unknown prefix served at `base_url`.
    pub provider: &'static str,
    /// A display name for error texts (`OpenAI`, `Anthropic`, …).
    pub label: &'static str,
    /// The full endpoint URL.
    pub url: String,
    /// The model name on the wire.
    pub model: String,
    /// Authentication, provider and `extra_headers` headers, in send order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// One OpenAI-compatible provider: prefix, label, default base URL.
struct Compatible {
    prefix: &'static str,
    label: &'static str,
    default_base: Option<&'static str>,
}

/// Providers served over Chat Completions, with their real default endpoints.
const COMPATIBLE: &[Compatible] = &[
    Compatible {
        prefix: "openai",
        label: "OpenAI",
        default_base: Some("https://api.openai.com/v1"),
    },
    Compatible {
        prefix: "litellm_proxy",
        label: "LiteLLM proxy",
        default_base: None,
    },
    Compatible {
        prefix: "openhands",
        label: "OpenHands LLM proxy",
        default_base: Some("https://llm-proxy.app.all-hands.dev"),
    },
    Compatible {
        prefix: "openrouter",
        label: "OpenRouter",
        default_base: Some("https://openrouter.ai/api/v1"),
    },
    Compatible {
        prefix: "deepseek",
        label: "DeepSeek",
        default_base: Some("https://api.deepseek.com"),
    },
    Compatible {
        prefix: "gemini",
        label: "Gemini",
        default_base: Some("https://generativelanguage.googleapis.com/v1beta/openai"),
    },
    Compatible {
        prefix: "groq",
        label: "Groq",
        default_base: Some("https://api.groq.com/openai/v1"),
    },
    Compatible {
        prefix: "mistral",
        label: "Mistral",
        default_base: Some("https://api.mistral.ai/v1"),
    },
    Compatible {
        prefix: "xai",
        label: "xAI",
        default_base: Some("https://api.x.ai/v1"),
    },
    Compatible {
        prefix: "together_ai",
        label: "Together AI",
        default_base: Some("https://api.together.xyz/v1"),
    },
    Compatible {
        prefix: "fireworks_ai",
        label: "Fireworks AI",
        default_base: Some("https://api.fireworks.ai/inference/v1"),
    },
    Compatible {
        prefix: "moonshot",
        label: "Moonshot",
        default_base: Some("https://api.moonshot.ai/v1"),
    },
    Compatible {
        prefix: "cerebras",
        label: "Cerebras",
        default_base: Some("https://api.cerebras.ai/v1"),
    },
    Compatible {
        prefix: "digitalocean",
        label: "DigitalOcean",
        default_base: Some("https://inference.do-ai.run/v1"),
    },
    Compatible {
        prefix: "lm_studio",
        label: "LM Studio",
        default_base: Some("http://localhost:1234/v1"),
    },
    Compatible {
        prefix: "hosted_vllm",
        label: "vLLM",
        default_base: None,
    },
];

/// Providers that need request signing or SDK credentials this client does
/// not implement; named in the error so the user knows what to change.
const UNSUPPORTED: &[&str] = &[
    "bedrock",
    "bedrock_converse",
    "sagemaker",
    "sagemaker_chat",
    "vertex_ai",
    "vertex_ai_beta",
    "watsonx",
    "cloudflare",
    "github_copilot",
];

/// Whether `api_mode:auto` sends this model to the Responses API.
fn responses_family(model: &str) -> bool {
    let m = model.to_lowercase();
    ["gpt-5", "gpt-6", "codex-mini-latest"]
        .iter()
        .any(|p| m.contains(p))
}

/// The provider a bare model name (no `provider/`) belongs to, as LiteLLM's model map would say.
fn bare_provider(model: &str) -> Option<&'static str> {
    let m = model.to_lowercase();
    let openai_prefixes = [
        "gpt-", "chatgpt-", "codex-", "o1", "o3", "o4", "text-", "davinci",
    ];
    if m.starts_with("claude") {
        Some("anthropic")
    } else if openai_prefixes.iter().any(|p| m.starts_with(p)) {
        Some("openai")
    } else if m.starts_with("gemini") {
        Some("gemini")
    } else if m.starts_with("deepseek") {
        Some("deepseek")
    } else {
        None
    }
}

fn join(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(path) {
        base.to_string()
    } else {
        format!("{base}{path}")
    }
}

fn anthropic_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/messages") {
        base.to_string()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), LlmError> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| LlmError::bad_request(format!("invalid header name '{name}'")))?;
    let v = HeaderValue::from_str(value)
        .map_err(|_| LlmError::bad_request(format!("invalid value for header '{name}'")))?;
    Ok((n, v))
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Resolves the route of a configuration, or says why it cannot be served.
pub fn resolve(config: &LlmConfig) -> Result<Route, LlmError> {
    let model = config.model.trim();
    if model.is_empty() {
        return Err(LlmError::bad_request("LLM model is empty"));
    }
    let base_url = non_empty(&config.base_url);
    let api_key = non_empty(&config.api_key);
    let (prefix, rest) = match model.split_once('/') {
        Some((p, r)) => (Some(p), r),
        None => (None, model),
    };
    let prefix_lower = prefix.map(str::to_lowercase);
    let provider_key: Option<&str> = match prefix_lower.as_deref() {
        Some(p) => Some(p),
        None => bare_provider(model),
    };
    let wire_model = |known: bool| -> String {
        if known {
            rest.to_string()
        } else {
            model.to_string()
        }
    };

    let mut headers = Vec::new();
    let mut route = match provider_key {
        Some("anthropic") => {
            let base = base_url.unwrap_or("https://api.anthropic.com");
            if let Some(key) = api_key {
                headers.push(header("x-api-key", key)?);
            }
            headers.push(header("anthropic-version", "2023-06-01")?);
            Route {
                api: Api::Anthropic,
                provider: "anthropic",
                label: "Anthropic",
                url: anthropic_url(base),
                model: wire_model(prefix.is_some()),
                headers: Vec::new(),
            }
        }
        Some("azure") => {
            let Some(base) = base_url else {
                return Err(LlmError::bad_request(
                    "provider 'azure' needs base_url (the resource endpoint, e.g. https://NAME.openai.azure.com); set base_url or use another provider",
                ));
            };
            if let Some(key) = api_key {
                headers.push(header("api-key", key)?);
            }
            let path =
                if base.contains("/openai/") || base.trim_end_matches('/').ends_with("/openai") {
                    join(base, "/chat/completions")
                } else {
                    format!(
                        "{}/openai/deployments/{rest}/chat/completions",
                        base.trim_end_matches('/')
                    )
                };
            let url = match non_empty(&config.api_version) {
                Some(v) => format!("{path}?api-version={v}"),
                None => path,
            };
            Route {
                api: Api::Chat,
                provider: "azure",
                label: "Azure OpenAI",
                url,
                model: rest.to_string(),
                headers: Vec::new(),
            }
        }
        Some(p) if p == "ollama" || p == "ollama_chat" => {
            let base = non_empty(&config.ollama_base_url)
                .or(base_url)
                .unwrap_or("http://localhost:11434");
            let base = join(base, "/v1");
            if let Some(key) = api_key {
                headers.push(header("authorization", &format!("Bearer {key}"))?);
            }
            Route {
                api: Api::Chat,
                provider: "ollama",
                label: "Ollama",
                url: join(&base, "/chat/completions"),
                model: rest.to_string(),
                headers: Vec::new(),
            }
        }
        Some(p) if UNSUPPORTED.contains(&p) => {
            return Err(LlmError::bad_request(format!(
                "LLM provider '{p}' is not supported by this server (it needs provider-specific request signing); use an OpenAI-compatible gateway such as a LiteLLM proxy (litellm_proxy/<model> with base_url) instead"
            )));
        }
        key => {
            let known = key.and_then(|k| COMPATIBLE.iter().find(|c| c.prefix == k));
            let (provider, label, default_base) = match known {
                Some(c) => (c.prefix, c.label, c.default_base),
                None => ("custom", "OpenAI-compatible", None),
            };
            let Some(base) = base_url.or(default_base) else {
                return Err(LlmError::bad_request(match (known, prefix) {
                    (Some(c), _) => format!("provider '{}' needs base_url", c.prefix),
                    (None, Some(p)) => format!(
                        "LLM provider '{p}' is not supported without base_url; set base_url to an OpenAI-compatible endpoint or use a supported provider prefix"
                    ),
                    (None, None) => format!(
                        "cannot tell which provider serves model '{model}'; write it as provider/model (e.g. openai/{model}) or set base_url"
                    ),
                }));
            };
            if let Some(key) = api_key {
                headers.push(header("authorization", &format!("Bearer {key}"))?);
            }
            if provider == "openrouter" {
                if !config.openrouter_site_url.is_empty() {
                    headers.push(header("http-referer", &config.openrouter_site_url)?);
                }
                if !config.openrouter_app_name.is_empty() {
                    headers.push(header("x-title", &config.openrouter_app_name)?);
                }
            }
            // The Responses API is OpenAI's; other vendors behind these
            // prefixes only speak Chat Completions.
            let responses_capable = matches!(
                provider,
                "openai" | "litellm_proxy" | "openhands" | "custom"
            );
            let use_responses = match config.api_mode.as_str() {
                "responses" => true,
                "chat" => false,
                _ => {
                    responses_capable
                        && capability_override(config, "supports_responses_api")
                            .unwrap_or_else(|| responses_family(model))
                }
            };
            let (api, path) = if use_responses {
                (Api::Responses, "/responses")
            } else {
                (Api::Chat, "/chat/completions")
            };
            Route {
                api,
                provider,
                label,
                url: join(base, path),
                model: wire_model(known.is_some() || prefix.is_none()),
                headers: Vec::new(),
            }
        }
    };
    if let Some(extra) = &config.extra_headers {
        for (name, value) in extra {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            let (n, v) = header(name, &text)?;
            // A user-supplied header replaces ours of the same name.
            headers.retain(|(existing, _)| *existing != n);
            headers.push((n, v));
        }
    }
    route.headers = headers;
    Ok(route)
}

/// A boolean from `capability_overrides`, if the user set one.
pub fn capability_override(config: &LlmConfig, key: &str) -> Option<bool> {
    config
        .capability_overrides
        .get(key)
        .and_then(|v| v.as_bool())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(model: &str, base: Option<&str>) -> LlmConfig {
        LlmConfig {
            model: model.into(),
            base_url: base.map(str::to_string),
            api_key: Some("sk-test".into()),
            ..LlmConfig::default()
        }
    }

    fn header_value(r: &Route, name: &str) -> Option<String> {
        r.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.to_str().unwrap().to_string())
    }

    #[test]
    fn openai_defaults_and_prefix_stripping() {
        let r = resolve(&cfg("openai/gpt-4o", None)).unwrap();
        assert_eq!(r.api, Api::Chat);
        assert_eq!(r.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(r.model, "gpt-4o");
        assert_eq!(header_value(&r, "authorization").unwrap(), "Bearer sk-test");

        let r = resolve(&cfg("openai/gpt-4o", Some("http://127.0.0.1:9/v1/"))).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9/v1/chat/completions");

        let r = resolve(&cfg("gpt-4o", None)).unwrap();
        assert_eq!(r.provider, "openai");
        assert_eq!(r.model, "gpt-4o");
    }

    #[test]
    fn responses_api_selection() {
        let r = resolve(&cfg("openai/gpt-5-mini", None)).unwrap();
        assert_eq!(r.api, Api::Responses);
        assert_eq!(r.url, "https://api.openai.com/v1/responses");
        let r = resolve(&cfg("gpt-5.6", None)).unwrap();
        assert_eq!(r.api, Api::Responses);
        let mut c = cfg("openai/gpt-5", None);
        c.api_mode = "chat".into();
        assert_eq!(resolve(&c).unwrap().api, Api::Chat);
        let mut c = cfg("openai/gpt-4o", None);
        c.api_mode = "responses".into();
        assert_eq!(resolve(&c).unwrap().api, Api::Responses);
        let r = resolve(&cfg("openrouter/openai/gpt-5", None)).unwrap();
        assert_eq!(r.api, Api::Chat);
        assert_eq!(r.model, "openai/gpt-5");
        assert_eq!(r.url, "https://openrouter.ai/api/v1/chat/completions");
        assert_eq!(
            header_value(&r, "http-referer").unwrap(),
            "https://docs.all-hands.dev/"
        );
        assert_eq!(header_value(&r, "x-title").unwrap(), "OpenHands");
    }

    #[test]
    fn anthropic_routes() {
        let r = resolve(&cfg("anthropic/claude-sonnet-4-5-20250929", None)).unwrap();
        assert_eq!(r.api, Api::Anthropic);
        assert_eq!(r.url, "https://api.anthropic.com/v1/messages");
        assert_eq!(r.model, "claude-sonnet-4-5-20250929");
        assert_eq!(header_value(&r, "x-api-key").unwrap(), "sk-test");
        assert_eq!(header_value(&r, "anthropic-version").unwrap(), "2023-06-01");
        assert!(header_value(&r, "authorization").is_none());
        let r = resolve(&cfg("claude-3-5-haiku", Some("http://127.0.0.1:4199"))).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:4199/v1/messages");
        let r = resolve(&cfg("anthropic/x", Some("http://h/v1"))).unwrap();
        assert_eq!(r.url, "http://h/v1/messages");
    }

    #[test]
    fn other_providers() {
        let r = resolve(&cfg("ollama/llama3", None)).unwrap();
        assert_eq!(r.url, "http://localhost:11434/v1/chat/completions");
        let mut c = cfg("ollama/llama3", None);
        c.ollama_base_url = Some("http://gpu:11434".into());
        assert_eq!(
            resolve(&c).unwrap().url,
            "http://gpu:11434/v1/chat/completions"
        );
        let r = resolve(&cfg("openhands/claude-sonnet-4-5", None)).unwrap();
        assert_eq!(
            r.url,
            "https://llm-proxy.app.all-hands.dev/chat/completions"
        );
        assert_eq!(r.model, "claude-sonnet-4-5");
        let r = resolve(&cfg("gemini/gemini-2.5-pro", None)).unwrap();
        assert_eq!(
            r.url,
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"
        );
        let r = resolve(&cfg("deepseek/deepseek-chat", None)).unwrap();
        assert_eq!(r.url, "https://api.deepseek.com/chat/completions");
        let r = resolve(&cfg("meta-llama/Llama-3-8b", Some("http://vllm:8000/v1"))).unwrap();
        assert_eq!(r.provider, "custom");
        assert_eq!(r.model, "meta-llama/Llama-3-8b");
        let mut c = cfg("azure/my-deploy", Some("https://res.openai.azure.com"));
        c.api_version = Some("2024-10-21".into());
        let r = resolve(&c).unwrap();
        assert_eq!(
            r.url,
            "https://res.openai.azure.com/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(header_value(&r, "api-key").unwrap(), "sk-test");
    }

    #[test]
    fn unsupported_providers_are_named() {
        for model in [
            "bedrock/anthropic.claude-3",
            "vertex_ai/gemini-pro",
            "azure/gpt-4o",
            "cohere/command-r",
            "mystery-model",
        ] {
            let e = resolve(&cfg(model, None)).unwrap_err();
            assert_eq!(e.code(), "LLMBadRequestError", "{model}");
            let first = model.split('/').next().unwrap();
            assert!(e.detail().contains(first), "{model}: {}", e.detail());
        }
        let e = resolve(&cfg("litellm_proxy/x", None)).unwrap_err();
        assert!(e.detail().contains("base_url"));
    }

    #[test]
    fn extra_headers_override_and_validate() {
        let mut c = cfg("openai/gpt-4o", None);
        let mut extra = serde_json::Map::new();
        extra.insert("Authorization".into(), "Bearer other".into());
        extra.insert("X-Trace".into(), serde_json::json!(7));
        c.extra_headers = Some(extra);
        let r = resolve(&c).unwrap();
        assert_eq!(header_value(&r, "authorization").unwrap(), "Bearer other");
        assert_eq!(header_value(&r, "x-trace").unwrap(), "7");
        let mut bad = serde_json::Map::new();
        bad.insert("bad header".into(), "v".into());
        c.extra_headers = Some(bad);
        assert_eq!(resolve(&c).unwrap_err().code(), "LLMBadRequestError");
    }
}
