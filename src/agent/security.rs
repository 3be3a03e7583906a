//! Security analysis and the confirmation decision (agent.md §6).
//!
//! - `LLMSecurityAnalyzer`: the risk is the `security_risk` argument the
//!   model gave (kept on the `ActionEvent` only when an analyzer is set).
//! - `PatternSecurityAnalyzer`: regular expressions over what the action
//!   executes (HIGH/MEDIUM) and over all its text (prompt injection).
//!   The Python analyzer also parses shell syntax; this one matches the
//!   same default signatures on the raw text.
//! - `EnsembleSecurityAnalyzer`: the highest risk of its analyzers.
//! - The remote and policy analyzers (`GraySwanAnalyzer`,
//!   `PolicyRailSecurityAnalyzer`, `ToolShieldLLMSecurityAnalyzer`) are not
//!   available here: they fall back to the model's own assessment.

use regex::{Regex, RegexBuilder};
use serde_json::{json, Map, Value};

use crate::api::conversation::{ConfirmationPolicy, SecurityAnalyzer};
use crate::api::event::{ActionEvent, SecurityRisk};
use crate::api::message::Content;

/// One action's analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The risk.
    pub risk: SecurityRisk,
    /// Analyzer-specific detail, if any.
    pub details: Option<Value>,
}

fn rank(r: SecurityRisk) -> u8 {
    match r {
        SecurityRisk::Unknown => 0,
        SecurityRisk::Low => 1,
        SecurityRisk::Medium => 2,
        SecurityRisk::High => 3,
    }
}

/// Analyses each action with the configured analyzer.
pub fn analyze(analyzer: &SecurityAnalyzer, actions: &[&ActionEvent]) -> Vec<Analysis> {
    actions
        .iter()
        .map(|a| analyze_one(&analyzer.0, a))
        .collect()
}

fn analyze_one(config: &Map<String, Value>, action: &ActionEvent) -> Analysis {
    match config.get("kind").and_then(Value::as_str).unwrap_or("") {
        "PatternSecurityAnalyzer" => pattern_analysis(config, action),
        "EnsembleSecurityAnalyzer" => {
            let subs = config
                .get("analyzers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let results: Vec<Analysis> = subs
                .iter()
                .filter_map(Value::as_object)
                .map(|c| analyze_one(c, action))
                .collect();
            let known: Vec<&Analysis> = results
                .iter()
                .filter(|a| a.risk != SecurityRisk::Unknown)
                .collect();
            let propagate = config
                .get("propagate_unknown")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if known.is_empty() || (propagate && known.len() != results.len()) {
                return Analysis {
                    risk: SecurityRisk::Unknown,
                    details: None,
                };
            }
            let worst = known.iter().map(|a| a.risk).max_by_key(|r| rank(*r));
            Analysis {
                risk: worst.unwrap_or(SecurityRisk::Unknown),
                details: None,
            }
        }
        _ => Analysis {
            risk: action.security_risk,
            details: None,
        },
    }
}

const HIGH_PATTERNS: [&str; 10] = [
    r"\brm\s+(?:-[frR]{2,}|-[rR]\s+-f|-f\s+-[rR]|--recursive\s+--force|--force\s+--recursive)\b",
    r"\bsudo\s+rm\b",
    r"\bmkfs\.\w+",
    r"\bdd\b.{0,100}of=/dev/",
    r"\beval\s*\(",
    r"\bexec\s*\(",
    r"\bos\.system\s*\(",
    r"\bsubprocess\.(?:call|run|Popen|check_output|check_call)\s*\(",
    r"\bcurl\b[^|]{0,200}\|\s*(?:ba)?sh\b",
    r"\bwget\b[^|]{0,200}\|\s*(?:ba)?sh\b",
];
const MEDIUM_PATTERNS: [&str; 2] = [r"\bcurl\b.{0,100}https?://", r"\bwget\b.{0,100}https?://"];
const INJECTION_HIGH: [&str; 1] = [
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+)?(?:previous|prior|above)\s+(?:instructions?|prompts?|rules?|directives?)\b",
];
const INJECTION_MEDIUM: [&str; 2] = [
    r"\byou\s+are\s+now\s+(?:in\s+)?(?:\w+\s+)?mode\b",
    r"\bpretend\s+(?:you\s+are|to\s+be)\s+(?:a\s+)?different\b",
];

/// The patterns of one list: the analyzer's own (`[[regex, description, id], …]`
/// or plain strings) or the defaults.
fn patterns(config: &Map<String, Value>, key: &str, defaults: &[&str]) -> Vec<Regex> {
    let own: Option<Vec<String>> = config.get(key).and_then(Value::as_array).map(|list| {
        list.iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                Value::Array(t) => t.first().and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
            .collect()
    });
    let sources = own.unwrap_or_else(|| defaults.iter().map(|s| s.to_string()).collect());
    sources
        .iter()
        .filter_map(|p| {
            RegexBuilder::new(p)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| tracing::warn!(pattern = %p, error = %e, "unusable security pattern"))
                .ok()
        })
        .collect()
}

fn pattern_analysis(config: &Map<String, Value>, action: &ActionEvent) -> Analysis {
    let exec = format!("{} {}", action.tool_name, action.tool_call.arguments);
    let thought: String = action
        .thought
        .iter()
        .filter_map(Content::as_text)
        .collect::<Vec<_>>()
        .join(" ");
    let all = format!(
        "{exec} {thought} {} {}",
        action.reasoning_content.as_deref().unwrap_or(""),
        action.summary.as_deref().unwrap_or("")
    );
    let hits = |list: &[Regex], text: &str| -> Vec<String> {
        list.iter()
            .filter(|r| r.is_match(text))
            .map(|r| r.as_str().to_string())
            .collect()
    };
    let high: Vec<String> = hits(&patterns(config, "high_patterns", &HIGH_PATTERNS), &exec)
        .into_iter()
        .chain(hits(
            &patterns(config, "injection_high_patterns", &INJECTION_HIGH),
            &all,
        ))
        .collect();
    if !high.is_empty() {
        return Analysis {
            risk: SecurityRisk::High,
            details: Some(json!({"matched": high})),
        };
    }
    let medium: Vec<String> = hits(
        &patterns(config, "medium_patterns", &MEDIUM_PATTERNS),
        &exec,
    )
    .into_iter()
    .chain(hits(
        &patterns(config, "injection_medium_patterns", &INJECTION_MEDIUM),
        &all,
    ))
    .collect();
    if !medium.is_empty() {
        return Analysis {
            risk: SecurityRisk::Medium,
            details: Some(json!({"matched": medium})),
        };
    }
    Analysis {
        risk: SecurityRisk::Low,
        details: None,
    }
}

/// Whether a batch needs the user's confirmation: a lone `finish` or
/// `think` never does; otherwise any action whose risk the policy flags.
pub fn needs_confirmation(policy: &ConfirmationPolicy, risks: &[SecurityRisk]) -> bool {
    risks.iter().any(|r| policy.should_confirm(*r))
}

/// Whether the batch is a lone `finish` or `think` (never analysed nor confirmed).
pub fn is_lone_builtin(actions: &[&ActionEvent]) -> bool {
    actions.len() == 1 && matches!(actions[0].tool_name.as_str(), "finish" | "think")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::message::MessageToolCall;

    fn action(tool: &str, args: &str, risk: SecurityRisk) -> ActionEvent {
        ActionEvent {
            thought: vec![],
            reasoning_content: None,
            thinking_blocks: vec![],
            responses_reasoning_item: None,
            action: Some(json!({})),
            tool_name: tool.into(),
            tool_call_id: "c".into(),
            tool_call: MessageToolCall {
                id: "c".into(),
                responses_item_id: None,
                name: tool.into(),
                arguments: args.into(),
                origin: Default::default(),
            },
            llm_response_id: "r".into(),
            security_risk: risk,
            critic_result: None,
            summary: None,
        }
    }

    fn analyzer(v: Value) -> SecurityAnalyzer {
        SecurityAnalyzer(v.as_object().unwrap().clone())
    }

    #[test]
    fn llm_analyzer_uses_the_models_risk() {
        let a = action("terminal", r#"{"command": "ls"}"#, SecurityRisk::Medium);
        let r = analyze(&analyzer(json!({"kind": "LLMSecurityAnalyzer"})), &[&a]);
        assert_eq!(r[0].risk, SecurityRisk::Medium);
    }

    #[test]
    fn patterns_and_ensemble() {
        let rm = action("terminal", r#"{"command": "rm -rf /"}"#, SecurityRisk::Low);
        let curl = action(
            "terminal",
            r#"{"command": "curl https://x.org"}"#,
            SecurityRisk::Low,
        );
        let ls = action("terminal", r#"{"command": "ls"}"#, SecurityRisk::Unknown);
        let p = analyzer(json!({"kind": "PatternSecurityAnalyzer"}));
        let r = analyze(&p, &[&rm, &curl, &ls]);
        assert_eq!(
            r.iter().map(|a| a.risk).collect::<Vec<_>>(),
            [SecurityRisk::High, SecurityRisk::Medium, SecurityRisk::Low]
        );
        let e = analyzer(json!({"kind": "EnsembleSecurityAnalyzer", "analyzers": [
            {"kind": "LLMSecurityAnalyzer"}, {"kind": "PatternSecurityAnalyzer"}]}));
        let high_ls = action("terminal", r#"{"command": "ls"}"#, SecurityRisk::High);
        assert_eq!(analyze(&e, &[&high_ls])[0].risk, SecurityRisk::High);
    }

    #[test]
    fn policy_decision() {
        let risky = ConfirmationPolicy::ConfirmRisky {
            threshold: SecurityRisk::Medium,
            confirm_unknown: false,
        };
        assert!(needs_confirmation(
            &risky,
            &[SecurityRisk::Low, SecurityRisk::High]
        ));
        assert!(!needs_confirmation(
            &risky,
            &[SecurityRisk::Low, SecurityRisk::Unknown]
        ));
        assert!(!needs_confirmation(
            &ConfirmationPolicy::NeverConfirm,
            &[SecurityRisk::High]
        ));
        let finish = action("finish", "{}", SecurityRisk::Unknown);
        assert!(is_lone_builtin(&[&finish]));
    }
}
