//! Argument validation with pydantic's lax rules and error text.
//!
//! The model sees validation failures verbatim, so the messages follow
//! pydantic 2 (`1 validation error for BrowserClickAction\nindex\n  Field
//! required [type=missing, …]`), including its coercions: `"3"` is an
//! integer, `"yes"` a boolean, `2.0` an integer.

use serde_json::{Map, Number, Value};

use crate::util::pyfmt;

/// The accepted type of one action field.
#[derive(Clone, Copy, Debug)]
pub enum FieldType {
    Str,
    Bool,
    /// An integer no smaller than `min`.
    Int {
        min: i64,
    },
    /// One of the listed strings.
    Literal(&'static [&'static str]),
    /// A JSON object.
    Dict,
}

/// One field of an action model.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    /// `None` for required fields.
    pub default: Option<Value>,
    /// The schema description shown to the model.
    pub description: &'static str,
}

/// The pydantic version named in its error links.
const PYDANTIC_DOCS: &str = "https://errors.pydantic.dev/2.14/v/";

struct Problem {
    loc: String,
    msg: String,
    kind: &'static str,
    input: Value,
}

/// Validates `args` against `fields` into the action object (fields in model
/// order, defaults filled, `kind` last), or pydantic's error text.
pub fn validate(
    action_kind: &str,
    fields: &[Field],
    args: &Map<String, Value>,
) -> Result<Value, String> {
    let mut out = Map::new();
    let mut problems = Vec::new();
    for field in fields {
        match args.get(field.name) {
            None => match &field.default {
                Some(default) => {
                    out.insert(field.name.to_string(), default.clone());
                }
                None => problems.push(Problem {
                    loc: field.name.to_string(),
                    msg: "Field required".into(),
                    kind: "missing",
                    input: Value::Object(args.clone()),
                }),
            },
            Some(value) => match coerce(field.ty, value) {
                Ok(v) => {
                    out.insert(field.name.to_string(), v);
                }
                Err((msg, kind)) => problems.push(Problem {
                    loc: field.name.to_string(),
                    msg,
                    kind,
                    input: value.clone(),
                }),
            },
        }
    }
    for (key, value) in args {
        if !fields.iter().any(|f| f.name == key) {
            problems.push(Problem {
                loc: key.clone(),
                msg: "Extra inputs are not permitted".into(),
                kind: "extra_forbidden",
                input: value.clone(),
            });
        }
    }
    if problems.is_empty() {
        out.insert("kind".into(), Value::String(action_kind.to_string()));
        return Ok(Value::Object(out));
    }
    let count = problems.len();
    let mut text = format!(
        "{count} validation error{} for {action_kind}",
        if count == 1 { "" } else { "s" }
    );
    for p in problems {
        text.push_str(&format!(
            "\n{}\n  {} [type={}, input_value={}, input_type={}]\n    For further information visit {PYDANTIC_DOCS}{}",
            p.loc,
            p.msg,
            p.kind,
            pyfmt::truncated_repr(&p.input),
            pyfmt::type_name(&p.input),
            p.kind
        ));
    }
    Err(text)
}

type CoerceError = (String, &'static str);

fn coerce(ty: FieldType, value: &Value) -> Result<Value, CoerceError> {
    match ty {
        FieldType::Str => match value {
            Value::String(_) => Ok(value.clone()),
            _ => Err(("Input should be a valid string".into(), "string_type")),
        },
        FieldType::Bool => coerce_bool(value).map(Value::Bool),
        FieldType::Int { min } => {
            let n = coerce_int(value)?;
            if n < min {
                return Err((
                    format!("Input should be greater than or equal to {min}"),
                    "greater_than_equal",
                ));
            }
            Ok(Value::Number(Number::from(n)))
        }
        FieldType::Literal(options) => match value {
            Value::String(s) if options.contains(&s.as_str()) => Ok(value.clone()),
            _ => {
                let quoted: Vec<String> = options.iter().map(|o| format!("'{o}'")).collect();
                let msg = match quoted.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("Input should be {} or {last}", rest.join(", "))
                    }
                    _ => format!("Input should be {}", quoted.join("")),
                };
                Err((msg, "literal_error"))
            }
        },
        FieldType::Dict => match value {
            Value::Object(_) => Ok(value.clone()),
            _ => Err(("Input should be a valid dictionary".into(), "dict_type")),
        },
    }
}

fn coerce_bool(value: &Value) -> Result<bool, CoerceError> {
    let unable = || {
        (
            "Input should be a valid boolean, unable to interpret input".to_string(),
            "bool_parsing",
        )
    };
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Ok(false),
            Some(1.0) => Ok(true),
            _ => Err(unable()),
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
            _ => Err(unable()),
        },
        _ => Err(("Input should be a valid boolean".into(), "bool_type")),
    }
}

fn coerce_int(value: &Value) -> Result<i64, CoerceError> {
    let int_type = || ("Input should be a valid integer".to_string(), "int_type");
    match value {
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
                Some(f) if f.is_finite() => Err((
                    "Input should be a valid integer, got a number with a fractional part".into(),
                    "int_from_float",
                )),
                _ => Err(int_type()),
            }
        }
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            (
                "Input should be a valid integer, unable to parse string as an integer".into(),
                "int_parsing",
            )
        }),
        _ => Err(int_type()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn click_fields() -> Vec<Field> {
        vec![
            Field {
                name: "index",
                ty: FieldType::Int { min: 0 },
                default: None,
                description: "",
            },
            Field {
                name: "new_tab",
                ty: FieldType::Bool,
                default: Some(json!(false)),
                description: "",
            },
        ]
    }

    fn run(args: Value) -> Result<Value, String> {
        validate(
            "BrowserClickAction",
            &click_fields(),
            args.as_object().unwrap(),
        )
    }

    #[test]
    fn fills_defaults_and_puts_kind_last() {
        let action = run(json!({"index": "3"})).unwrap();
        assert_eq!(
            serde_json::to_string(&action).unwrap(),
            r#"{"index":3,"new_tab":false,"kind":"BrowserClickAction"}"#
        );
        assert_eq!(
            run(json!({"index": 2.0, "new_tab": "yes"})).unwrap()["new_tab"],
            json!(true)
        );
    }

    #[test]
    fn reports_like_pydantic() {
        assert_eq!(
            run(json!({})).unwrap_err(),
            "1 validation error for BrowserClickAction\nindex\n  Field required [type=missing, input_value={}, input_type=dict]\n    For further information visit https://errors.pydantic.dev/2.14/v/missing"
        );
        assert_eq!(
            run(json!({"index": -1})).unwrap_err(),
            "1 validation error for BrowserClickAction\nindex\n  Input should be greater than or equal to 0 [type=greater_than_equal, input_value=-1, input_type=int]\n    For further information visit https://errors.pydantic.dev/2.14/v/greater_than_equal"
        );
        let long = run(json!({"index": "x".repeat(120)})).unwrap_err();
        assert!(long.contains(
            "[type=int_parsing, input_value='xxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxx', input_type=str]"
        ));
        let many =
            run(json!({"new_tab": "maybe", "foo": {"a": [1, 2.5, null, true]}})).unwrap_err();
        assert!(many.starts_with("3 validation errors for BrowserClickAction\nindex\n  Field required [type=missing, input_value={'new_tab': 'maybe', 'foo...: [1, 2.5, None, True]}}, input_type=dict]"));
        assert!(many.contains("\nnew_tab\n  Input should be a valid boolean, unable to interpret input [type=bool_parsing, input_value='maybe', input_type=str]"));
        assert!(many.contains("\nfoo\n  Extra inputs are not permitted [type=extra_forbidden, input_value={'a': [1, 2.5, None, True]}, input_type=dict]"));
    }

    #[test]
    fn literal_and_dict_messages() {
        let fields = [Field {
            name: "direction",
            ty: FieldType::Literal(&["up", "down"]),
            default: Some(json!("down")),
            description: "",
        }];
        let err = validate(
            "BrowserScrollAction",
            &fields,
            json!({"direction": "left"}).as_object().unwrap(),
        )
        .unwrap_err();
        assert!(err.contains("Input should be 'up' or 'down' [type=literal_error, input_value='left', input_type=str]"));
        let fields = [Field {
            name: "storage_state",
            ty: FieldType::Dict,
            default: None,
            description: "",
        }];
        let err = validate(
            "BrowserSetStorageAction",
            &fields,
            json!({"storage_state": [1]}).as_object().unwrap(),
        )
        .unwrap_err();
        assert!(err.contains(
            "Input should be a valid dictionary [type=dict_type, input_value=[1], input_type=list]"
        ));
    }
}
