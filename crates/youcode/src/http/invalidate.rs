//! How a write hands its invalidation to the cache and settles what its transactions owed, and
//! the relay that applies what writers left behind (see `db/outbox.rs`).

use std::time::Duration;

use cachette::{Invalidation, Tag};

use crate::db::outbox::{self, LeftBehind};
use crate::observe::events::{InvalidationEvent, Source};
use crate::state::AppState;

/// How often the relay looks for outbox rows left behind.
const RELAY_INTERVAL: Duration = Duration::from_millis(250);
/// How old a row must be before the relay applies it: a live writer settles its own well
/// before (unless its invalidation waits out an instance's lease; applying a row twice only
/// costs misses). A crashed writer's write is visible everywhere within about this plus
/// [`RELAY_INTERVAL`].
pub const RELAY_DELAY: Duration = Duration::from_secs(1);

/// Invalidates `tags`, what the write running in this task changed (decided by
/// `cache::invalidation`), then settles the outbox rows its transactions recorded: deleted
/// when the cache has the invalidation, else given the tags for a relay to apply (in the
/// background: the answer need not wait for the bookkeeping; should it fail, a relay applies
/// the rows, or the whole namespace for rows without tags).
pub async fn invalidate(state: &AppState, tags: &[Tag]) -> Invalidation {
    let owed = outbox::take_owed();
    let invalidation = state.cache.invalidate_tags(tags).await;
    let applied = invalidation == Invalidation::Applied;
    state.monitor.publish(InvalidationEvent::of_tags(
        Source::Write,
        state.cache.namespace(),
        tags,
        applied,
    ));
    if !owed.is_empty() {
        let db = state.db.clone();
        let tags: Vec<String> = tags.iter().map(|tag| tag.as_str().to_owned()).collect();
        tokio::spawn(async move {
            if let Err(error) = db.settle_outbox(&owed, applied, &tags).await {
                tracing::warn!(%error, "the cache outbox could not be settled; a relay will apply it");
            }
        });
    }
    invalidation
}

/// Applies, every [`RELAY_INTERVAL`], the outbox rows left behind for longer than
/// [`RELAY_DELAY`]: forever (the server aborts it when it stops).
pub async fn relay(state: AppState) {
    let mut tick = tokio::time::interval(RELAY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let applied = state
            .db
            .relay_outbox(RELAY_DELAY, async |rows| apply(&state, rows).await)
            .await;
        match applied {
            Ok(0) => {}
            Ok(rows) => {
                state.metrics.record_relayed(rows as u64);
                tracing::info!(rows, "applied cache invalidations a writer left behind");
            }
            // The database is down: so are the writes that could owe anything.
            Err(error) => tracing::debug!(%error, "the cache outbox relay cannot read the outbox"),
        }
    }
}

/// Invalidates what `rows` owe: their tags, or the whole namespace when one has none recorded.
/// Whether the cache has it.
async fn apply(state: &AppState, rows: &[LeftBehind]) -> bool {
    let cache = &state.cache;
    let tags: Vec<Tag> = if rows.iter().any(|row| row.tags.is_none()) {
        vec![cache.namespace().epoch().clone()]
    } else {
        rows.iter()
            .flat_map(|row| row.tags.iter().flatten())
            .filter_map(|tag| cache.namespace().stored_tag(tag))
            .collect()
    };
    // The whole namespace is its epoch's tag (what `invalidate_all` invalidates).
    let applied = cache.invalidate_tags(&tags).await == Invalidation::Applied;
    state.monitor.publish(InvalidationEvent::of_tags(
        Source::Relay,
        cache.namespace(),
        &tags,
        applied,
    ));
    applied
}
