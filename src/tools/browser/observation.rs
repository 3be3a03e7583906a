//! `BrowserObservation`: the event object and what the LLM is shown
//! (upstream `BrowserObservation.to_llm_content`).

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::definitions::OBSERVATION_KIND;
use crate::api::message::Content;
use crate::tools::truncate::{maybe_truncate, SaveTo, DEFAULT_TRUNCATE_NOTICE};
use crate::tools::Observation;

/// Browser text longer than this is middle-truncated for the LLM.
pub const TEXT_CONTENT_LIMIT: usize = 50_000;

/// The result of one browser action before rendering.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub text: String,
    pub is_error: bool,
    /// Base64 image data (no `data:` prefix).
    pub screenshot: Option<String>,
}

impl Outcome {
    /// A successful text result.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// An error result (`is_error: true`).
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
            screenshot: None,
        }
    }
}

/// Upstream's `detect_image_mime_type`: the MIME type from the base64 prefix.
fn mime_type(base64_data: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 4] = [
        ("/9j/", "image/jpeg"),
        ("iVBORw0KGgo", "image/png"),
        ("R0lGODlh", "image/gif"),
        ("UklGR", "image/webp"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| base64_data.starts_with(prefix))
        .map_or("image/png", |(_, mime)| mime)
}

/// Writes the screenshot once as `browser_screenshot_<sha256[:8]>.<ext>`.
fn save_screenshot(base64_data: &str, dir: &Path) -> io::Result<PathBuf> {
    use base64::Engine as _;
    std::fs::create_dir_all(dir)?;
    let ext = match mime_type(base64_data).rsplit('/').next() {
        Some("jpeg") => "jpg",
        Some(other) => other,
        None => "png",
    };
    let digest = Sha256::digest(base64_data.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("browser_screenshot_{hash}.{ext}"));
    if !path.exists() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64_data)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        std::fs::write(&path, bytes)?;
    }
    Ok(path)
}

/// Renders an outcome into the observation event object and the LLM content.
/// Saving the full text and the screenshot is file I/O: it runs on the
/// blocking pool.
pub async fn render(outcome: Outcome, save_dir: PathBuf) -> Observation {
    let mut json = Map::new();
    let text_part =
        serde_json::to_value(Content::text(outcome.text.clone())).unwrap_or(Value::Null);
    json.insert("content".into(), Value::Array(vec![text_part]));
    json.insert("is_error".into(), Value::Bool(outcome.is_error));
    json.insert(
        "screenshot_data".into(),
        outcome
            .screenshot
            .clone()
            .map_or(Value::Null, Value::String),
    );
    json.insert(
        "full_output_save_dir".into(),
        Value::String(save_dir.display().to_string()),
    );
    json.insert("kind".into(), Value::String(OBSERVATION_KIND.into()));

    let rendered = tokio::task::spawn_blocking(move || {
        let mut parts = Vec::new();
        if !outcome.text.is_empty() {
            let save = SaveTo {
                dir: &save_dir,
                prefix: "browser",
            };
            parts.push(Content::text(maybe_truncate(
                &outcome.text,
                TEXT_CONTENT_LIMIT,
                DEFAULT_TRUNCATE_NOTICE,
                Some(save),
            )));
        }
        if let Some(data) = &outcome.screenshot {
            if let Ok(path) = save_screenshot(data, &save_dir) {
                parts.push(Content::text(format!(
                    "Screenshot saved to: {}",
                    path.display()
                )));
            }
            parts.push(Content::image(format!(
                "data:{};base64,{data}",
                mime_type(data)
            )));
        }
        parts
    })
    .await;
    let llm_content = rendered
        .unwrap_or_else(|_| vec![Content::text("Browser observation could not be rendered")]);
    Observation { json, llm_content }
}

/// What the LLM was shown for a stored `BrowserObservation` (the view is
/// rebuilt from `events.jsonl` after a restart): the text, the screenshot
/// note and the image. The saved-output path of a truncated text is not
/// known any more, so the plain notice stands in for it.
pub fn llm_content_from_json(observation: &Map<String, Value>) -> Vec<Content> {
    let mut parts = Vec::new();
    let text: String = observation
        .get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if !text.is_empty() {
        parts.push(Content::text(maybe_truncate(
            &text,
            TEXT_CONTENT_LIMIT,
            DEFAULT_TRUNCATE_NOTICE,
            None,
        )));
    }
    if let Some(data) = observation.get("screenshot_data").and_then(Value::as_str) {
        if let Some(dir) = observation
            .get("full_output_save_dir")
            .and_then(Value::as_str)
        {
            let digest = Sha256::digest(data.as_bytes());
            let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
            let ext = match mime_type(data).rsplit('/').next() {
                Some("jpeg") => "jpg",
                Some(other) => other,
                None => "png",
            };
            parts.push(Content::text(format!(
                "Screenshot saved to: {}",
                Path::new(dir)
                    .join(format!("browser_screenshot_{hash}.{ext}"))
                    .display()
            )));
        }
        parts.push(Content::image(format!(
            "data:{};base64,{data}",
            mime_type(data)
        )));
    }
    parts
}

/// A serde_json formatter that escapes every non-ASCII character, like
/// Python's `json.dumps` (default `ensure_ascii=True`).
struct AsciiPretty<'a>(serde_json::ser::PrettyFormatter<'a>);

impl serde_json::ser::Formatter for AsciiPretty<'_> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// `json.dumps(value, indent=2)` as Python writes it.
pub fn py_json_pretty(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let formatter = AsciiPretty(serde_json::ser::PrettyFormatter::with_indent(b"  "));
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_style_json() {
        let v = json!({"a": [1, {"b": "é😀\n"}], "e": [], "f": {}});
        assert_eq!(
            py_json_pretty(&v),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"\\u00e9\\ud83d\\ude00\\n\"\n    }\n  ],\n  \"e\": [],\n  \"f\": {}\n}"
        );
    }

    #[test]
    fn detects_mime_types() {
        assert_eq!(mime_type("iVBORw0KGgoAAA"), "image/png");
        assert_eq!(mime_type("/9j/4AAQ"), "image/jpeg");
        assert_eq!(mime_type("zzz"), "image/png");
    }

    #[tokio::test]
    async fn renders_text_screenshot_and_error_flag() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nfake");
        let obs = render(
            Outcome {
                text: "hello".into(),
                is_error: false,
                screenshot: Some(png.clone()),
            },
            dir.path().to_path_buf(),
        )
        .await;
        let keys: Vec<_> = obs.json.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "content",
                "is_error",
                "screenshot_data",
                "full_output_save_dir",
                "kind"
            ]
        );
        assert_eq!(obs.json["kind"], "BrowserObservation");
        assert_eq!(obs.llm_content.len(), 3);
        assert_eq!(obs.llm_content[0].as_text(), Some("hello"));
        let saved = obs.llm_content[1].as_text().unwrap();
        let path = saved.strip_prefix("Screenshot saved to: ").unwrap();
        assert!(path.ends_with(".png"));
        assert_eq!(std::fs::read(path).unwrap(), b"\x89PNG\r\n\x1a\nfake");
        match &obs.llm_content[2] {
            Content::Image(img) => {
                assert_eq!(img.image_urls[0], format!("data:image/png;base64,{png}"))
            }
            other => panic!("expected an image, got {other:?}"),
        }

        let err = render(
            Outcome::error("Browser operation failed: x"),
            dir.path().to_path_buf(),
        )
        .await;
        assert!(err.is_error());
        assert_eq!(err.llm_content.len(), 1);
    }

    #[tokio::test]
    async fn truncates_long_text_and_saves_it() {
        let dir = tempfile::tempdir().unwrap();
        let long = "line of page text\n".repeat(5000);
        let obs = render(Outcome::text(long.clone()), dir.path().to_path_buf()).await;
        let shown = obs.llm_content[0].as_text().unwrap();
        assert!(shown.chars().count() <= TEXT_CONTENT_LIMIT);
        assert!(shown.contains("browser_output_"));
        assert_eq!(obs.json["content"][0]["text"], long);
    }
}
