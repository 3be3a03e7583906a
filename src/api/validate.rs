//! A small pydantic-style validator over `serde_json::Value`.
//!
//! Request models are checked field by field and every problem is collected
//! (not just the first, as serde would), with the `type`, `loc` and `msg`
//! pydantic v2 uses for the same input in lax mode, so 422 bodies match the
//! Python server's. [`sanitize_input`] redacts secret-looking values in the
//! echoed `input` exactly as the Python server does.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::validation::{Loc, ValidationErrorItem};

/// A location under construction: `["body", "agent", "llm"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(Vec<Loc>);

impl Path {
    /// A root location (`"body"`, `"query"`, `"path"`).
    pub fn root(name: &str) -> Self {
        Path(vec![Loc::Key(name.to_string())])
    }

    /// The location of an object key below this one.
    pub fn key(&self, key: &str) -> Path {
        let mut v = self.0.clone();
        v.push(Loc::Key(key.to_string()));
        Path(v)
    }

    /// The location of a list index below this one.
    pub fn index(&self, i: usize) -> Path {
        let mut v = self.0.clone();
        v.push(Loc::Index(i));
        Path(v)
    }

    /// The location as the `loc` array of an error item.
    pub fn to_loc(&self) -> Vec<Loc> {
        self.0.clone()
    }
}

/// Collects validation errors.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<ValidationErrorItem>,
}

/// The lowercase strings pydantic's lax mode reads as booleans.
const TRUE_WORDS: [&str; 6] = ["1", "on", "t", "true", "y", "yes"];
const FALSE_WORDS: [&str; 6] = ["0", "off", "f", "false", "n", "no"];

impl Validator {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no error was recorded.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many errors were recorded so far (to tell whether a sub-check added any).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether nothing was recorded (same as [`Validator::is_ok`]).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The recorded errors.
    pub fn into_errors(self) -> Vec<ValidationErrorItem> {
        self.errors
    }

    /// `Ok(value)` when nothing was recorded, else the errors.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<ValidationErrorItem>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }

    /// Records an error; `input` is sanitised.
    pub fn error(
        &mut self,
        ty: &str,
        at: &Path,
        msg: impl Into<String>,
        input: &Value,
        ctx: Option<Value>,
    ) {
        self.errors.push(ValidationErrorItem::new(
            ty,
            at.to_loc(),
            msg,
            sanitize_input(input),
            ctx,
        ));
    }

    /// A `missing` error; `parent` is the object the field was missing from.
    pub fn missing(&mut self, at: &Path, parent: &Value) {
        self.error("missing", at, "Field required", parent, None);
    }

    /// A model validator's `ValueError`: `"Value error, <text>"`.
    pub fn value_error(&mut self, at: &Path, input: &Value, text: &str) {
        self.error(
            "value_error",
            at,
            format!("Value error, {text}"),
            input,
            Some(serde_json::json!({ "error": text })),
        );
    }

    /// An input that is not one of the allowed literals.
    pub fn literal_error(&mut self, at: &Path, input: &Value, allowed: &[&str]) {
        let expected = expected_list(allowed);
        self.error(
            "literal_error",
            at,
            format!("Input should be {expected}"),
            input,
            Some(serde_json::json!({ "expected": expected })),
        );
    }

    /// An input that is not one of an enum's values.
    pub fn enum_error(&mut self, at: &Path, input: &Value, allowed: &[&str]) {
        let expected = expected_list(allowed);
        self.error(
            "enum",
            at,
            format!("Input should be {expected}"),
            input,
            Some(serde_json::json!({ "expected": expected })),
        );
    }

    /// The value of a required key; records `missing` when absent.
    pub fn required<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        at: &Path,
    ) -> Option<&'a Value> {
        let v = obj.get(key);
        if v.is_none() {
            self.missing(&at.key(key), &Value::Object(obj.clone()));
        }
        v
    }

    /// An object (pydantic model): `model_type` naming `class_name` otherwise.
    pub fn model<'a>(
        &mut self,
        v: &'a Value,
        at: &Path,
        class_name: &str,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => {
                self.error(
                    "model_type",
                    at,
                    format!("Input should be a valid dictionary or instance of {class_name}"),
                    v,
                    Some(serde_json::json!({ "class_name": class_name })),
                );
                None
            }
        }
    }

    /// An object for a discriminated union member (`model_attributes_type` otherwise).
    pub fn attributes<'a>(&mut self, v: &'a Value, at: &Path) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => {
                self.error(
                    "model_attributes_type",
                    at,
                    "Input should be a valid dictionary or object to extract fields from",
                    v,
                    None,
                );
                None
            }
        }
    }

    /// A dict (`dict_type` otherwise).
    pub fn dict<'a>(&mut self, v: &'a Value, at: &Path) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => {
                self.error(
                    "dict_type",
                    at,
                    "Input should be a valid dictionary",
                    v,
                    None,
                );
                None
            }
        }
    }

    /// A list (`list_type` otherwise).
    pub fn list<'a>(&mut self, v: &'a Value, at: &Path) -> Option<&'a Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            _ => {
                self.error("list_type", at, "Input should be a valid list", v, None);
                None
            }
        }
    }

    /// A string (`string_type` otherwise).
    pub fn string(&mut self, v: &Value, at: &Path) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.error("string_type", at, "Input should be a valid string", v, None);
                None
            }
        }
    }

    /// A string or null.
    pub fn opt_string(&mut self, v: &Value, at: &Path) -> Option<Option<String>> {
        if v.is_null() {
            return Some(None);
        }
        self.string(v, at).map(Some)
    }

    /// A boolean in lax mode (`true`, `1`, `"yes"`, …).
    pub fn boolean(&mut self, v: &Value, at: &Path) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_i64() == Some(0) || n.as_f64() == Some(0.0) => Some(false),
            Value::Number(n) if n.as_i64() == Some(1) || n.as_f64() == Some(1.0) => Some(true),
            Value::String(s) => {
                let l = s.trim().to_ascii_lowercase();
                if TRUE_WORDS.contains(&l.as_str()) {
                    Some(true)
                } else if FALSE_WORDS.contains(&l.as_str()) {
                    Some(false)
                } else {
                    self.error(
                        "bool_parsing",
                        at,
                        "Input should be a valid boolean, unable to interpret input",
                        v,
                        None,
                    );
                    None
                }
            }
            Value::Number(_) => {
                self.error(
                    "bool_parsing",
                    at,
                    "Input should be a valid boolean, unable to interpret input",
                    v,
                    None,
                );
                None
            }
            _ => {
                self.error("bool_type", at, "Input should be a valid boolean", v, None);
                None
            }
        }
    }

    /// An integer in lax mode (whole floats and numeric strings accepted).
    pub fn integer(&mut self, v: &Value, at: &Path) -> Option<i64> {
        match v {
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Some(i)
                } else if let Some(f) = n.as_f64() {
                    if f.fract() == 0.0 && f.abs() < 9.0e15 {
                        Some(f as i64)
                    } else {
                        self.error(
                            "int_from_float",
                            at,
                            "Input should be a valid integer, got a number with a fractional part",
                            v,
                            None,
                        );
                        None
                    }
                } else {
                    self.error("int_type", at, "Input should be a valid integer", v, None);
                    None
                }
            }
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => {
                    self.error(
                        "int_parsing",
                        at,
                        "Input should be a valid integer, unable to parse string as an integer",
                        v,
                        None,
                    );
                    None
                }
            },
            _ => {
                self.error("int_type", at, "Input should be a valid integer", v, None);
                None
            }
        }
    }

    /// A number in lax mode (numeric strings accepted).
    pub fn number(&mut self, v: &Value, at: &Path) -> Option<f64> {
        match v {
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) => Some(f),
                Err(_) => {
                    self.error(
                        "float_parsing",
                        at,
                        "Input should be a valid number, unable to parse string as a number",
                        v,
                        None,
                    );
                    None
                }
            },
            _ => {
                self.error("float_type", at, "Input should be a valid number", v, None);
                None
            }
        }
    }

    /// A UUID in any form Python accepts.
    pub fn uuid(&mut self, v: &Value, at: &Path) -> Option<Uuid> {
        match v {
            Value::String(s) => match Uuid::parse_str(s) {
                Ok(u) => Some(u),
                Err(e) => {
                    let text = e.to_string();
                    self.error(
                        "uuid_parsing",
                        at,
                        format!("Input should be a valid UUID, {text}"),
                        v,
                        Some(serde_json::json!({ "error": text })),
                    );
                    None
                }
            },
            _ => {
                self.error(
                    "uuid_type",
                    at,
                    "UUID input should be a string, bytes or UUID object",
                    v,
                    None,
                );
                None
            }
        }
    }

    /// `>= ge` for integers (`greater_than_equal`).
    pub fn check_ge(&mut self, n: i64, ge: i64, v: &Value, at: &Path) -> bool {
        if n < ge {
            self.error(
                "greater_than_equal",
                at,
                format!("Input should be greater than or equal to {ge}"),
                v,
                Some(serde_json::json!({ "ge": ge })),
            );
            return false;
        }
        true
    }

    /// `> gt` for integers (`greater_than`).
    pub fn check_gt(&mut self, n: i64, gt: i64, v: &Value, at: &Path) -> bool {
        if n <= gt {
            self.error(
                "greater_than",
                at,
                format!("Input should be greater than {gt}"),
                v,
                Some(serde_json::json!({ "gt": gt })),
            );
            return false;
        }
        true
    }

    /// `<= le` for integers (`less_than_equal`).
    pub fn check_le(&mut self, n: i64, le: i64, v: &Value, at: &Path) -> bool {
        if n > le {
            self.error(
                "less_than_equal",
                at,
                format!("Input should be less than or equal to {le}"),
                v,
                Some(serde_json::json!({ "le": le })),
            );
            return false;
        }
        true
    }

    /// String length bounds in characters (`string_too_short` / `string_too_long`).
    pub fn check_len(
        &mut self,
        s: &str,
        min: Option<usize>,
        max: Option<usize>,
        v: &Value,
        at: &Path,
    ) -> bool {
        let n = s.chars().count();
        if let Some(min) = min {
            if n < min {
                let unit = if min == 1 { "character" } else { "characters" };
                self.error(
                    "string_too_short",
                    at,
                    format!("String should have at least {min} {unit}"),
                    v,
                    Some(serde_json::json!({ "min_length": min })),
                );
                return false;
            }
        }
        if let Some(max) = max {
            if n > max {
                let unit = if max == 1 { "character" } else { "characters" };
                self.error(
                    "string_too_long",
                    at,
                    format!("String should have at most {max} {unit}"),
                    v,
                    Some(serde_json::json!({ "max_length": max })),
                );
                return false;
            }
        }
        true
    }

    /// A float bound (`greater_than_equal` etc. with float context).
    pub fn check_float(&mut self, f: f64, bound: FloatBound, v: &Value, at: &Path) -> bool {
        let (ok, ty, word, key, b) = match bound {
            FloatBound::Ge(b) => (
                f >= b,
                "greater_than_equal",
                "greater than or equal to",
                "ge",
                b,
            ),
            FloatBound::Gt(b) => (f > b, "greater_than", "greater than", "gt", b),
            FloatBound::Le(b) => (f <= b, "less_than_equal", "less than or equal to", "le", b),
            FloatBound::Lt(b) => (f < b, "less_than", "less than", "lt", b),
        };
        if !ok {
            let shown = number_json(b);
            self.error(
                ty,
                at,
                format!("Input should be {word} {shown}"),
                v,
                Some(serde_json::json!({ key: shown })),
            );
        }
        ok
    }
}

/// A bound on a float field.
#[derive(Clone, Copy, Debug)]
pub enum FloatBound {
    /// `>=`
    Ge(f64),
    /// `>`
    Gt(f64),
    /// `<=`
    Le(f64),
    /// `<`
    Lt(f64),
}

/// A bound as pydantic prints it: `0` for an integral bound, `0.5` otherwise.
fn number_json(b: f64) -> Value {
    if b.fract() == 0.0 && b.abs() < 9.0e15 {
        Value::from(b as i64)
    } else {
        Value::from(b)
    }
}

/// `'a', 'b' or 'c'`, the way pydantic lists allowed values.
pub fn expected_list(allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

/// The "Unknown kind" message of the Python discriminated unions.
pub fn unknown_kind_message(kind: &str, base: &str, allowed: &[&str]) -> String {
    let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    format!(
        "Unknown kind '{kind}' for {base}; Expected one of: [{}]",
        list.join(", ")
    )
}

/// Key-name fragments that mark a value as secret (the Python server's list).
const SECRET_KEY_PATTERNS: [&str; 8] = [
    "AUTHORIZATION",
    "COOKIE",
    "CREDENTIAL",
    "KEY",
    "PASSWORD",
    "SECRET",
    "SESSION",
    "TOKEN",
];

/// Whether a key name looks like it holds a secret (`api_key`, `X-Auth-Token`, …).
pub fn is_secret_key(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    SECRET_KEY_PATTERNS.iter().any(|p| upper.contains(p))
}

fn redact_all(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), redact_all(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(redact_all).collect()),
        _ => Value::String("<redacted>".into()),
    }
}

/// Redacts secret-looking values before an input is echoed in a 422: values
/// under secret-looking keys become `"<redacted>"`, and everything under
/// `env`, `environment` and `headers` is redacted leaf by leaf.
pub fn sanitize_input(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let out = if matches!(lower.as_str(), "env" | "environment" | "headers") {
                        redact_all(v)
                    } else if is_secret_key(k) {
                        Value::String("<redacted>".into())
                    } else {
                        sanitize_input(v)
                    };
                    (k.clone(), out)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(sanitize_input).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_lax_mode_errors_like_pydantic() {
        let mut v = Validator::new();
        let at = Path::root("body");
        assert_eq!(v.integer(&json!("7"), &at.key("a")), Some(7));
        assert_eq!(v.integer(&json!(3.0), &at.key("a")), Some(3));
        assert_eq!(v.integer(&json!(1.5), &at.key("b")), None);
        assert_eq!(v.integer(&json!("abc"), &at.key("c")), None);
        assert_eq!(v.boolean(&json!("yes"), &at.key("d")), Some(true));
        assert_eq!(v.boolean(&json!("maybe"), &at.key("e")), None);
        assert_eq!(v.uuid(&json!("not-a-uuid"), &at.key("f")), None);
        let errs = serde_json::to_value(v.into_errors()).unwrap();
        assert_eq!(
            errs,
            json!([
                {"type":"int_from_float","loc":["body","b"],"msg":"Input should be a valid integer, got a number with a fractional part","input":1.5},
                {"type":"int_parsing","loc":["body","c"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"},
                {"type":"bool_parsing","loc":["body","e"],"msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"},
                {"type":"uuid_parsing","loc":["body","f"],"msg":"Input should be a valid UUID, invalid character: found `n` at 0","input":"not-a-uuid","ctx":{"error":"invalid character: found `n` at 0"}}
            ])
        );
    }

    #[test]
    fn sanitizes_like_the_python_server() {
        let input = json!({"llm":{"api_key":"sk","model":"m"},"tags":{"Bad-Key":"x"},"mcp":{"env":{"A":"b","n":[1]}}});
        assert_eq!(
            sanitize_input(&input),
            json!({"llm":{"api_key":"<redacted>","model":"m"},"tags":{"Bad-Key":"<redacted>"},"mcp":{"env":{"A":"<redacted>","n":["<redacted>"]}}})
        );
        assert_eq!(expected_list(&["a", "b", "c"]), "'a', 'b' or 'c'");
        assert_eq!(expected_list(&["image"]), "'image'");
    }

    #[test]
    fn bounds_print_like_pydantic() {
        let mut v = Validator::new();
        let at = Path::root("query").key("limit");
        assert!(!v.check_gt(0, 0, &json!("0"), &at));
        assert!(!v.check_le(101, 100, &json!("101"), &at));
        assert!(!v.check_float(1.5, FloatBound::Lt(1.0), &json!(1.5), &at));
        let errs = serde_json::to_value(v.into_errors()).unwrap();
        assert_eq!(errs[0]["msg"], "Input should be greater than 0");
        assert_eq!(errs[1]["ctx"], json!({"le":100}));
        assert_eq!(errs[2]["msg"], "Input should be less than 1");
    }
}
