//! Running the engine over files: canonical events or a platform's stream in, flags (or AT
//! Protocol labels) out, bad lines set aside.
//!
//! Every input is read as a stream, line by line, holding at most
//! [`MAX_RECORD_BYTES`](modsignal_core::event::MAX_RECORD_BYTES) of a line: a longer line is rejected with code `too_large` and skipped
//! to its newline, so neither a huge line nor a stream that never ends its line can make the
//! process grow. Side inputs are streams too, merged with the main input in event time, so
//! their size costs no memory either. A UTF-8 byte-order mark at the start of an input is
//! skipped.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use modsignal_core::{Cohort, DecodeError, Engine, Event, Flag, Policy, RejectCode, StateStats, Ts, decode};
use modsignal_formats::{Format, FormatError, Label, LabelWriter, Read, Reader};
use modsignal_metrics::Metrics;

mod lines;
mod rejects;

use lines::{BATCH_LINES, BOM, Line, complete_lines, read_line};
pub use rejects::Rejects;

/// Why a run over files stopped. Bad records never stop a run (they go to the reject file);
/// these are failures of the files themselves, and each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The main input could not be read.
    #[error("cannot read {name}")]
    Input { name: String, source: io::Error },
    /// A side input could not be read.
    #[error("cannot read side input {name}")]
    SideInput { name: String, source: io::Error },
    /// Flags or labels could not be written.
    #[error("cannot write {name}")]
    Output { name: String, source: io::Error },
    /// The reject file cannot be created or written.
    #[error("cannot write the reject file {}", path.display())]
    Rejects { path: PathBuf, source: io::Error },
}

/// What a run did, for the one-line summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub lines: u64,
    pub events: u64,
    pub late: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Records that gave no event, by reason (likes, heartbeats, rate-limit notices, …).
    pub skipped: BTreeMap<&'static str, u64>,
    pub flags: u64,
    pub raised: u64,
    /// Resharer cohort pages written (see `modsignal_core::cohort`).
    pub cohort_pages: u64,
    /// Labels written, when the output is AT Protocol labels.
    pub labels: Option<u64>,
    pub state: StateStats,
    pub elapsed: Duration,
}

impl Summary {
    pub fn line(&self) -> String {
        use std::fmt::Write as _;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut line = format!(
            "modsignal: {} events ({} late, {} duplicates, {} rejected) in {:.2}s, {:.0} events/s; state: {} messages, {} reshares, {} labelled; {} flag revisions written, {} raised, {} resharer cohort pages",
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
            self.raised,
            self.cohort_pages
        );
        if let Some(n) = self.labels {
            let _ = write!(line, ", {n} labels written");
        }
        if !self.skipped.is_empty() {
            let parts: Vec<String> = self.skipped.iter().map(|(code, n)| format!("{n} {code}")).collect();
            let _ = write!(line, "; skipped records: {}", parts.join(", "));
        }
        line
    }
}

/// A side input being read: its reader, and its next event, decoded, waiting for the main
/// input's clock to reach it. Nothing else of it is held.
struct Side {
    /// Its name (the path), for reject entries and errors.
    name: String,
    input: Box<dyn BufRead + Send>,
    /// The line being read (see [`read_line`]).
    line: Vec<u8>,
    /// The number of the last line read.
    line_no: u64,
    /// The next event and its line number; `None` once the input has ended.
    next: Option<(u64, Event<'static>)>,
}

/// What is written for each flag revision.
pub enum Output {
    /// The flag itself, version 1.
    Flags,
    /// AT Protocol labels that follow from the flags (see `modsignal_formats::label`).
    Labels(LabelWriter),
}

/// Something told of every flag written, besides the output.
pub type FlagSink = Box<dyn FnMut(&Flag) + Send>;

/// Something told of every resharer cohort page written, besides the output.
pub type CohortSink = Box<dyn FnMut(&Cohort) + Send>;

/// The engine with its input reader, output and reject sink.
pub struct Pipeline<W: Write> {
    engine: Engine,
    out: W,
    output: Output,
    rejects: Rejects,
    /// The platform reader; `None` for canonical events, which are decoded directly (the
    /// benchmarked path, borrowing from the line).
    reader: Option<Reader>,
    events: Vec<Event<'static>>,
    buf: Vec<Flag>,
    cohorts: Vec<Cohort>,
    labels: Vec<Label>,
    /// One flag's JSON line, built whole and written with one call (see `Flag::write_json`).
    json_line: Vec<u8>,
    /// A line of the main input not complete in the reader's buffer (see [`read_line`]).
    held: Vec<u8>,
    /// The side inputs, in the order given.
    sides: Vec<Side>,
    /// The earliest time among the side inputs' next events: none is due before it.
    side_due: Option<Ts>,
    /// The latest event time of the main input so far: side events up to it are due.
    clock: Option<Ts>,
    /// The line number within the main input.
    line_no: u64,
    /// The main input's and the output's names, for errors.
    input_name: String,
    output_name: String,
    summary: Summary,
    started: Instant,
    /// Where events, rejects and flags are counted, when the process exports metrics.
    metrics: Option<Metrics>,
    /// Who else is told of each flag written (the HTTP API's store).
    sink: Option<FlagSink>,
    cohort_sink: Option<CohortSink>,
    /// Whether events are judged against this machine's clock as their ingest time.
    ingest_clock: bool,
}

impl<W: Write> Pipeline<W> {
    pub fn new(policy: Policy, out: W, rejects: Rejects) -> Self {
        Pipeline {
            engine: Engine::new(policy),
            out,
            output: Output::Flags,
            rejects,
            reader: None,
            events: Vec::new(),
            buf: Vec::new(),
            cohorts: Vec::new(),
            labels: Vec::new(),
            json_line: Vec::with_capacity(4096),
            held: Vec::with_capacity(1024),
            sides: Vec::new(),
            side_due: None,
            clock: None,
            line_no: 0,
            input_name: "the input".to_owned(),
            output_name: "the output".to_owned(),
            summary: Summary::default(),
            started: Instant::now(),
            metrics: None,
            sink: None,
            cohort_sink: None,
            ingest_clock: false,
        }
    }

    /// Judges every event against this machine's clock, as the time it was received: one
    /// stamped more than `stream.max_skew_secs` later is rejected as `future`. For live input;
    /// an archive replayed later is in the past of the clock and is unaffected.
    #[must_use]
    pub fn with_ingest_clock(mut self) -> Self {
        self.ingest_clock = true;
        self
    }

    /// Counts what the pipeline does in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Hands every flag written to `sink` as well.
    #[must_use]
    pub fn with_flag_sink(mut self, sink: FlagSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Hands every resharer cohort page written to `sink` as well.
    #[must_use]
    pub fn with_cohort_sink(mut self, sink: CohortSink) -> Self {
        self.cohort_sink = Some(sink);
        self
    }

    /// Reads the main input in `format` instead of canonical events.
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.reader = (format != Format::Canonical).then(|| Reader::new(format));
        self
    }

    /// Writes `output` instead of flags.
    #[must_use]
    pub fn with_output(mut self, output: Output) -> Self {
        self.summary.labels = matches!(output, Output::Labels(_)).then_some(0);
        self.output = output;
        self
    }

    /// Names the main input and the output in errors (their paths, or "standard input").
    #[must_use]
    pub fn with_names(mut self, input: &str, output: &str) -> Self {
        input.clone_into(&mut self.input_name);
        output.clone_into(&mut self.output_name);
        self
    }

    /// Adds a side input: canonical events (follower counts, labels, account changes) that
    /// the main input does not carry, applied in event time with it: each when the main
    /// input's time reaches it, the rest at the end of the main input. Follower counts stamped
    /// before the stream are so in place from the first event, and a label and its later
    /// retraction are seen at their times, so the flags written on the way (and the labels
    /// that follow from them) are those of one stream in time order.
    ///
    /// A side input is read as a stream, in the order written, holding one decoded event
    /// ahead (read here, before the main input starts): its size costs no memory. So write it
    /// in event-time order: an event is never applied before those written above it, and one
    /// earlier than the one before it is applied as soon as it is read. Between side inputs,
    /// and at the end, the earliest next event goes first (the first side input given, at
    /// equal times). Bad lines are rejected with the side input's name and line number.
    pub fn add_side_input<R: BufRead + Send + 'static>(&mut self, name: &str, input: R) -> Result<(), FilesError> {
        self.sides.push(Side {
            name: name.to_owned(),
            input: Box::new(input),
            line: Vec::new(),
            line_no: 0,
            next: None,
        });
        self.advance_side(self.sides.len() - 1)?;
        self.side_due = self.next_side().map(|(_, at)| at);
        Ok(())
    }

    /// Reads side input `i` to its next event, rejecting the bad lines on the way.
    fn advance_side(&mut self, i: usize) -> Result<(), FilesError> {
        loop {
            let side = &mut self.sides[i];
            side.next = None;
            let first = side.line_no == 0;
            let (line, _) =
                read_line(&mut side.input, &mut side.line, first).map_err(|source| FilesError::SideInput {
                    name: side.name.clone(),
                    source,
                })?;
            let (code, reason, record) = match line {
                Line::End => return Ok(()),
                Line::TooLarge(len) => {
                    side.line_no += 1;
                    self.summary.lines += 1;
                    let e = DecodeError::TooLarge(usize::try_from(len).unwrap_or(usize::MAX));
                    (e.code(), e.to_string(), &side.line[..])
                }
                Line::Held => {
                    side.line_no += 1;
                    self.summary.lines += 1;
                    let trimmed = side.line.trim_ascii();
                    if trimmed.is_empty() {
                        continue;
                    }
                    match decode(trimmed) {
                        Ok(ev) => {
                            let ev = ev.into_owned();
                            side.next = Some((side.line_no, ev));
                            return Ok(());
                        }
                        Err(e) => (e.code(), e.to_string(), trimmed),
                    }
                }
            };
            if let Some(m) = &self.metrics {
                m.rejected(code);
            }
            self.rejects
                .write(Some(&side.name), side.line_no, code, &reason, record)?;
        }
    }

    /// The side input whose next event comes first, and that event's time; the first side
    /// input given at equal times.
    fn next_side(&self) -> Option<(usize, Ts)> {
        self.sides
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.next.as_ref().map(|(_, ev)| (i, ev.at)))
            .min_by_key(|&(i, at)| (at, i))
    }

    /// Applies the side events due by `until` (all of them when `None`), each side input in
    /// the order written.
    fn release_side(&mut self, until: Option<Ts>) -> Result<(), FilesError> {
        while let Some((i, at)) = self.next_side()
            && until.is_none_or(|t| at <= t)
        {
            let (line, event) = self.sides[i].next.take().expect("next_side found it");
            if let Err(e) = self.apply(&event) {
                if let Some(m) = &self.metrics {
                    m.rejected(e.code());
                }
                let json = event.to_json();
                self.rejects.write(
                    Some(&self.sides[i].name),
                    line,
                    e.code(),
                    &e.to_string(),
                    json.as_bytes(),
                )?;
            }
            self.advance_side(i)?;
        }
        self.side_due = self.next_side().map(|(_, at)| at);
        Ok(())
    }

    /// Moves the main input's clock to `at` and applies the side events now due.
    fn tick(&mut self, at: Ts) -> Result<(), FilesError> {
        // An event the engine will refuse as from the future must not move the side inputs'
        // clock either (it would release every side event at once).
        if self.engine.check_time(at, self.ingest_time()).is_err() {
            return Ok(());
        }
        let clock = match self.clock {
            Some(c) if c >= at => c,
            _ => {
                self.clock = Some(at);
                at
            }
        };
        if self.side_due.is_some_and(|due| due <= clock) {
            self.release_side(Some(clock))?;
        }
        Ok(())
    }

    /// Decodes and applies one line of the main input. Blank lines are skipped; a line that
    /// cannot be decoded or applied goes to the reject file with its number and reason. A
    /// byte-order mark that starts the first line is skipped.
    pub fn feed_line(&mut self, bytes: &[u8]) -> Result<(), FilesError> {
        let bytes = if self.line_no == 0 {
            bytes.strip_prefix(BOM).unwrap_or(bytes)
        } else {
            bytes
        };
        self.line(bytes)
    }

    /// A line of the main input, its byte-order mark (if it was the first) already skipped.
    fn line(&mut self, bytes: &[u8]) -> Result<(), FilesError> {
        self.summary.lines += 1;
        self.line_no += 1;
        if self.reader.is_some() {
            self.feed_platform(bytes)
        } else {
            self.feed_canonical(bytes)
        }
    }

    fn feed_canonical(&mut self, bytes: &[u8]) -> Result<(), FilesError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            return Ok(());
        }
        self.canonical(trimmed, decode(trimmed))
    }

    /// Applies one decoded canonical line (or rejects it) and writes the flags it gave.
    fn canonical(&mut self, trimmed: &[u8], decoded: Result<Event<'_>, DecodeError>) -> Result<(), FilesError> {
        match decoded {
            Ok(ev) => {
                self.tick(ev.at)?;
                if let Err(e) = self.apply(&ev) {
                    return self.reject(e.code(), e.to_string(), trimmed);
                }
            }
            Err(e) => self.reject(e.code(), e.to_string(), trimmed)?,
        }
        self.write_flags()
    }

    /// A platform record: it may give several events (a boost gives the original and the
    /// reshare), each applied on its own, or none (a like, a heartbeat), counted by reason.
    fn feed_platform(&mut self, bytes: &[u8]) -> Result<(), FilesError> {
        let Some(reader) = self.reader.as_mut() else {
            return self.feed_canonical(bytes);
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let trimmed = bytes.trim_ascii();
        match reader.read(trimmed, &mut events) {
            Ok(Read::Events(_)) => {
                for ev in &events {
                    self.tick(ev.at)?;
                    if let Err(e) = self.apply(ev) {
                        self.reject(e.code(), e.to_string(), trimmed)?;
                    }
                }
            }
            Ok(Read::Skipped(skip)) => {
                if !skip.is_framing() {
                    *self.summary.skipped.entry(skip.code()).or_default() += 1;
                    if let Some(m) = &self.metrics {
                        m.skipped(skip.code());
                    }
                }
            }
            Err(e) => self.reject(e.code(), e.to_string(), trimmed)?,
        }
        self.events = events;
        self.write_flags()
    }

    /// A line of the main input whose record is `len` bytes, over the limit, of which `start`
    /// was held: rejected as the decoder (or the platform reader) rejects such a record,
    /// without its having been read whole.
    fn too_large(&mut self, len: u64, start: &[u8]) -> Result<(), FilesError> {
        self.summary.lines += 1;
        self.line_no += 1;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let (code, reason) = if self.reader.is_some() {
            let e = FormatError::TooLarge(len);
            (e.code(), e.to_string())
        } else {
            let e = DecodeError::TooLarge(len);
            (e.code(), e.to_string())
        };
        self.reject(code, reason, start)
    }

    fn reject(&mut self, code: RejectCode, reason: String, record: &[u8]) -> Result<(), FilesError> {
        if let Some(m) = &self.metrics {
            m.rejected(code);
        }
        self.rejects.write(None, self.line_no, code, &reason, record)
    }

    /// Applies one event that is already decoded (the simulator's).
    pub fn feed_event(&mut self, ev: &Event<'_>) -> Result<(), FilesError> {
        self.summary.lines += 1;
        self.line_no += 1;
        self.tick(ev.at)?;
        if let Err(e) = self.apply(ev) {
            let json = ev.to_json();
            return self.reject(e.code(), e.to_string(), json.as_bytes());
        }
        self.write_flags()
    }

    /// The time an event is received, when `--ingest-clock` asks for the reader's clock.
    fn ingest_time(&self) -> Option<Ts> {
        self.ingest_clock.then(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Ts(i64::try_from(now.as_millis()).unwrap_or(i64::MAX))
        })
    }

    fn apply(&mut self, ev: &Event<'_>) -> Result<(), modsignal_core::ApplyError> {
        let ingest = self.ingest_time();
        let o = self.engine.apply_at(ev, ingest, &mut self.buf)?;
        if let Some(m) = &self.metrics {
            m.applied(ev.kind.type_name(), &o);
        }
        self.summary.events += 1;
        self.summary.late += u64::from(o.late);
        self.summary.duplicates += u64::from(o.duplicate);
        Ok(())
    }

    fn write_flags(&mut self) -> Result<(), FilesError> {
        self.write_out().map_err(|source| FilesError::Output {
            name: self.output_name.clone(),
            source,
        })
    }

    fn write_out(&mut self) -> io::Result<()> {
        for f in self.buf.drain(..) {
            self.summary.flags += 1;
            self.summary.raised += u64::from(f.raised);
            if let Some(m) = &self.metrics {
                m.flag(&f);
            }
            if let Some(sink) = &mut self.sink {
                sink(&f);
            }
            match &mut self.output {
                Output::Flags => {
                    self.json_line.clear();
                    f.write_json(&mut self.json_line);
                    self.json_line.push(b'\n');
                    self.out.write_all(&self.json_line)?;
                }
                Output::Labels(writer) => {
                    writer.push(&f, &mut self.labels);
                    for label in self.labels.drain(..) {
                        serde_json::to_writer(&mut self.out, &label)?;
                        self.out.write_all(b"\n")?;
                        *self.summary.labels.get_or_insert(0) += 1;
                    }
                }
            }
        }
        // Cohorts come when the input is quiet, and from retention sweeps as events come.
        self.engine.take_cohorts(&mut self.cohorts);
        if self.cohorts.is_empty() {
            return Ok(());
        }
        for c in self.cohorts.drain(..) {
            self.summary.cohort_pages += 1;
            if let Some(m) = &self.metrics {
                m.cohort_page(c.category);
            }
            if let Some(sink) = &mut self.cohort_sink {
                sink(&c);
            }
            // AT Protocol labels name the message only: resharers never label it.
            if let Output::Flags = self.output {
                self.json_line.clear();
                c.write_json(&mut self.json_line);
                self.json_line.push(b'\n');
                self.out.write_all(&self.json_line)?;
            }
        }
        Ok(())
    }

    /// Reads every line of the main input.
    ///
    /// Complete lines already in the reader's buffer are handed on as a run of up to
    /// [`BATCH_LINES`], read where they lie; only a line not yet complete in the buffer is
    /// copied out and waited for, as a line-by-line reader would. So nothing waits for input
    /// a line-by-line reader would not wait for (a live stream on standard input is written as
    /// it comes), and every line is handled in order exactly as [`Pipeline::feed_line`] does.
    /// Of a line that is not complete in the buffer at most [`MAX_RECORD_BYTES`] is held: a
    /// longer one is rejected (`too_large`) and read on to its newline without being kept, so
    /// memory stays within the limit and the reader's buffer whatever the input.
    pub fn feed_reader<R: BufRead>(
        &mut self,
        mut input: R,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<(), FilesError> {
        let mut ends = Vec::with_capacity(BATCH_LINES);
        let mut since_tick = 0u64;
        loop {
            let buf = match input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(FilesError::Input {
                        name: self.input_name.clone(),
                        source,
                    });
                }
            };
            if buf.is_empty() {
                return Ok(());
            }
            complete_lines(buf, &mut ends);
            let n = match ends.last() {
                Some(&end) => {
                    self.feed_lines(buf, &ends)?;
                    input.consume(end);
                    end as u64
                }
                None => self.feed_partial_line(&mut input)?,
            };
            since_tick += n;
            if since_tick >= 1 << 20 {
                if let Some(p) = progress {
                    p.inc(since_tick);
                }
                since_tick = 0;
            }
        }
    }

    /// Reads and feeds a line that is not complete in the reader's buffer, holding at most
    /// [`MAX_RECORD_BYTES`] of it; returns the bytes it took.
    fn feed_partial_line<R: BufRead>(&mut self, input: &mut R) -> Result<u64, FilesError> {
        let mut held = std::mem::take(&mut self.held);
        let result = match read_line(input, &mut held, self.line_no == 0) {
            Ok((Line::End, n)) => Ok(n),
            Ok((Line::Held, n)) => self.line(&held).map(|()| n),
            Ok((Line::TooLarge(len), n)) => self.too_large(len, &held).map(|()| n),
            Err(source) => Err(FilesError::Input {
                name: self.input_name.clone(),
                source,
            }),
        };
        self.held = held;
        result
    }

    /// Feeds a run of complete lines. Canonical lines are all decoded first and then applied
    /// in order: each stage's code and data stay hot in the cache for the whole run, which
    /// made bytes to flags about 10% faster than decoding and applying line by line. What each
    /// line does, and in which order rejects and flags are written, is what `feed_line` does.
    fn feed_lines(&mut self, buf: &[u8], ends: &[usize]) -> Result<(), FilesError> {
        // The first line of the input starts after its byte-order mark, if it has one.
        let start = if self.line_no == 0 && buf.starts_with(BOM) {
            BOM.len()
        } else {
            0
        };
        let lines = ends.iter().scan(start, |start, &end| {
            let line = &buf[*start..end];
            *start = end;
            Some(line)
        });
        if self.reader.is_some() {
            for line in lines {
                self.line(line)?;
            }
            return Ok(());
        }
        let mut decoded = Vec::with_capacity(BATCH_LINES);
        decoded.extend(lines.map(|line| {
            let trimmed = line.trim_ascii();
            (trimmed, (!trimmed.is_empty()).then(|| decode(trimmed)))
        }));
        for (trimmed, result) in decoded {
            self.summary.lines += 1;
            self.line_no += 1;
            let Some(result) = result else { continue };
            self.canonical(trimmed, result)?;
        }
        Ok(())
    }

    /// Ends the input: applies what is left of the side inputs, writes the last state of
    /// every open flag and returns the summary.
    pub fn finish(mut self) -> Result<(Summary, Rejects), FilesError> {
        self.release_side(None)?;
        self.write_flags()?;
        self.engine.finish(&mut self.buf);
        self.write_flags()?;
        self.out.flush().map_err(|source| FilesError::Output {
            name: self.output_name.clone(),
            source,
        })?;
        self.rejects.flush()?;
        self.summary.rejected = self.rejects.count;
        self.summary.state = self.engine.stats();
        if let Some(m) = &self.metrics {
            m.state([self.summary.state]);
        }
        self.summary.elapsed = self.started.elapsed();
        Ok((self.summary, self.rejects))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io::{BufReader, Cursor};
    use std::path::Path;

    use modsignal_core::event::MAX_RECORD_BYTES;

    use super::rejects::{REJECT_EXCERPT_BYTES, excerpt};
    use std::rc::Rc;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use modsignal_sim::{SimConfig, Simulator};

    use super::*;

    /// Output shared with the test after the pipeline is consumed by `finish`.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A reject file of its own for each test.
    fn rejects_path(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("modsignal-files-{}-{tag}.jsonl", std::process::id()))
    }

    /// What one run wrote: flags, reject file, and the summary's lines, events and flags.
    type Ran = (Vec<u8>, String, (u64, u64, u64));

    /// A pipeline reading `format`, its output, and where its rejects go.
    fn pipeline(format: Format, tag: &str) -> (Pipeline<Shared>, Shared, PathBuf) {
        let rejects = rejects_path(tag);
        let _ = std::fs::remove_file(&rejects);
        let out = Shared::default();
        let p =
            Pipeline::new(Policy::default(), out.clone(), Rejects::new(rejects.clone()).unwrap()).with_format(format);
        (p, out, rejects)
    }

    fn finish(p: Pipeline<Shared>, out: Shared, rejects: &Path) -> Ran {
        let (summary, _) = p.finish().unwrap();
        let rejected = std::fs::read_to_string(rejects).unwrap_or_default();
        let _ = std::fs::remove_file(rejects);
        let flags = out.0.borrow().clone();
        (flags, rejected, (summary.lines, summary.events, summary.flags))
    }

    /// Flags, rejects and summary counts of one run over `input` in `format`, read through a
    /// buffer of `capacity` bytes, or line by line with `feed_line` when `capacity` is 0.
    fn run_as(format: Format, input: &[u8], capacity: usize) -> Ran {
        let (mut p, out, rejects) = pipeline(format, &format!("{format}-{capacity}"));
        if capacity == 0 {
            for line in input.split_inclusive(|&b| b == b'\n') {
                p.feed_line(line).unwrap();
            }
        } else {
            p.feed_reader(BufReader::with_capacity(capacity, input), None).unwrap();
        }
        finish(p, out, &rejects)
    }

    fn run(input: &[u8], capacity: usize) -> Ran {
        run_as(Format::Canonical, input, capacity)
    }

    /// The reject entries of a run, as (line, code, reason, record).
    fn rejects_of(text: &str) -> Vec<(u64, String, String, String)> {
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap().to_owned();
                (v["line"].as_u64().unwrap(), s("code"), s("reason"), s("record"))
            })
            .collect()
    }

    /// A record of `len` bytes that starts like an event, with no newline.
    fn long_record(len: usize) -> Vec<u8> {
        let mut r = br#"{"type":"post","at":1767571200000,"id":""#.to_vec();
        r.resize(len - 2, b'x');
        r.extend_from_slice(b"\"}");
        r
    }

    /// Canonical simulated events, one per line.
    fn simulated(events: u64) -> Vec<u8> {
        let mut input = Vec::new();
        let sim = Simulator::new(SimConfig {
            events,
            seed: 7,
            events_per_sec: 20.0,
            ..SimConfig::default()
        });
        for ev in sim {
            input.extend_from_slice(ev.to_json().as_bytes());
            input.push(b'\n');
        }
        input
    }

    /// Read in runs of lines from the buffer, the input gives the same flags, rejects (with
    /// their line numbers) and counts as fed line by line, whatever the buffer's size (lines
    /// cut across refills, longer than the buffer, blank, bad, CRLF, the last unterminated, a
    /// byte-order mark first, records longer than the limit, and lines longer than the limit
    /// only by the whitespace around their record, which is not part of it).
    #[test]
    fn runs_of_lines_give_what_line_by_line_gives() {
        let mut input = BOM.to_vec();
        let sim = Simulator::new(SimConfig {
            events: 3000,
            seed: 7,
            events_per_sec: 20.0,
            ..SimConfig::default()
        });
        let limit = MAX_RECORD_BYTES;
        for (i, ev) in sim.enumerate() {
            input.extend_from_slice(ev.to_json().as_bytes());
            match i % 97 {
                0 => input.extend_from_slice(b"\n\n   \n"),
                1 => input.extend_from_slice(b"\r\n"),
                2 => input.extend_from_slice(b"\n{\"type\":\"post\"}\nnot json\n"),
                _ => input.push(b'\n'),
            }
            match i {
                // Over the limit by a byte, and far over it; then a BOM that is not the
                // input's first bytes, which is a bad record like any other.
                1000 => {
                    input.extend_from_slice(&long_record(limit + 1));
                    input.push(b'\n');
                }
                1500 => {
                    input.extend_from_slice(b"  ");
                    input.extend_from_slice(&long_record(limit * 2 + 7));
                    input.extend_from_slice(b" \r\n");
                }
                1600 => input.extend_from_slice(b"\xEF\xBB\xBF{}\n"),
                // At the limit exactly, padded past it on both sides: not too large.
                2000 => {
                    input.extend_from_slice(&vec![b' '; limit]);
                    input.extend_from_slice(&long_record(limit));
                    input.extend_from_slice(&vec![b'\t'; limit]);
                    input.push(b'\n');
                }
                _ => {}
            }
        }
        input.extend_from_slice(br#"{"type":"delete","at":1767571200000,"id":"last"}"#);
        let expected = run(&input, 0);
        assert!(
            expected.0.len() > 1000 && expected.1.lines().count() > 40,
            "{:?}",
            expected.2
        );
        let codes: Vec<(u64, String)> = rejects_of(&expected.1).into_iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(codes[0], (6, "missing_field".to_owned()), "the BOM was skipped");
        assert_eq!(codes.iter().filter(|c| c.1 == "too_large").count(), 2, "{codes:?}");
        for capacity in [1, 2, 7, 100, 1000, 1 << 16, 3 << 20] {
            assert!(run(&input, capacity) == expected, "buffer of {capacity} bytes");
        }
    }

    /// The same for a platform's stream: an over-long record is rejected as the platform
    /// reader rejects it, and the other records read as before.
    #[test]
    fn platform_records_longer_than_the_limit_are_rejected_alike() {
        let mut input = BOM.to_vec();
        input.extend_from_slice(JETSTREAM);
        input.extend_from_slice(&long_record(MAX_RECORD_BYTES + 100));
        input.extend_from_slice(b"\n");
        input.extend_from_slice(b"{\"kind\":\"nonsense\"}\n");
        input.extend_from_slice(&long_record(2 * MAX_RECORD_BYTES));
        let expected = run_as(Format::Jetstream, &input, 0);
        let rejects = rejects_of(&expected.1);
        let codes: Vec<(u64, &str)> = rejects.iter().map(|r| (r.0, r.1.as_str())).collect();
        let n = JETSTREAM.split(|&b| b == b'\n').count() as u64;
        assert_eq!(codes[0], (n, "too_large"), "{codes:?}");
        assert_eq!(codes.last(), Some(&(n + 2, "too_large")), "{codes:?}");
        assert_eq!(
            rejects[0].2,
            format!("record of {} bytes exceeds the limit", MAX_RECORD_BYTES + 100)
        );
        for capacity in [1, 100, 1 << 16] {
            assert!(
                run_as(Format::Jetstream, &input, capacity) == expected,
                "buffer of {capacity} bytes"
            );
        }
        let mut plain = JETSTREAM.to_vec();
        plain.extend_from_slice(b"\n{\"kind\":\"nonsense\"}\n");
        let without = run_as(Format::Jetstream, &plain, 1 << 16);
        assert_eq!(without.0, expected.0, "the other records give the same flags");
        assert_eq!(without.2.1, expected.2.1);
    }

    /// Three Jetstream records: a post, a label for it (from a canonical line, which
    /// Jetstream does not read: a reject) and its deletion.
    const JETSTREAM: &[u8] = br#"{"did":"did:plc:alice4hq2vz5","time_us":1767607200000167,"kind":"commit","commit":{"rev":"3lbh2k2aa","operation":"create","collection":"app.bsky.feed.post","rkey":"3lbhpa2xk2c2v","record":{"$type":"app.bsky.feed.post","createdAt":"2026-01-05T10:00:00.000Z","text":"x"},"cid":"bafyreia7c4zq2x3v5kfyh6yq"}}
{"did":"did:plc:alice4hq2vz5","time_us":1767609000000000,"kind":"commit","commit":{"rev":"3lbh2k2aa","operation":"delete","collection":"app.bsky.feed.post","rkey":"3lbhpa2xk2c2v"}}
"#;

    /// An over-long line in the middle of normal lines, and a last line longer than the limit
    /// with no newline, are rejected with their line number, code and first 512 bytes; the
    /// other lines give the flags they give without them.
    #[test]
    fn lines_longer_than_the_limit_are_rejected_and_the_rest_is_unchanged() {
        let plain = simulated(2000);
        let lines: Vec<&[u8]> = plain.split_inclusive(|&b| b == b'\n').collect();
        let mut input = Vec::new();
        input.extend(lines[..700].concat());
        let long = long_record(3 * MAX_RECORD_BYTES / 2);
        input.extend_from_slice(&long);
        input.push(b'\n');
        input.extend(lines[700..].concat());
        input.extend_from_slice(&long_record(MAX_RECORD_BYTES + 1));
        let expected = run(&plain, 1 << 16);
        assert!(expected.0.len() > 1000);
        let got = run(&input, 1 << 16);
        assert_eq!(got.0, expected.0, "the other lines' flags");
        assert_eq!(got.2.1, expected.2.1, "the other lines' events");
        let rejects = rejects_of(&got.1);
        assert_eq!(
            rejects.len(),
            2,
            "{:?}",
            rejects.iter().map(|r| (r.0, &r.1)).collect::<Vec<_>>()
        );
        assert_eq!((rejects[0].0, rejects[0].1.as_str()), (701, "too_large"));
        assert_eq!(
            rejects[0].2,
            format!("record of {} bytes exceeds the limit", long.len())
        );
        assert_eq!(rejects[0].3.as_bytes(), &long[..512]);
        assert_eq!((rejects[1].0, rejects[1].1.as_str()), (2002, "too_large"));
        assert_eq!(
            rejects[1].2,
            format!("record of {} bytes exceeds the limit", MAX_RECORD_BYTES + 1)
        );
    }

    /// A reader of `len` bytes of `byte` that counts how many it handed out and the largest
    /// buffer it was asked to fill.
    struct Counting<R> {
        inner: R,
        read: Arc<AtomicU64>,
    }

    impl<R: io::Read> io::Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }

    /// A stream that never ends its line costs no more than the limit: 3 MiB with no newline
    /// is one rejected line, and the pipeline held at most the limit of it.
    #[test]
    fn a_stream_without_a_newline_does_not_grow_memory() {
        let (mut p, out, rejects) = pipeline(Format::Canonical, "no-newline");
        let read = Arc::new(AtomicU64::new(0));
        let input = Counting {
            inner: io::Read::take(io::repeat(b'{'), 3 << 20),
            read: read.clone(),
        };
        p.feed_reader(BufReader::with_capacity(1 << 16, input), None).unwrap();
        assert_eq!(read.load(Ordering::Relaxed), 3 << 20, "read to its end");
        assert!(
            p.held.capacity() <= MAX_RECORD_BYTES,
            "held {} bytes of the line",
            p.held.capacity()
        );
        let (flags, rejected, (lines, events, _)) = finish(p, out, &rejects);
        assert!(flags.is_empty());
        assert_eq!((lines, events), (1, 0));
        let rejects = rejects_of(&rejected);
        assert_eq!(rejects.len(), 1);
        assert_eq!((rejects[0].0, rejects[0].1.as_str()), (1, "too_large"));
        assert_eq!(rejects[0].3, "{".repeat(512));
    }

    /// Side inputs are read as the main input's clock reaches their events, one event ahead,
    /// not loaded whole: after each main event, what was read of a side input is what was due
    /// and one buffer more.
    #[test]
    fn side_inputs_are_streamed_one_event_ahead() {
        let start = 1_767_571_200_000i64;
        let mut side = Vec::new();
        // An account change a second, over a little more than a day.
        for i in 0..100_000i64 {
            let at = start + i * 1000;
            side.extend_from_slice(
                format!(
                    "{{\"type\":\"account\",\"at\":{at},\"user\":\"u{}\",\"followers\":{i}}}\n",
                    i % 5000
                )
                .as_bytes(),
            );
        }
        let line_len = side.len() / 100_000 + 1;
        let read = Arc::new(AtomicU64::new(0));
        let (mut p, out, rejects) = pipeline(Format::Canonical, "side-streamed");
        let capacity = 8192;
        let counted = Counting {
            inner: Cursor::new(side.clone()),
            read: read.clone(),
        };
        p.add_side_input("side.jsonl", BufReader::with_capacity(capacity, counted))
            .unwrap();
        assert!(read.load(Ordering::Relaxed) <= capacity as u64, "one buffer read ahead");
        for (k, secs) in [(1u64, 10i64), (2, 20_000), (3, 50_000)] {
            let line = format!(
                "{{\"type\":\"post\",\"at\":{},\"id\":\"m{k}\",\"author\":{{\"id\":\"a{k}\"}},\"audience\":\"public\"}}\n",
                start + secs * 1000
            );
            p.feed_line(line.as_bytes()).unwrap();
            let due = (secs + 1) as u64;
            let got = read.load(Ordering::Relaxed);
            assert!(
                got <= (due + 1) * line_len as u64 + capacity as u64,
                "after {secs} s: {got} bytes read for {due} events due"
            );
            assert!(got >= due * (line_len as u64 - 8), "after {secs} s: {got} bytes read");
            assert_eq!(p.summary.events, k + due, "the side events due were applied");
            assert!(p.sides[0].line.capacity() < 4096);
        }
        let (_, rejected, (lines, events, _)) = finish(p, out, &rejects);
        assert_eq!(rejected, "");
        assert_eq!(read.load(Ordering::Relaxed), side.len() as u64);
        assert_eq!((lines, events), (100_003, 100_003), "the rest at the end");
    }

    /// A side input is applied in the order written: an event earlier than the one before it
    /// waits for that one, and is applied as soon as it is read.
    #[test]
    fn a_side_event_out_of_order_is_applied_as_soon_as_it_is_read() {
        let at = |secs: i64| 1_767_571_200_000 + secs * 1000;
        let account = |secs: i64, user: &str| {
            format!(
                "{{\"type\":\"account\",\"at\":{},\"user\":\"{user}\",\"followers\":3}}\n",
                at(secs)
            )
        };
        let side = [account(10, "a"), account(3, "b"), account(20, "c")].concat();
        let (mut p, out, rejects) = pipeline(Format::Canonical, "side-order");
        p.add_side_input("side.jsonl", Cursor::new(side.into_bytes())).unwrap();
        let next_line = |p: &Pipeline<Shared>| p.sides[0].next.as_ref().map(|(line, _)| *line);
        p.feed_line(account(5, "m").as_bytes()).unwrap();
        assert_eq!((p.summary.events, next_line(&p)), (1, Some(1)), "not due at 5 s");
        p.feed_line(account(15, "m").as_bytes()).unwrap();
        assert_eq!(
            (p.summary.events, next_line(&p)),
            (4, Some(3)),
            "at 15 s the event at 10 s is due, and the one at 3 s after it is applied when read"
        );
        let (_, rejected, (_, events, _)) = finish(p, out, &rejects);
        assert_eq!((rejected.as_str(), events), ("", 5));
    }

    /// Two side inputs and the main input, each in time order, give the flags of the same
    /// events in one input (the engine's final flags do not depend on the order).
    #[test]
    fn side_inputs_merge_with_the_main_input() {
        let all = simulated(4000);
        let lines: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
        let mut by_time: Vec<(Ts, &[u8])> = lines.iter().map(|l| (decode(l.trim_ascii()).unwrap().at, *l)).collect();
        by_time.sort_by_key(|(at, _)| *at);
        let mut parts = [Vec::new(), Vec::new(), Vec::new()];
        for (i, (_, line)) in by_time.iter().enumerate() {
            parts[i % 3].extend_from_slice(line);
        }
        let (mut p, out, rejects) = pipeline(Format::Canonical, "side-merge");
        p.add_side_input("a", Cursor::new(parts[1].clone())).unwrap();
        p.add_side_input("b", Cursor::new(parts[2].clone())).unwrap();
        p.feed_reader(&parts[0][..], None).unwrap();
        let merged = finish(p, out, &rejects);
        let one: Vec<u8> = by_time.iter().flat_map(|(_, l)| l.iter().copied()).collect();
        let single = run(&one, 1 << 16);
        assert_eq!(newest(&merged.0), newest(&single.0));
        assert_eq!((merged.1.as_str(), merged.2.1), ("", single.2.1));
    }

    /// The newest revision of each flag and of each cohort page.
    fn newest(flags: &[u8]) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, (u64, String)> = BTreeMap::new();
        for line in flags.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let rev = v["revision"].as_u64().unwrap();
            let id = match v["flag_id"].as_str() {
                Some(id) => id.to_owned(),
                None => format!("{}/{}", v["cohort_id"].as_str().unwrap(), v["page"]),
            };
            if m.get(&id).is_none_or(|(r, _)| *r <= rev) {
                m.insert(id, (rev, String::from_utf8(line.to_vec()).unwrap()));
            }
        }
        m.into_iter().map(|(k, (_, v))| (k, v)).collect()
    }

    /// A side input's byte-order mark is skipped; its bad and over-long lines are rejected
    /// with its name and their line numbers, holding no more than the limit of them.
    #[test]
    fn side_input_rejects_name_it_and_bom_is_skipped() {
        let mut side = BOM.to_vec();
        side.extend_from_slice(
            b"{\"type\":\"account\",\"at\":1767571200000,\"user\":\"u1\",\"followers\":3}\n\nnope\n",
        );
        side.extend_from_slice(&long_record(2 * MAX_RECORD_BYTES));
        side.extend_from_slice(b"\n{\"type\":\"account\",\"at\":1767571300000,\"user\":\"u2\",\"followers\":3}\n");
        side.extend_from_slice(&long_record(MAX_RECORD_BYTES + 5));
        let (mut p, out, rejects) = pipeline(Format::Canonical, "side-rejects");
        p.add_side_input("side.jsonl", BufReader::with_capacity(1000, Cursor::new(side)))
            .unwrap();
        p.feed_line(b"{\"type\":\"account\",\"at\":1767571400000,\"user\":\"u3\"}\n")
            .unwrap();
        assert!(p.sides[0].line.capacity() <= MAX_RECORD_BYTES);
        let (_, rejected, (lines, events, _)) = finish(p, out, &rejects);
        let entries: Vec<serde_json::Value> = rejected.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let got: Vec<(&str, u64, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e["input"].as_str().unwrap(),
                    e["line"].as_u64().unwrap(),
                    e["code"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("side.jsonl", 3, "invalid_json"),
                ("side.jsonl", 4, "too_large"),
                ("side.jsonl", 6, "too_large")
            ]
        );
        assert_eq!((lines, events), (7, 3));
    }

    /// A reason that quotes a huge part of the record is cut like the record.
    #[test]
    fn reasons_are_cut_like_records() {
        // serde's message for a value of the wrong type quotes the value whole.
        let mut line =
            br#"{"type":"label","at":1767571200000,"id":"m1","source":"s","category":"credible_threat","confidence":""#
                .to_vec();
        line.resize(100_000, b'y');
        line.extend_from_slice(b"\"}\n");
        let (_, rejected, _) = run(&line, 1 << 16);
        let rejects = rejects_of(&rejected);
        assert_eq!(rejects[0].1, "invalid_json", "{}", rejects[0].2);
        assert!(
            rejects[0].2.len() <= REJECT_EXCERPT_BYTES + '…'.len_utf8(),
            "{}",
            rejects[0].2.len()
        );
        assert!(rejects[0].2.ends_with('…'), "{}", rejects[0].2);
        assert_eq!(excerpt(&"é".repeat(300)).len(), 512 + '…'.len_utf8());
    }

    /// A reject file that could not be created is refused before anything is read, naming
    /// why; one that can is not created by the check.
    #[test]
    fn the_reject_file_is_checked_at_start() {
        let dir = std::env::temp_dir().join(format!("modsignal-files-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a-file");
        std::fs::write(&file, "kept").unwrap();
        let refused = |path: PathBuf, why: &str| {
            let e = Rejects::new(path.clone()).err().expect("refused");
            let text = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert!(
                text.starts_with(&format!("cannot write the reject file {}", path.display())),
                "{text}"
            );
            assert!(text.contains(why), "{text}");
        };
        refused(dir.clone(), "it is a directory");
        refused(dir.join("missing/rejects.jsonl"), "missing");
        refused(file.join("rejects.jsonl"), "is not a directory");
        let fresh = dir.join("fresh.jsonl");
        Rejects::new(fresh.clone()).unwrap();
        assert!(!fresh.exists(), "the check creates nothing");
        Rejects::new(file.clone()).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept", "nor changes a file");
        Rejects::new(PathBuf::from("relative-name.jsonl")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
