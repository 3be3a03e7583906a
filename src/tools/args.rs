//! Validation of the model's tool arguments into action objects.
//!
//! The Python server validates arguments with pydantic (lax mode, unknown
//! keys forbidden) and shows the model pydantic's error text. [`ArgReader`]
//! applies the same coercions and produces the same multi-line message:
//!
//! ```text
//! 1 validation error for FileEditorAction
//! insert_line
//!   Input should be greater than or equal to 0 [type=greater_than_equal, input_value=-1, input_type=int]
//!     For further information visit https://errors.pydantic.dev/2.14/v/greater_than_equal
//! ```

use serde_json::{Map, Value};

use crate::util::pyfmt;

/// One pydantic error line.
struct ArgError {
    loc: String,
    msg: String,
    kind: &'static str,
    input: Value,
}

/// Reads the fields of one action model in declaration order, collecting
/// every error the way pydantic does, then reports extra keys.
pub(crate) struct ArgReader<'a> {
    model: &'static str,
    args: &'a Map<String, Value>,
    known: Vec<&'static str>,
    errors: Vec<ArgError>,
}

impl<'a> ArgReader<'a> {
    /// Starts reading `args` for the model (action class) `model`.
    pub(crate) fn new(model: &'static str, args: &'a Map<String, Value>) -> Self {
        ArgReader {
            model,
            args,
            known: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn take(&mut self, name: &'static str) -> Option<&'a Value> {
        self.known.push(name);
        self.args.get(name)
    }

    fn missing(&mut self, name: &str) {
        self.errors.push(ArgError {
            loc: name.to_string(),
            msg: "Field required".into(),
            kind: "missing",
            input: Value::Object(self.args.clone()),
        });
    }

    fn record(&mut self, loc: String, err: (String, &'static str), input: &Value) {
        self.errors.push(ArgError {
            loc,
            msg: err.0,
            kind: err.1,
            input: input.clone(),
        });
    }

    /// A required string field.
    pub(crate) fn required_str(&mut self, name: &'static str) -> Option<String> {
        match self.take(name) {
            None => {
                self.missing(name);
                None
            }
            Some(v) => self.string_value(name.to_string(), v),
        }
    }

    /// An optional string field (`None` when absent or null).
    pub(crate) fn optional_str(&mut self, name: &'static str) -> Option<String> {
        match self.take(name) {
            None | Some(Value::Null) => None,
            Some(v) => self.string_value(name.to_string(), v),
        }
    }

    fn string_value(&mut self, loc: String, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.record(loc, string_type(), v);
                None
            }
        }
    }

    /// A string field restricted to `allowed`; `default` applies when absent.
    pub(crate) fn literal(
        &mut self,
        name: &'static str,
        allowed: &[&str],
        default: Option<&str>,
    ) -> Option<String> {
        match self.take(name) {
            None => match default {
                Some(d) => Some(d.to_string()),
                None => {
                    self.missing(name);
                    None
                }
            },
            Some(v) => self.literal_value(name.to_string(), v, allowed),
        }
    }

    fn literal_value(&mut self, loc: String, v: &Value, allowed: &[&str]) -> Option<String> {
        match v.as_str() {
            Some(s) if allowed.contains(&s) => Some(s.to_string()),
            _ => {
                self.record(loc, literal_error(allowed), v);
                None
            }
        }
    }

    /// An optional integer field with an optional lower bound.
    pub(crate) fn optional_int(&mut self, name: &'static str, ge: Option<i64>) -> Option<i64> {
        let v = match self.take(name) {
            None | Some(Value::Null) => return None,
            Some(v) => v,
        };
        let n = match lax_int(v) {
            Ok(n) => n,
            Err(e) => {
                self.record(name.to_string(), e, v);
                return None;
            }
        };
        match ge {
            Some(min) if n < min => {
                self.record(
                    name.to_string(),
                    (
                        format!("Input should be greater than or equal to {min}"),
                        "greater_than_equal",
                    ),
                    v,
                );
                None
            }
            _ => Some(n),
        }
    }

    /// An optional list of integers.
    pub(crate) fn optional_int_list(&mut self, name: &'static str) -> Option<Vec<i64>> {
        let v = match self.take(name) {
            None | Some(Value::Null) => return None,
            Some(v) => v,
        };
        let Some(items) = v.as_array() else {
            self.record(name.to_string(), list_type(), v);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match lax_int(item) {
                Ok(n) => out.push(n),
                Err(e) => {
                    ok = false;
                    self.record(format!("{name}.{i}"), e, item);
                }
            }
        }
        ok.then_some(out)
    }

    /// An optional list of objects, each read by `item` (which receives the
    /// item's location prefix and reports into the same error list). Absent
    /// means an empty list.
    pub(crate) fn object_list<T>(
        &mut self,
        name: &'static str,
        item_model: &str,
        mut item: impl FnMut(&mut ItemReader<'_, '_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let v = match self.take(name) {
            None => return Some(Vec::new()),
            Some(v) => v,
        };
        let Some(items) = v.as_array() else {
            self.record(name.to_string(), list_type(), v);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, value) in items.iter().enumerate() {
            let loc = format!("{name}.{i}");
            let Some(obj) = value.as_object() else {
                ok = false;
                self.record(
                    loc,
                    (
                        format!("Input should be a valid dictionary or instance of {item_model}"),
                        "model_type",
                    ),
                    value,
                );
                continue;
            };
            let before = self.errors.len();
            let mut reader = ItemReader {
                parent: self,
                loc,
                obj,
            };
            let parsed = item(&mut reader);
            match parsed {
                Some(t) if self.errors.len() == before => out.push(t),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Reports unknown keys and returns the collected errors as pydantic's text.
    pub(crate) fn finish(mut self) -> Result<(), String> {
        for (key, value) in self.args {
            if key == "kind" && value.as_str() == Some(self.model) {
                continue;
            }
            if !self.known.contains(&key.as_str()) {
                self.errors.push(ArgError {
                    loc: key.clone(),
                    msg: "Extra inputs are not permitted".into(),
                    kind: "extra_forbidden",
                    input: value.clone(),
                });
            }
        }
        if self.errors.is_empty() {
            return Ok(());
        }
        let n = self.errors.len();
        let mut out = format!(
            "{n} validation error{} for {}",
            if n == 1 { "" } else { "s" },
            self.model
        );
        for e in &self.errors {
            out.push_str(&format!(
                "\n{}\n  {} [type={}, input_value={}, input_type={}]\n    For further information visit https://errors.pydantic.dev/2.14/v/{}",
                e.loc,
                e.msg,
                e.kind,
                pyfmt::truncated_repr(&e.input),
                pyfmt::type_name(&e.input),
                e.kind
            ));
        }
        Err(out)
    }
}

/// Reads the fields of one object inside a list (a nested pydantic model,
/// which ignores unknown keys).
pub(crate) struct ItemReader<'r, 'a> {
    parent: &'r mut ArgReader<'a>,
    loc: String,
    obj: &'a Map<String, Value>,
}

impl ItemReader<'_, '_> {
    /// The raw value of a field.
    pub(crate) fn raw(&self, name: &str) -> Option<&Value> {
        self.obj.get(name)
    }

    /// A required string field.
    pub(crate) fn required_str(&mut self, name: &str) -> Option<String> {
        let loc = format!("{}.{name}", self.loc);
        match self.obj.get(name) {
            None => {
                self.parent.errors.push(ArgError {
                    loc,
                    msg: "Field required".into(),
                    kind: "missing",
                    input: Value::Object(self.obj.clone()),
                });
                None
            }
            Some(v) => self.parent.string_value(loc, v),
        }
    }

    /// A string field with a default when absent.
    pub(crate) fn str_or(&mut self, name: &str, default: &str) -> Option<String> {
        match self.obj.get(name) {
            None => Some(default.to_string()),
            Some(v) => self.parent.string_value(format!("{}.{name}", self.loc), v),
        }
    }

    /// Validates `value` (already normalised by the caller) against `allowed`;
    /// the error shows `original`.
    pub(crate) fn literal_checked(
        &mut self,
        name: &str,
        value: Option<&str>,
        original: &Value,
        allowed: &[&str],
    ) -> Option<String> {
        match value {
            Some(s) if allowed.contains(&s) => Some(s.to_string()),
            _ => {
                let loc = format!("{}.{name}", self.loc);
                self.parent.record(loc, literal_error(allowed), original);
                None
            }
        }
    }
}

fn string_type() -> (String, &'static str) {
    ("Input should be a valid string".into(), "string_type")
}

fn list_type() -> (String, &'static str) {
    ("Input should be a valid list".into(), "list_type")
}

fn literal_error(allowed: &[&str]) -> (String, &'static str) {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    let text = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    };
    (format!("Input should be {text}"), "literal_error")
}

/// Pydantic's lax integer conversion (Python mode): ints, integral floats,
/// booleans and numeric strings.
fn lax_int(v: &Value) -> Result<i64, (String, &'static str)> {
    const INT_TYPE: &str = "Input should be a valid integer";
    match v {
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            let f = n.as_f64().unwrap_or(f64::NAN);
            if !f.is_finite() {
                Err(("Input should be a finite number".into(), "finite_number"))
            } else if f.fract() != 0.0 {
                Err((
                    format!("{INT_TYPE}, got a number with a fractional part"),
                    "int_from_float",
                ))
            } else if f.abs() < 9.2e18 {
                // Integral and within i64 range, checked just above.
                Ok(f as i64)
            } else {
                Err((
                    "Unable to parse input string as an integer, exceeded maximum size".into(),
                    "int_parsing_size",
                ))
            }
        }
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            (
                format!("{INT_TYPE}, unable to parse string as an integer"),
                "int_parsing",
            )
        }),
        _ => Err((INT_TYPE.into(), "int_type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn missing_fields_are_listed_in_declaration_order() {
        let a = args(json!({}));
        let mut r = ArgReader::new("FileEditorAction", &a);
        r.literal("command", &["view", "create"], None);
        r.required_str("path");
        let err = r.finish().unwrap_err();
        assert_eq!(
            err,
            "2 validation errors for FileEditorAction\ncommand\n  Field required [type=missing, input_value={}, input_type=dict]\n    For further information visit https://errors.pydantic.dev/2.14/v/missing\npath\n  Field required [type=missing, input_value={}, input_type=dict]\n    For further information visit https://errors.pydantic.dev/2.14/v/missing"
        );
    }

    #[test]
    fn literal_and_bound_errors_match_pydantic() {
        let a = args(json!({"command": "foo", "insert_line": -1}));
        let mut r = ArgReader::new("FileEditorAction", &a);
        r.literal(
            "command",
            &["view", "create", "str_replace", "insert", "undo_edit"],
            None,
        );
        r.optional_int("insert_line", Some(0));
        let err = r.finish().unwrap_err();
        assert!(err.starts_with("2 validation errors for FileEditorAction\ncommand\n  Input should be 'view', 'create', 'str_replace', 'insert' or 'undo_edit' [type=literal_error, input_value='foo', input_type=str]"));
        assert!(err.contains("insert_line\n  Input should be greater than or equal to 0 [type=greater_than_equal, input_value=-1, input_type=int]"));
    }

    #[test]
    fn ints_are_coerced_like_pydantic_lax_mode() {
        let a = args(json!({"a": "5", "b": true, "c": 3.0, "d": 2.5}));
        let mut r = ArgReader::new("M", &a);
        assert_eq!(r.optional_int("a", None), Some(5));
        assert_eq!(r.optional_int("b", None), Some(1));
        assert_eq!(r.optional_int("c", None), Some(3));
        assert_eq!(r.optional_int("d", None), None);
        let err = r.finish().unwrap_err();
        assert!(err.contains("Input should be a valid integer, got a number with a fractional part [type=int_from_float, input_value=2.5, input_type=float]"));
    }

    #[test]
    fn extra_keys_are_forbidden_and_long_inputs_shortened() {
        let long = "a".repeat(100);
        let a = args(json!({"path": long, "bogus": 1}));
        let mut r = ArgReader::new("M", &a);
        r.optional_int("path", None);
        let err = r.finish().unwrap_err();
        assert!(err.contains(
            "input_value='aaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaaaaaaaaaaaaa', input_type=str]"
        ));
        assert!(err.contains(
            "bogus\n  Extra inputs are not permitted [type=extra_forbidden, input_value=1, input_type=int]"
        ));
    }

    #[test]
    fn python_reprs() {
        assert_eq!(pyfmt::repr_str("ab'c\"\n"), "'ab\\'c\"\\n'");
        assert_eq!(pyfmt::repr_str("it's"), "\"it's\"");
        assert_eq!(pyfmt::repr_json(&json!(1e20)), "1e+20");
        assert_eq!(pyfmt::repr_json(&json!(5.0)), "5.0");
        assert_eq!(
            pyfmt::repr_json(&json!({"k": [1, null, true]})),
            "{'k': [1, None, True]}"
        );
    }
}
