//! cachette's envelope: any bytes decode or are refused without panicking or allocating more
//! than the payload limit, and what `encode` writes decodes to what it was given.
//!
//! The first byte picks the mode: even, the rest is read as a stored entry; odd, the rest is
//! turned into an entry to encode and read back.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use cachette::Generation;
use cachette::internals::{decode, encode};
use libfuzzer_sys::fuzz_target;

/// The payload limit the decoder is given: a compressed payload claiming more is refused before
/// anything is allocated.
const MAX_LEN: usize = 1 << 20;

#[derive(Arbitrary, Debug)]
struct Entry {
    payload: Vec<u8>,
    generations: Vec<u64>,
    created_at_ms: u64,
    fresh_until_ms: u64,
    compress_above: u8,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        decode_any(rest);
    } else if let Ok(entry) = Entry::arbitrary_take_rest(Unstructured::new(rest)) {
        round_trip(&entry);
    }
});

fn decode_any(raw: &[u8]) {
    let bytes = Bytes::copy_from_slice(raw);
    let Ok(envelope) = decode(&bytes) else {
        return;
    };
    // The header says how many generations follow; they are read back as written.
    let count = usize::from(u16::from_le_bytes([raw[19], raw[20]]));
    let stored: Vec<Generation> = raw[21..21 + 8 * count]
        .chunks_exact(8)
        .map(|g| Generation::from_bits(u64::from_le_bytes(g.try_into().unwrap())))
        .collect();
    assert_eq!(envelope.generations.len(), count);
    assert_eq!(envelope.generations.is_empty(), count == 0);
    assert!(envelope.generations.matches(&stored));
    assert_eq!(
        envelope.created_at_ms,
        u64::from_le_bytes(raw[3..11].try_into().unwrap())
    );
    assert_eq!(
        envelope.fresh_until_ms,
        u64::from_le_bytes(raw[11..19].try_into().unwrap())
    );
    let compressed = raw[2] & 1 != 0;
    match envelope.payload(&bytes, MAX_LEN) {
        Ok(payload) if compressed => assert!(payload.len() <= MAX_LEN),
        Ok(payload) => assert_eq!(&payload[..], &raw[21 + 8 * count..]),
        Err(_) => assert!(compressed, "an uncompressed payload is always readable"),
    }
}

fn round_trip(entry: &Entry) {
    let generations: Vec<Generation> = entry
        .generations
        .iter()
        .copied()
        .map(Generation::from_bits)
        .collect();
    let bytes = encode(
        &entry.payload,
        &generations,
        entry.created_at_ms,
        entry.fresh_until_ms,
        usize::from(entry.compress_above),
    );
    let envelope = decode(&bytes).expect("an encoded entry decodes");
    assert_eq!(envelope.created_at_ms, entry.created_at_ms);
    assert_eq!(envelope.fresh_until_ms, entry.fresh_until_ms);
    assert_eq!(envelope.generations.len(), generations.len());
    assert!(envelope.generations.matches(&generations));
    let payload = envelope
        .payload(&bytes, entry.payload.len())
        .expect("an encoded payload is readable with its own length as the limit");
    assert_eq!(&payload[..], &entry.payload[..]);
    if entry.payload.len() > usize::from(entry.compress_above) && bytes[2] & 1 != 0 {
        // A compressed payload is refused when the limit is below its size.
        assert!(envelope.payload(&bytes, entry.payload.len() - 1).is_err());
    }
}
