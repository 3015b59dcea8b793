//! `upstash-gateway --addr 127.0.0.1:8079 --redis-url redis://127.0.0.1:6379 --token T`: serves
//! the Upstash REST protocol over a Redis server (see the library docs).

use std::net::SocketAddr;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "UPSTASH_GATEWAY_ADDR", default_value = "127.0.0.1:8079")]
    addr: SocketAddr,
    /// The Redis server the commands run on.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The token clients must send (`Authorization: Bearer <token>`).
    #[arg(long, env = "UPSTASH_REDIS_REST_TOKEN", hide_env_values = true)]
    token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "upstash-gateway listening");
    upstash_gateway::serve(listener, &args.redis_url, &args.token).await
}
