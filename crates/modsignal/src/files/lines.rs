//! Reading lines without holding more than [`MAX_RECORD_BYTES`] of one: [`read_line`] for a
//! line not complete in the reader's buffer, [`complete_lines`] for a run of complete ones.

use std::io::{self, BufRead};

use modsignal_core::event::MAX_RECORD_BYTES;

/// The UTF-8 byte-order mark, which Windows tools write at the start of a text file. It is
/// not part of the first record, so it is skipped there (and only there).
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How [`read_line`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// The input had ended: there was no line.
    End,
    /// The whole record is held (whitespace around it, which trimming drops, may not be).
    Held,
    /// The record (the line without the whitespace around it) has this many bytes, more than
    /// [`MAX_RECORD_BYTES`]; only its first [`MAX_RECORD_BYTES`] are held.
    TooLarge(u64),
}

/// Reads one line, up to and including its newline (or to the end of input), into `held`,
/// skipping a byte-order mark when it is the input's `first` line and the whitespace before
/// the record. Past [`MAX_RECORD_BYTES`] of record it holds nothing more and only counts, to
/// the newline: `held` never grows past the limit, however long the line. Returns how the
/// line ended and the bytes consumed.
pub(super) fn read_line<R: BufRead + ?Sized>(
    input: &mut R,
    held: &mut Vec<u8>,
    first: bool,
) -> io::Result<(Line, u64)> {
    held.clear();
    let mut gather = Gather { held, pos: 0, end: 0 };
    // How many bytes of a byte-order mark have been matched; all of it when none is expected.
    let mut bom = if first { 0 } else { BOM.len() };
    let mut consumed = 0u64;
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let len = chunk.len();
        // The mark may be cut across refills of a small buffer, so it is matched a byte at a
        // time; bytes that began like it but were not it belong to the line.
        let mut rest = chunk;
        while bom < BOM.len()
            && let Some((&b, tail)) = rest.split_first()
        {
            if b == BOM[bom] {
                bom += 1;
                rest = tail;
            } else {
                gather.push(&BOM[..bom]);
                bom = BOM.len();
            }
        }
        gather.push(rest);
        input.consume(len);
        consumed += len as u64;
        if done {
            break;
        }
    }
    if bom < BOM.len() {
        gather.push(&BOM[..bom]);
    }
    let line = if consumed == 0 {
        Line::End
    } else if gather.end > MAX_RECORD_BYTES as u64 {
        Line::TooLarge(gather.end)
    } else {
        Line::Held
    };
    Ok((line, consumed))
}

/// The part of a line [`read_line`] holds, and where its record ends.
pub(super) struct Gather<'a> {
    /// The line from its first byte that is not whitespace: at most [`MAX_RECORD_BYTES`].
    held: &'a mut Vec<u8>,
    /// Bytes of the line seen from there.
    pos: u64,
    /// Just past the last byte that is not whitespace: the record's length.
    end: u64,
}

impl Gather<'_> {
    fn push(&mut self, bytes: &[u8]) {
        // Whitespace before the record is not kept: a line padded with it is no longer for it.
        let bytes = if self.pos == 0 { bytes.trim_ascii_start() } else { bytes };
        if bytes.is_empty() {
            return;
        }
        let take = bytes.len().min(MAX_RECORD_BYTES - self.held.len());
        if take > 0 {
            // Amortised growth as a Vec's own, but never past the limit.
            let need = self.held.len() + take;
            if need > self.held.capacity() {
                let want = (self.held.capacity() * 2).clamp(need, MAX_RECORD_BYTES);
                self.held.reserve_exact(want - self.held.len());
            }
            self.held.extend_from_slice(&bytes[..take]);
        }
        if let Some(i) = bytes.iter().rposition(|b| !b.is_ascii_whitespace()) {
            self.end = self.pos + i as u64 + 1;
        }
        self.pos += bytes.len() as u64;
    }
}

/// The most lines of the main input decoded together before they are applied (see
/// [`Pipeline::feed_reader`]): enough to keep the decoder and the engine each hot in the cache
/// for a while, few enough that the decoded events stay in the cache until applied.
pub(super) const BATCH_LINES: usize = 64;

/// Fills `ends` with the ends (just past the newline) of the first complete lines in `buf`,
/// at most [`BATCH_LINES`] of them; empty when `buf` holds no complete line.
pub(super) fn complete_lines(buf: &[u8], ends: &mut Vec<usize>) {
    ends.clear();
    let mut start = 0;
    while ends.len() < BATCH_LINES
        && let Some(i) = memchr::memchr(b'\n', &buf[start..])
    {
        start += i + 1;
        ends.push(start);
    }
}
