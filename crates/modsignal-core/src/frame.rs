//! Framing of saved state: the bytes around a snapshot's body that say what it is and whether
//! it arrived whole.
//!
//! A frame is
//!
//! ```text
//! magic (8 bytes) | format (u32, little-endian) | header (H bytes) | body | xxh3-64 of the body (u64, little-endian)
//! ```
//!
//! The magic names the kind of state (an engine's, a router's), so that one kind is never read
//! as another; the format number is bumped when the body changes shape, so that an old snapshot
//! is refused rather than misread; the checksum refuses a snapshot torn by a crash or damaged on
//! disk or in a topic. The header is a fixed number of bytes the owner checks itself (the engine
//! keeps its policy's fingerprint there); it is not covered by the checksum, only the body is.
//!
//! Engine snapshots ([`crate::Engine::snapshot`]) and the Kafka router's snapshots are written
//! with [`seal`] and read with [`open`]. Snapshots already in state directories and changelog
//! topics were written in this layout, so it must not change: a frame's bytes are fixed by its
//! inputs.

use xxhash_rust::xxh3::xxh3_64;

/// The bytes before the header: magic and format.
const PREFIX: usize = 8 + 4;
/// The bytes after the body: its checksum.
const TRAILER: usize = 8;

/// Why bytes are not a frame of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Another magic, or too few bytes for the magic, format, header and checksum.
    #[error("not a frame of this kind")]
    NotAFrame,
    /// The right kind, in another format than the reader's.
    #[error("format {found}, expected format {expected}")]
    Format { found: u32, expected: u32 },
    /// The body's checksum does not hold.
    #[error("checksum mismatch")]
    Checksum,
}

/// A frame around the body that `write_body` appends to the vector it is given (which then
/// holds magic, format and header) before handing it back with nothing else changed. The body
/// is written in place rather than copied, since an engine's snapshot may be large; postcard's
/// `to_extend` is such a writer. `capacity` is a guess of the body's length, for the first
/// allocation.
pub fn seal<const H: usize>(
    magic: &[u8; 8],
    format: u32,
    header: &[u8; H],
    capacity: usize,
    write_body: impl FnOnce(Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX + H + capacity + TRAILER);
    out.extend_from_slice(magic);
    out.extend_from_slice(&format.to_le_bytes());
    out.extend_from_slice(header);
    let mut out = write_body(out);
    let sum = xxh3_64(&out[PREFIX + H..]);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The header and the body of a frame [`seal`] wrote with the same magic, format and header
/// length, once magic, format and checksum are checked, in that order.
pub fn open<'a, const H: usize>(
    magic: &[u8; 8],
    format: u32,
    bytes: &'a [u8],
) -> Result<(&'a [u8; H], &'a [u8]), FrameError> {
    let rest = bytes.strip_prefix(magic.as_slice()).ok_or(FrameError::NotAFrame)?;
    let (found, rest) = rest.split_first_chunk::<4>().ok_or(FrameError::NotAFrame)?;
    let found = u32::from_le_bytes(*found);
    if found != format {
        return Err(FrameError::Format {
            found,
            expected: format,
        });
    }
    let (header, rest) = rest.split_first_chunk::<H>().ok_or(FrameError::NotAFrame)?;
    let (body, sum) = rest.split_last_chunk::<TRAILER>().ok_or(FrameError::NotAFrame)?;
    if xxh3_64(body) != u64::from_le_bytes(*sum) {
        return Err(FrameError::Checksum);
    }
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    const MAGIC: &[u8; 8] = b"modtest\0";

    fn seal_body<const H: usize>(header: &[u8; H], body: &[u8]) -> Vec<u8> {
        seal(MAGIC, 7, header, body.len(), |mut out| {
            out.extend_from_slice(body);
            out
        })
    }

    /// Snapshots written before framing had a module of its own must still be read, so the
    /// bytes of a frame are pinned: these were written by the engine's and the router's own
    /// framing code before it moved here (magic, format 1, an 8-byte header for the engine and
    /// none for the router, the body, the xxh3-64 of the body).
    #[test]
    fn frames_keep_the_layout_snapshots_were_written_in() {
        let abc = |mut out: Vec<u8>| {
            out.extend_from_slice(b"abc");
            out
        };
        let engine = seal(b"modsnap\0", 1, &0x0102_0304_0506_0708u64.to_le_bytes(), 3, abc);
        assert_eq!(hex(&engine), ENGINE_GOLDEN);
        let router = seal(b"modroute", 1, &[], 3, abc);
        assert_eq!(hex(&router), ROUTER_GOLDEN);
        let (header, body) = open::<8>(b"modsnap\0", 1, &engine).unwrap();
        assert_eq!(
            (u64::from_le_bytes(*header), body),
            (0x0102_0304_0506_0708, &b"abc"[..])
        );
        assert_eq!(open::<0>(b"modroute", 1, &router).unwrap(), (&[], &b"abc"[..]));
    }

    /// `modsnap\0`, format 1, the header, `abc`, and xxh3-64 of `abc` (0x78af5f94892f3950).
    const ENGINE_GOLDEN: &str = "6d6f64736e617000010000000807060504030201616263\
                                 50392f89945faf78";
    /// `modroute`, format 1, `abc`, and its xxh3-64.
    const ROUTER_GOLDEN: &str = "6d6f64726f75746501000000616263\
                                 50392f89945faf78";

    /// An engine's snapshot is such a frame, its header the policy's fingerprint.
    #[test]
    fn engine_snapshots_are_frames_with_the_policy_fingerprint_as_header() {
        let policy = crate::Policy::default();
        let bytes = crate::Engine::new(policy.clone()).snapshot();
        assert_eq!(&bytes[..8], b"modsnap\0");
        assert_eq!(bytes[8..PREFIX], crate::SNAPSHOT_FORMAT.to_le_bytes());
        let (header, _) = open::<8>(b"modsnap\0", crate::SNAPSHOT_FORMAT, &bytes).unwrap();
        assert_eq!(u64::from_le_bytes(*header), crate::policy_fingerprint(&policy));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    #[test]
    fn a_sealed_frame_opens_to_its_header_and_body() {
        for body in [&b""[..], b"x", &[0u8; 1000]] {
            let bytes = seal_body(&[9, 8, 7], body);
            assert_eq!(open::<3>(MAGIC, 7, &bytes), Ok((&[9, 8, 7], body)));
        }
    }

    #[test]
    fn other_kinds_formats_and_damage_are_refused() {
        let bytes = seal_body(&[1, 2], b"body");
        assert_eq!(open::<2>(b"modsnap\0", 7, &bytes), Err(FrameError::NotAFrame));
        assert_eq!(
            open::<2>(MAGIC, 8, &bytes),
            Err(FrameError::Format { found: 7, expected: 8 })
        );
        // Every cut short of the whole frame is refused, by length or by checksum.
        for n in 0..bytes.len() {
            assert!(open::<2>(MAGIC, 7, &bytes[..n]).is_err(), "cut at {n}");
        }
        assert_eq!(
            open::<2>(MAGIC, 7, &bytes[..PREFIX + 2 + 7]),
            Err(FrameError::NotAFrame)
        );
        // A flipped bit in the body or its checksum is caught; the header is the owner's to check.
        for i in PREFIX + 2..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert_eq!(open::<2>(MAGIC, 7, &damaged), Err(FrameError::Checksum), "byte {i}");
        }
        let mut header = bytes.clone();
        header[PREFIX] ^= 1;
        assert_eq!(open::<2>(MAGIC, 7, &header), Ok((&[0, 2], &b"body"[..])));
    }
}
