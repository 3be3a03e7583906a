//! `/api/file/upload` and `/api/file/download` (api.md §6): any absolute
//! path the server may read or write, in the current query form
//! (`?path=/abs`) and the seed's path form (`/api/file/download//abs` or
//! `%2Fabs`, DECISIONS.md).
//!
//! Uploads stream: the multipart field `file` is written chunk by chunk to a
//! temporary file next to the target, which is renamed over the target once
//! complete, so a failed or aborted upload leaves the old file untouched.
//! The JSON body limit does not apply and there is no upload limit of its
//! own: a client holding the session key can already write any file
//! through `/api/bash`, so a cap would protect nothing; the disk is the
//! limit. Downloads stream too ([`file_response`]).

use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body_util::BodyStream;
use hyper::header::{HeaderValue, CONTENT_TYPE, RANGE};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::api::validation::{Loc, ValidationErrorItem};
use crate::http::file_response::{self, FileReply, OpenedFile};
use crate::http::response::BoxError;
use crate::http::{response, schema_ref, ApiError, HandlerResult, Request, Route, RouteTable};

const TAG: &str = "Files";

/// Adds the routes and their schemas.
pub fn register(table: &mut RouteTable) {
    let path_query =
        json!({"type": "string", "title": "Path", "description": "Absolute file path."});
    let path_segment = json!({"type": "string", "title": "Path", "description": "Absolute file path (`//abs` or `%2Fabs`)."});
    let multipart_note = "Multipart form with the file in the field `file`. Parent directories are created; an existing file is replaced once the upload is complete.";
    table
        .schema(
            "FileUploadResult",
            json!({
                "properties": {
                    "success": {"type": "boolean", "default": true, "title": "Success"},
                    "file_size": {"type": "integer", "title": "File Size"},
                },
                "required": ["file_size"],
                "title": "FileUploadResult",
                "type": "object",
            }),
        )
        .add(
            Route::post("/api/file/upload", upload_query)
                .streaming_body()
                .summary("Upload File Query")
                .description(multipart_note)
                .tag(TAG)
                .query_param("path", true, path_query.clone())
                .response(
                    200,
                    "Successful Response",
                    Some(schema_ref("FileUploadResult")),
                ),
        )
        .add(
            Route::get("/api/file/download", download_query)
                .summary("Download File Query")
                .description(
                    "The file's bytes as `application/octet-stream`; one `Range` is honoured.",
                )
                .tag(TAG)
                .query_param("path", true, path_query)
                .response(
                    200,
                    "Successful Response",
                    Some(json!({"type": "string", "format": "binary"})),
                ),
        )
        .add(
            Route::post("/api/file/upload/{*path}", upload_legacy)
                .streaming_body()
                .summary("Upload File")
                .description(multipart_note)
                .tag(TAG)
                .path_param("path", path_segment.clone())
                .response(200, "Successful Response", Some(schema_ref("Success"))),
        )
        .add(
            Route::get("/api/file/download/{*path}", download_legacy)
                .summary("Download File")
                .description(
                    "The file's bytes as `application/octet-stream`; one `Range` is honoured.",
                )
                .tag(TAG)
                .path_param("path", path_segment)
                .response(
                    200,
                    "Successful Response",
                    Some(json!({"type": "string", "format": "binary"})),
                ),
        );
}

fn bad_request(detail: &str) -> ApiError {
    ApiError::bad_request(detail)
}

fn missing_file() -> ValidationErrorItem {
    ValidationErrorItem::missing(vec![Loc::from("body"), Loc::from("file")], Value::Null)
}

/// The `path` query parameter, or a `422` that also names a missing `file`
/// when the body is not multipart (FastAPI reports both at once).
fn query_path(req: &Request, needs_file: bool) -> Result<String, ApiError> {
    let mut params = req.params();
    params.require("path");
    if needs_file && boundary(req).is_none() {
        params.error(missing_file());
    }
    let path = params.str("path");
    params.finish()?;
    path.ok_or_else(|| ApiError::internal("path passed validation without a value"))
}

fn boundary(req: &Request) -> Option<String> {
    let content_type = req.header(CONTENT_TYPE.as_str())?;
    multer::parse_boundary(content_type).ok()
}

async fn upload_query(mut req: Request) -> HandlerResult {
    let path = query_path(&req, true)?;
    let size = upload(&mut req, &path).await?;
    response::json(&json!({"success": true, "file_size": size}))
}

async fn upload_legacy(mut req: Request) -> HandlerResult {
    let path = req.param("path")?.to_string();
    if boundary(&req).is_none() {
        return Err(missing_file().into());
    }
    upload(&mut req, &path).await?;
    response::json(&json!({"success": true}))
}

async fn download_query(req: Request) -> HandlerResult {
    let path = query_path(&req, false)?;
    download(req, path).await
}

async fn download_legacy(req: Request) -> HandlerResult {
    let path = req.param("path")?.to_string();
    download(req, path).await
}

/// Streams the multipart field `file` to `path`; returns the bytes written.
async fn upload(req: &mut Request, path: &str) -> Result<u64, ApiError> {
    req.state().touch();
    let target = absolute(path)?;
    if tokio::fs::metadata(&target).await.is_ok_and(|m| m.is_dir()) {
        return Err(bad_request("Path is a directory"));
    }
    let boundary = boundary(req).ok_or_else(|| ApiError::from(missing_file()))?;
    let body = req
        .take_body()
        .ok_or_else(|| ApiError::internal("the upload body was already read"))?;
    let mut multipart = multer::Multipart::new(data_frames(body), boundary);
    let parse_error = |e: multer::Error| {
        tracing::debug!("multipart upload: {e}");
        bad_request("There was an error parsing the body")
    };
    while let Some(field) = multipart.next_field().await.map_err(parse_error)? {
        if field.name() == Some("file") {
            let size = write_upload(field, &target).await?;
            tracing::info!(path = %target.display(), size, "uploaded file");
            return Ok(size);
        }
    }
    Err(missing_file().into())
}

/// The body's data frames as a stream of chunks (trailers are skipped).
fn data_frames(
    body: crate::http::request::RequestBody,
) -> impl Stream<Item = Result<Bytes, BoxError>> + Send + 'static {
    BodyStream::new(body).try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
}

/// `path` as an absolute path (`400 Path must be absolute` otherwise).
fn absolute(path: &str) -> Result<PathBuf, ApiError> {
    let path = Path::new(path);
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(bad_request("Path must be absolute"))
    }
}

/// Removes an unfinished upload's temporary file when dropped.
struct PartialUpload(Option<PathBuf>);

impl PartialUpload {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for PartialUpload {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn_blocking(move || std::fs::remove_file(path));
            }
        }
    }
}

async fn write_upload(mut field: multer::Field<'static>, target: &Path) -> Result<u64, ApiError> {
    // A symlink is replaced by writing where it points, as opening it for
    // writing would.
    let target = match tokio::fs::canonicalize(target).await {
        Ok(real) => real,
        Err(_) => target.to_path_buf(),
    };
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(bad_request("Path is a directory"));
    };
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| upload_error(&e))?;
    let temp = parent.join(format!(
        ".{}.upload-{}",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let mut file = tokio::fs::File::create(&temp)
        .await
        .map_err(|e| upload_error(&e))?;
    let partial = PartialUpload(Some(temp.clone()));
    let mut size = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|_| bad_request("There was an error parsing the body"))?
    {
        file.write_all(&chunk).await.map_err(|e| upload_error(&e))?;
        size += chunk.len() as u64;
    }
    file.flush().await.map_err(|e| upload_error(&e))?;
    drop(file);
    // A replaced file keeps its permissions.
    if let Ok(old) = tokio::fs::metadata(&target).await {
        if old.is_file() {
            let _ = tokio::fs::set_permissions(&temp, old.permissions()).await;
        }
    }
    tokio::fs::rename(&temp, &target)
        .await
        .map_err(|e| upload_error(&e))?;
    partial.keep();
    Ok(size)
}

/// The Python server's answer for a failed write.
fn upload_error(error: &std::io::Error) -> ApiError {
    match error.kind() {
        ErrorKind::IsADirectory => bad_request("Path is a directory"),
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => {
            bad_request("A parent of the path is not a directory")
        }
        _ => ApiError::internal(format!("Failed to upload file: {error}")),
    }
}

async fn download(req: Request, path: String) -> HandlerResult {
    req.state().touch();
    let target = absolute(&path)?;
    let opened = tokio::task::spawn_blocking(move || -> Result<OpenedFile, ApiError> {
        // Like Python's `exists()`, any failure to look means "not found".
        let meta = std::fs::metadata(&target)
            .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "File not found"))?;
        if !meta.is_file() {
            return Err(bad_request("Path is not a file"));
        }
        // Non-blocking, so a FIFO swapped in after the check cannot hang the open.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&target)
            .and_then(OpenedFile::new)
            .map_err(|e| ApiError::internal(format!("Failed to download file: {e}")))?;
        if opened.meta.is_file() {
            Ok(opened)
        } else {
            Err(bad_request("Path is not a file"))
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("download task: {e}")))??;
    let name = Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    file_response::respond(
        opened,
        FileReply {
            content_type: HeaderValue::from_static("application/octet-stream"),
            attachment: Some(&name),
            range: req.header(RANGE.as_str()),
        },
    )
    .await
}
