//! Serving a file from disk, as Starlette's `FileResponse` does: streamed in
//! chunks read off the async threads, with `content-length`,
//! `last-modified`, `etag`, `accept-ranges: bytes`, an optional
//! `content-disposition`, and one `Range` honoured (`206`; `416` when it
//! lies beyond the end; several ranges or a malformed header get the whole
//! file).

use std::fs::Metadata;
use std::io::SeekFrom;
use std::time::UNIX_EPOCH;

use hyper::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, ETAG,
    LAST_MODIFIED,
};
use hyper::StatusCode;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::error::{ApiError, HandlerResult};
use super::response;

/// Bytes read from disk per chunk of the body.
const CHUNK: usize = 64 * 1024;

/// Python's `urllib.parse.quote` keeps these (and `/`) as they are.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/');

/// A file opened for serving, with its metadata (taken from the open file).
#[derive(Debug)]
pub struct OpenedFile {
    /// The open file.
    pub file: std::fs::File,
    /// Its metadata.
    pub meta: Metadata,
}

impl OpenedFile {
    /// Takes the metadata of an open file (a blocking call: use off the async threads).
    pub fn new(file: std::fs::File) -> std::io::Result<Self> {
        let meta = file.metadata()?;
        Ok(OpenedFile { file, meta })
    }
}

/// How to present the file.
#[derive(Debug)]
pub struct FileReply<'a> {
    /// The `content-type`.
    pub content_type: HeaderValue,
    /// Download name for `content-disposition: attachment`; none for inline files.
    pub attachment: Option<&'a str>,
    /// The request's `Range` header.
    pub range: Option<&'a str>,
}

/// The response for `opened`.
pub async fn respond(opened: OpenedFile, reply: FileReply<'_>) -> HandlerResult {
    let size = opened.meta.len();
    let range = reply.range.and_then(|r| parse_range(r, size));
    let (status, start, length) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Range::Unsatisfiable) => {
            let mut error = response::json_bytes(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &br#"{"detail":"Range Not Satisfiable"}"#[..],
            );
            insert(&mut error, CONTENT_RANGE, &format!("bytes */{size}"));
            return Ok(error);
        }
        Some(Range::Bytes(start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
    };

    let mut file = tokio::fs::File::from_std(opened.file);
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::internal(format!("seek in a served file: {e}")))?;
    }
    let body = ReaderStream::with_capacity(file.take(length), CHUNK);
    let mut response = response::stream(status, reply.content_type, body);
    insert(&mut response, CONTENT_LENGTH, &length.to_string());
    insert(&mut response, ACCEPT_RANGES, "bytes");
    if let Some(modified) = modified_seconds(&opened.meta) {
        if let Some(date) = http_date(modified.0) {
            insert(&mut response, LAST_MODIFIED, &date);
        }
        insert(&mut response, ETAG, &etag(modified, size));
    }
    if let Some(name) = reply.attachment {
        insert(&mut response, CONTENT_DISPOSITION, &attachment(name));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + length - 1;
        insert(
            &mut response,
            CONTENT_RANGE,
            &format!("bytes {start}-{end}/{size}"),
        );
    }
    Ok(response)
}

fn insert(response: &mut response::Response, name: hyper::header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// Modification time as whole seconds and the full float Python's `st_mtime` gives.
fn modified_seconds(meta: &Metadata) -> Option<(i64, f64)> {
    let since = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((i64::try_from(since.as_secs()).ok()?, since.as_secs_f64()))
}

/// `Wed, 25 Nov 2026 01:08:25 GMT`.
fn http_date(seconds: i64) -> Option<String> {
    let ts = jiff::Timestamp::from_second(seconds).ok()?;
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&ts)
        .ok()
}

/// A quoted validator that changes with the file's time and size (Starlette
/// hashes the same two facts).
fn etag(modified: (i64, f64), size: u64) -> String {
    let digest = Sha256::digest(format!("{}-{size}", modified.1).as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Starlette's `content-disposition`: a plain quoted name when quoting
/// changes nothing, else the RFC 5987 form.
fn attachment(name: &str) -> String {
    let quoted = utf8_percent_encode(name, QUOTE).to_string();
    if quoted == name {
        format!("attachment; filename=\"{name}\"")
    } else {
        format!("attachment; filename*=utf-8''{quoted}")
    }
}

/// A `Range` header's meaning for a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Inclusive first and last byte.
    Bytes(u64, u64),
    /// The range starts beyond the end.
    Unsatisfiable,
}

/// One `bytes=` range; `None` (serve everything) for several ranges or
/// anything malformed, as RFC 9110 allows.
fn parse_range(header: &str, size: u64) -> Option<Range> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    if first.is_empty() {
        // A suffix: the last N bytes.
        let n = number(last)?;
        if n == 0 || size == 0 {
            return Some(Range::Unsatisfiable);
        }
        return Some(Range::Bytes(size.saturating_sub(n), size - 1));
    }
    let start = number(first)?;
    let end = if last.is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    if end.is_some_and(|end| end < start) {
        return None;
    }
    if start >= size {
        return Some(Range::Unsatisfiable);
    }
    let end = end.map_or(size - 1, |end| end.min(size - 1));
    Some(Range::Bytes(start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Range::Bytes(0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some(Range::Bytes(90, 99)));
        assert_eq!(parse_range("bytes=90-500", 100), Some(Range::Bytes(90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some(Range::Bytes(90, 99)));
        assert_eq!(parse_range("bytes=-500", 100), Some(Range::Bytes(0, 99)));
        assert_eq!(parse_range("bytes=100-", 100), Some(Range::Unsatisfiable));
        assert_eq!(parse_range("bytes=-0", 100), Some(Range::Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=a-b", 100), None);
        assert_eq!(parse_range("bytes=+1-2", 100), None);
    }

    #[test]
    fn headers_read_like_starlette() {
        assert_eq!(
            http_date(1_795_568_905).unwrap(),
            "Wed, 25 Nov 2026 01:08:25 GMT"
        );
        assert_eq!(attachment("a.txt"), "attachment; filename=\"a.txt\"");
        assert_eq!(
            attachment("my file \"x\".txt"),
            "attachment; filename*=utf-8''my%20file%20%22x%22.txt"
        );
        let tag = etag((1, 1.5), 10);
        assert_eq!(tag.len(), 34);
        assert_ne!(tag, etag((1, 1.5), 11));
    }
}
