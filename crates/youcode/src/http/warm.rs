//! Warming: filling a cold cache (just cleared, or a new store) with the entries read first,
//! before the readers come, at a pace the database can take beside live traffic.
//!
//! What is warmed, in this order: the first [`PUBLIC_PAGES`] pages of the public lesson list
//! (the landing page of anyone, signed in or not), the pages of the `top` published courses
//! with the most active enrolments, then the pages of those courses' visible lessons (the first
//! [`LESSONS_PER_COURSE`] of each). Every entry is looked up through the same cached read its
//! route uses, so a warmed entry is exactly the one the route would have stored, and an entry
//! already cached costs no statement.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachette::Outcome;
use futures::StreamExt as _;
use governor::{Quota, RateLimiter};
use serde::Serialize;

use super::error::AppError;
use super::public::public_lessons_page;
use super::user::{published_course_page, published_lesson_page};
use crate::config::Warming;
use crate::domain::{CourseId, LessonId, ListParams, Page};
use crate::state::AppState;

/// Pages of the public lesson list warmed (of its default length, unsearched).
pub const PUBLIC_PAGES: u32 = 3;
/// Lesson pages warmed per course, the first by rank.
pub const LESSONS_PER_COURSE: usize = 10;
/// Length of a public list page as the route answers it without `limit`.
const PUBLIC_PAGE_LIMIT: u32 = 10;

/// What one warming did, entry by entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Warmed {
    /// Entries fetched from the database and stored.
    pub warmed: u64,
    /// Entries the cache already held (`HIT`, or `STALE` and being refreshed).
    pub already_cached: u64,
    /// Entries gone since they were listed (a course unpublished or deleted meanwhile).
    pub skipped: u64,
    /// Entries that could not be fetched or stored (see the log).
    pub failed: u64,
    /// How long the warming took, in milliseconds.
    pub elapsed_ms: u64,
}

/// One entry to warm.
#[derive(Debug, Clone, Copy)]
enum Target {
    PublicPage(u32),
    Course(CourseId),
    Lesson(LessonId),
}

/// Counts of a warming under way, shared by its concurrent lookups.
#[derive(Default)]
struct Tally {
    warmed: AtomicU64,
    already_cached: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    fn record<T>(&self, target: Target, looked_up: &Result<cachette::Fetched<T>, AppError>) {
        let counter = match looked_up {
            Ok(fetched) => match fetched.outcome {
                Outcome::Miss => &self.warmed,
                Outcome::Hit | Outcome::Stale => &self.already_cached,
                // The store was skipped: the entry was answered but not stored.
                Outcome::Bypass => &self.failed,
            },
            Err(AppError::NotFound) => &self.skipped,
            Err(error) => {
                tracing::warn!(?target, %error, "warming an entry failed");
                &self.failed
            }
        };
        counter.fetch_add(1, Relaxed);
    }

    fn done(&self) -> u64 {
        [
            &self.warmed,
            &self.already_cached,
            &self.skipped,
            &self.failed,
        ]
        .iter()
        .map(|c| c.load(Relaxed))
        .sum()
    }

    fn finish(&self, elapsed: Duration) -> Warmed {
        Warmed {
            warmed: self.warmed.load(Relaxed),
            already_cached: self.already_cached.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            failed: self.failed.load(Relaxed),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Warms the entries read first, for the `top` most-joined published courses, looking up at
/// most `pace.rate` entries a second, `pace.concurrency` at once. `progress` is told
/// `(entries done, entries known so far)` after each entry; the second number grows once the
/// courses' lessons are known.
///
/// # Errors
/// [`AppError::Conflict`] when the cache is off, [`AppError::Unavailable`] when the store does
/// not take entries now (down, circuit open, an invalidation pending), or the error of the
/// statement listing the courses. An entry that fails does not stop the others: it is counted
/// in [`Warmed::failed`].
pub async fn warm(
    state: &AppState,
    top: u32,
    pace: Warming,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Warmed, AppError> {
    if !state.cache.config().enabled {
        return Err(AppError::Conflict(
            "the cache is off: there is nothing to warm",
        ));
    }
    if !state.cache.accepts_entries() {
        return Err(AppError::Unavailable(anyhow::anyhow!(
            "the cache store does not take entries now"
        )));
    }
    let started = Instant::now();
    // One lookup every 1/rate seconds, without bursts: the rate is the most the database sees.
    let limiter = RateLimiter::direct(Quota::per_second(pace.rate).allow_burst(NonZeroU32::MIN));
    let tally = Tally::default();
    let courses = state.db.most_joined_courses(top).await?;

    let first: Vec<Target> = (1..=PUBLIC_PAGES)
        .map(Target::PublicPage)
        .chain(courses.iter().copied().map(Target::Course))
        .collect();
    let (limiter, tally) = (&limiter, &tally);
    let known = first.len() as u64;
    progress(0, known);
    let lookups = futures::stream::iter(first).map(|target| async move {
        limiter.until_ready().await;
        let lessons = look_up(state, target, tally).await;
        progress(tally.done(), known);
        lessons
    });
    let lessons: Vec<LessonId> = lookups
        .buffered(pace.concurrency.get())
        .flat_map(futures::stream::iter)
        .collect()
        .await;

    let known = known + lessons.len() as u64;
    let lookups = futures::stream::iter(lessons).map(|lesson| async move {
        limiter.until_ready().await;
        look_up(state, Target::Lesson(lesson), tally).await;
        progress(tally.done(), known);
    });
    lookups
        .buffer_unordered(pace.concurrency.get())
        .collect::<()>()
        .await;
    Ok(tally.finish(started.elapsed()))
}

/// Looks `target` up through its route's cached read, counting how it went; a course answers
/// the lessons to warm after it.
async fn look_up(state: &AppState, target: Target, tally: &Tally) -> Vec<LessonId> {
    match target {
        Target::PublicPage(page) => {
            let params = ListParams {
                page: Page {
                    page,
                    limit: PUBLIC_PAGE_LIMIT,
                },
                search: None,
            };
            tally.record(target, &public_lessons_page(state, &params).await);
            Vec::new()
        }
        Target::Course(course) => {
            let looked_up = published_course_page(state, course).await;
            tally.record(target, &looked_up);
            looked_up
                .map(|page| {
                    let lessons = page.value.lessons.iter().take(LESSONS_PER_COURSE);
                    lessons.map(|lesson| lesson.id).collect()
                })
                .unwrap_or_default()
        }
        Target::Lesson(lesson) => {
            tally.record(target, &published_lesson_page(state, lesson).await);
            Vec::new()
        }
    }
}
