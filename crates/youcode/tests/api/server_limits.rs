//! Slow, silent and idle clients are closed within the configured limits, and past the cap
//! new connections wait for a free one. These are about the server, not the data: SQLite only.
//!
//! Each test talks raw HTTP/1.1 over its own sockets, sets timeouts of about a second and
//! bounds every wait, so a limit that stops working fails the test instead of hanging it.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use youcode::config::ServerLimits;

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// The timeout under test: short, so the tests are quick.
const LIMIT: Duration = Duration::from_secs(1);
/// How late past its limit a connection may close: scheduling on a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);
/// How long a test waits for anything before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

async fn app_with(limits: ServerLimits) -> TestApp {
    spawn_app_with(Backend::SqliteMemory, |config| config.limits = limits).await
}

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("the app listens")
}

/// Reads until the server closes the connection; returns what it sent and how long that took.
async fn read_until_closed(stream: &mut TcpStream, what: &str) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let closing = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    timeout(PATIENCE, closing)
        .await
        .unwrap_or_else(|_| panic!("{what}: still open after {PATIENCE:?}"));
    (received, started.elapsed())
}

/// Reads one response (status and body, sized by `Content-Length`) off a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let reading = async {
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().unwrap());
                if received.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    return (status, received[end + 4..end + 4 + length].to_vec());
                }
            }
            let n = stream.read(&mut buf).await.expect("the connection is open");
            assert!(n > 0, "the connection closed before a whole response");
            received.extend_from_slice(&buf[..n]);
        }
    };
    timeout(PATIENCE, reading)
        .await
        .expect("a response within the patience")
}

fn assert_closed_within(elapsed: Duration, limit: Duration, what: &str) {
    assert!(
        elapsed <= limit + MARGIN,
        "{what}: closed after {elapsed:?}, limit {limit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_head_is_closed_within_the_header_timeout_while_others_are_served() {
    let app = app_with(ServerLimits {
        header_timeout: LIMIT,
        ..ServerLimits::default()
    })
    .await;
    let mut stalled = connect(&app).await;
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();

    let other = timeout(PATIENCE, app.get("/healthz", None))
        .await
        .expect("another client is served meanwhile");
    let (_, elapsed) = read_until_closed(&mut stalled, "a half-sent head").await;

    assert_eq!(other.status.as_u16(), 200);
    assert_closed_within(elapsed, LIMIT, "a half-sent head");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_dripped_a_byte_at_a_time_is_closed_within_the_header_timeout() {
    let app = app_with(ServerLimits {
        header_timeout: LIMIT,
        ..ServerLimits::default()
    })
    .await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    // Long enough to last well past the timeout at one byte every 300 ms.
    let head =
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let dripping = tokio::spawn(async move {
        for byte in head {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });

    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = timeout(PATIENCE, async {
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    dripping.abort();

    assert!(
        closed.is_ok(),
        "a dripped head: still open after {PATIENCE:?}"
    );
    assert_closed_within(started.elapsed(), LIMIT, "a dripped head");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_nothing_is_closed_within_the_header_timeout() {
    let app = app_with(ServerLimits {
        header_timeout: LIMIT,
        ..ServerLimits::default()
    })
    .await;
    let mut silent = connect(&app).await;

    let (received, elapsed) = read_until_closed(&mut silent, "a silent client").await;

    assert!(
        received.is_empty(),
        "nothing is answered to a silent client"
    );
    assert_closed_within(elapsed, LIMIT, "a silent client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_is_answered_408_within_the_body_timeout() {
    let app = app_with(ServerLimits {
        body_timeout: LIMIT,
        ..ServerLimits::default()
    })
    .await;
    let mut stalled = connect(&app).await;
    stalled
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"",
        )
        .await
        .unwrap();

    let started = Instant::now();
    let (status, body) = read_response(&mut stalled).await;
    let elapsed = started.elapsed();

    let (_, after_answer) = read_until_closed(&mut stalled, "a stalled body, answered").await;

    assert_eq!(status, 408);
    let body: Value = serde_json::from_slice(&body).expect("a JSON error body");
    assert_eq!(body["error"]["code"], "request_timeout");
    assert_closed_within(elapsed + after_answer, LIMIT, "a stalled body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let idle_timeout = Duration::from_secs(2);
    let app = app_with(ServerLimits {
        idle_timeout,
        ..ServerLimits::default()
    })
    .await;
    let mut client = connect(&app).await;

    // Requests closer together than the idle timeout keep the connection, for longer than it.
    let started = Instant::now();
    while started.elapsed() < idle_timeout * 2 {
        client.write_all(HEALTH).await.unwrap();
        assert_eq!(read_response(&mut client).await.0, 200);
        tokio::time::sleep(idle_timeout / 4).await;
    }
    let (received, elapsed) = read_until_closed(&mut client, "an idle connection").await;

    assert!(received.is_empty(), "nothing is sent to an idle connection");
    assert_closed_within(elapsed, idle_timeout, "an idle connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_new_connection_waits_until_one_closes() {
    let app = app_with(ServerLimits {
        max_connections: 2,
        ..ServerLimits::default()
    })
    .await;
    let mut first = connect(&app).await;
    let mut second = connect(&app).await;
    for open in [&mut first, &mut second] {
        open.write_all(HEALTH).await.unwrap();
        assert_eq!(read_response(open).await.0, 200);
    }

    let mut third = connect(&app).await;
    third.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 1];
    let early = timeout(LIMIT, third.peek(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection is served while two are open"
    );
    drop(first);

    let (status, _) = read_response(&mut third).await;
    assert_eq!(
        status, 200,
        "the third connection is served once one closes"
    );
}
