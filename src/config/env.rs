//! The `OH_*` environment convention of the Python server (its `env_parser.py`),
//! driven by the [`FIELDS`] table.
//!
//! A field `foo` is read from `OH_FOO`; a nested field from `OH_FOO_BAR`; list
//! items from `OH_FOO_0`, `OH_FOO_1`, … until the first gap, or from a JSON list
//! (or item count) in `OH_FOO` refined by the indexed variables. Strings are
//! never parsed, so secrets made of digits survive. Every value remembers the
//! variable it came from, so an error can name it.

use std::collections::BTreeMap;
use std::sync::Arc;

use figment::{Metadata, Profile};
use serde_json::{Map, Number, Value};

use super::{ConfigError, Env, Field, Kind, FIELDS};

/// What the environment sets, as two layers: the `OH_*` variables and the
/// legacy ones (which only stand in for unset fields).
pub(super) struct Vars {
    /// Values from `OH_*` variables.
    pub values: Map<String, Value>,
    /// Dotted key path → the variable that set it.
    pub sources: BTreeMap<String, String>,
    /// Values from legacy variables (`SESSION_API_KEY`, …).
    pub legacy: Map<String, Value>,
    /// Dotted key path → the legacy variable that set it.
    pub legacy_sources: BTreeMap<String, String>,
}

/// Reads every field of [`FIELDS`] from `env`.
pub(super) fn read(env: &Env) -> Result<Vars, ConfigError> {
    let mut reader = Reader {
        env,
        sources: BTreeMap::new(),
    };
    let mut values = Map::new();
    for field in FIELDS {
        let var = format!("OH_{}", field.name.to_ascii_uppercase());
        if !reader.has_prefix(&var) {
            continue;
        }
        if let Some(value) = reader.read(&field.kind, &var, field.name)? {
            values.insert(field.name.to_string(), value);
        }
    }
    let mut legacy = Map::new();
    let mut legacy_sources = BTreeMap::new();
    for field in FIELDS {
        let Some(var) = field.legacy_env else {
            continue;
        };
        let Some(raw) = env.get(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = match field.kind {
            Kind::List(_) => Value::Array(vec![Value::String(raw.clone())]),
            _ => Value::String(raw.clone()),
        };
        legacy.insert(field.name.to_string(), value);
        legacy_sources.insert(field.name.to_string(), var.to_string());
    }
    Ok(Vars {
        values,
        sources: reader.sources,
        legacy,
        legacy_sources,
    })
}

/// Provider metadata that names the variable behind a key path.
pub(super) fn metadata(sources: BTreeMap<String, String>) -> Metadata {
    let sources = Arc::new(sources);
    Metadata::named("environment variable").interpolater(move |_: &Profile, keys: &[&str]| {
        // The longest recorded prefix wins: `OH_WEBHOOKS='[…]'` sets the whole list.
        (0..=keys.len())
            .rev()
            .find_map(|n| sources.get(&keys[..n].join(".")).cloned())
            .unwrap_or_else(|| format!("OH_{}", keys.join("_").to_ascii_uppercase()))
    })
}

/// A bound on `OH_FOO=<count>`, so a typo cannot allocate without limit.
const MAX_ITEMS: u64 = 10_000;

struct Reader<'a> {
    env: &'a Env,
    sources: BTreeMap<String, String>,
}

impl Reader<'_> {
    /// Whether any variable starts with `prefix` (upstream's guard against
    /// descending into fields nobody set).
    fn has_prefix(&self, prefix: &str) -> bool {
        self.env
            .range(prefix.to_string()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    fn error(&self, var: &str, path: &str, message: String) -> ConfigError {
        ConfigError::new(
            format!("environment variable {var}"),
            Some(path.to_string()),
            message,
        )
    }

    /// Reads `kind` from `var` (and the variables derived from it); `None` when unset.
    fn read(&mut self, kind: &Kind, var: &str, path: &str) -> Result<Option<Value>, ConfigError> {
        let raw = self.env.get(var);
        let value =
            match kind {
                Kind::Str => raw.map(|v| Value::String(v.clone())),
                Kind::Bool => raw
                    .map(|v| Value::Bool(matches!(v.to_ascii_uppercase().as_str(), "1" | "TRUE"))),
                Kind::Int => match raw {
                    None => None,
                    Some(v) => match v.trim().parse::<i64>() {
                        Ok(n) => Some(Value::Number(n.into())),
                        Err(_) => {
                            return Err(self.error(
                                var,
                                path,
                                format!("expected an integer, found {v:?}"),
                            ))
                        }
                    },
                },
                Kind::Float => match raw {
                    None => None,
                    Some(v) => match v.trim().parse::<f64>().ok().and_then(Number::from_f64) {
                        Some(n) => Some(Value::Number(n)),
                        None => {
                            return Err(self.error(
                                var,
                                path,
                                format!("expected a number, found {v:?}"),
                            ))
                        }
                    },
                },
                Kind::Enum(allowed) => match raw {
                    None => None,
                    Some(v) if allowed.contains(&v.as_str()) => Some(Value::String(v.clone())),
                    Some(v) => {
                        let expected = allowed
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        return Err(self.error(
                            var,
                            path,
                            format!("expected one of {expected}, found {v:?}"),
                        ));
                    }
                },
                Kind::Dict => self.json_object(var, path)?.map(Value::Object),
                Kind::Optional(inner) => match self.read(inner, var, path)? {
                    Some(v) => Some(v),
                    None => {
                        let none_var = format!("{var}_IS_NONE");
                        let is_none = self.env.get(&none_var).is_some_and(|v| {
                            matches!(v.to_ascii_uppercase().as_str(), "1" | "TRUE")
                        });
                        if is_none {
                            self.sources.insert(path.to_string(), none_var);
                        }
                        is_none.then_some(Value::Null)
                    }
                },
                Kind::List(item) => self.read_list(item, var, path)?,
                Kind::Model(fields) => self.read_model(fields, var, path)?,
            };
        if value.is_some() && raw.is_some() {
            self.sources.insert(path.to_string(), var.to_string());
        }
        Ok(value)
    }

    fn json_object(
        &mut self,
        var: &str,
        path: &str,
    ) -> Result<Option<Map<String, Value>>, ConfigError> {
        match self.env.get(var).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => match serde_json::from_str(text) {
                Ok(Value::Object(map)) => Ok(Some(map)),
                Ok(_) => Err(self.error(var, path, "expected a JSON object".to_string())),
                Err(e) => Err(self.error(var, path, format!("invalid JSON: {e}"))),
            },
        }
    }

    fn read_list(
        &mut self,
        item: &Kind,
        var: &str,
        path: &str,
    ) -> Result<Option<Value>, ConfigError> {
        let Some(text) = self.env.get(var) else {
            // Indexed variables alone: read until the first missing index.
            let mut items = Vec::new();
            while let Some(value) = self.read_item(item, var, path, items.len())? {
                items.push(value);
            }
            return Ok((!items.is_empty()).then_some(Value::Array(items)));
        };
        let base: Vec<Option<Value>> = match serde_json::from_str(text) {
            Ok(Value::Array(items)) => items.into_iter().map(Some).collect(),
            Ok(Value::Number(n)) if n.as_u64().is_some_and(|count| count <= MAX_ITEMS) => {
                vec![None; n.as_u64().unwrap_or_default() as usize]
            }
            _ => {
                return Err(self.error(
                    var,
                    path,
                    format!("expected a JSON list or an item count, found {text:?}"),
                ));
            }
        };
        let mut items = Vec::with_capacity(base.len());
        for (index, base_item) in base.into_iter().enumerate() {
            let own = self.read_item(item, var, path, index)?;
            match merge(base_item, own) {
                Some(value) => items.push(value),
                None => {
                    return Err(self.error(
                        &format!("{var}_{index}"),
                        &format!("{path}.{index}"),
                        format!("missing: {var} announces more items"),
                    ));
                }
            }
        }
        Ok(Some(Value::Array(items)))
    }

    fn read_item(
        &mut self,
        item: &Kind,
        var: &str,
        path: &str,
        index: usize,
    ) -> Result<Option<Value>, ConfigError> {
        let item_var = format!("{var}_{index}");
        if !self.has_prefix(&item_var) {
            return Ok(None);
        }
        self.read(item, &item_var, &format!("{path}.{index}"))
    }

    fn read_model(
        &mut self,
        fields: &[Field],
        var: &str,
        path: &str,
    ) -> Result<Option<Value>, ConfigError> {
        let mut result = self.json_object(var, path)?.map(Value::Object);
        for field in fields {
            let field_var = format!("{var}_{}", field.name.to_ascii_uppercase());
            if !self.has_prefix(&field_var) {
                continue;
            }
            let Some(value) =
                self.read(&field.kind, &field_var, &format!("{path}.{}", field.name))?
            else {
                continue;
            };
            let mut map = match result.take() {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            let existing = map.remove(field.name);
            if let Some(merged) = merge(existing, Some(value)) {
                map.insert(field.name.to_string(), merged);
            }
            result = Some(Value::Object(map));
        }
        Ok(result)
    }
}

/// Upstream's `merge`: `b` over `a`, objects key by key, lists item by item;
/// a null in `b` keeps `a`.
fn merge(a: Option<Value>, b: Option<Value>) -> Option<Value> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(Value::Object(mut a)), Some(Value::Object(b))) => {
            for (key, value) in b {
                let existing = a.remove(&key);
                if let Some(merged) = merge(existing, Some(value)) {
                    a.insert(key, merged);
                }
            }
            Some(Value::Object(a))
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            let mut a: Vec<Option<Value>> = a.into_iter().map(Some).collect();
            for (index, value) in b.into_iter().enumerate() {
                match a.get_mut(index) {
                    Some(slot) => *slot = merge(slot.take(), Some(value)),
                    None => a.push(Some(value)),
                }
            }
            Some(Value::Array(a.into_iter().flatten().collect()))
        }
        (a, Some(Value::Null)) => a,
        (_, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let env: Env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read(&env).unwrap()
    }

    fn read_err(pairs: &[(&str, &str)]) -> ConfigError {
        let env: Env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read(&env).err().unwrap()
    }

    #[test]
    fn strings_are_never_reparsed() {
        let v = vars(&[
            ("OH_SECRET_KEY", "007"),
            ("OH_CONVERSATIONS_PATH", "true"),
            ("OH_LOG_LEVEL", "1e5"),
        ]);
        assert_eq!(
            Value::Object(v.values),
            json!({"conversations_path": "true", "secret_key": "007", "log_level": "1e5"})
        );
        assert_eq!(v.sources["secret_key"], "OH_SECRET_KEY");
    }

    #[test]
    fn scalars() {
        let v = vars(&[
            ("OH_PORT", " 4004 "),
            ("OH_PRELOAD_TOOLS", "true"),
            ("OH_ENABLE_BROWSER", "yes"),
            ("OH_ENABLE_VNC", "1"),
            ("OH_LEASE_TTL_SECONDS", "2.5"),
            ("OH_LOG_FORMAT", "json"),
        ]);
        assert_eq!(
            Value::Object(v.values),
            json!({"port": 4004, "lease_ttl_seconds": 2.5, "preload_tools": true,
                   "enable_browser": false, "enable_vnc": true, "log_format": "json"})
        );
        assert_eq!(
            read_err(&[("OH_PORT", "80a")]).source,
            "environment variable OH_PORT"
        );
        assert_eq!(
            read_err(&[("OH_LEASE_TTL_SECONDS", "inf")]).key.as_deref(),
            Some("lease_ttl_seconds")
        );
        let e = read_err(&[("OH_LOG_FORMAT", "xml")]);
        assert_eq!(
            (e.source.as_str(), e.key.as_deref()),
            ("environment variable OH_LOG_FORMAT", Some("log_format"))
        );
    }

    #[test]
    fn indexed_lists_stop_at_the_first_gap() {
        let v = vars(&[
            ("OH_SESSION_API_KEYS_0", "a"),
            ("OH_SESSION_API_KEYS_1", "0012"),
            ("OH_SESSION_API_KEYS_3", "after-gap"),
        ]);
        assert_eq!(v.values["session_api_keys"], json!(["a", "0012"]));
        assert_eq!(v.sources["session_api_keys.1"], "OH_SESSION_API_KEYS_1");
    }

    #[test]
    fn json_lists_counts_and_refinement() {
        let v = vars(&[("OH_ALLOW_CORS_ORIGINS", r#"["*"]"#)]);
        assert_eq!(v.values["allow_cors_origins"], json!(["*"]));
        let v = vars(&[
            ("OH_BROWSER_DENIED_URLS", r#"["a", "b"]"#),
            ("OH_BROWSER_DENIED_URLS_1", "c"),
        ]);
        assert_eq!(v.values["browser_denied_urls"], json!(["a", "c"]));
        let v = vars(&[
            ("OH_PREVIOUS_SECRET_KEYS", "2"),
            ("OH_PREVIOUS_SECRET_KEYS_0", "x"),
            ("OH_PREVIOUS_SECRET_KEYS_1", "y"),
        ]);
        assert_eq!(v.values["previous_secret_keys"], json!(["x", "y"]));
        let e = read_err(&[
            ("OH_PREVIOUS_SECRET_KEYS", "2"),
            ("OH_PREVIOUS_SECRET_KEYS_0", "x"),
        ]);
        assert_eq!(e.source, "environment variable OH_PREVIOUS_SECRET_KEYS_1");
        assert!(read_err(&[("OH_ALLOW_CORS_ORIGINS", "http://x")])
            .message
            .contains("JSON list"));
    }

    #[test]
    fn nested_models() {
        let v = vars(&[
            ("OH_WEBHOOKS_0_BASE_URL", "http://a"),
            ("OH_WEBHOOKS_0_HEADERS", r#"{"X-Test":"1"}"#),
            ("OH_WEBHOOKS_0_NUM_RETRIES", "7"),
            (
                "OH_WEBHOOKS_1",
                r#"{"base_url":"http://b","flush_delay":1}"#,
            ),
            ("OH_WEBHOOKS_1_FLUSH_DELAY", "2"),
        ]);
        assert_eq!(
            v.values["webhooks"],
            json!([
                {"base_url": "http://a", "headers": {"X-Test": "1"}, "num_retries": 7},
                {"base_url": "http://b", "flush_delay": 2.0}
            ])
        );
        assert_eq!(
            v.sources["webhooks.0.num_retries"],
            "OH_WEBHOOKS_0_NUM_RETRIES"
        );
        assert_eq!(v.sources["webhooks.1"], "OH_WEBHOOKS_1");
        let e = read_err(&[("OH_WEBHOOKS_0_HEADERS", "[1]")]);
        assert_eq!(e.key.as_deref(), Some("webhooks.0.headers"));
    }

    #[test]
    fn is_none_clears_and_loses_to_a_value() {
        let v = vars(&[
            ("OH_SECRET_KEY_IS_NONE", "true"),
            ("OH_STATIC_FILES_PATH_IS_NONE", "0"),
        ]);
        assert_eq!(Value::Object(v.values), json!({"secret_key": null}));
        let v = vars(&[("OH_SECRET_KEY_IS_NONE", "1"), ("OH_SECRET_KEY", "k")]);
        assert_eq!(v.values["secret_key"], json!("k"));
    }

    #[test]
    fn legacy_variables_form_their_own_layer() {
        let v = vars(&[
            ("SESSION_API_KEY", "old"),
            ("DOCKER_HOST_ADDR", "10.0.0.1"),
            ("OPENHANDS_BUILD_GIT_SHA", ""),
        ]);
        assert!(v.values.is_empty());
        assert_eq!(
            Value::Object(v.legacy),
            json!({"session_api_keys": ["old"], "docker_host_addr": "10.0.0.1"})
        );
    }

    #[test]
    fn interpolation_names_the_variable() {
        let v = vars(&[("OH_WEBHOOKS", r#"[{"base_url": 1}]"#)]);
        let meta = metadata(v.sources);
        assert_eq!(
            meta.interpolate(&Profile::Default, &["webhooks", "0", "base_url"]),
            "OH_WEBHOOKS"
        );
        assert_eq!(meta.interpolate(&Profile::Default, &["port"]), "OH_PORT");
    }
}
