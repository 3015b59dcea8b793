//! Everything the application knows about caching.
//!
//! - [`keys`]: every cache key and tag, and the table of what reads and what bumps each tag.
//! - [`invalidation`]: what each write makes stale, as pure functions from its outcome to tags.

pub mod invalidation;
pub mod keys;
