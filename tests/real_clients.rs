//! The real clients against the real binary: the npm
//! `@openhands/typescript-client` 1.39 (`tests/clients/ts_client.mjs`) and
//! the Python `openhands-sdk` 1.58.2 remote conversation
//! (`tests/clients/py_client.py`), each through full conversations driven by
//! the scripted fake LLM. The scripts check what their client sees and print
//! a JSON report; this test checks their exit status and compares the report
//! with the server's own view of the conversations.
//!
//! Ignored by a plain `cargo test`: the clients are installed by
//! `.ci/run clients` (`npm ci` in `tests/clients/`, a Python ≥ 3.12 venv
//! in `~/.cache/agent-server/clients/venv`), which then runs these with
//! `--ignored`.
//! `CLIENTS_PYTHON` overrides the venv's interpreter.

#[path = "support/mod.rs"]
pub mod support;

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

#[path = "agent_util/mod.rs"]
pub mod agent_util;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use agent_util::{events, info, of_kind, Harness, KEY};
use fake_llm::Turn;

/// A safety bound on a client script's whole run (the SDK alone takes
/// 12-18 s to import here); a run ends in well under a minute.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// What a client script printed and how it ended.
struct ClientRun {
    success: bool,
    stdout: String,
    stderr: String,
}

impl ClientRun {
    /// The JSON report on the last stdout line; panics with the whole output
    /// when the script failed.
    fn report(&self, h: &Harness) -> Value {
        // Shown by `--nocapture`: the scripts' progress marks and timings.
        eprintln!("{}", self.stderr);
        assert!(
            self.success,
            "the client script failed\n--- stdout\n{}\n--- stderr\n{}\n--- server log\n{}",
            self.stdout,
            self.stderr,
            h.server.stderr()
        );
        let last = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| {
            panic!("no JSON report ({e}) in:\n{}\n{}", self.stdout, self.stderr)
        })
    }
}

/// Runs `program args` with the server, key, working directory and fake LLM
/// in its environment; killed when it outlives [`CLIENT_TIMEOUT`].
async fn run_client(
    h: &Harness,
    program: &Path,
    args: &[&str],
    extra: &[(&str, &str)],
) -> ClientRun {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(clients_dir())
        .env("AGENT_SERVER_URL", h.server.url(""))
        .env("AGENT_SERVER_KEY", KEY)
        .env("WORK_DIR", &h.work)
        .env("FAKE_LLM_URL", h.llm.base_url())
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let output = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} ran longer than {CLIENT_TIMEOUT:?}", program.display()))
        .expect("client output");
    ClientRun {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A server and fake LLM whose terminal shells get an empty `HOME` (kept
/// alive by the returned directory): the machine's own `~/.bashrc` (pyenv's
/// rehash lock, say) must not decide whether `echo` answers.
async fn start() -> (Harness, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("home dir");
    let h = Harness::start(&[("HOME", &home.path().display().to_string())]).await;
    (h, home)
}

fn ids(events: &[Value]) -> Vec<Value> {
    events.iter().map(|e| e["id"].clone()).collect()
}

/// The text of an observation event's content.
fn observation_text(event: &Value) -> String {
    event["observation"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect()
}

#[tokio::test]
#[ignore = "needs the client installs of `.ci/run clients`"]
async fn typescript_client_full_conversation() {
    let (h, _home) = start().await;
    h.llm.add_script(
        "ts-echo",
        vec![
            Turn::tool("terminal", json!({"command": "echo hello-from-ts"}))
                .and_tool("grep", json!({"pattern": "never-in-any-file"})),
            Turn::tool("finish", json!({"message": "All done."})),
            // The second message of the same conversation continues the script.
            Turn::tool("terminal", json!({"command": "echo token=$TS_TOKEN"})),
            Turn::tool("finish", json!({"message": "Token used."})),
        ],
    );
    h.llm.add_script(
        "ts-confirm",
        vec![
            Turn::tool("terminal", json!({"command": "echo confirmed-by-ts"})),
            Turn::tool("finish", json!({"message": "Confirmed and done."})),
        ],
    );
    let node = PathBuf::from("node");
    let run = run_client(&h, &node, &["ts_client.mjs"], &[]).await;
    let report = run.report(&h);
    let mut c = h.client().await;

    // The conversation the client watched live is the server's.
    let conv = &report["conversation"];
    let id = conv["id"].as_str().expect("conversation id");
    let stored = events(&mut c, id).await;
    assert_eq!(conv["history_ids"].as_array().expect("ids"), &ids(&stored));
    let action = of_kind(&stored, "ActionEvent")
        .into_iter()
        .find(|e| e["tool_name"] == "terminal")
        .expect("the terminal action");
    assert_eq!(conv["action_id"], action["id"]);
    let observation = of_kind(&stored, "ObservationEvent")
        .into_iter()
        .find(|e| e["action_id"] == action["id"])
        .expect("the terminal observation");
    assert_eq!(conv["observation_text"], observation_text(observation));
    assert!(observation_text(observation).contains("hello-from-ts"));
    let terminal: Vec<_> = of_kind(&stored, "ObservationEvent")
        .into_iter()
        .filter(|e| e["tool_name"] == "terminal")
        .collect();
    assert_eq!(terminal.len(), 2);
    assert_eq!(
        conv["second_observation_text"],
        observation_text(terminal[1])
    );
    assert!(observation_text(terminal[1]).contains("token=<secret-hidden>"));
    assert_eq!(conv["answer"], fake_llm::ANSWER_REPLY);
    let conv_info = info(&mut c, id).await;
    assert_eq!(conv_info["title"], "TS client test");
    assert_eq!(conv_info["execution_status"], "finished");
    assert!(!agent_util::read_tree(&h.data).contains("s3cr3t-ts-value"));
    let live: Vec<&str> = conv["live_kinds"]
        .as_array()
        .expect("live kinds")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        live.first(),
        Some(&"ConversationStateUpdateEvent[full_state]")
    );
    for kind in ["ActionEvent", "ObservationEvent"] {
        assert!(live.contains(&kind), "{kind} not seen live: {live:?}");
    }

    // Files: the upload landed on disk with the uploaded text.
    assert_eq!(
        std::fs::read_to_string(h.work.join("ts-upload.txt")).expect("uploaded file"),
        "uploaded by the ts client\n"
    );
    assert_eq!(report["files"]["downloaded"], "uploaded by the ts client\n");

    // Confirmation: the accepted action ran once, after the accept.
    let confirm = &report["confirmation"];
    let cid = confirm["id"]
        .as_str()
        .expect("confirmation conversation id");
    let stored = events(&mut c, cid).await;
    let accepted: Vec<_> = of_kind(&stored, "ObservationEvent")
        .into_iter()
        .filter(|e| e["action_id"] == confirm["action_id"])
        .collect();
    assert_eq!(accepted.len(), 1, "one observation of the accepted action");
    assert!(observation_text(accepted[0]).contains("confirmed-by-ts"));
    assert!(of_kind(&stored, "UserRejectObservation").is_empty());
    assert_eq!(info(&mut c, cid).await["execution_status"], "finished");

    let deleted = report["deleted"]["id"].as_str().expect("deleted id");
    let (status, _) = agent_util::call(
        &mut c,
        hyper::Method::GET,
        &format!("/api/conversations/{deleted}"),
        None,
    )
    .await;
    assert_eq!(status, hyper::StatusCode::NOT_FOUND);

    assert_eq!(report["bad_key"]["rest_status"], 401);
    assert_eq!(report["bad_key"]["close_code"], 4001);
}

/// The interpreter of the venv `.ci/run clients` makes (under
/// `$XDG_CACHE_HOME` or `~/.cache`), or `CLIENTS_PYTHON`.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("CLIENTS_PYTHON") {
        return PathBuf::from(python);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME, or CLIENTS_PYTHON");
    cache.join("agent-server/clients/venv/bin/python")
}

#[tokio::test]
#[ignore = "needs the client installs of `.ci/run clients`"]
async fn python_sdk_full_conversation() {
    let (h, _home) = start().await;
    h.llm.add_script(
        "py-echo",
        vec![
            Turn::tool("terminal", json!({"command": "echo hello-from-python"})),
            Turn::tool("finish", json!({"message": "Hello printed."})),
            // The second message of the same conversation continues the script.
            Turn::tool("terminal", json!({"command": "echo token=$PY_TOKEN"})),
            Turn::tool("finish", json!({"message": "Token used."})),
        ],
    );
    h.llm.add_script(
        "py-control",
        vec![
            Turn::tool("terminal", json!({"command": "sleep 30", "timeout": 60})),
            Turn::tool("think", json!({"thought": "slowly"}))
                .with_delay(Duration::from_millis(2500)),
            Turn::tool("finish", json!({"message": "Resumed and done."})),
        ],
    );
    h.llm.add_script(
        "py-reject",
        vec![
            Turn::tool("terminal", json!({"command": "echo should-not-run"}))
                .with_text("Let me try this."),
            Turn::tool("finish", json!({"message": "Rejected, so done."})),
        ],
    );
    h.llm.add_script(
        "py-auth",
        vec![Turn::error(
            401,
            r#"{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}"#,
        )],
    );
    let run = run_client(
        &h,
        &python(),
        &["py_client.py"],
        &[
            // Keep the SDK's LLM library from fetching its price list.
            ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
            ("OPENHANDS_SUPPRESS_BANNER", "1"),
        ],
    )
    .await;
    let report = run.report(&h);
    let mut c = h.client().await;

    let conv = &report["conversation"];
    let id = conv["id"].as_str().expect("conversation id");
    let stored = events(&mut c, id).await;
    assert_eq!(
        conv["all_event_ids"].as_array().expect("ids"),
        &ids(&stored)
    );
    let terminal: Vec<_> = of_kind(&stored, "ObservationEvent")
        .into_iter()
        .filter(|e| e["tool_name"] == "terminal")
        .collect();
    assert_eq!(terminal.len(), 2);
    assert_eq!(conv["observation_text"], observation_text(terminal[0]));
    assert!(observation_text(terminal[0]).contains("hello-from-python"));
    assert!(observation_text(terminal[1]).contains("token=<secret-hidden>"));
    assert_eq!(conv["answer"], fake_llm::ANSWER_REPLY);
    let conv_info = info(&mut c, id).await;
    assert_eq!(conv_info["execution_status"], "finished");
    assert_eq!(conv_info["title"], "Python client test");
    assert!(!agent_util::read_tree(&h.data).contains("s3cr3t-py-value"));

    // The rejected action never ran; the rejection carries the reason.
    let rejected = &report["rejection"];
    assert_eq!(rejected["reason"], "Not this time");
    // close() deleted the conversation: the server forgot it.
    let rid = rejected["id"].as_str().expect("rejection conversation id");
    let (status, _) = agent_util::call(
        &mut c,
        hyper::Method::GET,
        &format!("/api/conversations/{rid}"),
        None,
    )
    .await;
    assert_eq!(status, hyper::StatusCode::NOT_FOUND);

    let snapshots = report["control"]["snapshots"]
        .as_array()
        .expect("snapshots");
    assert!(snapshots.contains(&json!("paused")));
    assert_eq!(snapshots.last(), Some(&json!("finished")));

    assert_eq!(
        report["workspace"]["downloaded"],
        "uploaded by the python client\n"
    );
    assert_eq!(report["bad_key"]["rest_status"], 401);
}
