//! Python's `json.dumps` text form.
//!
//! When a provider returns tool arguments as an object (Anthropic `input`),
//! the SDK stores them as `json.dumps(input)`: `", "` and `": "` separators
//! and non-ASCII escaped as `\uXXXX`. The text ends up in
//! `ActionEvent.tool_call.arguments` and is replayed to the model, so it is
//! rendered the same way here.

use serde_json::Value;

/// `json.dumps(value)` with Python's defaults.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(k, out);
                out.push_str(": ");
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_output() {
        let v: Value = serde_json::from_str(
            r#"{"command":"echo hi","n":[1,2.5,true,null],"nested":{"k":"caf\u00e9 \ud83d\ude00"},"ctl":"a\tb\u0001"}"#,
        )
        .unwrap();
        // python3 -c 'import json;print(json.dumps({...}))'
        assert_eq!(
            dumps(&v),
            r#"{"command": "echo hi", "n": [1, 2.5, true, null], "nested": {"k": "caf\u00e9 \ud83d\ude00"}, "ctl": "a\tb\u0001"}"#
        );
        assert_eq!(dumps(&serde_json::json!({})), "{}");
        assert_eq!(dumps(&serde_json::json!("\u{7f}")), "\"\\u007f\"");
    }
}
