//! The PostgreSQL bus: instances that share only the database tell each other about
//! invalidations with `pg_notify`, heard on a `LISTEN` connection.
//!
//! PostgreSQL delivers the notifications of a channel to each listening session in the order
//! their transactions committed, and says when a listening connection was lost (sqlx's
//! `try_recv` answers `None` after reconnecting): what `cachette::Bus` asks. A notification
//! carries at most 8000 bytes; a longer invalidation goes out as one of the whole namespace.

use std::str::FromStr as _;
use std::time::Duration;

use bytes::Bytes;
use cachette::bus::BoxFuture;
use cachette::{Bus, BusError, Heard};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;

/// Longest notification payload PostgreSQL accepts, less one byte.
const MAX_PAYLOAD: usize = 7999;
/// How long connecting a listener may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Wait between two failed attempts to listen.
const BACKOFF: Duration = Duration::from_millis(200);

/// A bus on one PostgreSQL channel.
#[derive(Clone)]
pub struct PgBus {
    url: String,
    /// Its own small pool, so bus traffic neither waits for the application's connections nor
    /// counts among its statements. One instance publishes one message at a time.
    publisher: PgPool,
    channel: String,
}

impl PgBus {
    /// A bus on `channel` of the database at `url` (a `postgres://` URL), connecting lazily.
    ///
    /// # Errors
    /// When `url` is not a valid PostgreSQL URL.
    pub fn new(url: &str, channel: &str) -> anyhow::Result<Self> {
        // A notifying transaction commits like a write: without this it would wait for the
        // WAL to reach the disk. A notification outlives no crash of the server anyway (its
        // listeners lose their connections and relearn everything).
        let options = PgConnectOptions::from_str(url)?.options([("synchronous_commit", "off")]);
        let publisher = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self {
            url: url.to_owned(),
            publisher,
            channel: channel.to_owned(),
        })
    }

    /// Listens, then passes on what is heard until the connection fails or `heard` closes.
    /// Returns whether to go on (the connection failed) or stop (`heard` is closed).
    async fn listen_once(&self, heard: &mpsc::Sender<Heard>) -> bool {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut listener = PgListener::connect(&self.url).await?;
            listener.listen(&self.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        })
        .await;
        let Ok(Ok(mut listener)) = connected else {
            return !heard.is_closed();
        };
        if heard.send(Heard::Listening).await.is_err() {
            return false;
        }
        loop {
            let next = tokio::select! {
                next = listener.try_recv() => next,
                () = heard.closed() => return false,
            };
            let said = match next {
                Ok(Some(notification)) => {
                    Heard::Message(Bytes::copy_from_slice(notification.payload().as_bytes()))
                }
                // Lost and listening again: notifications may have been missed meanwhile.
                Ok(None) => Heard::Listening,
                Err(_) => return true,
            };
            if heard.send(said).await.is_err() {
                return false;
            }
        }
    }
}

impl Bus for PgBus {
    fn publish(&self, message: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let payload = std::str::from_utf8(&message)
                .map_err(|_| BusError("a notification must be text".into()))?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(payload)
                .execute(&self.publisher)
                .await
                .map(|_| ())
                .map_err(|error| BusError(error.to_string()))
        })
    }

    fn listen(&self, heard: mpsc::Sender<Heard>) -> BoxFuture<'static, ()> {
        let bus = self.clone();
        Box::pin(async move {
            while bus.listen_once(&heard).await {
                tokio::time::sleep(BACKOFF).await;
            }
        })
    }

    fn name(&self) -> &'static str {
        "postgres"
    }

    fn max_message_bytes(&self) -> usize {
        MAX_PAYLOAD
    }
}
