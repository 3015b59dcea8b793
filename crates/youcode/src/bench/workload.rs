//! The virtual clients: signed-in admins and users looping over the read routes, with
//! Zipf-distributed choices, and writes each followed by a read that must show them. Each client
//! talks to one instance (its home); the read that checks a write goes to another one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use reqwest::Method;
use serde_json::{Value, json};

use super::instances::Instances;
use super::report::Recorder;
use crate::config::BenchArgs;
use crate::db::seed::{ADMIN_EMAILS, USER_EMAIL};

/// Search words, most common first.
const SEARCH_WORDS: [&str; 10] = [
    "rust",
    "lesson",
    "basics",
    "testing",
    "react",
    "setup",
    "performance",
    "design",
    "css",
    "go",
];
/// Pages of the public list read to learn which courses and lessons exist.
const CATALOGUE_PAGES: u32 = 20;
/// The instance that signs the clients in and lists the catalogue: any would do, they share
/// one database.
const SET_UP_ON: usize = 0;

/// What every client shares.
pub struct Shared {
    pub instances: Instances,
    pub http: reqwest::Client,
    pub zipf: f64,
    pub write_ratio: f64,
    /// Time between two steps of one client, with `--rate`.
    pub pace: Option<Duration>,
    /// PUBLIC lessons of PUBLISHED courses, most popular first: (lesson id, course id).
    pub lessons: Vec<(String, String)>,
    /// Their courses, in the same order.
    pub courses: Vec<String>,
    /// Set while results count (after the warm-up).
    pub measuring: AtomicBool,
    pub stop: AtomicBool,
    /// Requests so far, for the progress line.
    pub requests: AtomicU64,
    /// Of those, the cached reads (with `X-Cache`) and their hits, for the progress line.
    pub cached: AtomicU64,
    pub hits: AtomicU64,
    pub stale: AtomicU64,
    pub errors: AtomicU64,
}

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct Account {
    pub token: String,
    pub admin: bool,
}

/// A request on its way to one instance.
struct Request {
    instance: usize,
    builder: reqwest::RequestBuilder,
}

impl Request {
    fn token(self, token: &str) -> Self {
        Self {
            builder: self.builder.bearer_auth(token),
            ..self
        }
    }

    fn json(self, body: &Value) -> Self {
        Self {
            builder: self.builder.json(body),
            ..self
        }
    }

    async fn send(self) -> anyhow::Result<Reply> {
        let response = self.builder.send().await?;
        let status = response.status().as_u16();
        let x_cache = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await?;
        Ok(Reply {
            instance: self.instance,
            status,
            x_cache,
            body,
        })
    }
}

/// A response, read whole; its body is parsed only by the steps that look into it.
struct Reply {
    /// The instance that answered.
    instance: usize,
    status: u16,
    x_cache: Option<String>,
    body: bytes::Bytes,
}

impl Reply {
    /// The body as JSON (`null` when empty or not JSON).
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text, for error messages.
    fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl Shared {
    /// What the clients of a run over `instances` share, before the catalogue is loaded.
    pub fn new(instances: Instances, http: reqwest::Client, args: &BenchArgs) -> Self {
        Self {
            instances,
            http,
            zipf: args.zipf,
            write_ratio: args.write_ratio,
            pace: args
                .rate
                .map(|rate| Duration::from_secs_f64(args.concurrency.max(1) as f64 / rate)),
            lessons: Vec::new(),
            courses: Vec::new(),
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// A request for `path` on `instance`.
    fn request(&self, instance: usize, method: Method, path: &str) -> Request {
        let url = format!("{}{path}", self.instances.base(instance));
        Request {
            instance,
            builder: self.http.request(method, url),
        }
    }

    /// Signs in; the seeded accounts share one password.
    pub async fn login(&self, email: &str, password: &str, admin: bool) -> anyhow::Result<Account> {
        let reply = self
            .request(SET_UP_ON, Method::POST, "/api/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        anyhow::ensure!(
            reply.status == 200,
            "cannot sign in as {email}: HTTP {}",
            reply.status
        );
        let token = reply.json()["token"]
            .as_str()
            .context("no token in the login answer")?
            .to_owned();
        Ok(Account { token, admin })
    }

    /// Learns the public lessons and their courses from the first pages of the public list.
    pub async fn load_catalogue(&mut self) -> anyhow::Result<()> {
        for page in 1..=CATALOGUE_PAGES {
            let path = format!("/api/public/lessons?limit=100&page={page}");
            let reply = self.request(SET_UP_ON, Method::GET, &path).send().await?;
            anyhow::ensure!(
                reply.status == 200,
                "GET /api/public/lessons answered {}",
                reply.status
            );
            let data = reply.json()["data"].as_array().cloned().unwrap_or_default();
            if data.is_empty() {
                break;
            }
            for lesson in data {
                let (Some(id), Some(course)) = (lesson["id"].as_str(), lesson["courseId"].as_str())
                else {
                    continue;
                };
                self.lessons.push((id.to_owned(), course.to_owned()));
                if !self.courses.iter().any(|c| c == course) {
                    self.courses.push(course.to_owned());
                }
            }
        }
        anyhow::ensure!(
            !self.lessons.is_empty(),
            "the server has no public lessons to read: seed it first"
        );
        Ok(())
    }
}

/// The email of client `n`: one in four is an admin.
pub fn account_of(n: usize, users: usize) -> (String, bool) {
    if n.is_multiple_of(4) {
        (ADMIN_EMAILS[(n / 4) % ADMIN_EMAILS.len()].to_owned(), true)
    } else if n == 1 || users == 0 {
        (USER_EMAIL.to_owned(), false)
    } else {
        (format!("user{}@youcode.dev", (n % users) + 1), false)
    }
}

/// One virtual client.
pub struct Client {
    shared: Arc<Shared>,
    account: Account,
    rng: StdRng,
    number: usize,
    /// The instance this client reads from and writes to.
    home: usize,
    /// The instance that checks this client's writes.
    checker: usize,
    /// Clients signed in as the same account share its data: each writes only to the courses
    /// whose index modulo `peers` is its `slot`, so a check never sees a peer's write.
    slot: usize,
    peers: usize,
    /// Courses this user joined (users), or owns (admins).
    courses: Vec<String>,
    /// Whether the user is enrolled, per course of `courses`.
    enrolled: Vec<bool>,
    edits: u64,
    pub record: Recorder,
}

impl Client {
    pub fn new(
        shared: Arc<Shared>,
        account: Account,
        number: usize,
        (slot, peers): (usize, usize),
        seed: u64,
    ) -> Self {
        let home = shared.instances.home_of(number);
        let checker = shared.instances.checker_of(home);
        let record = Recorder::new(shared.instances.count());
        Self {
            shared,
            account,
            rng: StdRng::seed_from_u64(
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(number as u64),
            ),
            number,
            home,
            checker,
            slot,
            peers: peers.max(1),
            courses: Vec::new(),
            enrolled: Vec::new(),
            edits: 0,
            record,
        }
    }

    /// Admins learn their courses; users join a few popular ones.
    pub async fn prepare(&mut self) -> anyhow::Result<()> {
        if self.account.admin {
            let reply = self.get_raw("/api/admin/courses?limit=100").await?;
            for course in reply.json()["data"].as_array().cloned().unwrap_or_default() {
                if let Some(id) = course["id"].as_str() {
                    self.courses.push(id.to_owned());
                }
            }
            anyhow::ensure!(
                !self.courses.is_empty(),
                "an admin of the data set has no course"
            );
        } else {
            for _ in 0..3 {
                let index = self.writable_index(self.shared.courses.len());
                let course = self.shared.courses[index].clone();
                if !self.courses.contains(&course) {
                    let path = format!("/api/user/courses/{course}/join");
                    let reply = self
                        .request(self.home, Method::POST, &path)
                        .json(&json!({}))
                        .send()
                        .await?;
                    anyhow::ensure!(reply.status == 200, "join answered {}", reply.status);
                    self.courses.push(course);
                    self.enrolled.push(true);
                }
            }
        }
        Ok(())
    }

    /// Loops until told to stop.
    pub async fn run(mut self) -> Recorder {
        let mut pace = self.shared.pace.map(|every| {
            // Clients start at random points of the period, not all at once.
            let first = tokio::time::Instant::now() + every.mul_f64(self.rng.random::<f64>());
            let mut pace = tokio::time::interval_at(first, every);
            // A step that overran is not made up by a burst.
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            pace
        });
        while !self.shared.stop.load(Ordering::Relaxed) {
            if let Some(pace) = &mut pace {
                pace.tick().await;
            }
            let result = if self
                .rng
                .random_bool(self.shared.write_ratio.clamp(0.0, 1.0))
            {
                self.write().await
            } else {
                self.read().await
            };
            if let Err(error) = result {
                self.error(&format!("{error:#}"));
            }
        }
        self.record
    }

    fn error(&mut self, what: &str) {
        if self.shared.errors.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("bench: client {}: {what}", self.number);
        }
        if self.shared.measuring.load(Ordering::Relaxed) {
            self.record.errors += 1;
        }
    }

    fn stale(&mut self, what: &str) {
        if self.shared.stale.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("bench: client {}: stale read: {what}", self.number);
        }
        if self.shared.measuring.load(Ordering::Relaxed) {
            self.record.stale_reads += 1;
        }
    }

    /// An index in `0..len`, Zipf-distributed (index 0 the most likely).
    fn zipf_index(&mut self, len: usize) -> usize {
        if len <= 1 {
            return 0;
        }
        if self.shared.zipf <= 0.0 {
            return self.rng.random_range(0..len);
        }
        let zipf = Zipf::new(len as f64, self.shared.zipf).expect("valid Zipf parameters");
        (zipf.sample(&mut self.rng) as usize).clamp(1, len) - 1
    }

    /// An index in `0..len` that this client may write to: the one nearest a Zipf-distributed
    /// draw.
    fn writable_index(&mut self, len: usize) -> usize {
        let index = self.zipf_index(len);
        let candidate = index - index % self.peers + self.slot;
        if candidate < len {
            candidate
        } else {
            self.slot.min(len.saturating_sub(1))
        }
    }

    fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        &items[self.zipf_index(items.len())]
    }

    /// A request for `path` on `instance`, signed in as this client's account.
    fn request(&self, instance: usize, method: Method, path: &str) -> Request {
        self.shared
            .request(instance, method, path)
            .token(&self.account.token)
    }

    /// A GET on the home instance that must answer 200; timed and recorded under `route`.
    async fn get(&mut self, route: &'static str, path: &str) -> anyhow::Result<Reply> {
        self.get_on(self.home, route, path).await
    }

    /// Like [`Client::get`], on the instance that checks this client's writes.
    async fn check(&mut self, route: &'static str, path: &str) -> anyhow::Result<Reply> {
        self.get_on(self.checker, route, path).await
    }

    async fn get_on(
        &mut self,
        instance: usize,
        route: &'static str,
        path: &str,
    ) -> anyhow::Result<Reply> {
        let started = Instant::now();
        let reply = self.request(instance, Method::GET, path).send().await?;
        self.count(route, started, &reply);
        anyhow::ensure!(
            reply.status == 200,
            "GET {path} answered {}: {}",
            reply.status,
            reply.text()
        );
        Ok(reply)
    }

    /// A GET outside the measurements (set-up).
    async fn get_raw(&self, path: &str) -> anyhow::Result<Reply> {
        let reply = self.request(self.home, Method::GET, path).send().await?;
        anyhow::ensure!(reply.status == 200, "GET {path} answered {}", reply.status);
        Ok(reply)
    }

    /// A write on the home instance that must answer 200; timed and recorded under `route`.
    async fn send(
        &mut self,
        route: &'static str,
        method: Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Reply> {
        let started = Instant::now();
        let reply = self
            .request(self.home, method.clone(), path)
            .json(&body)
            .send()
            .await?;
        self.count(route, started, &reply);
        anyhow::ensure!(
            reply.status == 200,
            "{method} {path} answered {}: {}",
            reply.status,
            reply.text()
        );
        Ok(reply)
    }

    fn count(&mut self, route: &'static str, started: Instant, reply: &Reply) {
        let x_cache = reply.x_cache.as_deref();
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(outcome) = x_cache {
            self.shared.cached.fetch_add(1, Ordering::Relaxed);
            self.shared
                .hits
                .fetch_add(u64::from(outcome == "HIT"), Ordering::Relaxed);
        }
        if self.shared.measuring.load(Ordering::Relaxed) {
            self.record.request(route, started.elapsed(), x_cache);
            self.record.served_by(reply.instance, reply.status);
        }
    }

    fn list_query(&mut self) -> String {
        let page = self.zipf_index(5) + 1;
        if self.rng.random_bool(0.5) {
            let word = SEARCH_WORDS[self.zipf_index(SEARCH_WORDS.len())];
            format!("page={page}&search={word}")
        } else {
            format!("page={page}")
        }
    }

    /// A read of one route, chosen by a roll of 0..100: the public list for any client, then
    /// the admin's or the user's own routes.
    async fn read(&mut self) -> anyhow::Result<()> {
        // Typed as it always was: another integer type may draw differently from the same seed.
        let roll: i32 = self.rng.random_range(0..100);
        if roll < 15 {
            return self.read_public_lessons().await;
        }
        if self.account.admin {
            // Drawn for every admin read past the public list, whether its route names it or not.
            let course = self.pick(&self.courses.clone()).to_owned();
            match roll {
                15..=39 => self.read_admin_courses().await,
                40..=64 => self.read_admin_course(&course).await,
                65..=79 => self.get_admin_lessons(&course).await.map(drop),
                80..=89 => self.read_admin_lesson(&course).await,
                _ => self.read_admin_participants(&course).await,
            }
        } else {
            match roll {
                15..=34 => self.read_user_courses().await,
                35..=59 => self.read_user_course().await,
                60..=84 => self.read_user_lesson().await,
                _ => self.read_user_participants().await,
            }
        }
    }

    /// A page of the public lesson list, searched or not.
    async fn read_public_lessons(&mut self) -> anyhow::Result<()> {
        let query = self.list_query();
        let path = format!("/api/public/lessons?{query}");
        self.get("GET /api/public/lessons", &path).await.map(drop)
    }

    /// A page of the admin's course list, searched or not.
    async fn read_admin_courses(&mut self) -> anyhow::Result<()> {
        let query = self.list_query();
        let path = format!("/api/admin/courses?{query}");
        self.get("GET /api/admin/courses", &path).await.map(drop)
    }

    async fn read_admin_course(&mut self, course: &str) -> anyhow::Result<()> {
        let path = format!("/api/admin/courses/{course}");
        self.get("GET /api/admin/courses/{id}", &path)
            .await
            .map(drop)
    }

    /// The lessons of one of the admin's courses.
    async fn get_admin_lessons(&mut self, course: &str) -> anyhow::Result<Reply> {
        let path = format!("/api/admin/courses/{course}/lessons");
        self.get("GET /api/admin/courses/{id}/lessons", &path).await
    }

    /// A lesson of the course, found in its list.
    async fn read_admin_lesson(&mut self, course: &str) -> anyhow::Result<()> {
        let lessons = self.get_admin_lessons(course).await?.json();
        let Some(lesson) = self.pick_id(&lessons["data"]) else {
            return Ok(());
        };
        let path = format!("/api/admin/courses/{course}/lessons/{lesson}");
        self.get("GET /api/admin/courses/{id}/lessons/{id}", &path)
            .await
            .map(drop)
    }

    /// One of the first pages of the course's participants.
    async fn read_admin_participants(&mut self, course: &str) -> anyhow::Result<()> {
        let page = self.zipf_index(3) + 1;
        let path = format!("/api/admin/courses/{course}/participants?page={page}");
        self.get("GET /api/admin/courses/{id}/participants", &path)
            .await
            .map(drop)
    }

    /// A page of the user's course list, searched or not.
    async fn read_user_courses(&mut self) -> anyhow::Result<()> {
        let query = self.list_query();
        let path = format!("/api/user/courses?{query}");
        self.get("GET /api/user/courses", &path).await.map(drop)
    }

    /// Any published course, joined or not.
    async fn read_user_course(&mut self) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        let course = self.pick(&shared.courses).to_owned();
        let path = format!("/api/user/courses/{course}");
        self.get("GET /api/user/courses/{id}", &path)
            .await
            .map(drop)
    }

    /// Any public lesson.
    async fn read_user_lesson(&mut self) -> anyhow::Result<()> {
        let index = self.zipf_index(self.shared.lessons.len());
        let path = format!("/api/user/lessons/{}", self.shared.lessons[index].0);
        self.get("GET /api/user/lessons/{id}", &path)
            .await
            .map(drop)
    }

    /// The participants of a course the user joined, if it is in any.
    async fn read_user_participants(&mut self) -> anyhow::Result<()> {
        let Some(course) = self.enrolled_course() else {
            return Ok(());
        };
        let path = format!("/api/user/courses/{course}/participants");
        self.get("GET /api/user/courses/{id}/participants", &path)
            .await
            .map(drop)
    }

    fn pick_id(&mut self, items: &Value) -> Option<String> {
        let items = items.as_array()?;
        if items.is_empty() {
            return None;
        }
        let index = self.zipf_index(items.len());
        items[index]["id"].as_str().map(str::to_owned)
    }

    fn enrolled_course(&mut self) -> Option<String> {
        let enrolled: Vec<String> = self
            .courses
            .iter()
            .zip(&self.enrolled)
            .filter(|(_, e)| **e)
            .map(|(c, _)| c.clone())
            .collect();
        (!enrolled.is_empty()).then(|| enrolled[self.rng.random_range(0..enrolled.len())].clone())
    }

    /// A write, then a read of a route it affects that must show it, on another instance.
    async fn write(&mut self) -> anyhow::Result<()> {
        if self.shared.measuring.load(Ordering::Relaxed) {
            self.record.writes += 1;
        }
        self.edits += 1;
        if self.account.admin {
            let index = self.writable_index(self.courses.len());
            let course = self.courses[index].clone();
            if self.rng.random_bool(0.5) {
                self.edit_presentation(&course).await
            } else {
                self.rename_lesson(&course).await
            }
        } else if self.rng.random_bool(0.5) || self.enrolled_course().is_none() {
            self.join_or_leave().await
        } else if let Some(course) = self.enrolled_course() {
            self.set_progress(&course).await
        } else {
            Ok(())
        }
    }

    /// Marks this client's latest edit, so that its check can tell it from any other.
    fn stamp(&self) -> String {
        format!("client {} edit {}", self.number, self.edits)
    }

    /// An admin rewrites the course's presentation; the checker must show the new one.
    async fn edit_presentation(&mut self, course: &str) -> anyhow::Result<()> {
        let presentation = format!("Presentation by {}", self.stamp());
        let path = format!("/api/admin/courses/{course}");
        let body = json!({"presentation": presentation});
        self.send("PATCH /api/admin/courses/{id}", Method::PATCH, &path, body)
            .await?;
        let detail = self
            .check("GET /api/admin/courses/{id}", &path)
            .await?
            .json();
        if detail["presentation"] != presentation.as_str() {
            self.stale(&format!(
                "course {course} presentation after PATCH: {}",
                detail["presentation"]
            ));
        }
        Ok(())
    }

    /// An admin renames a lesson of the course, found in its list; the checker must show the
    /// new name.
    async fn rename_lesson(&mut self, course: &str) -> anyhow::Result<()> {
        let lessons = self.get_admin_lessons(course).await?.json();
        let Some(lesson) = self.pick_id(&lessons["data"]) else {
            return Ok(());
        };
        let name = format!("Lesson renamed by {}", self.stamp());
        let path = format!("/api/admin/courses/{course}/lessons/{lesson}");
        let route = "PATCH /api/admin/courses/{id}/lessons/{id}";
        self.send(route, Method::PATCH, &path, json!({"name": name}))
            .await?;
        let detail = self
            .check("GET /api/admin/courses/{id}/lessons/{id}", &path)
            .await?
            .json();
        if detail["name"] != name.as_str() {
            self.stale(&format!(
                "lesson {lesson} name after PATCH: {}",
                detail["name"]
            ));
        }
        Ok(())
    }

    /// A user joins a course, or leaves one it joined; the checker must show the change.
    async fn join_or_leave(&mut self) -> anyhow::Result<()> {
        let index = self.zipf_index(self.courses.len().max(1));
        let (course, was_enrolled) = match self.courses.get(index) {
            Some(course) => (course.clone(), self.enrolled[index]),
            None => (self.shared.courses[0].clone(), false),
        };
        let (action, route) = if was_enrolled {
            ("leave", "POST /api/user/courses/{id}/leave")
        } else {
            ("join", "POST /api/user/courses/{id}/join")
        };
        let path = format!("/api/user/courses/{course}/{action}");
        self.send(route, Method::POST, &path, json!({})).await?;
        self.remember_enrolment(&course, !was_enrolled);
        let detail = self
            .check(
                "GET /api/user/courses/{id}",
                &format!("/api/user/courses/{course}"),
            )
            .await?
            .json();
        if detail["enrolled"] != !was_enrolled {
            self.stale(&format!(
                "course {course} enrolled after {action}: {}",
                detail["enrolled"]
            ));
        }
        Ok(())
    }

    /// Whether the user is now in `course`; a course it had not joined before is remembered.
    fn remember_enrolment(&mut self, course: &str, enrolled: bool) {
        match self.courses.iter().position(|c| c == course) {
            Some(i) => self.enrolled[i] = enrolled,
            None => {
                self.courses.push(course.to_owned());
                self.enrolled.push(enrolled);
            }
        }
    }

    /// A user sets its progress in a lesson of a course it joined; the checker must show it.
    async fn set_progress(&mut self, course: &str) -> anyhow::Result<()> {
        let detail = self
            .get(
                "GET /api/user/courses/{id}",
                &format!("/api/user/courses/{course}"),
            )
            .await?
            .json();
        let Some(lesson) = self.pick_id(&detail["lessons"]) else {
            return Ok(());
        };
        let progress = ["NOT_STARTED", "IN_PROGRESS", "COMPLETED"][self.rng.random_range(0..3)];
        let path = format!("/api/user/lessons/{lesson}");
        self.send(
            "PUT /api/user/lessons/{id}/progress",
            Method::PUT,
            &format!("{path}/progress"),
            json!({"progress": progress}),
        )
        .await?;
        let read = self
            .check("GET /api/user/lessons/{id}", &path)
            .await?
            .json();
        if read["progress"] != progress {
            self.stale(&format!(
                "lesson {lesson} progress after PUT {progress}: {}",
                read["progress"]
            ));
        }
        Ok(())
    }

    /// The ceiling: an authenticated route that does no work.
    pub async fn run_ceiling(mut self) -> Recorder {
        while !self.shared.stop.load(Ordering::Relaxed) {
            if let Err(error) = self.get("GET /api/me", "/api/me").await {
                self.error(&format!("{error:#}"));
            }
        }
        self.record
    }
}

/// Waits `duration`, printing a progress line every second to standard error: the last
/// second's throughput and hit ratio.
pub async fn progress(shared: &Shared, label: &str, duration: Duration) {
    let started = Instant::now();
    let counters = || {
        (
            shared.requests.load(Ordering::Relaxed),
            shared.cached.load(Ordering::Relaxed),
            shared.hits.load(Ordering::Relaxed),
        )
    };
    let mut last = counters();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1).min(duration.saturating_sub(started.elapsed())))
            .await;
        let now = counters();
        let (cached, hits) = (now.1 - last.1, now.2 - last.2);
        let hit = if cached == 0 {
            "-".to_owned()
        } else {
            format!("{:.3}", hits as f64 / cached as f64)
        };
        eprint!(
            "\r{label:<16} {:>5.1} s  {:>7} req/s  hit {hit:>5}  stale {}  errors {}   ",
            started.elapsed().as_secs_f64(),
            now.0 - last.0,
            shared.stale.load(Ordering::Relaxed),
            shared.errors.load(Ordering::Relaxed),
        );
        last = now;
    }
    eprintln!();
}
