//! The Redis store: one multiplexed connection that reconnects by itself.
//!
//! Every call is one round trip: reads are a single `MGET` of the entry and its generations;
//! multi-key writes are pipelined. Pattern work uses `SCAN … MATCH … COUNT` and `UNLINK` in
//! batches, never `KEYS`. Generation creation uses `SET … NX GET` and storing an entry extends
//! its generations with `PEXPIRE … GT` (Redis 7 or later, or Valkey).
//!
//! A key's lease lives under `<key>#lease` (`SET … NX PX`), and is released by a Lua script
//! that deletes it only while it holds the releaser's token.

use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, ServerErrorKind, Value};

use super::scan::{self, Scanned};
use super::{LeaseAttempt, LeaseToken, Read, Store, StoreError, Usage, generation_ttl};
use crate::generation::Generation;

/// Keys asked for per `SCAN` step and deleted per `UNLINK`.
const BATCH: usize = 1000;

/// Deletes a lease only while it holds the releaser's token: a lease that expired and was taken
/// by another caller is theirs.
const RELEASE_LEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// SHA-1 of the release script, for `EVALSHA` (a test checks that the server knows it so).
pub const RELEASE_LEASE_SHA: &str = "6fbe84d1140fd2047394924af9d845b83c070bec";

/// The key of `key`'s lease. `#` never appears in a key or tag but before the digest that ends
/// a shortened one (see [`crate::key`]), so this is nobody else's key; a suffix such as
/// `:lease` could be (a key built under the prefix `…:lease`).
fn lease_key(key: &str) -> String {
    format!("{key}#lease")
}

/// A store on a Redis server, addressed by a `redis://` or `rediss://` (TLS) URL.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    /// A `ConnectionManager` rather than a pool: one multiplexed connection pipelines all
    /// concurrent requests, and it reconnects in the background after a failure.
    conn: ConnectionManager,
}

impl RedisStore {
    /// A store on the server at `url`, connecting lazily on first use, with a 1 s connection
    /// timeout and a 1 s response timeout. Needs a Tokio runtime.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when `url` is not a valid Redis URL. An unreachable server is not
    /// an error here: calls fail (and the cache falls back) until it can be reached.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::with_timeouts(url, Duration::from_secs(1), Duration::from_secs(1))
    }

    /// Like [`RedisStore::new`] with the given connection and response timeouts.
    ///
    /// # Errors
    /// As [`RedisStore::new`].
    pub fn with_timeouts(
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(backend)?;
        Ok(Self { conn })
    }

    /// Round-trips a `PING`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the server cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(backend)
    }

    /// The underlying connection, for callers that need other commands.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        cmd.query_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }

    async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        pipe.query_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }
}

impl Scanned for RedisStore {
    /// One `SCAN` step: the next cursor (0 when done) and a batch of matching keys.
    async fn scan_step(
        &self,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<String>), StoreError> {
        self.query(
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(BATCH),
        )
        .await
    }

    /// Sum of `MEMORY USAGE` over `keys`; `None` where the server has no such command.
    async fn memory_usage(&self, keys: &[String]) -> Option<u64> {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0);
        }
        let sizes: Vec<Option<u64>> = self.query_pipe(&pipe).await.ok()?;
        Some(sizes.into_iter().flatten().sum())
    }
}

fn backend(error: redis::RedisError) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// An `MGET` of an entry and its generations.
fn parse_read(values: Vec<Value>) -> Read {
    let mut values = values.into_iter();
    let entry = match values.next() {
        Some(Value::BulkString(bytes)) => Some(Bytes::from(bytes)),
        _ => None,
    };
    Read {
        entry,
        generations: values.map(|v| parse_generation(&v)).collect(),
    }
}

fn parse_generation(value: &Value) -> Option<Generation> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes)
            .ok()?
            .parse()
            .ok()
            .map(Generation::from_bits),
        _ => None,
    }
}

/// `ttl` for `PX` and `PEXPIRE`, which take no zero.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store for RedisStore {
    async fn read(&self, key: &str, generation_keys: &[&str]) -> Result<Read, StoreError> {
        let values: Vec<Value> = self
            .query(redis::cmd("MGET").arg(key).arg(generation_keys))
            .await?;
        Ok(parse_read(values))
    }

    async fn ensure_generations(
        &self,
        keys: &[&str],
        ttl: Duration,
    ) -> Result<Vec<Generation>, StoreError> {
        let ttl = ttl_millis(generation_ttl(ttl));
        let fresh: Vec<Generation> = keys.iter().map(|_| Generation::random()).collect();
        let mut pipe = redis::pipe();
        for (key, generation) in keys.iter().zip(&fresh) {
            pipe.cmd("SET")
                .arg(*key)
                .arg(generation.to_bits())
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(ttl);
        }
        let previous: Vec<Value> = self.query_pipe(&pipe).await?;
        let mut generations = Vec::with_capacity(keys.len());
        let mut unreadable = Vec::new();
        for ((key, fresh), previous) in keys.iter().zip(fresh).zip(&previous) {
            match previous {
                Value::Nil => generations.push(fresh),
                other => match parse_generation(other) {
                    Some(existing) => generations.push(existing),
                    None => {
                        // Not written by us: replace it, which also invalidates its entries.
                        unreadable.push(*key);
                        generations.push(fresh);
                    }
                },
            }
        }
        if !unreadable.is_empty() {
            let mut pipe = redis::pipe();
            for (key, generation) in keys.iter().zip(&generations) {
                if unreadable.contains(key) {
                    pipe.cmd("SET")
                        .arg(*key)
                        .arg(generation.to_bits())
                        .arg("PX")
                        .arg(ttl)
                        .ignore();
                }
            }
            self.query_pipe::<()>(&pipe).await?;
        }
        Ok(generations)
    }

    async fn bump_generations(&self, keys: &[&str]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for key in keys {
            // XX: only a generation that exists is replaced (see `Store::bump_generations`);
            // KEEPTTL: it is still needed exactly as long as the entries that extended it.
            pipe.cmd("SET")
                .arg(*key)
                .arg(Generation::random().to_bits())
                .arg("XX")
                .arg("KEEPTTL")
                .ignore();
        }
        self.query_pipe(&pipe).await
    }

    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
        generation_keys: &[&str],
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(key)
            .arg(value.as_ref())
            .arg("PX")
            .arg(ttl_millis(ttl))
            .ignore();
        let generation_ttl = ttl_millis(generation_ttl(ttl));
        for generation_key in generation_keys {
            // GT: never shortens what a longer-lived entry needs; a key gone meanwhile stays
            // gone (PEXPIRE creates nothing), so the entry just misses.
            pipe.cmd("PEXPIRE")
                .arg(*generation_key)
                .arg(generation_ttl)
                .arg("GT")
                .ignore();
        }
        self.query_pipe(&pipe).await
    }

    async fn try_lease(
        &self,
        key: &str,
        generation_keys: &[&str],
        ttl: Duration,
    ) -> Result<LeaseAttempt, StoreError> {
        let token = LeaseToken::random();
        let mut pipe = redis::pipe();
        // In this order: the read must come after the lease (see `Store::try_lease`).
        pipe.cmd("SET")
            .arg(lease_key(key))
            .arg(token.0)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl));
        pipe.cmd("MGET").arg(key).arg(generation_keys);
        let (granted, values): (Value, Vec<Value>) = self.query_pipe(&pipe).await?;
        Ok(LeaseAttempt {
            token: (granted != Value::Nil).then_some(token),
            read: parse_read(values),
        })
    }

    async fn release_lease(&self, key: &str, token: LeaseToken) -> Result<(), StoreError> {
        let lease_key = lease_key(key);
        let released = redis::cmd("EVALSHA")
            .arg(RELEASE_LEASE_SHA)
            .arg(1)
            .arg(&lease_key)
            .arg(token.0)
            .query_async::<u64>(&mut self.conn.clone())
            .await;
        match released {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                // The server lost its script cache (restarted, flushed): EVAL loads it again.
                self.query::<u64>(
                    redis::cmd("EVAL")
                        .arg(RELEASE_LEASE)
                        .arg(1)
                        .arg(&lease_key)
                        .arg(token.0),
                )
                .await
                .map(drop)
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn delete(&self, keys: &[&str]) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for chunk in keys.chunks(BATCH) {
            deleted += self.query::<u64>(redis::cmd("UNLINK").arg(chunk)).await?;
        }
        Ok(deleted)
    }

    async fn scan(&self, pattern: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        scan::keys(self, pattern, limit).await
    }

    async fn delete_matching(&self, pattern: &str) -> Result<u64, StoreError> {
        scan::delete_matching(self, pattern).await
    }

    async fn usage(&self, pattern: &str) -> Result<Usage, StoreError> {
        scan::usage(self, pattern).await
    }
}
