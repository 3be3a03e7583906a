//! Runs every fixture in `tests/fixtures/apply_patch/`.
//!
//! A fixture is a folder `NNN_name/` with `input/` (the workspace before),
//! `patch.txt` (`{ROOT}` is replaced by the workspace's absolute path), and
//! either `expected/` (the workspace after) or `expected_error.txt` (the
//! error text; the workspace must then be unchanged). An optional
//! `expected_fuzz.txt` holds the fuzz the match must report, and an optional
//! `symlinks.txt` (`link -> target` per line) names symlinks to create in the
//! workspace (and expect in `expected/`); they are not committed as links so
//! that a link to `..` cannot send cargo's file scan into a loop. Files and
//! symlinks are compared; `.gitkeep` files only keep empty folders in git.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use agent_server::tools::apply_patch::apply_patch;

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Link(PathBuf),
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let ty = entry.file_type().unwrap();
            if ty.is_symlink() {
                out.insert(rel, Entry::Link(fs::read_link(&path).unwrap()));
            } else if ty.is_dir() {
                walk(root, &path, out);
            } else if entry.file_name() != ".gitkeep" {
                out.insert(rel, Entry::File(fs::read(&path).unwrap()));
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
        let ty = entry.file_type().unwrap();
        if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if ty.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != ".gitkeep" {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    Some(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

fn symlinks(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(text) = fs::read_to_string(dir.join("symlinks.txt")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(link, target)| (PathBuf::from(link), PathBuf::from(target)))
        .collect()
}

/// Runs one fixture; `Err` describes the mismatch.
fn run_fixture(dir: &Path) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    copy_tree(&dir.join("input"), &root);
    let links = symlinks(dir);
    for (link, target) in &links {
        std::os::unix::fs::symlink(target, root.join(link)).unwrap();
    }
    let root = root.canonicalize().unwrap();
    let patch = fs::read_to_string(dir.join("patch.txt"))
        .unwrap()
        .replace("{ROOT}", &root.display().to_string());
    let before = snapshot(&root);
    let result = apply_patch(&root, &patch);

    if let Some(expected) = read_trimmed(&dir.join("expected_error.txt")) {
        let after = snapshot(&root);
        return match result {
            Ok(_) => Err(format!("expected error {expected:?}, patch applied")),
            Err(e) if e.0 != expected => Err(format!("error {:?}, expected {expected:?}", e.0)),
            Err(_) if after != before => Err("a refused patch changed the workspace".into()),
            Err(_) => Ok(()),
        };
    }
    let applied = result.map_err(|e| format!("unexpected error {:?}", e.0))?;
    let mut expected = snapshot(&dir.join("expected"));
    for (link, target) in links {
        expected.insert(link, Entry::Link(target));
    }
    let actual = snapshot(&root);
    if actual != expected {
        return Err(format!("tree differs:\n got {actual:?}\nwant {expected:?}"));
    }
    if let Some(fuzz) = read_trimmed(&dir.join("expected_fuzz.txt")) {
        if applied.fuzz.to_string() != fuzz {
            return Err(format!("fuzz {}, expected {fuzz}", applied.fuzz));
        }
    }
    Ok(())
}

#[test]
fn apply_patch_fixtures() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apply_patch");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "only {} fixtures found", dirs.len());
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            run_fixture(d)
                .err()
                .map(|e| format!("{}: {e}", d.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
