//! The Upstash store: Redis over Upstash's REST API, for deployments that cannot open a TCP
//! connection to Redis (serverless, edge), or whose Redis is an Upstash database.
//!
//! Every call is one HTTP request on a kept-alive connection, so one round trip, as with
//! [`RedisStore`](super::RedisStore): a read is one `MGET` (`POST /`); multi-key writes, the lease
//! and its read are one `POST /pipeline`; a release is one `EVAL`. Pattern work uses
//! `SCAN … MATCH … COUNT` and `UNLINK` in batches, never `KEYS`.
//!
//! # Binary values
//!
//! A command is a JSON array of strings, so a request cannot carry arbitrary bytes: entries are
//! stored base64-encoded (standard alphabet). Answers are asked for with
//! `Upstash-Encoding: base64`, so whatever the store holds (even a value another client wrote
//! that is not UTF-8) comes back intact and is judged by the envelope decoder, not mangled
//! by JSON. A value under one of our keys that is not base64 is handed over as it is, and so
//! is a corrupt entry to the cache (a miss, deleted).
//!
//! # The token
//!
//! It is sent as `Authorization: Bearer …` and never appears in `Debug` output, errors or
//! logs. A refused token is [`StoreError::Unauthorized`], logged once as an error until a
//! request succeeds again.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::Value as Json;

use super::scan::{self, Scanned};
use super::{LeaseAttempt, LeaseToken, Read, Store, StoreError, Usage, generation_ttl};
use crate::generation::Generation;

/// Keys asked for per `SCAN` step and deleted per `UNLINK`.
const BATCH: usize = 1000;

/// Deletes a lease only while it holds the releaser's token (the script of the Redis store).
const RELEASE_LEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// The key of `key`'s lease: the same as the Redis store's, so both stores agree on one database.
fn lease_key(key: &str) -> String {
    format!("{key}#lease")
}

/// One command: its name and arguments, serialized as a JSON array of strings.
type Command<'a> = Vec<Cow<'a, str>>;

/// A store on an Upstash database (or anything speaking its REST protocol, such as the
/// workspace's `upstash-gateway`), addressed by its REST URL and token.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct UpstashStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// reqwest keeps connections alive and reuses them, so a call costs one round trip once
    /// the pool is warm.
    client: reqwest::Client,
    /// `POST` one command here.
    single: Url,
    /// `POST` an array of commands here; they run in order, not atomically.
    pipeline: Url,
    /// Set once a refused token was logged, cleared by the next success: one log line per
    /// outage, not one per request.
    refused_logged: AtomicBool,
}

impl fmt::Debug for UpstashStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstashStore")
            .field("url", &self.url())
            .field("token", &"<redacted>")
            .finish()
    }
}

impl UpstashStore {
    /// A store on the database at `url` (`https://…`, or `http://` for a local gateway) with
    /// `token`, with a 1 s connection timeout and a 1 s response timeout. Makes no request.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when `url` is not an HTTP(S) URL or `token` cannot be a header.
    /// A wrong token is not an error here: calls fail with [`StoreError::Unauthorized`].
    pub fn new(url: &str, token: &str) -> Result<Self, StoreError> {
        Self::with_timeouts(url, token, Duration::from_secs(1), Duration::from_secs(1))
    }

    /// Like [`UpstashStore::new`] with the given connection and response timeouts.
    ///
    /// # Errors
    /// As [`UpstashStore::new`].
    pub fn with_timeouts(
        url: &str,
        token: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let base = Url::parse(url.trim_end_matches('/'))
            .ok()
            .filter(|base| matches!(base.scheme(), "http" | "https") && base.has_host())
            .ok_or_else(|| StoreError::Backend("the Upstash URL must be an http(s) URL".into()))?;
        let endpoint = |path: &str| {
            let mut endpoint = base.clone();
            let base_path = base.path().trim_end_matches('/');
            endpoint.set_path(&format!("{base_path}/{path}"));
            endpoint
        };
        let mut authorization = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| StoreError::Backend("the Upstash token is not a valid header".into()))?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("upstash-encoding", HeaderValue::from_static("base64"));
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(connect_timeout)
            .timeout(response_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| {
                StoreError::Backend(format!("cannot build the HTTP client: {error}"))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                single: endpoint(""),
                pipeline: endpoint("pipeline"),
                refused_logged: AtomicBool::new(false),
            }),
        })
    }

    /// The REST URL (it holds no secret: the token travels in a header).
    pub fn url(&self) -> &str {
        self.inner.single.as_str().trim_end_matches('/')
    }

    /// Round-trips a `PING`.
    ///
    /// # Errors
    /// [`StoreError::Unauthorized`] when the token is refused, [`StoreError::Backend`] or
    /// [`StoreError::Timeout`] when the database cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.command(vec!["PING".into()]).await.map(drop)
    }

    /// Runs one command; its result.
    async fn command(&self, command: Command<'_>) -> Result<Json, StoreError> {
        let answer = self.post(&self.inner.single, &command).await?;
        take_result(answer)
    }

    /// Runs commands in order in one request; their results, each checked.
    async fn pipeline(&self, commands: &[Command<'_>]) -> Result<Vec<Json>, StoreError> {
        let answer = self.post(&self.inner.pipeline, commands).await?;
        let Json::Array(answers) = answer else {
            return Err(unexpected("a pipeline answer that is not an array"));
        };
        if answers.len() != commands.len() {
            return Err(unexpected("a pipeline answer of the wrong length"));
        }
        answers.into_iter().map(take_result).collect()
    }

    async fn post(
        &self,
        url: &Url,
        body: &(impl serde::Serialize + ?Sized),
    ) -> Result<Json, StoreError> {
        let body = serde_json::to_vec(body).map_err(|e| StoreError::Backend(e.to_string()))?;
        let response = self
            .inner
            .client
            .post(url.clone())
            .body(body)
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            if !self.inner.refused_logged.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    url = self.url(),
                    %status,
                    "Upstash refused the token: check UPSTASH_REDIS_REST_TOKEN; the cache is \
                     bypassed until it is accepted"
                );
            }
            return Err(StoreError::Unauthorized(format!(
                "Upstash refused the token (HTTP {status})"
            )));
        }
        let body = response.bytes().await.map_err(request_error)?;
        let answer: Option<Json> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let detail = answer
                .as_ref()
                .and_then(|answer| answer.get("error"))
                .and_then(Json::as_str)
                .map(|error| format!(": {error}"))
                .unwrap_or_default();
            return Err(StoreError::Backend(format!(
                "Upstash answered HTTP {status}{detail}"
            )));
        }
        self.inner.refused_logged.store(false, Ordering::Relaxed);
        answer.ok_or_else(|| unexpected("an answer that is not JSON"))
    }
}

impl Scanned for UpstashStore {
    /// One `SCAN` step: the next cursor (0 when done) and a batch of matching keys.
    async fn scan_step(
        &self,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let result = self
            .command(vec![
                "SCAN".into(),
                cursor.to_string().into(),
                "MATCH".into(),
                pattern.into(),
                "COUNT".into(),
                BATCH.to_string().into(),
            ])
            .await?;
        let Json::Array(mut parts) = result else {
            return Err(unexpected("a SCAN answer that is not an array"));
        };
        let (Some(Json::Array(keys)), Some(cursor)) = (parts.pop(), parts.pop()) else {
            return Err(unexpected("a SCAN answer that is not [cursor, keys]"));
        };
        let cursor = decode_text(&cursor)
            .and_then(|cursor| cursor.parse().ok())
            .ok_or_else(|| unexpected("a SCAN cursor that is not a number"))?;
        let keys = keys
            .iter()
            .map(|key| decode_text(key).ok_or_else(|| unexpected("a key that is not text")))
            .collect::<Result<_, _>>()?;
        Ok((cursor, keys))
    }

    /// Sum of `MEMORY USAGE` over `keys`; `None` where the database has no such command.
    async fn memory_usage(&self, keys: &[String]) -> Option<u64> {
        let commands: Vec<Command> = keys
            .iter()
            .map(|key| {
                vec![
                    "MEMORY".into(),
                    "USAGE".into(),
                    key.into(),
                    "SAMPLES".into(),
                    "0".into(),
                ]
            })
            .collect();
        let sizes = self.pipeline(&commands).await.ok()?;
        Some(sizes.iter().filter_map(Json::as_u64).sum())
    }
}

fn request_error(error: reqwest::Error) -> StoreError {
    if error.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::Backend(format!("Upstash request failed: {error}"))
    }
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Backend(format!("Upstash answered {what}"))
}

/// The result of one `{"result": …}` or `{"error": "…"}`.
fn take_result(answer: Json) -> Result<Json, StoreError> {
    let Json::Object(mut answer) = answer else {
        return Err(unexpected("something that is not an object"));
    };
    if let Some(error) = answer.remove("error") {
        let error = error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_owned);
        return Err(StoreError::Backend(format!("Upstash: {error}")));
    }
    answer
        .remove("result")
        .ok_or_else(|| unexpected("an object with neither result nor error"))
}

/// A bulk string of a base64-encoded answer: `None` for nil, an error for anything else.
fn decode_bulk(value: &Json) -> Result<Option<Vec<u8>>, StoreError> {
    match value {
        Json::Null => Ok(None),
        Json::String(encoded) => BASE64
            .decode(encoded)
            .map(Some)
            .map_err(|_| unexpected("a string that is not base64")),
        _ => Err(unexpected("a value that is neither a string nor nil")),
    }
}

fn decode_text(value: &Json) -> Option<String> {
    String::from_utf8(decode_bulk(value).ok()??).ok()
}

/// A stored entry from its bytes in the database: base64 of the envelope, as written by
/// [`UpstashStore::set`]; anything else is handed over as it is (and fails to decode).
fn decode_entry(stored: Vec<u8>) -> Bytes {
    match BASE64.decode(&stored) {
        Ok(entry) => Bytes::from(entry),
        Err(_) => Bytes::from(stored),
    }
}

fn parse_generation(value: &Json) -> Result<Option<Generation>, StoreError> {
    Ok(decode_bulk(value)?
        .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.parse().ok())
        .map(Generation::from_bits))
}

/// An `MGET` of an entry and its generations.
fn parse_read(result: Json, generation_keys: usize) -> Result<Read, StoreError> {
    let Json::Array(values) = result else {
        return Err(unexpected("an MGET answer that is not an array"));
    };
    if values.len() != generation_keys + 1 {
        return Err(unexpected("an MGET answer of the wrong length"));
    }
    let entry = decode_bulk(&values[0])?.map(decode_entry);
    let generations = values[1..]
        .iter()
        .map(parse_generation)
        .collect::<Result<_, _>>()?;
    Ok(Read { entry, generations })
}

fn mget<'a>(key: &'a str, generation_keys: &[&'a str]) -> Command<'a> {
    let mut command: Command = Vec::with_capacity(generation_keys.len() + 2);
    command.push("MGET".into());
    command.push(key.into());
    command.extend(generation_keys.iter().map(|&key| Cow::Borrowed(key)));
    command
}

/// `ttl` in milliseconds for `PX` and `PEXPIRE`, which take no zero.
fn ttl_millis(ttl: Duration) -> Cow<'static, str> {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
        .to_string()
        .into()
}

impl Store for UpstashStore {
    async fn read(&self, key: &str, generation_keys: &[&str]) -> Result<Read, StoreError> {
        let result = self.command(mget(key, generation_keys)).await?;
        parse_read(result, generation_keys.len())
    }

    async fn ensure_generations(
        &self,
        keys: &[&str],
        ttl: Duration,
    ) -> Result<Vec<Generation>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ttl = ttl_millis(generation_ttl(ttl));
        let fresh: Vec<Generation> = keys.iter().map(|_| Generation::random()).collect();
        let commands: Vec<Command> = keys
            .iter()
            .zip(&fresh)
            .map(|(&key, generation)| {
                let bits = generation.to_bits().to_string();
                vec![
                    "SET".into(),
                    key.into(),
                    bits.into(),
                    "NX".into(),
                    "GET".into(),
                    "PX".into(),
                    ttl.clone(),
                ]
            })
            .collect();
        let previous = self.pipeline(&commands).await?;
        let mut generations = Vec::with_capacity(keys.len());
        let mut rewrite: Vec<Command> = Vec::new();
        for ((key, fresh), previous) in keys.iter().zip(fresh).zip(&previous) {
            match previous {
                Json::Null => generations.push(fresh),
                other => match parse_generation(other)? {
                    Some(existing) => generations.push(existing),
                    None => {
                        // Not written by us: replace it, which also invalidates its entries.
                        let bits = fresh.to_bits().to_string();
                        rewrite.push(vec![
                            "SET".into(),
                            (*key).into(),
                            bits.into(),
                            "PX".into(),
                            ttl.clone(),
                        ]);
                        generations.push(fresh);
                    }
                },
            }
        }
        if !rewrite.is_empty() {
            self.pipeline(&rewrite).await?;
        }
        Ok(generations)
    }

    async fn bump_generations(&self, keys: &[&str]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        // XX: only a generation that exists is replaced (see `Store::bump_generations`);
        // KEEPTTL: it is still needed exactly as long as the entries that extended it.
        let commands: Vec<Command> = keys
            .iter()
            .map(|&key| {
                let bits = Generation::random().to_bits().to_string();
                vec![
                    "SET".into(),
                    key.into(),
                    bits.into(),
                    "XX".into(),
                    "KEEPTTL".into(),
                ]
            })
            .collect();
        self.pipeline(&commands).await.map(drop)
    }

    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Duration,
        generation_keys: &[&str],
    ) -> Result<(), StoreError> {
        let mut commands: Vec<Command> = Vec::with_capacity(generation_keys.len() + 1);
        commands.push(vec![
            "SET".into(),
            key.into(),
            BASE64.encode(&value).into(),
            "PX".into(),
            ttl_millis(ttl),
        ]);
        let generation_ttl = ttl_millis(generation_ttl(ttl));
        for &generation_key in generation_keys {
            // GT: never shortens what a longer-lived entry needs; a key gone meanwhile stays
            // gone (PEXPIRE creates nothing), so the entry just misses.
            commands.push(vec![
                "PEXPIRE".into(),
                generation_key.into(),
                generation_ttl.clone(),
                "GT".into(),
            ]);
        }
        self.pipeline(&commands).await.map(drop)
    }

    async fn try_lease(
        &self,
        key: &str,
        generation_keys: &[&str],
        ttl: Duration,
    ) -> Result<LeaseAttempt, StoreError> {
        let token = LeaseToken::random();
        // In this order: the read must come after the lease (see `Store::try_lease`).
        let commands = [
            vec![
                "SET".into(),
                lease_key(key).into(),
                token.0.to_string().into(),
                "NX".into(),
                "PX".into(),
                ttl_millis(ttl),
            ],
            mget(key, generation_keys),
        ];
        let mut results = self.pipeline(&commands).await?;
        let read = parse_read(results.pop().unwrap_or_default(), generation_keys.len())?;
        let granted = results.pop().is_some_and(|granted| !granted.is_null());
        Ok(LeaseAttempt {
            token: granted.then_some(token),
            read,
        })
    }

    async fn release_lease(&self, key: &str, token: LeaseToken) -> Result<(), StoreError> {
        // EVAL rather than EVALSHA: the script is short, and a database that lost its script
        // cache would cost a second round trip.
        self.command(vec![
            "EVAL".into(),
            RELEASE_LEASE.into(),
            "1".into(),
            lease_key(key).into(),
            token.0.to_string().into(),
        ])
        .await
        .map(drop)
    }

    async fn delete(&self, keys: &[&str]) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for chunk in keys.chunks(BATCH) {
            let mut command: Command = vec!["UNLINK".into()];
            command.extend(chunk.iter().map(|&key| Cow::Borrowed(key)));
            deleted += self
                .command(command)
                .await?
                .as_u64()
                .ok_or_else(|| unexpected("an UNLINK count that is not a number"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let store = UpstashStore::new("https://example.upstash.io/", "s3cret-token").unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("s3cret-token"), "{debug}");
        assert!(debug.contains("https://example.upstash.io"), "{debug}");
    }

    #[test]
    fn only_http_urls_are_accepted_and_the_error_names_no_token() {
        for url in ["redis://127.0.0.1:6379", "example.upstash.io", ""] {
            let error = UpstashStore::new(url, "s3cret-token")
                .unwrap_err()
                .to_string();
            assert!(!error.contains("s3cret-token"), "{error}");
        }
    }

    #[test]
    fn entries_round_trip_through_base64_and_foreign_values_pass_as_they_are() {
        let envelope = vec![0u8, 0xff, 0x80, b'{', b'}'];
        let stored = BASE64.encode(&envelope).into_bytes();
        assert_eq!(decode_entry(stored), Bytes::from(envelope));
        assert_eq!(
            decode_entry(b"not base64!".to_vec()),
            Bytes::from_static(b"not base64!")
        );
    }

    #[test]
    fn an_answer_is_a_result_or_an_error() {
        assert_eq!(take_result(serde_json::json!({"result": 1})).unwrap(), 1);
        assert!(take_result(serde_json::json!({"error": "ERR nope"})).is_err());
        assert!(take_result(serde_json::json!({"nothing": 1})).is_err());
        assert!(take_result(serde_json::json!([1])).is_err());
    }

    #[test]
    fn a_read_answer_of_the_wrong_shape_is_an_error_not_a_miss() {
        assert!(parse_read(serde_json::json!([null]), 1).is_err());
        assert!(parse_read(serde_json::json!("x"), 0).is_err());
        assert!(parse_read(serde_json::json!([42]), 0).is_err());
        let read = parse_read(serde_json::json!([null, BASE64.encode("7")]), 1).unwrap();
        assert_eq!(read.entry, None);
        assert_eq!(
            read.generations.as_slice(),
            &[Some(Generation::from_bits(7))]
        );
    }
}
