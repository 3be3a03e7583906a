//! The bash service's wire types: requests, events and pages, serialised
//! exactly as the Python server does (ids as 32-hex, timestamps UTC with `Z`,
//! nulls included, `kind` last).

use jiff::Timestamp;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::api::validation::{Loc, ValidationErrorItem};
use crate::util::{ids, pyfmt, time};

/// The default (and Python's) limit of a command's run time, in seconds.
pub const DEFAULT_TIMEOUT: i64 = 300;

/// A request to run a command (`POST …/execute_bash_command`,
/// `…/start_bash_command`, or a frame on `/sockets/bash-events`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecuteBashRequest {
    /// The command, run with `/bin/sh -c`.
    pub command: String,
    /// Working directory; the service default (or the server's) when absent.
    pub cwd: Option<String>,
    /// Seconds the command may run before its process group is killed.
    pub timeout: i64,
}

fn item(error_type: &str, field: &str, msg: &str, input: &Value) -> ValidationErrorItem {
    ValidationErrorItem::new(
        error_type,
        vec![Loc::from("body"), Loc::from(field)],
        msg,
        input.clone(),
        None,
    )
}

/// Pydantic's lax integer parsing; the error is its type and message.
fn parse_int(value: &Value) -> Result<i64, (&'static str, &'static str)> {
    match value {
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
                _ => Err((
                    "int_from_float",
                    "Input should be a valid integer, got a number with a fractional part",
                )),
            }
        }
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            (
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            )
        }),
        _ => Err(("int_type", "Input should be a valid integer")),
    }
}

impl ExecuteBashRequest {
    /// A request with the default timeout.
    pub fn new(command: impl Into<String>) -> Self {
        ExecuteBashRequest {
            command: command.into(),
            cwd: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Validates a JSON body like pydantic does. Error locations start with
    /// `"body"` (as FastAPI reports them); unknown fields are ignored.
    pub fn from_json(value: &Value) -> Result<Self, Vec<ValidationErrorItem>> {
        let Value::Object(map) = value else {
            return Err(vec![ValidationErrorItem::new(
                "model_attributes_type",
                vec![Loc::from("body")],
                "Input should be a valid dictionary or object to extract fields from",
                value.clone(),
                None,
            )]);
        };
        let mut errors = Vec::new();
        let command = match map.get("command") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                errors.push(item(
                    "string_type",
                    "command",
                    "Input should be a valid string",
                    other,
                ));
                String::new()
            }
            None => {
                errors.push(ValidationErrorItem::missing(
                    vec![Loc::from("body"), Loc::from("command")],
                    value.clone(),
                ));
                String::new()
            }
        };
        let cwd = match map.get("cwd") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errors.push(item(
                    "string_type",
                    "cwd",
                    "Input should be a valid string",
                    other,
                ));
                None
            }
        };
        let timeout = match map.get("timeout") {
            None => DEFAULT_TIMEOUT,
            Some(v) => parse_int(v).unwrap_or_else(|(error_type, msg)| {
                errors.push(item(error_type, "timeout", msg, v));
                DEFAULT_TIMEOUT
            }),
        };
        if errors.is_empty() {
            Ok(ExecuteBashRequest {
                command,
                cwd,
                timeout,
            })
        } else {
            Err(errors)
        }
    }
}

/// Pydantic's text for validation errors of `model` (the `detail` of a
/// `BashError` frame), without the documentation links.
pub fn validation_text(model: &str, errors: &[ValidationErrorItem]) -> String {
    let mut text = format!(
        "{} validation error{} for {model}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        let path: Vec<String> = e
            .loc
            .iter()
            .skip_while(|l| **l == Loc::from("body"))
            .map(|l| match l {
                Loc::Key(k) => k.clone(),
                Loc::Index(i) => i.to_string(),
            })
            .collect();
        // An error of the whole model has no location line.
        if !path.is_empty() {
            text.push('\n');
            text.push_str(&path.join("."));
        }
        text.push_str(&format!(
            "\n  {} [type={}, input_value={}, input_type={}]",
            e.msg,
            e.error_type,
            pyfmt::repr_json(&e.input),
            pyfmt::type_name(&e.input)
        ));
    }
    text
}

/// A command was started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BashCommand {
    /// The event id (hex on the wire).
    pub id: Uuid,
    /// When it was stored (UTC).
    pub timestamp: Timestamp,
    /// The command line.
    pub command: String,
    /// The directory it runs in (`None`: the server's own).
    pub cwd: Option<String>,
    /// Seconds it may run.
    pub timeout: i64,
}

/// Output of a command: a chunk (`exit_code` null) or the final piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BashOutput {
    /// The event id.
    pub id: Uuid,
    /// When it was stored (UTC).
    pub timestamp: Timestamp,
    /// The command this output belongs to.
    pub command_id: Uuid,
    /// Position among the command's outputs, from 0, shared by both streams.
    pub order: i64,
    /// Set on the final output only; `-1` after a timeout, `-N` when killed by signal N.
    pub exit_code: Option<i64>,
    /// Standard output text (`None` when empty).
    pub stdout: Option<String>,
    /// Standard error text (`None` when empty).
    pub stderr: Option<String>,
}

/// An error reported on the bash-events socket (not stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BashError {
    /// The event id.
    pub id: Uuid,
    /// When it happened (UTC).
    pub timestamp: Timestamp,
    /// The error type (`ValidationError`, …).
    pub code: String,
    /// What went wrong.
    pub detail: String,
}

impl BashError {
    /// A new error stamped now.
    pub fn new(code: impl Into<String>, detail: impl Into<String>) -> Self {
        BashError {
            id: ids::new_uuid(),
            timestamp: time::now(),
            code: code.into(),
            detail: detail.into(),
        }
    }
}

/// The kinds of stored bash events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BashEventKind {
    /// `BashCommand`.
    Command,
    /// `BashOutput`.
    Output,
    /// `BashError`.
    Error,
}

impl BashEventKind {
    /// The `kind` string.
    pub fn as_str(self) -> &'static str {
        match self {
            BashEventKind::Command => "BashCommand",
            BashEventKind::Output => "BashOutput",
            BashEventKind::Error => "BashError",
        }
    }

    /// Parses a `kind` string.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "BashCommand" => Some(BashEventKind::Command),
            "BashOutput" => Some(BashEventKind::Output),
            "BashError" => Some(BashEventKind::Error),
            _ => None,
        }
    }
}

/// Any bash event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BashEvent {
    /// A command started.
    Command(BashCommand),
    /// Output of a command.
    Output(BashOutput),
    /// An error on the socket.
    Error(BashError),
}

fn ts_json(ts: Timestamp) -> Value {
    Value::String(time::utc_timestamp(ts))
}

impl BashEvent {
    /// The event's id.
    pub fn id(&self) -> Uuid {
        match self {
            BashEvent::Command(e) => e.id,
            BashEvent::Output(e) => e.id,
            BashEvent::Error(e) => e.id,
        }
    }

    /// When the event was created.
    pub fn timestamp(&self) -> Timestamp {
        match self {
            BashEvent::Command(e) => e.timestamp,
            BashEvent::Output(e) => e.timestamp,
            BashEvent::Error(e) => e.timestamp,
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> BashEventKind {
        match self {
            BashEvent::Command(_) => BashEventKind::Command,
            BashEvent::Output(_) => BashEventKind::Output,
            BashEvent::Error(_) => BashEventKind::Error,
        }
    }

    pub(super) fn set_timestamp(&mut self, ts: Timestamp) {
        match self {
            BashEvent::Command(e) => e.timestamp = ts,
            BashEvent::Output(e) => e.timestamp = ts,
            BashEvent::Error(e) => e.timestamp = ts,
        }
    }

    /// The JSON object, as the Python server serialises it.
    pub fn to_json(&self) -> Value {
        match self {
            BashEvent::Command(e) => json!({
                "command": e.command,
                "cwd": e.cwd,
                "timeout": e.timeout,
                "id": ids::hex(&e.id),
                "timestamp": ts_json(e.timestamp),
                "kind": "BashCommand",
            }),
            BashEvent::Output(e) => json!({
                "id": ids::hex(&e.id),
                "timestamp": ts_json(e.timestamp),
                "command_id": ids::hex(&e.command_id),
                "order": e.order,
                "exit_code": e.exit_code,
                "stdout": e.stdout,
                "stderr": e.stderr,
                "kind": "BashOutput",
            }),
            BashEvent::Error(e) => json!({
                "id": ids::hex(&e.id),
                "timestamp": ts_json(e.timestamp),
                "code": e.code,
                "detail": e.detail,
                "kind": "BashError",
            }),
        }
    }

    /// Reads an event back from its JSON (a stored file).
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let map = value.as_object().ok_or("not an object")?;
        let text = |key: &str| -> Result<String, String> {
            map.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{key} is missing"))
        };
        let opt_text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
        let uuid = |key: &str| -> Result<Uuid, String> {
            ids::parse_uuid(&text(key)?).map_err(|e| format!("{key}: {e}"))
        };
        let int = |key: &str| map.get(key).and_then(Value::as_i64);
        let id = uuid("id")?;
        let timestamp = time::parse_client_timestamp(&text("timestamp")?)
            .ok_or("timestamp is not a timestamp")?;
        match BashEventKind::parse(&text("kind")?) {
            Some(BashEventKind::Command) => Ok(BashEvent::Command(BashCommand {
                id,
                timestamp,
                command: text("command")?,
                cwd: opt_text("cwd"),
                timeout: int("timeout").unwrap_or(DEFAULT_TIMEOUT),
            })),
            Some(BashEventKind::Output) => Ok(BashEvent::Output(BashOutput {
                id,
                timestamp,
                command_id: uuid("command_id")?,
                order: int("order").unwrap_or(0),
                exit_code: int("exit_code"),
                stdout: opt_text("stdout"),
                stderr: opt_text("stderr"),
            })),
            Some(BashEventKind::Error) => Ok(BashEvent::Error(BashError {
                id,
                timestamp,
                code: text("code")?,
                detail: text("detail")?,
            })),
            None => Err("unknown kind".into()),
        }
    }
}

/// How search results are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    /// Oldest first.
    #[default]
    Timestamp,
    /// Newest first.
    TimestampDesc,
}

impl SortOrder {
    /// Parses `TIMESTAMP` / `TIMESTAMP_DESC`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "TIMESTAMP" => Some(SortOrder::Timestamp),
            "TIMESTAMP_DESC" => Some(SortOrder::TimestampDesc),
            _ => None,
        }
    }
}

/// The filters and paging of `GET /api/bash/bash_events/search`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BashSearch {
    /// Only events of this kind.
    pub kind: Option<BashEventKind>,
    /// Only outputs of this command.
    pub command_id: Option<Uuid>,
    /// Only events at or after this time.
    pub timestamp_gte: Option<Timestamp>,
    /// Only events before this time.
    pub timestamp_lt: Option<Timestamp>,
    /// Drops outputs whose `order` is not greater.
    pub order_gt: Option<i64>,
    /// Oldest or newest first.
    pub sort_order: SortOrder,
    /// The file name of the first event of the page (a previous `next_page_id`).
    pub page_id: Option<String>,
    /// Page size (the HTTP layer enforces 1..=100).
    pub limit: usize,
}

impl Default for BashSearch {
    fn default() -> Self {
        BashSearch {
            kind: None,
            command_id: None,
            timestamp_gte: None,
            timestamp_lt: None,
            order_gt: None,
            sort_order: SortOrder::Timestamp,
            page_id: None,
            limit: 100,
        }
    }
}

/// One page of search results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BashEventPage {
    /// The events of this page.
    pub items: Vec<BashEvent>,
    /// The file name of the first event of the next page, if any.
    pub next_page_id: Option<String>,
}

impl BashEventPage {
    /// `{"items": […], "next_page_id": …}`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert(
            "items".into(),
            Value::Array(self.items.iter().map(BashEvent::to_json).collect()),
        );
        map.insert("next_page_id".into(), json!(self.next_page_id));
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_like_the_transcripts() {
        let command_id = ids::parse_uuid("15c3cafb46af440f937c082c13560e69").unwrap();
        let ts = time::parse_client_timestamp("2026-11-25T01:08:26.707444Z").unwrap();
        let command = BashEvent::Command(BashCommand {
            id: command_id,
            timestamp: ts,
            command: "echo hi".into(),
            cwd: None,
            timeout: 300,
        });
        assert_eq!(
            command.to_json().to_string(),
            r#"{"command":"echo hi","cwd":null,"timeout":300,"id":"15c3cafb46af440f937c082c13560e69","timestamp":"2026-11-25T01:08:26.707444Z","kind":"BashCommand"}"#
        );
        let output = BashEvent::Output(BashOutput {
            id: ids::parse_uuid("50dd2b2bd6164e768e3cb920292bfd32").unwrap(),
            timestamp: ts,
            command_id,
            order: 0,
            exit_code: Some(0),
            stdout: Some("line1\n".into()),
            stderr: None,
        });
        assert_eq!(
            output.to_json().to_string(),
            r#"{"id":"50dd2b2bd6164e768e3cb920292bfd32","timestamp":"2026-11-25T01:08:26.707444Z","command_id":"15c3cafb46af440f937c082c13560e69","order":0,"exit_code":0,"stdout":"line1\n","stderr":null,"kind":"BashOutput"}"#
        );
        for event in [command, output] {
            assert_eq!(BashEvent::from_json(&event.to_json()).unwrap(), event);
        }
        let error = BashEvent::Error(BashError::new("ValidationError", "bad"));
        let keys: Vec<String> = error
            .to_json()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["id", "timestamp", "code", "detail", "kind"]);
    }

    #[test]
    fn validates_requests_like_pydantic() {
        let ok = ExecuteBashRequest::from_json(&json!({"command": "ls", "timeout": "5"})).unwrap();
        assert_eq!(ok.timeout, 5);
        assert_eq!(ok.cwd, None);
        assert_eq!(
            ExecuteBashRequest::from_json(&json!({"command": "ls"}))
                .unwrap()
                .timeout,
            300
        );
        let errors = ExecuteBashRequest::from_json(&json!({})).unwrap_err();
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            json!([{"type": "missing", "loc": ["body", "command"], "msg": "Field required", "input": {}}])
        );
        assert_eq!(
            validation_text("ExecuteBashRequest", &errors),
            "1 validation error for ExecuteBashRequest\ncommand\n  Field required [type=missing, input_value={}, input_type=dict]"
        );
        let errors =
            ExecuteBashRequest::from_json(&json!({"command": 1, "timeout": 1.5})).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].error_type, "int_from_float");
    }
}
