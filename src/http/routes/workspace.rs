//! The workspace routes:
//!
//! - `GET /api/conversations/{conversation_id}/workspace[/{file_path}]`
//!   (api.md §3.9): a static file server over the conversation's working
//!   directory. A directory serves its `index.html`. Nothing outside the
//!   working directory is reachable: the path is resolved like Python's
//!   `Path.resolve()` (`..`, symlinks, encoded `%2F` and `%2e%2e`, which the
//!   router has decoded, absolute paths) and must stay inside, and the file
//!   is then opened with `openat2(RESOLVE_BENEATH)` from the working
//!   directory, so a symlink swapped in after the check cannot lead out
//!   either. Auth: the session key header or the `oh_workspace_session_key`
//!   cookie (browsers cannot add headers to `<iframe src>`).
//! - `GET /workspace` (DECISIONS.md): the default workspace
//!   (`workspace_path`): `{"working_dir": "<absolute path>", "exists": bool,
//!   "free_bytes": int|null, "total_bytes": int|null}`, the space of the
//!   file system holding it (null when it does not exist). Needs the
//!   session key like `/api/` routes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use hyper::header::{HeaderValue, COOKIE, RANGE};
use hyper::StatusCode;
use serde_json::json;

use crate::http::file_response::{self, FileReply, OpenedFile};
use crate::http::router::Access;
use crate::http::{response, ApiError, HandlerResult, Request, Route, RouteTable};
use crate::util::ids;

/// The cookie the workspace routes accept instead of the header.
pub const WORKSPACE_SESSION_COOKIE: &str = "oh_workspace_session_key";

/// Adds the routes.
pub fn register(table: &mut RouteTable) {
    let conversation_id = json!({"type": "string", "format": "uuid", "title": "Conversation Id"});
    table
        .add(
            Route::get("/api/conversations/{conversation_id}/workspace", serve_root)
                .public()
                .summary("Serve Workspace Root")
                .description("Serve `index.html` from the conversation's workspace root.")
                .tag("Workspace")
                .path_param("conversation_id", conversation_id.clone())
                .response(200, "Successful Response", None)
                .response(404, "File or conversation not found", None),
        )
        .add(
            Route::get(
                "/api/conversations/{conversation_id}/workspace/{*file_path}",
                serve_file,
            )
            .public()
            .summary("Serve Workspace File")
            .description("Serve a file (or directory `index.html`) from the workspace.")
            .tag("Workspace")
            .path_param("conversation_id", conversation_id)
            .path_param("file_path", json!({"type": "string", "title": "File Path"}))
            .response(200, "Successful Response", None)
            .response(404, "File or conversation not found", None),
        );
    let mut info = Route::get("/workspace", workspace_info)
        .summary("Get Workspace Info")
        .description(
            "The default workspace (`workspace_path`): `working_dir` (absolute), `exists`, and \
             `free_bytes` / `total_bytes` of its file system (null when it does not exist).",
        )
        .tag("Workspace")
        .response(
            200,
            "Successful Response",
            Some(json!({
                "type": "object",
                "title": "WorkspaceInfo",
                "properties": {
                    "working_dir": {"type": "string", "title": "Working Dir"},
                    "exists": {"type": "boolean", "title": "Exists"},
                    "free_bytes": {"anyOf": [{"type": "integer"}, {"type": "null"}], "title": "Free Bytes"},
                    "total_bytes": {"anyOf": [{"type": "integer"}, {"type": "null"}], "title": "Total Bytes"},
                },
                "required": ["working_dir", "exists", "free_bytes", "total_bytes"],
            })),
        );
    info.access = Access::ApiKey;
    table.add(info);
}

async fn serve_root(req: Request) -> HandlerResult {
    serve(req, String::new()).await
}

async fn serve_file(req: Request) -> HandlerResult {
    let path = req.param("file_path")?.to_string();
    serve(req, path).await
}

/// The header or the workspace cookie must carry a session key.
fn authorised(req: &Request) -> bool {
    let keys = req.api_keys();
    if keys.allows_headers(req.headers()) {
        return true;
    }
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| {
            name == WORKSPACE_SESSION_COOKIE && !value.is_empty() && keys.allows(Some(value))
        })
}

async fn serve(req: Request, file_path: String) -> HandlerResult {
    if !authorised(&req) {
        return Err(ApiError::unauthorized());
    }
    let id = super::bash::conversation_id(&req)?;
    let place = req.state().find_conversation(id).await.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Conversation not found: {}", ids::dashed(&id)),
        )
    })?;
    let working_dir = place.working_dir;
    let (opened, served) = tokio::task::spawn_blocking(move || open_in(&working_dir, &file_path))
        .await
        .map_err(|e| ApiError::internal(format!("workspace task: {e}")))??;
    file_response::respond(
        opened,
        FileReply {
            content_type: content_type(&served),
            attachment: None,
            range: req.header(RANGE.as_str()),
        },
    )
    .await
}

fn not_found(detail: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, detail)
}

fn outside() -> ApiError {
    ApiError::bad_request("Path is outside the workspace")
}

/// Opens what `file_path` names under `working_dir` (blocking); returns the
/// open file and the path served (for its content type).
fn open_in(working_dir: &Path, file_path: &str) -> Result<(OpenedFile, PathBuf), ApiError> {
    let root = working_dir
        .canonicalize()
        .ok()
        .filter(|r| r.is_dir())
        .ok_or_else(|| not_found("Workspace directory does not exist"))?;
    if file_path.contains('\0') {
        return Err(not_found("File not found"));
    }
    let target = resolve(&root.join(file_path));
    if !target.starts_with(&root) {
        return Err(outside());
    }
    let served = match std::fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => {
            let index = resolve(&target.join("index.html"));
            if !index.starts_with(&root) {
                return Err(outside());
            }
            if !std::fs::metadata(&index).is_ok_and(|m| m.is_file()) {
                return Err(not_found("No index.html in directory"));
            }
            index
        }
        Ok(meta) if meta.is_file() => target,
        _ => return Err(not_found("File not found")),
    };
    let relative = served.strip_prefix(&root).map_err(|_| outside())?;
    let file = open_beneath(&root, relative).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_found("File not found"),
        // EXDEV: resolution would have left the working directory.
        _ if e.raw_os_error() == Some(nix::libc::EXDEV) => outside(),
        _ => ApiError::internal(format!("open a workspace file: {e}")),
    })?;
    let opened = OpenedFile::new(file)
        .map_err(|e| ApiError::internal(format!("stat a workspace file: {e}")))?;
    if !opened.meta.is_file() {
        return Err(not_found("File not found"));
    }
    Ok((opened, served))
}

/// Python's non-strict `Path.resolve()`: symlinks of the existing part
/// resolved, `.` and `..` applied in order (a `..` after a symlink leaves
/// its target), the missing rest kept as written.
fn resolve(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => out = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if let Ok(real) = out.canonicalize() {
                    out = real;
                }
            }
        }
    }
    out
}

/// Opens `relative` beneath `root` without letting resolution leave it.
fn open_beneath(root: &Path, relative: &Path) -> std::io::Result<std::fs::File> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let dir = std::fs::File::open(root)?;
    let relative: &OsStr = if relative.as_os_str().is_empty() {
        OsStr::from_bytes(b".")
    } else {
        relative.as_os_str()
    };
    let how = OpenHow::new()
        // Non-blocking, so a FIFO swapped in after the check cannot hang the open.
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&dir, relative, how) {
        Ok(fd) => Ok(std::fs::File::from(fd)),
        // Kernels before 5.6: the path was checked above, open it plainly.
        Err(nix::errno::Errno::ENOSYS) => std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(root.join(relative)),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// The `content-type` Python's `mimetypes` guesses for common files (text
/// with `charset=utf-8`); anything else is `text/plain`, as Starlette's
/// `FileResponse` answers.
fn content_type(path: &Path) -> HeaderValue {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mime = match extension.as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "py" => "text/x-python",
        "sh" => "text/x-sh",
        "c" => "text/x-csrc",
        "h" => "text/x-chdr",
        "diff" | "patch" => "text/x-diff",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        "ico" => "image/vnd.microsoft.icon",
        "tif" | "tiff" => "image/tiff",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "ogv" => "video/ogg",
        "mp3" => "audio/mpeg",
        "wav" => "audio/x-wav",
        "ogg" | "oga" => "audio/ogg",
        "flac" => "audio/flac",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        _ => "text/plain",
    };
    let value = if mime.starts_with("text/") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8"))
}

async fn workspace_info(req: Request) -> HandlerResult {
    let configured = req.state().config.workspace_path.clone();
    let info = tokio::task::spawn_blocking(move || {
        let dir = std::path::absolute(&configured).unwrap_or(configured);
        let exists = dir.is_dir();
        let space = exists
            .then(|| nix::sys::statvfs::statvfs(&dir).ok())
            .flatten()
            .map(|s| {
                let block = s.fragment_size();
                (
                    block.saturating_mul(s.blocks_available()),
                    block.saturating_mul(s.blocks()),
                )
            });
        json!({
            "working_dir": dir.to_string_lossy(),
            "exists": exists,
            "free_bytes": space.map(|s| s.0),
            "total_bytes": space.map(|s| s.1),
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("workspace info task: {e}")))?;
    response::json(&info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn detail(result: Result<(OpenedFile, PathBuf), ApiError>) -> (u16, String) {
        match result {
            Ok((_, path)) => (200, path.to_string_lossy().into_owned()),
            Err(ApiError::Detail(status, detail)) => (status.as_u16(), detail),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn confines_paths_to_the_workspace() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().canonicalize().unwrap();
        let ws = base.join("ws");
        std::fs::create_dir_all(ws.join("site/inner")).unwrap();
        std::fs::write(ws.join("a.txt"), "a").unwrap();
        std::fs::write(ws.join("site/index.html"), "<p>").unwrap();
        std::fs::write(base.join("secret.txt"), "s").unwrap();
        symlink(base.join("secret.txt"), ws.join("out")).unwrap();
        symlink(ws.join("a.txt"), ws.join("abs-in")).unwrap();
        symlink("site", ws.join("rel-in")).unwrap();
        symlink(&base, ws.join("up")).unwrap();

        let ok = |p: &str| detail(open_in(&ws, p));
        assert_eq!(ok("a.txt").0, 200);
        assert_eq!(ok("abs-in").0, 200);
        assert!(ok("site").1.ends_with("site/index.html"));
        assert!(ok("rel-in/").1.ends_with("site/index.html"));
        assert!(ok("site/inner/../index.html")
            .1
            .ends_with("site/index.html"));
        assert_eq!(ok("").0, 404);
        assert_eq!(ok("").1, "No index.html in directory");
        assert_eq!(ok("missing.txt"), (404, "File not found".into()));
        let escape = (400, "Path is outside the workspace".to_string());
        assert_eq!(ok("../secret.txt"), escape);
        assert_eq!(ok("site/../../secret.txt"), escape);
        assert_eq!(ok("out"), escape);
        assert_eq!(ok("up/secret.txt"), escape);
        assert_eq!(ok("/etc/passwd"), escape);
        assert_eq!(ok("../missing"), escape);
        assert_eq!(ok("a\0b"), (404, "File not found".into()));
        assert_eq!(
            detail(open_in(&base.join("gone"), "a.txt")),
            (404, "Workspace directory does not exist".into())
        );
    }

    #[test]
    fn index_html_may_not_lead_out() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().canonicalize().unwrap();
        let ws = base.join("ws");
        std::fs::create_dir_all(ws.join("d")).unwrap();
        std::fs::write(base.join("index.html"), "x").unwrap();
        symlink(base.join("index.html"), ws.join("d/index.html")).unwrap();
        assert_eq!(
            detail(open_in(&ws, "d")),
            (400, "Path is outside the workspace".into())
        );
    }

    #[test]
    fn guesses_content_types() {
        assert_eq!(
            content_type(Path::new("a.txt")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("Makefile")),
            "text/plain; charset=utf-8"
        );
    }
}
