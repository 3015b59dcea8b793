//! How instances sharing a cache tell each other about invalidations.
//!
//! A [`Bus`] is a broadcast channel: every message published reaches every instance listening,
//! the publisher included. It carries the fleet's messages (heartbeats, invalidations,
//! acknowledgements; see [`Fleet`](crate::fleet)); it knows nothing of their meaning.
//!
//! # What a bus must provide
//!
//! - Every listener hears the messages published while it listens, in the order the bus
//!   accepted them (FIFO per channel), the publisher's own included.
//! - A listener that may have missed messages (a dropped connection, a lagging subscriber cut
//!   off by the server) says so by sending [`Heard::Listening`] again once it listens anew.
//!
//! The fleet tolerates more than that (lost, late and reordered messages are detected or made
//! safe by sequence numbers, acknowledgements and a lease), but this is what the guarantee of
//! [`Cache::invalidate_tags`](crate::Cache::invalidate_tags) across instances is argued from.
//!
//! A bus is chosen at run time and may live outside this crate (an application's PostgreSQL
//! `LISTEN/NOTIFY` bus, say), and it is off the read path: so it is a trait object.

mod local;
#[cfg(feature = "redis")]
mod redis;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::mpsc;

pub use self::local::LocalBus;
#[cfg(feature = "redis")]
pub use self::redis::RedisBus;

/// A boxed future, as [`Bus`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a listener passes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The listener is subscribed (again): every message published from now on reaches it.
    /// Messages published since the previous `Listening` may have been missed.
    Listening,
    /// One message, as it was published.
    Message(Bytes),
}

/// Publishing failed; the message may or may not have been delivered.
#[derive(Debug, thiserror::Error)]
#[error("bus unreachable or failing: {0}")]
pub struct BusError(pub String);

/// A broadcast channel between the instances sharing a cache. See the [module docs](self).
pub trait Bus: Send + Sync + 'static {
    /// Publishes `message` to every listener, this instance's included.
    fn publish(&self, message: Bytes) -> BoxFuture<'_, Result<(), BusError>>;

    /// Listens until `heard` is closed: sends [`Heard::Listening`] each time a subscription
    /// is made (reconnecting after failures, with a short backoff), then each message heard.
    fn listen(&self, heard: mpsc::Sender<Heard>) -> BoxFuture<'static, ()>;

    /// A short name for health reports (`"redis"`, `"postgres"`, `"local"`).
    fn name(&self) -> &'static str;

    /// The longest message the bus carries. A longer invalidation is sent as one of the whole
    /// namespace epoch: every instance forgets its whole local view, which is always safe.
    fn max_message_bytes(&self) -> usize {
        usize::MAX
    }
}
