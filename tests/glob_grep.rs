//! `glob` and `grep` on a generated tree: a git repository with a
//! `.gitignore`, hidden files and folders, a binary file, and explicit
//! modification times so the "most recently modified first" order is known.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use agent_server::tools::glob::GlobTool;
use agent_server::tools::grep::GrepTool;
use agent_server::tools::{ExecContext, Observation, Tool, ToolError};
use serde_json::{json, Value};

/// Files (relative path, content), oldest first: each gets an mtime one
/// minute after the previous one.
const FILES: &[(&str, &[u8])] = &[
    (".gitignore", b"ignored.txt\nbuild/\n"),
    ("docs/readme.md", b"Read me: beta release\n"),
    ("src/lib.rs", b"pub fn nothing() {}\n"),
    ("ignored.txt", b"beta\n"),
    ("build/out.txt", b"beta\n"),
    (".hidden/secret.txt", b"beta\n"),
    (".env", b"TOKEN=beta\n"),
    ("bin.dat", b"beta\x00\x01\x02\x03"),
    ("src/main.rs", b"fn main() { println!(\"BETA\"); }\n"),
    ("a.txt", b"alpha Beta gamma\n"),
];

struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    // The walk honours .gitignore only inside a git repository, as rg does.
    fs::create_dir_all(root.join(".git")).unwrap();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (i, (path, content)) in FILES.iter().enumerate() {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        let file = fs::File::options().write(true).open(&p).unwrap();
        file.set_modified(base + Duration::from_secs(60 * i as u64))
            .unwrap();
    }
    let root = root.canonicalize().unwrap();
    Tree { _tmp: tmp, root }
}

fn paths(root: &Path, rel: &[&str]) -> Vec<String> {
    rel.iter()
        .map(|r| root.join(r).display().to_string())
        .collect()
}

async fn run(tool: &dyn Tool, args: Value) -> Observation {
    let action = tool.validate(args.as_object().unwrap()).unwrap();
    tool.execute(&action, &ExecContext::default())
        .await
        .unwrap()
}

fn text(obs: &Observation) -> &str {
    obs.llm_content[0].as_text().unwrap()
}

#[tokio::test]
async fn grep_is_case_insensitive_and_skips_ignored_hidden_and_binary_files() {
    let t = tree();
    let grep = GrepTool::new(t.root.clone());
    let obs = run(&grep, json!({"pattern": "beta"})).await;
    let root = t.root.display().to_string();
    let want = paths(&t.root, &["a.txt", "src/main.rs", "docs/readme.md"]);
    assert_eq!(
        Value::Object(obs.json.clone()),
        json!({
            "content": [{"cache_prompt": false, "type": "text", "text":
                format!("Found 3 file(s) containing pattern 'beta' in '{root}':\n{}", want.join("\n"))}],
            "is_error": false,
            "matches": want,
            "pattern": "beta",
            "search_path": root,
            "include_pattern": null,
            "truncated": false,
            "kind": "GrepObservation"
        })
    );
}

#[tokio::test]
async fn grep_include_filters_with_braces_and_can_whitelist_hidden_files() {
    let t = tree();
    let grep = GrepTool::new(t.root.clone());
    let obs = run(&grep, json!({"pattern": "b.ta", "include": "*.{rs,md}"})).await;
    let want = paths(&t.root, &["src/main.rs", "docs/readme.md"]);
    assert_eq!(obs.json["matches"], json!(want));
    assert!(text(&obs).contains(" (filtered by '*.{rs,md}'):\n"));
    assert_eq!(obs.json["include_pattern"], "*.{rs,md}");

    let obs = run(&grep, json!({"pattern": "token", "include": ".env"})).await;
    assert_eq!(obs.json["matches"], json!(paths(&t.root, &[".env"])));

    // Hidden directories stay out even when the include reaches into them.
    let obs = run(&grep, json!({"pattern": "beta", "include": "*.txt"})).await;
    assert_eq!(
        obs.json["matches"],
        json!(paths(&t.root, &["a.txt", "ignored.txt"]))
    );
}

#[tokio::test]
async fn grep_paths_and_errors() {
    let t = tree();
    let grep = GrepTool::new(t.root.clone());
    let root = t.root.display().to_string();

    let obs = run(&grep, json!({"pattern": "fn", "path": "src"})).await;
    assert_eq!(obs.json["search_path"], json!(format!("{root}/src")));
    assert_eq!(
        obs.json["matches"],
        json!(paths(&t.root, &["src/main.rs", "src/lib.rs"]))
    );

    let obs = run(&grep, json!({"pattern": "zzz", "include": "*.md"})).await;
    assert!(!obs.is_error());
    assert_eq!(
        text(&obs),
        format!(
            "No files found containing pattern 'zzz' in directory '{root}' (filtered by '*.md')"
        )
    );

    let obs = run(&grep, json!({"pattern": "(unclosed"})).await;
    assert!(obs.is_error());
    assert!(
        text(&obs).starts_with("Invalid regex pattern: "),
        "{}",
        text(&obs)
    );
    assert_eq!(obs.json["matches"], json!([]));

    let missing = format!("{root}/nope");
    let obs = run(&grep, json!({"pattern": "x", "path": missing})).await;
    assert!(obs.is_error());
    assert_eq!(
        text(&obs),
        format!("Search path '{missing}' is not a valid directory")
    );
}

#[tokio::test]
async fn glob_follows_rg_override_rules() {
    let t = tree();
    let glob = GlobTool::new(t.root.clone());
    let root = t.root.display().to_string();

    // An explicit glob whitelists gitignored files (as `rg -g` does), but
    // ignored or hidden directories are still not entered.
    let obs = run(&glob, json!({"pattern": "*.txt"})).await;
    let want = paths(&t.root, &["a.txt", "ignored.txt"]);
    assert_eq!(
        Value::Object(obs.json.clone()),
        json!({
            "content": [{"cache_prompt": false, "type": "text", "text":
                format!("Found 2 file(s) matching pattern '*.txt' in '{root}':\n{}", want.join("\n"))}],
            "is_error": false,
            "files": want,
            "pattern": "*.txt",
            "search_path": root,
            "truncated": false,
            "kind": "GlobObservation"
        })
    );

    let obs = run(&glob, json!({"pattern": "src/*.rs"})).await;
    assert_eq!(
        obs.json["files"],
        json!(paths(&t.root, &["src/main.rs", "src/lib.rs"]))
    );

    let obs = run(&glob, json!({"pattern": "**/*.md"})).await;
    assert_eq!(
        obs.json["files"],
        json!(paths(&t.root, &["docs/readme.md"]))
    );
}

#[tokio::test]
async fn glob_absolute_pattern_sets_the_search_root() {
    let t = tree();
    let glob = GlobTool::new(PathBuf::from("/"));
    let root = t.root.display().to_string();
    let pattern = format!("{root}/src/*.rs");
    let obs = run(&glob, json!({"pattern": pattern})).await;
    assert_eq!(obs.json["search_path"], json!(format!("{root}/src")));
    assert_eq!(obs.json["pattern"], json!(pattern));
    assert_eq!(
        obs.json["files"],
        json!(paths(&t.root, &["src/main.rs", "src/lib.rs"]))
    );

    let obs = run(&glob, json!({"pattern": "*.zig", "path": root.clone()})).await;
    assert_eq!(
        text(&obs),
        format!("No files found matching pattern '*.zig' in directory '{root}'")
    );

    let obs = run(
        &glob,
        json!({"pattern": "*", "path": format!("{root}/a.txt")}),
    )
    .await;
    assert!(obs.is_error());
    assert_eq!(
        text(&obs),
        format!("Search path '{root}/a.txt' is not a valid directory")
    );

    let obs = run(&glob, json!({"pattern": "a[", "path": root})).await;
    assert!(obs.is_error());
    assert!(text(&obs).contains("a["), "{}", text(&obs));
}

#[tokio::test]
async fn results_are_limited_to_100_newest() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    for i in 0..150u64 {
        let p = root.join(format!("f{i:03}.log"));
        fs::write(&p, "needle\n").unwrap();
        let file = fs::File::options().write(true).open(&p).unwrap();
        file.set_modified(base + Duration::from_secs(i)).unwrap();
    }
    let newest: Vec<String> = (50..150u64)
        .rev()
        .map(|i| root.join(format!("f{i:03}.log")).display().to_string())
        .collect();

    let glob = GlobTool::new(root.clone());
    let obs = run(&glob, json!({"pattern": "*.log"})).await;
    assert_eq!(obs.json["truncated"], json!(true));
    assert_eq!(obs.json["files"], json!(newest));
    assert!(text(&obs).ends_with(
        "\n\n[Results truncated to first 100 files. Consider using a more specific pattern.]"
    ));
    assert!(text(&obs).starts_with("Found 100 file(s) matching pattern '*.log'"));

    let grep = GrepTool::new(root);
    let obs = run(&grep, json!({"pattern": "NEEDLE"})).await;
    assert_eq!(obs.json["truncated"], json!(true));
    assert_eq!(obs.json["matches"], json!(newest));
}

#[tokio::test]
async fn a_cancelled_search_reports_cancellation() {
    let t = tree();
    let grep = GrepTool::new(t.root.clone());
    let action = grep
        .validate(json!({"pattern": "beta"}).as_object().unwrap())
        .unwrap();
    let ctx = ExecContext::default();
    ctx.cancel.cancel();
    let result = grep.execute(&action, &ctx).await;
    assert!(matches!(result, Err(ToolError::Cancelled)));
}
