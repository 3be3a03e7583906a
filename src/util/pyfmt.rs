//! Python's formatting of values that appear in texts clients and the model
//! see (`repr` of a string, a float or a JSON value, `{:g}`), so those texts
//! match the Python server's byte for byte.

/// Python's `repr(str)`.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa1).contains(&(c as u32)) || c == '\u{ad}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_unprintable(c) => {
                let v = c as u32;
                if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr` of a JSON value as pydantic shows it (`{'a': 1}`, `True`, `None`).
pub fn repr_json(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => repr_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => repr_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(repr_json).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr_json(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// pydantic's `input_value` in error texts: the repr, shortened to its
/// first 25 and last 24 characters when longer than 50.
pub fn truncated_repr(value: &serde_json::Value) -> String {
    let repr = repr_json(value);
    let n = repr.chars().count();
    if n <= 50 {
        return repr;
    }
    let head: String = repr.chars().take(25).collect();
    let tail: String = repr.chars().skip(n - 24).collect();
    format!("{head}...{tail}")
}

/// Python's type name of a JSON value (`dict`, `str`, `int`, …).
pub fn type_name(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The non-ASCII characters Python's `str.isprintable` rejects that are
/// likely to appear in practice: separators and format characters.
fn is_unprintable(c: char) -> bool {
    matches!(
        c as u32,
        0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f | 0x3000 | 0xfeff | 0xfff9..=0xfffb
    )
}

/// Splits a finite float into its shortest round-trip decimal digits and the
/// decimal exponent of the first digit (`1.5e-7` → `("15", -7)`).
fn shortest_digits(value: f64) -> (String, i32) {
    let sci = format!("{:e}", value.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

fn exponent_suffix(exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exp.abs())
}

/// Python's `repr(float)` (`1.0`, `0.5`, `1e-05`, `1e+16`).
pub fn repr_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .into();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    let (digits, exp) = shortest_digits(value);
    if (-4..16).contains(&exp) {
        let (int_part, frac_part) = if exp < 0 {
            let zeros = "0".repeat((-exp - 1) as usize);
            ("0".to_string(), format!("{zeros}{digits}"))
        } else {
            let point = exp as usize + 1;
            if digits.len() <= point {
                (
                    format!("{digits}{}", "0".repeat(point - digits.len())),
                    "0".to_string(),
                )
            } else {
                (digits[..point].to_string(), digits[point..].to_string())
            }
        };
        format!("{sign}{int_part}.{frac_part}")
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!("{sign}{mantissa}{}", exponent_suffix(exp))
    }
}

/// Python's `format(value, "g")`: six significant digits, trailing zeros removed.
pub fn general(value: f64) -> String {
    if !value.is_finite() {
        return repr_float(value);
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.5e}", value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let decimals = (5 - exp).max(0) as usize;
        let fixed = format!("{value:.decimals$}");
        trim_fraction(&fixed)
    } else {
        format!("{}{}", trim_fraction(mantissa), exponent_suffix(exp))
    }
}

fn trim_fraction(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.123, "123456789.123"),
            (1e-4, "0.0001"),
            (30.0, "30.0"),
            (0.30000000000000004, "0.30000000000000004"),
            (1e22, "1e+22"),
            (-2.5, "-2.5"),
            (1.5e-7, "1.5e-07"),
        ];
        for (value, expected) in cases {
            assert_eq!(repr_float(value), expected, "{value}");
        }
    }

    #[test]
    fn general_matches_python() {
        let cases = [
            (1.0, "1"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1e16, "1e+16"),
            (1e15, "1e+15"),
            (123456789.123, "1.23457e+08"),
            (1e-4, "0.0001"),
            (30.0, "30"),
            (0.30000000000000004, "0.3"),
            (270.0, "270"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
        ];
        for (value, expected) in cases {
            assert_eq!(general(value), expected, "{value}");
        }
    }

    #[test]
    fn json_repr_matches_python() {
        let value = serde_json::json!({"a": [1, 2.5, true, null, "x"]});
        assert_eq!(repr_json(&value), "{'a': [1, 2.5, True, None, 'x']}");
        assert_eq!(type_name(&value), "dict");
        assert_eq!(type_name(&serde_json::json!(1.5)), "float");
    }

    #[test]
    fn string_repr_matches_python() {
        assert_eq!(repr_str("a'b"), "\"a'b\"");
        assert_eq!(repr_str("a\"b"), "'a\"b'");
        assert_eq!(repr_str("a'\"b"), "'a\\'\"b'");
        assert_eq!(
            repr_str("tab\there\nnl\\ \x7f \u{80} é \u{2028} \0"),
            "'tab\\there\\nnl\\\\ \\x7f \\x80 é \\u2028 \\x00'"
        );
    }
}
