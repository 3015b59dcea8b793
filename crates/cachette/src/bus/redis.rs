//! The Redis bus: `PUBLISH` on one channel, heard through a dedicated `SUBSCRIBE` connection.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

use super::{BoxFuture, Bus, BusError, Heard};

/// How often the listening connection is checked with a `PING`, so a connection that died
/// without closing is noticed and replaced.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a connection attempt or a `PING` may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Wait between two failed subscription attempts.
const BACKOFF: Duration = Duration::from_millis(200);

/// A bus over Redis pub/sub, addressed by a `redis://` or `rediss://` URL.
///
/// Redis delivers the messages of one channel to each subscriber in the order it executed the
/// `PUBLISH` commands, and drops a subscriber that falls too far behind (its connection closes,
/// so the listener subscribes again and says [`Heard::Listening`]): what [`Bus`] asks.
#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    /// Publishing shares one multiplexed connection that reconnects by itself.
    publisher: ConnectionManager,
    channel: String,
}

impl RedisBus {
    /// A bus on `channel` of the server at `url`, connecting lazily. Needs a Tokio runtime.
    ///
    /// # Errors
    /// When `url` is not a valid Redis URL.
    pub fn new(url: &str, channel: &str) -> Result<Self, BusError> {
        let client = redis::Client::open(url).map_err(failed)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let publisher =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(failed)?;
        Ok(Self {
            client,
            publisher,
            channel: channel.to_owned(),
        })
    }

    /// Subscribes, then passes on what is heard until the connection fails or `heard` closes.
    /// Returns whether to go on (the connection failed) or stop (`heard` is closed).
    async fn listen_once(&self, heard: &mpsc::Sender<Heard>) -> bool {
        let connected = tokio::time::timeout(TIMEOUT, async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let Ok(Ok(pubsub)) = connected else {
            return !heard.is_closed();
        };
        if heard.send(Heard::Listening).await.is_err() {
            return false;
        }
        let (mut sink, mut messages) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => {
                        let payload = Bytes::copy_from_slice(message.get_payload_bytes());
                        if heard.send(Heard::Message(payload)).await.is_err() {
                            return false;
                        }
                    }
                    None => return true,
                },
                _ = ping.tick() => {
                    let answered =
                        tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        return true;
                    }
                }
                () = heard.closed() => return false,
            }
        }
    }
}

impl Bus for RedisBus {
    fn publish(&self, message: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(message.as_ref())
                .query_async::<()>(&mut self.publisher.clone())
                .await
                .map_err(failed)
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
        "redis"
    }
}

fn failed(error: redis::RedisError) -> BusError {
    BusError(error.to_string())
}
