//! `youcode`: parses the command line and runs the command.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    youcode::cli::run(youcode::config::Cli::parse()).await
}
