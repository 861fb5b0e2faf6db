//! Identifier shapes. Ids follow Bluesky's: users are `did:plc:` DIDs and messages are AT URIs
//! whose record key is a TID. They are built from integers on demand, so the simulator stores
//! a user as a `u32` and a message as a `(u32, u64)` and never keeps id strings in memory.

/// The alphabet of `did:plc:` identifiers (RFC 4648 base32, lower case).
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// The alphabet of TIDs ("base32-sortable"), chosen by the AT Protocol so that TIDs sort by time.
const BASE32_SORTABLE: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
const HEX: &[u8; 16] = b"0123456789abcdef";

/// The `SplitMix64` finaliser. Every step (xor-shift, multiplication by an odd constant) is
/// invertible, so the function is a bijection on `u64`: distinct inputs give distinct outputs,
/// which is what makes every id below unique while still looking random.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes the 24 base32 characters of a user's `did:plc:`. The first 64 of its 120 bits are a
/// bijection of the user number, so two users never share a DID.
fn did_body(out: &mut [u8], salt: u64, user: u32) {
    let hi = mix64(u64::from(user) ^ salt);
    let lo = mix64(hi ^ 0x9e37_79b9_7f4a_7c15);
    let v = (u128::from(hi) << 64) | u128::from(lo);
    for (i, c) in out[..24].iter_mut().enumerate() {
        *c = BASE32[((v >> (123 - 5 * i)) & 31) as usize];
    }
}

/// Turns an ASCII buffer into a `String`. The ids are assembled in a stack buffer first,
/// because pushing characters one at a time onto a `String` was a tenth of generation time.
fn ascii(buf: &[u8]) -> String {
    std::str::from_utf8(buf).expect("ids are ASCII").to_owned()
}

/// A user's DID, e.g. `did:plc:ewvi7nxzyoun6zhxrhs64oiz`.
pub(crate) fn did(salt: u64, user: u32) -> String {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(b"did:plc:");
    did_body(&mut b[8..], salt, user);
    ascii(&b)
}

/// A TID: microseconds since the epoch in the high 54 bits and a 10-bit clock id in the low
/// ones, as the AT Protocol defines it. The sub-millisecond digits and the clock id carry a
/// message sequence number, so one author's messages created in the same millisecond still
/// get distinct keys (up to 1,024,000 of them per millisecond, far more than any stream
/// produces). The clock id is offset per author, as each real server has its own.
pub(crate) fn tid(salt: u64, author: u32, at_ms: i64, seq: u64) -> u64 {
    let micros = (at_ms.max(0) as u64) * 1000 + seq % 1000;
    let clock = (mix64(u64::from(author) ^ salt ^ 0x7c15_9e37) % 1024 + seq / 1000) % 1024;
    (micros << 10) | clock
}

/// The millisecond a TID was minted in.
pub(crate) fn tid_ms(tid: u64) -> i64 {
    ((tid >> 10) / 1000) as i64
}

fn tid_chars(out: &mut [u8], tid: u64) {
    for (i, c) in out[..13].iter_mut().enumerate() {
        *c = BASE32_SORTABLE[((tid >> (60 - 5 * i)) & 31) as usize];
    }
}

/// The AT URI of a post or a repost record.
pub(crate) fn record_uri(salt: u64, author: u32, reshare: bool, tid: u64) -> String {
    let mut b = [0u8; 72];
    b[..13].copy_from_slice(b"at://did:plc:");
    did_body(&mut b[13..37], salt, author);
    let collection: &[u8] = if reshare {
        b"/app.bsky.feed.repost/"
    } else {
        b"/app.bsky.feed.post/"
    };
    let end = 37 + collection.len();
    b[37..end].copy_from_slice(collection);
    tid_chars(&mut b[end..end + 13], tid);
    ascii(&b[..end + 13])
}

/// A version-4-shaped UUID for the `event_id` of the `seq`-th distinct event. Its first 64
/// random-looking bits are a bijection of `seq`, so distinct events never share an id, while an
/// exact duplicate (a clone of the event) carries the same one.
pub(crate) fn event_uuid(salt: u64, seq: u64) -> String {
    let a = mix64(seq ^ salt);
    let b = mix64(a ^ 0x6a09_e667_f3bc_c908);
    // 32 hex digits: 12 from `a`, the version nibble, 3 from `a`, a variant nibble (which keeps
    // `a`'s next two bits), 3 more and 12 from `b`. All 64 bits of `a` are in the text.
    let mut nibbles = [0u8; 32];
    for (i, n) in nibbles.iter_mut().enumerate().take(12) {
        *n = ((a >> (60 - 4 * i)) & 15) as u8;
    }
    nibbles[12] = 4;
    for i in 0..3 {
        nibbles[13 + i] = ((a >> (12 - 4 * i)) & 15) as u8;
    }
    nibbles[16] = 8 | ((a >> 2) & 3) as u8;
    nibbles[17] = ((a & 3) << 2) as u8 | ((b >> 62) & 3) as u8;
    for i in 0..14 {
        nibbles[18 + i] = ((b >> (56 - 4 * i)) & 15) as u8;
    }
    let mut b = [b'-'; 36];
    let mut j = 0;
    for (i, n) in nibbles.iter().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            j += 1;
        }
        b[j] = HEX[*n as usize];
        j += 1;
    }
    ascii(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn shapes_are_realistic() {
        let d = did(7, 3);
        assert_eq!(d.len(), 32);
        assert!(d.starts_with("did:plc:"));
        let t = tid(7, 3, 1_767_571_200_123, 5);
        assert_eq!(tid_ms(t), 1_767_571_200_123);
        let uri = record_uri(7, 3, false, t);
        assert_eq!(uri, format!("at://{d}/app.bsky.feed.post/{}", &uri[uri.len() - 13..]));
        assert!(record_uri(7, 3, true, t).contains("/app.bsky.feed.repost/"));
        let u = event_uuid(1, 2);
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert!(matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn ids_are_unique() {
        let dids: HashSet<_> = (0..50_000).map(|u| did(99, u)).collect();
        assert_eq!(dids.len(), 50_000);
        let uuids: HashSet<_> = (0..50_000).map(|s| event_uuid(99, s)).collect();
        assert_eq!(uuids.len(), 50_000);
        // Many messages in one millisecond still get distinct keys.
        let tids: HashSet<_> = (0..5_000).map(|s| tid(99, 1, 1_767_571_200_000, s)).collect();
        assert_eq!(tids.len(), 5_000);
    }

    #[test]
    fn tids_sort_by_time() {
        let a = record_uri(1, 1, false, tid(1, 1, 1_767_571_200_000, 999));
        let b = record_uri(1, 1, false, tid(1, 1, 1_767_571_200_001, 0));
        assert!(a[a.len() - 13..] < b[b.len() - 13..]);
    }
}
