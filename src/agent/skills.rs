//! Skills (agent.md §7): text the agent gets from the repository, the
//! user's home or `agent_context.skills`.
//!
//! - **Repo skills** (no trigger: `AGENTS.md`, `CLAUDE.md`, `.cursorrules`,
//!   skill files without triggers) go into `<REPO_CONTEXT>`.
//! - **Knowledge skills** (keyword triggers) are added to a user message's
//!   `extended_content` the first time one of their keywords appears in it.
//! - **Path rules** (nested `AGENTS.md`, skill files with `paths:` globs) are
//!   added to an observation's `extended_content` the first time a tool
//!   touches a matching file.
//! - **AgentSkills** (`<dir>/SKILL.md`) are listed in `<SKILLS>` and read
//!   with the `invoke_skill` tool; so are knowledge skills.
//!
//! Loading reads files: call the `load_*` functions from `spawn_blocking`.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::api::message::{Content, Message};
use crate::tools::invoke_skill::SkillEntry;
use crate::tools::truncate::{maybe_truncate, DEFAULT_TRUNCATE_NOTICE};

/// When a skill's content reaches the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// Always (repo skills), or on request (AgentSkills).
    None,
    /// When a user message contains one of these keywords.
    Keywords(Vec<String>),
    /// When a tool touches a file matching one of these globs.
    Paths(Vec<String>),
}

/// One skill.
#[derive(Clone, Debug, PartialEq)]
pub struct Skill {
    /// Its name (`agents`, `agents:server`, a file's relative path, or the front-matter `name`).
    pub name: String,
    /// The text given to the model.
    pub content: String,
    /// When it is given.
    pub trigger: Trigger,
    /// Shown in the skill list.
    pub description: Option<String>,
    /// Where it was read from.
    pub source: Option<String>,
    /// Read from a `SKILL.md` (AgentSkills format).
    pub agentskills: bool,
    /// Only its trigger brings it in: it is neither listed nor invocable
    /// (always so for path rules).
    pub disable_model_invocation: bool,
}

/// AgentSkills descriptions are at most this long (in characters).
const MAX_DESCRIPTION: usize = 1024;

impl Skill {
    fn new(name: String, content: String, trigger: Trigger) -> Skill {
        Skill {
            name,
            content,
            trigger,
            description: None,
            source: None,
            agentskills: false,
            disable_model_invocation: false,
        }
    }

    /// Enforces what the SDK's validators enforce: path rules are never
    /// invocable, descriptions are cut to [`MAX_DESCRIPTION`].
    fn finish(mut self) -> Skill {
        if matches!(self.trigger, Trigger::Paths(_)) {
            self.disable_model_invocation = true;
        }
        if let Some(d) = &self.description {
            if d.chars().count() > MAX_DESCRIPTION {
                tracing::warn!(skill = %self.name, "skill description truncated to {MAX_DESCRIPTION} characters");
                let notice = match &self.source {
                    Some(src) => format!("<response clipped><NOTE>Due to the max output limit, only part of the full description is shown. You can view the complete skill content at {src}.</NOTE>"),
                    None => DEFAULT_TRUNCATE_NOTICE.to_string(),
                };
                self.description = Some(maybe_truncate(d, MAX_DESCRIPTION, &notice, None));
            }
        }
        self
    }

    /// The keywords of a keyword-triggered skill.
    pub fn keywords(&self) -> &[String] {
        match &self.trigger {
            Trigger::Keywords(k) => k,
            _ => &[],
        }
    }

    /// Always-on repository context (`<REPO_CONTEXT>`).
    pub fn is_repo(&self) -> bool {
        !self.agentskills && self.trigger == Trigger::None
    }

    /// Listed in `<SKILLS>`: AgentSkills and triggered skills the model may invoke.
    pub fn is_listed(&self) -> bool {
        (self.agentskills || self.trigger != Trigger::None) && !self.disable_model_invocation
    }

    /// The first of its path globs matching a workspace-relative path.
    pub fn match_path(&self, path: &str) -> Option<&str> {
        let Trigger::Paths(globs) = &self.trigger else {
            return None;
        };
        globs
            .iter()
            .find(|g| path_matches_glob(path, g))
            .map(String::as_str)
    }
}

/// Third-party instruction files and the skill names they load as.
const THIRD_PARTY: [(&str, &str); 5] = [
    (".cursorrules", "cursorrules"),
    ("agents.md", "agents"),
    ("agent.md", "agents"),
    ("claude.md", "claude"),
    ("gemini.md", "gemini"),
];

fn third_party_name(file_name: &str) -> Option<&'static str> {
    let lower = file_name.to_lowercase();
    THIRD_PARTY
        .iter()
        .find(|(f, _)| *f == lower)
        .map(|(_, skill)| *skill)
}

/// Skill directories under a project root, first wins.
const SKILL_DIRS: [&str; 3] = [
    ".agents/skills",
    ".openhands/skills",
    ".openhands/microagents",
];

/// Largest skill file read.
const MAX_SKILL_FILE: u64 = 1024 * 1024;

/// Most files looked at when searching the workspace for nested rules.
const MAX_WALK: usize = 100_000;

/// The appended prompt of task skills that take inputs (SDK text).
const MISSING_VARIABLES_PROMPT: &str = "\n\nIf the user didn't provide any of these variables, ask the user to provide them first before the agent can proceed with the task.";

/// Adds skills whose names are new.
fn merge(out: &mut Vec<Skill>, seen: &mut HashSet<String>, skills: Vec<Skill>, from: &Path) {
    for s in skills {
        if seen.insert(s.name.clone()) {
            out.push(s);
        } else {
            tracing::debug!(skill = %s.name, dir = %from.display(), "skipping a duplicate skill");
        }
    }
}

/// Loads the project's skills from `working_dir` and, when different, the
/// enclosing git root (the working directory wins for duplicate names):
/// third-party files, nested third-party files as path rules, then the
/// skill directories.
pub fn load_project_skills(working_dir: &Path) -> Vec<Skill> {
    let mut roots = vec![working_dir.to_path_buf()];
    let git_root = git_root(working_dir);
    if let Some(root) = &git_root {
        if root != working_dir {
            roots.push(root.clone());
        }
    }
    let mut out: Vec<Skill> = Vec::new();
    let mut seen = HashSet::new();
    for root in &roots {
        for path in third_party_files(root) {
            if let Some(content) = read_small(&path) {
                let name = path
                    .file_name()
                    .and_then(|n| third_party_name(&n.to_string_lossy()))
                    .unwrap_or("agents")
                    .to_string();
                let mut skill = Skill::new(name, content, Trigger::None);
                skill.source = Some(path.display().to_string());
                merge(&mut out, &mut seen, vec![skill.finish()], root);
            }
        }
    }
    let rules = nested_rules(working_dir, git_root.is_some());
    merge(&mut out, &mut seen, rules, working_dir);
    for root in &roots {
        for dir in SKILL_DIRS {
            let base = root.join(dir);
            merge(&mut out, &mut seen, load_skills_dir(&base, None), &base);
        }
    }
    out
}

/// The user's skills: `~/.agents/skills`, then `<persistence>/skills`
/// (without its managed `installed/` packages) and the legacy
/// `<persistence>/microagents`; earlier directories win. `persistence` is
/// `~/.openhands` unless `OH_PERSISTENCE_DIR` says otherwise.
pub fn load_user_skills(home: Option<&Path>, persistence: Option<&Path>) -> Vec<Skill> {
    let installed = persistence.map(|p| p.join("skills").join("installed"));
    let mut dirs = Vec::new();
    if let Some(h) = home {
        dirs.push(h.join(".agents").join("skills"));
    }
    if let Some(p) = persistence {
        dirs.push(p.join("skills"));
        dirs.push(p.join("microagents"));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for dir in &dirs {
        merge(
            &mut out,
            &mut seen,
            load_skills_dir(dir, installed.as_deref()),
            dir,
        );
    }
    out
}

/// The user-level persistence directory: `OH_PERSISTENCE_DIR`, else
/// `~/.openhands` (`None` without either).
pub fn persistence_dir(home: Option<&Path>) -> Option<PathBuf> {
    match std::env::var_os("OH_PERSISTENCE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => home.map(|h| h.join(".openhands")),
    }
}

fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_SKILL_FILE {
        if meta.is_file() {
            tracing::warn!(path = %path.display(), "skill file too large; skipped");
        }
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not read a skill file");
            None
        }
    }
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    entries.sort();
    entries
}

/// Top-level third-party files of `root` (case-insensitive names; a second
/// spelling of a name and symlinks to a file already found are skipped).
fn third_party_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    let mut real = HashSet::new();
    for path in sorted_entries(root) {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().to_lowercase()) else {
            continue;
        };
        if third_party_name(&name).is_none() || !path.is_file() {
            continue;
        }
        if !names.insert(name) {
            tracing::warn!(path = %path.display(), "duplicate third-party skill file ignored");
            continue;
        }
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if real.insert(canonical) {
            out.push(path);
        }
    }
    out
}

/// Third-party files below the top level of `working_dir`, each a rule
/// scoped to its directory (`agents:server` for `server/AGENTS.md`, glob
/// `server/**`). Inside a repository the search honours `.gitignore`;
/// elsewhere it skips hidden directories and `node_modules`.
fn nested_rules(working_dir: &Path, in_repo: bool) -> Vec<Skill> {
    let mut builder = ignore::WalkBuilder::new(working_dir);
    builder
        .hidden(false)
        .parents(in_repo)
        .git_ignore(in_repo)
        .git_exclude(in_repo)
        .git_global(in_repo)
        .ignore(false)
        .follow_links(false);
    builder.filter_entry(move |e| {
        let name = e.file_name().to_string_lossy();
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        if !is_dir || e.depth() == 0 {
            return true;
        }
        if in_repo {
            name != ".git"
        } else {
            !name.starts_with('.') && name != "node_modules"
        }
    });
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let mut real = HashSet::new();
    for (visited, entry) in builder.build().flatten().enumerate() {
        if visited >= MAX_WALK {
            tracing::warn!(dir = %working_dir.display(), "stopped searching for nested rules after {MAX_WALK} entries");
            break;
        }
        if entry.depth() < 2 || !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if third_party_name(&entry.file_name().to_string_lossy()).is_none() {
            continue;
        }
        let path = entry.into_path();
        let Some(rel_dir) = path
            .parent()
            .and_then(|p| p.strip_prefix(working_dir).ok())
            .map(posix)
        else {
            continue;
        };
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if real.insert(canonical) {
            found.push((rel_dir, path));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
        .into_iter()
        .filter_map(|(rel_dir, path)| {
            let base = third_party_name(&path.file_name()?.to_string_lossy())?;
            let content = read_small(&path)?;
            let mut rule = Skill::new(
                format!("{base}:{rel_dir}"),
                content,
                Trigger::Paths(vec![format!("{rel_dir}/**")]),
            );
            rule.source = Some(path.display().to_string());
            Some(rule.finish())
        })
        .collect()
}

/// A relative path in `/` form.
fn posix(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The skills of one skill directory: each `<sub>/SKILL.md` (AgentSkills)
/// and every other markdown file below it (not `README.md`, not inside a
/// `SKILL.md` directory or `exclude`), ordered repo skills, knowledge
/// skills, AgentSkills as the SDK orders them. A file that does not load is
/// logged and skipped.
fn load_skills_dir(dir: &Path, exclude: Option<&Path>) -> Vec<Skill> {
    if !dir.is_dir() {
        return Vec::new();
    }
    let skill_md: Vec<PathBuf> = sorted_entries(dir)
        .into_iter()
        .filter(|d| d.is_dir())
        .filter_map(|d| {
            sorted_entries(&d).into_iter().find(|f| {
                f.is_file()
                    && f.file_name()
                        .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case("skill.md"))
            })
        })
        .collect();
    let skill_dirs: Vec<&Path> = skill_md.iter().filter_map(|p| p.parent()).collect();
    let mut regular = Vec::new();
    collect_markdown(dir, &mut regular, 0);
    regular.sort();
    regular.retain(|f| {
        let name = f.file_name().map(|n| n.to_string_lossy().to_string());
        name.as_deref() != Some("README.md")
            && !name.is_some_and(|n| n.eq_ignore_ascii_case("skill.md"))
            && !skill_dirs.iter().any(|d| f.starts_with(d))
            && !exclude.is_some_and(|x| f.starts_with(x))
    });
    let (mut repo, mut knowledge, mut agent) = (Vec::new(), Vec::new(), Vec::new());
    let mut put = |skill: Skill, into_agent: bool| {
        let list = if into_agent {
            &mut agent
        } else if skill.trigger == Trigger::None {
            &mut repo
        } else {
            &mut knowledge
        };
        // The SDK keeps these in dicts by name: a later file replaces an earlier one in place.
        match list.iter_mut().find(|s: &&mut Skill| s.name == skill.name) {
            Some(slot) => *slot = skill,
            None => list.push(skill),
        }
    };
    for path in &skill_md {
        let Some(text) = read_small(path) else {
            continue;
        };
        match agentskill(path, &text) {
            Ok(skill) => put(skill, true),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not load a skill")
            }
        }
    }
    for path in &regular {
        let Some(text) = read_small(path) else {
            continue;
        };
        put(legacy_skill(path, dir, &text), false);
    }
    repo.extend(knowledge);
    repo.extend(agent);
    repo
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 8 {
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
        } else if path.extension().is_some_and(|x| x == "md") && path.is_file() {
            out.push(path);
        }
    }
}

/// An AgentSkills `SKILL.md`: named after its directory unless the front
/// matter says otherwise; the name must be lowercase words joined by single
/// hyphens (at most 64 characters) and equal the directory's name.
fn agentskill(path: &Path, text: &str) -> Result<Skill, String> {
    let dir_name = path
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let fm = FrontMatter::parse(text);
    let name = fm.scalar("name").unwrap_or_else(|| dir_name.clone());
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push("Name cannot be empty".to_string());
    } else {
        if name.chars().count() > 64 {
            errors.push(format!(
                "Name exceeds 64 characters: {}",
                name.chars().count()
            ));
        }
        let valid = name.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if !valid {
            errors.push("Name must be lowercase alphanumeric with single hyphens (e.g., 'my-skill', 'pdf-tools')".to_string());
        }
        if !dir_name.is_empty() && name != dir_name {
            errors.push(format!(
                "Name '{name}' does not match directory '{dir_name}'"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(format!(
            "Invalid skill name '{name}': {}",
            errors.join("; ")
        ));
    }
    let mut skill = from_front_matter(name, &fm, path);
    skill.agentskills = true;
    Ok(skill.finish())
}

/// A legacy skill file: a third-party file name loads as that whole file;
/// otherwise named by its path below the skill directory.
fn legacy_skill(path: &Path, base: &Path, text: &str) -> Skill {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if let Some(name) = third_party_name(&file_name) {
        let mut s = Skill::new(name.to_string(), text.to_string(), Trigger::None);
        s.source = Some(path.display().to_string());
        return s.finish();
    }
    let default = path
        .strip_prefix(base)
        .map(|rel| posix(&rel.with_extension("")))
        .unwrap_or_else(|_| file_name.trim_end_matches(".md").to_string());
    let fm = FrontMatter::parse(text);
    let name = fm.scalar("name").unwrap_or(default);
    from_front_matter(name, &fm, path).finish()
}

/// The skill a front matter describes (trigger: `paths`, else `inputs`
/// (a task: `/name` joins the keywords), else `triggers`/`keywords`).
fn from_front_matter(name: String, fm: &FrontMatter<'_>, path: &Path) -> Skill {
    let mut keywords = fm
        .list("triggers")
        .or_else(|| fm.list("keywords"))
        .unwrap_or_default();
    let paths: Vec<String> = fm
        .list("paths")
        .unwrap_or_default()
        .iter()
        .flat_map(|p| p.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let mut content = fm.body.to_string();
    let trigger = if !paths.is_empty() {
        if !keywords.is_empty() || fm.has("inputs") {
            tracing::warn!(skill = %name, "skill declares 'paths:' with triggers or inputs; the path rule wins");
        }
        Trigger::Paths(paths)
    } else if fm.has("inputs") {
        let task = format!("/{name}");
        if !keywords.contains(&task) {
            keywords.push(task);
        }
        let inputs = fm.list("inputs").unwrap_or_default();
        if (has_variables(&content) || !inputs.is_empty())
            && !content.is_empty()
            && !content.contains(MISSING_VARIABLES_PROMPT)
        {
            content.push_str(MISSING_VARIABLES_PROMPT);
        }
        Trigger::Keywords(keywords)
    } else if !keywords.is_empty() {
        Trigger::Keywords(keywords)
    } else {
        Trigger::None
    };
    let mut skill = Skill::new(name, content, trigger);
    skill.description = fm.scalar("description");
    skill.source = Some(path.display().to_string());
    skill.disable_model_invocation = fm
        .scalar("disable-model-invocation")
        .or_else(|| fm.scalar("disable_model_invocation"))
        .is_some_and(|v| yaml_true(&v));
    skill
}

/// Whether `content` has `${variable}` placeholders.
fn has_variables(content: &str) -> bool {
    content.match_indices("${").any(|(i, _)| {
        let rest = &content[i + 2..];
        let Some(end) = rest.find('}') else {
            return false;
        };
        let var = &rest[..end];
        var.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn yaml_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on")
}

/// The YAML front matter subset skill files use: top-level `key: value`
/// (quoted or plain, continued on indented lines), `key: [a, b]`, `key:`
/// followed by `- item` lines, and `|`/`>` block scalars. Nested mappings
/// are kept only as the presence of their key.
struct FrontMatter<'a> {
    entries: Vec<(String, FmValue)>,
    /// The markdown after the front matter, trimmed.
    body: &'a str,
}

enum FmValue {
    Scalar(String),
    List(Vec<String>),
}

impl<'a> FrontMatter<'a> {
    fn parse(text: &'a str) -> FrontMatter<'a> {
        let none = FrontMatter {
            entries: Vec::new(),
            body: text.trim(),
        };
        let mut lines = text.split_inclusive('\n');
        let Some(first) = lines.next() else {
            return none;
        };
        if !is_boundary(first) {
            return none;
        }
        let mut head = Vec::new();
        let mut offset = first.len();
        let mut closed = false;
        for line in lines {
            offset += line.len();
            if is_boundary(line) {
                closed = true;
                break;
            }
            head.push(line.trim_end_matches(['\r', '\n']));
        }
        if !closed {
            return none;
        }
        FrontMatter {
            entries: parse_head(&head),
            body: text[offset..].trim(),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// A scalar value (the first item of a list).
    fn scalar(&self, key: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| match v {
                FmValue::Scalar(s) => Some(s.clone()),
                FmValue::List(l) => l.first().cloned(),
            })
    }

    /// A list value (a scalar is a one-item list, an empty one none).
    fn list(&self, key: &str) -> Option<Vec<String>> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| match v {
                FmValue::Scalar(s) if s.is_empty() => Vec::new(),
                FmValue::Scalar(s) => vec![s.clone()],
                FmValue::List(l) => l.clone(),
            })
    }
}

fn is_boundary(line: &str) -> bool {
    let t = line.trim_end();
    t.len() >= 3 && t.bytes().all(|b| b == b'-')
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

fn parse_head(head: &[&str]) -> Vec<(String, FmValue)> {
    let mut out: Vec<(String, FmValue)> = Vec::new();
    let mut i = 0;
    while i < head.len() {
        let line = head[i];
        i += 1;
        let indented = line.starts_with([' ', '\t']);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(item) = trimmed
            .strip_prefix("- ")
            .or((trimmed == "-").then_some(""))
        {
            if let Some((_, FmValue::List(l))) = out.last_mut() {
                l.push(unquote(item));
            }
            continue;
        }
        if indented {
            // A plain scalar continued on the next line, or a nested mapping.
            if let Some((_, FmValue::Scalar(s))) = out.last_mut() {
                if !s.is_empty() && !trimmed.contains(": ") {
                    s.push(' ');
                    s.push_str(trimmed);
                }
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        let key = key.trim().to_string();
        let value = value.trim();
        let parsed = if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            FmValue::List(
                list.split(',')
                    .map(unquote)
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        } else if value.starts_with('|') || value.starts_with('>') {
            let folded = value.starts_with('>');
            let strip = value.contains('-');
            let mut block: Vec<&str> = Vec::new();
            while i < head.len() && (head[i].trim().is_empty() || head[i].starts_with([' ', '\t']))
            {
                block.push(head[i].trim());
                i += 1;
            }
            while block.last().is_some_and(|l| l.is_empty()) {
                block.pop();
            }
            let mut text = if folded {
                block.join(" ")
            } else {
                block.join("\n")
            };
            if !strip && !text.is_empty() {
                text.push('\n');
            }
            FmValue::Scalar(text)
        } else if value.is_empty() {
            FmValue::List(Vec::new())
        } else {
            FmValue::Scalar(unquote(value))
        };
        out.push((key, parsed));
    }
    out
}

/// Skills given inline in `agent_context.skills`.
pub fn inline_skills(agent_context: &Map<String, Value>) -> Vec<Skill> {
    let Some(list) = agent_context.get("skills").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|s| {
            let name = s.get("name")?.as_str()?.to_string();
            let content = s.get("content")?.as_str()?.to_string();
            let strings = |v: Option<&Value>| -> Vec<String> {
                v.and_then(Value::as_array)
                    .map(|k| {
                        k.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let trigger = match s.get("trigger") {
                Some(t) if t.get("type").and_then(Value::as_str) == Some("path") => {
                    Trigger::Paths(strings(t.get("paths")))
                }
                Some(t) if t.is_object() => {
                    Trigger::Keywords(strings(t.get("keywords").or_else(|| t.get("triggers"))))
                }
                _ => Trigger::None,
            };
            let text = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_string);
            let mut skill = Skill::new(name, content, trigger);
            skill.description = text("description");
            skill.source = text("source");
            skill.agentskills = s
                .get("is_agentskills_format")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            skill.disable_model_invocation = s
                .get("disable_model_invocation")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Some(skill.finish())
        })
        .collect()
}

/// The conversation's skills: project skills first (they override
/// same-named ones), then the inline ones, then the user's (inline wins),
/// without the disabled names.
pub fn combine(
    project: Vec<Skill>,
    inline: Vec<Skill>,
    user: Vec<Skill>,
    disabled: &[String],
) -> Vec<Skill> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for s in project.into_iter().chain(inline).chain(user) {
        if !disabled.contains(&s.name) && seen.insert(s.name.clone()) {
            out.push(s);
        }
    }
    out
}

/// The repository skills for `<REPO_CONTEXT>`: vendor files meant for
/// another model family (`claude` only for Claude models, `gemini` only for
/// Gemini) are left out.
pub fn repo_context<'a>(skills: &'a [Skill], family: Option<&str>) -> Vec<&'a Skill> {
    skills
        .iter()
        .filter(|s| s.is_repo())
        .filter(|s| match (s.name.to_lowercase().as_str(), family) {
            ("claude", Some(f)) => f.contains("claude") || f.contains("anthropic"),
            ("gemini", Some(f)) => f.contains("gemini"),
            _ => true,
        })
        .collect()
}

/// Whether `invoke_skill` is attached automatically: an AgentSkills skill
/// the model may invoke exists.
pub fn wants_invoke_skill(skills: &[Skill]) -> bool {
    skills
        .iter()
        .any(|s| s.agentskills && !s.disable_model_invocation)
}

/// What `invoke_skill` can find.
pub fn catalog(skills: &[Skill]) -> Vec<SkillEntry> {
    skills
        .iter()
        .map(|s| SkillEntry {
            name: s.name.clone(),
            content: s.content.clone(),
            source: s.source.clone(),
            invocable: !s.disable_model_invocation,
        })
        .collect()
}

/// The `<available_skills>` block (the AgentSkills `to_prompt` form): name
/// and description; without a description, the content's first line that
/// is not a heading, with a note on how much was left out.
pub fn available_skills_block(skills: &[&Skill]) -> String {
    if skills.is_empty() {
        return "<available_skills>\n  no available skills\n</available_skills>".to_string();
    }
    let mut lines = vec!["<available_skills>".to_string()];
    for skill in skills {
        let mut description = skill.description.clone().filter(|d| !d.is_empty());
        let mut truncated = 0usize;
        if description.is_none() {
            let mut before = 0usize;
            for line in skill.content.split('\n') {
                let stripped = line.trim();
                if stripped.is_empty() || stripped.starts_with('#') {
                    before += line.chars().count() + 1;
                    continue;
                }
                description = Some(stripped.to_string());
                let end = before + line.chars().count();
                truncated = skill.content.chars().count().saturating_sub(end);
                break;
            }
        }
        let mut description = description.unwrap_or_default();
        let len = description.chars().count();
        if len > MAX_DESCRIPTION {
            truncated += len - MAX_DESCRIPTION;
            description = description.chars().take(MAX_DESCRIPTION).collect();
        }
        if truncated > 0 {
            description.push_str(&format!(
                "... [{truncated} characters truncated. Call invoke_skill(name=\"{}\") to load the full skill]",
                skill.name
            ));
        }
        lines.push("  <skill>".to_string());
        lines.push(format!(
            "    <name>{}</name>",
            xml_escape(skill.name.trim())
        ));
        lines.push(format!(
            "    <description>{}</description>",
            xml_escape(description.trim())
        ));
        lines.push("  </skill>".to_string());
    }
    lines.push("</available_skills>".to_string());
    lines.join("\n")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
        let Some(kw) = skill.keywords().iter().find(|k| keyword_matches(k, &lower)) else {
            continue;
        };
        if already_active.contains(&skill.name) {
            continue;
        }
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

/// Whether any skill is a path rule.
pub fn has_path_rules(skills: &[Skill]) -> bool {
    skills
        .iter()
        .any(|s| matches!(s.trigger, Trigger::Paths(_)))
}

/// The rules a tool touching `path` (workspace-relative, `/`-separated)
/// brings in, not yet activated ones only: the extended content part and
/// the rule names.
pub fn path_rule_extension(
    path: &str,
    skills: &[Skill],
    already_active: &[String],
) -> Option<(Content, Vec<String>)> {
    if path.is_empty() {
        return None;
    }
    let mut blocks = Vec::new();
    let mut names = Vec::new();
    for skill in skills {
        if already_active.contains(&skill.name) {
            continue;
        }
        let Some(glob) = skill.match_path(path) else {
            continue;
        };
        let location = skill
            .source
            .as_deref()
            .map(|s| format!("Rule location: {s}\n"))
            .unwrap_or_default();
        blocks.push(format!(
            "<EXTRA_INFO>\nThe following rule applies because a file you touched matches \"{glob}\". Follow it when working with matching files.\n{location}\n{}\n</EXTRA_INFO>",
            skill.content
        ));
        names.push(skill.name.clone());
    }
    (!names.is_empty()).then(|| (Content::text(blocks.join("\n")), names))
}

/// Whether `path` matches the gitignore-style `glob`: `**` spans
/// directories, `*` and `?` stay within one, and a glob without `/`
/// matches the file name at any depth. Case-sensitive.
pub fn path_matches_glob(path: &str, glob: &str) -> bool {
    if glob.is_empty() {
        return false;
    }
    let pattern = if glob.contains('/') {
        glob.to_string()
    } else {
        format!("**/{glob}")
    };
    let mut re = String::from(r"\A(?s:");
    let mut rest = pattern.as_str();
    while !rest.is_empty() {
        let (piece, len) = if rest.starts_with("**/") {
            ("(?:.*/)?".to_string(), 3)
        } else if rest.starts_with("**") {
            (".*".to_string(), 2)
        } else if rest.starts_with('*') {
            ("[^/]*".to_string(), 1)
        } else if rest.starts_with('?') {
            ("[^/]".to_string(), 1)
        } else {
            let end = rest.find(['*', '?']).unwrap_or(rest.len());
            (regex::escape(&rest[..end]), end)
        };
        re.push_str(&piece);
        rest = &rest[len..];
    }
    re.push_str(r")\z");
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(path))
}

/// The workspace-relative, `/`-separated form of a path a tool was given;
/// `None` for a path outside the workspace (rules are scoped to it).
pub fn workspace_relative(raw: &str, working_dir: &Path) -> Option<String> {
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Some(lexical(path));
    }
    if let Ok(rel) = path.strip_prefix(working_dir) {
        return Some(lexical(rel));
    }
    // A symlinked workspace root: compare resolved paths (the leaf may not exist yet).
    let root = std::fs::canonicalize(working_dir).ok()?;
    let resolved = std::fs::canonicalize(path).ok().or_else(|| {
        let parent = std::fs::canonicalize(path.parent()?).ok()?;
        Some(parent.join(path.file_name()?))
    })?;
    resolved.strip_prefix(&root).ok().map(lexical)
}

/// `PurePosixPath` normalisation: empty and `.` components dropped.
fn lexical(p: &Path) -> String {
    let parts: Vec<String> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().to_string()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// The files an action touches, as given: its `path` (any tool, as the SDK
/// reads it) and, for `apply_patch`, the files its patch names.
pub fn touched_paths(action: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = action
        .get("path")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        out.push(p.to_string());
    }
    if let Some(patch) = action.get("patch").and_then(Value::as_str) {
        for line in patch.lines() {
            let named = [
                "*** Add File: ",
                "*** Update File: ",
                "*** Delete File: ",
                "*** Move to: ",
            ]
            .iter()
            .find_map(|p| line.strip_prefix(p));
            if let Some(p) = named.map(str::trim).filter(|p| !p.is_empty()) {
                if !out.iter().any(|o| o == p) {
                    out.push(p.to_string());
                }
            }
        }
    }
    out
}

/// The two memory indexes (agent.md §7 `load_memory`): the user's
/// `<persistence>/memory/MEMORY.md` and the project's
/// `.openhands/memory/MEMORY.md`, each under a heading, within 6000
/// characters (older lines dropped first). `None` when both are empty.
pub fn load_memory(working_dir: &Path, persistence: Option<&Path>) -> Option<String> {
    const BUDGET: usize = 6000;
    const PROJECT: &str = ".openhands/memory/MEMORY.md";
    let read = |p: &Path| {
        read_small(p)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let mut tiers: Vec<(String, String)> = Vec::new();
    if let Some(dir) = persistence {
        if let Some(text) = read(&dir.join("memory").join("MEMORY.md")) {
            let shown = match std::env::var_os("OH_PERSISTENCE_DIR").filter(|v| !v.is_empty()) {
                Some(d) => format!("{}/memory/MEMORY.md", Path::new(&d).display()),
                None => "~/.openhands/memory/MEMORY.md".to_string(),
            };
            tiers.push((format!("# User memory ({shown})"), text));
        }
    }
    if let Some(text) = read(&working_dir.join(PROJECT)) {
        tiers.push((format!("# Project memory ({PROJECT})"), text));
    }
    if tiers.is_empty() {
        return None;
    }
    let len = |s: &str| s.chars().count();
    let join = |tiers: &[(String, String)]| {
        tiers
            .iter()
            .map(|(h, b)| format!("{h}\n{b}"))
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let combined = join(&tiers);
    if len(&combined) <= BUDGET {
        return Some(combined);
    }
    let overhead: usize =
        tiers.iter().map(|(h, _)| len(h) + 1).sum::<usize>() + 2 * (tiers.len() - 1);
    let body_budget = BUDGET.saturating_sub(overhead);
    let fair = body_budget / tiers.len();
    let mut budgets: Vec<usize> = tiers.iter().map(|(_, b)| len(b).min(fair)).collect();
    let mut leftover = body_budget.saturating_sub(budgets.iter().sum());
    for (i, (_, b)) in tiers.iter().enumerate() {
        let extra = leftover.min(len(b) - budgets[i]);
        budgets[i] += extra;
        leftover -= extra;
    }
    let cut: Vec<(String, String)> = tiers
        .into_iter()
        .zip(budgets)
        .map(|((h, b), budget)| (h, truncate_top(&b, budget)))
        .collect();
    Some(join(&cut))
}

/// Drops whole lines from the top until the text (with a notice first) fits.
fn truncate_top(body: &str, budget: usize) -> String {
    const NOTICE: &str = "[earlier memory truncated]";
    if body.chars().count() <= budget {
        return body.to_string();
    }
    let lines: Vec<&str> = body.lines().collect();
    for start in 1..=lines.len() {
        let mut candidate = NOTICE.to_string();
        for l in &lines[start..] {
            candidate.push('\n');
            candidate.push_str(l);
        }
        if candidate.chars().count() <= budget {
            return candidate;
        }
    }
    NOTICE.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn loads_third_party_files_rules_and_skill_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join(".git")).unwrap();
        write(&root.join("AGENTS.md"), "Use make.");
        write(
            &root.join(".openhands/skills/db/postgres.md"),
            "---\nname: pg\ntriggers:\n- postgres\n- psql\n---\nUse port 5433.\n",
        );
        write(
            &root.join(".openhands/skills/style.md"),
            "Tabs, not spaces.",
        );
        write(&root.join(".openhands/skills/README.md"), "not a skill");
        write(
            &root.join(".agents/skills/release-notes/SKILL.md"),
            "---\nname: release-notes\ndescription: >\n  Writes the release\n  notes.\n---\n# Notes\nDo it.\n",
        );
        write(
            &root.join(".agents/skills/release-notes/references/extra.md"),
            "reference, not a skill",
        );
        write(
            &root.join(".agents/skills/Bad_Name/SKILL.md"),
            "---\nname: Bad_Name\n---\nx",
        );
        let sub = root.join("sub");
        write(&sub.join("CLAUDE.md"), "Claude rules");
        write(&sub.join("lib/AGENTS.md"), "Lib rules");
        write(&sub.join("node_modules/x/AGENTS.md"), "dependency rules");
        write(&root.join(".gitignore"), "node_modules\n");
        let skills = load_project_skills(&sub);
        let names: Vec<&str> = skills.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "claude",
                "agents",
                "agents:lib",
                "release-notes",
                "style",
                "pg"
            ]
        );
        let rule = &skills[2];
        assert_eq!(rule.trigger, Trigger::Paths(vec!["lib/**".into()]));
        assert!(rule.disable_model_invocation && !rule.is_listed());
        let pg = &skills[5];
        assert_eq!(pg.keywords(), ["postgres", "psql"]);
        assert_eq!(pg.content, "Use port 5433.");
        let notes = &skills[3];
        assert!(notes.agentskills && notes.is_listed() && !notes.is_repo());
        assert_eq!(
            notes.description.as_deref(),
            Some("Writes the release notes.\n")
        );
        assert_eq!(notes.content, "# Notes\nDo it.");
        assert!(wants_invoke_skill(&skills));
        let combined = combine(skills, vec![], vec![], &["style".to_string()]);
        assert!(!combined.iter().any(|s| s.name == "style"));
        let repo: Vec<&str> = repo_context(&combined, Some("openai_gpt"))
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(repo, ["agents"]);
    }

    #[test]
    fn nested_rules_outside_a_repository_skip_hidden_and_node_modules() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("a/b/AGENTS.md"), "deep");
        write(&root.join(".hidden/AGENTS.md"), "hidden");
        write(&root.join("node_modules/AGENTS.md"), "deps");
        write(&root.join("c/.cursorrules"), "cursor");
        let names: Vec<String> = load_project_skills(root)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["agents:a/b", "cursorrules:c"]);
    }

    #[test]
    fn front_matter_paths_tasks_and_invocation() {
        let p = Path::new("/x/skills/py.md");
        let s = legacy_skill(
            p,
            Path::new("/x/skills"),
            "---\npaths: \"src/*.py, lib/**\"\ntriggers: [py]\n---\nPEP 8.",
        );
        assert_eq!(
            s.trigger,
            Trigger::Paths(vec!["src/*.py".into(), "lib/**".into()])
        );
        assert!(s.disable_model_invocation);
        let t = legacy_skill(
            Path::new("/x/skills/deploy/run.md"),
            Path::new("/x/skills"),
            "---\ninputs:\n  - name: ENV\n    description: where\n---\nDeploy to ${ENV}.",
        );
        assert_eq!(t.name, "deploy/run");
        assert_eq!(t.keywords(), ["/deploy/run"]);
        assert!(t.content.ends_with("proceed with the task."));
        assert!(t.description.is_none());
        let h = legacy_skill(
            Path::new("/x/skills/h.md"),
            Path::new("/x/skills"),
            "---\ntriggers:\n- h\ndisable-model-invocation: true\n---\nhidden",
        );
        assert!(h.disable_model_invocation && !h.is_listed());
    }

    #[test]
    fn globs_follow_gitignore_rules() {
        assert!(path_matches_glob("server/main.rs", "server/**"));
        assert!(!path_matches_glob("server", "server/**"));
        assert!(path_matches_glob("a/b/c.py", "*.py"));
        assert!(path_matches_glob("c.py", "*.py"));
        assert!(!path_matches_glob("src/a/b.py", "src/*.py"));
        assert!(path_matches_glob("src/a/b.py", "src/**/*.py"));
        assert!(path_matches_glob("src/b.py", "src/**/*.py"));
        assert!(path_matches_glob("x1.txt", "x?.txt"));
        assert!(!path_matches_glob("a.PY", "*.py"));
        assert!(path_matches_glob("a+b.rs", "a+b.rs"));
        let wd = Path::new("/ws");
        assert_eq!(
            workspace_relative("/ws/./server/a.rs", wd).unwrap(),
            "server/a.rs"
        );
        assert_eq!(
            workspace_relative("server//a.rs", wd).unwrap(),
            "server/a.rs"
        );
        assert!(workspace_relative("/elsewhere/a.rs", wd).is_none());
        let patch = json_patch();
        assert_eq!(touched_paths(&patch), ["a.py", "b/c.py", "d.py"]);
    }

    fn json_patch() -> Value {
        serde_json::json!({"patch": "*** Begin Patch\n*** Add File: a.py\n+x\n*** Update File: b/c.py\n*** Move to: d.py\n@@\n-a\n+b\n*** End Patch"})
    }

    #[test]
    fn rules_are_added_once() {
        let mut rule = Skill::new(
            "agents:server".into(),
            "Run cargo test.".into(),
            Trigger::Paths(vec!["server/**".into()]),
        );
        rule.source = Some("/ws/server/AGENTS.md".into());
        let rule = rule.finish();
        let (content, names) =
            path_rule_extension("server/main.rs", std::slice::from_ref(&rule), &[]).unwrap();
        assert_eq!(names, ["agents:server"]);
        assert_eq!(
            content.as_text().unwrap(),
            "<EXTRA_INFO>\nThe following rule applies because a file you touched matches \"server/**\". Follow it when working with matching files.\nRule location: /ws/server/AGENTS.md\n\nRun cargo test.\n</EXTRA_INFO>"
        );
        assert!(path_rule_extension("server/x", std::slice::from_ref(&rule), &names).is_none());
        assert!(path_rule_extension("client/x", &[rule], &[]).is_none());
    }

    #[test]
    fn keywords_match_whole_tokens_once() {
        assert!(keyword_matches("git", "use git please"));
        assert!(!keyword_matches("git", "open github"));
        assert!(keyword_matches("/linear", "try /linear now"));
        let skill = Skill::new(
            "pg".into(),
            "Port 5433".into(),
            Trigger::Keywords(vec!["Postgres".into()]),
        );
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

    #[test]
    fn skill_list_uses_descriptions_or_the_first_line() {
        let mut a = Skill::new("a".into(), "x".into(), Trigger::None);
        a.agentskills = true;
        a.description = Some("Does <a> & b".into());
        let b = Skill::new(
            "b".into(),
            "# Title\n\nFirst line.\nSecond line.".into(),
            Trigger::Keywords(vec!["b".into()]),
        );
        let block = available_skills_block(&[&a, &b]);
        assert_eq!(
            block,
            "<available_skills>\n  <skill>\n    <name>a</name>\n    <description>Does &lt;a&gt; &amp; b</description>\n  </skill>\n  <skill>\n    <name>b</name>\n    <description>First line.... [13 characters truncated. Call invoke_skill(name=\"b\") to load the full skill]</description>\n  </skill>\n</available_skills>"
        );
    }

    #[test]
    fn memory_tiers_fit_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home/.openhands");
        let wd = dir.path().join("wd");
        assert!(load_memory(&wd, Some(&home)).is_none());
        write(&wd.join(".openhands/memory/MEMORY.md"), "- project fact\n");
        assert_eq!(
            load_memory(&wd, Some(&home)).unwrap(),
            "# Project memory (.openhands/memory/MEMORY.md)\n- project fact"
        );
        let long: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        write(&home.join("memory/MEMORY.md"), &long);
        let text = load_memory(&wd, Some(&home)).unwrap();
        assert!(text.chars().count() <= 6000, "{}", text.len());
        assert!(text.starts_with(
            "# User memory (~/.openhands/memory/MEMORY.md)\n[earlier memory truncated]\n"
        ));
        assert!(text.contains("line 1999\n\n# Project memory"));
        assert!(text.ends_with("- project fact"));
    }

    #[test]
    fn user_skills_skip_installed_packages() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let persistence = home.join(".openhands");
        write(&home.join(".agents/skills/a.md"), "first");
        write(&persistence.join("skills/a.md"), "second");
        write(&persistence.join("skills/installed/pkg/b.md"), "managed");
        write(&persistence.join("microagents/c.md"), "legacy");
        let skills = load_user_skills(Some(home), Some(&persistence));
        let got: Vec<(&str, &str)> = skills
            .iter()
            .map(|s| (s.name.as_str(), s.content.as_str()))
            .collect();
        assert_eq!(got, [("a", "first"), ("c", "legacy")]);
    }
}
