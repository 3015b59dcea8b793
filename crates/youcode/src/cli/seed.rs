//! `youcode seed`: a deterministic data set, inserted in batches with a progress bar.

use std::time::Instant;

use crate::config::SeedArgs;
use crate::db::Db;
use crate::db::seed::{SeedPlan, print_accounts, seed};

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let plan = SeedPlan {
        courses: args.courses,
        lessons_per_course: args.lessons_per_course,
        users: args.users,
        enrolments: args.enrolments.unwrap_or(args.users.saturating_mul(10)),
        password: args.password,
        seed: args.seed,
        replace: args.reset,
    };
    let db = Db::connect(&args.database.database_url).await?;
    db.migrate().await?;
    let refused = || {
        anyhow::anyhow!(
            "the database already holds data; add --reset to replace it with the seeded set"
        )
    };
    // Fails before building the rows in the common case; `seed` decides under its lock.
    if !args.reset && db.has_users().await? {
        return Err(refused());
    }
    let started = Instant::now();
    let counts = seed(&db, &plan, true).await?.ok_or_else(refused)?;
    if args.reset {
        eprintln!(
            "note: a shared cache (Redis) still holds entries of the old data: run `youcode cache clear`"
        );
    }
    println!(
        "seeded {} users, {} courses, {} lessons, {} enrolments in {:.1} s",
        counts.users,
        counts.courses,
        counts.lessons,
        counts.enrolments,
        started.elapsed().as_secs_f64()
    );
    print_accounts(&plan.password);
    Ok(())
}
