//! Pydantic-style validation errors: the 422 `detail` items clients expect.
//!
//! `{"type":"less_than_equal","loc":["query","limit"],"msg":"Input should be less than or equal to 100","input":"101","ctx":{"le":100}}`

use serde::{Serialize, Serializer};
use serde_json::Value;

/// One element of an error location: an object key or a list index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loc {
    Key(String),
    Index(usize),
}

impl Serialize for Loc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Loc::Key(k) => serializer.serialize_str(k),
            Loc::Index(i) => serializer.serialize_u64(*i as u64),
        }
    }
}

impl From<&str> for Loc {
    fn from(k: &str) -> Self {
        Loc::Key(k.to_string())
    }
}

impl From<String> for Loc {
    fn from(k: String) -> Self {
        Loc::Key(k)
    }
}

impl From<usize> for Loc {
    fn from(i: usize) -> Self {
        Loc::Index(i)
    }
}

/// One validation error, in pydantic v2's shape (no `url` key).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidationErrorItem {
    /// The error type (`missing`, `uuid_parsing`, `less_than_equal`, `value_error`, …).
    #[serde(rename = "type")]
    pub error_type: String,
    /// Where: the first element is `path`, `query`, `body` or `header`.
    pub loc: Vec<Loc>,
    /// The human-readable message, exactly as pydantic words it.
    pub msg: String,
    /// The offending input (secret-looking values replaced by `"<redacted>"`).
    pub input: Value,
    /// Extra context (`{"le":100}`), omitted when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl ValidationErrorItem {
    /// A new item.
    pub fn new(
        error_type: &str,
        loc: Vec<Loc>,
        msg: impl Into<String>,
        input: Value,
        ctx: Option<Value>,
    ) -> Self {
        ValidationErrorItem {
            error_type: error_type.to_string(),
            loc,
            msg: msg.into(),
            input,
            ctx,
        }
    }

    /// A `missing` error: `"Field required"`.
    pub fn missing(loc: Vec<Loc>, input: Value) -> Self {
        Self::new("missing", loc, "Field required", input, None)
    }
}

/// Builds a location from string keys and indexes: `loc!["body", "agent", 0]`.
#[macro_export]
macro_rules! loc {
    ($($part:expr),* $(,)?) => {
        vec![$($crate::api::validation::Loc::from($part)),*]
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_like_pydantic() {
        let item = ValidationErrorItem::new(
            "less_than_equal",
            crate::loc!["query", "limit"],
            "Input should be less than or equal to 100",
            Value::String("101".into()),
            Some(serde_json::json!({"le": 100})),
        );
        assert_eq!(
            serde_json::to_string(&item).unwrap(),
            r#"{"type":"less_than_equal","loc":["query","limit"],"msg":"Input should be less than or equal to 100","input":"101","ctx":{"le":100}}"#
        );
        let missing =
            ValidationErrorItem::missing(crate::loc!["body", "items", 2usize], Value::Null);
        assert_eq!(
            serde_json::to_string(&missing).unwrap(),
            r#"{"type":"missing","loc":["body","items",2],"msg":"Field required","input":null}"#
        );
    }
}
