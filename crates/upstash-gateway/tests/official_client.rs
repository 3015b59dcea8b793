//! The official `@upstash/redis` npm client against the gateway (`client/official.mjs`): proof
//! that the gateway speaks the protocol Upstash's own client expects. `scripts/test` installs
//! the client (`npm ci` in `tests/client`) when it is missing.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_agrees_with_the_gateway() {
    let client_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client");
    assert!(
        client_dir.join("node_modules/@upstash/redis").exists(),
        "@upstash/redis is not installed: run `npm ci` in {} (scripts/test does)",
        client_dir.display()
    );
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let token = format!("token-{}", std::process::id());
    let addr = upstash_gateway::spawn(&redis_url, &token)
        .await
        .expect("the gateway starts over REDIS_URL");
    let prefix = format!("upstash-gateway-test-{:x}", std::process::id());
    let node = tokio::process::Command::new("node")
        .arg("official.mjs")
        .current_dir(&client_dir)
        .env("UPSTASH_REDIS_REST_URL", format!("http://{addr}"))
        .env("UPSTASH_REDIS_REST_TOKEN", &token)
        .env("PREFIX", &prefix)
        .env("UPSTASH_DISABLE_TELEMETRY", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Node.js must be installed)");
    let output = tokio::time::timeout(Duration::from_secs(60), node.wait_with_output())
        .await
        .expect("the client script finishes within a minute")
        .expect("node runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "the official client failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("ok: the official client agrees"),
        "{stdout}"
    );
}
