//! Invalidations as they happen, for the dashboard's live list.

use cachette::{Namespace, Tag};
use serde::Serialize;

use crate::domain::Timestamp;

/// Who invalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A write, once committed.
    Write,
    /// The outbox relay, for a writer that did not finish.
    Relay,
    /// An admin's `POST /api/admin/cache/invalidate`.
    AdminTags,
    /// An admin's `POST /api/admin/cache/clear`.
    AdminClear,
}

/// One invalidation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidationEvent {
    pub at: Timestamp,
    pub source: Source,
    /// What was invalidated: for writes and the relay, the kinds of their tags (`course`,
    /// `lesson-count`, `all` for the whole namespace), never their arguments, which are ids,
    /// session hashes or words of titles; for `adminTags`, the tags as the admin typed them.
    /// Empty for `adminClear`.
    pub tags: Vec<String>,
    /// How many tags (or, for `adminClear`, keys) it covered.
    pub count: u64,
    /// Whether the store has it (else it is pending, and retried).
    pub applied: bool,
}

impl InvalidationEvent {
    /// A write's or the relay's invalidation of `tags`, shown by kind.
    pub fn of_tags(source: Source, namespace: &Namespace, tags: &[Tag], applied: bool) -> Self {
        let mut kinds: Vec<String> = tags.iter().map(|tag| tag_kind(namespace, tag)).collect();
        kinds.sort();
        kinds.dedup();
        Self {
            at: super::now(),
            source,
            tags: kinds,
            count: tags.len() as u64,
            applied,
        }
    }
}

/// The kind of a tag: its name up to the first `:` (`course` for `course:42`); `all` for the
/// namespace's epoch.
pub fn tag_kind(namespace: &Namespace, tag: &Tag) -> String {
    if tag == namespace.epoch() {
        return "all".into();
    }
    let name = tag
        .as_str()
        .strip_prefix(namespace.prefix())
        .and_then(|rest| rest.strip_prefix("~tag:"))
        .unwrap_or("");
    match name.split_once(':') {
        Some((kind, _)) => kind.to_owned(),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_event_shows_the_kinds_of_its_tags_not_their_arguments() {
        let ns = Namespace::new("yc", 2).unwrap();
        let tags = [
            ns.tag("course:42"),
            ns.tag("public-search:secret words"),
            ns.tag("session:abcdef"),
            ns.tag("course:43"),
            ns.tag("all-courses"),
            ns.epoch().clone(),
        ];
        let event = InvalidationEvent::of_tags(Source::Write, &ns, &tags, true);
        assert_eq!(
            event.tags,
            ["all", "all-courses", "course", "public-search", "session"]
        );
        assert_eq!(event.count, 6);
    }
}
