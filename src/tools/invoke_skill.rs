//! `invoke_skill` (the SDK's `InvokeSkillTool`): returns a loaded skill's
//! content by name. The agent attaches it when an AgentSkills skill the
//! model may invoke exists (agent.md §7), with the conversation's skills as
//! its catalog; recording the invocation in the state is the agent's job.
//!
//! Like the SDK, rendering runs the skill's inline `` !`command` `` tokens
//! in the working directory (10 s each) and puts their output in their
//! place; code blocks and `` \!`…` `` stay literal.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt;

use super::args::ArgReader;
use super::obs::text_observation;
use super::{ExecContext, Observation, Tool, ToolAnnotations, ToolDefinition, ToolError};

/// The tool's name.
pub const INVOKE_SKILL: &str = "invoke_skill";

/// The class name `include_default_tools` uses for it.
pub const INVOKE_SKILL_CLASS: &str = "InvokeSkillTool";

const DESCRIPTION: &str = "Invoke a skill by name.

This is the only supported way to invoke a skill listed in
`<available_skills>`. Call it with the `<name>` shown in that block; the
skill's full content is rendered (including any dynamic context) and
returned as the tool result.
";

/// Time allowed for one inline command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest command output kept, in bytes.
const MAX_COMMAND_OUTPUT: usize = 50 * 1024;

/// One skill `invoke_skill` can find.
#[derive(Clone, Debug, PartialEq)]
pub struct SkillEntry {
    /// The name the model calls it by.
    pub name: String,
    /// Its content, before rendering.
    pub content: String,
    /// The file it was read from, if any (its directory is named in the result).
    pub source: Option<String>,
    /// The model may invoke it (not a trigger-only skill).
    pub invocable: bool,
}

struct InvokeSkillTool {
    def: ToolDefinition,
    skills: Arc<Vec<SkillEntry>>,
    working_dir: PathBuf,
}

/// The tool, over `skills`, rendering in `working_dir`.
pub fn invoke_skill_tool(skills: Arc<Vec<SkillEntry>>, working_dir: PathBuf) -> Arc<dyn Tool> {
    Arc::new(InvokeSkillTool {
        def: ToolDefinition {
            name: INVOKE_SKILL.into(),
            class_name: INVOKE_SKILL_CLASS.into(),
            description: DESCRIPTION.into(),
            parameters: json!({
                "type": "object",
                "properties": {"name": {"type": "string", "description": "Name of the loaded skill to invoke."}},
                "required": ["name"],
            }),
            action_kind: "InvokeSkillAction".into(),
            observation_kind: "InvokeSkillObservation".into(),
            annotations: ToolAnnotations {
                title: Some(INVOKE_SKILL.into()),
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
        },
        skills,
        working_dir,
    })
}

fn observation(name: &str, text: String, is_error: bool) -> Observation {
    text_observation(
        "InvokeSkillObservation",
        text,
        is_error,
        [("skill_name", Value::String(name.to_string()))],
    )
}

impl Tool for InvokeSkillTool {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn validate(&self, arguments: &Map<String, Value>) -> Result<Value, String> {
        let mut r = ArgReader::new("InvokeSkillAction", arguments);
        let name = r.required_str("name");
        r.finish()?;
        Ok(json!({"name": name.unwrap_or_default(), "kind": "InvokeSkillAction"}))
    }

    fn execute<'a>(
        &'a self,
        action: &'a Value,
        ctx: &'a ExecContext,
    ) -> BoxFuture<'a, Result<Observation, ToolError>> {
        Box::pin(async move {
            let name = action
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim();
            let Some(skill) = self.skills.iter().find(|s| s.name == name) else {
                let mut names: Vec<&str> = self
                    .skills
                    .iter()
                    .filter(|s| s.invocable)
                    .map(|s| s.name.as_str())
                    .collect();
                names.sort_unstable();
                let available = if names.is_empty() {
                    "<none>".to_string()
                } else {
                    names.join(", ")
                };
                return Ok(observation(
                    name,
                    format!("Unknown skill '{name}'. Available skills: {available}."),
                    true,
                ));
            };
            if !skill.invocable {
                return Ok(observation(
                    name,
                    format!("Skill '{name}' cannot be invoked directly. It can only be activated by trigger matching."),
                    true,
                ));
            }
            let rendered = tokio::select! {
                r = render(&skill.content, &self.working_dir) => r,
                _ = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
            };
            let footer = match &skill.source {
                Some(src) => location_footer(src, &self.working_dir).await,
                None => String::new(),
            };
            Ok(observation(name, rendered + &footer, false))
        })
    }

    fn resource_key(&self, action: &Value) -> Option<String> {
        let name = action.get("name").and_then(Value::as_str).unwrap_or("");
        Some(format!("skill:{}", name.trim()))
    }
}

/// Names the skill's directory so the model can reach the files it
/// bundles; relative to the working directory when it lies inside it.
async fn location_footer(source: &str, working_dir: &Path) -> String {
    let Ok(file) = tokio::fs::canonicalize(source).await else {
        return String::new();
    };
    if !tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let Some(dir) = file.parent() else {
        return String::new();
    };
    let root = tokio::fs::canonicalize(working_dir).await.ok();
    let shown = match root.as_deref().and_then(|r| dir.strip_prefix(r).ok()) {
        Some(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Some(rel) => rel.display().to_string(),
        None => dir.display().to_string(),
    };
    format!("\n\n---\nThis skill is located at `{shown}`. Any files it references (e.g. under `scripts/`, `references/`, `assets/`) are relative to that directory.")
}

/// One piece of a skill's text.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    /// Kept as it is.
    Literal(&'a str),
    /// `` !`command` ``: replaced by the command's output.
    Command(&'a str),
}

/// Splits `content` the way the SDK's pattern does, scanning left to right:
/// a fenced block (to its closing fence, or the end when unclosed), an
/// escaped `` \!`…` `` (kept without the backslash), inline code not after
/// `!`, then `` !`command` ``.
fn pieces(content: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    let bytes = content.as_bytes();
    // The end of a `` `…` `` span opening at `open` (at least one character inside).
    let span_end = |open: usize| -> Option<usize> {
        let close = content[open + 1..].find('`')? + open + 1;
        (close > open + 1).then_some(close + 1)
    };
    while i < bytes.len() {
        let rest = &content[i..];
        if rest.starts_with("```") {
            i = match content[i + 3..].find("```") {
                Some(end) => i + 3 + end + 3,
                None => content.len(),
            };
            continue;
        }
        if rest.starts_with("\\!`") {
            if let Some(end) = span_end(i + 2) {
                out.push(Piece::Literal(&content[literal_start..i]));
                literal_start = i + 1;
                i = end;
                continue;
            }
        }
        if bytes[i] == b'`' && (i == 0 || bytes[i - 1] != b'!') {
            if let Some(end) = span_end(i) {
                i = end;
                continue;
            }
        }
        if rest.starts_with("!`") {
            if let Some(end) = span_end(i + 1) {
                out.push(Piece::Literal(&content[literal_start..i]));
                out.push(Piece::Command(&content[i + 2..end - 1]));
                literal_start = end;
                i = end;
                continue;
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    out.push(Piece::Literal(&content[literal_start..]));
    out.retain(|p| *p != Piece::Literal(""));
    out
}

/// The skill's content with its inline commands' output in their place.
async fn render(content: &str, working_dir: &Path) -> String {
    let mut out = String::with_capacity(content.len());
    for piece in pieces(content) {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Command(cmd) => out.push_str(&run_inline(cmd, working_dir).await),
        }
    }
    out
}

/// Runs one inline command with `sh -c` in its own process group (killed
/// whole on timeout); its trimmed stdout, or an `[Error: …]` text.
async fn run_inline(command: &str, working_dir: &Path) -> String {
    let spawned = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return failed(format!("Failed to execute command `{command}`: {e}")),
    };
    let pgid = child.id();
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return failed(format!(
            "Failed to execute command `{command}`: no output pipes"
        ));
    };
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (o, e, status) = tokio::join!(
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err),
            child.wait()
        );
        o.and(e).and(status).map(|s| (s, out, err))
    };
    let result = tokio::time::timeout(COMMAND_TIMEOUT, work).await;
    let Ok(result) = result else {
        if let Some(pid) = pgid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        return failed(format!(
            "Command `{command}` timed out after {:.1}s",
            COMMAND_TIMEOUT.as_secs_f64()
        ));
    };
    let (status, out, err) = match result {
        Ok(r) => r,
        Err(e) => return failed(format!("Failed to execute command `{command}`: {e}")),
    };
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| -s))
            .unwrap_or(-1);
        return failed(format!(
            "Command `{command}` exited with code {code}: {}",
            String::from_utf8_lossy(&err)
        ));
    }
    let text = String::from_utf8_lossy(&out);
    let text = text.trim();
    if text.len() <= MAX_COMMAND_OUTPUT {
        return text.to_string();
    }
    let mut cut = MAX_COMMAND_OUTPUT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\n... [output truncated]", &text[..cut])
}

fn failed(message: String) -> String {
    tracing::warn!(%message, "skill command failed");
    format!("[Error: {message}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, content: &str, invocable: bool) -> SkillEntry {
        SkillEntry {
            name: name.into(),
            content: content.into(),
            source: None,
            invocable,
        }
    }

    #[test]
    fn code_stays_literal_and_commands_are_found() {
        use Piece::*;
        assert_eq!(
            pieces("a !`echo hi` b `!x` c \\!`lit` d"),
            [
                Literal("a "),
                Command("echo hi"),
                Literal(" b `!x` c "),
                Literal("!`lit` d")
            ]
        );
        assert_eq!(
            pieces("```\n!`no`\n```!`yes`"),
            [Literal("```\n!`no`\n```"), Command("yes")]
        );
        assert_eq!(
            pieces("open ```\n!`never`"),
            [Literal("open ```\n!`never`")]
        );
        assert_eq!(pieces("!`` x"), [Literal("!`` x")]);
        assert_eq!(pieces("é!`a`é"), [Literal("é"), Command("a"), Literal("é")]);
    }

    #[tokio::test]
    async fn invokes_known_skills_and_explains_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let skill_dir = dir.path().join(".agents/skills/notes");
        std::fs::create_dir_all(&skill_dir).unwrap();
        std::fs::write(skill_dir.join("SKILL.md"), "x").unwrap();
        let mut notes = entry("notes", "Branch: !`echo main`; fail: !`exit 3`", true);
        notes.source = Some(skill_dir.join("SKILL.md").display().to_string());
        let tool = invoke_skill_tool(
            Arc::new(vec![
                notes,
                entry("rule", "r", false),
                entry("b", "b", true),
            ]),
            dir.path().to_path_buf(),
        );
        let ctx = ExecContext::default();
        let run = |name: &str| {
            let action = tool
                .validate(json!({"name": name}).as_object().unwrap())
                .unwrap();
            let tool = tool.clone();
            let ctx = ctx.clone();
            async move { tool.execute(&action, &ctx).await.unwrap() }
        };
        let ok = run(" notes ").await;
        assert_eq!(
            Value::Object(ok.json.clone()),
            json!({"content": [{"cache_prompt": false, "type": "text",
                    "text": "Branch: main; fail: [Error: Command `exit 3` exited with code 3: ]\n\n---\nThis skill is located at `.agents/skills/notes`. Any files it references (e.g. under `scripts/`, `references/`, `assets/`) are relative to that directory."}],
                   "is_error": false, "skill_name": "notes", "kind": "InvokeSkillObservation"})
        );
        let unknown = run("nope").await;
        assert!(unknown.is_error());
        assert_eq!(
            unknown.llm_content[0].as_text().unwrap(),
            "Unknown skill 'nope'. Available skills: b, notes."
        );
        let rule = run("rule").await;
        assert_eq!(
            rule.llm_content[0].as_text().unwrap(),
            "Skill 'rule' cannot be invoked directly. It can only be activated by trigger matching."
        );
        let err = tool.validate(&Map::new()).unwrap_err();
        assert!(
            err.starts_with("1 validation error for InvokeSkillAction\nname\n  Field required"),
            "{err}"
        );
        assert_eq!(
            tool.resource_key(&json!({"name": " notes"})),
            Some("skill:notes".into())
        );
    }
}
