//! `metadata.json`: a conversation's settings and agent state, rewritten
//! atomically (temp file, `fsync`, `rename`, `fsync` of the directory), and
//! the start-up catalog scan that reads only these files.
//!
//! Blocking I/O: call from `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// The file name inside a conversation directory.
pub const METADATA_FILE: &str = "metadata.json";

/// The version written in `format_version`; readers refuse newer ones.
pub const FORMAT_VERSION: u32 = 1;

/// Writes `metadata.json` in `dir` atomically.
pub fn write_metadata(dir: &Path, doc: &Value) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(doc).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(METADATA_FILE), &bytes)
}

/// Replaces `path` with `bytes` so a crash leaves either the old or the new
/// content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the directory entry is.
    File::open(dir)?.sync_all()
}

/// Reads and parses `metadata.json` in `dir`.
pub fn read_metadata(dir: &Path) -> std::io::Result<Value> {
    let bytes = fs::read(dir.join(METADATA_FILE))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// What the catalog keeps of a conversation without loading it.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogRecord {
    /// The conversation id.
    pub id: Uuid,
    /// The conversation directory.
    pub dir: PathBuf,
    /// `created_at` (UTC `…Z`).
    pub created_at: String,
    /// `updated_at` as last persisted.
    pub updated_at: String,
    /// `execution_status` as last persisted.
    pub execution_status: String,
    /// The owning conversation, if any.
    pub parent_conversation_id: Option<Uuid>,
    /// `workspace.working_dir` as the client gave it.
    pub working_dir: String,
}

#[derive(Deserialize)]
struct RecordHead {
    #[serde(default)]
    format_version: u32,
    id: String,
    created_at: String,
    updated_at: String,
    #[serde(default)]
    execution_status: Option<String>,
    #[serde(default)]
    parent_conversation_id: Option<String>,
    workspace: WorkspaceHead,
}

#[derive(Deserialize)]
struct WorkspaceHead {
    working_dir: String,
}

/// Reads the catalog facts of one conversation directory.
pub fn read_record(dir: &Path) -> Result<CatalogRecord, String> {
    let bytes = fs::read(dir.join(METADATA_FILE)).map_err(|e| e.to_string())?;
    let head: RecordHead = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if head.format_version > FORMAT_VERSION {
        return Err(format!(
            "format_version {} is newer than this server's",
            head.format_version
        ));
    }
    let id = Uuid::parse_str(&head.id).map_err(|e| e.to_string())?;
    Ok(CatalogRecord {
        id,
        dir: dir.to_path_buf(),
        created_at: head.created_at,
        updated_at: head.updated_at,
        execution_status: head.execution_status.unwrap_or_else(|| "idle".into()),
        parent_conversation_id: head
            .parent_conversation_id
            .and_then(|p| Uuid::parse_str(&p).ok()),
        working_dir: head.workspace.working_dir,
    })
}

/// Result of scanning the conversations directory.
#[derive(Debug, Default)]
pub struct Scan {
    /// Conversations that could be read.
    pub records: Vec<CatalogRecord>,
    /// Directories that could not, with the reason (logged by the caller).
    pub failures: Vec<(PathBuf, String)>,
}

/// Reads every `{root}/{id-hex}/metadata.json`, in parallel. Directories
/// whose name is not a hex id, or without a metadata file (a create that
/// never finished), are ignored.
pub fn scan(root: &Path) -> std::io::Result<Scan> {
    fs::create_dir_all(root)?;
    let mut dirs = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 32 && Uuid::try_parse(name).is_ok() {
            dirs.push(entry.path());
        }
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let chunk = dirs.len().div_ceil(threads).max(1);
    let mut out = Scan::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut scan = Scan::default();
                    for dir in part {
                        if !dir.join(METADATA_FILE).exists() {
                            continue;
                        }
                        match read_record(dir) {
                            Ok(r) => scan.records.push(r),
                            Err(e) => scan.failures.push((dir.clone(), e)),
                        }
                    }
                    scan
                })
            })
            .collect();
        for h in handles {
            if let Ok(part) = h.join() {
                out.records.extend(part.records);
                out.failures.extend(part.failures);
            }
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn atomic_write_and_scan() {
        let root = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        let dir = root.path().join(id.simple().to_string());
        fs::create_dir_all(&dir).unwrap();
        let doc = json!({"format_version":1,"id":id.simple().to_string(),"created_at":"2026-01-01T00:00:00Z",
            "updated_at":"2026-01-01T00:00:01Z","execution_status":"running","workspace":{"working_dir":"w"},"agent":{"big":[1,2,3]}});
        write_metadata(&dir, &doc).unwrap();
        assert_eq!(read_metadata(&dir).unwrap(), doc);
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(METADATA_FILE)]);
        // A broken one, an unfinished one and a stray directory.
        let bad = root.path().join(Uuid::new_v4().simple().to_string());
        fs::create_dir_all(&bad).unwrap();
        fs::write(bad.join(METADATA_FILE), b"{").unwrap();
        fs::create_dir_all(root.path().join(Uuid::new_v4().simple().to_string())).unwrap();
        fs::create_dir_all(root.path().join("not-a-conversation")).unwrap();
        let scan = scan(root.path()).unwrap();
        assert_eq!(scan.records.len(), 1);
        assert_eq!(scan.records[0].id, id);
        assert_eq!(scan.records[0].execution_status, "running");
        assert_eq!(scan.failures.len(), 1);
    }
}
