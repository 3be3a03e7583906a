//! Building [`Observation`]s in the Python key order.

use serde_json::{Map, Value};

use super::Observation;
use crate::api::message::Content;

/// An observation object `{content, is_error, <fields…>, kind}` whose LLM
/// content is its own `content`.
pub(crate) fn observation(
    kind: &str,
    content: Vec<Content>,
    is_error: bool,
    fields: impl IntoIterator<Item = (&'static str, Value)>,
) -> Observation {
    let mut json = Map::new();
    json.insert(
        "content".into(),
        Value::Array(content.iter().map(content_json).collect()),
    );
    json.insert("is_error".into(), Value::Bool(is_error));
    for (k, v) in fields {
        json.insert(k.into(), v);
    }
    json.insert("kind".into(), Value::String(kind.into()));
    Observation {
        json,
        llm_content: content,
    }
}

/// A text-only observation.
pub(crate) fn text_observation(
    kind: &str,
    text: impl Into<String>,
    is_error: bool,
    fields: impl IntoIterator<Item = (&'static str, Value)>,
) -> Observation {
    observation(kind, vec![Content::text(text)], is_error, fields)
}

fn content_json(c: &Content) -> Value {
    let mut m = Map::new();
    match c {
        Content::Text(t) => {
            m.insert("cache_prompt".into(), Value::Bool(t.cache_prompt));
            m.insert("type".into(), Value::String("text".into()));
            m.insert("text".into(), Value::String(t.text.clone()));
        }
        Content::Image(i) => {
            m.insert("cache_prompt".into(), Value::Bool(i.cache_prompt));
            m.insert("type".into(), Value::String("image".into()));
            m.insert(
                "image_urls".into(),
                Value::Array(i.image_urls.iter().cloned().map(Value::String).collect()),
            );
        }
    }
    Value::Object(m)
}

/// An optional string as JSON (`null` when absent).
pub(crate) fn opt_str(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_string()))
}
