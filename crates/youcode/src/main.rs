//! `youcode`: parses the command line and runs the command.

use clap::Parser as _;

/// A server answers from many threads at once, and allocates for every request: mimalloc's
/// per-thread heaps cost a fraction of the system allocator's locks there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    youcode::cli::run(youcode::config::Cli::parse()).await
}
