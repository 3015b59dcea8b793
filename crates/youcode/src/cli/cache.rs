//! `youcode cache stats|clear|invalidate`: the cache of a deployment, from the command line.

use crate::build_cache;
use crate::config::{CacheCommand, CacheConfig};

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
