//! Seeding: a deterministic data set, inserted in batches (`youcode seed`, the demo data set
//! on an empty database, the benchmark's reference data set).

use std::collections::HashSet;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Any, Transaction};

use super::Db;
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

/// Rows per INSERT statement: well under both backends' limits on bound parameters.
const ROWS_PER_STATEMENT: usize = 500;
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

/// A value bound into a batched INSERT.
enum Value {
    Text(String),
    MaybeText(Option<String>),
    Int(i64),
}

/// Inserts `plan` in one transaction, in batches; shows a progress bar when asked. Returns
/// `None`, seeding nothing, when the database holds accounts and the plan does not replace them.
///
/// # Errors
/// When an insert fails.
pub async fn seed(db: &Db, plan: &SeedPlan, show_progress: bool) -> anyhow::Result<Option<Counts>> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut uuid = move || {
        uuid::Builder::from_random_bytes(rng.random())
            .into_uuid()
            .to_string()
    };
    // Every account shares the password, so it is hashed once.
    let password_hash = hash_password(&plan.password, PasswordCost::Standard);

    let mut users: Vec<Vec<Value>> = Vec::new();
    let mut add_user =
        |email: String, name: String, role: &str, uuid: &mut dyn FnMut() -> String| {
            let id = uuid();
            users.push(vec![
                Value::Text(id.clone()),
                Value::Text(email),
                Value::Text(name),
                Value::MaybeText(None),
                Value::Text(role.into()),
                Value::Text(password_hash.clone()),
                Value::Int(EPOCH_MS),
            ]);
            id
        };
    let admin_names: Vec<String> = (1..=ADMIN_EMAILS.len())
        .map(|n| format!("Admin {n}"))
        .collect();
    let admins: Vec<String> = ADMIN_EMAILS
        .iter()
        .zip(&admin_names)
        .map(|(email, name)| add_user((*email).into(), name.clone(), "ADMIN", &mut uuid))
        .collect();
    let mut learners = vec![add_user(
        USER_EMAIL.into(),
        "Demo User".into(),
        "USER",
        &mut uuid,
    )];
    for n in 1..=plan.users {
        learners.push(add_user(
            format!("user{n}@youcode.dev"),
            format!("User {n}"),
            "USER",
            &mut uuid,
        ));
    }

    let mut pick = StdRng::seed_from_u64(plan.seed ^ 0x5eed);
    let mut courses = Vec::new();
    let mut lessons = Vec::new();
    // Published courses, with what an enrolment keeps of them: id, name, image, creator's name.
    let mut published: Vec<[String; 4]> = Vec::new();
    for i in 0..plan.courses {
        let id = uuid();
        let topic = TOPICS[i as usize % TOPICS.len()];
        let level = LEVELS[(i as usize / TOPICS.len()) % LEVELS.len()];
        let course_state = if pick.random_bool(0.9) {
            "PUBLISHED"
        } else {
            "DRAFT"
        };
        let name = format!("{level} {topic} #{}", i + 1);
        let course_name = name.clone();
        let image = format!("https://picsum.photos/seed/{}/640/360", i + 1);
        let creator = i as usize % admins.len();
        if course_state == "PUBLISHED" {
            published.push([
                id.clone(),
                name.clone(),
                image.clone(),
                admin_names[creator].clone(),
            ]);
        }
        courses.push(vec![
            Value::Text(id.clone()),
            Value::Text(fold(&name)),
            Value::Text(name),
            Value::MaybeText(Some(image)),
            Value::Text(format!(
                "Learn {topic} step by step, from {} to {}.",
                SUBJECTS[0], SUBJECTS[11]
            )),
            Value::Text(admins[creator].clone()),
            Value::Text(course_state.into()),
            Value::Int(EPOCH_MS + i64::from(i) * 60_000),
        ]);
        for rank in 1..=plan.lessons_per_course {
            let subject = SUBJECTS[(rank as usize - 1) % SUBJECTS.len()];
            let roll: f64 = pick.random();
            let state = if roll < 0.4 {
                "PUBLIC"
            } else if roll < 0.9 {
                "PUBLISHED"
            } else {
                "HIDDEN"
            };
            let listed = state == "PUBLIC" && course_state == "PUBLISHED";
            let name = format!("{topic} lesson {rank}: {subject}");
            lessons.push(vec![
                Value::Text(uuid()),
                Value::Text(id.clone()),
                Value::Text(fold(&name)),
                Value::Text(name),
                Value::Text(format!(
                    "# {topic}: {subject}\n\n{}",
                    "Read, try, repeat. ".repeat(20)
                )),
                Value::Int(i64::from(rank)),
                Value::Text(state.into()),
                Value::Int(i64::from(listed)),
                Value::Text(course_name.clone()),
            ]);
        }
    }

    let mut enrolments = Vec::new();
    let wanted = if published.is_empty() {
        0
    } else {
        (plan.enrolments as usize).min(learners.len() * published.len())
    };
    let mut seen = HashSet::with_capacity(wanted);
    // Skewed picks repeat pairs, and when nearly every pair is wanted the last ones take
    // ever longer to draw: attempts are bounded, and the summary tells how many were made.
    let mut attempts = wanted.saturating_mul(20).max(10_000);
    while enrolments.len() < wanted && attempts > 0 {
        attempts -= 1;
        // The first users and the first courses are the busiest, as in real life.
        let user = skewed(&mut pick, learners.len());
        let course = skewed(&mut pick, published.len());
        if seen.insert((user, course)) {
            let [id, name, image, creator] = &published[course];
            enrolments.push(vec![
                Value::Text(learners[user].clone()),
                Value::Text(id.clone()),
                Value::Int(EPOCH_MS + 86_400_000 + pick.random_range(0..30 * 86_400_000)),
                Value::Text(name.clone()),
                Value::MaybeText(Some(image.clone())),
                Value::Int(0),
                Value::Text(creator.clone()),
                Value::Int(1),
            ]);
        }
    }

    let total = (users.len() + courses.len() + lessons.len() + enrolments.len()) as u64;
    let bar = if show_progress {
        ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{msg:>12} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut tx = db
        .begin_seeding()
        .await
        .context("cannot start the seeding transaction")?;
    if plan.replace {
        bar.set_message("deleting");
        wipe(&mut tx).await?;
    } else if crate::db::holds_accounts(&mut *tx)
        .await
        .context("cannot tell whether the database holds accounts")?
    {
        bar.finish_and_clear();
        return Ok(None);
    }
    let counts = Counts {
        users: insert(
            &mut tx,
            &bar,
            "users",
            "users (id, email, name, image, role, password_hash, created_at)",
            users,
        )
        .await?,
        courses: insert(
            &mut tx,
            &bar,
            "courses",
            "courses (id, name_folded, name, image, presentation, creator_id, state, created_at)",
            courses,
        )
        .await?,
        lessons: insert(
            &mut tx,
            &bar,
            "lessons",
            "lessons (id, course_id, name_folded, name, content, rank, state, listed, course_name)",
            lessons,
        )
        .await?,
        enrolments: insert(
            &mut tx,
            &bar,
            "enrolments",
            "enrolments (user_id, course_id, created_at, course_name, course_image, course_image_long, creator_name, course_published)",
            enrolments,
        )
        .await?,
    };
    bar.set_message("committing");
    tx.commit().await.context("cannot commit the seeded data")?;
    // Fresh statistics, so the query planner knows the tables are no longer empty (and, on
    // PostgreSQL, a visibility map, so counts can use index-only scans).
    bar.set_message("analyzing");
    let analyze = match db.backend() {
        crate::db::Backend::Postgres => "VACUUM ANALYZE",
        crate::db::Backend::Sqlite => "ANALYZE",
    };
    sqlx::query(analyze)
        .execute(db.pool())
        .await
        .context("cannot analyze the seeded tables")?;
    bar.finish_and_clear();
    Ok(Some(counts))
}

/// An index in `0..len`, low indexes more likely (roughly 1/x).
fn skewed(rng: &mut StdRng, len: usize) -> usize {
    let x: f64 = rng.random();
    ((len as f64).powf(x) - 1.0)
        .floor()
        .clamp(0.0, len as f64 - 1.0) as usize
}

async fn insert(
    tx: &mut Transaction<'static, Any>,
    bar: &ProgressBar,
    label: &'static str,
    target: &str,
    rows: Vec<Vec<Value>>,
) -> anyhow::Result<u64> {
    bar.set_message(label);
    let count = rows.len() as u64;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let width = chunk[0].len();
        let mut sql = format!("INSERT INTO {target} VALUES ");
        for (r, _) in chunk.iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..width {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", r * width + c + 1));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = match value {
                Value::Text(text) => query.bind(text.as_str()),
                Value::MaybeText(text) => query.bind(text.as_deref()),
                Value::Int(int) => query.bind(*int),
            };
        }
        query
            .execute(&mut **tx)
            .await
            .with_context(|| format!("inserting {label}"))?;
        bar.inc(chunk.len() as u64);
    }
    Ok(count)
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
