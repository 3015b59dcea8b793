//! How cached values become payloads and back.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The stored layout of one type of value.
///
/// `decode` should reject what `encode` could not have written: a payload it cannot decode is a
/// corrupt entry, which the cache deletes and treats as a miss. A codec may instead check parts
/// of a large value only when they are used (to keep hits cheap); its caller then deletes an
/// entry found unusable with [`Cache::discard`](crate::Cache::discard).
pub trait Codec<T> {
    /// The payload to store, or `None` to serve `value` without storing it.
    fn encode(&self, value: &T) -> Option<Bytes>;
    /// The value of a stored payload, or `None` when the payload is not one.
    fn decode(&self, payload: &Bytes) -> Option<T>;
}

/// Values stored as JSON (serde).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(&self, value: &T) -> Option<Bytes> {
        serde_json::to_vec(value).ok().map(Bytes::from)
    }
    fn decode(&self, payload: &Bytes) -> Option<T> {
        serde_json::from_slice(payload).ok()
    }
}

/// Payloads stored as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec<Bytes> for Raw {
    fn encode(&self, value: &Bytes) -> Option<Bytes> {
        Some(value.clone())
    }
    fn decode(&self, payload: &Bytes) -> Option<Bytes> {
        Some(payload.clone())
    }
}
