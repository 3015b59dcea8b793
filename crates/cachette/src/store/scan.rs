//! The walks over a `SCAN` cursor that the Redis stores share, whether they speak RESP
//! ([`super::redis`]) or REST ([`super::upstash`]): a store gives one step and a size, these
//! list, delete and measure a namespace from them, never with `KEYS`.

use std::future::Future;

use super::{Store, StoreError, Usage};

/// A store whose keys are walked with Redis's `SCAN`.
pub(super) trait Scanned: Store {
    /// One `SCAN` step from `cursor`: the next cursor (0 when done) and a batch of matching
    /// keys.
    fn scan_step(
        &self,
        cursor: u64,
        pattern: &str,
    ) -> impl Future<Output = Result<(u64, Vec<String>), StoreError>> + Send;

    /// Sum of `MEMORY USAGE` over `keys`; `None` where the server has no such command.
    fn memory_usage(&self, keys: &[String]) -> impl Future<Output = Option<u64>> + Send;
}

/// Up to `limit` keys matching `pattern`.
pub(super) async fn keys(
    store: &impl Scanned,
    pattern: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut found = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, keys) = store.scan_step(cursor, pattern).await?;
        found.extend(keys);
        if next == 0 || found.len() >= limit {
            found.truncate(limit);
            return Ok(found);
        }
        cursor = next;
    }
}

/// Deletes every key matching `pattern`, a batch per step; how many were deleted.
pub(super) async fn delete_matching(
    store: &impl Scanned,
    pattern: &str,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    let mut cursor = 0;
    loop {
        let (next, keys) = store.scan_step(cursor, pattern).await?;
        if !keys.is_empty() {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            deleted += store.delete(&keys).await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// How many keys match `pattern`, and the bytes they take when the server tells.
pub(super) async fn usage(store: &impl Scanned, pattern: &str) -> Result<Usage, StoreError> {
    let mut usage = Usage {
        keys: 0,
        bytes: Some(0),
    };
    let mut cursor = 0;
    loop {
        let (next, keys) = store.scan_step(cursor, pattern).await?;
        usage.keys += keys.len() as u64;
        if usage.bytes.is_some() && !keys.is_empty() {
            let batch = store.memory_usage(&keys).await;
            usage.bytes = usage.bytes.zip(batch).map(|(total, batch)| total + batch);
        }
        if next == 0 {
            return Ok(usage);
        }
        cursor = next;
    }
}
