//! The browser tool set on real Chromium, driven through the `Tool` trait
//! against pages served from 127.0.0.1.
//!
//! Tests share one chromedriver and take turns (a lock) so that process
//! checks see only their own browsers and the two cores are not swamped.

#[path = "support/pages.rs"]
pub mod pages;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_server::api::message::Content;
use agent_server::tools::browser::{
    browser_root_dir, check_browser, factory, processes_with_marker, shutdown_browsers, APT_HINT,
};
use agent_server::tools::{BrowserSettings, ExecContext, Observation, Tool, ToolEnv, ToolSettings};
use pages::PageServer;
use serde_json::{json, Value};

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A test's exclusive turn with the browser. When it ends, even by a
/// panic, [`shutdown_browsers`] kills and reaps the shared chromedriver,
/// kills every other process of ours and removes the root directory, all
/// before the next test's turn begins: nothing outlives the test binary, and
/// the next test starts a new chromedriver rather than finding a dying one.
struct Turn {
    _exclusive: tokio::sync::MutexGuard<'static, ()>,
}

async fn turn() -> Turn {
    Turn {
        _exclusive: TURN.lock().await,
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Drop cannot await; a runtime of its own on another thread can
        // (the test's runtime may be the one unwinding).
        let cleanup = std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime")
                .block_on(shutdown_browsers());
        });
        let _ = cleanup.join();
        // SIGKILLed Chromium processes take a moment to go.
        let root = browser_root_dir().display().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids_naming(&root).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Pids whose command line contains `marker`.
fn pids_naming(marker: &str) -> Vec<i32> {
    let own = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
                String::from_utf8_lossy(&raw)
                    .replace('\0', " ")
                    .contains(marker)
            })
        })
        .collect()
}

/// One conversation's browser tools plus the directories they use.
struct Browser {
    tools: Vec<Arc<dyn Tool>>,
    work: tempfile::TempDir,
    conversation: tempfile::TempDir,
}

fn settings() -> BrowserSettings {
    BrowserSettings {
        enabled: true,
        max_concurrent_browsers: 0,
        idle_timeout_seconds: 0.0,
        queue_timeout_seconds: 0.0,
        ..BrowserSettings::default()
    }
}

impl Browser {
    fn new(browser: BrowserSettings) -> Browser {
        let work = tempfile::tempdir().unwrap();
        let conversation = tempfile::tempdir().unwrap();
        let env = ToolEnv {
            vision: true,
            working_dir: work.path().to_path_buf(),
            conversation_dir: conversation.path().to_path_buf(),
            params: serde_json::Map::new(),
            settings: Arc::new(ToolSettings {
                browser,
                ..ToolSettings::default()
            }),
        };
        let tools = (factory().create)(&env).unwrap();
        assert_eq!(tools.len(), 14);
        Browser {
            tools,
            work,
            conversation,
        }
    }

    async fn call(&self, name: &str, args: Value) -> Observation {
        let tool = self
            .tools
            .iter()
            .find(|t| t.definition().name == name)
            .unwrap_or_else(|| panic!("no tool {name}"));
        let action = tool.validate(args.as_object().unwrap()).unwrap();
        tool.execute(&action, &ExecContext::default())
            .await
            .unwrap()
    }

    /// The observation text; panics on an error observation.
    async fn ok(&self, name: &str, args: Value) -> String {
        let obs = self.call(name, args).await;
        let text = text(&obs);
        assert!(!obs.is_error(), "{name} failed: {text}");
        text
    }

    async fn state(&self) -> Value {
        serde_json::from_str(&self.ok("browser_get_state", json!({})).await).unwrap()
    }

    /// The index `get_state` gave the first element matching `pred`.
    async fn index_of(&self, pred: impl Fn(&Value) -> bool) -> u64 {
        let state = self.state().await;
        state["interactive_elements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| pred(e))
            .unwrap_or_else(|| panic!("no such element in {state:#}"))["index"]
            .as_u64()
            .unwrap()
    }

    async fn close(&self) {
        for tool in &self.tools {
            tool.close().await;
        }
    }
}

fn text(obs: &Observation) -> String {
    obs.json["content"][0]["text"].as_str().unwrap().to_string()
}

fn profiles_marker() -> PathBuf {
    browser_root_dir().join("profile-")
}

/// The distinct `--user-data-dir` values of our running Chromium processes.
fn user_data_dirs() -> BTreeSet<String> {
    let marker = format!("--user-data-dir={}", profiles_marker().display());
    let mut dirs = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        for arg in String::from_utf8_lossy(&raw).split('\0') {
            if arg.starts_with(&marker) {
                dirs.insert(arg.to_string());
            }
        }
    }
    dirs
}

/// Waits (bounded) until no process names `marker`.
async fn assert_no_processes(marker: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with_marker(marker).await;
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes still running for {}: {left:?}",
            marker.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn profile_dirs_on_disk() -> Vec<PathBuf> {
    std::fs::read_dir(browser_root_dir())
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("profile-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigation_state_content_scrolling_and_history() {
    let _turn = turn().await;
    let site = PageServer::start().await;
    let b = Browser::new(settings());

    let home = site.url("index.html");
    assert_eq!(
        b.ok("browser_navigate", json!({"url": home})).await,
        format!("Navigated to: {home}")
    );
    let state = b.state().await;
    assert_eq!(state["url"], home);
    assert_eq!(state["title"], "Fixture Home");
    assert_eq!(
        state["tabs"],
        json!([{"url": home, "title": "Fixture Home"}])
    );
    let elements = state["interactive_elements"].as_array().unwrap();
    assert_eq!(elements[0]["index"], 1);
    assert_eq!(
        elements[0],
        json!({"index": 1, "tag": "a", "text": "Second page", "href": "page2.html"})
    );
    assert!(state["viewport"]["width"].as_u64().unwrap() > 0);

    assert_eq!(
        b.ok("browser_click", json!({"index": 1})).await,
        "Clicked element 1"
    );
    let content = b.ok("browser_get_content", json!({})).await;
    assert!(
        content.starts_with(&format!(
            "<url>\n{}\n</url>\n<content>\n<content_stats>\nContent processed: ",
            site.url("page2.html")
        )),
        "{content}"
    );
    assert!(content.contains("<webpage_content>\n# Second page\nYou reached the second page.\nBack home\n</webpage_content>"), "{content}");
    let with_links = b
        .ok("browser_get_content", json!({"extract_links": true}))
        .await;
    assert!(
        with_links.contains(&format!("[Back home]({home})")),
        "{with_links}"
    );

    assert_eq!(b.ok("browser_go_back", json!({})).await, "Navigated back");
    assert_eq!(b.state().await["url"], home);
    assert_eq!(b.ok("browser_scroll", json!({})).await, "Scrolled down");
    assert_eq!(b.state().await["scroll"]["y"], 500);
    assert_eq!(
        b.ok("browser_scroll", json!({"direction": "up"})).await,
        "Scrolled up"
    );
    assert_eq!(b.state().await["scroll"]["y"], 0);
    assert_eq!(
        b.ok("browser_click", json!({"index": 999})).await,
        "Element with index 999 not found"
    );

    // Paging through a page longer than 30 000 characters.
    b.ok(
        "browser_navigate",
        json!({"url": site.url("/long?paragraphs=600")}),
    )
    .await;
    let first = b.ok("browser_get_content", json!({})).await;
    let hint = "use start_from_char=";
    let at = first.find(hint).expect("continuation hint") + hint.len();
    let next: usize = first[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > 29_000 && next <= 30_000, "{next}");
    let second = b
        .ok("browser_get_content", json!({"start_from_char": next}))
        .await;
    assert!(second.contains("(started from char "), "{}", &second[..300]);
    assert!(second.contains("Paragraph 600 of the long page."));
    assert!(!first.contains("Paragraph 600 of"));

    // A screenshot comes back as an image and is saved with the conversation.
    let obs = b
        .call("browser_get_state", json!({"include_screenshot": true}))
        .await;
    assert!(!obs.is_error());
    let data = obs.json["screenshot_data"].as_str().unwrap();
    assert!(data.starts_with("iVBORw0KGgo"));
    let state: Value = serde_json::from_str(&text(&obs)).unwrap();
    assert!(state.get("screenshot").is_none());
    assert_eq!(state["screenshot_dimensions"], state["viewport"]);
    let saved = obs.llm_content[1].as_text().unwrap();
    let path = saved.strip_prefix("Screenshot saved to: ").unwrap();
    assert!(Path::new(path).starts_with(b.conversation.path().join("observations")));
    assert!(std::fs::read(path).unwrap().starts_with(b"\x89PNG"));
    match &obs.llm_content[2] {
        Content::Image(image) => {
            assert_eq!(image.image_urls[0], format!("data:image/png;base64,{data}"))
        }
        other => panic!("expected the screenshot, got {other:?}"),
    }

    b.close().await;
    assert_no_processes(&profiles_marker()).await;
    assert!(profile_dirs_on_disk().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_into_a_form_and_submitting_it() {
    let _turn = turn().await;
    let site = PageServer::start().await;
    let b = Browser::new(settings());
    b.ok("browser_navigate", json!({"url": site.url("form.html")}))
        .await;

    let state = b.state().await;
    let tags: Vec<&str> = state["interactive_elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["input", "input", "textarea", "button"], "{state:#}");

    let name = b.index_of(|e| e["placeholder"] == "Your name").await;
    assert_eq!(
        b.ok(
            "browser_type",
            json!({"index": name, "text": "Ada Lovelace"})
        )
        .await,
        format!("Typed 'Ada Lovelace' into element {name}")
    );
    let email = b.index_of(|e| e["placeholder"] == "Email address").await;
    assert_eq!(
        b.ok(
            "browser_type",
            json!({"index": email, "text": "ada@example.org"})
        )
        .await,
        format!("Typed <email> into element {email}")
    );
    let comment = b.index_of(|e| e["tag"] == "textarea").await;
    b.ok(
        "browser_type",
        json!({"index": comment, "text": "two\nlines"}),
    )
    .await;
    let send = b.index_of(|e| e["text"] == "Send").await;
    assert_eq!(
        b.ok("browser_click", json!({"index": send})).await,
        format!("Clicked element {send}")
    );

    let state = b.state().await;
    assert!(state["url"]
        .as_str()
        .unwrap()
        .starts_with(&site.url("submit?")));
    let content = b.ok("browser_get_content", json!({})).await;
    // Typing replaced the prefilled value.
    assert!(content.contains("- name=Ada Lovelace\n"), "{content}");
    assert!(content.contains("- email=ada@example.org\n"), "{content}");
    assert!(content.contains("- comment=two lines\n"), "{content}");
    assert!(content.contains("- secret=hidden-value"), "{content}");

    // Indexes belong to the page they were numbered on.
    assert_eq!(
        b.ok("browser_type", json!({"index": name, "text": "again"}))
            .await,
        format!("Element with index {name} not found")
    );

    b.close().await;
    assert_no_processes(&profiles_marker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_storage_and_recording() {
    let _turn = turn().await;
    let site = PageServer::start().await;
    let b = Browser::new(settings());

    assert_eq!(
        b.ok("browser_start_recording", json!({})).await,
        "Recording started"
    );
    assert_eq!(
        b.ok("browser_start_recording", json!({})).await,
        "Already recording"
    );

    b.ok("browser_navigate", json!({"url": site.url("tab.html")}))
        .await;
    let link = b.index_of(|e| e["href"] == "page2.html").await;
    assert_eq!(
        b.ok("browser_click", json!({"index": link})).await,
        format!("Clicked element {link}")
    );
    // The link opened a second tab, which now has the focus.
    let state = b.state().await;
    assert_eq!(state["url"], site.url("page2.html"));
    assert_eq!(state["tabs"].as_array().unwrap().len(), 2);
    let tabs: Value = serde_json::from_str(&b.ok("browser_list_tabs", json!({})).await).unwrap();
    let tabs = tabs.as_array().unwrap();
    assert_eq!(tabs.len(), 2);
    assert_eq!(tabs[0]["url"], site.url("tab.html"));
    assert_eq!(tabs[0]["title"], "Tab Opener");
    assert_eq!(tabs[1]["url"], site.url("page2.html"));
    let first = tabs[0]["tab_id"].as_str().unwrap().to_string();
    let second = tabs[1]["tab_id"].as_str().unwrap().to_string();
    assert_eq!(first.len(), 4);
    assert_ne!(first, second);

    assert_eq!(
        b.ok("browser_switch_tab", json!({"tab_id": first})).await,
        format!("Switched to tab {first}: {}", site.url("tab.html"))
    );
    assert_eq!(b.state().await["url"], site.url("tab.html"));
    assert_eq!(
        b.ok("browser_close_tab", json!({"tab_id": second})).await,
        format!("Closed tab # {second}, now on {}", site.url("tab.html"))
    );
    let missing = b
        .call("browser_switch_tab", json!({"tab_id": "zzzz"}))
        .await;
    assert!(missing.is_error());
    assert_eq!(
        text(&missing),
        "Browser operation failed: No TargetID found ending in tab_id=...zzzz"
    );

    // A link opened in a new tab on request.
    let link = b.index_of(|e| e["href"] == "page2.html").await;
    let opened = b
        .ok("browser_click", json!({"index": link, "new_tab": true}))
        .await;
    assert_eq!(
        opened,
        format!(
            "Clicked element {link} and opened in new tab {}...",
            &site.url("page2.html")[..20]
        )
    );
    let storage_url = site.url("storage.html");
    assert_eq!(
        b.ok(
            "browser_navigate",
            json!({"url": storage_url, "new_tab": true})
        )
        .await,
        format!("Opened new tab with URL: {storage_url}")
    );
    let tabs: Value = serde_json::from_str(&b.ok("browser_list_tabs", json!({})).await).unwrap();
    assert_eq!(tabs.as_array().unwrap().len(), 3);

    // Storage the page set, read back through DevTools.
    let storage: Value =
        serde_json::from_str(&b.ok("browser_get_storage", json!({})).await).unwrap();
    let cookies = storage["cookies"].as_array().unwrap();
    assert!(
        cookies
            .iter()
            .any(|c| c["name"] == "fixture_cookie" && c["value"] == "C1"),
        "{storage:#}"
    );
    assert_eq!(
        storage["origins"],
        json!([{"origin": site.origin(),
                "localStorage": [{"name": "fixture-local", "value": "L1"}],
                "sessionStorage": [{"name": "fixture-session", "value": "S1"}]}])
    );

    let new_state = json!({
        "cookies": [{"name": "agent_cookie", "value": "A1", "url": site.origin()}],
        "origins": [{"origin": site.origin(), "localStorage": [{"key": "from-agent", "value": "hello"}]}]
    });
    assert_eq!(
        b.ok("browser_set_storage", json!({"storage_state": new_state}))
            .await,
        "Storage set successfully"
    );
    b.ok("browser_navigate", json!({"url": storage_url})).await;
    let content = b.ok("browser_get_content", json!({})).await;
    assert!(content.contains("from-agent=hello"), "{content}");
    let storage: Value =
        serde_json::from_str(&b.ok("browser_get_storage", json!({})).await).unwrap();
    assert!(storage["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "agent_cookie" && c["value"] == "A1"));

    // Typed text never reaches the recording, only its length.
    b.ok("browser_navigate", json!({"url": site.url("form.html")}))
        .await;
    let name = b.index_of(|e| e["placeholder"] == "Your name").await;
    b.ok(
        "browser_type",
        json!({"index": name, "text": "hunter2-secret"}),
    )
    .await;

    let stopped = b.ok("browser_stop_recording", json!({})).await;
    let prefix = "Recording stopped. Captured ";
    assert!(stopped.starts_with(prefix), "{stopped}");
    let dir = stopped.split("Saved to: ").nth(1).unwrap();
    let dir = Path::new(dir);
    assert!(dir.starts_with(b.work.path().join(".agent_tmp/browser_observations")));
    let first_file: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("1.json")).unwrap()).unwrap();
    let mut kinds = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        files += 1;
        let raw = std::fs::read_to_string(entry.path()).unwrap();
        assert!(!raw.contains("hunter2-secret"));
        let events: Vec<Value> = serde_json::from_str(&raw).unwrap();
        kinds.extend(
            events
                .iter()
                .map(|e| e["type"].as_str().unwrap().to_string()),
        );
    }
    assert!(!first_file.is_empty());
    assert!(
        stopped.contains(&format!("in {files} file(s).")),
        "{stopped}"
    );
    for kind in ["meta", "full_snapshot", "action", "click", "input"] {
        assert!(kinds.contains(kind), "no {kind} event in {kinds:?}");
    }
    assert_eq!(
        b.ok("browser_stop_recording", json!({})).await,
        "Error: Not recording. Call browser_start_recording first."
    );

    b.close().await;
    assert_no_processes(&profiles_marker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_pages_and_url_filters() {
    let _turn = turn().await;
    let site = PageServer::start().await;
    let b = Browser::new(BrowserSettings {
        denied_urls: vec!["*://*/private*".into()],
        ..settings()
    });

    let slow = site.url("/slow?ms=1500");
    assert_eq!(
        b.ok("browser_navigate", json!({"url": slow})).await,
        format!("Navigated to: {slow}")
    );
    let content = b.ok("browser_get_content", json!({})).await;
    assert!(content.contains("# Slow page loaded"), "{content}");

    let private = site.url("private.html");
    let refused = b.call("browser_navigate", json!({"url": private})).await;
    assert!(refused.is_error());
    assert_eq!(
        text(&refused),
        format!("Browser operation failed: Navigation to {private} blocked by security policy")
    );
    assert_eq!(b.state().await["url"], slow);

    b.ok("browser_navigate", json!({"url": site.url("tab.html")}))
        .await;
    let link = b.index_of(|e| e["href"] == "private.html").await;
    let refused = b.call("browser_click", json!({"index": link})).await;
    assert!(refused.is_error());
    assert!(text(&refused).ends_with("private.html blocked by security policy"));
    assert_eq!(b.state().await["url"], site.url("tab.html"));
    b.close().await;

    // With an allow list, everything else is refused.
    let only_form = Browser::new(BrowserSettings {
        allowed_urls: vec![format!("{}/form.html", site.origin())],
        ..settings()
    });
    only_form
        .ok("browser_navigate", json!({"url": site.url("form.html")}))
        .await;
    let refused = only_form
        .call("browser_navigate", json!({"url": site.url("index.html")}))
        .await;
    assert!(refused.is_error());
    only_form.close().await;
    assert_no_processes(&profiles_marker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_browser_is_restarted_on_the_next_call() {
    let _turn = turn().await;
    let site = PageServer::start().await;
    let b = Browser::new(settings());
    b.ok("browser_navigate", json!({"url": site.url("index.html")}))
        .await;
    let before = user_data_dirs();
    assert_eq!(before.len(), 1);

    for pid in processes_with_marker(&profiles_marker()).await {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap_or(());
    }
    assert_no_processes(&profiles_marker()).await;

    let obs = b.call("browser_get_state", json!({})).await;
    let shown = text(&obs);
    assert!(
        shown.starts_with("Note: the browser had crashed or stopped responding, so a new browser session was started."),
        "{shown}"
    );
    assert!(!obs.is_error(), "{shown}");
    let after = user_data_dirs();
    assert_eq!(after.len(), 1);
    assert_ne!(before, after, "a new profile is used");

    // The notice is given once; the new browser works.
    let home = site.url("index.html");
    assert_eq!(
        b.ok("browser_navigate", json!({"url": home})).await,
        format!("Navigated to: {home}")
    );

    // chromedriver itself dies: it is restarted along with the browser.
    let driver = browser_root_dir().join("chromedriver-");
    let drivers = processes_with_marker(&driver).await;
    assert_eq!(drivers.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(drivers[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_no_processes(&driver).await;
    let shown = b
        .ok("browser_navigate", json!({"url": site.url("page2.html")}))
        .await;
    assert!(
        shown.starts_with("Note: the browser had crashed"),
        "{shown}"
    );
    assert!(shown.ends_with(&format!("Navigated to: {}", site.url("page2.html"))));
    let restarted = processes_with_marker(&driver).await;
    assert_eq!(restarted.len(), 1);
    assert_ne!(restarted, drivers);
    b.close().await;
    assert_no_processes(&profiles_marker()).await;
    assert!(profile_dirs_on_disk().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_hung_chromedriver_is_replaced_for_the_next_session() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let _turn = turn().await;
    let site = PageServer::start().await;
    let driver_marker = browser_root_dir().join("chromedriver-");
    let first = Browser::new(settings());
    first
        .ok("browser_navigate", json!({"url": site.url("index.html")}))
        .await;
    first.close().await;

    // Killed and not yet reaped: the next session must not take it for alive.
    let drivers = processes_with_marker(&driver_marker).await;
    assert_eq!(drivers.len(), 1);
    kill(Pid::from_raw(drivers[0]), Signal::SIGKILL).unwrap();
    let second = Browser::new(settings());
    let home = site.url("index.html");
    assert_eq!(
        second.ok("browser_navigate", json!({"url": home})).await,
        format!("Navigated to: {home}")
    );
    second.close().await;
    let replaced = processes_with_marker(&driver_marker).await;
    assert_eq!(replaced.len(), 1);
    assert_ne!(replaced, drivers);

    // Alive but not answering (stopped): replaced as well.
    kill(Pid::from_raw(replaced[0]), Signal::SIGSTOP).unwrap();
    let third = Browser::new(settings());
    assert_eq!(
        third.ok("browser_navigate", json!({"url": home})).await,
        format!("Navigated to: {home}")
    );
    third.close().await;
    let again = processes_with_marker(&driver_marker).await;
    assert_eq!(again.len(), 1);
    assert!(!again.contains(&replaced[0]));
    assert_no_processes(&profiles_marker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conversations_cap_and_idle_close() {
    let _turn = turn().await;
    let site = PageServer::start().await;

    // Two conversations at once, each with its own browser.
    let a = Browser::new(settings());
    let b = Browser::new(settings());
    let (ra, rb) = tokio::join!(
        a.call("browser_navigate", json!({"url": site.url("index.html")})),
        b.call("browser_navigate", json!({"url": site.url("page2.html")})),
    );
    assert!(!ra.is_error() && !rb.is_error());
    assert_eq!(a.state().await["url"], site.url("index.html"));
    assert_eq!(b.state().await["url"], site.url("page2.html"));
    assert_eq!(user_data_dirs().len(), 2);
    a.close().await;
    b.close().await;
    assert_no_processes(&profiles_marker()).await;

    // A cap of one: a second browser is refused, or waits for the first.
    let capped = |wait: f64| BrowserSettings {
        max_concurrent_browsers: 1,
        queue_timeout_seconds: wait,
        ..settings()
    };
    let first = Browser::new(capped(0.2));
    let second = Browser::new(capped(0.2));
    let third = Browser::new(capped(60.0));
    first
        .ok("browser_navigate", json!({"url": site.url("index.html")}))
        .await;
    let refused = second
        .call("browser_navigate", json!({"url": site.url("index.html")}))
        .await;
    assert!(refused.is_error());
    assert!(
        text(&refused).starts_with("Browser operation failed: Too many browsers are open"),
        "{}",
        text(&refused)
    );
    let queued = third.call("browser_navigate", json!({"url": site.url("page2.html")}));
    let release = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        first.close().await;
    };
    let (queued, ()) = tokio::join!(queued, release);
    assert!(!queued.is_error(), "{}", text(&queued));
    assert_eq!(third.state().await["url"], site.url("page2.html"));
    third.close().await;

    // An idle browser is closed and the next call says so.
    let idle = Browser::new(BrowserSettings {
        idle_timeout_seconds: 1.0,
        ..settings()
    });
    idle.ok("browser_navigate", json!({"url": site.url("index.html")}))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_no_processes(&profiles_marker()).await;
    let shown = idle.ok("browser_get_state", json!({})).await;
    assert!(
        shown.starts_with("Note: the browser was closed after being idle"),
        "{shown}"
    );
    idle.close().await;
    assert_no_processes(&profiles_marker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_then_shutdown_leaves_nothing_behind() {
    let _turn = turn().await;
    let report = check_browser(&settings()).await.unwrap();
    assert!(report.contains("chromedriver: "), "{report}");
    assert!(report.contains("chromium: "), "{report}");
    assert!(report.contains("page load: ok"), "{report}");

    let missing = check_browser(&BrowserSettings {
        chromedriver_path: Some("/nonexistent/chromedriver".into()),
        ..settings()
    })
    .await
    .unwrap_err();
    assert!(missing.contains("/nonexistent/chromedriver"), "{missing}");
    assert!(missing.contains(APT_HINT), "{missing}");

    let site = PageServer::start().await;
    let b = Browser::new(settings());
    b.ok("browser_navigate", json!({"url": site.url("index.html")}))
        .await;
    // chromedriver names the root directory in its --log-path.
    assert!(!processes_with_marker(&browser_root_dir()).await.is_empty());
    shutdown_browsers().await;
    assert_no_processes(&browser_root_dir()).await;
    assert!(!browser_root_dir().exists());
    b.close().await;
}
