//! File-system helpers shared by the file tools: path display and resolution
//! as Python's `pathlib` does them, Python-style OS error texts, text decoding
//! and atomic writes.
//!
//! Everything here does blocking I/O: call it from `spawn_blocking`.
//!
//! Text files: UTF-8 (a byte-order mark is kept), else Latin-1 when the bytes
//! hold no control characters (every byte maps to one char, so the file
//! round-trips byte for byte; the Python server tries cp1252/latin-1/cp1251
//! and picks by detector, which we do not reproduce). Line endings are read
//! with Python's universal newlines (`\r\n` and `\r` become `\n`), so line
//! numbers and matching agree with the Python server; a file that used `\r\n`
//! is written back with `\r\n` (the Python server silently converts it to
//! `\n`).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::util::pyfmt::repr_str as py_str_repr;

/// `str(pathlib.PurePosixPath(s))`: duplicate slashes and `.` components
/// removed, no trailing slash, `.` for an empty path, `..` kept.
pub(crate) fn py_path(s: &str) -> String {
    let root = if s.starts_with("//") && !s.starts_with("///") {
        "//"
    } else if s.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = s
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let out = format!("{root}{}", parts.join("/"));
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

/// Lexical normalisation (no file-system access): `.` dropped, `..` pops.
pub(crate) fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `pathlib.Path(p).resolve()` (non-strict): symlinks resolved as far as the
/// path exists, the rest normalised lexically. Relative paths are taken
/// relative to `base`.
pub(crate) fn resolve_path(path: &Path, base: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    resolve_abs(&abs, 0)
}

fn resolve_abs(path: &Path, depth: usize) -> PathBuf {
    if let Ok(real) = fs::canonicalize(path) {
        return real;
    }
    // Beyond this depth the path is a symlink loop or absurdly deep; stop
    // resolving and keep it lexical.
    if depth > 64 {
        return normalize_lexically(path);
    }
    let Some(last) = path.components().next_back() else {
        return path.to_path_buf();
    };
    let Some(parent) = path.parent() else {
        return path.to_path_buf();
    };
    let mut resolved = resolve_abs(parent, depth + 1);
    match last {
        Component::ParentDir => {
            resolved.pop();
        }
        Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        Component::Normal(name) => resolved.push(name),
    }
    resolved
}

/// The text of a Python `OSError` (`[Errno 2] No such file or directory: '/x'`).
pub(crate) fn py_os_error(err: &io::Error, path: Option<&Path>) -> String {
    let Some(code) = err.raw_os_error() else {
        return err.to_string();
    };
    let text = io::Error::from_raw_os_error(code).to_string();
    let strerror = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    match path {
        Some(p) => format!(
            "[Errno {code}] {strerror}: {}",
            py_str_repr(&p.to_string_lossy())
        ),
        None => format!("[Errno {code}] {strerror}"),
    }
}

/// How a text file was stored, so it is written back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    /// UTF-8 with a byte-order mark (Python's `utf-8-sig`).
    Utf8Bom,
    Latin1,
}

/// A decoded text file: `\n` line endings, plus how to write it back.
#[derive(Clone, Debug)]
pub(crate) struct TextFile {
    pub text: String,
    pub encoding: Encoding,
    /// The file used `\r\n` line endings.
    pub crlf: bool,
}

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Characters that never appear in a text file (the Python editor's check).
fn is_binary_control(c: char) -> bool {
    matches!(c, '\x00'..='\x08' | '\x0e'..='\x1f' | '\x7f')
}

/// Whether the first bytes look like a binary file (an approximation of the
/// `binaryornot` check the Python editor uses on the first 512 bytes): a NUL
/// byte, a known binary signature, or many control bytes.
fn head_looks_binary(bytes: &[u8]) -> bool {
    const SIGNATURES: &[&[u8]] = &[
        b"\x89PNG",
        b"GIF8",
        b"\xff\xd8\xff",
        b"%PDF",
        b"PK\x03\x04",
        b"\x7fELF",
        b"\x1f\x8b",
        b"BZh",
        b"\xfd7zXZ",
        b"7z\xbc\xaf",
        b"\xca\xfe\xba\xbe",
        b"\0asm",
    ];
    let head = &bytes[..bytes.len().min(512)];
    if head.is_empty() {
        return false;
    }
    if head.contains(&0) || SIGNATURES.iter().any(|s| head.starts_with(s)) {
        return true;
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
        .count();
    control * 10 > head.len()
}

/// Decodes a file's bytes; `None` when the file is binary.
pub(crate) fn decode_text(bytes: &[u8]) -> Option<TextFile> {
    let (raw, encoding) = if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        match std::str::from_utf8(rest) {
            Ok(s) => (s.to_string(), Encoding::Utf8Bom),
            Err(_) => (latin1(bytes), Encoding::Latin1),
        }
    } else {
        match std::str::from_utf8(bytes) {
            Ok(s) => (s.to_string(), Encoding::Utf8),
            Err(_) => (latin1(bytes), Encoding::Latin1),
        }
    };
    let has_control = raw.chars().any(is_binary_control);
    // Undecodable UTF-8 with control bytes is binary; so is anything whose
    // head looks binary and that is not clean text.
    if has_control && (encoding == Encoding::Latin1 || head_looks_binary(bytes)) {
        return None;
    }
    let (text, crlf) = universal_newlines(raw);
    Some(TextFile {
        text,
        encoding,
        crlf,
    })
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Python's universal newlines on read: `\r\n` and lone `\r` become `\n`.
pub(crate) fn universal_newlines(raw: String) -> (String, bool) {
    if !raw.contains('\r') {
        return (raw, false);
    }
    let crlf = raw.contains("\r\n");
    (raw.replace("\r\n", "\n").replace('\r', "\n"), crlf)
}

/// Encodes text for writing back in the file's original form. Latin-1 files
/// that gain characters outside Latin-1 become UTF-8 (as in the Python editor).
pub(crate) fn encode_text(text: &str, encoding: Encoding, crlf: bool) -> Vec<u8> {
    let text: std::borrow::Cow<'_, str> = if crlf {
        let mut out = String::with_capacity(text.len() + text.len() / 32);
        let mut prev = '\0';
        for c in text.chars() {
            if c == '\n' && prev != '\r' {
                out.push('\r');
            }
            out.push(c);
            prev = c;
        }
        out.into()
    } else {
        text.into()
    };
    match encoding {
        Encoding::Utf8 => text.as_bytes().to_vec(),
        Encoding::Utf8Bom => [UTF8_BOM, text.as_bytes()].concat(),
        Encoding::Latin1 => {
            if text.chars().all(|c| (c as u32) < 0x100) {
                text.chars().map(|c| c as u32 as u8).collect()
            } else {
                text.as_bytes().to_vec()
            }
        }
    }
}

/// Eight random characters from Python's `tempfile` alphabet.
fn temp_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(8)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Writes `bytes` to `path` atomically: a temp file `.<name>.<random>.tmp`
/// beside the target, renamed over it. An existing file keeps its permission
/// bits; a symlink keeps pointing at the file it named. The parent directory
/// is not created. The error is the Python `OSError` text.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    };
    let dir = target.parent().unwrap_or(Path::new("/"));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", temp_suffix()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&tmp)
        .map_err(|e| py_os_error(&e, Some(&tmp)))?;
    let result = (|| {
        file.write_all(bytes).map_err(|e| py_os_error(&e, None))?;
        drop(file);
        if let Ok(meta) = fs::metadata(&target) {
            let mode = meta.permissions().mode() & 0o7777;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                .map_err(|e| py_os_error(&e, Some(&tmp)))?;
        }
        fs::rename(&tmp, &target).map_err(|e| {
            let base = py_os_error(&e, Some(&tmp));
            format!("{base} -> {}", py_str_repr(&target.to_string_lossy()))
        })
    })();
    if result.is_err() {
        // Best effort: the temp file must not linger beside the user's file.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn py_path_matches_pathlib() {
        assert_eq!(py_path("/tmp//a/./b/"), "/tmp/a/b");
        assert_eq!(py_path("a/../b"), "a/../b");
        assert_eq!(py_path(""), ".");
        assert_eq!(py_path("//x"), "//x");
        assert_eq!(py_path("///x"), "/x");
    }

    #[test]
    fn resolve_follows_symlinks_and_keeps_missing_tail() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        fs::create_dir(real.join("d")).unwrap();
        std::os::unix::fs::symlink(real.join("d"), real.join("link")).unwrap();
        assert_eq!(
            resolve_path(Path::new("link/new/../x.txt"), &real),
            real.join("d/x.txt")
        );
        assert_eq!(
            resolve_path(Path::new("link/../.."), &real),
            real.parent().unwrap()
        );
    }

    #[test]
    fn os_errors_read_like_python() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(
            py_os_error(&e, Some(Path::new("/x/y"))),
            "[Errno 2] No such file or directory: '/x/y'"
        );
    }

    #[test]
    fn decoding_keeps_encoding_and_line_endings() {
        let t = decode_text(b"a\r\nb\r\n").unwrap();
        assert_eq!(t.text, "a\nb\n");
        assert!(t.crlf);
        assert_eq!(
            encode_text("a\nb\nc\n", t.encoding, t.crlf),
            b"a\r\nb\r\nc\r\n"
        );

        let t = decode_text(b"caf\xe9\n").unwrap();
        assert_eq!(t.encoding, Encoding::Latin1);
        assert_eq!(t.text, "caf\u{e9}\n");
        assert_eq!(encode_text(&t.text, t.encoding, false), b"caf\xe9\n");
        assert_eq!(
            encode_text("\u{2192}", t.encoding, false),
            "\u{2192}".as_bytes()
        );

        let t = decode_text(b"\xef\xbb\xbfhi").unwrap();
        assert_eq!(t.encoding, Encoding::Utf8Bom);
        assert_eq!(t.text, "hi");
    }

    #[test]
    fn binary_detection() {
        assert!(decode_text(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").is_none());
        assert!(decode_text(b"ab\0cd").is_none());
        assert!(decode_text(b"\x01\x02\x03\x04\x05").is_none());
        // Terminal colour codes in a log are text.
        assert!(decode_text(b"\x1b[31mred\x1b[0m plain text line\n").is_some());
        assert!(decode_text(b"").is_some());
    }

    #[test]
    fn atomic_write_keeps_mode_and_refuses_missing_parent() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.sh");
        fs::write(&f, "old").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        atomic_write(&f, b"new").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let missing = dir.path().join("nope/x.txt");
        let err = atomic_write(&missing, b"x").unwrap_err();
        assert!(err.starts_with("[Errno 2] No such file or directory: '"));
        assert!(err.contains("/nope/.x.txt."));
        assert!(err.ends_with(".tmp'"));
    }
}
