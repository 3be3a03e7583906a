//! `browser_tool_set`: fourteen browser tools on real Chromium, driven over
//! WebDriver by a chromedriver child process.
//!
//! Upstream drives Chromium with browser-use over the DevTools protocol; we
//! keep its tool names, parameters, observation shapes and LLM-visible texts
//! and use our own mechanics:
//!
//! - `driver`: one chromedriver per server process, started on a free
//!   loopback port by the first browser call; one Chromium session per tool
//!   set (one conversation) with its own profile directory; the
//!   `max_concurrent_browsers` cap; [`check_browser`] and [`shutdown_browsers`].
//! - `session`: the session's lifecycle (a crashed or hung browser is
//!   replaced on the next call, which says so; idle sessions close after
//!   `idle_timeout_seconds`) and the actions. Element indexes from
//!   `browser_get_state` are WebDriver element references the session keeps
//!   until the next `browser_get_state`. DevTools commands that WebDriver
//!   lacks (cookies, DOM storage, tab titles, screenshots) go through
//!   chromedriver's `goog/cdp/execute`.
//! - `content`: `browser_get_content`'s clean-up, 30 000-character paging
//!   and wrapper text; the markdown itself comes from a page script.
//! - `recording`: an rrweb-less event log (see there for the differences).
//! - `url_filter`: `allowed_urls` / `denied_urls` patterns, checked before
//!   navigations and on the page a click or navigation ends on.
//! - `observation`: `BrowserObservation` and its LLM rendering.
//!
//! Settings: `0` for `max_concurrent_browsers` means no cap, `0` for
//! `idle_timeout_seconds` never closes idle browsers, and
//! `queue_timeout_seconds` is how long a new browser waits for a free slot
//! under the cap before the call is refused.

mod content;
mod definitions;
mod driver;
mod observation;
mod recording;
mod session;
mod url_filter;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

pub use definitions::BROWSER_PROMPT_GUIDANCE;
pub use driver::{
    browser_available, browser_root_dir, check_browser, known_availability, processes_with_marker,
    shutdown_browsers, APT_HINT,
};
pub use observation::llm_content_from_json;

use definitions::{BrowserToolKind, ALL_KINDS};
use session::BrowserSet;
use url_filter::UrlFilter;
use validate::Field;

use super::{
    ExecContext, Observation, Tool, ToolDefinition, ToolEnv, ToolError, ToolFactory, ToolSetResult,
};

/// The registry entry for `browser_tool_set`.
pub fn factory() -> ToolFactory {
    ToolFactory {
        name: "browser_tool_set",
        module_qualname: "openhands.tools.browser_use.definition",
        create,
    }
}

/// Creates the fourteen tools sharing one (lazily started) browser. Empty
/// when the browser is disabled or a check found it unusable, like
/// upstream, whose set resolves to no tools when Chromium cannot start.
fn create(env: &ToolEnv) -> ToolSetResult {
    let settings = &env.settings.browser;
    if !settings.enabled || known_availability() == Some(false) {
        return Ok(Vec::new());
    }
    let filter = UrlFilter::new(&settings.allowed_urls, &settings.denied_urls)?;
    let set = Arc::new(BrowserSet::new(
        settings.clone(),
        filter,
        env.working_dir.clone(),
    ));
    let save_dir = env.conversation_dir.join("observations");
    Ok(ALL_KINDS
        .iter()
        .map(|&kind| {
            Arc::new(BrowserTool {
                kind,
                definition: kind.definition(),
                fields: kind.fields(),
                set: Arc::clone(&set),
                save_dir: save_dir.clone(),
            }) as Arc<dyn Tool>
        })
        .collect())
}

/// One of the fourteen tools.
struct BrowserTool {
    kind: BrowserToolKind,
    definition: ToolDefinition,
    fields: Vec<Field>,
    set: Arc<BrowserSet>,
    /// `<conversation_dir>/observations`: screenshots and full long outputs.
    save_dir: PathBuf,
}

impl Tool for BrowserTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        validate::validate(&self.definition.action_kind, &self.fields, arguments)
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        Box::pin(async move {
            tokio::select! {
                outcome = self.set.execute(self.kind, action) => {
                    Ok(observation::render(outcome, self.save_dir.clone()).await)
                }
                () = ctx.cancel.cancelled() => Err(ToolError::Cancelled),
            }
        })
    }

    /// All fourteen tools drive one browser: their calls never overlap.
    fn resource_key(&self, _action: &Value) -> Option<String> {
        Some("browser".into())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.set.close())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{BrowserSettings, ToolSettings};

    fn env(enabled: bool) -> ToolEnv {
        ToolEnv {
            vision: true,
            working_dir: "/tmp".into(),
            conversation_dir: "/tmp/conv".into(),
            params: Map::new(),
            settings: Arc::new(ToolSettings {
                browser: BrowserSettings {
                    enabled,
                    ..BrowserSettings::default()
                },
                ..ToolSettings::default()
            }),
        }
    }

    #[test]
    fn creates_fourteen_tools_in_upstream_order() {
        let tools = (factory().create)(&env(true)).unwrap();
        let names: Vec<_> = tools.iter().map(|t| t.definition().name.clone()).collect();
        assert_eq!(
            names,
            [
                "browser_navigate",
                "browser_click",
                "browser_get_state",
                "browser_get_content",
                "browser_type",
                "browser_scroll",
                "browser_go_back",
                "browser_list_tabs",
                "browser_switch_tab",
                "browser_close_tab",
                "browser_get_storage",
                "browser_set_storage",
                "browser_start_recording",
                "browser_stop_recording",
            ]
        );
        assert!(tools
            .iter()
            .all(|t| t.definition().observation_kind == "BrowserObservation"));
        assert_eq!(
            factory().module_qualname,
            "openhands.tools.browser_use.definition"
        );
    }

    #[test]
    fn disabled_browser_has_no_tools() {
        assert!((factory().create)(&env(false)).unwrap().is_empty());
    }

    #[test]
    fn bad_url_pattern_fails_creation() {
        let mut e = env(true);
        e.settings = Arc::new(ToolSettings {
            browser: BrowserSettings {
                enabled: true,
                denied_urls: vec!["http://[".into()],
                ..BrowserSettings::default()
            },
            ..ToolSettings::default()
        });
        assert!((factory().create)(&e).is_err());
    }

    #[test]
    fn validation_goes_through_the_action_model() {
        let tools = (factory().create)(&env(true)).unwrap();
        let navigate = &tools[0];
        let args = serde_json::json!({"url": "http://x"});
        let action = navigate.validate(args.as_object().unwrap()).unwrap();
        assert_eq!(
            action,
            serde_json::json!({"url": "http://x", "new_tab": false, "kind": "BrowserNavigateAction"})
        );
        let err = navigate.validate(&Map::new()).unwrap_err();
        assert!(
            err.starts_with("1 validation error for BrowserNavigateAction\nurl\n  Field required")
        );
    }
}
