//! What a model accepts, from a small table of known families.
//!
//! The Python SDK asks LiteLLM's model map (thousands of entries) and its own
//! substring lists. We keep the SDK's lists verbatim where they exist and a
//! compact family table for the numbers LiteLLM would supply (context window,
//! output limit). Everything can be overridden per LLM with
//! `capability_overrides` (`supports_reasoning_effort`,
//! `supports_sampling_params`, `thinking_mode`, `supports_prompt_cache`,
//! `supports_prompt_cache_key`, `supports_prompt_cache_retention`,
//! `supports_responses_api`, `supports_vision`), and the limits with
//! `max_input_tokens` / `max_output_tokens`.

use super::route::{capability_override, Route};
use crate::api::llm_config::LlmConfig;

/// How a Claude model is asked to think.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThinkingMode {
    /// `thinking:{type:"enabled",budget_tokens}` from `extended_thinking_budget`.
    Manual,
    /// `thinking:{type:"adaptive"}` when `reasoning_effort` is set.
    Adaptive,
    /// `reasoning_effort` mapped to a thinking budget (LiteLLM's table).
    Effort,
    /// No thinking parameter.
    None,
}

/// The resolved capabilities of one configuration.
#[derive(Clone, Debug)]
pub struct Features {
    /// Send `reasoning_effort` (Chat) / `reasoning` (Responses).
    pub reasoning_effort: bool,
    /// Send `temperature`, `top_p`, `top_k`.
    pub sampling_params: bool,
    /// Anthropic thinking.
    pub thinking: ThinkingMode,
    /// Add `cache_control` markers (Anthropic-style explicit caching).
    pub prompt_cache: bool,
    /// Send `prompt_cache_key`.
    pub prompt_cache_key: bool,
    /// Send `prompt_cache_retention`.
    pub prompt_cache_retention: bool,
    /// Tool results and messages as plain strings instead of part lists.
    pub force_string_serializer: bool,
    /// Echo `reasoning_content` back on assistant messages.
    pub send_reasoning_content: bool,
    /// Keep image parts.
    pub vision: bool,
    /// The context window (0 when unknown), reported as `context_window`.
    pub max_input_tokens: u64,
    /// The output limit sent as `max_completion_tokens` / `max_output_tokens` / `max_tokens`.
    pub max_output_tokens: Option<u64>,
}

/// One family: a lowercase substring of the model name and its limits.
struct Family {
    pattern: &'static str,
    max_input: u64,
    max_output: u64,
}

/// Ordered most specific first; the first substring match wins. Numbers are
/// LiteLLM's model map for these families.
const FAMILIES: &[Family] = &[
    Family {
        pattern: "gpt-4o",
        max_input: 128_000,
        max_output: 16_384,
    },
    Family {
        pattern: "gpt-4.1",
        max_input: 1_047_576,
        max_output: 32_768,
    },
    Family {
        pattern: "gpt-4-turbo",
        max_input: 128_000,
        max_output: 4_096,
    },
    Family {
        pattern: "gpt-5",
        max_input: 272_000,
        max_output: 128_000,
    },
    Family {
        pattern: "codex-mini",
        max_input: 200_000,
        max_output: 100_000,
    },
    Family {
        pattern: "o4-mini",
        max_input: 200_000,
        max_output: 100_000,
    },
    Family {
        pattern: "o3",
        max_input: 200_000,
        max_output: 100_000,
    },
    Family {
        pattern: "o1",
        max_input: 200_000,
        max_output: 100_000,
    },
    Family {
        pattern: "claude-opus-4-6",
        max_input: 1_000_000,
        max_output: 128_000,
    },
    Family {
        pattern: "claude-sonnet-4-6",
        max_input: 1_000_000,
        max_output: 64_000,
    },
    Family {
        pattern: "claude-opus-4-5",
        max_input: 200_000,
        max_output: 64_000,
    },
    Family {
        pattern: "claude-haiku-4-5",
        max_input: 200_000,
        max_output: 64_000,
    },
    Family {
        pattern: "claude-sonnet-4",
        max_input: 200_000,
        max_output: 64_000,
    },
    Family {
        pattern: "claude-3-7-sonnet",
        max_input: 200_000,
        max_output: 64_000,
    },
    Family {
        pattern: "claude-opus-4",
        max_input: 200_000,
        max_output: 32_000,
    },
    Family {
        pattern: "claude-3-5",
        max_input: 200_000,
        max_output: 8_192,
    },
    Family {
        pattern: "claude-3",
        max_input: 200_000,
        max_output: 4_096,
    },
    Family {
        pattern: "deepseek-reasoner",
        max_input: 131_072,
        max_output: 65_536,
    },
    Family {
        pattern: "deepseek-chat",
        max_input: 131_072,
        max_output: 8_192,
    },
    Family {
        pattern: "gemini-2.5",
        max_input: 1_048_576,
        max_output: 65_536,
    },
    Family {
        pattern: "gemini-3",
        max_input: 1_048_576,
        max_output: 65_536,
    },
];

/// The SDK's `EXTENDED_THINKING_MODELS`.
const EXTENDED_THINKING: &[&str] = &["claude-sonnet-4-5", "claude-haiku-4-5"];

/// Claude models LiteLLM marks `supports_adaptive_thinking`.
const ADAPTIVE_THINKING: &[&str] = &[
    "claude-sonnet-4-6",
    "claude-opus-4-6",
    "claude-opus-4-7",
    "claude-opus-4-8",
    "claude-sonnet-5",
    "claude-opus-5",
    "claude-haiku-5",
    "claude-fable-5",
];

/// Claude models that reason (LiteLLM `supports_reasoning`) without the two modes above.
const EFFORT_THINKING: &[&str] = &["claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4"];

/// The SDK's `PROMPT_CACHE_MODELS`.
const PROMPT_CACHE: &[&str] = &[
    "claude-3-7-sonnet",
    "claude-sonnet-3-7-latest",
    "claude-3-5-sonnet",
    "claude-3-5-haiku",
    "claude-3-haiku-20240307",
    "claude-3-opus-20240229",
    "claude-sonnet-4",
    "claude-opus-4",
    "claude-haiku-4-5",
    "claude-haiku-5-5",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-fable-5",
];

/// Models taking `reasoning_effort` (LiteLLM's supported-params answer for them).
const REASONING_EFFORT: &[&str] = &[
    "gpt-5",
    "gpt-6",
    "codex-mini",
    "o1",
    "o3",
    "o4-mini",
    "gpt-oss",
    "gemini-2.5",
    "gemini-3",
    "grok-3-mini",
    "kimi-k3",
];

/// The SDK's `PROMPT_CACHE_RETENTION_MODELS` (ordered; `!` excludes; last match wins).
const PROMPT_CACHE_RETENTION_RULES: &[&str] =
    &["gpt-5", "gpt-4.1", "!mini", "gpt-5.1-codex-mini", "!azure/"];

/// The SDK's `FORCE_STRING_SERIALIZER_MODELS`.
const FORCE_STRING: &[&str] = &[
    "deepseek-v3.2",
    "glm",
    "groq/kimi-k2-instruct",
    "openrouter/minimax",
];

/// The SDK's `SEND_REASONING_CONTENT_MODELS`.
const SEND_REASONING: &[&str] = &[
    "kimi-k3",
    "kimi-k2-thinking",
    "kimi-k2.5",
    "kimi-k2.6",
    "openrouter/minimax-m2",
    "deepseek/deepseek-reasoner",
    "deepseek/deepseek-v4-pro",
    "deepseek/deepseek-v4-flash",
    "deepseek/deepseek-v4.1-flash",
];

/// Families without image input (LiteLLM marks them `supports_vision: false`
/// or not at all). Every other model is assumed to take images.
const NO_VISION: &[&str] = &[
    "deepseek",
    "o1-mini",
    "o3-mini",
    "gpt-3.5",
    "glm-4.5",
    "gpt-oss",
    "qwen3-coder",
    "minimax-m2",
    "devstral",
    "codestral",
];

/// Output cap the SDK applies when `base_url` points somewhere the model map may not describe.
const BASE_URL_OUTPUT_CAP: u64 = 16_384;

fn matches(model: &str, patterns: &[&str]) -> bool {
    patterns.iter().any(|p| model.contains(p))
}

/// The o-series match on the model's own name only, so `foo1` is not `o1`.
fn o_series(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model);
    ["o1", "o3", "o4"].iter().any(|p| name.starts_with(p))
}

fn ordered_rules(model: &str, rules: &[&str]) -> bool {
    let mut decided = false;
    for rule in rules {
        let (exclude, core) = match rule.strip_prefix('!') {
            Some(core) => (true, core),
            None => (false, *rule),
        };
        if model.contains(core) {
            decided = !exclude;
        }
    }
    decided
}

fn family(model: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| {
        if f.pattern.starts_with('o') && f.pattern.len() <= 7 {
            o_series(model) && model.contains(f.pattern)
        } else {
            model.contains(f.pattern)
        }
    })
}

/// The model name the tables are matched against.
fn table_name(config: &LlmConfig) -> String {
    config
        .model_canonical_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(&config.model)
        .to_lowercase()
}

/// Whether the model is sent images (the SDK's `vision_is_active`): not
/// `disable_vision`, and the `supports_vision` override or the family
/// table. The one decision behind image parts in requests, the agent's
/// image check and the file editor's description.
pub fn vision(config: &LlmConfig) -> bool {
    config.disable_vision != Some(true)
        && capability_override(config, "supports_vision")
            .unwrap_or_else(|| !matches(&table_name(config), NO_VISION))
}

/// Resolves the features of `config` on `route`.
pub fn resolve(config: &LlmConfig, route: &Route) -> Features {
    let name = table_name(config);
    let o = |key: &str| capability_override(config, key);
    let is_claude = name.contains("claude");

    let reasoning_effort = o("supports_reasoning_effort").unwrap_or_else(|| {
        let listed = REASONING_EFFORT
            .iter()
            .filter(|p| !matches!(**p, "o1" | "o3" | "o4-mini"))
            .any(|p| name.contains(p));
        listed || o_series(&name) || (is_claude && reasons(&name))
    });
    let thinking = match config
        .capability_overrides
        .get("thinking_mode")
        .and_then(|v| v.as_str())
    {
        Some("manual") => ThinkingMode::Manual,
        Some("adaptive") => ThinkingMode::Adaptive,
        Some("none") => ThinkingMode::None,
        _ if matches(&name, ADAPTIVE_THINKING) => ThinkingMode::Adaptive,
        _ if matches(&name, EXTENDED_THINKING) => ThinkingMode::Manual,
        _ if matches(&name, EFFORT_THINKING) => ThinkingMode::Effort,
        _ => ThinkingMode::None,
    };
    let sampling_params = match o("supports_sampling_params") {
        Some(v) => v,
        None => !reasoning_effort || name.contains("gemini"),
    };
    let prompt_cache = config.caching_prompt
        && o("supports_prompt_cache").unwrap_or_else(|| {
            matches(&name, PROMPT_CACHE) || (route.provider == "anthropic" && is_claude)
        });
    let prompt_cache_key = o("supports_prompt_cache_key").unwrap_or_else(|| match route.provider {
        "openai" | "azure" => true,
        "litellm_proxy" | "openhands" | "custom" => !is_claude && !name.contains("gemini"),
        _ => false,
    });
    let prompt_cache_retention = o("supports_prompt_cache_retention")
        .unwrap_or_else(|| ordered_rules(&name, PROMPT_CACHE_RETENTION_RULES));
    let force_string_serializer = config
        .force_string_serializer
        .unwrap_or_else(|| matches(&name, FORCE_STRING));
    let vision = vision(config);

    let fam = family(&name);
    let max_input_tokens = config
        .max_input_tokens
        .or(fam.map(|f| f.max_input))
        .unwrap_or(0);
    let max_output_tokens = config.max_output_tokens.or_else(|| {
        let hard_coded = ["claude-3-7-sonnet", "claude-sonnet-4", "kimi-k2-thinking"]
            .iter()
            .any(|p| config.model.contains(p));
        let mut out = if hard_coded {
            Some(64_000)
        } else {
            fam.map(|f| {
                let mut v = f.max_output;
                if config.base_url.is_some()
                    && route.provider != "litellm_proxy"
                    && v > BASE_URL_OUTPUT_CAP
                {
                    v = BASE_URL_OUTPUT_CAP;
                }
                v
            })
        };
        if config.model.contains("o3") {
            out = Some(out.map_or(100_000, |v| v.min(100_000)));
        }
        out
    });

    Features {
        reasoning_effort,
        sampling_params,
        thinking,
        prompt_cache,
        prompt_cache_key,
        prompt_cache_retention,
        force_string_serializer,
        send_reasoning_content: matches(&name, SEND_REASONING),
        vision,
        max_input_tokens,
        max_output_tokens,
    }
}

/// Whether a Claude model reasons at all.
fn reasons(name: &str) -> bool {
    matches(name, ADAPTIVE_THINKING)
        || matches(name, EXTENDED_THINKING)
        || matches(name, EFFORT_THINKING)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::route;

    fn features(model: &str, base: Option<&str>) -> Features {
        let cfg = LlmConfig {
            model: model.into(),
            base_url: base.map(str::to_string),
            ..LlmConfig::default()
        };
        let r = route::resolve(&cfg).unwrap();
        resolve(&cfg, &r)
    }

    #[test]
    fn gpt_4o_matches_the_observed_python_request() {
        let f = features("openai/gpt-4o", Some("http://127.0.0.1:4199/v1"));
        assert!(!f.reasoning_effort);
        assert!(f.sampling_params);
        assert!(f.prompt_cache_key);
        assert!(!f.prompt_cache);
        assert!(!f.prompt_cache_retention);
        assert_eq!(f.max_output_tokens, Some(16_384));
        assert_eq!(f.max_input_tokens, 128_000);
    }

    #[test]
    fn claude_sonnet_4_5_matches_the_observed_python_request() {
        let f = features(
            "anthropic/claude-sonnet-4-5-20250929",
            Some("http://127.0.0.1:4199"),
        );
        assert_eq!(f.thinking, ThinkingMode::Manual);
        assert!(f.prompt_cache);
        assert!(!f.prompt_cache_key);
        assert_eq!(f.max_output_tokens, Some(64_000));
        assert_eq!(f.max_input_tokens, 200_000);
    }

    #[test]
    fn reasoning_models() {
        let f = features("openai/gpt-5-mini", None);
        assert!(f.reasoning_effort);
        assert!(!f.sampling_params);
        assert!(!f.prompt_cache_retention, "mini variants are excluded");
        assert_eq!(f.max_output_tokens, Some(128_000));
        let f = features("openai/gpt-5.1", None);
        assert!(f.prompt_cache_retention);
        let f = features("openai/gpt-5", Some("http://proxy/v1"));
        assert_eq!(f.max_output_tokens, Some(16_384));
        let f = features("openai/o3", None);
        assert!(f.reasoning_effort);
        assert_eq!(f.max_output_tokens, Some(100_000));
        let f = features("gemini/gemini-2.5-pro", None);
        assert!(f.reasoning_effort);
        assert!(f.sampling_params, "gemini keeps sampling params");
        let f = features("openai/foo1", Some("http://x/v1"));
        assert!(!f.reasoning_effort);
        assert_eq!(f.max_output_tokens, None);
        assert_eq!(f.max_input_tokens, 0);
    }

    #[test]
    fn vision_follows_the_table_and_the_overrides() {
        let cfg = |model: &str| LlmConfig {
            model: model.into(),
            ..LlmConfig::default()
        };
        assert!(vision(&cfg("openai/gpt-4o")));
        assert!(!vision(&cfg("deepseek/deepseek-chat")));
        assert!(!vision(&cfg("openrouter/openai/gpt-oss-120b")));
        let mut c = cfg("deepseek/deepseek-chat");
        c.capability_overrides
            .insert("supports_vision".into(), true.into());
        assert!(vision(&c));
        c.disable_vision = Some(true);
        assert!(!vision(&c));
    }

    #[test]
    fn overrides_win() {
        let mut cfg = LlmConfig {
            model: "openai/gpt-4o".into(),
            max_output_tokens: Some(1000),
            max_input_tokens: Some(5000),
            disable_vision: Some(true),
            ..LlmConfig::default()
        };
        cfg.capability_overrides
            .insert("supports_reasoning_effort".into(), true.into());
        cfg.capability_overrides
            .insert("supports_prompt_cache_key".into(), false.into());
        let r = route::resolve(&cfg).unwrap();
        let f = resolve(&cfg, &r);
        assert!(f.reasoning_effort);
        assert!(!f.prompt_cache_key);
        assert!(!f.vision);
        assert_eq!(f.max_output_tokens, Some(1000));
        assert_eq!(f.max_input_tokens, 5000);
    }
}
