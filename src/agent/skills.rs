//! Skills (agent.md §7): text the agent gets from the repository or from
//! `agent_context.skills`.
//!
//! - **Repo skills** (no trigger: `AGENTS.md`, `CLAUDE.md`, `.cursorrules`,
//!   skill files without keywords) go into `<REPO_CONTEXT>` of the system
//!   prompt.
//! - **Knowledge skills** (keyword triggers) are added to a user message's
//!   `extended_content` the first time one of their keywords appears in it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::api::message::{Content, Message};

/// One skill.
#[derive(Clone, Debug, PartialEq)]
pub struct Skill {
    /// Its name (`agents`, `claude`, a file's relative path, or the front-matter `name`).
    pub name: String,
    /// The text given to the model.
    pub content: String,
    /// Keywords; empty for repo skills.
    pub keywords: Vec<String>,
    /// Shown in the skill list.
    pub description: Option<String>,
    /// Where it was read from.
    pub source: Option<String>,
}

/// Third-party instruction files and the skill names they load as.
const THIRD_PARTY: [(&str, &str); 5] = [
    (".cursorrules", "cursorrules"),
    ("agents.md", "agents"),
    ("agent.md", "agents"),
    ("claude.md", "claude"),
    ("gemini.md", "gemini"),
];

/// Skill directories under a project root, first wins.
const SKILL_DIRS: [&str; 3] = [
    ".agents/skills",
    ".openhands/skills",
    ".openhands/microagents",
];

/// Largest skill file read.
const MAX_SKILL_FILE: u64 = 1024 * 1024;

/// Loads the project's skills from `working_dir` and, when different, the
/// enclosing git root (the working directory wins for duplicate names).
/// Blocking: call from `spawn_blocking`.
pub fn load_project_skills(working_dir: &Path) -> Vec<Skill> {
    let mut roots = vec![working_dir.to_path_buf()];
    if let Some(root) = git_root(working_dir) {
        if root != working_dir {
            roots.push(root);
        }
    }
    let mut out: Vec<Skill> = Vec::new();
    let push = |skill: Skill, out: &mut Vec<Skill>| {
        if !out.iter().any(|s| s.name == skill.name) {
            out.push(skill);
        }
    };
    for root in &roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut files: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_lowercase();
                THIRD_PARTY
                    .iter()
                    .find(|(f, _)| *f == name)
                    .map(|(_, skill)| (skill.to_string(), e.path()))
            })
            .collect();
        files.sort();
        for (name, path) in files {
            if let Some(content) = read_small(&path) {
                push(
                    Skill {
                        name,
                        content,
                        keywords: vec![],
                        description: None,
                        source: Some(path.display().to_string()),
                    },
                    &mut out,
                );
            }
        }
    }
    for root in &roots {
        for dir in SKILL_DIRS {
            let base = root.join(dir);
            let mut files = Vec::new();
            collect_markdown(&base, &mut files, 0);
            files.sort();
            for path in files {
                let Some(text) = read_small(&path) else {
                    continue;
                };
                let rel = path
                    .strip_prefix(&base)
                    .unwrap_or(&path)
                    .with_extension("")
                    .to_string_lossy()
                    .replace('\\', "/");
                push(parse_skill_file(&rel, &text, &path), &mut out);
            }
        }
    }
    out
}

fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_SKILL_FILE {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            collect_markdown(&path, out, depth + 1);
        } else if ft.is_file()
            && path.extension().is_some_and(|x| x == "md")
            && !path
                .file_name()
                .is_some_and(|n| n.eq_ignore_ascii_case("README.md"))
        {
            out.push(path);
        }
    }
}

/// A skill file: optional YAML front matter (`name`, `triggers` or
/// `keywords`, `description`) and the markdown body.
pub fn parse_skill_file(default_name: &str, text: &str, path: &Path) -> Skill {
    let (meta, body) = front_matter(text);
    let name = meta
        .iter()
        .find(|(k, _)| k == "name")
        .and_then(|(_, v)| v.first().cloned())
        .unwrap_or_else(|| default_name.to_string());
    let keywords = meta
        .iter()
        .find(|(k, _)| k == "triggers" || k == "keywords")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let description = meta
        .iter()
        .find(|(k, _)| k == "description")
        .and_then(|(_, v)| v.first().cloned());
    Skill {
        name,
        content: body.to_string(),
        keywords,
        description,
        source: Some(path.display().to_string()),
    }
}

/// The front matter as (key, values) pairs and the body after it. Only
/// what skills use is understood: `key: value`, `key: [a, b]` and
/// `key:` followed by `- item` lines.
fn front_matter(text: &str) -> (Vec<(String, Vec<String>)>, &str) {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (Vec::new(), text);
    };
    let Some(end) = rest.find("\n---") else {
        return (Vec::new(), text);
    };
    let head = &rest[..end];
    let body = rest[end + 4..].trim_start_matches(['\r', '\n']);
    let unquote = |s: &str| s.trim().trim_matches('"').trim_matches('\'').to_string();
    let mut meta: Vec<(String, Vec<String>)> = Vec::new();
    for line in head.lines() {
        let trimmed = line.trim();
        if let Some(item) = trimmed.strip_prefix("- ") {
            if let Some(last) = meta.last_mut() {
                last.1.push(unquote(item));
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let values = if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            list.split(',')
                .map(unquote)
                .filter(|s| !s.is_empty())
                .collect()
        } else if value.is_empty() {
            Vec::new()
        } else {
            vec![unquote(value)]
        };
        meta.push((key.trim().to_string(), values));
    }
    (meta, body)
}

/// Skills given inline in `agent_context.skills`.
pub fn inline_skills(agent_context: &Map<String, Value>) -> Vec<Skill> {
    agent_context
        .get("skills")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|s| {
                    let name = s.get("name")?.as_str()?.to_string();
                    let content = s.get("content")?.as_str()?.to_string();
                    let trigger = s.get("trigger");
                    let keywords = trigger
                        .and_then(|t| t.get("keywords").or_else(|| t.get("triggers")))
                        .and_then(Value::as_array)
                        .map(|k| {
                            k.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    Some(Skill {
                        name,
                        content,
                        keywords,
                        description: s
                            .get("description")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        source: s.get("source").and_then(Value::as_str).map(str::to_string),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Drops vendor files meant for another model family (`claude` skills only
/// for Claude models, `gemini` only for Gemini) and disabled skills.
pub fn gate(skills: Vec<Skill>, family: Option<&str>, disabled: &[String]) -> Vec<Skill> {
    skills
        .into_iter()
        .filter(|s| !disabled.contains(&s.name))
        .filter(|s| match (s.name.to_lowercase().as_str(), family) {
            ("claude", Some(f)) => f.contains("claude") || f.contains("anthropic"),
            ("gemini", Some(f)) => f.contains("gemini"),
            _ => true,
        })
        .collect()
}

/// Whether `keyword` occurs in `text_lower` as a whole token (bounded by
/// characters that are not ASCII letters or digits), case-insensitively.
pub fn keyword_matches(keyword: &str, text_lower: &str) -> bool {
    let kw = keyword.to_lowercase();
    if kw.is_empty() {
        return false;
    }
    let is_word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    text_lower.match_indices(&kw).any(|(i, m)| {
        let before = text_lower[..i].chars().next_back();
        let after = text_lower[i + m.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The knowledge text for a user message: the skills whose keyword appears
/// (not yet activated ones only) and `user_message_suffix`. Returns the
/// extended content part and the names of the skills it activated.
pub fn user_message_extension(
    message: &Message,
    skills: &[Skill],
    already_active: &[String],
    suffix: Option<&str>,
) -> Option<(Content, Vec<String>)> {
    let suffix = suffix.map(str::trim).filter(|s| !s.is_empty());
    let query = message.text().trim().to_string();
    if query.is_empty() {
        return suffix.map(|s| (Content::text(s), Vec::new()));
    }
    let lower = query.to_lowercase();
    let mut text = String::new();
    let mut names = Vec::new();
    for skill in skills {
        if already_active.contains(&skill.name) {
            continue;
        }
        let Some(kw) = skill.keywords.iter().find(|k| keyword_matches(k, &lower)) else {
            continue;
        };
        text.push_str(&format!(
            "\n<EXTRA_INFO>\nThe following information has been included based on a keyword match for \"{kw}\".\nIt may or may not be relevant to the user's request.\n"
        ));
        if let Some(src) = &skill.source {
            text.push_str(&format!(
                "\nSkill location: {src}\n(Use this path to resolve relative file references in the skill content below)\n"
            ));
        }
        text.push_str(&format!("\n{}\n</EXTRA_INFO>\n", skill.content));
        names.push(skill.name.clone());
    }
    if names.is_empty() {
        return suffix.map(|s| (Content::text(s), Vec::new()));
    }
    if let Some(s) = suffix {
        text.push('\n');
        text.push_str(s);
    }
    Some((Content::text(text), names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_third_party_files_and_skill_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join(".git")).unwrap();
        std::fs::write(root.join("AGENTS.md"), "Use make.").unwrap();
        std::fs::create_dir_all(root.join(".openhands/skills/db")).unwrap();
        std::fs::write(
            root.join(".openhands/skills/db/postgres.md"),
            "---\nname: pg\ntriggers:\n- postgres\n- psql\n---\nUse port 5433.\n",
        )
        .unwrap();
        std::fs::write(root.join(".openhands/skills/style.md"), "Tabs, not spaces.").unwrap();
        let sub = root.join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("CLAUDE.md"), "Claude rules").unwrap();
        let skills = load_project_skills(&sub);
        let names: Vec<&str> = skills.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["claude", "agents", "pg", "style"]);
        let pg = &skills[2];
        assert_eq!(pg.keywords, ["postgres", "psql"]);
        assert_eq!(pg.content, "Use port 5433.\n");
        let gated = gate(skills, Some("openai_gpt"), &["style".to_string()]);
        assert_eq!(
            gated.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["agents", "pg"]
        );
    }

    #[test]
    fn keywords_match_whole_tokens_once() {
        assert!(keyword_matches("git", "use git please"));
        assert!(!keyword_matches("git", "open github"));
        assert!(keyword_matches("/linear", "try /linear now"));
        let skill = Skill {
            name: "pg".into(),
            content: "Port 5433".into(),
            keywords: vec!["Postgres".into()],
            description: None,
            source: None,
        };
        let msg = Message::user("Connect to postgres");
        let (content, names) =
            user_message_extension(&msg, std::slice::from_ref(&skill), &[], Some("Be brief"))
                .unwrap();
        assert_eq!(names, ["pg"]);
        let text = content.as_text().unwrap();
        assert!(
            text.contains("<EXTRA_INFO>")
                && text.contains("\"Postgres\"")
                && text.ends_with("\nBe brief")
        );
        assert!(user_message_extension(&msg, &[skill], &["pg".into()], None).is_none());
    }
}
