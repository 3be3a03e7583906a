//! The fourteen browser tools as the LLM sees them: names, Python class and
//! action names, descriptions (verbatim from openhands-tools 1.58.2),
//! parameter schemas and annotations, plus the field rules their arguments
//! are validated against.

use serde_json::{json, Value};

use super::validate::{Field, FieldType};
use crate::tools::{ToolAnnotations, ToolDefinition};

const NAVIGATE_DESCRIPTION: &str = r#"Navigate to a URL in the browser.

This tool allows you to navigate to any web page. You can optionally open the URL in a new tab.

Parameters:
- url: The URL to navigate to (required)
- new_tab: Whether to open in a new tab (optional, default: False)

Examples:
- Navigate to Google: url="https://www.google.com"
- Open GitHub in new tab: url="https://github.com", new_tab=True
"#;

const CLICK_DESCRIPTION: &str = r#"Click an element on the page by its index.

Use this tool to click on interactive elements like buttons, links, or form controls. 
The index comes from the browser_get_state tool output.

Parameters:
- index: The index of the element to click (from browser_get_state)
- new_tab: Whether to open any resulting navigation in a new tab (optional)

Important: Only use indices that appear in your current browser_get_state output.
"#;

const TYPE_DESCRIPTION: &str = r#"Type text into an input field.

Use this tool to enter text into form fields, search boxes, or other text input elements.
The index comes from the browser_get_state tool output.

Parameters:
- index: The index of the input element (from browser_get_state)
- text: The text to type

Important: Only use indices that appear in your current browser_get_state output.
"#;

const GET_STATE_DESCRIPTION: &str = r#"Get the current state of the page including all interactive elements.

This tool returns the current page content with numbered interactive elements that you can 
click or type into. Use this frequently to understand what's available on the page.

Parameters:
- include_screenshot: Whether to include a screenshot (optional, default: False)
"#;

const GET_CONTENT_DESCRIPTION: &str = r#"Extract the main content of the current page in clean markdown format. It has been filtered to remove noise and advertising content.

If the content was truncated and you need more information, use start_from_char parameter to continue from where truncation occurred.
"#;

const SCROLL_DESCRIPTION: &str = r#"Scroll the page up or down.

Use this tool to scroll through page content when elements are not visible or when you need
to see more content.

Parameters:
- direction: Direction to scroll - "up" or "down" (optional, default: "down")
"#;

const GO_BACK_DESCRIPTION: &str = r#"Go back to the previous page in browser history.

Use this tool to navigate back to the previously visited page, similar to clicking the 
browser's back button.
"#;

const LIST_TABS_DESCRIPTION: &str = r#"List all open browser tabs.

This tool shows all currently open tabs with their IDs, titles, and URLs. Use the tab IDs
with browser_switch_tab or browser_close_tab.
"#;

const SWITCH_TAB_DESCRIPTION: &str = r#"Switch to a different browser tab.

Use this tool to switch between open tabs. Get the tab_id from browser_list_tabs.

Parameters:
- tab_id: 4 Character Tab ID of the tab to switch to
"#;

const CLOSE_TAB_DESCRIPTION: &str = r#"Close a specific browser tab.

Use this tool to close tabs you no longer need. Get the tab_id from browser_list_tabs.

Parameters:
- tab_id: 4 Character Tab ID of the tab to close
"#;

const GET_STORAGE_DESCRIPTION: &str = r#"Get browser storage data including cookies,
local storage, and session storage.

This tool extracts all cookies and storage data from the current browser session.
Useful for debugging, session management, or extracting authentication tokens.
"#;

const SET_STORAGE_DESCRIPTION: &str = r#"Set browser storage data including cookies,
local storage, and session storage.

This tool allows you to restore or set the browser's storage state. You can use the
output from browser_get_storage to restore a previous session.

Parameters:
- storage_state: A dictionary containing 'cookies' and 'origins'.
  - cookies: List of cookie objects
  - origins: List of origin objects containing 'localStorage' and 'sessionStorage'
"#;

const START_RECORDING_DESCRIPTION: &str = r#"Start recording the browser session.

This tool starts recording all browser interactions using rrweb. The recording
captures DOM mutations, mouse movements, clicks, scrolls, and other user interactions.

Output Location: .agent_tmp/browser_observations/recording-<timestamp>/
Format: Recording events are saved as numbered JSON files (1.json, 2.json, etc.)
containing rrweb event arrays. Events are flushed every 5 seconds or when they
exceed 1 MB. These files can be replayed using rrweb-player.

Call browser_stop_recording to stop recording and save any remaining events.

Note: Recording persists across page navigations - the recording will automatically
restart on new pages.
"#;

const STOP_RECORDING_DESCRIPTION: &str = r#"Stop recording the browser session.

This tool stops the current recording session and saves any remaining events to disk.

Output Location: .agent_tmp/browser_observations/recording-<timestamp>/
Format: Events are saved as numbered JSON files (1.json, 2.json, etc.) containing
rrweb event arrays. These files can be replayed using rrweb-player to visualize
the recorded session.

Returns a summary message with the total event count, file count, and save directory.
"#;

/// Guidance the agent adds to the system prompt when browser tools are loaded.
pub const BROWSER_PROMPT_GUIDANCE: &str = r#"<BROWSER_TOOLS>
You have a browser for navigating pages and interacting with web UIs.
* Try curl/wget/fetch first. Use the browser only when simpler tools fail or the page requires JS/interaction.
* ALWAYS call `browser_get_state` before EVERY `browser_click` or `browser_type` — indices change after each action. Flow: navigate → get_state → interact → get_state → get_content.
* Max 10 browser actions per sub-task. If stuck, switch approach entirely.
* If 20+ total steps without converging, stop exploring and commit to your best answer.
* On 403/CAPTCHA/login wall: try one alternative, then abandon the browser.
* Do NOT submit forms or create accounts unless explicitly asked.
</BROWSER_TOOLS>"#;

/// Which of the fourteen tools an instance is; the action it executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrowserToolKind {
    Navigate,
    Click,
    GetState,
    GetContent,
    Type,
    Scroll,
    GoBack,
    ListTabs,
    SwitchTab,
    CloseTab,
    GetStorage,
    SetStorage,
    StartRecording,
    StopRecording,
}

/// Upstream's order in `BrowserToolSet.create`.
pub const ALL_KINDS: [BrowserToolKind; 14] = [
    BrowserToolKind::Navigate,
    BrowserToolKind::Click,
    BrowserToolKind::GetState,
    BrowserToolKind::GetContent,
    BrowserToolKind::Type,
    BrowserToolKind::Scroll,
    BrowserToolKind::GoBack,
    BrowserToolKind::ListTabs,
    BrowserToolKind::SwitchTab,
    BrowserToolKind::CloseTab,
    BrowserToolKind::GetStorage,
    BrowserToolKind::SetStorage,
    BrowserToolKind::StartRecording,
    BrowserToolKind::StopRecording,
];

/// The `kind` of every browser observation.
pub const OBSERVATION_KIND: &str = "BrowserObservation";

/// MCP hints: read-only, destructive, idempotent, open-world.
struct Hints(bool, bool, bool, bool);

impl BrowserToolKind {
    /// The name the LLM calls.
    pub fn name(self) -> &'static str {
        match self {
            Self::Navigate => "browser_navigate",
            Self::Click => "browser_click",
            Self::GetState => "browser_get_state",
            Self::GetContent => "browser_get_content",
            Self::Type => "browser_type",
            Self::Scroll => "browser_scroll",
            Self::GoBack => "browser_go_back",
            Self::ListTabs => "browser_list_tabs",
            Self::SwitchTab => "browser_switch_tab",
            Self::CloseTab => "browser_close_tab",
            Self::GetStorage => "browser_get_storage",
            Self::SetStorage => "browser_set_storage",
            Self::StartRecording => "browser_start_recording",
            Self::StopRecording => "browser_stop_recording",
        }
    }

    /// The CamelCase stem shared by the tool and action class names.
    fn stem(self) -> &'static str {
        match self {
            Self::Navigate => "Navigate",
            Self::Click => "Click",
            Self::GetState => "GetState",
            Self::GetContent => "GetContent",
            Self::Type => "Type",
            Self::Scroll => "Scroll",
            Self::GoBack => "GoBack",
            Self::ListTabs => "ListTabs",
            Self::SwitchTab => "SwitchTab",
            Self::CloseTab => "CloseTab",
            Self::GetStorage => "GetStorage",
            Self::SetStorage => "SetStorage",
            Self::StartRecording => "StartRecording",
            Self::StopRecording => "StopRecording",
        }
    }

    /// The action class name (`BrowserNavigateAction`).
    pub fn action_kind(self) -> String {
        format!("Browser{}Action", self.stem())
    }

    fn description(self) -> &'static str {
        match self {
            Self::Navigate => NAVIGATE_DESCRIPTION,
            Self::Click => CLICK_DESCRIPTION,
            Self::GetState => GET_STATE_DESCRIPTION,
            Self::GetContent => GET_CONTENT_DESCRIPTION,
            Self::Type => TYPE_DESCRIPTION,
            Self::Scroll => SCROLL_DESCRIPTION,
            Self::GoBack => GO_BACK_DESCRIPTION,
            Self::ListTabs => LIST_TABS_DESCRIPTION,
            Self::SwitchTab => SWITCH_TAB_DESCRIPTION,
            Self::CloseTab => CLOSE_TAB_DESCRIPTION,
            Self::GetStorage => GET_STORAGE_DESCRIPTION,
            Self::SetStorage => SET_STORAGE_DESCRIPTION,
            Self::StartRecording => START_RECORDING_DESCRIPTION,
            Self::StopRecording => STOP_RECORDING_DESCRIPTION,
        }
    }

    fn hints(self) -> Hints {
        match self {
            Self::Navigate | Self::Click | Self::Type | Self::Scroll | Self::GoBack => {
                Hints(false, false, false, true)
            }
            Self::GetState | Self::GetContent => Hints(true, false, true, true),
            Self::ListTabs | Self::GetStorage => Hints(true, false, true, false),
            Self::SwitchTab | Self::StartRecording | Self::StopRecording => {
                Hints(false, false, false, false)
            }
            Self::CloseTab | Self::SetStorage => Hints(false, true, false, false),
        }
    }

    /// The action's fields in model order: what validation accepts.
    pub fn fields(self) -> Vec<Field> {
        let index = |description| Field {
            name: "index",
            ty: FieldType::Int { min: 0 },
            default: None,
            description,
        };
        match self {
            Self::Navigate => vec![
                Field {
                    name: "url",
                    ty: FieldType::Str,
                    default: None,
                    description: "The URL to navigate to",
                },
                Field {
                    name: "new_tab",
                    ty: FieldType::Bool,
                    default: Some(Value::Bool(false)),
                    description: "Whether to open in a new tab. Default: False",
                },
            ],
            Self::Click => vec![
                index("The index of the element to click (from browser_get_state)"),
                Field {
                    name: "new_tab",
                    ty: FieldType::Bool,
                    default: Some(Value::Bool(false)),
                    description:
                        "Whether to open any resulting navigation in a new tab. Default: False",
                },
            ],
            Self::Type => vec![
                index("The index of the input element (from browser_get_state)"),
                Field {
                    name: "text",
                    ty: FieldType::Str,
                    default: None,
                    description: "The text to type",
                },
            ],
            Self::GetState => vec![Field {
                name: "include_screenshot",
                ty: FieldType::Bool,
                default: Some(Value::Bool(false)),
                description: "Whether to include a screenshot of the current page. Default: False",
            }],
            Self::GetContent => vec![
                Field {
                    name: "extract_links",
                    ty: FieldType::Bool,
                    default: Some(Value::Bool(false)),
                    description: "Whether to include links in the content (default: False)",
                },
                Field {
                    name: "start_from_char",
                    ty: FieldType::Int { min: 0 },
                    default: Some(json!(0)),
                    description:
                        "Character index to start from in the page content (default: 0)",
                },
            ],
            Self::Scroll => vec![Field {
                name: "direction",
                ty: FieldType::Literal(&["up", "down"]),
                default: Some(json!("down")),
                description: "Direction to scroll. Options: 'up', 'down'. Default: 'down'",
            }],
            Self::SwitchTab => vec![Field {
                name: "tab_id",
                ty: FieldType::Str,
                default: None,
                description: "4 Character Tab ID of the tab to switch to (from browser_list_tabs)",
            }],
            Self::CloseTab => vec![Field {
                name: "tab_id",
                ty: FieldType::Str,
                default: None,
                description: "4 Character Tab ID of the tab to close (from browser_list_tabs)",
            }],
            Self::SetStorage => vec![Field {
                name: "storage_state",
                ty: FieldType::Dict,
                default: None,
                description: "Storage state dictionary containing 'cookies' and 'origins' (from browser_get_storage)",
            }],
            Self::GoBack
            | Self::ListTabs
            | Self::GetStorage
            | Self::StartRecording
            | Self::StopRecording => Vec::new(),
        }
    }

    /// The JSON schema of the action's own fields, as upstream emits it
    /// (no `minimum`; enums for literals; `required` only when non-empty).
    fn parameters(self) -> Value {
        let fields = self.fields();
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for field in &fields {
            let mut prop = serde_json::Map::new();
            let ty = match field.ty {
                FieldType::Str | FieldType::Literal(_) => "string",
                FieldType::Bool => "boolean",
                FieldType::Int { .. } => "integer",
                FieldType::Dict => "object",
            };
            prop.insert("type".into(), json!(ty));
            prop.insert("description".into(), json!(field.description));
            if let FieldType::Literal(options) = field.ty {
                prop.insert("enum".into(), json!(options));
            }
            properties.insert(field.name.into(), Value::Object(prop));
            if field.default.is_none() {
                required.push(field.name);
            }
        }
        let mut schema = serde_json::Map::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            schema.insert("required".into(), json!(required));
        }
        Value::Object(schema)
    }

    /// The full static description of this tool.
    pub fn definition(self) -> ToolDefinition {
        let Hints(read_only, destructive, idempotent, open_world) = self.hints();
        ToolDefinition {
            name: self.name().to_string(),
            class_name: format!("Browser{}Tool", self.stem()),
            description: self.description().to_string(),
            parameters: self.parameters(),
            action_kind: self.action_kind(),
            observation_kind: OBSERVATION_KIND.to_string(),
            annotations: ToolAnnotations {
                title: Some(self.name().to_string()),
                read_only,
                destructive,
                idempotent,
                open_world,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_match_upstream() {
        let click = BrowserToolKind::Click.definition();
        assert_eq!(click.class_name, "BrowserClickTool");
        assert_eq!(click.action_kind, "BrowserClickAction");
        assert_eq!(
            click.parameters,
            json!({"type":"object","properties":{
                "index":{"type":"integer","description":"The index of the element to click (from browser_get_state)"},
                "new_tab":{"type":"boolean","description":"Whether to open any resulting navigation in a new tab. Default: False"}},
                "required":["index"]})
        );
        let scroll = BrowserToolKind::Scroll.definition();
        assert_eq!(
            scroll.parameters,
            json!({"type":"object","properties":{"direction":{"type":"string",
                "description":"Direction to scroll. Options: 'up', 'down'. Default: 'down'","enum":["up","down"]}}})
        );
        assert_eq!(
            BrowserToolKind::GoBack.definition().parameters,
            json!({"type":"object","properties":{}})
        );
    }

    #[test]
    fn annotations_match_upstream() {
        let read_only: Vec<_> = ALL_KINDS
            .iter()
            .filter(|k| k.definition().annotations.read_only)
            .map(|k| k.name())
            .collect();
        assert_eq!(
            read_only,
            [
                "browser_get_state",
                "browser_get_content",
                "browser_list_tabs",
                "browser_get_storage"
            ]
        );
        let close = BrowserToolKind::CloseTab.definition().annotations;
        assert!(close.destructive && !close.open_world);
        assert!(BROWSER_PROMPT_GUIDANCE.starts_with("<BROWSER_TOOLS>"));
        assert!(START_RECORDING_DESCRIPTION
            .contains("Output Location: .agent_tmp/browser_observations/recording-<timestamp>/"));
    }
}
