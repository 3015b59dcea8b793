//! Spawning the app for a test, and talking to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Executor as _;
use youcode::config::{CacheBackend, CacheConfig, Config, PasswordCost, Policies, UpstashArgs};
use youcode::db::NewUser;
use youcode::domain::Role;
use youcode::state::AppState;
use youcode::{Application, auth};

/// Which database and cache store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file and the in-process memory store.
    SqliteMemory,
    /// A fresh PostgreSQL database (on `DATABASE_URL`) and Redis (on `REDIS_URL`).
    PostgresRedis,
    /// A fresh PostgreSQL database and the Upstash store, through an `upstash-gateway` of the
    /// test's own over `REDIS_URL`.
    PostgresUpstash,
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn postgres_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The running app and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub backend: Backend,
    /// Where `GET /metrics` answers (`http://…`), when the configuration set `metrics_addr`.
    pub metrics_address: Option<String>,
}

/// An account made for a test, signed in.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// `X-Cache`, when sent.
    pub cache: Option<String>,
    /// `Retry-After`, when sent.
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Reply {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status, body: {}",
            self.body
        );
        self.body
    }

    /// The error code of an error body.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and the `X-Cache` header, and returns the body.
    #[track_caller]
    pub fn expect_cache(self, status: u16, x_cache: &str) -> Value {
        assert_eq!(
            (self.status.as_u16(), self.cache.as_deref()),
            (status, Some(x_cache)),
            "unexpected status or X-Cache, body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an error answer (status and code) and returns its message.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> String {
        assert_eq!(
            (self.status.as_u16(), self.error_code()),
            (status, code),
            "unexpected answer, body: {}",
            self.body
        );
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The `field` of each item of a list body's `data`.
pub fn pluck(body: &Value, field: &str) -> Vec<Value> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|item| item[field].clone())
        .collect()
}

/// The names of the items of a list body, in order.
pub fn names(body: &Value) -> Vec<String> {
    pluck(body, "name")
        .into_iter()
        .map(|name| name.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The keys of a JSON object, sorted.
pub fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Waits a few milliseconds, so that rows created next get a later timestamp (times are stored
/// to the millisecond and lists sort by them).
pub async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "{prefix}_{secs}_{}_{:08x}",
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// Starts the app on `backend`, on a free port, with an empty database and namespace.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], letting the test adjust the configuration first.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let database_url = fresh_database_url(backend).await;
    let mut cache = CacheConfig::memory(&unique("yc-test").replace('_', "-"));
    if backend == Backend::PostgresRedis {
        cache.backend = CacheBackend::Tiered;
        cache.redis_url = Some(redis_url());
    }
    if backend == Backend::PostgresUpstash {
        cache.backend = CacheBackend::Upstash;
        cache.upstash = upstash_gateway().await;
    }
    cache.policies = Policies::default();
    // A short lease, so that joining the bus at start takes little of each test.
    cache.lease = std::time::Duration::from_millis(300);
    let mut config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: None,
        database_url,
        cache,
        seed_demo: false,
        password_cost: PasswordCost::Low,
        sessions: Default::default(),
        login: Default::default(),
        limits: Default::default(),
        warming: Default::default(),
        alerts: Default::default(),
    };
    adjust(&mut config);
    let app = Application::build(config).await.expect("the app builds");
    if backend == Backend::PostgresRedis
        && let cachette::AnyStore::Redis(store) = app.state().cache.store()
    {
        store.ping().await.unwrap_or_else(|e| {
            panic!(
                "Redis is not reachable at {}: {e}; scripts/test starts it",
                redis_url()
            )
        });
    }
    if let cachette::AnyStore::Upstash(store) = app.state().cache.store() {
        // A refused token is a test's own doing; an unreachable gateway is not.
        match store.ping().await {
            Ok(()) | Err(cachette::StoreError::Unauthorized(_)) => {}
            Err(e) => panic!("the Upstash gateway does not answer: {e}"),
        }
    }
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        state,
        backend,
        metrics_address,
    }
}

/// The URL of a database no other test uses: a new SQLite file, or a new PostgreSQL database.
pub async fn fresh_database_url(backend: Backend) -> String {
    match backend {
        Backend::SqliteMemory => {
            let dir = std::env::temp_dir().join("youcode-tests");
            format!("sqlite://{}/{}.db", dir.display(), unique("db"))
        }
        Backend::PostgresRedis | Backend::PostgresUpstash => create_postgres_database().await,
    }
}

/// An `upstash-gateway` over `REDIS_URL` with a random token, on this test's runtime; where
/// the app finds it.
pub async fn upstash_gateway() -> UpstashArgs {
    let token = format!("token-{:016x}", rand::random::<u64>());
    let addr = upstash_gateway::spawn(&redis_url(), &token)
        .await
        .unwrap_or_else(|e| panic!("the Upstash gateway cannot start over {}: {e}", redis_url()));
    UpstashArgs {
        upstash_url: Some(format!("http://{addr}")),
        upstash_token: Some(token.parse().unwrap()),
    }
}

/// A fresh database on the PostgreSQL server of `DATABASE_URL`; test databases older than a
/// day (left by killed runs) are dropped on the way.
async fn create_postgres_database() -> String {
    use sqlx::Connection as _;
    let admin_url = postgres_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {admin_url}: {e}; scripts/test starts it")
        });
    drop_stale_databases(&mut admin).await;
    let name = unique("yc_test");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database on {admin_url}: {e}"));
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL with a path");
    format!("{base}/{name}")
}

async fn drop_stale_databases(conn: &mut sqlx::PgConnection) {
    let day_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 86_400;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'yc\\_test\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let created: Option<u64> = name.split('_').nth(2).and_then(|s| s.parse().ok());
        if created.is_some_and(|secs| secs < day_ago) {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}

impl TestApp {
    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the app answers");
        let status = response.status();
        let cache = response
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap().to_owned());
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Reply {
            status,
            cache,
            retry_after,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Creates an account directly in the database and signs it in over HTTP.
    pub async fn create_user(&self, role: Role) -> TestUser {
        let email = format!("{}@test.dev", unique("u").to_lowercase());
        let password = "password-123".to_owned();
        let user = self
            .state
            .db
            .create_user(NewUser {
                email: email.clone(),
                name: format!("Name of {email}"),
                image: None,
                role,
                password_hash: auth::hash_password(&password, PasswordCost::Low),
            })
            .await
            .expect("the account is created");
        let body = self
            .post(
                "/api/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await
            .expect(200);
        TestUser {
            id: user.id.to_string(),
            email,
            password,
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn admin(&self) -> TestUser {
        self.create_user(Role::Admin).await
    }

    pub async fn user(&self) -> TestUser {
        self.create_user(Role::User).await
    }

    /// Creates a course of `admin` over HTTP; returns its id.
    pub async fn create_course(&self, admin: &TestUser, name: &str, state: &str) -> String {
        let body = self
            .post(
                "/api/admin/courses",
                Some(&admin.token),
                json!({"name": name, "state": state, "presentation": format!("About {name}")}),
            )
            .await
            .expect(201);
        body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a lesson over HTTP; returns its id.
    pub async fn create_lesson(
        &self,
        admin: &TestUser,
        course: &str,
        name: &str,
        state: &str,
    ) -> String {
        let body = self
            .post(
                &format!("/api/admin/courses/{course}/lessons"),
                Some(&admin.token),
                json!({"name": name, "state": state, "content": format!("Content of {name}")}),
            )
            .await
            .expect(201);
        body["id"].as_str().unwrap().to_owned()
    }

    /// Reads `path` twice: asserts a `MISS` then a `HIT` with the same body, and returns it.
    pub async fn warm(&self, path: &str, token: Option<&str>) -> Value {
        let first = self.get(path, token).await;
        let second = self.get(path, token).await;
        assert_eq!(
            (first.status.as_u16(), first.cache.as_deref()),
            (200, Some("MISS")),
            "first read of {path}, body: {}",
            first.body
        );
        assert_eq!(
            (second.status.as_u16(), second.cache.as_deref()),
            (200, Some("HIT")),
            "second read of {path}, body: {}",
            second.body
        );
        assert_eq!(
            first.body, second.body,
            "the hit on {path} answers what the miss did"
        );
        second.body
    }

    /// Ends the enrolment of `user` in `course` over HTTP.
    pub async fn leave(&self, user: &TestUser, course: &str) {
        self.post(
            &format!("/api/user/courses/{course}/leave"),
            Some(&user.token),
            json!({}),
        )
        .await
        .expect(200);
    }

    /// Records the progress of `user` in `lesson` over HTTP.
    pub async fn set_progress(&self, user: &TestUser, lesson: &str, progress: &str) {
        let body = self
            .put(
                &format!("/api/user/lessons/{lesson}/progress"),
                Some(&user.token),
                json!({ "progress": progress }),
            )
            .await
            .expect(200);
        assert_eq!(body["progress"], progress);
    }

    /// Enrols `user` in `course` over HTTP.
    pub async fn join(&self, user: &TestUser, course: &str) {
        self.post(
            &format!("/api/user/courses/{course}/join"),
            Some(&user.token),
            json!({}),
        )
        .await
        .expect(200);
    }
}

/// Runs each listed test (an `async fn(TestApp)`) once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::helpers::spawn_app($crate::helpers::Backend::SqliteMemory).await).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::helpers::spawn_app($crate::helpers::Backend::PostgresRedis).await).await;
                }
            )*
        }
        mod postgres_upstash {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::helpers::spawn_app($crate::helpers::Backend::PostgresUpstash).await).await;
                }
            )*
        }
    };
}

/// Runs `$test(backend)` on SQLite with the memory store, on PostgreSQL with Redis, and on
/// PostgreSQL with Upstash (through a gateway).
#[macro_export]
macro_rules! on_both_backends_with_config {
    ($($test:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::helpers::Backend::SqliteMemory).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::helpers::Backend::PostgresRedis).await;
                }
            )*
        }
        mod postgres_upstash {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::helpers::Backend::PostgresUpstash).await;
                }
            )*
        }
    };
}
