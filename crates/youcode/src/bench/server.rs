//! A server the bench starts in this process, on a free port and a runtime of its own.

use anyhow::Context as _;
use tokio::sync::oneshot;

use crate::Application;
use crate::config::{CacheBackend, CacheConfig, Config, PasswordCost};

/// A server started by the bench, in this process, on a free port. It runs on a tokio runtime
/// of its own (one worker per CPU, beside the load generator's), as a server does beside its
/// clients: sharing one runtime, a run settled in one of two speeds (see the README).
pub struct Server {
    pub base: String,
    stop: oneshot::Sender<()>,
    /// The thread that owns the server's runtime, which must outlive every task of the server.
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub async fn start(
        database_url: &str,
        backend: CacheBackend,
        redis_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let namespace = format!("youcode-bench-{:08x}", rand::random::<u32>());
        let mut cache = CacheConfig::memory(&namespace);
        cache.backend = backend;
        cache.redis_url = redis_url;
        let config = Config {
            addr: "127.0.0.1:0".parse().expect("a valid address"),
            database_url: database_url.to_owned(),
            cache,
            seed_demo: false,
            password_cost: PasswordCost::Standard,
            sessions: Default::default(),
            login: Default::default(),
            limits: Default::default(),
        };
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
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await? {
            Ok(served) => served.context("the bench server failed"),
            Err(_) => anyhow::bail!("the bench server panicked"),
        }
    }
}

/// Builds the server on a new runtime, sends its base URL (or why it could not start) to
/// `started`, serves until `stopped`, then removes what its cache wrote.
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
