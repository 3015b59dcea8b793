//! `youcode cache stats|clear|invalidate|warm`: the cache of a deployment, from the command
//! line.

use indicatif::{ProgressBar, ProgressStyle};

use crate::build_cache;
use crate::config::{CacheCommand, CacheConfig, Config, WarmArgs};
use crate::db::Db;
use crate::state::AppState;

pub async fn run(command: CacheCommand) -> anyhow::Result<()> {
    match command {
        CacheCommand::Stats(args) => {
            let cache = open(args.cache.into())?;
            let usage = cache.usage().await?;
            println!("namespace  {}", cache.namespace().root());
            println!("keys       {}", usage.keys);
            match usage.bytes {
                Some(bytes) => println!("memory     {bytes} bytes"),
                None => println!("memory     unknown (the store does not report it)"),
            }
            for key in cache.sample_keys(20).await? {
                println!("  {key}");
            }
        }
        CacheCommand::Clear(args) => {
            let cache = open(args.cache.into())?;
            let deleted = cache.clear().await?;
            println!("deleted {deleted} keys under {}", cache.namespace().root());
        }
        CacheCommand::Invalidate { cache, tags } => {
            let cache = open(cache.cache.into())?;
            let tags: Vec<_> = tags.iter().map(|t| cache.tag(t)).collect();
            match cache.invalidate_tags(&tags).await {
                cachette::Invalidation::Applied => println!("invalidated {} tags", tags.len()),
                cachette::Invalidation::Deferred => anyhow::bail!("the cache store is unreachable"),
            }
        }
        CacheCommand::Warm(args) => warm(args).await?,
    }
    Ok(())
}

/// Warms the deployment's shared cache from its database, with a progress bar.
async fn warm(args: WarmArgs) -> anyhow::Result<()> {
    // The servers' flags give the policies too: warmed entries live as long as theirs.
    let cache_config = CacheConfig::from(args.cache);
    let cache = open(cache_config.clone())?;
    let db = Db::connect(&args.database.database_url).await?;
    let config = Config::beside_servers(
        args.database.database_url,
        cache_config,
        args.warming.into(),
    );
    let pace = config.warming;
    let state = AppState::new(db.clone(), cache.clone(), config);
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("warming [{bar:40}] {pos}/{len} entries ({per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let warmed = crate::http::warm(&state, args.top, pace, &|done, known| {
        bar.set_length(known);
        bar.set_position(done);
    })
    .await;
    bar.finish_and_clear();
    cache.leave().await;
    db.close().await;
    let warmed = warmed?;
    println!(
        "warmed {} entries ({} already cached, {} gone, {} failed) in {:.1} s",
        warmed.warmed,
        warmed.already_cached,
        warmed.skipped,
        warmed.failed,
        warmed.elapsed_ms as f64 / 1000.0
    );
    if warmed.failed > 0 {
        anyhow::bail!(
            "{} entries could not be warmed (see the log above)",
            warmed.failed
        );
    }
    Ok(())
}

/// The shared cache of a deployment: only Redis and Upstash outlive a process. With Redis it
/// joins the deployment's bus, so instances with an in-process tier hear what it invalidates.
fn open(config: CacheConfig) -> anyhow::Result<crate::state::AppCache> {
    if !config.backend.uses_redis() && config.backend != crate::config::CacheBackend::Upstash {
        anyhow::bail!(
            "the memory cache lives inside each server process; give --redis-url (or REDIS_URL) or --upstash-url and --upstash-token to inspect a shared cache, or use GET /api/admin/cache/stats"
        );
    }
    build_cache(&config, None)
}
