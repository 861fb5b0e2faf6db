//! The pieces of JSON a flag is written with, straight into a byte buffer.
//!
//! A flag revision is about 2 KB of JSON, and on flag-heavy traffic writing it is a third of
//! the whole process's time (issue 14). Through `serde_json::to_writer` into the output's
//! `BufWriter` every key, quote and number is a call through the `Write` trait, and every string
//! is escaped byte by byte. Here a flag is built in a `Vec<u8>` that is written at once; a
//! string with nothing to escape, which is nearly every string a flag holds (ids, codes, the
//! provisions), is checked in one pass the compiler vectorises and copied whole; numbers go
//! through `itoa` and `zmij`, the crates `serde_json` itself uses.
//!
//! The bytes are exactly `serde_json`'s (compact form): the tests compare the two on every
//! value a field can take, since consumers and the revision's debug check read them.

use crate::time::Ts;

/// Whether `serde_json` escapes byte `b` in a string: control characters, `"` and `\`.
#[inline]
const fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `s` as a JSON string, quoted and escaped as `serde_json` escapes it.
#[inline]
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // No early exit: a pass over every byte vectorises, and most strings have nothing to escape.
    if bytes.iter().fold(false, |any, &b| any | needs_escape(b)) {
        escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

#[cold]
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// An unsigned integer.
#[inline]
pub(crate) fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A float as `serde_json` writes one: the shortest form that reads back the same, `null` when
/// it is not finite.
#[inline]
pub(crate) fn float(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(x).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

#[inline]
pub(crate) fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A time as [`Ts`]'s `Serialize` writes it (its `Display` form, as a string).
#[inline]
pub(crate) fn time(out: &mut Vec<u8>, t: Ts) {
    match t.rfc3339_digits() {
        Some(digits) => {
            out.push(b'"');
            out.extend_from_slice(&digits);
            out.push(b'"');
        }
        None => string(out, &t.to_string()),
    }
}

/// `value` written by `write`, or `null`.
#[inline]
pub(crate) fn option<T>(out: &mut Vec<u8>, value: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        Some(v) => write(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn via<T>(value: T, write: impl FnOnce(&mut Vec<u8>, T)) -> String {
        let mut out = Vec::new();
        write(&mut out, value);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn every_byte_serde_json_escapes_is_escaped_as_it_does() {
        for b in 0u8..=0x7f {
            let s = format!("a{}b", char::from(b));
            assert_eq!(
                via(s.as_str(), string),
                serde_json::to_string(&s).unwrap(),
                "byte {b:#04x}"
            );
        }
    }

    #[test]
    fn times_outside_four_digit_years_are_written_as_their_display() {
        for ms in [
            i64::MIN,
            -62_167_219_200_001,
            -1,
            0,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MAX,
        ] {
            assert_eq!(via(Ts(ms), time), serde_json::to_string(&Ts(ms)).unwrap(), "{ms}");
        }
    }

    proptest! {
        #[test]
        fn strings_are_written_as_serde_json_writes_them(s in any::<String>()) {
            prop_assert_eq!(via(s.as_str(), string), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn numbers_are_written_as_serde_json_writes_them(n in any::<u64>(), x in any::<f64>()) {
            prop_assert_eq!(via(n, uint), serde_json::to_string(&n).unwrap());
            prop_assert_eq!(via(x, float), serde_json::to_string(&x).unwrap());
        }

        #[test]
        fn times_are_written_as_serde_json_writes_them(ms in any::<i64>()) {
            prop_assert_eq!(via(Ts(ms), time), serde_json::to_string(&Ts(ms)).unwrap());
        }
    }
}
