//! The browser tool set end to end: the real binary with
//! `OH_ENABLE_BROWSER=true` drives Debian's Chromium through chromedriver,
//! scripted by the fake LLM, on pages served from 127.0.0.1
//! (`support/pages.rs`). Each of the fourteen tools is called through a
//! conversation; the tests check the observation in the events, what the
//! model was told, and the pages' resulting state (what the page server
//! received: the submitted form, the loaded pages). A killed Chromium is
//! replaced on the next call with the notice; the browser's and the shell's
//! processes never see the server's credentials or systemd's socket; after
//! `DELETE` and SIGTERM no chromedriver or Chromium process of ours is left.
//!
//! Tests take turns (a lock): each starts its own server, whose start-up
//! check launches Chromium, and two cores do not run two of those well.

#[path = "support/mod.rs"]
pub mod support;

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

#[path = "agent_util/mod.rs"]
pub mod agent_util;

#[path = "support/pages.rs"]
pub mod pages;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

use agent_util::{create, delete, events, obs_text, of_kind, send, told, Harness, Socket};
use fake_llm::Turn;
use pages::PageServer;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The variable every process of a test's server inherits.
const MARKER_VAR: &str = "E2E_BROWSER_MARKER";

/// A server with the browser on, its page server and its process marker.
struct Browsing {
    h: Harness,
    site: PageServer,
    marker: String,
    /// The server's browser directory: every chromedriver and Chromium
    /// process of ours names it in its command line.
    root: PathBuf,
    _notify: (tempfile::TempDir, std::os::unix::net::UnixDatagram),
}

impl Browsing {
    /// Starts the server with credentials and a systemd notify socket in
    /// its environment, none of which its children may inherit.
    async fn start() -> Browsing {
        let marker = uuid::Uuid::new_v4().simple().to_string();
        let notify_dir = tempfile::tempdir().unwrap();
        let notify_path = notify_dir.path().join("notify");
        let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
        let h = Harness::start(&[
            (MARKER_VAR, &marker),
            ("HOME", "/nonexistent"),
            ("OH_ENABLE_BROWSER", "true"),
            ("OH_SECRET_KEY", "e2e-browser-secret-key"),
            ("NOTIFY_SOCKET", &notify_path.display().to_string()),
        ])
        .await;
        let root = std::env::temp_dir().join(format!("agent-server-browsers-{}", h.server.pid()));
        Browsing {
            h,
            site: PageServer::start().await,
            marker,
            root,
            _notify: (notify_dir, notify),
        }
    }

    /// Live processes of ours (the marker in their environment), the
    /// server excepted.
    fn children(&self) -> Vec<i32> {
        let entry = format!("{MARKER_VAR}={}", self.marker);
        let server = self.h.server.pid() as i32;
        all_pids()
            .into_iter()
            .filter(|&pid| pid != server)
            .filter(|pid| environ(*pid).contains(&entry))
            .collect()
    }

    /// Processes whose command line names the server's browser directory
    /// (chromedriver's log path, Chromium's profile).
    fn browser_processes(&self) -> Vec<i32> {
        let root = self.root.display().to_string();
        all_pids()
            .into_iter()
            .filter(|&pid| cmdline(pid).contains(&root))
            .collect()
    }

    /// SIGTERM; then neither a process of ours nor the browser directory is left.
    async fn stop_and_check(mut self) {
        assert_eq!(self.h.server.terminate().code(), Some(0));
        wait_until("no process of ours after SIGTERM", || {
            self.children().is_empty() && self.browser_processes().is_empty()
        })
        .await;
        assert!(!self.root.exists(), "{} is left", self.root.display());
    }
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

fn environ(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

/// Polls `done` for at most 20 s.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The browser observations of a conversation (name, event), in order.
async fn browser_observations(h: &Harness, id: &str) -> Vec<(String, Value)> {
    let mut c = h.client().await;
    of_kind(&events(&mut c, id).await, "ObservationEvent")
        .into_iter()
        .filter(|o| o["tool_name"].as_str().unwrap().starts_with("browser_"))
        .map(|o| (o["tool_name"].as_str().unwrap().to_string(), o.clone()))
        .collect()
}

/// Runs the conversation until its run ends in `finished`.
async fn run_to_finish(h: &Harness, id: &str, message: Option<&str>) {
    let mut c = h.client().await;
    let mut socket = Socket::open(&h.server, id).await;
    // Skip the replayed state of an earlier run.
    socket.until(|v| v["key"] == "full_state").await;
    match message {
        Some(text) => assert_eq!(send(&mut c, id, text, true).await.0, StatusCode::OK),
        None => assert_eq!(agent_util::run(&mut c, id).await, StatusCode::OK),
    }
    socket
        .until(|v| v["key"] == "execution_status" && v["value"] == "running")
        .await;
    let end = socket
        .until(|v| {
            v["key"] == "execution_status"
                && ["finished", "error", "stuck"].contains(&v["value"].as_str().unwrap_or(""))
        })
        .await;
    assert_eq!(
        end["value"],
        "finished",
        "frames: {:?}",
        agent_util::kinds(&socket.frames)
    );
}

fn tool(name: &str, args: Value) -> Turn {
    Turn::tool(name, args)
}

fn finish() -> Turn {
    Turn::tool("finish", json!({"message": "done"}))
}

/// A start request offering the browser tool set (and the terminal).
fn body(h: &Harness, script: &str) -> Value {
    h.body(script, &["browser_tool_set", "terminal"])
}

fn screenshot_files(conversation: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(conversation.join("observations"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("browser_screenshot_"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fourteen_tools_through_a_conversation() {
    let _turn = TURN.lock().await;
    let b = Browsing::start().await;
    let h = &b.h;
    let url = |path: &str| b.site.url(path);
    let storage_state = json!({
        "cookies": [{"name": "agent_cookie", "value": "A1", "url": b.site.origin()}],
        "origins": [{"origin": b.site.origin(), "localStorage": [{"key": "from-agent", "value": "hello"}]}]
    });
    let tour = vec![
        tool("browser_navigate", json!({"url": url("index.html")})),
        tool("browser_get_state", json!({})),
        tool("browser_click", json!({"index": 1})),
        tool("browser_get_content", json!({"extract_links": true})),
        tool("browser_go_back", json!({})),
        tool("browser_scroll", json!({"direction": "down"})),
        tool("browser_navigate", json!({"url": url("form.html")})),
        tool("browser_get_state", json!({"include_screenshot": true})),
        tool("browser_type", json!({"index": 1, "text": "Ada Lovelace"})),
        tool(
            "browser_type",
            json!({"index": 2, "text": "ada@example.org"}),
        ),
        tool("browser_click", json!({"index": 4})),
        tool("browser_get_content", json!({})),
        tool("browser_start_recording", json!({})),
        tool(
            "browser_navigate",
            json!({"url": url("storage.html"), "new_tab": true}),
        ),
        tool("browser_get_storage", json!({})),
        tool(
            "browser_set_storage",
            json!({"storage_state": storage_state}),
        ),
        tool("browser_navigate", json!({"url": url("storage.html")})),
        tool("browser_get_content", json!({})),
        tool("browser_stop_recording", json!({})),
        tool("browser_navigate", json!({"url": url("tab.html")})),
        tool("browser_get_state", json!({})),
        tool("browser_click", json!({"index": 1})),
        tool("browser_navigate", json!({"url": url("/slow?ms=1500")})),
        tool("browser_list_tabs", json!({})),
        tool("terminal", json!({"command": "echo shell-ready"})),
        finish(),
    ];
    h.llm.add_script("tour", tour.clone());
    let mut c = h.client().await;
    let id = create(&mut c, &body(h, "tour")).await;
    run_to_finish(h, &id, None).await;
    let obs = browser_observations(h, &id).await;
    let texts: Vec<String> = obs.iter().map(|(_, o)| obs_text(o)).collect();
    assert_eq!(obs.len(), 24, "{texts:#?}");
    for (name, o) in &obs {
        assert_eq!(o["observation"]["kind"], "BrowserObservation");
        assert_eq!(
            o["observation"]["is_error"],
            false,
            "{name}: {}",
            obs_text(o)
        );
    }
    let said = |i: usize| told(h, obs[i].1["tool_call_id"].as_str().unwrap());

    // Navigation, state, click, content, back, scroll.
    assert_eq!(texts[0], format!("Navigated to: {}", url("index.html")));
    let state: Value = serde_json::from_str(&texts[1]).unwrap();
    assert_eq!(state["title"], "Fixture Home");
    assert_eq!(
        state["interactive_elements"][0],
        json!({"index": 1, "tag": "a", "text": "Second page", "href": "page2.html"})
    );
    assert!(said(1).contains("Fixture Home"));
    assert_eq!(texts[2], "Clicked element 1");
    assert!(
        texts[3].contains("# Second page\nYou reached the second page."),
        "{}",
        texts[3]
    );
    assert!(
        texts[3].contains(&format!("[Back home]({})", url("index.html"))),
        "{}",
        texts[3]
    );
    assert_eq!(texts[4], "Navigated back");
    assert_eq!(texts[5], "Scrolled down");

    // The form: numbered, typed into, submitted; the page server got the values.
    let form: Value = serde_json::from_str(&texts[7]).unwrap();
    let tags: Vec<&str> = form["interactive_elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["input", "input", "textarea", "button"]);
    let shot = obs[7].1["observation"]["screenshot_data"].as_str().unwrap();
    assert!(shot.starts_with("iVBORw0KGgo"), "a PNG screenshot");
    let conversation = h.data.join(id.replace('-', ""));
    let shots = screenshot_files(&conversation);
    assert_eq!(shots.len(), 1, "saved with the conversation");
    assert!(std::fs::read(&shots[0]).unwrap().starts_with(b"\x89PNG"));
    assert!(said(7).contains(&format!("Screenshot saved to: {}", shots[0].display())));
    assert_eq!(texts[8], "Typed 'Ada Lovelace' into element 1");
    assert_eq!(texts[9], "Typed <email> into element 2");
    assert_eq!(texts[10], "Clicked element 4");
    assert!(texts[11].contains("- name=Ada Lovelace\n"), "{}", texts[11]);
    let submitted: Vec<String> = b
        .site
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/submit?"))
        .collect();
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    assert!(
        submitted[0].contains("name=Ada+Lovelace"),
        "{}",
        submitted[0]
    );
    assert!(
        submitted[0].contains("email=ada%40example.org"),
        "{}",
        submitted[0]
    );

    // Recording, a second tab, storage read and written.
    assert_eq!(texts[12], "Recording started");
    assert_eq!(
        texts[13],
        format!("Opened new tab with URL: {}", url("storage.html"))
    );
    let storage: Value = serde_json::from_str(&texts[14]).unwrap();
    assert_eq!(
        storage["origins"],
        json!([{"origin": b.site.origin(),
                "localStorage": [{"name": "fixture-local", "value": "L1"}],
                "sessionStorage": [{"name": "fixture-session", "value": "S1"}]}])
    );
    assert!(storage["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "fixture_cookie" && c["value"] == "C1"));
    assert_eq!(texts[15], "Storage set successfully");
    assert!(texts[17].contains("from-agent=hello"), "{}", texts[17]);
    assert!(
        texts[18].starts_with("Recording stopped. Captured "),
        "{}",
        texts[18]
    );
    let saved = texts[18].split("Saved to: ").nth(1).unwrap();
    assert!(Path::new(saved).starts_with(h.work.join(".agent_tmp/browser_observations")));
    assert!(Path::new(saved).join("1.json").is_file());

    // A link that opens a tab, a slow page, the tab list.
    assert_eq!(texts[21], "Clicked element 1");
    assert_eq!(texts[22], format!("Navigated to: {}", url("/slow?ms=1500")));
    let tabs: Vec<Value> = serde_json::from_str(&texts[23]).unwrap();
    let tab_urls: Vec<&str> = tabs.iter().map(|t| t["url"].as_str().unwrap()).collect();
    let submit_tab = tab_urls
        .iter()
        .position(|u| u.contains("/submit?"))
        .unwrap();
    let slow_tab = tab_urls.iter().position(|u| u.contains("/slow?")).unwrap();
    assert_eq!(tabs.len(), 3, "{tab_urls:?}");
    assert!(b.site.requests().contains(&"/slow?ms=1500".to_string()));

    // Environment hygiene: the browser's processes and the shell run
    // without the server's credentials or its notify socket.
    let ours = b.children();
    let names: Vec<String> = ours.iter().map(|&p| cmdline(p)).collect();
    assert!(
        names.iter().any(|n| n.contains("chromedriver")),
        "{names:#?}"
    );
    assert!(
        names.iter().any(|n| n.contains("--user-data-dir=")),
        "{names:#?}"
    );
    assert!(names.iter().any(|n| n.contains("bash")), "{names:#?}");
    for pid in &ours {
        for var in environ(*pid) {
            assert!(
                !var.starts_with("OH_SECRET_KEY=")
                    && !var.starts_with("OH_SESSION_API_KEYS")
                    && !var.starts_with("NOTIFY_SOCKET="),
                "{var} reached {}",
                cmdline(*pid)
            );
        }
    }
    assert!(environ(h.server.pid() as i32)
        .iter()
        .any(|v| v.starts_with("OH_SECRET_KEY=")));

    // Switch and close tabs with the ids the model was shown.
    let submit_id = tabs[submit_tab]["tab_id"].as_str().unwrap().to_string();
    let slow_id = tabs[slow_tab]["tab_id"].as_str().unwrap().to_string();
    // The turn index is the number of assistant turns so far: the tour's.
    let mut script = tour;
    script.extend([
        tool("browser_switch_tab", json!({"tab_id": submit_id})),
        tool("browser_close_tab", json!({"tab_id": slow_id})),
        tool("browser_list_tabs", json!({})),
        tool("browser_switch_tab", json!({"tab_id": "zzzz"})),
        finish(),
    ]);
    h.llm.add_script("tour", script);
    run_to_finish(h, &id, Some("Now tidy up the tabs.")).await;
    let obs = browser_observations(h, &id).await;
    let texts: Vec<String> = obs[24..].iter().map(|(_, o)| obs_text(o)).collect();
    assert_eq!(texts.len(), 4, "{texts:#?}");
    assert!(
        texts[0].starts_with(&format!("Switched to tab {submit_id}: ")),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].starts_with(&format!("Closed tab # {slow_id}, now on ")),
        "{}",
        texts[1]
    );
    let left: Vec<Value> = serde_json::from_str(&texts[2]).unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|t| t["tab_id"] != slow_id.as_str()));
    assert_eq!(obs[27].1["observation"]["is_error"], true);
    assert_eq!(
        texts[3],
        "Browser operation failed: No TargetID found ending in tab_id=...zzzz"
    );

    // DELETE closes this conversation's browser.
    let profiles = b.root.join("profile-").display().to_string();
    assert!(b
        .browser_processes()
        .iter()
        .any(|&p| cmdline(p).contains(&profiles)));
    delete(&mut c, &id).await;
    wait_until("the conversation's browser to close", || {
        !b.browser_processes()
            .iter()
            .any(|&p| cmdline(p).contains(&profiles))
    })
    .await;
    drop(c);
    b.stop_and_check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_chromium_is_replaced_with_a_notice() {
    let _turn = TURN.lock().await;
    let b = Browsing::start().await;
    let h = &b.h;

    // The start-up check passes: /server_info lists the browser.
    let mut c = h.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = c.get("/server_info").await.json();
        if info["usable_tools"]
            .as_array()
            .unwrap()
            .contains(&json!("browser_tool_set"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the browser check did not pass: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let first = vec![
        tool("browser_navigate", json!({"url": b.site.url("index.html")})),
        finish(),
    ];
    h.llm.add_script("crash", first.clone());
    let id = create(&mut c, &body(h, "crash")).await;
    run_to_finish(h, &id, None).await;

    // Chromium dies between two calls.
    let profiles = b.root.join("profile-").display().to_string();
    let chromium: Vec<i32> = b
        .browser_processes()
        .into_iter()
        .filter(|&p| cmdline(p).contains(&profiles))
        .collect();
    assert!(!chromium.is_empty());
    for pid in &chromium {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    wait_until("Chromium to die", || {
        !b.browser_processes()
            .iter()
            .any(|&p| cmdline(p).contains(&profiles))
    })
    .await;
    let mut script = first;
    script.extend([
        tool("browser_get_state", json!({})),
        tool("browser_navigate", json!({"url": b.site.url("page2.html")})),
        finish(),
    ]);
    h.llm.add_script("crash", script);
    run_to_finish(h, &id, Some("Look again.")).await;
    let obs = browser_observations(h, &id).await;
    assert_eq!(obs.len(), 3);
    let recovered = obs_text(&obs[1].1);
    assert!(
        recovered.starts_with("Note: the browser had crashed or stopped responding, so a new browser session was started."),
        "{recovered}"
    );
    assert_eq!(obs[1].1["observation"]["is_error"], false);
    let state = recovered.split_once("\n\n").map_or("", |(_, s)| s);
    assert_eq!(
        serde_json::from_str::<Value>(state).unwrap()["url"],
        "about:blank"
    );
    assert!(told(h, obs[1].1["tool_call_id"].as_str().unwrap())
        .contains("Note: the browser had crashed"));
    // The notice is given once; the new browser works.
    assert_eq!(
        obs_text(&obs[2].1),
        format!("Navigated to: {}", b.site.url("page2.html"))
    );
    assert!(b.site.requests().contains(&"/page2.html".to_string()));
    drop(c);
    b.stop_and_check().await;
}
