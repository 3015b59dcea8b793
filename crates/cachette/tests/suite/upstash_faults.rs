//! An Upstash endpoint that answers garbage, an error, a non-JSON body, a 5xx, a 401 or nothing
//! at all: every lookup still answers, from the fetch (`BYPASS`), the failures open the breaker,
//! and the token shows in no error.

use std::convert::Infallible;
use std::time::Duration;

use cachette::{Cache, Config, Outcome, Store, StoreError, UpstashStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{FIVE_MINUTES, redis_url, unique_namespace};

const TOKEN: &str = "tok-never-printed-0123456789";
const STORE_TIMEOUT: Duration = Duration::from_millis(300);

/// What the fake endpoint does with each request.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Answers these raw bytes (status line, headers and body), then closes.
    Answer(&'static str),
    /// Reads the request and never answers.
    Silence,
}

/// A local HTTP endpoint that misbehaves in one way; its base URL.
async fn faulty_endpoint(fault: Fault) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = [0u8; 16 << 10];
                let _ = socket.read(&mut request).await;
                match fault {
                    Fault::Answer(raw) => {
                        let _ = socket.write_all(raw.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                    Fault::Silence => tokio::time::sleep(Duration::from_secs(3600)).await,
                }
            });
        }
    });
    format!("http://{addr}")
}

fn cache_on(url: &str) -> Cache<UpstashStore> {
    let store = UpstashStore::with_timeouts(url, TOKEN, STORE_TIMEOUT, STORE_TIMEOUT).unwrap();
    Cache::builder(store, unique_namespace())
        .config(Config {
            store_timeout: STORE_TIMEOUT,
            failure_threshold: 3,
            open_for: Duration::from_secs(60),
            ..Config::default()
        })
        .build()
}

/// Lookups answer from the fetch, each a bypass, and the failures open the breaker; the store's
/// own error names no token. Returns that error.
async fn degrades_to_the_fetch(url: &str) -> StoreError {
    let cache = cache_on(url);
    for i in 0..5u32 {
        let key = cache.key("k").param("i", i).build();
        let fetched = tokio::time::timeout(
            Duration::from_secs(10),
            cache.get_or_fetch(&key, &[cache.tag("t")], &FIVE_MINUTES, || async {
                Ok::<_, Infallible>(i)
            }),
        )
        .await
        .expect("a lookup never hangs")
        .unwrap();
        assert_eq!((fetched.outcome, fetched.value), (Outcome::Bypass, i));
    }
    assert!(cache.stats().errors >= 3, "{:?}", cache.stats());
    assert!(cache.is_circuit_open(), "the breaker counted no failure");
    let error = cache.store().read("k", &["g"]).await.unwrap_err();
    assert!(!error.to_string().contains(TOKEN), "{error}");
    assert!(!format!("{error:?}").contains(TOKEN), "{error:?}");
    error
}

fn http(status: &str, body: &str) -> &'static str {
    let raw = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    Box::leak(raw.into_boxed_str())
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_store_failure() {
    let url = faulty_endpoint(Fault::Answer(http("200 OK", "<html>hello</html>"))).await;
    let error = degrades_to_the_fetch(&url).await;
    assert!(error.to_string().contains("not JSON"), "{error}");
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_store_failure() {
    for body in [
        r#"{"result":42}"#,
        "[1,2,3]",
        r#"{"result":["not base64!"]}"#,
        "null",
    ] {
        let url = faulty_endpoint(Fault::Answer(http("200 OK", body))).await;
        degrades_to_the_fetch(&url).await;
    }
}

#[tokio::test]
async fn an_error_answer_is_a_store_failure() {
    let body = r#"{"error":"ERR max daily request limit exceeded"}"#;
    let url = faulty_endpoint(Fault::Answer(http("400 Bad Request", body))).await;
    let error = degrades_to_the_fetch(&url).await;
    assert!(error.to_string().contains("limit exceeded"), "{error}");
}

#[tokio::test]
async fn a_server_error_is_a_store_failure() {
    let url = faulty_endpoint(Fault::Answer(http("502 Bad Gateway", "upstream down"))).await;
    let error = degrades_to_the_fetch(&url).await;
    assert!(error.to_string().contains("502"), "{error}");
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_a_store_failure() {
    let url = faulty_endpoint(Fault::Answer("+OK\r\n")).await;
    degrades_to_the_fetch(&url).await;
}

#[tokio::test]
async fn an_endpoint_that_never_answers_is_a_store_failure() {
    let url = faulty_endpoint(Fault::Silence).await;
    degrades_to_the_fetch(&url).await;
}

#[tokio::test]
async fn a_closed_port_is_a_store_failure() {
    let url = format!("http://127.0.0.1:{}", testkit::free_port());
    degrades_to_the_fetch(&url).await;
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_and_the_error_names_no_token() {
    let url = faulty_endpoint(Fault::Answer(http(
        "401 Unauthorized",
        r#"{"error":"Unauthorized"}"#,
    )))
    .await;
    let error = degrades_to_the_fetch(&url).await;
    assert!(matches!(error, StoreError::Unauthorized(_)), "{error:?}");
}

#[tokio::test]
async fn the_gateway_refuses_a_wrong_token_with_401() {
    let addr = upstash_gateway::spawn(&redis_url(), "the-right-token")
        .await
        .unwrap();
    let url = format!("http://{addr}");
    let error = degrades_to_the_fetch(&url).await;
    assert!(matches!(error, StoreError::Unauthorized(_)), "{error:?}");
    let right = UpstashStore::new(&url, "the-right-token").unwrap();
    right.ping().await.expect("the right token is accepted");
}
