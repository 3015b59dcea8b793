//! Everything the application knows about caching.
//!
//! - [`keys`]: every cache key and tag, and the table of what reads and what bumps each tag.
//! - `course_list`: how a user's course list is cached (its payload codec and its chunks).
//! - [`invalidation`]: what each write makes stale, as pure functions from its outcome to tags.

pub(crate) mod course_list;
pub mod invalidation;
pub mod keys;
