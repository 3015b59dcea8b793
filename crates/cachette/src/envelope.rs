//! The bytes stored for an entry: a small header, then the payload.
//!
//! ```text
//! 0      magic 0xCA
//! 1      format version (1)
//! 2      flags: bit 0 = payload is lz4-compressed
//! 3..11  created-at, ms since the Unix epoch (u64 LE)
//! 11..19 fresh-until, ms since the Unix epoch (u64 LE)
//! 19..21 number of generations n (u16 LE)
//! 21..   n generations (u64 LE each): the namespace epoch, then the entry's tags in order
//! ..     payload (JSON unless compressed)
//! ```
//!
//! The payload is left as the caller gave it, so a hit can hand out a slice of the stored bytes
//! without copying and other clients can read entries.

use bytes::{BufMut, Bytes, BytesMut};

use crate::generation::Generation;

const MAGIC: u8 = 0xCA;
const VERSION: u8 = 1;
const FLAG_LZ4: u8 = 1;
const FIXED_HEADER: usize = 21;

/// What decoding an entry's header tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// When the entry was written.
    pub created_at_ms: u64,
    /// Until when it is fresh; after that it is only served if the fetch fails.
    pub fresh_until_ms: u64,
    /// The generations the value was built under, in the order of the snapshot.
    pub generations: GenerationsRef<'a>,
    compressed: bool,
    payload_start: usize,
}

/// The generations stored in a header, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationsRef<'a>(&'a [u8]);

impl GenerationsRef<'_> {
    /// How many generations there are.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    /// Whether there are none. Only the fuzz targets ask.
    #[cfg(feature = "internals")]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether they equal `current`, in order.
    pub fn matches(&self, current: &[Generation]) -> bool {
        self.len() == current.len()
            && self
                .0
                .chunks_exact(8)
                .zip(current)
                .all(|(stored, current)| {
                    u64::from_le_bytes(stored.try_into().unwrap()) == current.to_bits()
                })
    }
}

/// An entry's bytes could not be read as an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt cache entry: {0}")]
pub struct CorruptEntry(&'static str);

/// Encodes `payload` built under `generations`, compressing it when longer than
/// `compress_above` bytes and compression makes it smaller.
pub fn encode(
    payload: &[u8],
    generations: &[Generation],
    created_at_ms: u64,
    fresh_until_ms: u64,
    compress_above: usize,
) -> Bytes {
    let compressed = (payload.len() > compress_above)
        .then(|| lz4_flex::compress_prepend_size(payload))
        .filter(|c| c.len() < payload.len());
    let body: &[u8] = compressed.as_deref().unwrap_or(payload);
    let mut out = BytesMut::with_capacity(FIXED_HEADER + 8 * generations.len() + body.len());
    out.put_u8(MAGIC);
    out.put_u8(VERSION);
    out.put_u8(if compressed.is_some() { FLAG_LZ4 } else { 0 });
    out.put_u64_le(created_at_ms);
    out.put_u64_le(fresh_until_ms);
    out.put_u16_le(u16::try_from(generations.len()).expect("fewer than 65536 tags"));
    for generation in generations {
        out.put_u64_le(generation.to_bits());
    }
    out.put_slice(body);
    out.freeze()
}

/// Reads the header of `bytes`.
///
/// # Errors
/// [`CorruptEntry`] when the bytes are not an envelope of this format version.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, CorruptEntry> {
    if bytes.len() < FIXED_HEADER {
        return Err(CorruptEntry("shorter than a header"));
    }
    if bytes[0] != MAGIC || bytes[1] != VERSION {
        return Err(CorruptEntry("unknown magic or version"));
    }
    let flags = bytes[2];
    if flags & !FLAG_LZ4 != 0 {
        return Err(CorruptEntry("unknown flags"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let count = usize::from(u16::from_le_bytes([bytes[19], bytes[20]]));
    let payload_start = FIXED_HEADER + 8 * count;
    if bytes.len() < payload_start {
        return Err(CorruptEntry("truncated generations"));
    }
    Ok(Envelope {
        created_at_ms: u64_at(3),
        fresh_until_ms: u64_at(11),
        generations: GenerationsRef(&bytes[FIXED_HEADER..payload_start]),
        compressed: flags & FLAG_LZ4 != 0,
        payload_start,
    })
}

impl Envelope<'_> {
    /// The payload of `bytes` (the buffer this envelope was decoded from): a zero-copy slice
    /// unless it was compressed.
    ///
    /// # Errors
    /// [`CorruptEntry`] when a compressed payload does not decompress, or claims to be longer
    /// than `max_len` (nothing longer is ever stored, so the claim is not trusted).
    pub fn payload(&self, bytes: &Bytes, max_len: usize) -> Result<Bytes, CorruptEntry> {
        let body = bytes.slice(self.payload_start..);
        if self.compressed {
            let size = body
                .get(..4)
                .map(|s| u32::from_le_bytes(s.try_into().unwrap()) as usize);
            if size.is_none_or(|size| size > max_len) {
                return Err(CorruptEntry("implausible decompressed size"));
            }
            lz4_flex::decompress_size_prepended(&body)
                .map(Bytes::from)
                .map_err(|_| CorruptEntry("payload does not decompress"))
        } else {
            Ok(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gens() -> Vec<Generation> {
        vec![Generation(7), Generation(u64::MAX)]
    }

    #[test]
    fn round_trips_header_and_payload() {
        let bytes = encode(b"[1,2]", &gens(), 10, 20, 1024);
        let env = decode(&bytes).unwrap();
        assert_eq!((env.created_at_ms, env.fresh_until_ms), (10, 20));
        assert!(env.generations.matches(&gens()));
        assert!(!env.generations.matches(&[Generation(7), Generation(8)]));
        assert!(!env.generations.matches(&[Generation(7)]));
        assert_eq!(&env.payload(&bytes, 1 << 20).unwrap()[..], b"[1,2]");
    }

    #[test]
    fn large_payloads_are_compressed_and_come_back_whole() {
        let payload = "{\"name\":\"course\"}".repeat(1000);
        let bytes = encode(payload.as_bytes(), &gens(), 0, 0, 1024);
        assert!(bytes.len() < payload.len() / 4);
        let env = decode(&bytes).unwrap();
        assert_eq!(env.payload(&bytes, 1 << 20).unwrap(), payload.as_bytes());
    }

    #[test]
    fn garbage_is_reported_corrupt_not_panicking() {
        for garbage in [&b""[..], b"hello world, not an envelope", &[0xCA, 1, 0]] {
            assert!(decode(garbage).is_err());
        }
        let mut bytes = encode(b"x", &gens(), 0, 0, 1024).to_vec();
        bytes.truncate(25);
        assert!(decode(&bytes).is_err());
        let mut lz = encode(&[b'a'; 4096], &gens(), 0, 0, 16).to_vec();
        lz.truncate(lz.len() - 3);
        let bytes = Bytes::from(lz);
        assert!(decode(&bytes).unwrap().payload(&bytes, 1 << 20).is_err());
        let big = encode(&[b'a'; 4096], &gens(), 0, 0, 16);
        assert!(
            decode(&big).unwrap().payload(&big, 1000).is_err(),
            "the size claim was trusted"
        );
    }
}
