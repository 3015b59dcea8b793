//! `GET /api/openapi.json`: the document describes every route the router serves and docs/API.md
//! lists, no other, and the API answers as it says (schemathesis, as a user and as an admin).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use youcode::db::seed::{ADMIN_EMAILS, DEMO_PASSWORD, USER_EMAIL};
use youcode::http::openapi::UNDOCUMENTED_ROUTES;

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

/// An operation as `"METHOD /path"`, its path params written `{}` whatever their names (the
/// router's `{course_id}` is docs/API.md's `{courseId}` or `{id}`).
fn operation(method: &str, path: &str) -> String {
    let mut normalized = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                normalized.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => normalized.push(c),
            _ => {}
        }
    }
    format!("{} {normalized}", method.to_uppercase())
}

/// The operations of an OpenAPI document.
fn documented(document: &Value) -> BTreeSet<String> {
    let paths = document["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("a document without paths: {document}"));
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item is an object");
            methods
                .keys()
                .filter(|method| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&method.as_str())
                })
                .map(move |method| operation(method, path))
        })
        .collect()
}

/// The routes docs/API.md names: every `` `METHOD /path…` `` in it, without its query.
fn routes_of_api_md() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/API.md");
    let text = std::fs::read_to_string(&path).expect("docs/API.md reads");
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| {
            let (method, path) = code.split_once(' ')?;
            let known = ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method);
            (known && path.starts_with('/')).then(|| {
                let path = path.split(['?', ' ']).next().unwrap_or(path);
                operation(method, path)
            })
        })
        .collect()
}

fn undocumented() -> BTreeSet<String> {
    UNDOCUMENTED_ROUTES
        .iter()
        .map(|route| {
            let (method, path) = route.split_once(' ').expect("\"METHOD /path\"");
            operation(method, path)
        })
        .collect()
}

async fn served_document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(format!("{}/api/openapi.json", app.address))
        .send()
        .await
        .expect("the app answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the document is not JSON ({e}): {text}"))
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_the_routes_of_api_md_and_no_other() {
    let app = spawn_app(Backend::SqliteMemory).await;

    let document = served_document(&app).await;

    assert!(
        document["openapi"]
            .as_str()
            .unwrap_or("")
            .starts_with("3.1"),
        "not OpenAPI 3.1: {}",
        document["openapi"]
    );
    let generated = serde_json::to_value(youcode::http::openapi()).unwrap();
    assert_eq!(
        document, generated,
        "the served document is the generated one"
    );
    let in_document = documented(&document);
    let undocumented = undocumented();
    let in_api_md: BTreeSet<String> = routes_of_api_md()
        .difference(&undocumented)
        .cloned()
        .collect();
    let missing: Vec<&String> = in_api_md.difference(&in_document).collect();
    assert!(
        missing.is_empty(),
        "docs/API.md names routes the OpenAPI document leaves out: {missing:?}"
    );
    let unnamed: Vec<&String> = in_document.difference(&in_api_md).collect();
    assert!(
        unnamed.is_empty(),
        "the OpenAPI document has routes docs/API.md does not name: {unnamed:?}"
    );
    let excluded_but_described: Vec<&String> = undocumented.intersection(&in_document).collect();
    assert!(
        excluded_but_described.is_empty(),
        "routes left out of the document on purpose are in it: {excluded_but_described:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app(Backend::SqliteMemory).await;
    let document = served_document(&app).await;
    let operations: BTreeSet<String> = documented(&document)
        .union(&undocumented())
        .cloned()
        .collect();
    assert!(operations.len() > 20, "too few operations: {operations:?}");

    for operation in operations {
        // A malformed id is a 400 from a routed handler (or a 401 before it, without a token);
        // the router's fallbacks answer 404 and 405.
        let (method, path) = operation.split_once(' ').unwrap();
        let path = path.replace("{}", "not-a-uuid");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = app
            .client
            .request(method.clone(), format!("{}{path}", app.address));
        if method != Method::GET && method != Method::DELETE {
            request = request.json(&json!({}));
        }
        let status = request.send().await.expect("the app answers").status();
        assert!(
            status != 404 && status != 405,
            "{operation} is documented but not routed: {status}"
        );
    }
}

/// Paths served on listeners other than the API's (`/metrics` on `--metrics-addr`): not API
/// routes, so not in the document.
const OTHER_LISTENERS_PATHS: &[&str] = &["/metrics"];

/// Routes are added with utoipa-axum's `.routes(routes!(handler))`, which describes them; axum's
/// own `.route(…)` and `.nest(…)` would serve a route the document does not describe, so the
/// HTTP modules use them only for the routes named in `UNDOCUMENTED_ROUTES` (and for the paths
/// of other listeners).
#[test]
fn no_route_is_added_around_the_document() {
    let http = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&http).expect("src/http lists") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "rs") {
            continue; // the dashboard's assets
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let adds_route = !line.trim_start().starts_with("//")
                && [".route(", ".route_service(", ".nest(", ".nest_service("]
                    .iter()
                    .any(|call| line.contains(call));
            let excluded = UNDOCUMENTED_ROUTES
                .iter()
                .map(|route| route.split_once(' ').unwrap().1)
                .chain(OTHER_LISTENERS_PATHS.iter().copied())
                .any(|path| line.contains(&format!("\"{path}\"")));
            if adds_route && !excluded {
                found.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "routes added without their OpenAPI description (use `.routes(routes!(handler))`, or \
         name the route in UNDOCUMENTED_ROUTES): {found:#?}"
    );
}

/// How long one schemathesis run may take before the test fails.
const SCHEMATHESIS_TIMEOUT: Duration = Duration::from_secs(150);

/// The checks run: no 5xx, and every answer's status, content type, headers and body as the
/// document says.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer_as_a_user_or_an_admin() {
    let app = spawn_app_with(Backend::SqliteMemory, |config| config.seed_demo = true).await;
    let user = sign_in(&app, USER_EMAIL).await;
    let admin = sign_in(&app, ADMIN_EMAILS[0]).await;

    let mut failures = Vec::new();
    for (role, token) in [("user", user), ("admin", admin)] {
        let (passed, output) = run_schemathesis(&app, &token).await;
        // The summary, for `--nocapture`.
        let summary: Vec<&str> = output
            .lines()
            .filter(|line| line.contains(" generated, ") || line.starts_with("====="))
            .map(str::trim)
            .collect();
        println!("schemathesis as the {role}: {}", summary.join(" / "));
        if !passed {
            failures.push(format!("--- as the {role}:\n{output}"));
        }
    }

    assert!(
        failures.is_empty(),
        "schemathesis failed:\n{}",
        failures.join("\n")
    );
}

async fn sign_in(app: &TestApp, email: &str) -> String {
    let body = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": DEMO_PASSWORD}),
        )
        .await
        .expect(200);
    body["token"].as_str().unwrap().to_owned()
}

/// Runs schemathesis against the app's document with `token`; whether it passed, and what it
/// printed.
async fn run_schemathesis(app: &TestApp, token: &str) -> (bool, String) {
    let workdir = std::env::temp_dir()
        .join("youcode-tests")
        .join("schemathesis");
    std::fs::create_dir_all(&workdir).unwrap();
    let child = tokio::process::Command::new("schemathesis")
        .current_dir(&workdir)
        .arg("run")
        .arg(format!("{}/api/openapi.json", app.address))
        .args(["--checks", CHECKS])
        .args(["--max-examples", "25"])
        .args(["--seed", "14"])
        .args(["--generation-database", "none"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "10"])
        // Signing out would revoke the token the rest of the run uses.
        .args(["--exclude-path", "/api/auth/logout"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--no-color", "--output-truncate", "false"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run schemathesis ({e}): scripts/test installs it (pip install schemathesis)"
            )
        });
    let output = tokio::time::timeout(SCHEMATHESIS_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran longer than {SCHEMATHESIS_TIMEOUT:?}"))
        .expect("schemathesis runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}
