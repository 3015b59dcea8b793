//! The servers the bench starts in this process, each on a free port and a runtime of its own.

use anyhow::Context as _;
use tokio::sync::oneshot;

use super::instances::Instances;
use crate::Application;
use crate::config::{
    BenchArgs, CacheBackend, CacheConfig, Config, PasswordCost, Policies, Refresh,
};

/// The configuration of the servers of one run, on `database_url` with the `backend` cache and
/// the policies `args` asks for. Its cache namespace is new, so a run never reads what another
/// one wrote.
pub fn config(database_url: &str, backend: CacheBackend, args: &BenchArgs) -> Config {
    let namespace = format!("youcode-bench-{:08x}", rand::random::<u32>());
    let mut cache = CacheConfig::memory(&namespace);
    cache.backend = backend;
    cache.redis_url = args.redis_url.clone();
    cache.upstash = args.upstash.clone();
    cache.policies = Policies::with_overrides(
        &args.ttl,
        Refresh {
            stale_while_revalidate: args.stale_while_revalidate.into(),
            ..Refresh::default()
        },
    );
    Config {
        addr: "127.0.0.1:0".parse().expect("a valid address"),
        metrics_addr: None,
        database_url: database_url.to_owned(),
        cache,
        seed_demo: false,
        password_cost: PasswordCost::Standard,
        sessions: Default::default(),
        login: Default::default(),
        limits: Default::default(),
        warming: Default::default(),
        alerts: Default::default(),
    }
}

/// The servers of one run: instances of one deployment, on one database and one cache
/// configuration (namespace included, so with Redis they share its entries).
pub struct Servers(Vec<Server>);

impl Servers {
    /// Starts `count` servers with `config`, one after the other.
    ///
    /// # Errors
    /// When one cannot start; those already started are stopped.
    pub async fn start(config: &Config, count: usize) -> anyhow::Result<Self> {
        let mut servers = Self(Vec::with_capacity(count));
        for _ in 0..count {
            match Server::start(config.clone()).await {
                Ok(server) => servers.0.push(server),
                Err(error) => {
                    let _ = servers.stop().await; // the start's error says more
                    return Err(error);
                }
            }
        }
        Ok(servers)
    }

    /// Where the clients find them.
    pub fn instances(&self) -> Instances {
        Instances::new(self.0.iter().map(|server| server.base.clone()))
    }

    /// Stops every server and waits for them to end.
    ///
    /// # Errors
    /// The first failure or panic among them, once all have ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut first_error = None;
        for server in self.0 {
            if let Err(error) = server.stop().await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A server started by the bench, in this process, on a free port. It runs on a tokio runtime
/// of its own (one worker per CPU, beside the load generator's), as a server does beside its
/// clients: sharing one runtime, a run settled in one of two speeds (see the README).
struct Server {
    base: String,
    stop: oneshot::Sender<()>,
    /// The thread that owns the server's runtime, which must outlive every task of the server.
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(config: Config) -> anyhow::Result<Self> {
        let (started, on_started) = oneshot::channel();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("bench-server".to_owned())
            .spawn(move || serve_on_own_runtime(config, started, stopped))?;
        let base = on_started
            .await
            .context("the bench server stopped before it started")??;
        Ok(Self { base, stop, thread })
    }

    /// Stops the server and waits for it to end.
    ///
    /// # Errors
    /// When the server failed or panicked.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await? {
            Ok(served) => served.context("the bench server failed"),
            Err(_) => anyhow::bail!("the bench server panicked"),
        }
    }
}

/// Builds the server on a new runtime, sends its base URL (or why it could not start) to
/// `started`, serves until `stopped`, then empties its cache namespace (shared by the servers
/// of a run, which stop together).
fn serve_on_own_runtime(
    config: Config,
    started: oneshot::Sender<anyhow::Result<String>>,
    stopped: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-server")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = started.send(Err(anyhow::Error::new(error).context("no server runtime")));
            return Ok(()); // reported through `started`
        }
    };
    runtime.block_on(async move {
        let app = match Application::build(config).await {
            Ok(app) => app,
            Err(error) => {
                let _ = started.send(Err(error));
                return Ok(()); // reported through `started`
            }
        };
        let _ = started.send(Ok(format!("http://{}", app.local_addr())));
        let cache = app.state().cache.clone();
        let served = app
            .run_until(async {
                let _ = stopped.await;
            })
            .await;
        if cache.config().enabled {
            let _ = cache.clear().await;
        }
        served
    })
}
