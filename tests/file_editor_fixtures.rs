//! Runs every fixture in `tests/fixtures/file_editor/` through the tool.
//!
//! A fixture is a folder with `input/` (the workspace), `steps.json` (tool
//! arguments; `{ROOT}` is the workspace path), `expected.json` (one
//! observation per step, recorded from the Python editor by `generate.py`,
//! with the workspace path as `{ROOT}` and temp-file names as `XXXXXXXX`) and
//! `expected/` (the workspace afterwards) when the steps write.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use agent_server::tools::file_editor::FileEditorTool;
use agent_server::tools::{ExecContext, Tool};
use serde_json::Value;

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.file_name().unwrap() != ".gitkeep" {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != ".gitkeep" {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Puts the placeholders back: the workspace path and random temp names.
fn normalise(v: &Value, root: &str, temp_name: &regex::Regex) -> Value {
    match v {
        Value::String(s) => {
            let s = s.replace(root, "{ROOT}");
            Value::String(temp_name.replace_all(&s, ".$1.XXXXXXXX.tmp").into_owned())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| normalise(x, root, temp_name)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), normalise(x, root, temp_name)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn run_fixture(dir: &Path) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&dir.join("input"), &tmp.path().join("ws"));
    let root = tmp.path().join("ws").canonicalize().unwrap();
    let root_str = root.display().to_string();
    let temp_name = regex::Regex::new(r"\.([^/.']+)\.[a-z0-9_]{8}\.tmp").unwrap();
    let steps: Vec<Value> =
        serde_json::from_str(&fs::read_to_string(dir.join("steps.json")).unwrap()).unwrap();
    let expected: Vec<Value> =
        serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(
        steps.len(),
        expected.len(),
        "steps and expectations differ in number"
    );

    let tool = FileEditorTool::new(root.clone(), false);
    let ctx = ExecContext::default();
    for (i, (step, want)) in steps.iter().zip(&expected).enumerate() {
        let args: Value =
            serde_json::from_str(&step.to_string().replace("{ROOT}", &root_str)).unwrap();
        let action = tool
            .validate(args.as_object().unwrap())
            .map_err(|e| format!("step {i}: validation failed: {e}"))?;
        let obs = tool
            .execute(&action, &ctx)
            .await
            .map_err(|e| format!("step {i}: {e:?}"))?;
        let got = normalise(&Value::Object(obs.json), &root_str, &temp_name);
        if &got != want {
            return Err(format!(
                "step {i} ({step}):\n got {}\nwant {}",
                serde_json::to_string_pretty(&got).unwrap(),
                serde_json::to_string_pretty(want).unwrap()
            ));
        }
    }
    let want_tree = if dir.join("expected").is_dir() {
        snapshot(&dir.join("expected"))
    } else {
        snapshot(&dir.join("input"))
    };
    let got_tree = snapshot(&root);
    if got_tree != want_tree {
        return Err(format!(
            "workspace differs:\n got {:?}\nwant {:?}",
            got_tree.keys().collect::<Vec<_>>(),
            want_tree.keys().collect::<Vec<_>>()
        ) + &format!("\n got {got_tree:?}\nwant {want_tree:?}"));
    }
    Ok(())
}

#[tokio::test]
async fn file_editor_fixtures() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/file_editor");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "only {} fixtures found", dirs.len());
    let mut failures = Vec::new();
    for dir in &dirs {
        if let Err(e) = run_fixture(dir).await {
            failures.push(format!(
                "{}: {e}",
                dir.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
