//! A bus inside one process, for several caches in one program and for tests.

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use super::{BoxFuture, Bus, BusError, Heard};

/// Messages a listener may fall behind by before it misses some (and says so).
const CAPACITY: usize = 4096;

/// A bus between the caches of one process. Clones share the channel.
#[derive(Clone)]
pub struct LocalBus {
    sender: broadcast::Sender<Bytes>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Bus for LocalBus {
    fn publish(&self, message: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        // No listener is not a failure: the message reached everyone listening.
        let _ = self.sender.send(message);
        Box::pin(async { Ok(()) })
    }

    fn listen(&self, heard: mpsc::Sender<Heard>) -> BoxFuture<'static, ()> {
        let sender = self.sender.clone();
        Box::pin(async move {
            loop {
                let mut receiver = sender.subscribe();
                if heard.send(Heard::Listening).await.is_err() {
                    return;
                }
                loop {
                    match receiver.recv().await {
                        Ok(message) => {
                            if heard.send(Heard::Message(message)).await.is_err() {
                                return;
                            }
                        }
                        // Fell behind: messages were missed; listen anew and say so.
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        })
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
