//! The LLM message model shared by events, the agent loop and the LLM client.
//!
//! Shapes follow the Python SDK exactly, including key order
//! (`cache_prompt`, `type`, `text` for text content). Input is lenient the way
//! pydantic is: `content` may be a bare string or null, deprecated keys are
//! dropped, unknown keys are ignored.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A text part of a message or observation.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TextContent {
    pub text: String,
    /// Prompt-caching marker (Anthropic `cache_control`); false unless the agent sets it.
    pub cache_prompt: bool,
}

/// An image part: one or more URLs, usually `data:` URLs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ImageContent {
    pub image_urls: Vec<String>,
    pub cache_prompt: bool,
}

/// One part of a message's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Text(TextContent),
    Image(ImageContent),
}

impl Content {
    /// A text part without the caching marker.
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text(TextContent {
            text: text.into(),
            cache_prompt: false,
        })
    }

    /// An image part with one URL.
    pub fn image(url: impl Into<String>) -> Self {
        Content::Image(ImageContent {
            image_urls: vec![url.into()],
            cache_prompt: false,
        })
    }

    /// The text of a text part.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text(t) => Some(&t.text),
            Content::Image(_) => None,
        }
    }
}

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        match self {
            Content::Text(t) => {
                map.serialize_entry("cache_prompt", &t.cache_prompt)?;
                map.serialize_entry("type", "text")?;
                map.serialize_entry("text", &t.text)?;
            }
            Content::Image(i) => {
                map.serialize_entry("cache_prompt", &i.cache_prompt)?;
                map.serialize_entry("type", "image")?;
                map.serialize_entry("image_urls", &i.image_urls)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        content_from_value(&value).map_err(D::Error::custom)
    }
}

/// Reads one content part; the error text names what is wrong.
pub fn content_from_value(value: &Value) -> Result<Content, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| "content part must be an object".to_string())?;
    let cache_prompt = match obj.get("cache_prompt") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("cache_prompt must be a boolean".into()),
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("text") | None if obj.contains_key("text") => {
            let text = obj
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| "text must be a string".to_string())?;
            Ok(Content::Text(TextContent {
                text: text.to_string(),
                cache_prompt,
            }))
        }
        Some("image") | None if obj.contains_key("image_urls") => {
            let urls = obj
                .get("image_urls")
                .and_then(Value::as_array)
                .ok_or_else(|| "image_urls must be a list".to_string())?
                .iter()
                .map(|u| u.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| "image_urls must be strings".to_string())?;
            Ok(Content::Image(ImageContent {
                image_urls: urls,
                cache_prompt,
            }))
        }
        Some(other) => Err(format!("unknown content type '{other}'")),
        None => Err("content part has no type".into()),
    }
}

/// Message roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    System,
    Assistant,
    Tool,
}

/// Where a tool call came from: Chat Completions or the Responses API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ToolCallOrigin {
    #[default]
    Completion,
    Responses,
}

/// A tool call requested by the model. `arguments` is JSON text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageToolCall {
    pub id: String,
    #[serde(default)]
    pub responses_item_id: Option<String>,
    pub name: String,
    pub arguments: String,
    #[serde(default)]
    pub origin: ToolCallOrigin,
}

/// A chat message in the SDK's shape.
///
/// `thinking_blocks` holds Anthropic thinking / redacted-thinking blocks as
/// JSON (`{"type":"thinking","thinking":…,"signature":…}`) and
/// `responses_reasoning_item` the Responses-API reasoning item, both passed
/// back to the provider unchanged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Content>,
    pub tool_calls: Option<Vec<MessageToolCall>>,
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
    pub reasoning_content: Option<String>,
    pub thinking_blocks: Vec<Value>,
    pub responses_reasoning_item: Option<Value>,
}

impl Message {
    fn with_role(role: Role, content: Vec<Content>) -> Self {
        Message {
            role,
            content,
            tool_calls: None,
            tool_call_id: None,
            name: None,
            reasoning_content: None,
            thinking_blocks: Vec::new(),
            responses_reasoning_item: None,
        }
    }

    /// A user message with one text part.
    pub fn user(text: impl Into<String>) -> Self {
        Self::with_role(Role::User, vec![Content::text(text)])
    }

    /// A system message with the given parts.
    pub fn system(content: Vec<Content>) -> Self {
        Self::with_role(Role::System, content)
    }

    /// An assistant message with the given parts.
    pub fn assistant(content: Vec<Content>) -> Self {
        Self::with_role(Role::Assistant, content)
    }

    /// A tool result message.
    pub fn tool(tool_call_id: &str, name: &str, content: Vec<Content>) -> Self {
        let mut m = Self::with_role(Role::Tool, content);
        m.tool_call_id = Some(tool_call_id.to_string());
        m.name = Some(name.to_string());
        m
    }

    /// All text parts joined by newlines.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(Content::as_text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Deserialize)]
struct RawMessage {
    role: Role,
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Option<Vec<MessageToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    thinking_blocks: Option<Vec<Value>>,
    #[serde(default)]
    responses_reasoning_item: Option<Value>,
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawMessage::deserialize(deserializer)?;
        let content = match raw.content {
            Value::Null => Vec::new(),
            Value::String(s) => vec![Content::text(s)],
            Value::Array(parts) => parts
                .iter()
                .map(content_from_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(D::Error::custom)?,
            _ => return Err(D::Error::custom("content must be a list, a string or null")),
        };
        Ok(Message {
            role: raw.role,
            content,
            tool_calls: raw.tool_calls,
            tool_call_id: raw.tool_call_id,
            name: raw.name,
            reasoning_content: raw.reasoning_content,
            thinking_blocks: raw.thinking_blocks.unwrap_or_default(),
            responses_reasoning_item: raw.responses_reasoning_item,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_content_keeps_python_key_order() {
        let json = serde_json::to_string(&Content::text("hi")).unwrap();
        assert_eq!(json, r#"{"cache_prompt":false,"type":"text","text":"hi"}"#);
    }

    #[test]
    fn message_serialises_with_nulls_in_sdk_order() {
        let json = serde_json::to_string(&Message::user("hello")).unwrap();
        assert_eq!(
            json,
            r#"{"role":"user","content":[{"cache_prompt":false,"type":"text","text":"hello"}],"tool_calls":null,"tool_call_id":null,"name":null,"reasoning_content":null,"thinking_blocks":[],"responses_reasoning_item":null}"#
        );
    }

    #[test]
    fn message_input_is_lenient() {
        let m: Message = serde_json::from_str(
            r#"{"role":"user","content":"plain","cache_enabled":true,"vision_enabled":false}"#,
        )
        .unwrap();
        assert_eq!(m.text(), "plain");
        let m: Message = serde_json::from_str(r#"{"role":"assistant","content":null}"#).unwrap();
        assert!(m.content.is_empty());
        let m: Message = serde_json::from_str(
            r#"{"role":"user","content":[{"type":"text","text":"a","enable_truncation":true},{"type":"image","image_urls":["data:x"]}]}"#,
        )
        .unwrap();
        assert_eq!(m.content.len(), 2);
        assert!(serde_json::from_str::<Message>(r#"{"content":"x"}"#).is_err());
    }
}
