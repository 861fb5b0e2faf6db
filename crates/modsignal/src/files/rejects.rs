//! The reject file: every line that could not be used, with its line number, reason and an
//! excerpt, checked writable before the run starts.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use modsignal_core::RejectCode;
use serde::Serialize;

use super::FilesError;

/// The most bytes of a record, and of its reason, written to the reject file: enough to find
/// the record and see what is wrong, while a megabyte line (or a decoder message quoting a
/// megabyte string) does not make a megabyte reject entry.
pub(super) const REJECT_EXCERPT_BYTES: usize = 512;

/// Where bad lines go: a JSON-lines file opened on the first reject, so a clean run leaves
/// no empty file behind.
pub struct Rejects {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    pub count: u64,
}

#[derive(Serialize)]
struct RejectLine<'a> {
    /// The side input the line came from; absent for the main input.
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
    line: u64,
    code: &'a str,
    /// Why, cut like the record.
    reason: &'a str,
    /// The start of the record, so it can be found and fixed; at most 512 bytes.
    record: String,
}

impl Rejects {
    /// A reject file at `path`. It is created only on the first bad line, but whether it can
    /// be is checked now (the path is not a directory, an existing file can be written, or
    /// else its directory exists and is writable), so that a run that could not set bad lines
    /// aside fails before it reads anything rather than stopping mid-stream at its first one.
    pub fn new(path: PathBuf) -> Result<Self, FilesError> {
        match check_creatable(&path) {
            Ok(()) => Ok(Rejects {
                path,
                file: None,
                count: 0,
            }),
            Err(source) => Err(FilesError::Rejects { path, source }),
        }
    }

    pub(super) fn write(
        &mut self,
        input: Option<&str>,
        line: u64,
        code: RejectCode,
        reason: &str,
        record: &[u8],
    ) -> Result<(), FilesError> {
        let code = code.as_str();
        self.count += 1;
        let reason = excerpt(reason);
        let reason: &str = &reason;
        if self.count <= 10 {
            tracing::warn!(input, line, code, reason, "rejected a record");
        } else if self.count == 11 {
            tracing::warn!(path = %self.path.display(), "more records rejected; see the reject file");
        }
        let entry = RejectLine {
            input,
            line,
            code,
            reason,
            record: String::from_utf8_lossy(&record[..record.len().min(REJECT_EXCERPT_BYTES)]).into_owned(),
        };
        self.append(&entry).map_err(|source| FilesError::Rejects {
            path: self.path.clone(),
            source,
        })
    }

    fn append(&mut self, entry: &RejectLine<'_>) -> io::Result<()> {
        let w = match &mut self.file {
            Some(w) => w,
            None => self.file.insert(BufWriter::new(File::create(&self.path)?)),
        };
        serde_json::to_writer(&mut *w, entry)?;
        w.write_all(b"\n")
    }

    pub(super) fn flush(&mut self) -> Result<(), FilesError> {
        match &mut self.file {
            Some(f) => f.flush().map_err(|source| FilesError::Rejects {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|_| self.path.as_path())
    }
}

/// At most [`REJECT_EXCERPT_BYTES`] of `text`, cut at a character boundary, with `…` when cut.
pub(super) fn excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= REJECT_EXCERPT_BYTES {
        return text.into();
    }
    let mut end = REJECT_EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

/// Whether a file can be created (or truncated) at `path`, found without creating it: the
/// error says what stands in the way.
fn check_creatable(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(io::Error::new(io::ErrorKind::IsADirectory, "it is a directory")),
        // Opening an existing file to append tells whether it may be written, and changes
        // nothing in it: a clean run leaves it as it was.
        Ok(_) => return OpenOptions::new().append(true).open(path).map(drop),
        // A parent that is a file gives "not a directory": the parent's check below says so
        // by name.
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {}
        Err(e) => return Err(e),
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => writable_dir(dir),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("its directory {}: {e}", dir.display()),
        )),
    }
}

/// Whether files can be created in `dir`, as access(2) answers for this process's user (it
/// also knows read-only file systems, which permission bits do not tell).
#[cfg(unix)]
fn writable_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path holds a NUL byte"))?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call, which only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    Err(io::Error::new(
        e.kind(),
        format!("its directory {} is not writable: {e}", dir.display()),
    ))
}

/// Elsewhere the first bad line tells, as it did before the check.
#[cfg(not(unix))]
fn writable_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
