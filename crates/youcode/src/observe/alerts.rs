//! Alerts: what the samples say is wrong, decided by a pure function ([`evaluate`]), and the
//! episodes they make ([`AlertBook`]): an alert is raised once when it starts firing and
//! cleared once when it stops, however many evaluations it fires in between.

use std::collections::BTreeMap;

use serde::Serialize;

use super::history::{Sample, difference};
use crate::config::AlertThresholds;
use crate::domain::Timestamp;

/// What can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AlertKind {
    HitRatioLow,
    StoreErrors,
    BreakerOpen,
    InvalidationsPending,
    DatabaseDown,
}

/// An alert firing at one evaluation, with what the samples showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub kind: AlertKind,
    /// Figures only (ratios, counts, seconds): never a key, a tag or anything a client sent.
    pub message: String,
}

/// The alerts firing at the latest of `samples` (oldest first, one a second or so).
pub fn evaluate(thresholds: &AlertThresholds, samples: &[Sample]) -> Vec<Firing> {
    let mut firing = Vec::new();
    let Some(latest) = samples.last() else {
        return firing;
    };
    // The oldest sample within the window: what happened since is the window's.
    let start = latest.at.saturating_sub(thresholds.window);
    let first = samples
        .iter()
        .find(|sample| sample.at >= start)
        .unwrap_or(latest);
    let seconds = (latest.at - first.at).as_secs();
    let lookups = difference(first.lookups, latest.lookups);
    if thresholds.hit_ratio_floor > 0.0
        && lookups.total() > 0
        && lookups.total() >= thresholds.min_lookups
        && lookups.hit_ratio() < thresholds.hit_ratio_floor
    {
        firing.push(Firing {
            kind: AlertKind::HitRatioLow,
            message: format!(
                "hit ratio {:.2} over the last {seconds} s ({} lookups), below {}",
                lookups.hit_ratio(),
                lookups.total(),
                thresholds.hit_ratio_floor
            ),
        });
    }
    let errors = latest.store_errors.saturating_sub(first.store_errors);
    if thresholds.store_errors > 0 && errors >= thresholds.store_errors {
        firing.push(Firing {
            kind: AlertKind::StoreErrors,
            message: format!("{errors} store errors over the last {seconds} s"),
        });
    }
    if latest.breaker_open {
        firing.push(Firing {
            kind: AlertKind::BreakerOpen,
            message: "the circuit breaker is open: requests skip the store".into(),
        });
    }
    if latest.pending {
        // Since the first sample of the run of pending samples that ends at the latest.
        let since = samples
            .iter()
            .rev()
            .take_while(|sample| sample.pending)
            .last()
            .map_or(latest.at, |sample| sample.at);
        let pending_for = latest.at - since;
        if pending_for >= thresholds.pending_after {
            firing.push(Firing {
                kind: AlertKind::InvalidationsPending,
                message: format!(
                    "invalidations have waited for the store for {} s: nothing is served from it",
                    pending_for.as_secs()
                ),
            });
        }
    }
    if !latest.database_ok {
        firing.push(Firing {
            kind: AlertKind::DatabaseDown,
            message: "the database does not answer".into(),
        });
    }
    firing
}

/// An alert of the current episode.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAlert {
    pub kind: AlertKind,
    /// When the episode began.
    pub since: Timestamp,
    /// What the latest evaluation showed.
    pub message: String,
}

/// How the alerts changed at an evaluation: each is logged once.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Raised(Firing),
    Cleared(AlertKind),
}

/// The alerts firing now, and since when.
#[derive(Debug, Default)]
pub struct AlertBook {
    active: BTreeMap<AlertKind, ActiveAlert>,
}

impl AlertBook {
    /// Takes the alerts firing at `now`: raises those not firing before, clears those that
    /// stopped, and keeps the rest's episode (with the latest message).
    pub fn update(&mut self, firing: Vec<Firing>, now: Timestamp) -> Vec<Change> {
        let mut changes = Vec::new();
        let stopped: Vec<AlertKind> = self
            .active
            .keys()
            .filter(|kind| firing.iter().all(|f| f.kind != **kind))
            .copied()
            .collect();
        for kind in stopped {
            self.active.remove(&kind);
            changes.push(Change::Cleared(kind));
        }
        for alert in firing {
            match self.active.get_mut(&alert.kind) {
                Some(active) => active.message = alert.message,
                None => {
                    self.active.insert(
                        alert.kind,
                        ActiveAlert {
                            kind: alert.kind,
                            since: now,
                            message: alert.message.clone(),
                        },
                    );
                    changes.push(Change::Raised(alert));
                }
            }
        }
        changes
    }

    /// The alerts firing, in the order of [`AlertKind`].
    pub fn active(&self) -> Vec<ActiveAlert> {
        self.active.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cachette::Lookups;

    use super::*;

    fn thresholds() -> AlertThresholds {
        AlertThresholds::default()
    }

    /// A healthy sample at `second` with these lookup totals.
    fn at(second: u64, hits: u64, misses: u64) -> Sample {
        Sample {
            at: Duration::from_secs(second),
            lookups: Lookups {
                hits,
                misses,
                ..Lookups::default()
            },
            database_ok: true,
            ..Sample::default()
        }
    }

    fn kinds(firing: &[Firing]) -> Vec<AlertKind> {
        firing.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn healthy_samples_raise_nothing() {
        let samples = [at(0, 0, 0), at(1, 500, 100)];
        assert_eq!(evaluate(&thresholds(), &samples), []);
        assert_eq!(evaluate(&thresholds(), &[]), []);
    }

    #[test]
    fn a_low_hit_ratio_fires_only_with_enough_lookups_in_the_window() {
        let low = [at(0, 0, 0), at(60, 40, 60)];
        assert_eq!(
            kinds(&evaluate(&thresholds(), &low)),
            [AlertKind::HitRatioLow]
        );
        let quiet = [at(0, 0, 0), at(60, 40, 59)];
        assert_eq!(evaluate(&thresholds(), &quiet), []);
        let at_the_floor = [at(0, 0, 0), at(60, 50, 50)];
        assert_eq!(evaluate(&thresholds(), &at_the_floor), []);
    }

    #[test]
    fn the_hit_ratio_counts_only_the_lookups_of_the_window() {
        // 1000 misses long ago, then 200 hits within the last five minutes.
        let samples = [
            at(0, 0, 0),
            at(10, 0, 1000),
            at(400, 100, 1000),
            at(700, 300, 1000),
        ];
        assert_eq!(evaluate(&thresholds(), &samples), []);
        let early = &samples[..2];
        assert_eq!(
            kinds(&evaluate(&thresholds(), early)),
            [AlertKind::HitRatioLow]
        );
    }

    #[test]
    fn store_errors_in_the_window_fire_and_older_ones_do_not() {
        let mut errors = [at(0, 0, 0), at(100, 0, 0), at(400, 0, 0)];
        errors[1].store_errors = 2;
        errors[2].store_errors = 2;
        // The error happened between second 0 and 100: out of the window at 400.
        assert_eq!(evaluate(&thresholds(), &errors), []);
        assert_eq!(
            kinds(&evaluate(&thresholds(), &errors[..2])),
            [AlertKind::StoreErrors]
        );
    }

    #[test]
    fn invalidations_pending_fire_after_the_threshold() {
        let mut samples: Vec<Sample> = (0..=40).map(|s| at(s, 0, 0)).collect();
        for sample in &mut samples[5..] {
            sample.pending = true;
        }
        // Pending since second 5: 35 s at second 40, 29 s at second 34.
        assert_eq!(
            kinds(&evaluate(&thresholds(), &samples)),
            [AlertKind::InvalidationsPending]
        );
        assert_eq!(evaluate(&thresholds(), &samples[..35]), []);
        // A pause in the run starts it again.
        samples[20].pending = false;
        assert_eq!(evaluate(&thresholds(), &samples), []);
    }

    #[test]
    fn breaker_open_and_database_down_fire_at_once() {
        let mut latest = at(0, 0, 0);
        latest.breaker_open = true;
        latest.database_ok = false;
        assert_eq!(
            kinds(&evaluate(&thresholds(), &[latest])),
            [AlertKind::BreakerOpen, AlertKind::DatabaseDown]
        );
    }

    fn firing(kind: AlertKind, message: &str) -> Firing {
        Firing {
            kind,
            message: message.into(),
        }
    }

    #[test]
    fn an_episode_is_raised_once_and_cleared_once() {
        let mut book = AlertBook::default();
        let t = Timestamp::from_millis;
        let open = || vec![firing(AlertKind::BreakerOpen, "open")];

        assert_eq!(
            book.update(open(), t(1000)),
            [Change::Raised(firing(AlertKind::BreakerOpen, "open"))]
        );
        assert_eq!(book.update(open(), t(2000)), []);
        assert_eq!(book.update(open(), t(3000)), []);
        assert_eq!(book.active()[0].since, t(1000));
        assert_eq!(
            book.update(Vec::new(), t(4000)),
            [Change::Cleared(AlertKind::BreakerOpen)]
        );
        assert_eq!(book.update(Vec::new(), t(5000)), []);
        assert!(book.active().is_empty());
        // A new episode is raised again, with its own start.
        assert_eq!(book.update(open(), t(6000)).len(), 1);
        assert_eq!(book.active()[0].since, t(6000));
    }

    #[test]
    fn an_active_alert_shows_the_latest_message() {
        let mut book = AlertBook::default();
        let t = Timestamp::from_millis;
        book.update(vec![firing(AlertKind::StoreErrors, "2 errors")], t(0));
        let changes = book.update(
            vec![
                firing(AlertKind::StoreErrors, "5 errors"),
                firing(AlertKind::DatabaseDown, "down"),
            ],
            t(1000),
        );
        assert_eq!(
            changes,
            [Change::Raised(firing(AlertKind::DatabaseDown, "down"))]
        );
        let active = book.active();
        assert_eq!(active[0].message, "5 errors");
        assert_eq!(active[0].since, t(0));
    }
}
