//! Single-flight: concurrent misses on one key under one generation snapshot run one fetch.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::generation::Snapshot;

/// In-flight fetches by key and snapshot.
///
/// The snapshot is part of the identity: a reader that saw newer generations (because an
/// invalidation landed in between) must not take a value fetched before that invalidation.
#[derive(Default)]
pub(crate) struct Flights {
    /// A `parking_lot` mutex, never held across an await: it guards only map inserts and removals.
    map: FlightMap,
}

type FlightKey = (String, Snapshot);
type FlightMap =
    Arc<Mutex<HashMap<FlightKey, watch::Receiver<Option<Bytes>>, foldhash::fast::RandomState>>>;

pub(crate) enum Role {
    /// Runs the fetch and publishes its payload.
    Leader(Leader),
    /// Waits for the leader's payload.
    Follower(watch::Receiver<Option<Bytes>>),
}

/// The fetching caller. Dropping it (on success, error or cancellation) ends the flight; followers
/// that got no payload then fetch for themselves.
pub(crate) struct Leader {
    map: FlightMap,
    key: FlightKey,
    sender: watch::Sender<Option<Bytes>>,
}

impl Leader {
    pub(crate) fn publish(&self, payload: Bytes) {
        self.sender.send_replace(Some(payload));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.map.lock().remove(&self.key);
    }
}

impl Flights {
    pub(crate) fn join(&self, key: &str, snapshot: &Snapshot) -> Role {
        let flight_key = (key.to_owned(), snapshot.clone());
        let mut map = self.map.lock();
        if let Some(receiver) = map.get(&flight_key) {
            return Role::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        map.insert(flight_key.clone(), receiver);
        Role::Leader(Leader {
            map: self.map.clone(),
            key: flight_key,
            sender,
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

/// Waits for the leader; `None` when it ended without a payload.
pub(crate) async fn wait(mut receiver: watch::Receiver<Option<Bytes>>) -> Option<Bytes> {
    // A payload published before the leader ended is seen even after the channel closed.
    receiver
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|payload| payload.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::Generation;

    #[tokio::test]
    async fn followers_of_one_snapshot_get_the_leaders_payload_and_the_flight_ends_with_it() {
        let flights = Flights::default();
        let snapshot: Snapshot = [Generation(1)].into_iter().collect();
        let Role::Leader(leader) = flights.join("k", &snapshot) else {
            panic!("the first caller must lead");
        };
        let Role::Follower(follower) = flights.join("k", &snapshot) else {
            panic!("the second caller must follow");
        };
        let newer: Snapshot = [Generation(2)].into_iter().collect();
        assert!(matches!(flights.join("k", &newer), Role::Leader(_)));
        leader.publish(Bytes::from_static(b"v"));
        drop(leader);
        assert_eq!(wait(follower).await.as_deref(), Some(&b"v"[..]));
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn followers_of_a_leader_that_ends_without_a_payload_get_none() {
        let flights = Flights::default();
        let snapshot = Snapshot::new();
        let leader = flights.join("k", &snapshot);
        let Role::Follower(follower) = flights.join("k", &snapshot) else {
            panic!("the second caller must follow");
        };
        drop(leader);
        assert_eq!(wait(follower).await, None);
    }
}
