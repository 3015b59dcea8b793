//! The gateway's answers, over HTTP: shapes, encoding, transactions, errors and the token.

use reqwest::StatusCode;
use serde_json::{Value, json};

struct Gateway {
    url: String,
    token: String,
    prefix: String,
    client: reqwest::Client,
}

async fn gateway() -> Gateway {
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let token = "protocol-test-token".to_owned();
    let addr = upstash_gateway::spawn(&redis_url, &token).await.unwrap();
    Gateway {
        url: format!("http://{addr}"),
        token,
        prefix: format!("upstash-gateway-protocol-{:016x}", rand_u64()),
        client: reqwest::Client::new(),
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos());
    hasher.finish()
}

impl Gateway {
    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    async fn post(&self, path: &str, body: Value, base64: bool) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body);
        if base64 {
            request = request.header("Upstash-Encoding", "base64");
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

#[tokio::test]
async fn a_command_answers_its_result_and_base64_only_when_asked() {
    let gw = gateway().await;
    let key = gw.key("s");
    let set = gw
        .post("/", json!(["SET", key, "héllo", "PX", 60000]), true)
        .await;
    assert_eq!(set, (StatusCode::OK, json!({"result": "OK"})));
    let plain = gw.post("/", json!(["GET", key]), false).await;
    assert_eq!(plain.1, json!({"result": "héllo"}));
    let encoded = gw.post("/", json!(["GET", key]), true).await;
    assert_eq!(encoded.1, json!({"result": "aMOpbGxv"}));
    let missing = gw
        .post("/", json!(["MGET", key, gw.key("none")]), true)
        .await;
    assert_eq!(missing.1, json!({"result": ["aMOpbGxv", null]}));
}

#[tokio::test]
async fn a_refused_command_is_a_400_with_the_error_shape() {
    let gw = gateway().await;
    let (status, body) = gw.post("/", json!(["NOSUCHCOMMAND", "x"]), false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("ERR"), "{body}");
    for bad in [json!("GET"), json!([]), json!([{"a": 1}])] {
        let (status, body) = gw.post("/", bad, false).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn a_pipeline_answers_each_command_and_an_error_stops_none() {
    let gw = gateway().await;
    let key = gw.key("p");
    let commands = json!([["SET", key, "v", "PX", 60000], ["INCR", key], ["GET", key]]);
    let (status, body) = gw.post("/pipeline", commands, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0], json!({"result": "OK"}));
    assert!(
        body[1]["error"]
            .as_str()
            .unwrap()
            .contains("not an integer"),
        "{body}"
    );
    assert_eq!(body[2], json!({"result": "v"}));
}

#[tokio::test]
async fn multi_exec_runs_as_one_transaction() {
    let gw = gateway().await;
    let key = gw.key("t");
    let commands = json!([
        ["SET", key, "1", "PX", 60000],
        ["INCRBY", key, 41],
        ["GET", key]
    ]);
    let (status, body) = gw.post("/multi-exec", commands, true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([{"result": "OK"}, {"result": 42}, {"result": "NDI="}])
    );
}

#[tokio::test]
async fn the_path_form_runs_a_command_with_the_body_as_last_argument() {
    let gw = gateway().await;
    let key = gw.key("a b/c");
    let encoded = key.replace(' ', "%20").replace('/', "%2F");
    let response = gw
        .client
        .post(format!("{}/set/{encoded}", gw.url))
        .bearer_auth(&gw.token)
        .body(vec![0u8, 0xff, b'x'])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = gw
        .client
        .get(format!("{}/get/{encoded}?_token={}", gw.url, gw.token))
        .header("Upstash-Encoding", "base64")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"result": "AP94"})
    );
    gw.post("/", json!(["DEL", key]), false).await;
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_401() {
    let gw = gateway().await;
    let wrong = gw
        .client
        .post(&gw.url)
        .bearer_auth("protocol-test-tokem")
        .json(&json!(["PING"]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"error": "Unauthorized"})
    );
    let missing = gw
        .client
        .post(format!("{}/pipeline", gw.url))
        .json(&json!([["PING"]]))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
}
