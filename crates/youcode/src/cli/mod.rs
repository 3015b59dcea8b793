//! The commands: `serve` (default), `seed`, `user create`, `cache stats|clear|invalidate`.

pub mod cache;
pub mod seed;
pub mod user;

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::config::{Cli, Command, Config, UserCommand};
use crate::db;

/// Runs the command line; errors are printed, never panicked.
pub async fn run(cli: Cli) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        None => serve(cli.serve.into()).await,
        Some(Command::Serve(args)) => serve(args.into()).await,
        Some(Command::Seed(args)) => seed::run(args).await,
        Some(Command::User(UserCommand::Create(args))) => user::create(args).await,
        Some(Command::Cache(command)) => cache::run(command).await,
        Some(Command::Bench(args)) => crate::bench::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let cache = format!("{:?}", config.cache.backend).to_lowercase();
    let database = db::redact(&config.database_url);
    let app = crate::Application::build(config).await?;
    tracing::info!(%database, cache, "YouCode listening on http://{}", app.local_addr());
    app.run_until_stopped().await
}
