//! Path and query parameters, validated the way FastAPI and pydantic do it.
//!
//! A handler reads every parameter through one [`Params`], in declaration
//! order; each invalid one is recorded as a pydantic-style item, and
//! [`Params::finish`] turns them into one `422` listing all of them (as
//! FastAPI does), or lets the handler go on:
//!
//! ```ignore
//! let mut p = req.params();
//! let id = p.path_uuid("conversation_id");
//! let limit = p.int("limit", Bounds::new().gt(0).le(100)).unwrap_or(100);
//! let status: Option<ExecutionStatus> = p.enumeration("status", ExecutionStatus::NAMES);
//! p.finish()?;
//! ```
//!
//! A scalar given twice takes its last value (`?limit=5&limit=7` is 7), as FastAPI does.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use crate::api::validation::{Loc, ValidationErrorItem};

/// Numeric constraints, with pydantic's names (`gt`, `ge`, `lt`, `le`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Bounds<T> {
    gt: Option<T>,
    ge: Option<T>,
    lt: Option<T>,
    le: Option<T>,
}

impl<T: Copy + PartialOrd + Display + Into<Value>> Bounds<T> {
    /// No constraint.
    pub fn new() -> Self {
        Bounds {
            gt: None,
            ge: None,
            lt: None,
            le: None,
        }
    }

    /// Must be greater than `v`.
    pub fn gt(mut self, v: T) -> Self {
        self.gt = Some(v);
        self
    }

    /// Must be at least `v`.
    pub fn ge(mut self, v: T) -> Self {
        self.ge = Some(v);
        self
    }

    /// Must be less than `v`.
    pub fn lt(mut self, v: T) -> Self {
        self.lt = Some(v);
        self
    }

    /// Must be at most `v`.
    pub fn le(mut self, v: T) -> Self {
        self.le = Some(v);
        self
    }

    /// The first violated constraint as pydantic reports it: `(type, message, ctx)`.
    fn check(&self, value: T) -> Option<(&'static str, String, Value)> {
        let violated = |kind, words: &str, key: &str, bound: T| {
            Some((
                kind,
                format!("Input should be {words} {bound}"),
                json!({ key: bound.into() }),
            ))
        };
        match (self.gt, self.ge, self.lt, self.le) {
            (Some(b), ..) if value <= b => violated("greater_than", "greater than", "gt", b),
            (_, Some(b), ..) if value < b => {
                violated("greater_than_equal", "greater than or equal to", "ge", b)
            }
            (_, _, Some(b), _) if value >= b => violated("less_than", "less than", "lt", b),
            (.., Some(b)) if value > b => {
                violated("less_than_equal", "less than or equal to", "le", b)
            }
            _ => None,
        }
    }
}

/// Parameters of one request with the validation errors found so far.
#[derive(Debug)]
pub struct Params {
    path: Vec<(String, String)>,
    query: Vec<(String, String)>,
    errors: Vec<ValidationErrorItem>,
}

impl Params {
    /// Parameters from the matched path and the raw query string.
    pub fn new(path: Vec<(String, String)>, query: Option<&str>) -> Self {
        Params {
            path,
            query: query.map(parse_query).unwrap_or_default(),
            errors: Vec::new(),
        }
    }

    /// Records a validation error of the handler's own.
    pub fn error(&mut self, item: ValidationErrorItem) {
        self.errors.push(item);
    }

    /// `Ok` when every parameter was valid, else the `422` listing all errors.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }

    // --- path ------------------------------------------------------------------

    /// A path parameter as given (percent-decoded).
    pub fn path_str(&mut self, name: &str) -> Option<String> {
        let value = self
            .path
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        if value.is_none() {
            self.errors.push(ValidationErrorItem::missing(
                vec![Loc::from("path"), Loc::from(name)],
                Value::Null,
            ));
        }
        value
    }

    /// A path parameter that must be a UUID in any form Python accepts.
    pub fn path_uuid(&mut self, name: &str) -> Option<Uuid> {
        let raw = self.path_str(name)?;
        self.parse(&raw, vec![Loc::from("path"), Loc::from(name)], parse_uuid)
    }

    // --- query -----------------------------------------------------------------

    /// Whether the query names `name` at all (even with an empty value).
    pub fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// Records `missing` when the query lacks `name` (call it for required parameters).
    pub fn require(&mut self, name: &str) {
        if !self.has(name) {
            self.errors.push(ValidationErrorItem::missing(
                vec![Loc::from("query"), Loc::from(name)],
                Value::Null,
            ));
        }
    }

    /// The last value of `name`.
    pub fn str(&self, name: &str) -> Option<String> {
        self.last(name).map(str::to_string)
    }

    /// Every value of a repeated parameter (`?tag=a&tag=b`).
    pub fn str_list(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// An integer within `bounds`.
    pub fn int(&mut self, name: &str, bounds: Bounds<i64>) -> Option<i64> {
        let raw = self.last(name)?.to_string();
        let value = self.parse(&raw, query_loc(name), parse_int)?;
        self.bounded(value, &raw, bounds, query_loc(name))
    }

    /// A number within `bounds`.
    pub fn float(&mut self, name: &str, bounds: Bounds<f64>) -> Option<f64> {
        let raw = self.last(name)?.to_string();
        let value = self.parse(&raw, query_loc(name), parse_float)?;
        self.bounded(value, &raw, bounds, query_loc(name))
    }

    /// A boolean in pydantic's spellings (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, …).
    pub fn bool(&mut self, name: &str) -> Option<bool> {
        let raw = self.last(name)?.to_string();
        self.parse(&raw, query_loc(name), parse_bool)
    }

    /// A UUID.
    pub fn uuid(&mut self, name: &str) -> Option<Uuid> {
        let raw = self.last(name)?.to_string();
        self.parse(&raw, query_loc(name), parse_uuid)
    }

    /// Every value of a repeated UUID parameter (`?ids=a&ids=b`); errors name the index.
    pub fn uuid_list(&mut self, name: &str) -> Vec<Uuid> {
        let raw: Vec<String> = self.str_list(name);
        raw.iter()
            .enumerate()
            .filter_map(|(i, v)| {
                self.parse(
                    v,
                    vec![Loc::from("query"), Loc::from(name), Loc::from(i)],
                    parse_uuid,
                )
            })
            .collect()
    }

    /// One of `allowed` (the wire names of a serde enum `E`), deserialised into `E`.
    pub fn enumeration<E: DeserializeOwned>(&mut self, name: &str, allowed: &[&str]) -> Option<E> {
        let raw = self.last(name)?.to_string();
        let parsed = allowed
            .contains(&raw.as_str())
            .then(|| serde_json::from_value(Value::String(raw.clone())).ok())
            .flatten();
        if parsed.is_none() {
            self.errors.push(enum_error(query_loc(name), &raw, allowed));
        }
        parsed
    }

    fn last(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn parse<T>(
        &mut self,
        raw: &str,
        loc: Vec<Loc>,
        parse: fn(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        match parse(raw) {
            Ok(v) => Some(v),
            Err(invalid) => {
                self.errors.push(ValidationErrorItem::new(
                    invalid.kind,
                    loc,
                    invalid.msg,
                    Value::String(raw.to_string()),
                    invalid.ctx,
                ));
                None
            }
        }
    }

    fn bounded<T>(&mut self, value: T, raw: &str, bounds: Bounds<T>, loc: Vec<Loc>) -> Option<T>
    where
        T: Copy + PartialOrd + Display + Into<Value>,
    {
        match bounds.check(value) {
            None => Some(value),
            Some((kind, msg, ctx)) => {
                self.errors.push(ValidationErrorItem::new(
                    kind,
                    loc,
                    msg,
                    Value::String(raw.to_string()),
                    Some(ctx),
                ));
                None
            }
        }
    }
}

fn query_loc(name: &str) -> Vec<Loc> {
    vec![Loc::from("query"), Loc::from(name)]
}

/// A value that failed to parse, in pydantic's words.
struct Invalid {
    kind: &'static str,
    msg: String,
    ctx: Option<Value>,
}

fn parse_int(raw: &str) -> Result<i64, Invalid> {
    raw.trim().parse().map_err(|_| Invalid {
        kind: "int_parsing",
        msg: "Input should be a valid integer, unable to parse string as an integer".into(),
        ctx: None,
    })
}

fn parse_float(raw: &str) -> Result<f64, Invalid> {
    raw.trim().parse().map_err(|_| Invalid {
        kind: "float_parsing",
        msg: "Input should be a valid number, unable to parse string as a number".into(),
        ctx: None,
    })
}

fn parse_bool(raw: &str) -> Result<bool, Invalid> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
        "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
        _ => Err(Invalid {
            kind: "bool_parsing",
            msg: "Input should be a valid boolean, unable to interpret input".into(),
            ctx: None,
        }),
    }
}

fn parse_uuid(raw: &str) -> Result<Uuid, Invalid> {
    // pydantic-core parses with the same `uuid` crate, so its error texts match.
    crate::util::ids::parse_uuid(raw).map_err(|e| Invalid {
        kind: "uuid_parsing",
        msg: format!("Input should be a valid UUID, {e}"),
        ctx: Some(json!({ "error": e.to_string() })),
    })
}

/// pydantic's `enum` error: `Input should be 'a', 'b' or 'c'`.
pub fn enum_error(loc: Vec<Loc>, input: &str, allowed: &[&str]) -> ValidationErrorItem {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    let expected = match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    };
    ValidationErrorItem::new(
        "enum",
        loc,
        format!("Input should be {expected}"),
        Value::String(input.to_string()),
        Some(json!({ "expected": expected })),
    )
}

/// Splits a query string into decoded pairs (`+` is a space, as in forms).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decodes a path segment (`+` stays a plus sign).
pub fn decode_path(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-decodes one query component.
pub fn decode(component: &str) -> String {
    let spaced = component.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(p: Params) -> Value {
        match p.finish() {
            Err(ApiError::Validation(items)) => serde_json::to_value(items).unwrap(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn ints_with_bounds_like_fastapi() {
        let mut p = Params::new(vec![], Some("limit=0"));
        assert_eq!(p.int("limit", Bounds::new().gt(0).le(100)), None);
        assert_eq!(
            errors(p),
            json!([{"type":"greater_than","loc":["query","limit"],"msg":"Input should be greater than 0","input":"0","ctx":{"gt":0}}])
        );
        let mut p = Params::new(vec![], Some("limit=101"));
        p.int("limit", Bounds::new().gt(0).le(100));
        assert_eq!(
            errors(p),
            json!([{"type":"less_than_equal","loc":["query","limit"],"msg":"Input should be less than or equal to 100","input":"101","ctx":{"le":100}}])
        );
        let mut p = Params::new(vec![], Some("limit=5&limit=7&x=abc"));
        assert_eq!(p.int("limit", Bounds::new().gt(0)), Some(7));
        assert_eq!(p.int("missing", Bounds::new()), None);
        p.int("x", Bounds::new());
        assert_eq!(
            errors(p),
            json!([{"type":"int_parsing","loc":["query","x"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"}])
        );
        let mut p = Params::new(vec![], Some("f=0.5"));
        assert_eq!(p.float("f", Bounds::new().ge(0.0).lt(1.0)), Some(0.5));
        assert!(p.finish().is_ok());
    }

    #[test]
    fn enums_bools_and_uuids() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "snake_case")]
        enum Abc {
            A,
            B,
            C,
        }
        let mut p = Params::new(vec![], Some("s=b&t=d&flag=YES&bad=maybe"));
        assert_eq!(p.enumeration::<Abc>("s", &["a", "b", "c"]), Some(Abc::B));
        assert_eq!(p.enumeration::<Abc>("t", &["a", "b", "c"]), None);
        assert_eq!(p.bool("flag"), Some(true));
        assert_eq!(p.bool("bad"), None);
        assert_eq!(
            errors(p),
            json!([
                {"type":"enum","loc":["query","t"],"msg":"Input should be 'a', 'b' or 'c'","input":"d","ctx":{"expected":"'a', 'b' or 'c'"}},
                {"type":"bool_parsing","loc":["query","bad"],"msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"}
            ])
        );
        let mut p = Params::new(
            vec![("conversation_id".into(), "not-a-uuid".into())],
            Some("ids=1&ids=8889fa99195d48ad8df3a7ffe2b3801f"),
        );
        assert_eq!(p.path_uuid("conversation_id"), None);
        assert_eq!(p.uuid_list("ids").len(), 1);
        assert_eq!(
            errors(p),
            json!([
                {"type":"uuid_parsing","loc":["path","conversation_id"],"msg":"Input should be a valid UUID, invalid character: found `n` at 0","input":"not-a-uuid","ctx":{"error":"invalid character: found `n` at 0"}},
                {"type":"uuid_parsing","loc":["query","ids",0],"msg":"Input should be a valid UUID, invalid length: found 1","input":"1","ctx":{"error":"invalid length: found 1"}}
            ])
        );
    }

    #[test]
    fn required_and_decoding() {
        let mut p = Params::new(vec![], Some("q=a+b%2Fc&empty="));
        p.require("ids");
        assert_eq!(p.str("q").as_deref(), Some("a b/c"));
        assert!(p.has("empty"));
        assert_eq!(
            errors(p),
            json!([{"type":"missing","loc":["query","ids"],"msg":"Field required","input":null}])
        );
        assert_eq!(
            enum_error(vec![], "x", &["a", "b"]).msg,
            "Input should be 'a' or 'b'"
        );
        assert_eq!(enum_error(vec![], "x", &["a"]).msg, "Input should be 'a'");
    }
}
