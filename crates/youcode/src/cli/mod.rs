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
            eprintln!("error: {}", message(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, as `{:#}` prints them, without a cause that only
/// repeats the end of the line so far (a database error wraps its message, then gives it again
/// as its source).
fn message(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let cache = format!("{:?}", config.cache.backend).to_lowercase();
    let database = db::redact(&config.database_url);
    let app = crate::Application::build(config).await?;
    tracing::info!(%database, cache, "YouCode listening on http://{}", app.local_addr());
    app.run_until_stopped().await
}

#[cfg(test)]
mod tests {
    use super::message;

    #[derive(Debug, thiserror::Error)]
    #[error("database \"x\" does not exist")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("error returned from database: {0}")]
    struct Outer(#[source] Inner);

    #[test]
    fn a_cause_that_repeats_the_line_is_printed_once() {
        let error = anyhow::Error::new(Outer(Inner)).context("cannot connect to the database");
        assert_eq!(
            message(&error),
            "cannot connect to the database: error returned from database: database \"x\" does not exist"
        );
        let plain = anyhow::anyhow!("no such file").context("cannot read the seed");
        assert_eq!(message(&plain), "cannot read the seed: no such file");
    }
}
