//! Seeding: a deterministic data set, inserted in batches (`youcode seed`, the demo data set
//! on an empty database, the benchmark's reference data set).

use std::collections::HashSet;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Transaction};

use super::pool::{Backend, Db};
use crate::auth::hash_password;
use crate::config::PasswordCost;
use crate::domain::fold;

/// What to create. The same plan and seed always give the same rows (ids included).
#[derive(Debug, Clone)]
pub struct SeedPlan {
    pub courses: u32,
    pub lessons_per_course: u32,
    /// Numbered users (`user1@…`), besides `user@youcode.dev` and the two admins.
    pub users: u32,
    pub enrolments: u32,
    pub password: String,
    pub seed: u64,
    /// Delete every row first, in the same transaction: a failure leaves the old data.
    /// Otherwise a database that already holds accounts is left as it is: [`seed`] decides so
    /// inside the seeding transaction, which no other seeding runs beside, so processes started
    /// together on one empty database seed it once.
    pub replace: bool,
}

impl SeedPlan {
    /// The reference data set of the benchmarks.
    pub fn reference() -> Self {
        Self {
            courses: 20_000,
            lessons_per_course: 10,
            users: 10_000,
            enrolments: 100_000,
            password: DEMO_PASSWORD.into(),
            seed: 42,
            replace: false,
        }
    }

    /// A small data set for demos and quick runs.
    pub fn small() -> Self {
        Self {
            courses: 40,
            lessons_per_course: 6,
            users: 50,
            enrolments: 300,
            password: DEMO_PASSWORD.into(),
            seed: 42,
            replace: false,
        }
    }
}

pub const DEMO_PASSWORD: &str = "youcode";
pub const ADMIN_EMAILS: [&str; 2] = ["admin@youcode.dev", "admin2@youcode.dev"];
pub const USER_EMAIL: &str = "user@youcode.dev";

/// Rows per INSERT statement, at most.
const ROWS_PER_STATEMENT: usize = 500;
/// Bound parameters one statement may carry on both backends (SQLite 32766, PostgreSQL 65535):
/// a table with many columns gets fewer rows to a statement.
const MAX_PARAMETERS: usize = 32_766;
/// Fixed start of the seeded timeline (2026-01-01), so timestamps are reproducible too.
const EPOCH_MS: i64 = 1_767_225_600_000;

const TOPICS: [&str; 20] = [
    "Rust",
    "TypeScript",
    "React",
    "Next.js",
    "PostgreSQL",
    "Redis",
    "Docker",
    "Kubernetes",
    "Python",
    "Go",
    "Testing",
    "Security",
    "CSS",
    "GraphQL",
    "Linux",
    "Git",
    "Algorithms",
    "Design",
    "DevOps",
    "Machine Learning",
];
const LEVELS: [&str; 6] = [
    "Intro to",
    "Practical",
    "Advanced",
    "Mastering",
    "Building with",
    "Deep dive:",
];
const SUBJECTS: [&str; 12] = [
    "setup",
    "basics",
    "data modeling",
    "error handling",
    "performance",
    "caching",
    "testing",
    "deployment",
    "security",
    "debugging",
    "patterns",
    "project",
];

/// Creates the small demo data set, unless the database holds accounts (another instance
/// may have just created it), and tells how to sign in.
pub async fn seed_demo(db: &Db) -> anyhow::Result<()> {
    let plan = SeedPlan::small();
    if seed(db, &plan, false).await?.is_some() {
        println!("The database was empty: created a demo data set.");
        print_accounts(&plan.password);
    }
    Ok(())
}

/// Prints the accounts of a seeded data set and their password.
pub fn print_accounts(password: &str) {
    println!("Sign in (POST /api/auth/login) with:");
    for email in ADMIN_EMAILS {
        println!("  {email:<22} password {password:<10} ADMIN");
    }
    println!("  {USER_EMAIL:<22} password {password:<10} USER (also user1@youcode.dev, user2@…)");
}

/// Rows created.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub users: u64,
    pub courses: u64,
    pub lessons: u64,
    pub enrolments: u64,
}

/// Inserts `plan` in one transaction, in batches; shows a progress bar when asked. Returns
/// `None`, seeding nothing, when the database holds accounts and the plan does not replace them.
///
/// # Errors
/// When an insert fails.
pub async fn seed(db: &Db, plan: &SeedPlan, show_progress: bool) -> anyhow::Result<Option<Counts>> {
    let rows = Rows::of(plan);
    let bar = progress_bar(show_progress, rows.len());
    let mut tx = db
        .begin_seeding()
        .await
        .context("cannot start the seeding transaction")?;
    if plan.replace {
        bar.set_message("deleting");
        wipe(&mut tx).await?;
    } else if super::users::holds_accounts(&mut *tx)
        .await
        .context("cannot tell whether the database holds accounts")?
    {
        bar.finish_and_clear();
        return Ok(None);
    }
    let counts = rows.insert(&mut tx, &bar).await?;
    bar.set_message("committing");
    tx.commit().await.context("cannot commit the seeded data")?;
    bar.set_message("analyzing");
    analyze(db).await?;
    bar.finish_and_clear();
    Ok(Some(counts))
}

/// Every row of a plan, by table.
struct Rows {
    users: Vec<UserRow>,
    courses: Vec<CourseRow>,
    lessons: Vec<LessonRow>,
    enrolments: Vec<EnrolmentRow>,
}

impl Rows {
    /// The rows of `plan`. Ids come from one generator and choices from another, each drawn in
    /// a fixed order, so the same plan always gives the same rows.
    fn of(plan: &SeedPlan) -> Self {
        let mut ids = Ids(StdRng::seed_from_u64(plan.seed));
        let mut pick = StdRng::seed_from_u64(plan.seed ^ 0x5eed);
        let accounts = Accounts::of(plan, &mut ids);
        let catalogue = Catalogue::of(plan, &accounts.admins, &mut ids, &mut pick);
        let enrolments = enrolments(
            plan.enrolments,
            &accounts.learners,
            &catalogue.joinable,
            &mut pick,
        );
        Self {
            users: accounts.users,
            courses: catalogue.courses,
            lessons: catalogue.lessons,
            enrolments,
        }
    }

    fn len(&self) -> u64 {
        (self.users.len() + self.courses.len() + self.lessons.len() + self.enrolments.len()) as u64
    }

    /// Inserts every row, parents first.
    async fn insert(
        &self,
        tx: &mut Transaction<'static, Any>,
        bar: &ProgressBar,
    ) -> anyhow::Result<Counts> {
        Ok(Counts {
            users: insert(tx, bar, "users", &self.users).await?,
            courses: insert(tx, bar, "courses", &self.courses).await?,
            lessons: insert(tx, bar, "lessons", &self.lessons).await?,
            enrolments: insert(tx, bar, "enrolments", &self.enrolments).await?,
        })
    }
}

/// Reproducible ids: the same seed gives the same UUIDs in the same order.
struct Ids(StdRng);

impl Ids {
    fn next(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.0.random())
            .into_uuid()
            .to_string()
    }
}

/// The accounts: two admins, the demo user, then the numbered users.
struct Accounts {
    users: Vec<UserRow>,
    admins: Vec<Admin>,
    /// Ids of the users who may enrol, the demo user first.
    learners: Vec<String>,
}

/// An admin, who creates courses.
struct Admin {
    id: String,
    name: String,
}

impl Accounts {
    fn of(plan: &SeedPlan, ids: &mut Ids) -> Self {
        // Every account shares the password, so it is hashed once.
        let password_hash = hash_password(&plan.password, PasswordCost::Standard);
        let mut users = Vec::new();
        let mut add = |email: String, name: String, role: &'static str| {
            let id = ids.next();
            users.push(UserRow {
                id: id.clone(),
                email,
                name,
                role,
                password_hash: password_hash.clone(),
            });
            id
        };
        let admins: Vec<Admin> = ADMIN_EMAILS
            .iter()
            .zip(1..)
            .map(|(email, n)| {
                let name = format!("Admin {n}");
                let id = add((*email).into(), name.clone(), "ADMIN");
                Admin { id, name }
            })
            .collect();
        let mut learners = vec![add(USER_EMAIL.into(), "Demo User".into(), "USER")];
        for n in 1..=plan.users {
            learners.push(add(
                format!("user{n}@youcode.dev"),
                format!("User {n}"),
                "USER",
            ));
        }
        Self {
            users,
            admins,
            learners,
        }
    }
}

/// The courses, each with its lessons.
struct Catalogue {
    courses: Vec<CourseRow>,
    lessons: Vec<LessonRow>,
    /// The published courses, which users may join.
    joinable: Vec<Joinable>,
}

/// A published course, with what an enrolment copies of it.
struct Joinable {
    id: String,
    name: String,
    image: String,
    creator_name: String,
}

impl Catalogue {
    /// `plan.courses` courses, nine in ten published, spread over the admins in turn.
    fn of(plan: &SeedPlan, admins: &[Admin], ids: &mut Ids, pick: &mut StdRng) -> Self {
        let mut catalogue = Self {
            courses: Vec::new(),
            lessons: Vec::new(),
            joinable: Vec::new(),
        };
        for i in 0..plan.courses {
            let id = ids.next();
            let topic = TOPICS[i as usize % TOPICS.len()];
            let level = LEVELS[(i as usize / TOPICS.len()) % LEVELS.len()];
            let published = pick.random_bool(0.9);
            let name = format!("{level} {topic} #{}", i + 1);
            let image = format!("https://picsum.photos/seed/{}/640/360", i + 1);
            let creator = &admins[i as usize % admins.len()];
            for rank in 1..=plan.lessons_per_course {
                let lesson = LessonRow::of(&id, &name, topic, rank, published, ids, pick);
                catalogue.lessons.push(lesson);
            }
            if published {
                catalogue.joinable.push(Joinable {
                    id: id.clone(),
                    name: name.clone(),
                    image: image.clone(),
                    creator_name: creator.name.clone(),
                });
            }
            catalogue.courses.push(CourseRow {
                id,
                name_folded: fold(&name),
                name,
                image: Some(image),
                presentation: format!(
                    "Learn {topic} step by step, from {} to {}.",
                    SUBJECTS[0], SUBJECTS[11]
                ),
                creator_id: creator.id.clone(),
                state: if published { "PUBLISHED" } else { "DRAFT" },
                created_at: EPOCH_MS + i64::from(i) * 60_000,
            });
        }
        catalogue
    }
}

impl LessonRow {
    /// Lesson `rank` of course `course_id`: four in ten public, one in ten hidden, the others
    /// published.
    fn of(
        course_id: &str,
        course_name: &str,
        topic: &str,
        rank: u32,
        course_published: bool,
        ids: &mut Ids,
        pick: &mut StdRng,
    ) -> Self {
        let subject = SUBJECTS[(rank as usize - 1) % SUBJECTS.len()];
        let roll: f64 = pick.random();
        let state = if roll < 0.4 {
            "PUBLIC"
        } else if roll < 0.9 {
            "PUBLISHED"
        } else {
            "HIDDEN"
        };
        let name = format!("{topic} lesson {rank}: {subject}");
        Self {
            id: ids.next(),
            course_id: course_id.to_owned(),
            name_folded: fold(&name),
            name,
            content: format!(
                "# {topic}: {subject}\n\n{}",
                "Read, try, repeat. ".repeat(20)
            ),
            rank: i64::from(rank),
            state,
            listed: i64::from(state == "PUBLIC" && course_published),
            course_name: course_name.to_owned(),
        }
    }
}

/// Up to `wanted` distinct enrolments of `learners` in `courses`, the first of each the
/// busiest, as in real life.
fn enrolments(
    wanted: u32,
    learners: &[String],
    courses: &[Joinable],
    pick: &mut StdRng,
) -> Vec<EnrolmentRow> {
    let wanted = if courses.is_empty() {
        0
    } else {
        (wanted as usize).min(learners.len() * courses.len())
    };
    let mut enrolments = Vec::with_capacity(wanted);
    let mut seen = HashSet::with_capacity(wanted);
    // Skewed picks repeat pairs, and when nearly every pair is wanted the last ones take
    // ever longer to draw: attempts are bounded, and the summary tells how many were made.
    let mut attempts = wanted.saturating_mul(20).max(10_000);
    while enrolments.len() < wanted && attempts > 0 {
        attempts -= 1;
        let user = skewed(pick, learners.len());
        let course = skewed(pick, courses.len());
        if seen.insert((user, course)) {
            let course = &courses[course];
            enrolments.push(EnrolmentRow {
                user_id: learners[user].clone(),
                course_id: course.id.clone(),
                created_at: EPOCH_MS + 86_400_000 + pick.random_range(0..30 * 86_400_000),
                course_name: course.name.clone(),
                course_image: Some(course.image.clone()),
                creator_name: course.creator_name.clone(),
            });
        }
    }
    enrolments
}

/// An index in `0..len`, low indexes more likely (roughly 1/x).
fn skewed(rng: &mut StdRng, len: usize) -> usize {
    let x: f64 = rng.random();
    ((len as f64).powf(x) - 1.0)
        .floor()
        .clamp(0.0, len as f64 - 1.0) as usize
}

fn progress_bar(shown: bool, rows: u64) -> ProgressBar {
    if !shown {
        return ProgressBar::hidden();
    }
    ProgressBar::new(rows).with_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    )
}

/// Deletes every row (children first).
async fn wipe(tx: &mut Transaction<'static, Any>) -> anyhow::Result<()> {
    for statement in [
        "DELETE FROM lesson_progress",
        "DELETE FROM enrolments",
        "DELETE FROM lessons",
        "DELETE FROM courses",
        "DELETE FROM sessions",
        "DELETE FROM users",
    ] {
        sqlx::query(statement)
            .execute(&mut **tx)
            .await
            .with_context(|| format!("cannot empty the tables ({statement})"))?;
    }
    Ok(())
}

/// Fresh statistics, so the query planner knows the tables are no longer empty (and, on
/// PostgreSQL, a visibility map, so counts can use index-only scans).
async fn analyze(db: &Db) -> anyhow::Result<()> {
    let statement = match db.backend() {
        Backend::Postgres => "VACUUM ANALYZE",
        Backend::Sqlite => "ANALYZE",
    };
    sqlx::query(statement)
        .execute(db.pool())
        .await
        .context("cannot analyze the seeded tables")?;
    Ok(())
}

/// A query for the Any driver, bound as it is built.
type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// A row of one table, inserted with many others in one statement.
trait SeedRow {
    /// The statement's start: the table and its columns, in the order [`SeedRow::bind`] binds
    /// their values.
    const INSERT: &'static str;
    const COLUMNS: usize;

    /// `query` with this row's values bound after those it has.
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

/// Inserts `rows`, as many to a statement as [`ROWS_PER_STATEMENT`] and the bound parameter
/// limit allow; returns how many.
///
/// `QueryBuilder::push_values` would build these statements, but a `QueryBuilder` for the Any
/// driver writes `?` placeholders, which PostgreSQL rejects (sqlx issue #3000); the `$N`
/// placeholders written here suit both backends.
async fn insert<R: SeedRow>(
    tx: &mut Transaction<'static, Any>,
    bar: &ProgressBar,
    label: &'static str,
    rows: &[R],
) -> anyhow::Result<u64> {
    bar.set_message(label);
    let per_statement = ROWS_PER_STATEMENT.min(MAX_PARAMETERS / R::COLUMNS);
    for chunk in rows.chunks(per_statement) {
        let statement = values_statement(R::INSERT, R::COLUMNS, chunk.len());
        let query = chunk
            .iter()
            .fold(sqlx::query(&statement), |query, row| row.bind(query));
        query
            .execute(&mut **tx)
            .await
            .with_context(|| format!("inserting {label}"))?;
        bar.inc(chunk.len() as u64);
    }
    Ok(rows.len() as u64)
}

/// `insert` followed by `rows` tuples of `columns` placeholders each, numbered in order:
/// `… VALUES ($1, $2), ($3, $4)`.
fn values_statement(insert: &str, columns: usize, rows: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    format!("{insert} VALUES {}", tuples.join(", "))
}

struct UserRow {
    id: String,
    email: String,
    name: String,
    role: &'static str,
    password_hash: String,
}

impl SeedRow for UserRow {
    const INSERT: &'static str =
        "INSERT INTO users (id, email, name, image, role, password_hash, created_at)";
    const COLUMNS: usize = 7;

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.id.as_str())
            .bind(self.email.as_str())
            .bind(self.name.as_str())
            .bind(None::<&str>)
            .bind(self.role)
            .bind(self.password_hash.as_str())
            .bind(EPOCH_MS)
    }
}

struct CourseRow {
    id: String,
    name_folded: String,
    name: String,
    image: Option<String>,
    presentation: String,
    creator_id: String,
    state: &'static str,
    created_at: i64,
}

impl SeedRow for CourseRow {
    const INSERT: &'static str = "INSERT INTO courses
        (id, name_folded, name, image, presentation, creator_id, state, created_at)";
    const COLUMNS: usize = 8;

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.id.as_str())
            .bind(self.name_folded.as_str())
            .bind(self.name.as_str())
            .bind(self.image.as_deref())
            .bind(self.presentation.as_str())
            .bind(self.creator_id.as_str())
            .bind(self.state)
            .bind(self.created_at)
    }
}

struct LessonRow {
    id: String,
    course_id: String,
    name_folded: String,
    name: String,
    content: String,
    rank: i64,
    state: &'static str,
    /// Whether the public list shows it (a copy kept by every write, see `REFRESH_LISTING`).
    listed: i64,
    course_name: String,
}

impl SeedRow for LessonRow {
    const INSERT: &'static str = "INSERT INTO lessons
        (id, course_id, name_folded, name, content, rank, state, listed, course_name)";
    const COLUMNS: usize = 9;

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.id.as_str())
            .bind(self.course_id.as_str())
            .bind(self.name_folded.as_str())
            .bind(self.name.as_str())
            .bind(self.content.as_str())
            .bind(self.rank)
            .bind(self.state)
            .bind(self.listed)
            .bind(self.course_name.as_str())
    }
}

/// An active enrolment in a published course, with the copies it keeps of the course (its
/// image is short enough to be copied).
struct EnrolmentRow {
    user_id: String,
    course_id: String,
    created_at: i64,
    course_name: String,
    course_image: Option<String>,
    creator_name: String,
}

impl SeedRow for EnrolmentRow {
    const INSERT: &'static str = "INSERT INTO enrolments (user_id, course_id, created_at,
        course_name, course_image, course_image_long, creator_name, course_published)";
    const COLUMNS: usize = 8;

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.user_id.as_str())
            .bind(self.course_id.as_str())
            .bind(self.created_at)
            .bind(self.course_name.as_str())
            .bind(self.course_image.as_deref())
            .bind(0_i64)
            .bind(self.creator_name.as_str())
            .bind(1_i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_statements_number_their_placeholders_row_after_row() {
        assert_eq!(
            values_statement("INSERT INTO t (a, b)", 2, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }

    #[test]
    fn the_same_plan_gives_the_same_rows() {
        let plan = SeedPlan {
            password: "x".into(),
            ..SeedPlan::small()
        };

        let (first, second) = (Rows::of(&plan), Rows::of(&plan));

        let ids = |rows: &Rows| {
            let courses = rows.courses.iter().map(|c| c.id.clone());
            let enrolled = rows
                .enrolments
                .iter()
                .map(|e| e.user_id.clone() + &e.course_id);
            courses.chain(enrolled).collect::<Vec<_>>()
        };
        assert_eq!(ids(&first), ids(&second));
        assert_eq!(first.courses.len(), 40);
        assert_eq!(first.lessons.len(), 40 * 6);
        assert_eq!(first.users.len(), 2 + 1 + 50);
    }
}
