//! Running the engine over files: canonical events in, flags out, bad lines set aside.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use modsignal_core::{Engine, Event, Flag, Policy, StateStats, decode};
use serde::Serialize;

/// Where bad lines go: a JSON-lines file opened on the first reject, so a clean run leaves
/// no empty file behind.
pub struct Rejects {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    pub count: u64,
}

#[derive(Serialize)]
struct RejectLine<'a> {
    line: u64,
    code: &'a str,
    reason: String,
    /// The start of the record, so it can be found and fixed; at most 512 bytes.
    record: String,
}

impl Rejects {
    pub fn new(path: PathBuf) -> Self {
        Rejects {
            path,
            file: None,
            count: 0,
        }
    }
    fn write(&mut self, line: u64, code: &str, reason: String, record: &[u8]) -> io::Result<()> {
        self.count += 1;
        if self.count <= 10 {
            tracing::warn!(line, code, %reason, "rejected a record");
        } else if self.count == 11 {
            tracing::warn!(path = %self.path.display(), "more records rejected; see the reject file");
        }
        if self.file.is_none() {
            self.file = Some(BufWriter::new(File::create(&self.path)?));
        }
        let w = self.file.as_mut().expect("opened above");
        let cut = &record[..record.len().min(512)];
        serde_json::to_writer(
            &mut *w,
            &RejectLine {
                line,
                code,
                reason,
                record: String::from_utf8_lossy(cut).into_owned(),
            },
        )?;
        w.write_all(b"\n")
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
    pub fn path(&self) -> Option<&std::path::Path> {
        self.file.as_ref().map(|_| self.path.as_path())
    }
}

/// What a run did, for the one-line summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub lines: u64,
    pub events: u64,
    pub late: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub flags: u64,
    pub raised: u64,
    pub state: StateStats,
    pub elapsed: Duration,
}

impl Summary {
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "modsignal: {} events ({} late, {} duplicates, {} rejected) in {:.2}s, {:.0} events/s; state: {} messages, {} reshares, {} labelled; {} flag revisions written, {} raised",
            self.events,
            self.late,
            self.duplicates,
            self.rejected,
            secs,
            self.events as f64 / secs,
            self.state.messages,
            self.state.reshares,
            self.state.labelled,
            self.flags,
            self.raised
        )
    }
}

/// The engine with its output and reject sink.
pub struct Pipeline<W: Write> {
    engine: Engine,
    out: W,
    rejects: Rejects,
    buf: Vec<Flag>,
    summary: Summary,
    started: Instant,
}

impl<W: Write> Pipeline<W> {
    pub fn new(policy: Policy, out: W, rejects: Rejects) -> Self {
        Pipeline {
            engine: Engine::new(policy),
            out,
            rejects,
            buf: Vec::new(),
            summary: Summary::default(),
            started: Instant::now(),
        }
    }

    /// Decodes and applies one line. Blank lines are skipped; a line that cannot be decoded
    /// or applied goes to the reject file with its number and reason.
    pub fn feed_line(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.summary.lines += 1;
        let line_no = self.summary.lines;
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            return Ok(());
        }
        match decode(trimmed) {
            Ok(ev) => {
                if let Err(e) = self.apply(&ev) {
                    return self.rejects.write(line_no, e.code(), e.to_string(), trimmed);
                }
            }
            Err(e) => self.rejects.write(line_no, e.code(), e.to_string(), trimmed)?,
        }
        self.write_flags()
    }

    /// Applies one event that is already decoded (the simulator's).
    pub fn feed_event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        self.summary.lines += 1;
        if let Err(e) = self.apply(ev) {
            let json = ev.to_json();
            return self
                .rejects
                .write(self.summary.lines, e.code(), e.to_string(), json.as_bytes());
        }
        self.write_flags()
    }

    fn apply(&mut self, ev: &Event<'_>) -> Result<(), modsignal_core::ApplyError> {
        let o = self.engine.apply(ev, &mut self.buf)?;
        self.summary.events += 1;
        self.summary.late += o.late as u64;
        self.summary.duplicates += o.duplicate as u64;
        Ok(())
    }

    fn write_flags(&mut self) -> io::Result<()> {
        for f in self.buf.drain(..) {
            self.summary.flags += 1;
            self.summary.raised += f.raised as u64;
            serde_json::to_writer(&mut self.out, &f)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Reads every line of `input`.
    pub fn feed_reader<R: BufRead>(
        &mut self,
        mut input: R,
        progress: Option<&indicatif::ProgressBar>,
    ) -> io::Result<()> {
        let mut line = Vec::with_capacity(1024);
        let mut since_tick = 0u64;
        loop {
            line.clear();
            let n = input.read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(());
            }
            self.feed_line(&line)?;
            since_tick += n as u64;
            if since_tick >= 1 << 20 {
                if let Some(p) = progress {
                    p.inc(since_tick);
                }
                since_tick = 0;
            }
        }
    }

    /// Ends the input: writes the last state of every open flag and returns the summary.
    pub fn finish(mut self) -> io::Result<(Summary, Rejects)> {
        self.engine.finish(&mut self.buf);
        self.write_flags()?;
        self.out.flush()?;
        self.rejects.flush()?;
        self.summary.rejected = self.rejects.count;
        self.summary.state = self.engine.stats();
        self.summary.elapsed = self.started.elapsed();
        Ok((self.summary, self.rejects))
    }
}
