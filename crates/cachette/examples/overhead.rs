//! What a cache hit costs beside the store's own read.
//!
//! ```text
//! cargo run --release -p cachette --example overhead -- [--json] [--redis-url URL] [--upstash]
//! ```
//!
//! Measures, in one run, the median cost of a raw `get_or_fetch` hit of a ~2 KB value (one tag)
//! on the memory store beside a plain moka `get` of the same value, and on the Redis store beside
//! a plain `GET` on the same connection. Each figure is the median over many rounds of many
//! calls; rounds of the compared operations alternate, so machine noise hits both alike.
//!
//! With `--upstash`, also on the Upstash store through an `upstash-gateway` it starts over the
//! same Redis (on a runtime of its own), beside a plain REST `GET` of the same value through the
//! gateway.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cachette::{Cache, MemoryStore, Namespace, Policy, RedisStore, Store};

/// The policy of the measured entries: five minutes, never expiring during a run.
const PAGES: Policy = Policy::new("pages", Duration::from_secs(300));
const MEMORY_ROUNDS: usize = 101;
const MEMORY_CALLS: u32 = 20_000;
const REDIS_ROUNDS: usize = 41;
const REDIS_CALLS: u32 = 250;

fn main() {
    let mut json = false;
    let mut redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut upstash = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--redis-url" => redis_url = args.next().expect("--redis-url takes a URL"),
            "--upstash" => upstash = true,
            other => {
                eprintln!("unknown argument {other:?}; usage: overhead [--json] [--redis-url URL]");
                std::process::exit(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let figures = runtime.block_on(measure(&redis_url));
    let upstash = upstash.then(|| measure_upstash(&runtime, &redis_url));
    if json {
        println!(
            "{{\"memory_hit_ns\":{:.1},\"moka_get_ns\":{:.1},\"memory_ratio\":{:.2},\"redis_hit_us\":{:.2},\"redis_get_us\":{:.2},\"redis_ratio\":{:.3}}}",
            figures.memory_hit_ns,
            figures.moka_get_ns,
            figures.memory_hit_ns / figures.moka_get_ns,
            figures.redis_hit_us,
            figures.redis_get_us,
            figures.redis_hit_us / figures.redis_get_us,
        );
    } else {
        println!("value: {} bytes, one tag", value().len());
        println!(
            "memory store hit  {:>9.1} ns   moka get   {:>9.1} ns   ratio {:.2} (target <= 3)",
            figures.memory_hit_ns,
            figures.moka_get_ns,
            figures.memory_hit_ns / figures.moka_get_ns
        );
        println!(
            "redis store hit   {:>9.2} us   redis GET  {:>9.2} us   ratio {:.3} (target <= 1.3)",
            figures.redis_hit_us,
            figures.redis_get_us,
            figures.redis_hit_us / figures.redis_get_us
        );
    }
    if let Some((hit_us, get_us)) = upstash {
        println!(
            "upstash store hit {hit_us:>9.2} us   REST GET   {get_us:>9.2} us   ratio {:.3}; {:.2}x the redis store hit",
            hit_us / get_us,
            hit_us / figures.redis_hit_us
        );
    }
}

/// The Upstash store's hit beside a plain REST `GET` of the same value, through a gateway on a
/// runtime of its own (so that serving does not share this thread); in microseconds.
fn measure_upstash(runtime: &tokio::runtime::Runtime, redis_url: &str) -> (f64, f64) {
    let token = format!("overhead-{:x}", rand::random::<u64>());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (url, gateway_token) = (redis_url.to_owned(), token.clone());
    std::thread::spawn(move || {
        let gateway = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        gateway.block_on(async {
            addr_tx
                .send(upstash_gateway::spawn(&url, &gateway_token).await.unwrap())
                .unwrap();
            std::future::pending::<()>().await
        });
    });
    let base = format!("http://{}", addr_rx.recv().unwrap());
    runtime.block_on(async {
        let namespace =
            Namespace::new(&format!("overhead-{:x}", rand::random::<u32>()), 1).unwrap();
        let body = value();
        let store = cachette::UpstashStore::new(&base, &token).unwrap();
        let cache = Cache::builder(store, namespace).build();
        let key = cache.key("courses").param("page", 1).build();
        let tags = [cache.tag("courses")];
        let fill = || async { Ok::<_, Infallible>(body.clone()) };
        cache
            .get_or_fetch_raw(&key, &tags, &PAGES, fill)
            .await
            .unwrap();
        let plain_key = format!("{}plain", cache.namespace().prefix());
        let client = reqwest::Client::new();
        let rest = |command: serde_json::Value| {
            client
                .post(&base)
                .bearer_auth(&token)
                .header("Upstash-Encoding", "base64")
                .json(&command)
                .send()
        };
        let plain_value = String::from_utf8(body.to_vec()).unwrap();
        rest(serde_json::json!(["SET", plain_key, plain_value]))
            .await
            .unwrap();
        let (mut hit_rounds, mut get_rounds) = (Vec::new(), Vec::new());
        for _ in 0..REDIS_ROUNDS {
            hit_rounds.push(
                time_round(REDIS_CALLS, async || {
                    let fetched = cache
                        .get_or_fetch_raw(&key, &tags, &PAGES, fill)
                        .await
                        .unwrap();
                    assert_eq!(fetched.outcome, cachette::Outcome::Hit);
                    black_box(fetched);
                })
                .await,
            );
            get_rounds.push(
                time_round(REDIS_CALLS, async || {
                    let answer = rest(serde_json::json!(["GET", plain_key])).await.unwrap();
                    black_box(answer.bytes().await.unwrap());
                })
                .await,
            );
        }
        cache.clear().await.unwrap();
        cache.store().delete(&[plain_key.as_str()]).await.unwrap();
        (
            median(hit_rounds).as_secs_f64() * 1e6,
            median(get_rounds).as_secs_f64() * 1e6,
        )
    })
}

struct Figures {
    memory_hit_ns: f64,
    moka_get_ns: f64,
    redis_hit_us: f64,
    redis_get_us: f64,
}

/// A ~2 KB JSON body, like a page of courses.
fn value() -> Bytes {
    let items: Vec<String> = (0..25)
        .map(|i| format!(r#"{{"id":"course-{i:04}","name":"Course number {i}","state":"PUBLISHED","lessons":12}}"#))
        .collect();
    Bytes::from(format!(r#"{{"data":[{}],"total":25}}"#, items.join(",")))
}

async fn measure(redis_url: &str) -> Figures {
    let namespace = Namespace::new(&format!("overhead-{:x}", rand::random::<u32>()), 1).unwrap();
    let body = value();

    // Memory: the cache beside a plain moka cache holding the same bytes.
    let memory = Cache::builder(MemoryStore::default(), namespace.clone()).build();
    let key = memory.key("courses").param("page", 1).build();
    let tags = [memory.tag("courses")];
    let fill = || async { Ok::<_, Infallible>(body.clone()) };
    memory
        .get_or_fetch_raw(&key, &tags, &PAGES, fill)
        .await
        .unwrap();
    let moka: moka::sync::Cache<String, Bytes> = moka::sync::Cache::new(10_000);
    moka.insert(key.as_str().to_owned(), body.clone());

    let (mut hit_rounds, mut moka_rounds) = (Vec::new(), Vec::new());
    for _ in 0..MEMORY_ROUNDS {
        hit_rounds.push(
            time_round(MEMORY_CALLS, async || {
                let fetched = memory
                    .get_or_fetch_raw(&key, &tags, &PAGES, fill)
                    .await
                    .unwrap();
                black_box(fetched);
            })
            .await,
        );
        moka_rounds.push(
            time_round(MEMORY_CALLS, async || {
                black_box(moka.get(black_box(key.as_str())));
            })
            .await,
        );
    }

    // Redis: the cache beside a plain GET on the same connection.
    let store = RedisStore::new(redis_url).expect("a valid Redis URL");
    if let Err(error) = store.ping().await {
        eprintln!("Redis is not reachable at {redis_url}: {error}");
        std::process::exit(1);
    }
    let mut conn = store.connection();
    let redis = Cache::builder(store, namespace).build();
    redis
        .get_or_fetch_raw(&key, &tags, &PAGES, fill)
        .await
        .unwrap();
    let plain_key = format!("{}plain", redis.namespace().prefix());
    redis::cmd("SET")
        .arg(&plain_key)
        .arg(body.as_ref())
        .exec_async(&mut conn)
        .await
        .unwrap();
    let (mut redis_hit_rounds, mut redis_get_rounds) = (Vec::new(), Vec::new());
    for _ in 0..REDIS_ROUNDS {
        redis_hit_rounds.push(
            time_round(REDIS_CALLS, async || {
                let fetched = redis
                    .get_or_fetch_raw(&key, &tags, &PAGES, fill)
                    .await
                    .unwrap();
                assert_eq!(fetched.outcome, cachette::Outcome::Hit);
                black_box(fetched);
            })
            .await,
        );
        let mut conn = conn.clone();
        redis_get_rounds.push(
            time_round(REDIS_CALLS, async || {
                let got: Bytes = redis::cmd("GET")
                    .arg(&plain_key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                black_box(got);
            })
            .await,
        );
    }
    redis.clear().await.unwrap();
    redis.store().delete(&[plain_key.as_str()]).await.unwrap();

    Figures {
        memory_hit_ns: median(hit_rounds).as_secs_f64() * 1e9,
        moka_get_ns: median(moka_rounds).as_secs_f64() * 1e9,
        redis_hit_us: median(redis_hit_rounds).as_secs_f64() * 1e6,
        redis_get_us: median(redis_get_rounds).as_secs_f64() * 1e6,
    }
}

/// The mean time of one call over a round of `calls` calls.
async fn time_round(calls: u32, mut call: impl AsyncFnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..calls {
        call().await;
    }
    started.elapsed() / calls
}

fn median(mut rounds: Vec<Duration>) -> Duration {
    rounds.sort_unstable();
    rounds[rounds.len() / 2]
}
