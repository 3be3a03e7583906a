//! One conversation's browser: the Chromium session shared by its fourteen
//! tools, its lifecycle (lazy start, crash recovery, idle close, close) and
//! the actions themselves.
//!
//! Architecture invariant: every failure becomes an [`Outcome`] with
//! upstream's text; nothing here panics or returns a server error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fantoccini::elements::{Element, ElementRef};
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::wd::{WebDriverCompatibleCommand, WindowHandle};
use fantoccini::Client;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use super::content::{self, RawContent};
use super::definitions::BrowserToolKind;
use super::driver::{self, BrowserPermit};
use super::observation::{py_json_pretty, Outcome};
use super::recording::{Recording, RECORDER_JS};
use super::url_filter::UrlFilter;
use crate::tools::BrowserSettings;

const STATE_JS: &str = include_str!("js/state.js");
const MARKDOWN_JS: &str = include_str!("js/markdown.js");

/// Upstream's per-action timeout.
const ACTION_TIMEOUT: Duration = Duration::from_secs(300);
/// A browser that does not answer a trivial command this fast is dead.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing a session may take before its processes are killed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a click on a `target=_blank` link may take to open its tab.
const NEW_TAB_WAIT: Duration = Duration::from_secs(2);
/// Pixels per `browser_scroll` (browser-use's amount).
const SCROLL_AMOUNT: i64 = 500;

/// Told to the model on the first call after its browser died.
const CRASH_NOTICE: &str = "Note: the browser had crashed or stopped responding, so a new browser session was started. Open tabs, page state, cookies and storage were lost; navigate again.";
/// Told to the model on the first call after an idle close.
const IDLE_NOTICE: &str = "Note: the browser was closed after being idle, so a new browser session was started. Open tabs, page state, cookies and storage were lost; navigate again.";

/// Why an action failed. `Fatal` errors mean the browser is gone.
#[derive(Debug)]
enum ActionError {
    Failed(String),
    Fatal(String),
}

impl From<CmdError> for ActionError {
    fn from(e: CmdError) -> Self {
        let text = describe(&e);
        if is_fatal(&e) {
            ActionError::Fatal(text)
        } else {
            ActionError::Failed(text)
        }
    }
}

/// chromedriver's message without its `(Session info: …)` trailer.
fn describe(e: &CmdError) -> String {
    let text = match e {
        CmdError::Standard(wd) => wd.message.to_string(),
        other => other.to_string(),
    };
    text.split("\n  (Session info")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Errors after which the session cannot be used again.
fn is_fatal(e: &CmdError) -> bool {
    match e {
        CmdError::Standard(wd) => {
            matches!(
                wd.error,
                ErrorStatus::InvalidSessionId | ErrorStatus::SessionNotCreated
            ) || [
                "disconnected",
                "chrome not reachable",
                "tab crashed",
                "target crashed",
            ]
            .iter()
            .any(|m| wd.message.contains(m))
        }
        CmdError::Lost(_) | CmdError::Failed(_) | CmdError::FailedC(_) => true,
        _ => false,
    }
}

/// A Chrome DevTools command sent through chromedriver (`goog/cdp/execute`):
/// cookies, DOM storage, targets and screenshots WebDriver has no command for.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

async fn cdp(client: &Client, cmd: &'static str, params: Value) -> Result<Value, CmdError> {
    client.issue_cmd(Cdp { cmd, params }).await
}

/// An element numbered by the last `browser_get_state`.
struct Indexed {
    element: Element,
    href: Option<String>,
    target: Option<String>,
}

/// A live Chromium session.
struct Session {
    client: Client,
    profile: driver::ProfileGuard,
    /// Holds a slot under `max_concurrent_browsers` while open.
    _permit: BrowserPermit,
    /// The window the element map was built in.
    elements_window: Option<WindowHandle>,
    /// Element references from the last `browser_get_state`, by index.
    elements: BTreeMap<u64, Indexed>,
    recording: Option<Recording>,
    last_used: Instant,
    /// Set when an action saw the browser die.
    dead: bool,
}

impl Session {
    /// Whether the browser still answers; also re-focuses a window when the
    /// current one was closed by the page.
    async fn check_alive(&mut self) -> bool {
        if self.dead {
            return false;
        }
        let handles = match tokio::time::timeout(LIVENESS_TIMEOUT, self.client.windows()).await {
            Ok(Ok(handles)) => handles,
            Ok(Err(e)) => return !is_fatal(&e),
            Err(_) => return false,
        };
        if let Err(CmdError::Standard(wd)) = self.client.window().await {
            if wd.error == ErrorStatus::NoSuchWindow {
                match handles.last() {
                    Some(handle) => {
                        return self.client.switch_to_window(handle.clone()).await.is_ok();
                    }
                    None => return false,
                }
            }
        }
        true
    }

    /// Closes the browser: saves the recording, ends the WebDriver session,
    /// kills leftovers and removes the profile.
    async fn close(mut self, graceful: bool) {
        if let Some(mut recording) = self.recording.take() {
            if graceful {
                let drained = self.client.execute(RECORDER_JS, vec![json!("drain")]).await;
                if let Ok(Value::Array(events)) = drained {
                    recording.add(events);
                }
            }
            let _ = recording.finish().await;
        }
        let timeout = if graceful {
            CLOSE_TIMEOUT
        } else {
            Duration::from_secs(2)
        };
        let _ = tokio::time::timeout(timeout, self.client.clone().close()).await;
        self.profile.cleanup().await;
    }
}

/// Why the previous session ended, told to the model once.
#[derive(Clone, Copy, Debug)]
enum Ended {
    Crashed,
    Idle,
}

#[derive(Default)]
struct State {
    session: Option<Session>,
    ended: Option<Ended>,
    /// Counts sessions, so an idle timer never closes a newer one.
    generation: u64,
}

/// The browser of one tool set (one conversation).
pub struct BrowserSet {
    settings: BrowserSettings,
    filter: UrlFilter,
    working_dir: PathBuf,
    state: Mutex<State>,
}

impl BrowserSet {
    /// A browser that starts on the first call.
    pub fn new(settings: BrowserSettings, filter: UrlFilter, working_dir: PathBuf) -> Self {
        Self {
            settings,
            filter,
            working_dir,
            state: Mutex::new(State::default()),
        }
    }

    /// Ends the session, if any; a later call starts a new one.
    pub async fn close(&self) {
        let session = self.state.lock().await.session.take();
        if let Some(session) = session {
            session.close(true).await;
        }
    }

    async fn start_session(self: &Arc<Self>, state: &mut State) -> Result<(), String> {
        let wait = Duration::from_secs_f64(self.settings.queue_timeout_seconds.max(0.0));
        let permit = driver::acquire_permit(self.settings.max_concurrent_browsers, wait).await?;
        let launched = driver::launch(&self.settings).await?;
        // Chromium opens its new-tab page; upstream starts from about:blank.
        launched
            .client
            .goto("about:blank")
            .await
            .map_err(|e| describe(&e))?;
        state.generation += 1;
        state.session = Some(Session {
            client: launched.client,
            profile: launched.profile,
            _permit: permit,
            elements_window: None,
            elements: BTreeMap::new(),
            recording: None,
            last_used: Instant::now(),
            dead: false,
        });
        if self.settings.idle_timeout_seconds > 0.0 {
            spawn_idle_reaper(
                Arc::downgrade(self),
                state.generation,
                Duration::from_secs_f64(self.settings.idle_timeout_seconds),
            );
        }
        Ok(())
    }

    /// Runs one validated action.
    pub async fn execute(self: &Arc<Self>, kind: BrowserToolKind, action: &Value) -> Outcome {
        let mut state = self.state.lock().await;
        let mut notice = None;
        if let Some(session) = state.session.as_mut() {
            if !session.check_alive().await {
                if let Some(session) = state.session.take() {
                    session.close(false).await;
                }
                state.ended = Some(Ended::Crashed);
            }
        }
        if state.session.is_none() {
            notice = state.ended.take().map(|ended| match ended {
                Ended::Crashed => CRASH_NOTICE,
                Ended::Idle => IDLE_NOTICE,
            });
            if let Err(e) = self.start_session(&mut state).await {
                return with_notice(
                    notice,
                    Outcome::error(format!("Browser operation failed: {e}")),
                );
            }
        }
        let Some(session) = state.session.as_mut() else {
            return Outcome::error("Error: No browser session active");
        };

        self.record_before(session, kind, action).await;
        let outcome =
            match tokio::time::timeout(ACTION_TIMEOUT, self.run(session, kind, action)).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(ActionError::Failed(detail))) => {
                    Outcome::error(format!("Browser operation failed: {detail}"))
                }
                Ok(Err(ActionError::Fatal(detail))) => {
                    session.dead = true;
                    Outcome::error(format!("Browser operation failed: {detail}"))
                }
                Err(_) => {
                    session.dead = true;
                    Outcome::error(format!(
                        "Browser operation failed: Operation timed out after {} seconds",
                        ACTION_TIMEOUT.as_secs()
                    ))
                }
            };
        if !session.dead {
            self.record_after(session).await;
        }
        session.last_used = Instant::now();
        with_notice(notice, outcome)
    }

    async fn record_before(&self, session: &mut Session, kind: BrowserToolKind, action: &Value) {
        if session.recording.is_none() {
            return;
        }
        let drained = session
            .client
            .execute(RECORDER_JS, vec![json!("drain")])
            .await;
        let Some(recording) = session.recording.as_mut() else {
            return;
        };
        if let Ok(Value::Array(events)) = drained {
            recording.add(events);
        }
        let mut data = Map::new();
        data.insert("tool".into(), json!(kind.name()));
        if let Value::Object(fields) = action {
            for (key, value) in fields {
                match key.as_str() {
                    "kind" => {}
                    // Typed text may be a password: keep only its length.
                    "text" => {
                        let len = value.as_str().map_or(0, |t| t.chars().count());
                        data.insert("text_length".into(), json!(len));
                    }
                    "storage_state" => {}
                    _ => {
                        data.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        let now = jiff::Timestamp::now().as_millisecond();
        recording.add([json!({"type": "action", "timestamp": now, "data": data})]);
    }

    async fn record_after(&self, session: &mut Session) {
        if session.recording.is_none() {
            return;
        }
        let _ = session
            .client
            .execute(RECORDER_JS, vec![json!("install")])
            .await;
        let drained = session
            .client
            .execute(RECORDER_JS, vec![json!("drain")])
            .await;
        if let Some(recording) = session.recording.as_mut() {
            if let Ok(Value::Array(events)) = drained {
                recording.add(events);
            }
            let _ = recording.flush(false).await;
        }
    }

    async fn run(
        &self,
        session: &mut Session,
        kind: BrowserToolKind,
        action: &Value,
    ) -> Result<Outcome, ActionError> {
        let str_field = |name: &str| action.get(name).and_then(Value::as_str).unwrap_or_default();
        let bool_field = |name: &str| action.get(name).and_then(Value::as_bool).unwrap_or(false);
        let int_field = |name: &str| action.get(name).and_then(Value::as_u64).unwrap_or(0);
        match kind {
            BrowserToolKind::Navigate => {
                self.navigate(session, str_field("url"), bool_field("new_tab"))
                    .await
            }
            BrowserToolKind::Click => {
                self.click(session, int_field("index"), bool_field("new_tab"))
                    .await
            }
            BrowserToolKind::Type => {
                type_text(session, int_field("index"), str_field("text")).await
            }
            BrowserToolKind::GetState => get_state(session, bool_field("include_screenshot")).await,
            BrowserToolKind::GetContent => {
                get_content(
                    session,
                    bool_field("extract_links"),
                    usize::try_from(int_field("start_from_char")).unwrap_or(usize::MAX),
                )
                .await
            }
            BrowserToolKind::Scroll => scroll(session, str_field("direction")).await,
            BrowserToolKind::GoBack => {
                session.client.back().await?;
                Ok(Outcome::text("Navigated back"))
            }
            BrowserToolKind::ListTabs => list_tabs(session).await,
            BrowserToolKind::SwitchTab => switch_tab(session, str_field("tab_id")).await,
            BrowserToolKind::CloseTab => close_tab(session, str_field("tab_id")).await,
            BrowserToolKind::GetStorage => Ok(get_storage(session).await),
            BrowserToolKind::SetStorage => {
                let state = action.get("storage_state").cloned().unwrap_or(Value::Null);
                Ok(set_storage(session, &state).await)
            }
            BrowserToolKind::StartRecording => Ok(self.start_recording(session).await),
            BrowserToolKind::StopRecording => Ok(stop_recording(session).await),
        }
    }

    /// Refuses URLs the filter does not allow (upstream's security-policy text).
    fn check_url(&self, url: &str) -> Result<(), ActionError> {
        if self.filter.allows(url) {
            Ok(())
        } else {
            Err(ActionError::Failed(format!(
                "Navigation to {url} blocked by security policy"
            )))
        }
    }

    /// After an action that may have navigated: a tab that ended up on a
    /// refused URL is sent to `about:blank`.
    async fn enforce_filter_after(&self, session: &Session) -> Result<(), ActionError> {
        let current = session.client.current_url().await?;
        if self.filter.allows(current.as_str()) {
            return Ok(());
        }
        session.client.goto("about:blank").await?;
        Err(ActionError::Failed(format!(
            "Navigation to {current} blocked by security policy"
        )))
    }

    async fn navigate(
        &self,
        session: &mut Session,
        url: &str,
        new_tab: bool,
    ) -> Result<Outcome, ActionError> {
        let target = absolute_url(&session.client, url).await?;
        self.check_url(&target)?;
        if new_tab {
            let opened = session.client.new_window(true).await?;
            session.client.switch_to_window(opened.handle).await?;
        }
        session.client.goto(&target).await?;
        self.enforce_filter_after(session).await?;
        Ok(Outcome::text(if new_tab {
            format!("Opened new tab with URL: {url}")
        } else {
            format!("Navigated to: {url}")
        }))
    }

    async fn click(
        &self,
        session: &mut Session,
        index: u64,
        new_tab: bool,
    ) -> Result<Outcome, ActionError> {
        let Some(item) = lookup(session, index).await? else {
            return Ok(Outcome::text(format!(
                "Element with index {index} not found"
            )));
        };
        let (element, href, target) =
            (item.element.clone(), item.href.clone(), item.target.clone());
        let link = match &href {
            Some(href) if !href.starts_with("javascript:") => {
                let base = session.client.current_url().await?;
                base.join(href).ok().map(|u| u.to_string())
            }
            _ => None,
        };
        if let Some(link) = &link {
            self.check_url(link)?;
        }
        let opens_tab = target
            .as_deref()
            .is_some_and(|t| !matches!(t, "" | "_self" | "_parent" | "_top"));

        if new_tab {
            if let Some(link) = link {
                let opened = session.client.new_window(true).await?;
                session.client.switch_to_window(opened.handle).await?;
                session.client.goto(&link).await?;
                self.enforce_filter_after(session).await?;
                let short: String = link.chars().take(20).collect();
                return Ok(Outcome::text(format!(
                    "Clicked element {index} and opened in new tab {short}..."
                )));
            }
        }

        let before = session.client.windows().await?;
        match element.click().await {
            Ok(()) => {}
            Err(CmdError::Standard(wd))
                if matches!(
                    wd.error,
                    ErrorStatus::ElementClickIntercepted | ErrorStatus::ElementNotInteractable
                ) =>
            {
                // Covered or zero-size elements still take a DOM click.
                session
                    .client
                    .execute("arguments[0].click();", vec![element_json(&element)])
                    .await?;
            }
            Err(CmdError::Standard(wd)) if wd.error == ErrorStatus::StaleElementReference => {
                return Ok(Outcome::text(format!(
                    "Element with index {index} not found"
                )));
            }
            Err(e) => return Err(e.into()),
        }

        let deadline = Instant::now()
            + if opens_tab {
                NEW_TAB_WAIT
            } else {
                Duration::ZERO
            };
        loop {
            let after = session.client.windows().await?;
            if let Some(new) = after.iter().rev().find(|h| !before.contains(h)) {
                session.client.switch_to_window(new.clone()).await?;
                wait_for_load(&session.client).await;
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.enforce_filter_after(session).await?;
        if new_tab {
            return Ok(Outcome::text(format!(
                "Clicked element {index} (new tab not supported for non-link elements)"
            )));
        }
        Ok(Outcome::text(format!("Clicked element {index}")))
    }

    async fn start_recording(&self, session: &mut Session) -> Outcome {
        if session.recording.is_some() {
            return Outcome::text("Already recording");
        }
        let mut recording = match Recording::create(&self.working_dir).await {
            Ok(recording) => recording,
            Err(e) => return Outcome::text(format!("Error starting recording: {e}")),
        };
        match session
            .client
            .execute(RECORDER_JS, vec![json!("install")])
            .await
        {
            Ok(_) => {}
            Err(e) => return Outcome::text(format!("Error starting recording: {}", describe(&e))),
        }
        if let Ok(Value::Array(events)) = session
            .client
            .execute(RECORDER_JS, vec![json!("drain")])
            .await
        {
            recording.add(events);
        }
        session.recording = Some(recording);
        Outcome::text("Recording started")
    }
}

fn with_notice(notice: Option<&str>, mut outcome: Outcome) -> Outcome {
    if let Some(notice) = notice {
        outcome.text = format!("{notice}\n\n{}", outcome.text);
    }
    outcome
}

/// Closes a session left idle for `idle`, unless a newer one replaced it.
fn spawn_idle_reaper(set: Weak<BrowserSet>, generation: u64, idle: Duration) {
    tokio::spawn(async move {
        let mut wait = idle;
        loop {
            tokio::time::sleep(wait).await;
            let Some(set) = set.upgrade() else { return };
            let mut state = set.state.lock().await;
            if state.generation != generation {
                return;
            }
            let Some(session) = state.session.as_ref() else {
                return;
            };
            let idle_for = session.last_used.elapsed();
            if idle_for < idle {
                wait = idle - idle_for;
                continue;
            }
            if let Some(session) = state.session.take() {
                state.ended = Some(Ended::Idle);
                drop(state);
                session.close(true).await;
            }
            return;
        }
    });
}

/// Resolves what the model typed into an absolute URL: relative to the
/// current page, and `https://` for a bare host like `example.com`.
async fn absolute_url(client: &Client, url: &str) -> Result<String, ActionError> {
    match url::Url::parse(url) {
        Ok(parsed) => Ok(parsed.to_string()),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let current = client.current_url().await?;
            let looks_relative = url.starts_with(['/', '.', '?', '#']);
            if looks_relative && !current.cannot_be_a_base() {
                return current
                    .join(url)
                    .map(|u| u.to_string())
                    .map_err(|e| ActionError::Failed(format!("Invalid URL {url}: {e}")));
            }
            url::Url::parse(&format!("https://{url}"))
                .map(|u| u.to_string())
                .map_err(|e| ActionError::Failed(format!("Invalid URL {url}: {e}")))
        }
        Err(e) => Err(ActionError::Failed(format!("Invalid URL {url}: {e}"))),
    }
}

/// Waits (bounded) until a freshly opened tab has loaded.
async fn wait_for_load(client: &Client) {
    let deadline = Instant::now() + driver::PAGE_LOAD_TIMEOUT;
    while Instant::now() < deadline {
        match client.execute("return document.readyState", vec![]).await {
            Ok(Value::String(s)) if s == "complete" => return,
            Err(e) if is_fatal(&e) => return,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn element_json(element: &Element) -> Value {
    serde_json::to_value(element).unwrap_or(Value::Null)
}

/// The element at `index` from the last `get_state`, if it was numbered in
/// the current tab.
async fn lookup(session: &Session, index: u64) -> Result<Option<&Indexed>, ActionError> {
    let Some(item) = session.elements.get(&index) else {
        return Ok(None);
    };
    let current = session.client.window().await?;
    if session.elements_window.as_ref() != Some(&current) {
        return Ok(None);
    }
    Ok(Some(item))
}

async fn type_text(session: &mut Session, index: u64, text: &str) -> Result<Outcome, ActionError> {
    let Some(item) = lookup(session, index).await? else {
        return Ok(Outcome::text(format!(
            "Element with index {index} not found"
        )));
    };
    let element = item.element.clone();
    if let Err(CmdError::Standard(wd)) = element.clear().await {
        if wd.error == ErrorStatus::StaleElementReference {
            return Ok(Outcome::text(format!(
                "Element with index {index} not found"
            )));
        }
        // Not clearable (contenteditable, custom widgets): type after a click.
        let _ = element.click().await;
    }
    match element.send_keys(text).await {
        Ok(()) => {}
        Err(CmdError::Standard(wd)) if wd.error == ErrorStatus::ElementNotInteractable => {
            session
                .client
                .execute(
                    "const el = arguments[0]; el.value = arguments[1]; \
                     el.dispatchEvent(new Event('input', {bubbles: true})); \
                     el.dispatchEvent(new Event('change', {bubbles: true}));",
                    vec![element_json(&element), json!(text)],
                )
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Outcome::text(typed_message(index, text)))
}

/// browser-use's wording, which hides text that looks like an e-mail
/// address or a credential.
fn typed_message(index: u64, text: &str) -> String {
    let domain_part = text.rsplit('@').next().unwrap_or_default();
    let is_email = text.contains('@') && domain_part.contains('.');
    let chars = text.chars().count();
    let is_credential = chars >= 16
        && text.chars().any(|c| c.is_ascii_digit() || c.is_numeric())
        && text.chars().any(char::is_alphabetic)
        && text.chars().any(|c| ".-_".contains(c));
    if chars >= 6 && (is_email || is_credential) {
        let name = if is_email { "email" } else { "credential" };
        format!("Typed <{name}> into element {index}")
    } else {
        format!("Typed '{text}' into element {index}")
    }
}

/// Open tabs in window order with their URL and title (from DevTools, so
/// no tab has to be focused to read them).
async fn tabs(client: &Client) -> Result<Vec<(WindowHandle, String, String)>, ActionError> {
    let handles = client.windows().await?;
    let targets = cdp(client, "Target.getTargets", json!({})).await?;
    let infos = targets
        .get("targetInfos")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(handles
        .into_iter()
        .map(|handle| {
            let id: String = handle.clone().into();
            let info = infos
                .iter()
                .find(|t| t.get("targetId").and_then(Value::as_str) == Some(id.as_str()));
            let field = |name: &str| {
                info.and_then(|t| t.get(name))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (handle, field("url"), field("title"))
        })
        .collect())
}

fn tab_id(handle: &WindowHandle) -> String {
    let id: String = handle.clone().into();
    let chars: Vec<char> = id.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

async fn find_tab(client: &Client, tab: &str) -> Result<WindowHandle, ActionError> {
    client
        .windows()
        .await?
        .into_iter()
        .find(|h| {
            let id: String = h.clone().into();
            !tab.is_empty() && id.to_ascii_lowercase().ends_with(&tab.to_ascii_lowercase())
        })
        .ok_or_else(|| ActionError::Failed(format!("No TargetID found ending in tab_id=...{tab}")))
}

async fn list_tabs(session: &Session) -> Result<Outcome, ActionError> {
    let list: Vec<Value> = tabs(&session.client)
        .await?
        .iter()
        .map(|(handle, url, title)| json!({"tab_id": tab_id(handle), "url": url, "title": title}))
        .collect();
    Ok(Outcome::text(py_json_pretty(&list)))
}

async fn switch_tab(session: &mut Session, tab: &str) -> Result<Outcome, ActionError> {
    let handle = find_tab(&session.client, tab).await?;
    session.client.switch_to_window(handle).await?;
    let url = session.client.current_url().await?;
    Ok(Outcome::text(format!("Switched to tab {tab}: {url}")))
}

async fn close_tab(session: &mut Session, tab: &str) -> Result<Outcome, ActionError> {
    let client = &session.client;
    let target = find_tab(client, tab).await?;
    let current = client.window().await.ok();
    if client.windows().await?.len() == 1 {
        // Closing the last window would end the WebDriver session.
        client.new_window(true).await?;
    }
    client.switch_to_window(target.clone()).await?;
    client.close_window().await?;
    let remaining = client.windows().await?;
    let focus = match current {
        Some(current) if current != target && remaining.contains(&current) => Some(current),
        _ => remaining.last().cloned(),
    };
    if let Some(focus) = focus {
        client.switch_to_window(focus).await?;
    }
    let url = client.current_url().await?;
    Ok(Outcome::text(format!("Closed tab # {tab}, now on {url}")))
}

async fn scroll(session: &Session, direction: &str) -> Result<Outcome, ActionError> {
    let dy = if direction == "up" {
        -SCROLL_AMOUNT
    } else {
        SCROLL_AMOUNT
    };
    session
        .client
        .execute("window.scrollBy(0, arguments[0]);", vec![json!(dy)])
        .await?;
    Ok(Outcome::text(format!("Scrolled {direction}")))
}

async fn get_state(
    session: &mut Session,
    include_screenshot: bool,
) -> Result<Outcome, ActionError> {
    let raw = session.client.execute(STATE_JS, vec![]).await?;
    let window = session.client.window().await?;
    let tabs = tabs(&session.client).await?;

    session.elements.clear();
    session.elements_window = Some(window);
    let mut interactive = Vec::new();
    let entries = raw
        .get("elements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (position, entry) in entries.into_iter().enumerate() {
        let index = position as u64 + 1;
        let Some(element_id) = entry
            .get("element")
            .and_then(Value::as_object)
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
        else {
            continue;
        };
        let text_of = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let text: String = text_of("text").chars().take(100).collect();
        let mut info = Map::new();
        info.insert("index".into(), json!(index));
        info.insert("tag".into(), json!(text_of("tag")));
        info.insert("text".into(), json!(text));
        let placeholder = text_of("placeholder");
        if !placeholder.is_empty() {
            info.insert("placeholder".into(), json!(placeholder));
        }
        let href = text_of("href");
        if !href.is_empty() {
            info.insert("href".into(), json!(href));
        }
        interactive.push(Value::Object(info));
        let target = text_of("target");
        session.elements.insert(
            index,
            Indexed {
                element: Element::from_element_id(
                    session.client.clone(),
                    ElementRef::from(element_id.to_string()),
                ),
                href: (!href.is_empty()).then_some(href),
                target: (!target.is_empty()).then_some(target),
            },
        );
    }

    // The tab's URL, as in `tabs` (an error page's own URL is chrome-error://).
    let url = session.client.current_url().await?;
    let mut result = Map::new();
    result.insert("url".into(), json!(url.as_str()));
    result.insert(
        "title".into(),
        raw.get("title").cloned().unwrap_or(json!("")),
    );
    result.insert(
        "tabs".into(),
        Value::Array(
            tabs.iter()
                .map(|(_, url, title)| json!({"url": url, "title": title}))
                .collect(),
        ),
    );
    result.insert("interactive_elements".into(), Value::Array(interactive));
    // chromedriver sorts object keys; upstream's order is width/height, x/y.
    let pair = |key: &str, a: &str, b: &str| {
        let get = |name: &str| {
            raw.pointer(&format!("/{key}/{name}"))
                .cloned()
                .unwrap_or(json!(0))
        };
        json!({a: get(a), b: get(b)})
    };
    let viewport = pair("viewport", "width", "height");
    result.insert("viewport".into(), viewport.clone());
    result.insert("page".into(), pair("page", "width", "height"));
    result.insert("scroll".into(), pair("scroll", "x", "y"));
    let mut screenshot = None;
    if include_screenshot {
        let shot = cdp(
            &session.client,
            "Page.captureScreenshot",
            json!({"format": "png"}),
        )
        .await?;
        if let Some(data) = shot.get("data").and_then(Value::as_str) {
            screenshot = Some(data.to_string());
            result.insert("screenshot_dimensions".into(), viewport);
        }
    }
    Ok(Outcome {
        text: py_json_pretty(&Value::Object(result)),
        is_error: false,
        screenshot,
    })
}

async fn get_content(
    session: &Session,
    extract_links: bool,
    start_from_char: usize,
) -> Result<Outcome, ActionError> {
    let raw = match session
        .client
        .execute(MARKDOWN_JS, vec![json!(extract_links)])
        .await
    {
        Ok(raw) => raw,
        Err(e) if is_fatal(&e) => return Err(e.into()),
        Err(e) => {
            let kind = match &e {
                CmdError::Standard(wd) => wd.error.to_string(),
                _ => "Error".into(),
            };
            return Ok(Outcome::text(format!(
                "Could not extract clean markdown: {kind}"
            )));
        }
    };
    let extracted = RawContent {
        html_chars: raw.get("html_chars").and_then(Value::as_u64).unwrap_or(0) as usize,
        markdown: raw
            .get("markdown")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    let url = session.client.current_url().await?;
    Ok(Outcome::text(content::render(
        url.as_str(),
        &extracted,
        start_from_char,
    )))
}

/// chromedriver sorts object keys; DevTools (and so upstream) lists a
/// cookie's fields in this order.
fn devtools_cookie_order(cookie: &Value) -> Value {
    const ORDER: [&str; 15] = [
        "name",
        "value",
        "domain",
        "path",
        "expires",
        "size",
        "httpOnly",
        "secure",
        "session",
        "sameSite",
        "priority",
        "sameParty",
        "sourceScheme",
        "sourcePort",
        "partitionKey",
    ];
    let Value::Object(fields) = cookie else {
        return cookie.clone();
    };
    let mut ordered = Map::new();
    for key in ORDER {
        if let Some(v) = fields.get(key) {
            ordered.insert(key.into(), v.clone());
        }
    }
    for (key, v) in fields {
        if !ordered.contains_key(key) {
            ordered.insert(key.clone(), v.clone());
        }
    }
    Value::Object(ordered)
}

/// Origins of the current page and its frames, in discovery order.
fn frame_origins(tree: &Value, out: &mut Vec<String>) {
    if let Some(origin) = tree
        .pointer("/frame/securityOrigin")
        .and_then(Value::as_str)
    {
        if origin != "null" && !origin.is_empty() && !out.iter().any(|o| o == origin) {
            out.push(origin.to_string());
        }
    }
    if let Some(children) = tree.get("childFrames").and_then(Value::as_array) {
        for child in children {
            frame_origins(child, out);
        }
    }
}

async fn storage_items(client: &Client, origin: &str, local: bool) -> Option<Vec<Value>> {
    let result = cdp(
        client,
        "DOMStorage.getDOMStorageItems",
        json!({"storageId": {"securityOrigin": origin, "isLocalStorage": local}}),
    )
    .await
    .ok()?;
    let items: Vec<Value> = result
        .get("entries")?
        .as_array()?
        .iter()
        .filter_map(|entry| match entry.as_array().map(Vec::as_slice) {
            Some([name, value]) => Some(json!({"name": name, "value": value})),
            _ => None,
        })
        .collect();
    (!items.is_empty()).then_some(items)
}

async fn get_storage(session: &Session) -> Outcome {
    let client = &session.client;
    let collected: Result<Value, CmdError> = async {
        let cookies = cdp(client, "Storage.getCookies", json!({})).await?;
        let cookies: Vec<Value> = cookies
            .get("cookies")
            .and_then(Value::as_array)
            .map(|list| list.iter().map(devtools_cookie_order).collect())
            .unwrap_or_default();
        let mut origins = Vec::new();
        cdp(client, "DOMStorage.enable", json!({})).await?;
        if let Ok(tree) = cdp(client, "Page.getFrameTree", json!({})).await {
            let mut found = Vec::new();
            if let Some(root) = tree.get("frameTree") {
                frame_origins(root, &mut found);
            }
            for origin in found {
                let mut data = Map::new();
                data.insert("origin".into(), json!(origin));
                if let Some(items) = storage_items(client, &origin, true).await {
                    data.insert("localStorage".into(), Value::Array(items));
                }
                if let Some(items) = storage_items(client, &origin, false).await {
                    data.insert("sessionStorage".into(), Value::Array(items));
                }
                if data.len() > 1 {
                    origins.push(Value::Object(data));
                }
            }
        }
        let _ = cdp(client, "DOMStorage.disable", json!({})).await;
        Ok(json!({"cookies": cookies, "origins": origins}))
    }
    .await;
    match collected {
        Ok(state) => Outcome::text(py_json_pretty(&state)),
        Err(e) => Outcome::text(format!("Error getting storage state: {}", describe(&e))),
    }
}

async fn set_storage(session: &Session, state: &Value) -> Outcome {
    let client = &session.client;
    let applied: Result<(), String> = async {
        if let Some(cookies) = state.get("cookies") {
            let list = cookies.as_array().ok_or("'cookies' must be a list")?;
            if !list.is_empty() {
                cdp(client, "Storage.setCookies", json!({"cookies": list}))
                    .await
                    .map_err(|e| describe(&e))?;
            }
        }
        let origins = match state.get("origins") {
            Some(Value::Array(origins)) if !origins.is_empty() => origins.clone(),
            Some(Value::Array(_)) | None => return Ok(()),
            Some(_) => return Err("'origins' must be a list".into()),
        };
        cdp(client, "DOMStorage.enable", json!({}))
            .await
            .map_err(|e| describe(&e))?;
        let result = set_origin_items(client, &origins).await;
        let _ = cdp(client, "DOMStorage.disable", json!({})).await;
        result
    }
    .await;
    match applied {
        Ok(()) => Outcome::text("Storage set successfully"),
        Err(e) => Outcome::text(format!("Error setting storage state: {e}")),
    }
}

async fn set_origin_items(client: &Client, origins: &[Value]) -> Result<(), String> {
    for origin_data in origins {
        let Some(origin) = origin_data
            .get("origin")
            .and_then(Value::as_str)
            .filter(|o| !o.is_empty())
        else {
            continue;
        };
        for (key, local) in [("localStorage", true), ("sessionStorage", false)] {
            let Some(items) = origin_data.get(key).and_then(Value::as_array) else {
                continue;
            };
            for item in items {
                let name = item
                    .get("key")
                    .or_else(|| item.get("name"))
                    .and_then(Value::as_str)
                    .filter(|k| !k.is_empty());
                let Some(name) = name else { continue };
                let value = item.get("value").ok_or_else(|| "'value'".to_string())?;
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                cdp(
                    client,
                    "DOMStorage.setDOMStorageItem",
                    json!({
                        "storageId": {"securityOrigin": origin, "isLocalStorage": local},
                        "key": name,
                        "value": value,
                    }),
                )
                .await
                .map_err(|e| describe(&e))?;
            }
        }
    }
    Ok(())
}

async fn stop_recording(session: &mut Session) -> Outcome {
    let Some(mut recording) = session.recording.take() else {
        return Outcome::text("Error: Not recording. Call browser_start_recording first.");
    };
    if let Ok(Value::Array(events)) = session
        .client
        .execute(RECORDER_JS, vec![json!("stop")])
        .await
    {
        recording.add(events);
    }
    Outcome::text(recording.finish().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_hides_emails_and_credentials() {
        assert_eq!(typed_message(3, "hello"), "Typed 'hello' into element 3");
        assert_eq!(
            typed_message(3, "me@example.com"),
            "Typed <email> into element 3"
        );
        assert_eq!(
            typed_message(1, "sk-abc_1234567890xyz"),
            "Typed <credential> into element 1"
        );
        assert_eq!(typed_message(1, "a@b.c"), "Typed 'a@b.c' into element 1");
    }

    #[test]
    fn cookies_get_devtools_field_order() {
        let sorted = json!({"domain": "d", "name": "n", "path": "/", "value": "v", "zzz": 1});
        let keys: Vec<String> = devtools_cookie_order(&sorted)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["name", "value", "domain", "path", "zzz"]);
    }

    #[test]
    fn origins_are_collected_once_in_order() {
        let tree = json!({"frame": {"securityOrigin": "http://a"}, "childFrames": [
            {"frame": {"securityOrigin": "http://b"}},
            {"frame": {"securityOrigin": "http://a"}},
            {"frame": {"securityOrigin": "null"}}]});
        let mut found = Vec::new();
        frame_origins(&tree, &mut found);
        assert_eq!(found, ["http://a", "http://b"]);
    }
}
