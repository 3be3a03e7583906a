//! LLM usage and cost accounting (agent.md §11): `stats.usage_to_metrics`.
//!
//! `Metrics` is the full form (`ConversationInfo.stats`, `full_state`);
//! [`Metrics::snapshot`] is the form in `stats` state-update events, without
//! the per-call lists.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Token counts of one call, or accumulated over many.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenUsage {
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    /// The model's input limit (0 when unknown); the maximum when accumulated.
    pub context_window: u64,
    /// prompt + completion tokens of the latest call.
    pub per_turn_token: u64,
    /// The call's response id; `""` in the accumulated usage.
    pub response_id: String,
}

/// The cost of one call in USD.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub model: String,
    pub cost: f64,
    /// Unix time in seconds.
    pub timestamp: f64,
}

/// The latency of one call in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseLatency {
    pub model: String,
    pub latency: f64,
    pub response_id: String,
}

/// Everything recorded for one LLM (`usage_id`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metrics {
    pub model_name: String,
    pub accumulated_cost: f64,
    pub max_budget_per_task: Option<f64>,
    pub accumulated_token_usage: Option<TokenUsage>,
    pub costs: Vec<Cost>,
    pub response_latencies: Vec<ResponseLatency>,
    pub token_usages: Vec<TokenUsage>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new("default")
    }
}

/// What one LLM call reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    pub context_window: u64,
    pub response_id: String,
    /// Seconds from request to complete response.
    pub latency: f64,
    /// USD; 0 when the price is unknown.
    pub cost: f64,
}

impl Metrics {
    /// Empty metrics for a model, with the accumulated usage initialised as Python does.
    pub fn new(model_name: &str) -> Self {
        Metrics {
            model_name: model_name.to_string(),
            accumulated_cost: 0.0,
            max_budget_per_task: None,
            accumulated_token_usage: Some(TokenUsage {
                model: model_name.to_string(),
                ..TokenUsage::default()
            }),
            costs: Vec::new(),
            response_latencies: Vec::new(),
            token_usages: Vec::new(),
        }
    }

    /// Records one call: cost (only when positive), latency and token usage.
    pub fn record(&mut self, call: &CallUsage, now_unix: f64) {
        if call.cost > 0.0 {
            self.accumulated_cost += call.cost;
            self.costs.push(Cost {
                model: self.model_name.clone(),
                cost: call.cost,
                timestamp: now_unix,
            });
        }
        self.response_latencies.push(ResponseLatency {
            model: self.model_name.clone(),
            latency: call.latency.max(0.0),
            response_id: call.response_id.clone(),
        });
        let per_turn = call.prompt_tokens + call.completion_tokens;
        let usage = TokenUsage {
            model: self.model_name.clone(),
            prompt_tokens: call.prompt_tokens,
            completion_tokens: call.completion_tokens,
            cache_read_tokens: call.cache_read_tokens,
            cache_write_tokens: call.cache_write_tokens,
            reasoning_tokens: call.reasoning_tokens,
            context_window: call.context_window,
            per_turn_token: per_turn,
            response_id: call.response_id.clone(),
        };
        self.token_usages.push(usage);
        let acc = self
            .accumulated_token_usage
            .get_or_insert_with(|| TokenUsage {
                model: self.model_name.clone(),
                ..TokenUsage::default()
            });
        acc.prompt_tokens += call.prompt_tokens;
        acc.completion_tokens += call.completion_tokens;
        acc.cache_read_tokens += call.cache_read_tokens;
        acc.cache_write_tokens += call.cache_write_tokens;
        acc.reasoning_tokens += call.reasoning_tokens;
        acc.context_window = acc.context_window.max(call.context_window);
        acc.per_turn_token = per_turn;
    }

    /// The snapshot form: no per-call lists.
    pub fn snapshot(&self) -> Value {
        serde_json::json!({
            "model_name": self.model_name,
            "accumulated_cost": self.accumulated_cost,
            "max_budget_per_task": self.max_budget_per_task,
            "accumulated_token_usage": self.accumulated_token_usage,
        })
    }
}

/// `{"usage_to_metrics": {usage_id: Metrics}}`, in the order the LLMs were first used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConversationStats {
    pub usage_to_metrics: Vec<(String, Metrics)>,
}

impl Serialize for ConversationStats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Inner<'a>(&'a [(String, Metrics)]);
        impl Serialize for Inner<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("usage_to_metrics", &Inner(&self.usage_to_metrics))?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for ConversationStats {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            usage_to_metrics: Map<String, Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let mut out = Vec::with_capacity(raw.usage_to_metrics.len());
        for (k, v) in raw.usage_to_metrics {
            let m = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
            out.push((k, m));
        }
        Ok(ConversationStats {
            usage_to_metrics: out,
        })
    }
}

impl ConversationStats {
    /// The metrics for `usage_id`.
    pub fn get(&self, usage_id: &str) -> Option<&Metrics> {
        self.usage_to_metrics
            .iter()
            .find(|(k, _)| k == usage_id)
            .map(|(_, m)| m)
    }

    /// Records a call for `usage_id`, creating its metrics for `model` on first use.
    pub fn record(&mut self, usage_id: &str, model: &str, call: &CallUsage, now_unix: f64) {
        match self
            .usage_to_metrics
            .iter_mut()
            .find(|(k, _)| k == usage_id)
        {
            Some((_, m)) => m.record(call, now_unix),
            None => {
                let mut m = Metrics::new(model);
                m.record(call, now_unix);
                self.usage_to_metrics.push((usage_id.to_string(), m));
            }
        }
    }

    /// The snapshot form used in `stats` state-update events.
    pub fn snapshot(&self) -> Value {
        let out: Map<String, Value> = self
            .usage_to_metrics
            .iter()
            .map(|(k, m)| (k.clone(), m.snapshot()))
            .collect();
        serde_json::json!({ "usage_to_metrics": out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_like_python() {
        let mut stats = ConversationStats::default();
        let call = CallUsage {
            prompt_tokens: 100,
            completion_tokens: 20,
            response_id: "chatcmpl-1".into(),
            latency: 0.5,
            ..CallUsage::default()
        };
        stats.record("agent", "openai/fake-model", &call, 1.0);
        stats.record("agent", "openai/fake-model", &call, 2.0);
        let snap = stats.snapshot();
        assert_eq!(
            snap.to_string(),
            r#"{"usage_to_metrics":{"agent":{"model_name":"openai/fake-model","accumulated_cost":0.0,"max_budget_per_task":null,"accumulated_token_usage":{"model":"openai/fake-model","prompt_tokens":200,"completion_tokens":40,"cache_read_tokens":0,"cache_write_tokens":0,"reasoning_tokens":0,"context_window":0,"per_turn_token":120,"response_id":""}}}}"#
        );
        let m = stats.get("agent").unwrap();
        let full = serde_json::to_value(&stats).unwrap();
        let back: ConversationStats = serde_json::from_value(full).unwrap();
        assert_eq!(back, stats);
        assert_eq!(m.token_usages.len(), 2);
        assert!(m.costs.is_empty());
        assert_eq!(m.response_latencies[0].response_id, "chatcmpl-1");
    }

    #[test]
    fn positive_cost_is_recorded() {
        let mut m = Metrics::new("m");
        m.record(
            &CallUsage {
                cost: 0.25,
                ..CallUsage::default()
            },
            5.0,
        );
        assert_eq!(m.accumulated_cost, 0.25);
        assert_eq!(m.costs.len(), 1);
    }
}
