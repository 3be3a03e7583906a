//! `/api/file/upload` and `/api/file/download`, both forms, through the real binary.

#[path = "server_apis/mod.rs"]
pub mod common;
pub mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{auth, get, Server, KEY};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{Client, TestResponse};
use tokio::io::AsyncWriteExt;

const BOUNDARY: &str = "agent-server-test-boundary";

/// A multipart body with one field.
fn multipart(field: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(client: &mut Client, path: &str, field: &str, data: &[u8]) -> TestResponse {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    client
        .request(
            Method::POST,
            path,
            &[("X-Session-API-Key", KEY), ("content-type", &content_type)],
            multipart(field, data),
        )
        .await
}

fn query(path: &std::path::Path) -> String {
    format!(
        "?path={}",
        percent_encoding::utf8_percent_encode(
            path.to_str().unwrap(),
            percent_encoding::NON_ALPHANUMERIC
        )
    )
}

fn detail(response: &TestResponse) -> (StatusCode, Value) {
    (response.status, response.json())
}

fn bad(text: &str) -> (StatusCode, Value) {
    (StatusCode::BAD_REQUEST, json!({"detail": text}))
}

#[tokio::test]
async fn upload_and_download_both_forms() {
    let server = Server::start();
    let mut client = server.client().await;
    let work = server.dir.join("work");
    std::fs::create_dir(&work).unwrap();

    // Query form: parents created, the size reported, the bytes back with
    // Starlette's headers.
    let target = work.join("deep/new/dir/uploaded.txt");
    let up = upload(
        &mut client,
        &format!("/api/file/upload{}", query(&target)),
        "file",
        b"uploaded content\n",
    )
    .await;
    assert_eq!(
        detail(&up),
        (StatusCode::OK, json!({"success": true, "file_size": 17}))
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"uploaded content\n");
    let down = get(
        &mut client,
        &format!("/api/file/download{}", query(&target)),
    )
    .await;
    assert_eq!(down.status, StatusCode::OK);
    assert_eq!(down.body.as_ref(), b"uploaded content\n");
    assert_eq!(
        down.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        down.header("content-disposition"),
        Some("attachment; filename=\"uploaded.txt\"")
    );
    assert_eq!(down.header("content-length"), Some("17"));
    assert_eq!(down.header("accept-ranges"), Some("bytes"));
    assert!(down.header("last-modified").unwrap().ends_with(" GMT"));
    let etag = down.header("etag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34);

    // One range.
    let part = client
        .get_with(
            &format!("/api/file/download{}", query(&target)),
            &[("X-Session-API-Key", KEY), ("range", "bytes=9-15")],
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body.as_ref(), b"content");
    assert_eq!(part.header("content-range"), Some("bytes 9-15/17"));
    assert_eq!(part.header("content-length"), Some("7"));
    let beyond = client
        .get_with(
            &format!("/api/file/download{}", query(&target)),
            &[("X-Session-API-Key", KEY), ("range", "bytes=17-")],
        )
        .await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.header("content-range"), Some("bytes */17"));

    // The seed's path form: `//abs` and `%2Fabs`; its upload answers without a size.
    let legacy = work.join("legacy.txt");
    let legacy_str = legacy.to_str().unwrap();
    let up = upload(
        &mut client,
        &format!("/api/file/upload/{legacy_str}"),
        "file",
        b"legacy",
    )
    .await;
    assert_eq!(detail(&up), (StatusCode::OK, json!({"success": true})));
    let down = get(&mut client, &format!("/api/file/download/{legacy_str}")).await;
    assert_eq!(down.body.as_ref(), b"legacy");
    let encoded = legacy_str.replace('/', "%2F");
    let down = get(&mut client, &format!("/api/file/download/{encoded}")).await;
    assert_eq!(down.body.as_ref(), b"legacy");
    let relative = get(&mut client, "/api/file/download/work/legacy.txt").await;
    assert_eq!(detail(&relative), bad("Path must be absolute"));

    // An existing file is replaced, keeping its permissions.
    std::fs::set_permissions(&legacy, std::fs::Permissions::from_mode(0o751)).unwrap();
    let up = upload(
        &mut client,
        &format!("/api/file/upload{}", query(&legacy)),
        "file",
        b"new",
    )
    .await;
    assert_eq!(up.json()["file_size"], 3);
    assert_eq!(std::fs::read(&legacy).unwrap(), b"new");
    assert_eq!(
        std::fs::metadata(&legacy).unwrap().permissions().mode() & 0o777,
        0o751
    );

    // The errors of api.md §6.
    let missing = get(
        &mut client,
        &format!("/api/file/download{}", query(&work.join("nope.txt"))),
    )
    .await;
    assert_eq!(
        detail(&missing),
        (StatusCode::NOT_FOUND, json!({"detail": "File not found"}))
    );
    let relative = get(&mut client, "/api/file/download?path=uploaded.txt").await;
    assert_eq!(detail(&relative), bad("Path must be absolute"));
    let directory = get(&mut client, &format!("/api/file/download{}", query(&work))).await;
    assert_eq!(detail(&directory), bad("Path is not a file"));
    let no_path = get(&mut client, "/api/file/download").await;
    assert_eq!(
        detail(&no_path),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "missing", "loc": ["query", "path"], "msg": "Field required", "input": null}]})
        )
    );
    let up = upload(
        &mut client,
        "/api/file/upload?path=relative.txt",
        "file",
        b"r",
    )
    .await;
    assert_eq!(detail(&up), bad("Path must be absolute"));
    let up = upload(
        &mut client,
        &format!("/api/file/upload{}", query(&work)),
        "file",
        b"d",
    )
    .await;
    assert_eq!(detail(&up), bad("Path is a directory"));
    let under_file = legacy.join("child.txt");
    let up = upload(
        &mut client,
        &format!("/api/file/upload{}", query(&under_file)),
        "file",
        b"c",
    )
    .await;
    assert_eq!(detail(&up), bad("A parent of the path is not a directory"));
    let missing_file = json!({"detail": [{"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": null}]});
    let no_multipart = client
        .request(
            Method::POST,
            &format!("/api/file/upload{}", query(&work.join("nofile.txt"))),
            &auth(),
            "",
        )
        .await;
    assert_eq!(
        detail(&no_multipart),
        (StatusCode::UNPROCESSABLE_ENTITY, missing_file.clone())
    );
    let other_field = upload(
        &mut client,
        &format!("/api/file/upload{}", query(&work.join("x.txt"))),
        "other",
        b"x",
    )
    .await;
    assert_eq!(
        detail(&other_field),
        (StatusCode::UNPROCESSABLE_ENTITY, missing_file)
    );
    assert!(!work.join("x.txt").exists());
    let neither = client
        .request(Method::POST, "/api/file/upload", &auth(), "")
        .await;
    assert_eq!(neither.json()["detail"].as_array().unwrap().len(), 2);
    let no_key = client.get("/api/file/download?path=/etc/hostname").await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);

    // Nothing temporary is left next to the targets.
    let leftovers: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    drop(client);
    server.stop_and_check();
}

#[tokio::test]
async fn an_aborted_upload_leaves_the_old_file() {
    let server = Server::start();
    let target = server.dir.join("keep.txt");
    std::fs::write(&target, "old").unwrap();
    let head = format!(
        "POST /api/file/upload{} HTTP/1.1\r\nhost: x\r\nx-session-api-key: {KEY}\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: 100000000\r\n\r\n",
        query(&target)
    );
    let mut body = multipart("file", &[b'n'; 200_000]);
    body.truncate(150_000);
    let mut stream = tokio::net::TcpStream::connect(server.server.addr)
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    // Wait until the temporary file exists, then hang up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let temp_exists = || {
        std::fs::read_dir(&server.dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".upload-")
        })
    };
    while !temp_exists() {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);
    while temp_exists() {
        assert!(
            Instant::now() < deadline,
            "the partial upload was not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    server.stop_and_check();
}

/// `VmHWM` (peak resident set) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test]
async fn a_64_mib_file_streams_both_ways() {
    const SIZE: usize = 64 * 1024 * 1024;
    // Varied bytes, so nothing in between can get away with compressing them.
    let mut data = Vec::with_capacity(SIZE);
    let mut block = Sha256::digest(b"seed").to_vec();
    while data.len() < SIZE {
        block = Sha256::digest(&block).to_vec();
        data.extend_from_slice(&block);
    }
    data.truncate(SIZE);
    let expected = Sha256::digest(&data);
    // Connected only now: an idle keep-alive connection is closed after 10 s.
    let server = Server::start();
    let mut client = server.client().await;
    let target = server.dir.join("big/file.bin");

    let up = upload(
        &mut client,
        &format!("/api/file/upload{}", query(&target)),
        "file",
        &data,
    )
    .await;
    assert_eq!(up.json(), json!({"success": true, "file_size": SIZE}));
    drop(data);
    assert_eq!(Sha256::digest(std::fs::read(&target).unwrap()), expected);

    let down = get(
        &mut client,
        &format!("/api/file/download{}", query(&target)),
    )
    .await;
    assert_eq!(down.status, StatusCode::OK);
    assert_eq!(down.body.len(), SIZE);
    assert_eq!(Sha256::digest(&down.body), expected);

    // The server never held the file: its peak RSS (about 15 MiB when this
    // was written) stays well below 64 MiB.
    let peak = peak_rss(server.server.pid());
    assert!(peak < 32 * 1024 * 1024, "peak RSS {peak} bytes");

    drop(client);
    server.stop_and_check();
}
