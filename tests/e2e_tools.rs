//! The workspace tools end to end: conversations on the real binary, driven
//! by scripted fake-LLM turns, with real bash in a real PTY and real files.
//! Each test checks what the tool did (events, files on disk), what the model
//! was told back (the tool messages of the following LLM requests), and that
//! no process the conversation started outlives it: every server gets an
//! environment marker its shells inherit, and after `DELETE` of the
//! conversation, then after SIGTERM of the server, no process carries it.

#[path = "support/mod.rs"]
pub mod support;

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

#[path = "agent_util/mod.rs"]
pub mod agent_util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

use agent_util::{
    create, delete, events, obs_text, of_kind, read_tree, run, told, Harness, Socket,
};
use fake_llm::Turn;

/// The variable every process of a test's server inherits.
const MARKER_VAR: &str = "E2E_TOOLS_MARKER";

/// A planted conversation secret.
const SECRET: &str = "tok-5e1f09c2d7a4";

/// A server whose processes carry a marker unique to it.
struct Marked {
    h: Harness,
    marker: String,
}

impl Marked {
    /// A server without pre-started shells, so that every marked process
    /// belongs to a conversation.
    async fn start() -> Marked {
        Marked::start_with(&[("HOME", "/nonexistent"), ("OH_TERMINAL_POOL_SIZE", "0")]).await
    }

    async fn start_with(env: &[(&str, &str)]) -> Marked {
        let marker = uuid::Uuid::new_v4().simple().to_string();
        let mut env = env.to_vec();
        env.push((MARKER_VAR, &marker));
        let h = Harness::start(&env).await;
        Marked { h, marker }
    }

    /// Live processes carrying the marker, the server itself excepted.
    fn children(&self) -> Vec<i32> {
        marked_processes(&format!("{MARKER_VAR}={}", self.marker))
            .into_iter()
            .filter(|&pid| pid != self.h.server.pid() as i32)
            .collect()
    }

    /// Waits (bounded) until no process but the server carries the marker.
    async fn assert_no_children(&self, after: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.children();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes left after {after}: {}",
                describe(&left)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end of every test: the conversation's processes run until its
    /// `DELETE`, none survives it, and none survives the server's SIGTERM.
    async fn delete_and_stop(mut self, id: &str) {
        assert!(
            !self.children().is_empty(),
            "the conversation's shell runs until the conversation is deleted"
        );
        let mut c = self.h.client().await;
        delete(&mut c, id).await;
        self.assert_no_children("DELETE").await;
        drop(c);
        assert_eq!(self.h.server.terminate().code(), Some(0));
        self.assert_no_children("SIGTERM").await;
    }
}

/// Pids of live processes whose environment holds `entry` (`NAME=value`).
fn marked_processes(entry: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|raw| raw.split(|&b| b == 0).any(|var| var == entry.as_bytes()))
        })
        .collect()
}

/// `pid: command line` of each process, for failure messages.
fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The observation events but `finish`'s (which ends the run), and what the
/// model was told for each, in order.
async fn observations(h: &Harness, id: &str) -> Vec<(Value, String)> {
    let mut c = h.client().await;
    let evs = events(&mut c, id).await;
    of_kind(&evs, "ObservationEvent")
        .into_iter()
        .filter(|o| o["tool_name"] != "finish")
        .map(|o| {
            let said = told(h, o["tool_call_id"].as_str().unwrap());
            (o.clone(), said)
        })
        .collect()
}

/// Runs the conversation to `finished`, watching its socket; the frames.
async fn run_to_finish(h: &Harness, id: &str) -> Vec<Value> {
    let mut c = h.client().await;
    let mut socket = Socket::open(&h.server, id).await;
    assert_eq!(run(&mut c, id).await, StatusCode::OK);
    socket.until_state(&["finished"]).await;
    socket.frames
}

fn terminal(command: &str) -> Turn {
    Turn::tool("terminal", json!({"command": command}))
}

fn keys(command: &str) -> Turn {
    Turn::tool("terminal", json!({"command": command, "is_input": true}))
}

fn finish() -> Turn {
    Turn::tool("finish", json!({"message": "done"}))
}

#[tokio::test]
async fn terminal_commands_output_exit_codes_cwd_heredoc_and_secrets() {
    let m = Marked::start().await;
    let h = &m.h;
    let heredoc_lines: Vec<String> = (1..=500)
        .map(|i| format!("line {i} of the heredoc $HOME `x`"))
        .collect();
    h.llm.add_script(
        "basics",
        vec![
            terminal("echo hello-e2e"),
            terminal("sh -c 'echo to-stderr >&2; exit 7'"),
            terminal("mkdir -p {workdir}/sub && cd {workdir}/sub"),
            terminal("pwd"),
            terminal(&format!(
                "cat > {{workdir}}/big.txt <<'EOF'\n{}\nEOF",
                heredoc_lines.join("\n")
            )),
            terminal("wc -l < {workdir}/big.txt"),
            terminal("echo token=$MY_TOKEN"),
            finish(),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body("basics", &["terminal"]);
    body["secrets"] = json!({"MY_TOKEN": {"kind": "StaticSecret", "value": SECRET}});
    let id = create(&mut c, &body).await;
    let frames = run_to_finish(h, &id).await;
    let obs = observations(h, &id).await;
    assert_eq!(obs.len(), 7, "{obs:?}");
    let work = h.work.display().to_string();

    // echo: the output and exit code 0, in the event and to the model.
    let (echo, said) = &obs[0];
    assert_eq!(echo["tool_name"], "terminal");
    assert_eq!(obs_text(echo), "hello-e2e");
    assert_eq!(echo["observation"]["exit_code"], 0);
    assert_eq!(echo["observation"]["metadata"]["exit_code"], 0);
    assert_eq!(echo["observation"]["is_error"], false);
    assert!(said.starts_with("hello-e2e"), "{said}");
    assert!(
        said.ends_with("[Command finished with exit code 0]"),
        "{said}"
    );

    // A failing command: its exit code and its stderr.
    let (failed, said) = &obs[1];
    assert_eq!(obs_text(failed), "to-stderr");
    assert_eq!(failed["observation"]["exit_code"], 7);
    assert!(
        said.ends_with("[Command finished with exit code 7]"),
        "{said}"
    );

    // `cd` persists into the next call.
    let (pwd, said) = &obs[3];
    assert_eq!(obs_text(pwd), format!("{work}/sub"));
    assert_eq!(
        pwd["observation"]["metadata"]["working_dir"],
        format!("{work}/sub")
    );
    assert!(
        said.contains(&format!("[Current working directory: {work}/sub]")),
        "{said}"
    );

    // The 500-line heredoc went through whole and did not wedge the shell.
    let (heredoc, _) = &obs[4];
    assert_eq!(heredoc["observation"]["exit_code"], 0, "{heredoc}");
    let written = std::fs::read_to_string(h.work.join("big.txt")).unwrap();
    assert_eq!(written, format!("{}\n", heredoc_lines.join("\n")));
    assert_eq!(obs_text(&obs[5].0), "500");

    // The secret was exported for the command and masked in its output:
    // in the event, on the socket, to the model; never on disk.
    let (secret, said) = &obs[6];
    assert_eq!(obs_text(secret), "token=<secret-hidden>");
    assert!(said.starts_with("token=<secret-hidden>"), "{said}");
    let frames = serde_json::to_string(&frames).unwrap();
    assert!(frames.contains("token=<secret-hidden>"));
    assert!(!frames.contains(SECRET), "the secret reached the socket");
    for req in h.llm.requests() {
        assert!(
            !req.body.to_string().contains(SECRET),
            "the secret reached the LLM"
        );
    }
    let data = h.data.clone();
    m.delete_and_stop(&id).await;
    assert!(
        !read_tree(&data).contains(SECRET),
        "the secret reached the disk"
    );
}

#[tokio::test]
async fn soft_timeout_continuation_interrupt_and_a_full_screen_pager() {
    let m = Marked::start().await;
    let h = &m.h;
    h.llm.add_script(
        "waits",
        vec![
            terminal("echo started; sleep 60"),
            terminal(""),
            keys("C-c"),
            terminal("seq 1 2000 > {workdir}/long.txt"),
            terminal("less {workdir}/long.txt"),
            keys("q"),
            terminal("echo alive"),
            finish(),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body("waits", &[]);
    body["agent"]["tools"] =
        json!([{"name": "terminal", "params": {"no_change_timeout_seconds": 1}}]);
    let id = create(&mut c, &body).await;
    run_to_finish(h, &id).await;
    let obs = observations(h, &id).await;
    assert_eq!(obs.len(), 7, "{obs:?}");

    // No new output for a second: exit code -1, the command keeps running.
    let (soft, said) = &obs[0];
    assert_eq!(obs_text(soft), "started");
    assert_eq!(soft["observation"]["exit_code"], -1);
    let suffix = "[The command has no new output after 1 seconds. You may wait longer to see additional output by sending empty command '',";
    assert!(said.contains(suffix), "{said}");
    assert!(!said.contains("[Command finished"), "{said}");

    // The empty command asks for more output; there is none, still running.
    let (more, said) = &obs[1];
    assert_eq!(more["observation"]["exit_code"], -1);
    assert!(said.contains(suffix), "{said}");

    // C-c ends it.
    let (interrupted, said) = &obs[2];
    assert_eq!(
        interrupted["observation"]["exit_code"], 130,
        "{interrupted}"
    );
    assert!(said.contains("CTRL+C was sent.]"), "{said}");

    // `less` shows its first screen and waits; `q` quits it.
    let (pager, said) = &obs[4];
    assert_eq!(pager["observation"]["exit_code"], -1, "{pager}");
    let screen = obs_text(pager);
    assert!(
        screen.contains("\n1\n2\n3\n") || screen.starts_with("1\n2\n3\n"),
        "{screen}"
    );
    assert!(
        !screen.contains("\n2000"),
        "only the first screen: {screen}"
    );
    assert!(said.contains(suffix), "{said}");
    let (quit, _) = &obs[5];
    assert_eq!(quit["observation"]["exit_code"], 0, "{quit}");

    // The shell is usable afterwards.
    let (alive, said) = &obs[6];
    assert_eq!(obs_text(alive), "alive");
    assert!(
        said.ends_with("[Command finished with exit code 0]"),
        "{said}"
    );
    m.delete_and_stop(&id).await;
}

#[tokio::test]
async fn background_jobs_die_with_the_conversation_and_the_server() {
    let m = Marked::start().await;
    let h = &m.h;
    h.llm.add_script(
        "jobs",
        vec![
            terminal("sleep 1000 &"),
            terminal("(sleep 1001 &)"),
            terminal("nohup sleep 1002 > /dev/null 2>&1 &"),
            finish(),
        ],
    );
    let mut c = h.client().await;
    let first = create(&mut c, &h.body("jobs", &["terminal"])).await;
    run_to_finish(h, &first).await;
    // bash and three sleeps; one of them was orphaned by its subshell.
    let running = m.children();
    assert!(running.len() >= 4, "{}", describe(&running));
    delete(&mut c, &first).await;
    m.assert_no_children("DELETE").await;

    // A second conversation's jobs die with the server.
    let second = create(&mut c, &h.body("jobs", &["terminal"])).await;
    run_to_finish(h, &second).await;
    assert!(m.children().len() >= 4);
    drop(c);
    let mut m = m;
    assert_eq!(m.h.server.terminate().code(), Some(0));
    m.assert_no_children("SIGTERM").await;
}

/// Writes a small project: sources, an ignored directory and log, a hidden
/// file, and a `.git` directory so `.gitignore` applies (as in rg).
fn generate_tree(root: &Path) {
    let files: &[(&str, &str)] = &[
        (".gitignore", "target/\n*.log\n"),
        ("src/main.rs", "fn main() {\n    // NEEDLE in main\n}\n"),
        ("src/util/strings.rs", "pub fn needle() {} // NEEDLE\n"),
        ("docs/guide.md", "No match here.\n"),
        ("target/debug/gen.rs", "// NEEDLE generated\n"),
        ("run.log", "NEEDLE in a log\n"),
        (".hidden.rs", "// NEEDLE hidden\n"),
    ];
    std::fs::create_dir_all(root.join(".git")).unwrap();
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(found) = find_file(&p, name) {
                return Some(found);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

#[tokio::test]
async fn file_editor_apply_patch_task_tracker_glob_and_grep() {
    let m = Marked::start().await;
    let h = &m.h;
    generate_tree(&h.work);
    let patch = "*** Begin Patch\n*** Add File: {workdir}/added.txt\n+added by a patch\n*** Update File: {workdir}/notes.txt\n@@\n alpha\n-beta\n+BETA\n*** Delete File: {workdir}/docs/guide.md\n*** End Patch";
    h.llm.add_script(
        "files",
        vec![
            Turn::tool(
                "file_editor",
                json!({"command": "create", "path": "{workdir}/notes.txt", "file_text": "alpha\nbeta\ngamma\n"}),
            ),
            Turn::tool("file_editor", json!({"command": "view", "path": "{workdir}/notes.txt"})),
            Turn::tool(
                "file_editor",
                json!({"command": "str_replace", "path": "{workdir}/notes.txt", "old_str": "gamma", "new_str": "delta"}),
            ),
            Turn::tool("file_editor", json!({"command": "undo_edit", "path": "{workdir}/notes.txt"})),
            Turn::tool(
                "file_editor",
                json!({"command": "str_replace", "path": "{workdir}/notes.txt", "old_str": "missing", "new_str": "x"}),
            ),
            Turn::tool("apply_patch", json!({"patch": patch})),
            Turn::tool(
                "task_tracker",
                json!({"command": "plan", "task_list": [
                    {"title": "Write notes", "notes": "first", "status": "done"},
                    {"title": "Patch files", "status": "in_progress"}]}),
            ),
            Turn::tool("task_tracker", json!({"command": "view"})),
            Turn::tool("glob", json!({"pattern": "**/*.rs"})),
            Turn::tool("grep", json!({"pattern": "needle"})),
            terminal("true"),
            finish(),
        ],
    );
    let mut c = h.client().await;
    let tools = [
        "terminal",
        "file_editor",
        "apply_patch",
        "task_tracker",
        "glob",
        "grep",
    ];
    let id = create(&mut c, &h.body("files", &tools)).await;
    run_to_finish(h, &id).await;
    let obs = observations(h, &id).await;
    assert_eq!(obs.len(), 11, "{obs:?}");
    let work = h.work.display().to_string();
    let notes = h.work.join("notes.txt");

    let (created, said) = &obs[0];
    assert_eq!(created["tool_name"], "file_editor");
    assert_eq!(
        said,
        &format!("File created successfully at: {work}/notes.txt")
    );
    let (viewed, _) = &obs[1];
    assert!(
        obs_text(viewed).contains("     1\talpha\n     2\tbeta\n     3\tgamma\n"),
        "{}",
        obs_text(viewed)
    );
    let (replaced, said) = &obs[2];
    assert!(
        said.starts_with(&format!("The file {work}/notes.txt has been edited.")),
        "{said}"
    );
    assert_eq!(replaced["observation"]["is_error"], false);
    let (undone, said) = &obs[3];
    assert!(
        said.starts_with(&format!(
            "Last edit to {work}/notes.txt undone successfully."
        )),
        "{said}"
    );
    assert_eq!(undone["observation"]["is_error"], false);
    let (missing, said) = &obs[4];
    assert_eq!(missing["observation"]["is_error"], true);
    assert!(
        said.contains("No replacement was performed, old_str `missing` did not appear verbatim"),
        "{said}"
    );

    // The patch added, updated and deleted files on disk.
    let (patched, said) = &obs[5];
    assert_eq!(patched["observation"]["is_error"], false, "{said}");
    assert_eq!(
        std::fs::read_to_string(h.work.join("added.txt")).unwrap(),
        "added by a patch" // upstream joins the lines without a final newline
    );
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "alpha\nBETA\ngamma\n"
    );
    assert!(!h.work.join("docs/guide.md").exists());

    // The plan is kept in the conversation's TASKS.json.
    let (planned, said) = &obs[6];
    assert_eq!(planned["observation"]["is_error"], false, "{said}");
    let tasks_file = find_file(&h.data, "TASKS.json").expect("TASKS.json in the conversation");
    assert_eq!(
        tasks_file,
        h.data.join(id.replace('-', "")).join("TASKS.json")
    );
    let tasks: Value = serde_json::from_slice(&std::fs::read(&tasks_file).unwrap()).unwrap();
    assert_eq!(tasks[0]["title"], "Write notes");
    assert_eq!(tasks[0]["status"], "done");
    assert_eq!(tasks[1]["status"], "in_progress");
    let (_, said) = &obs[7];
    assert!(
        said.contains("Write notes") && said.contains("Patch files"),
        "{said}"
    );

    // glob: the ignored directory and log are left out; as with `rg -g`, the
    // pattern itself whitelists the hidden file it matches.
    let (globbed, _) = &obs[8];
    let mut found: Vec<String> = globbed["observation"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            format!("{work}/.hidden.rs"),
            format!("{work}/src/main.rs"),
            format!("{work}/src/util/strings.rs")
        ]
    );
    // grep: ignored and hidden files are skipped.
    let (grepped, said) = &obs[9];
    let mut matches: Vec<String> = grepped["observation"]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    matches.sort();
    assert_eq!(
        matches,
        [
            format!("{work}/src/main.rs"),
            format!("{work}/src/util/strings.rs")
        ]
    );
    assert!(
        said.starts_with("Found 2 file(s) containing pattern 'needle'"),
        "{said}"
    );
    m.delete_and_stop(&id).await;
}

/// `(pid, cwd)` of each shell that read the `.bashrc` of `home`.
fn rc_log(home: &Path) -> Vec<(i32, String)> {
    std::fs::read_to_string(home.join("rc.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, cwd) = l.split_once(' ')?;
            Some((pid.parse().ok()?, cwd.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn a_pre_started_shell_serves_the_first_terminal_and_dies_with_the_server() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".bashrc"),
        "echo \"$$ $PWD\" >> \"$HOME/rc.log\"\nexport FROM_RC=yes\n",
    )
    .unwrap();
    let home_s = home.path().display().to_string();
    let m = Marked::start_with(&[("HOME", &home_s)]).await;
    let h = &m.h;
    // The server starts its idle shell (in $HOME) before any conversation.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rc_log(home.path()).is_empty() {
        assert!(Instant::now() < deadline, "no shell was pre-started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (pooled, cwd) = rc_log(home.path())[0].clone();
    assert_eq!(cwd, home_s);
    assert!(
        m.children().contains(&pooled),
        "{}",
        describe(&m.children())
    );

    h.llm.add_script(
        "pooled",
        vec![terminal("echo $$ \"$PWD\" \"$HOME\" $FROM_RC"), finish()],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("pooled", &["terminal"])).await;
    run_to_finish(h, &id).await;
    let obs = observations(h, &id).await;
    let work = std::fs::canonicalize(&h.work).unwrap();
    assert_eq!(
        obs_text(&obs[0].0),
        format!("{pooled} {} {home_s} yes", work.display())
    );
    assert_eq!(
        obs[0].0["observation"]["metadata"]["working_dir"],
        work.display().to_string()
    );

    // Deleting the conversation kills its shell; the pool's replacement
    // lives until the server stops, and nothing outlives the server.
    delete(&mut c, &id).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.children().contains(&pooled) {
        assert!(
            Instant::now() < deadline,
            "the conversation's shell survived DELETE"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(c);
    let mut m = m;
    assert_eq!(m.h.server.terminate().code(), Some(0));
    m.assert_no_children("SIGTERM").await;
    assert!(
        rc_log(home.path()).len() >= 2,
        "the pool started a replacement"
    );
}
