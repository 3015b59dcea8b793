//! The dashboard in a real headless Chromium: `tests/browser/dashboard.mjs` (playwright-core,
//! Debian's `chromium`; scripts/test installs both when missing) drives the page against the
//! app started here, and saves the screenshot the README shows.

use std::path::Path;
use std::time::Duration;

use crate::helpers::{Backend, spawn_app};

/// Longest the whole browser session may take.
const BROWSER_LIMIT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium_signs_in_shows_traffic_and_clears() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts = manifest.join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: scripts/test installs it (npm ci --prefix {})",
        scripts.display()
    );
    let app = spawn_app(Backend::SqliteMemory).await;
    let admin = app.admin().await;
    let user = app.user().await;
    let course = app.create_course(&admin, "Rust", "PUBLISHED").await;
    for name in ["Ownership", "Borrowing", "Lifetimes"] {
        app.create_lesson(&admin, &course, name, "PUBLIC").await;
    }
    let screenshot = manifest.join("../../docs/dashboard.png");

    let mut node = tokio::process::Command::new("node");
    node.arg(scripts.join("dashboard.mjs"))
        .current_dir(&scripts)
        .env("DASHBOARD_URL", &app.address)
        .env("ADMIN_EMAIL", &admin.email)
        .env("ADMIN_PASSWORD", &admin.password)
        .env("USER_EMAIL", &user.email)
        .env("USER_PASSWORD", &user.password)
        .env("SCREENSHOT", &screenshot)
        .kill_on_drop(true);
    let run = tokio::time::timeout(BROWSER_LIMIT, node.output())
        .await
        .expect("the browser session ends in time")
        .expect("node runs (scripts/test installs it)");

    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the browser session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("{stdout}");
    assert!(screenshot.is_file());
}
