//! The tools this server offers, by the names clients use.
//!
//! Two kinds of entries:
//! - **spec tools** a client names in `agent.tools[].name` (`terminal`,
//!   `file_editor`, …), listed by `GET /api/tools/` and validated at
//!   conversation start ([`tool_names`], [`unknown_tools`]);
//! - **built-ins** the agent adds by itself (`include_default_tools`:
//!   `FinishTool`, `ThinkTool`), never listed.
//!
//! `/server_info.usable_tools` is the spec list without `browser_tool_set`
//! while the browser is disabled, unchecked or found unusable
//! ([`usable_tool_names`]).

use std::sync::Arc;

use super::{builtin, BrowserSettings, ToolFactory, ToolSettings};
use crate::config::Config;

/// The browser tool set's registry name.
pub const BROWSER_TOOL_SET: &str = "browser_tool_set";

/// How long a new browser waits for a slot under `max_concurrent_browsers`
/// before the call is refused; not a setting of the Python server.
const BROWSER_QUEUE_TIMEOUT_SECONDS: f64 = 30.0;

/// The spec tools, in the order `GET /api/tools/` lists them (the Python
/// server's registration order, without the tools we do not implement).
pub fn factories() -> Vec<ToolFactory> {
    vec![
        super::file_editor::factory(),
        super::task_tracker::factory(),
        super::terminal::factory(),
        super::browser::factory(),
        super::glob::factory(),
        super::grep::factory(),
        super::apply_patch::factory(),
    ]
}

/// The spec tool names, in [`factories`] order.
pub fn tool_names() -> Vec<String> {
    factories().iter().map(|f| f.name.to_string()).collect()
}

/// The spec tool registered under `name`.
pub fn find(name: &str) -> Option<ToolFactory> {
    factories().into_iter().find(|f| f.name == name)
}

/// The names among `requested` that are not spec tools, in order and
/// without repeats: a conversation start naming one is a 422.
pub fn unknown_tools<'a>(requested: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let known = tool_names();
    let mut unknown: Vec<String> = Vec::new();
    for name in requested {
        if !known.iter().any(|k| k == name) && !unknown.iter().any(|u| u == name) {
            unknown.push(name.to_string());
        }
    }
    unknown
}

/// The built-in tool for an `include_default_tools` entry (`FinishTool`, `ThinkTool`).
pub fn builtin_by_class(class_name: &str) -> Option<ToolFactory> {
    match class_name {
        "FinishTool" => Some(builtin::finish_factory()),
        "ThinkTool" => Some(builtin::think_factory()),
        _ => None,
    }
}

/// The spec tools `/server_info` reports as usable: `browser_tool_set` only
/// when `browser_usable` (enabled and its start-up check passed).
pub fn usable_tool_names(browser_usable: bool) -> Vec<String> {
    tool_names()
        .into_iter()
        .filter(|name| browser_usable || name != BROWSER_TOOL_SET)
        .collect()
}

/// The server-level tool settings from the configuration (without a
/// terminal pool: the server adds its own).
pub fn tool_settings(config: &Config) -> Arc<ToolSettings> {
    Arc::new(ToolSettings {
        runtime_idle_timeout_seconds: config.runtime_idle_timeout_seconds,
        browser: BrowserSettings {
            enabled: config.enable_browser,
            chromedriver_path: config.chromedriver_path.clone(),
            chromium_path: config.chromium_path.clone(),
            max_concurrent_browsers: config.max_concurrent_browsers,
            idle_timeout_seconds: config.browser_idle_timeout_seconds,
            queue_timeout_seconds: BROWSER_QUEUE_TIMEOUT_SECONDS,
            allowed_urls: config.browser_allowed_urls.clone(),
            denied_urls: config.browser_denied_urls.clone(),
        },
        terminal_pool: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ToolEnv;
    use serde_json::Map;

    #[test]
    fn lists_the_spec_tools_in_upstream_order() {
        assert_eq!(
            tool_names(),
            [
                "file_editor",
                "task_tracker",
                "terminal",
                "browser_tool_set",
                "glob",
                "grep",
                "apply_patch"
            ]
        );
        assert_eq!(find("grep").map(|f| f.name), Some("grep"));
        assert!(find("finish").is_none());
        assert!(find("ask_oracle").is_none());
    }

    #[test]
    fn unknown_names_are_reported_once_in_order() {
        assert_eq!(
            unknown_tools(["terminal", "nope", "file_editor", "nope", "FinishTool"]),
            ["nope", "FinishTool"]
        );
        assert!(unknown_tools(["terminal", "grep"]).is_empty());
    }

    #[test]
    fn usable_tools_leave_out_an_unusable_browser() {
        assert!(usable_tool_names(true).contains(&BROWSER_TOOL_SET.to_string()));
        let without = usable_tool_names(false);
        assert!(!without.contains(&BROWSER_TOOL_SET.to_string()));
        assert_eq!(without.len(), tool_names().len() - 1);
    }

    #[test]
    fn builtins_create_their_tools() {
        let dir = tempfile::tempdir().unwrap();
        let env = ToolEnv {
            working_dir: dir.path().to_path_buf(),
            conversation_dir: dir.path().to_path_buf(),
            params: Map::new(),
            vision: false,
            settings: tool_settings(&Config::default()),
        };
        for (class, name) in [("FinishTool", "finish"), ("ThinkTool", "think")] {
            let factory = builtin_by_class(class).unwrap();
            let tools = (factory.create)(&env).unwrap();
            assert_eq!(tools[0].definition().name, name);
        }
        assert!(builtin_by_class("TerminalTool").is_none());
    }
}
