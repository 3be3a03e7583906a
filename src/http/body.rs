//! JSON request bodies, judged as FastAPI judges them: an empty body is
//! `missing`, a body that is not declared as JSON is not an object
//! (`model_attributes_type`), malformed JSON is `json_invalid` at the
//! character where parsing failed, and a body of the wrong shape names the
//! failing field in `loc`.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::error::ApiError;
use super::params::enum_error;
use crate::api::validation::{Loc, ValidationErrorItem};

/// Whether a `Content-Type` declares JSON (`application/json`, `application/*+json`).
pub fn is_json_content_type(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.strip_prefix("application/") {
        Some(subtype) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

/// Parses a request body; `Ok(None)` when it is empty.
pub fn parse_json(content_type: Option<&str>, body: &[u8]) -> Result<Option<Value>, ApiError> {
    if body.is_empty() {
        return Ok(None);
    }
    if !content_type.is_some_and(is_json_content_type) {
        // FastAPI validates the raw text against the model, which is never an object.
        return Err(ValidationErrorItem::new(
            "model_attributes_type",
            vec![Loc::from("body")],
            "Input should be a valid dictionary or object to extract fields from",
            Value::String(String::from_utf8_lossy(body).into_owned()),
            None,
        )
        .into());
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| json_invalid(body, &e).into())
}

/// The `json_invalid` item for a syntax error, with Python's position and wording.
fn json_invalid(body: &[u8], error: &serde_json::Error) -> ValidationErrorItem {
    let byte_pos = if error.is_eof() {
        body.len()
    } else {
        let line_start: usize = body
            .split_inclusive(|&b| b == b'\n')
            .take(error.line().saturating_sub(1))
            .map(<[u8]>::len)
            .sum();
        (line_start + error.column().saturating_sub(1)).min(body.len())
    };
    let text = error.to_string();
    let message = text.split(" at line ").next().unwrap_or_default();
    // serde points after an invalid escape's backslash, Python at it.
    let byte_pos = match message {
        "invalid escape" => byte_pos.saturating_sub(1),
        _ => byte_pos,
    };
    // Python counts characters, not bytes.
    let pos = String::from_utf8_lossy(&body[..byte_pos]).chars().count();
    let python = match message {
        "key must be a string" => "Expecting property name enclosed in double quotes",
        "expected `:`" => "Expecting ':' delimiter",
        "trailing characters" => "Extra data",
        "expected value" | "expected ident" | "trailing comma" | "EOF while parsing a value" => {
            "Expecting value"
        }
        "EOF while parsing a string" => "Unterminated string starting at",
        "invalid escape" => "Invalid \\escape",
        "EOF while parsing a list" | "EOF while parsing an object" => "Expecting ',' delimiter",
        m if m.starts_with("expected `,` or") => "Expecting ',' delimiter",
        m if m.starts_with("control character") => "Invalid control character at",
        m => m,
    };
    ValidationErrorItem::new(
        "json_invalid",
        vec![Loc::from("body"), Loc::from(pos)],
        "JSON decode error",
        json!({}),
        Some(json!({ "error": python })),
    )
}

/// Deserialises a parsed body into `T`; a mismatch becomes one pydantic-style
/// item whose `loc` is the failing field (`["body", "agent", "tools"]`).
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut loc = vec![Loc::from("body")];
        let mut input = Some(value);
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    loc.push(Loc::from(*index));
                    input = input.and_then(|v| v.get(*index));
                }
                serde_path_to_error::Segment::Map { key } => {
                    loc.push(Loc::from(key.as_str()));
                    input = input.and_then(|v| v.get(key));
                }
                _ => {}
            }
        }
        let input = input.cloned().unwrap_or(Value::Null);
        data_error(loc, input, &e.inner().to_string()).into()
    })
}

/// Maps serde's wording of a shape error onto pydantic's types and messages.
fn data_error(mut loc: Vec<Loc>, input: Value, message: &str) -> ValidationErrorItem {
    if let Some(name) = between_backticks(message, "missing field `") {
        loc.push(Loc::from(name));
        return ValidationErrorItem::missing(loc, input);
    }
    if let Some(name) = between_backticks(message, "unknown field `") {
        let extra = input.get(name).cloned().unwrap_or(Value::Null);
        loc.push(Loc::from(name));
        return ValidationErrorItem::new(
            "extra_forbidden",
            loc,
            "Extra inputs are not permitted",
            extra,
            None,
        );
    }
    if let Some(variant) = between_backticks(message, "unknown variant `") {
        let allowed: Vec<&str> = message
            .split_once("expected ")
            .map(|(_, rest)| rest.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        return enum_error(loc, variant, &allowed);
    }
    if let Some((_, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.rsplit_once(", expected "))
    {
        let (kind, msg) = match expected {
            "a string" => ("string_type", "Input should be a valid string"),
            "a sequence" => ("list_type", "Input should be a valid list"),
            "a boolean" => ("bool_type", "Input should be a valid boolean"),
            "a map" => ("dict_type", "Input should be a valid dictionary"),
            "f32" | "f64" => ("float_type", "Input should be a valid number"),
            e if e.starts_with("struct ") => (
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            ),
            e if e.starts_with('i') || e.starts_with('u') => {
                ("int_type", "Input should be a valid integer")
            }
            _ => ("value_error", ""),
        };
        if kind != "value_error" {
            return ValidationErrorItem::new(kind, loc, msg, input, None);
        }
    }
    ValidationErrorItem::new(
        "value_error",
        loc,
        format!("Value error, {message}"),
        input,
        Some(json!({ "error": message })),
    )
}

fn between_backticks<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(result: Result<Option<Value>, ApiError>) -> Value {
        match result {
            Err(ApiError::Validation(items)) => serde_json::to_value(&items[0]).unwrap(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_positions_match_python() {
        let json = Some("application/json");
        let cases: [(&str, usize, &str); 8] = [
            (
                "{not json",
                1,
                "Expecting property name enclosed in double quotes",
            ),
            ("[1,2", 4, "Expecting ',' delimiter"),
            ("{\"a\":", 5, "Expecting value"),
            ("{\"a\":1}x", 7, "Extra data"),
            ("{\"a\" 1}", 5, "Expecting ':' delimiter"),
            ("[1,]", 3, "Expecting value"),
            ("{\"a\":\"\\q\"}", 6, "Invalid \\escape"),
            ("{\"t\":\"é\"  x", 10, "Expecting ',' delimiter"),
        ];
        for (body, pos, msg) in cases {
            let v = item(parse_json(json, body.as_bytes()));
            assert_eq!(
                v,
                json!({"type":"json_invalid","loc":["body",pos],"msg":"JSON decode error","input":{},"ctx":{"error":msg}}),
                "{body}"
            );
        }
    }

    #[test]
    fn content_types() {
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("Application/vnd.api+JSON"));
        assert!(!is_json_content_type("text/plain"));
        assert_eq!(parse_json(Some("application/json"), b"").unwrap(), None);
        assert_eq!(
            item(parse_json(Some("text/plain"), b"{\"a\":1}")),
            json!({"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":"{\"a\":1}"})
        );
        assert!(parse_json(None, b"{}").is_err());
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Agent {
        tools: Vec<String>,
        mode: Mode,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Start {
        agent: Agent,
        max_iterations: u32,
    }

    fn shape_error(body: Value) -> Value {
        match from_value::<Start>(&body) {
            Err(ApiError::Validation(items)) => serde_json::to_value(&items[0]).unwrap(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn well_shaped_bodies_deserialise() {
        let start: Start =
            from_value(&json!({"agent": {"tools": ["t"], "mode": "slow"}, "max_iterations": 3}))
                .unwrap();
        assert_eq!(start.agent.tools, ["t"]);
        assert!(matches!(start.agent.mode, Mode::Slow));
        assert!(!matches!(start.agent.mode, Mode::Fast));
        assert_eq!(start.max_iterations, 3);
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert_eq!(
            shape_error(json!({"agent": {"tools": "x", "mode": "fast"}, "max_iterations": 1})),
            json!({"type":"list_type","loc":["body","agent","tools"],"msg":"Input should be a valid list","input":"x"})
        );
        assert_eq!(
            shape_error(json!({"agent": {"tools": [], "mode": "fast"}})),
            json!({"type":"missing","loc":["body","max_iterations"],"msg":"Field required","input":{"agent":{"tools":[],"mode":"fast"}}})
        );
        assert_eq!(
            shape_error(json!({"agent": {"tools": [], "mode": "medium"}, "max_iterations": 1})),
            json!({"type":"enum","loc":["body","agent","mode"],"msg":"Input should be 'fast' or 'slow'","input":"medium","ctx":{"expected":"'fast' or 'slow'"}})
        );
        assert_eq!(
            shape_error(
                json!({"agent": {"tools": [], "mode": "slow", "x": 1}, "max_iterations": 1})
            )["type"],
            "extra_forbidden"
        );
        assert_eq!(
            shape_error(json!({"agent": {"tools": [1], "mode": "slow"}, "max_iterations": 1}))
                ["loc"],
            json!(["body", "agent", "tools", 0])
        );
        assert_eq!(
            shape_error(json!({"agent": null, "max_iterations": 1}))["type"],
            "model_attributes_type"
        );
        assert_eq!(
            shape_error(json!({"agent": {"tools": [], "mode": "slow"}, "max_iterations": "a"}))
                ["type"],
            "int_type"
        );
    }
}
