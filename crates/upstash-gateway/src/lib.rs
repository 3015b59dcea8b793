//! An Upstash-compatible REST gateway over a Redis server, for development and tests: what
//! `@upstash/redis` and cachette's `UpstashStore` talk to when there is no Upstash database at
//! hand.
//!
//! The protocol, as Upstash serves it:
//! - `POST /` with a JSON array (`["SET","k","v","PX","1000"]`) runs one command and answers
//!   `{"result": …}`, or `{"error": "…"}` with status 400 when Redis refuses it.
//! - `POST /pipeline` with an array of such arrays runs them in order (not atomically) and
//!   answers an array of `{"result"}` / `{"error"}`, one per command.
//! - `POST /multi-exec` runs them as one `MULTI`/`EXEC` transaction, same answer.
//! - `GET` or `POST /<command>/<arg>/…` (arguments percent-encoded) runs one command; a
//!   `POST` body is its last argument, as raw bytes.
//! - With the request header `Upstash-Encoding: base64`, every bulk string in an answer is
//!   base64-encoded (status replies such as `OK` are not), so binary values survive JSON.
//! - Every request needs `Authorization: Bearer <token>` (or `?_token=<token>`): anything else is
//!   401 `{"error": "Unauthorized"}`.
//!
//! Layout: this file is the whole gateway (routing, argument and answer conversion);
//! `main.rs` parses the command line and calls [`serve`].

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use redis::Value;
use redis::aio::ConnectionManager;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;

/// Largest request body accepted (Upstash's own limit is larger for paid plans; tests and
/// development need far less).
const MAX_BODY: usize = 16 << 20;

/// What every handler shares.
#[derive(Clone)]
struct Gateway {
    /// One multiplexed connection: requests are pipelined over it, and a transaction is one
    /// atomic pipeline, so requests never interleave inside it.
    redis: ConnectionManager,
    token: Arc<str>,
}

/// The gateway's routes over the Redis server at `redis_url`, checking `token`.
///
/// # Errors
/// When `redis_url` is invalid or the server cannot be reached.
pub async fn router(redis_url: &str, token: &str) -> anyhow::Result<Router> {
    let client = redis::Client::open(redis_url).context("invalid Redis URL")?;
    let redis = ConnectionManager::new(client)
        .await
        .context("cannot connect to Redis")?;
    let gateway = Gateway {
        redis,
        token: token.into(),
    };
    Ok(Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(gateway))
}

/// Serves the gateway on `listener` until the process ends.
///
/// # Errors
/// As [`router`], or when the server fails.
pub async fn serve(listener: TcpListener, redis_url: &str, token: &str) -> anyhow::Result<()> {
    let app = router(redis_url, token).await?;
    axum::serve(listener, app).await.context("server error")
}

/// Starts a gateway on a free local port in the background (on the current Tokio runtime) and
/// returns its address: for tests.
///
/// # Errors
/// As [`router`].
pub async fn spawn(redis_url: &str, token: &str) -> anyhow::Result<SocketAddr> {
    let app = router(redis_url, token).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// How the commands of one request run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Single,
    Pipeline,
    Transaction,
}

async fn handle(
    State(gateway): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&gateway.token, &headers, &uri) {
        return answer(StatusCode::UNAUTHORIZED, json!({ "error": "Unauthorized" }));
    }
    let base64 = headers
        .get("upstash-encoding")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"base64"));
    let (mode, commands) = match parse_request(&method, uri.path(), &body) {
        Ok(parsed) => parsed,
        Err(message) => return answer(StatusCode::BAD_REQUEST, json!({ "error": message })),
    };
    let mut pipe = redis::pipe();
    if mode == Mode::Transaction {
        pipe.atomic();
    }
    pipe.ignore_errors();
    for command in &commands {
        let mut cmd = redis::cmd(&String::from_utf8_lossy(&command[0]));
        for arg in &command[1..] {
            cmd.arg(arg.as_slice());
        }
        pipe.add_command(cmd);
    }
    let results: Vec<Value> = match pipe.query_async(&mut gateway.redis.clone()).await {
        Ok(results) => results,
        Err(error) if error.kind() == redis::ErrorKind::Io || error.is_timeout() => {
            tracing::warn!(%error, "Redis unreachable");
            let body = json!({ "error": format!("Redis unreachable: {error}") });
            return answer(StatusCode::SERVICE_UNAVAILABLE, body);
        }
        Err(error) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({ "error": error_text(&error) }),
            );
        }
    };
    let mut answers = results.into_iter().map(|value| match value {
        Value::ServerError(error) => Err(server_error_text(&error)),
        value => Ok(to_json(value, base64)),
    });
    match mode {
        Mode::Single => match answers.next() {
            Some(Ok(result)) => answer(StatusCode::OK, json!({ "result": result })),
            Some(Err(error)) => answer(StatusCode::BAD_REQUEST, json!({ "error": error })),
            None => answer(StatusCode::OK, json!({ "result": null })),
        },
        Mode::Pipeline | Mode::Transaction => {
            let items: Vec<Json> = answers
                .map(|answer| match answer {
                    Ok(result) => json!({ "result": result }),
                    Err(error) => json!({ "error": error }),
                })
                .collect();
            answer(StatusCode::OK, Json::Array(items))
        }
    }
}

fn answer(status: StatusCode, body: Json) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Whether the request carries the token, as a bearer header or a `_token` query parameter.
fn authorized(token: &str, headers: &HeaderMap, uri: &Uri) -> bool {
    let from_header = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let from_query = uri.query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("_token="))
    });
    from_header
        .into_iter()
        .chain(from_query)
        .any(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

type Command = Vec<Vec<u8>>;

/// The commands a request asks for, and how to run them.
fn parse_request(method: &Method, path: &str, body: &[u8]) -> Result<(Mode, Vec<Command>), String> {
    let path = path.trim_end_matches('/');
    match (method, path) {
        (&Method::POST, "") => Ok((Mode::Single, vec![parse_command(&parse_json(body)?)?])),
        (&Method::POST, "/pipeline" | "/multi-exec") => {
            let Json::Array(commands) = parse_json(body)? else {
                return Err("ERR the body must be an array of commands".into());
            };
            if commands.is_empty() {
                return Err("ERR empty pipeline".into());
            }
            let commands = commands
                .iter()
                .map(parse_command)
                .collect::<Result<_, _>>()?;
            let mode = if path == "/pipeline" {
                Mode::Pipeline
            } else {
                Mode::Transaction
            };
            Ok((mode, commands))
        }
        (&Method::GET | &Method::POST, _) => {
            let mut command: Command = path
                .trim_start_matches('/')
                .split('/')
                .map(percent_decode)
                .collect::<Result<_, _>>()?;
            if *method == Method::POST && !body.is_empty() {
                command.push(body.to_vec());
            }
            Ok((Mode::Single, vec![command]))
        }
        _ => Err("ERR method not allowed".into()),
    }
}

fn parse_json(body: &[u8]) -> Result<Json, String> {
    serde_json::from_slice(body).map_err(|error| format!("ERR invalid JSON body: {error}"))
}

/// A command from its JSON array: strings are taken as UTF-8 bytes, numbers and booleans as
/// their text, as Upstash does.
fn parse_command(command: &Json) -> Result<Command, String> {
    let Json::Array(parts) = command else {
        return Err("ERR a command must be a JSON array".into());
    };
    if parts.is_empty() {
        return Err("ERR empty command".into());
    }
    parts
        .iter()
        .map(|part| match part {
            Json::String(text) => Ok(text.clone().into_bytes()),
            Json::Number(number) => Ok(number.to_string().into_bytes()),
            Json::Bool(flag) => Ok(flag.to_string().into_bytes()),
            _ => Err(format!("ERR unsupported argument {part}")),
        })
        .collect()
}

fn percent_decode(segment: &str) -> Result<Vec<u8>, String> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("ERR bad percent-encoding in {segment:?}"))?;
            decoded.push(hex);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    Ok(decoded)
}

/// A Redis reply as Upstash answers it: bulk strings as text (base64 when asked), status
/// replies as text, integers as numbers, nil as null, aggregates as arrays.
fn to_json(value: Value, base64: bool) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Int(n) => json!(n),
        Value::BulkString(bytes) if base64 => Json::String(BASE64.encode(bytes)),
        Value::BulkString(bytes) => Json::String(String::from_utf8_lossy(&bytes).into_owned()),
        Value::Okay => Json::String("OK".into()),
        Value::SimpleString(text) => Json::String(text),
        Value::Array(items) | Value::Set(items) => Json::Array(
            items
                .into_iter()
                .map(|item| to_json(item, base64))
                .collect(),
        ),
        Value::Map(pairs) => Json::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [to_json(k, base64), to_json(v, base64)])
                .collect(),
        ),
        Value::Double(x) => json!(x),
        Value::Boolean(flag) => json!(i64::from(flag)),
        Value::ServerError(error) => json!({ "error": server_error_text(&error) }),
        other => Json::String(format!("{other:?}")),
    }
}

fn server_error_text(error: &redis::ServerError) -> String {
    match error.details() {
        Some(details) => format!("{} {details}", error.code()),
        None => error.code().to_owned(),
    }
}

fn error_text(error: &redis::RedisError) -> String {
    match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Fb%20c").unwrap(), b"a/b c");
        assert!(percent_decode("bad%2").is_err());
        assert!(percent_decode("bad%zz").is_err());
    }

    #[test]
    fn only_the_exact_token_is_accepted() {
        let uri: Uri = "/get/k?_token=secret".parse().unwrap();
        assert!(authorized("secret", &HeaderMap::new(), &uri));
        let uri: Uri = "/get/k?_token=secre".parse().unwrap();
        assert!(!authorized("secret", &HeaderMap::new(), &uri));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer secret".parse().unwrap());
        assert!(authorized("secret", &headers, &"/".parse().unwrap()));
        headers.insert("authorization", "Bearer secret2".parse().unwrap());
        assert!(!authorized("secret", &headers, &"/".parse().unwrap()));
    }

    #[test]
    fn bulk_strings_are_base64_only_when_asked_and_status_replies_never() {
        let bulk = || Value::BulkString(vec![0xff, 0x00, b'a']);
        assert_eq!(to_json(bulk(), true), json!("/wBh"));
        assert_eq!(to_json(bulk(), false), json!("\u{fffd}\u{0}a"));
        assert_eq!(to_json(Value::Okay, true), json!("OK"));
        assert_eq!(
            to_json(Value::Array(vec![Value::Int(1), Value::Nil, bulk()]), true),
            json!([1, null, "/wBh"])
        );
    }
}
