//! The terminal against a real bash in a real pseudo-terminal. Every test
//! closes its tool and checks that no process of its shell's session is left.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tempfile::TempDir;

use super::*;
use crate::tools::{ToolEnv, ToolSettings};

struct Fixture {
    tool: TerminalTool,
    work: TempDir,
    conv: TempDir,
    pids: Vec<i32>,
}

fn fixture_with(params: Value, settings: ToolSettings) -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let conv = tempfile::tempdir().unwrap();
    let env = ToolEnv {
        vision: true,
        working_dir: work.path().to_path_buf(),
        conversation_dir: conv.path().to_path_buf(),
        params: params.as_object().cloned().unwrap_or_default(),
        settings: Arc::new(settings),
    };
    Fixture {
        tool: TerminalTool::from_env(&env).unwrap(),
        work,
        conv,
        pids: Vec::new(),
    }
}

/// A tool whose soft timeout is one second, so timeouts are quick to reach.
fn fixture() -> Fixture {
    fixture_with(
        json!({"no_change_timeout_seconds": 1}),
        ToolSettings::default(),
    )
}

impl Fixture {
    async fn call_with(
        &mut self,
        args: Value,
        ctx: &ExecContext,
    ) -> Result<Observation, ToolError> {
        let action = self
            .tool
            .validate(args.as_object().unwrap())
            .expect("valid arguments");
        let result = self.tool.execute(&action, ctx).await;
        if let Some(pid) = self.tool.shell_pid() {
            if !self.pids.contains(&pid) {
                self.pids.push(pid);
            }
        }
        result
    }

    async fn call(&mut self, args: Value) -> Observation {
        self.call_with(args, &ExecContext::default()).await.unwrap()
    }

    async fn run(&mut self, command: &str) -> Observation {
        self.call(json!({"command": command})).await
    }

    /// Closes the tool and checks that every shell it started is gone.
    async fn finish(self) {
        self.tool.close().await;
        for pid in &self.pids {
            assert!(!procs::session_alive(*pid), "session {pid} left processes");
        }
    }
}

fn text(obs: &Observation) -> &str {
    obs.json["content"][0]["text"].as_str().unwrap()
}

fn exit_code(obs: &Observation) -> Option<i64> {
    obs.json["exit_code"].as_i64()
}

fn suffix(obs: &Observation) -> &str {
    obs.json["metadata"]["suffix"].as_str().unwrap()
}

fn llm(obs: &Observation) -> &str {
    obs.llm_content[0].as_text().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_and_observation_shape() {
    let mut f = fixture();
    let obs = f.run("echo hello && pwd").await;
    let work = f.work.path().display().to_string();
    assert_eq!(text(&obs), format!("hello\n{work}"));
    assert_eq!(exit_code(&obs), Some(0));
    assert!(!obs.is_error());
    let keys: Vec<&str> = obs.json.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "content",
            "is_error",
            "command",
            "exit_code",
            "timeout",
            "metadata",
            "full_output_save_dir",
            "kind"
        ]
    );
    assert_eq!(obs.json["command"], "echo hello && pwd");
    assert_eq!(obs.json["timeout"], false);
    assert_eq!(obs.json["kind"], "TerminalObservation");
    assert_eq!(
        obs.json["full_output_save_dir"],
        f.conv.path().join("observations").display().to_string()
    );
    let meta = &obs.json["metadata"];
    let meta_keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        meta_keys,
        [
            "exit_code",
            "pid",
            "username",
            "hostname",
            "working_dir",
            "py_interpreter_path",
            "prefix",
            "suffix"
        ]
    );
    assert_eq!(meta["exit_code"], 0);
    assert_eq!(meta["pid"], -1);
    assert_eq!(meta["working_dir"], work);
    assert_eq!(suffix(&obs), "\n[The command completed with exit code 0.]");
    let expected_start = format!(
        "hello\n{work}\n[The command completed with exit code 0.]\n[Current working directory: {work}]"
    );
    assert!(llm(&obs).starts_with(&expected_start), "{}", llm(&obs));
    assert!(llm(&obs).ends_with("\n[Command finished with exit code 0]"));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_directory_and_environment_persist() {
    let mut f = fixture();
    assert_eq!(exit_code(&f.run("ls /nonexistent-dir-xyz").await), Some(2));
    let obs = f.run("bash -c 'exit 3'").await;
    assert_eq!(exit_code(&obs), Some(3));
    assert_eq!(suffix(&obs), "\n[The command completed with exit code 3.]");
    // `$?` still reports the previous command.
    f.run("false").await;
    assert_eq!(text(&f.run("echo rc=$?").await), "rc=1");
    f.run("mkdir -p sub && cd sub").await;
    let obs = f.run("pwd").await;
    let sub = f.work.path().join("sub").display().to_string();
    assert_eq!(text(&obs), sub);
    assert_eq!(obs.json["metadata"]["working_dir"], sub);
    f.run("export FOO=persisted").await;
    assert_eq!(text(&f.run("echo $FOO").await), "persisted");
    // An unterminated quote is a syntax error (status 2), not a hang.
    let obs = f.run("echo \"unterminated").await;
    assert_eq!(exit_code(&obs), Some(2));
    assert!(text(&obs).contains("unexpected EOF"), "{}", text(&obs));
    assert_eq!(text(&f.run("echo next").await), "next");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_timeout_continuation_refusal_and_ctrl_c() {
    let mut f = fixture();
    let obs = f.run("echo start; sleep 30").await;
    assert_eq!(exit_code(&obs), Some(-1));
    assert_eq!(text(&obs), "start");
    assert_eq!(obs.json["metadata"]["prefix"], "");
    assert_eq!(
        suffix(&obs),
        format!("\n[The command has no new output after 1 seconds. {TIMEOUT_MESSAGE}]")
    );
    assert!(!llm(&obs).contains("Command finished"));

    let obs = f.run("").await;
    assert_eq!(exit_code(&obs), Some(-1));
    assert_eq!(obs.json["metadata"]["prefix"], CONTINUE_PREFIX);

    let obs = f.run("echo other").await;
    assert!(obs.is_error());
    assert_eq!(exit_code(&obs), Some(-1));
    assert!(suffix(&obs).starts_with("\n[Your command \"echo other\" is NOT executed."));

    let obs = f.call(json!({"command": "C-c", "is_input": true})).await;
    assert_eq!(exit_code(&obs), Some(130));
    assert_eq!(
        suffix(&obs),
        "\n[The command completed with exit code 130. CTRL+C was sent.]"
    );
    assert_eq!(text(&f.run("echo after").await), "after");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_timeout_then_the_rest_of_the_output() {
    let mut f = fixture();
    let obs = f
        .call(json!({"command": "sleep 2; echo done", "timeout": 0.5}))
        .await;
    assert_eq!(exit_code(&obs), Some(-1));
    assert_eq!(
        suffix(&obs),
        format!("\n[The command timed out after 0.5 seconds. {TIMEOUT_MESSAGE}]")
    );
    let obs = f.call(json!({"command": "", "timeout": 20})).await;
    assert_eq!(exit_code(&obs), Some(0));
    assert_eq!(text(&obs), "done");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_line_heredoc() {
    let mut f = fixture();
    let body: String = (0..500)
        .map(|i| format!("line {i}\twith 'single' \"double\" $HOME `tick` \\ é\n"))
        .collect();
    let command = format!("cat > heredoc.txt <<'EOF'\n{body}EOF");
    let obs = f.run(&command).await;
    assert_eq!(exit_code(&obs), Some(0), "{}", text(&obs));
    let written = std::fs::read_to_string(f.work.path().join("heredoc.txt")).unwrap();
    assert_eq!(written, body);
    assert_eq!(text(&f.run("wc -l < heredoc.txt").await), "500");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn less_on_a_long_file_then_q() {
    let mut f = fixture();
    let lines: String = (1..=2000).map(|i| format!("row number {i}\n")).collect();
    std::fs::write(f.work.path().join("long.txt"), lines).unwrap();
    let obs = f.run("less long.txt").await;
    assert_eq!(exit_code(&obs), Some(-1));
    assert!(text(&obs).contains("row number 1\n"), "{}", text(&obs));
    assert!(!text(&obs).contains("row number 1999"));
    assert!(!text(&obs).contains('\u{1b}'));
    let obs = f.call(json!({"command": "q", "is_input": true})).await;
    assert_eq!(exit_code(&obs), Some(0), "{}", text(&obs));
    // The Enter after `q` reached the shell as an empty line; the next
    // command must still get its own result.
    assert_eq!(text(&f.run("echo back").await), "back");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_into_read() {
    let mut f = fixture();
    let obs = f.run("read -p 'name? ' x; echo \"got $x\"").await;
    assert_eq!(exit_code(&obs), Some(-1));
    assert_eq!(text(&obs), "name?");
    let obs = f.call(json!({"command": "world", "is_input": true})).await;
    assert_eq!(exit_code(&obs), Some(0));
    assert_eq!(text(&obs), "got world");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_recreates_the_session() {
    let mut f = fixture();
    f.run("export KEEP=1; sleep 1000 &").await;
    let first = f.tool.shell_pid().unwrap();
    let obs = f.call(json!({"command": "", "reset": true})).await;
    assert_eq!(text(&obs), RESET_TEXT);
    assert_eq!(obs.json["command"], "[RESET]");
    assert_eq!(exit_code(&obs), Some(0));
    assert!(
        !procs::session_alive(first),
        "old session survived the reset"
    );
    assert_eq!(text(&f.run("echo ${KEEP:-unset}").await), "unset");
    let obs = f
        .call(json!({"command": "echo fresh", "reset": true}))
        .await;
    assert_eq!(text(&obs), format!("{RESET_TEXT}\n\nfresh"));
    assert_eq!(obs.json["command"], "[RESET] echo fresh");
    assert_eq!(exit_code(&obs), Some(0));
    let err = f
        .call_with(
            json!({"command": "x", "reset": true, "is_input": true}),
            &ExecContext::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ToolError::Invalid("Cannot use reset=True with is_input=True".into())
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_without_a_shell_command() {
    let mut f = fixture();
    let obs = f.run("echo a\necho b").await;
    assert!(obs.is_error());
    assert_eq!(
        text(&obs),
        "Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n(1) echo a\n(2) echo b"
    );
    assert_eq!(exit_code(&obs), None);

    let obs = f.run("[\"ls\", \"-la\"]").await;
    assert!(obs.is_error());
    assert!(text(&obs).starts_with("[Tool-argument error] The `command` argument looks like a Python/JSON list literal, not a shell command. It starts with: '[\"ls\", \"-la\"]'\n\n"));
    assert_eq!(obs.json["full_output_save_dir"], Value::Null);

    let obs = f.run("").await;
    assert_eq!(
        text(&obs),
        "No previous running command to retrieve logs from."
    );
    assert!(obs.is_error());
    let obs = f.call(json!({"command": "C-c", "is_input": true})).await;
    assert_eq!(text(&obs), "No previous running command to interact with.");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_timeout_is_capped_by_the_idle_timeout() {
    let settings = ToolSettings {
        runtime_idle_timeout_seconds: Some(100.0),
        ..ToolSettings::default()
    };
    let mut f = fixture_with(json!({}), settings);
    let obs = f.call(json!({"command": "sleep 1", "timeout": 120})).await;
    assert!(obs.is_error());
    assert!(text(&obs).starts_with(
        "Refusing to run foreground terminal command with timeout=120s.\n\nThis runtime is subject to idle cleanup after 100s. Foreground terminal commands are capped at 90% of that threshold, currently 90s,"
    ));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_output_is_truncated_and_saved() {
    let mut f = fixture();
    let obs = f.run("seq 1 20000").await;
    let shown = text(&obs);
    assert!(shown.chars().count() <= MAX_OUTPUT_CHARS);
    assert!(shown.starts_with("1\n2\n3\n"));
    assert!(shown.ends_with("19999\n20000"));
    assert!(llm(&obs).chars().count() <= MAX_OUTPUT_CHARS);
    assert!(llm(&obs).contains("The complete output has been saved to"));
    let saved: Vec<_> = std::fs::read_dir(f.conv.path().join("observations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let full = std::fs::read_to_string(&saved[0]).unwrap();
    let expected: Vec<String> = (1..=20000).map(|i| i.to_string()).collect();
    assert_eq!(full, expected.join("\n"));
    assert!(shown.contains(&saved[0].display().to_string()));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_exported_without_being_shown() {
    let mut f = fixture();
    let ctx = ExecContext {
        secrets: vec![
            ("MY_TOKEN".into(), "s3cr3t-'value'".into()),
            ("bad name".into(), "ignored".into()),
        ],
        ..ExecContext::default()
    };
    let obs = f
        .call_with(json!({"command": "echo \"len=${#MY_TOKEN}\""}), &ctx)
        .await
        .unwrap();
    assert_eq!(text(&obs), "len=14");
    let obs = f
        .call_with(json!({"command": "echo \"$MY_TOKEN\""}), &ctx)
        .await
        .unwrap();
    let json = Value::Object(obs.json.clone()).to_string();
    assert!(!json.contains("s3cr3t"), "{json}");
    assert!(!llm(&obs).contains("s3cr3t"));
    assert_eq!(text(&obs), "<secret-hidden>");
    // The export line is not in the history either.
    let obs = f.run("history").await;
    assert!(!text(&obs).contains("s3cr3t"));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_interrupts_and_the_session_stays_usable() {
    let mut f = fixture_with(json!({}), ToolSettings::default());
    assert_eq!(text(&f.run("echo started").await), "started");
    let ctx = ExecContext::default();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let err = f
        .call_with(json!({"command": "sleep 30"}), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err, ToolError::Cancelled);
    assert_eq!(text(&f.run("echo alive").await), "alive");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_does_not_wait_for_a_starting_shell() {
    // A shell whose start-up (think `pyenv init` in `~/.bashrc`) takes a while.
    let bin = tempfile::tempdir().unwrap();
    let marker = bin.path().join("started");
    let shell = bin.path().join("slow-bash");
    std::fs::write(
        &shell,
        format!(
            "#!/bin/sh\nsleep 2\ntouch '{}'\nexec bash \"$@\"\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shell, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let f = fixture_with(
        json!({"shell_path": shell.to_str().unwrap()}),
        ToolSettings::default(),
    );
    let tool = Arc::new(f.tool);
    let warming = tokio::spawn({
        let tool = tool.clone();
        async move { tool.warm_up().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ctx = ExecContext::default();
    ctx.cancel.cancel();
    let action = tool
        .validate(json!({"command": "echo hi"}).as_object().unwrap())
        .unwrap();
    assert_eq!(
        tool.execute(&action, &ctx).await.unwrap_err(),
        ToolError::Cancelled
    );
    assert!(!marker.exists(), "the call waited for the shell to start");
    warming.await.unwrap();
    tool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exited_shell_is_replaced() {
    let mut f = fixture();
    let obs = f.run("exit 4").await;
    assert!(obs.is_error());
    assert_eq!(text(&obs), CLOSED_TEXT);
    let obs = f.run("echo again").await;
    assert_eq!(text(&obs), format!("{RESET_TEXT}\n\nagain"));
    assert_eq!(obs.json["command"], "[RESET] echo again");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_kills_background_jobs_and_running_commands() {
    let mut f = fixture();
    f.run("sleep 1000 & nohup sleep 1001 >/dev/null 2>&1 & disown")
        .await;
    let obs = f.run("sleep 1002").await;
    assert_eq!(exit_code(&obs), Some(-1));
    let pid = f.tool.shell_pid().unwrap();
    assert!(procs::session_alive(pid));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_tool_kills_the_session() {
    let mut f = fixture();
    f.run("sleep 1000 &").await;
    let pid = f.tool.shell_pid().unwrap();
    drop(f.tool);
    // Signalled during the drop; dying takes a moment.
    let mut alive = true;
    for _ in 0..100 {
        alive = procs::session_alive(pid);
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_fills_defaults_and_reports_errors() {
    let f = fixture();
    let action = f
        .tool
        .validate(json!({"command": "ls"}).as_object().unwrap())
        .unwrap();
    assert_eq!(
        action.to_string(),
        r#"{"command":"ls","is_input":false,"timeout":null,"reset":false,"kind":"TerminalAction"}"#
    );
    let action = f
        .tool
        .validate(
            json!({"command": "ls", "timeout": 5, "is_input": "true"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(action["timeout"], json!(5.0));
    assert_eq!(action["is_input"], true);
    let err = f
        .tool
        .validate(json!({"is_input": true}).as_object().unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        "1 validation error for TerminalAction\ncommand\n  Field required [type=missing, input_value={'is_input': True}, input_type=dict]"
    );
    let err = f
        .tool
        .validate(
            json!({"command": "ls", "timeout": -1, "extra": 1})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
    assert!(err.starts_with("2 validation errors for TerminalAction\ntimeout\n  Input should be greater than or equal to 0"), "{err}");
    assert!(err.contains("extra\n  Extra inputs are not permitted"));
    assert_eq!(
        f.tool.resource_key(&action),
        Some("terminal:session".to_string())
    );
    let definition = f.tool.definition();
    assert_eq!(definition.name, "terminal");
    assert_eq!(definition.parameters["required"], json!(["command"]));
}

/// The tool as the Python server sent it to the LLM (recorded request).
#[test]
fn definition_matches_the_recorded_request() {
    let recorded: Value =
        serde_json::from_str(include_str!("testdata/recorded_tool.json")).unwrap();
    let def = definition();
    assert_eq!(recorded["function"]["description"], def.description);
    let mut params = recorded["function"]["parameters"].clone();
    let props = params["properties"].as_object_mut().unwrap();
    props.remove("security_risk");
    props.remove("summary");
    assert_eq!(params, def.parameters);
}

#[test]
fn llm_text_follows_upstream() {
    let obs: Map<String, Value> = serde_json::from_value(json!({
        "content": [{"type": "text", "text": "out"}],
        "metadata": {"exit_code": -1, "prefix": "P", "suffix": "S", "working_dir": "/w", "py_interpreter_path": ""}
    }))
    .unwrap();
    assert_eq!(llm_text(&obs), "PoutS\n[Current working directory: /w]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_shell_keeps_working() {
    let mut f = fixture_with(
        json!({"no_change_timeout_seconds": 10}),
        ToolSettings::default(),
    );
    let outer = text(&f.run("echo $$").await).to_string();
    assert_eq!(exit_code(&f.run("bash --norc").await), Some(0));
    let obs = f.run("false; echo \"inner $$ rc=$?!\"").await;
    let inner = text(&obs).to_string();
    assert!(
        inner.starts_with("inner ") && inner.ends_with(" rc=1!"),
        "{inner}"
    );
    assert_ne!(inner, format!("inner {outer} rc=1!"));
    f.run("exit").await;
    assert_eq!(text(&f.run("echo $$").await), outer);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_a_command_that_holds_the_session() {
    let mut f = fixture_with(json!({}), ToolSettings::default());
    f.run("true").await;
    let pid = f.tool.shell_pid().unwrap();
    let action = f
        .tool
        .validate(json!({"command": "sleep 100"}).as_object().unwrap())
        .unwrap();
    let ctx = ExecContext::default();
    let (obs, ()) = tokio::join!(f.tool.execute(&action, &ctx), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        f.tool.close().await;
    });
    let obs = obs.unwrap();
    assert!(obs.is_error());
    assert_eq!(text(&obs), CLOSED_TEXT);
    assert!(!procs::session_alive(pid));
    let err = f
        .call_with(json!({"command": "echo no"}), &ExecContext::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Invalid(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_factory_starts_the_shell_with_the_tool() {
    let work = tempfile::tempdir().unwrap();
    let conv = tempfile::tempdir().unwrap();
    let env = ToolEnv {
        vision: true,
        working_dir: work.path().to_path_buf(),
        conversation_dir: conv.path().to_path_buf(),
        params: Map::new(),
        settings: Arc::new(ToolSettings::default()),
    };
    let tools = (factory().create)(&env).unwrap();
    assert_eq!(tools.len(), 1);
    let tool = &tools[0];
    let action = tool
        .validate(json!({"command": "echo made"}).as_object().unwrap())
        .unwrap();
    let obs = tool
        .execute(&action, &ExecContext::default())
        .await
        .unwrap();
    assert_eq!(text(&obs), "made");
    tool.close().await;

    let missing = ToolEnv {
        working_dir: work.path().join("missing"),
        ..env.clone()
    };
    let err = (factory().create)(&missing).err().unwrap();
    assert_eq!(
        err,
        format!(
            "working_dir '{}' is not a valid directory",
            missing.working_dir.display()
        )
    );
    let bad = ToolEnv {
        params: json!({"env": {"1BAD": "x"}}).as_object().cloned().unwrap(),
        ..env
    };
    assert_eq!(
        (factory().create)(&bad).err().unwrap(),
        "Invalid terminal environment variable name: '1BAD'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_for_a_program_that_ended_is_not_run_by_the_shell() {
    let mut f = fixture();
    let obs = f.run("sleep 1.5; echo done").await;
    assert_eq!(exit_code(&obs), Some(-1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let obs = f
        .call(json!({"command": "touch typed.txt", "is_input": true}))
        .await;
    assert_eq!(exit_code(&obs), Some(0));
    assert_eq!(text(&obs), "done");
    assert_eq!(text(&f.run("ls").await), "");
    assert!(!f.work.path().join("typed.txt").exists());
    f.finish().await;
}

/// A `$HOME` whose `.bashrc` logs `pid cwd` of every shell that reads it and
/// sets a variable and an alias.
fn rc_home() -> TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".bashrc"),
        "echo \"$$ $PWD\" >> \"$HOME/rc.log\"\nexport FROM_RC=yes\nalias ll='ls -l'\n",
    )
    .unwrap();
    home
}

/// `(pid, cwd)` of each shell that read `home`'s `.bashrc`.
fn rc_log(home: &TempDir) -> Vec<(i32, String)> {
    std::fs::read_to_string(home.path().join("rc.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, cwd) = l.split_once(' ')?;
            Some((pid.parse().ok()?, cwd.to_string()))
        })
        .collect()
}

/// A pool of one shell with `home` as `$HOME`, waited for (bounded).
async fn ready_pool(home: &TempDir) -> Arc<ShellPool> {
    let env = shell_env(&[("HOME".into(), home.path().display().to_string())]);
    let pool = ShellPool::new(1, find_bash().unwrap(), env, home.path().to_path_buf());
    pool.fill();
    for _ in 0..300 {
        if pool.ready() == 1 {
            return pool;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the pool did not start its shell");
}

fn pooled_fixture(params: Value, pool: Option<Arc<ShellPool>>) -> Fixture {
    fixture_with(
        params,
        ToolSettings {
            terminal_pool: pool,
            ..ToolSettings::default()
        },
    )
}

/// What a new shell's state looks like from inside: environment, options,
/// history, `$?`, `OLDPWD`, aliases (volatile values left out).
const INTROSPECT: &str = "echo \"rc=$? oldpwd=[${OLDPWD-unset}] $(declare -p OLDPWD) hist=$(history | wc -l) seconds_small=$((SECONDS < 5))\"; \
     env | grep -v '^_=' | sort; set -o | tr -s ' \\t' ' '; shopt | tr -s ' \\t' ' '; alias";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_shell_is_handed_over_as_if_started_in_the_working_dir() {
    let home = rc_home();
    let home_s = home.path().display().to_string();
    let pool = ready_pool(&home).await;
    let pooled_pid = rc_log(&home)[0].0;

    let params = json!({"env": {"HOME": home_s}, "no_change_timeout_seconds": 5});
    let mut pooled = pooled_fixture(params.clone(), Some(pool.clone()));
    let work = std::fs::canonicalize(pooled.work.path()).unwrap();
    let state = text(&pooled.run(INTROSPECT).await).to_string();
    assert_eq!(
        pooled.tool.shell_pid(),
        Some(pooled_pid),
        "the pooled shell was used"
    );
    let obs = pooled.run("echo \"$PWD|$HOME|$FROM_RC\"; ll -d .").await;
    assert!(
        text(&obs).starts_with(&format!("{}|{home_s}|yes\n", work.display())),
        "{}",
        text(&obs)
    );
    assert_eq!(
        obs.json["metadata"]["working_dir"],
        work.display().to_string()
    );
    let obs = pooled.run("cd / && pwd").await;
    assert_eq!(text(&obs), "/");
    assert_eq!(obs.json["metadata"]["working_dir"], "/");

    // The same state as a shell started the old way, in its working dir.
    let mut fresh = pooled_fixture(params, None);
    let fresh_work = std::fs::canonicalize(fresh.work.path()).unwrap();
    let fresh_state = text(&fresh.run(INTROSPECT).await).replace(
        &fresh_work.display().to_string(),
        &work.display().to_string(),
    );
    assert_eq!(state, fresh_state);
    let log = rc_log(&home);
    assert_eq!(log[0].1, home_s, "the pooled shell read .bashrc in $HOME");
    assert!(
        log.contains(&(
            fresh.tool.shell_pid().unwrap(),
            fresh_work.display().to_string()
        )),
        "the fresh shell read .bashrc in its working dir: {log:?}"
    );
    fresh.finish().await;
    pooled.finish().await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_with_other_env_params_starts_its_own_shell() {
    let home = rc_home();
    let pool = ready_pool(&home).await;
    let pooled_pid = rc_log(&home)[0].0;
    let params = json!({"env": {"HOME": home.path(), "PROJECT_TOKEN": "t0k"}});
    let mut f = pooled_fixture(params, Some(pool.clone()));
    let obs = f.run("echo $PROJECT_TOKEN $PWD").await;
    let work = std::fs::canonicalize(f.work.path()).unwrap();
    assert_eq!(text(&obs), format!("t0k {}", work.display()));
    assert_ne!(f.tool.shell_pid(), Some(pooled_pid));
    assert_eq!(pool.ready(), 1, "the pooled shell stays in the pool");
    f.finish().await;
    pool.close().await;
    assert!(
        !procs::session_alive(pooled_pid),
        "closing the pool kills its shells"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_a_shell_starts_its_replacement_and_reset_starts_afresh() {
    let home = rc_home();
    let pool = ready_pool(&home).await;
    let params = json!({"env": {"HOME": home.path()}});
    let mut f = pooled_fixture(params, Some(pool.clone()));
    f.run("true").await;
    let first = f.tool.shell_pid().unwrap();
    assert_eq!(rc_log(&home)[0].0, first);
    for _ in 0..300 {
        if pool.ready() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pool.ready(), 1, "the pool refilled");
    let replacement = rc_log(&home)[1].0;
    // A reset takes the replacement, in the working dir, with no old state.
    f.run("export OLD_STATE=1").await;
    let obs = f
        .call(json!({"command": "echo ${OLD_STATE-none} $PWD", "reset": true}))
        .await;
    let work = std::fs::canonicalize(f.work.path()).unwrap();
    assert!(text(&obs).ends_with(&format!("none {}", work.display())));
    assert_eq!(f.tool.shell_pid(), Some(replacement));
    assert!(!procs::session_alive(first));
    f.finish().await;
    pool.close().await;
    for (pid, _) in rc_log(&home) {
        assert!(!procs::session_alive(pid), "shell {pid} left behind");
    }
}

#[test]
fn a_pool_of_size_zero_is_no_pool() {
    assert!(pool::server_pool(0).is_none());
}
