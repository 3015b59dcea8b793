//! Everything the application knows about caching.
//!
//! - [`keys`]: every cache key and tag, and the table of what reads and what bumps each tag.
//! - `course_list`: how a user's course list is cached (its payload codec and its chunks).
//! - [`invalidation`]: what each write makes stale, as pure functions from its outcome to tags.
//!
//! [`AppCache`] is the cache itself, over whichever store the configuration chose.

pub(crate) mod course_list;
pub mod invalidation;
pub mod keys;

/// The application's cache, over whichever store the configuration chose.
pub type AppCache = cachette::Cache<cachette::AnyStore>;
