//! Cache keys and tags: readable, injective, namespaced.
//!
//! A key reads like `youcode:v1:admin:courses:adminId=42:limit=5:page=1:search=rust%20async`:
//! the namespace and its schema version, the key's prefix, then its params sorted by name.
//! Param values are percent-escaped (everything but `A-Z a-z 0-9 - _ . ~ @ + , /`), so a value can
//! never forge a separator (`:` or `=`) or a glob character (`*`, `?`, `[`, `\`) and two different
//! inputs never produce the same key. Keys longer than [`MAX_KEY_LEN`] keep a readable head and end
//! in `#` and a SHA-256 digest of the whole key; `#` is always escaped in values, so a shortened key
//! cannot equal an unshortened one.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Longest key, in bytes, stored as it reads; longer ones are shortened by a hash.
pub const MAX_KEY_LEN: usize = 200;

/// Longest namespace name, in bytes: the namespace must fit in the head a shortened key keeps.
pub const MAX_NAMESPACE_LEN: usize = 64;

/// Hex digits of the SHA-256 digest that ends a shortened key (128 bits).
const DIGEST_HEX_LEN: usize = 32;

/// The root of every key and tag this cache writes, e.g. `youcode:v1:`.
///
/// Two caches with different namespaces never read or clear each other's data; bumping the schema
/// version makes every entry written by older code unreachable at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// `name:` — what `clear` removes (every schema version).
    root: Arc<str>,
    /// `name:vN:` — what every key and tag starts with.
    prefix: Arc<str>,
    /// The generation key every entry depends on; bumping it invalidates the whole namespace.
    epoch: Tag,
}

impl Namespace {
    /// A namespace named `name` (1 to [`MAX_NAMESPACE_LEN`] ASCII letters, digits, `-`, `_`) at
    /// schema version `version`.
    ///
    /// # Errors
    /// [`KeyError::BadName`] when `name` is empty, too long or holds another character.
    pub fn new(name: &str, version: u32) -> Result<Self, KeyError> {
        check_segment(name)?;
        // A longer one would be cut from shortened keys, which `clear` would then miss.
        if name.len() > MAX_NAMESPACE_LEN {
            return Err(KeyError::BadName(name.to_owned()));
        }
        let prefix: Arc<str> = format!("{name}:v{version}:").into();
        Ok(Self {
            root: format!("{name}:").into(),
            epoch: Tag(format!("{prefix}~epoch").into()),
            prefix,
        })
    }

    /// `name:vN:`, the start of every key and tag of this namespace.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `name:`, the start of every key of every schema version of this namespace.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The namespace-wide generation that every entry depends on.
    pub fn epoch(&self) -> &Tag {
        &self.epoch
    }

    /// Starts a key under `prefix`: one or more segments of ASCII letters, digits, `-` and `_`,
    /// joined by `:` (`"admin:courses"`).
    ///
    /// # Panics
    /// When `prefix` is not of that form: prefixes are written in code, never taken from input.
    pub fn key(&self, prefix: &str) -> KeyBuilder {
        assert!(
            !prefix.is_empty() && prefix.split(':').all(|s| check_segment(s).is_ok()),
            "cache key prefix {prefix:?} must be segments of [A-Za-z0-9_-] joined by ':'"
        );
        KeyBuilder {
            namespace: self.prefix.clone(),
            prefix: prefix.to_owned(),
            params: Vec::new(),
        }
    }

    /// The tag named `name`, e.g. `course:8f0c…`. Any characters are allowed: they are escaped.
    pub fn tag(&self, name: &str) -> Tag {
        let mut full = String::with_capacity(self.prefix.len() + 5 + name.len());
        full.push_str(&self.prefix);
        full.push_str("~tag:");
        // A tag is one component, so its separators need no escaping to stay injective.
        escape_into(name, &mut full, |b| b == b':' || b == b'=');
        Tag(shorten(full).into())
    }

    /// The tag whose stored form ([`Tag::as_str`]) is `stored`, kept somewhere else meanwhile
    /// (a database row, say); `None` when it is neither a tag of this namespace nor its epoch.
    pub fn stored_tag(&self, stored: &str) -> Option<Tag> {
        if stored == self.epoch.as_str() {
            return Some(self.epoch.clone());
        }
        let name = stored.strip_prefix(&*self.prefix)?.strip_prefix("~tag:")?;
        (!name.is_empty()).then(|| Tag(stored.into()))
    }
}

/// Builds a [`Key`]: a prefix and named params.
#[derive(Clone, Debug)]
pub struct KeyBuilder {
    namespace: Arc<str>,
    prefix: String,
    params: Vec<(&'static str, String)>,
}

impl KeyBuilder {
    /// Adds the param `name=value`. A later param of the same name replaces an earlier one.
    ///
    /// # Panics
    /// When `name` is empty or holds anything but ASCII letters, digits and `_`: names are written
    /// in code, never taken from input.
    pub fn param(mut self, name: &'static str, value: impl fmt::Display) -> Self {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "cache key param name {name:?} must be [A-Za-z0-9_]+"
        );
        let value = value.to_string();
        match self.params.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.params.push((name, value)),
        }
        self
    }

    /// Adds `name=value` only when `value` is `Some`; `None` and an absent param are the same key.
    pub fn param_opt(self, name: &'static str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(value) => self.param(name, value),
            None => self,
        }
    }

    /// The finished key.
    pub fn build(mut self) -> Key {
        self.params.sort_unstable_by_key(|(name, _)| *name);
        let mut full = String::with_capacity(
            self.namespace.len()
                + self.prefix.len()
                + self
                    .params
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 2)
                    .sum::<usize>(),
        );
        full.push_str(&self.namespace);
        full.push_str(&self.prefix);
        for (name, value) in &self.params {
            full.push(':');
            full.push_str(name);
            full.push('=');
            escape_into(value, &mut full, |_| false);
        }
        let prefix_range = (
            self.namespace.len(),
            self.namespace.len() + self.prefix.len(),
        );
        Key {
            full: shorten(full),
            prefix_range,
        }
    }
}

/// A finished cache key, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    full: String,
    /// Where the prefix (`admin:courses`) lies in `full`: stats are kept per prefix. A shortened
    /// key keeps its head, and the head always holds the whole prefix (prefixes are short).
    prefix_range: (usize, usize),
}

impl Key {
    /// The key as stored, namespace included.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The prefix the key was built under (`admin:courses`), for per-prefix stats.
    pub fn prefix(&self) -> &str {
        self.full
            .get(self.prefix_range.0..self.prefix_range.1)
            .unwrap_or("")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// A tag: the name of a set of entries that one invalidation makes stale together
/// (`course:42` marks everything built from course 42). What is stored under it is a generation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag(Arc<str>);

impl Tag {
    /// The store key of this tag's generation.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored key or tag with every param value and tag argument replaced by `…`, e.g.
/// `yc:v1:admin:courses:adminId=…:page=…` or `yc:v1:~tag:session:…`: what kind of entry it is,
/// never whose. `root` is the namespace root (`yc:`); a shortened key loses its digest.
pub(crate) fn redacted(root: &str, stored: &str) -> String {
    let Some(rest) = stored.strip_prefix(root) else {
        return "…".to_owned();
    };
    // A shortened key's head may end in the middle of a value: what follows `#` is a digest.
    let (rest, shortened) = match rest.split_once('#') {
        Some((head, _)) => (head, true),
        None => (rest, false),
    };
    let mut out = String::with_capacity(stored.len());
    out.push_str(root);
    let mut segments = rest.split(':');
    if let Some(version) = segments.next() {
        out.push_str(version);
    }
    let mut in_tag = false;
    for (i, segment) in segments.enumerate() {
        out.push(':');
        if in_tag && i > 1 {
            // Everything after a tag's kind is its argument (`course:…`, `learner:…`).
            out.push('…');
            break;
        }
        match segment.split_once('=') {
            Some((name, _)) => {
                out.push_str(name);
                out.push_str("=…");
            }
            None => out.push_str(segment),
        }
        in_tag |= i == 0 && segment == "~tag";
    }
    if shortened && !out.ends_with('…') {
        out.push('…');
    }
    out
}

/// A namespace name or key prefix segment that is not of the allowed form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0:?} must be 1 to {max} ASCII letters, digits, '-' and '_'", max = MAX_NAMESPACE_LEN)]
    BadName(String),
}

fn check_segment(segment: &str) -> Result<(), KeyError> {
    if !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(KeyError::BadName(segment.to_owned()))
    }
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@' | b'+' | b',' | b'/')
}

/// Percent-escapes every byte that is neither plain nor `also_plain`. Injective: `%` itself is
/// always escaped.
fn escape_into(value: &str, out: &mut String, also_plain: impl Fn(u8) -> bool) {
    for b in value.bytes() {
        if is_plain(b) || (b != b'%' && also_plain(b)) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Keeps a key as it is when short enough; otherwise its head, `#`, and a digest of all of it.
fn shorten(full: String) -> String {
    if full.len() <= MAX_KEY_LEN {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let head_len = MAX_KEY_LEN - DIGEST_HEX_LEN - 1;
    let mut short = String::with_capacity(MAX_KEY_LEN);
    // Escaped keys are ASCII, so any byte index is a char boundary.
    short.push_str(&full[..head_len]);
    short.push('#');
    for byte in &digest[..DIGEST_HEX_LEN / 2] {
        let _ = write!(short, "{byte:02x}");
    }
    short
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stored_tag_is_read_back_only_in_its_namespace() {
        let ns = super::Namespace::new("yc", 1).unwrap();
        let other = super::Namespace::new("other", 1).unwrap();
        let tag = ns.tag("course:42");
        assert_eq!(ns.stored_tag(tag.as_str()), Some(tag.clone()));
        assert_eq!(
            ns.stored_tag(ns.epoch().as_str()).as_ref(),
            Some(ns.epoch())
        );
        assert_eq!(other.stored_tag(tag.as_str()), None);
        assert_eq!(ns.stored_tag("yc:v1:course:42"), None);
    }

    use super::*;

    fn ns() -> Namespace {
        Namespace::new("yc", 1).unwrap()
    }

    #[test]
    fn keys_read_as_prefix_and_sorted_params() {
        let key = ns()
            .key("admin:courses")
            .param("search", "rust async")
            .param("page", 1)
            .param("limit", 5)
            .param("adminId", "a1")
            .build();
        assert_eq!(
            key.as_str(),
            "yc:v1:admin:courses:adminId=a1:limit=5:page=1:search=rust%20async"
        );
        assert_eq!(key.prefix(), "admin:courses");
    }

    #[test]
    fn separators_and_glob_characters_are_escaped() {
        let key = ns().key("p").param("q", "a:b=c*?[\\]%#").build();
        assert_eq!(key.as_str(), "yc:v1:p:q=a%3Ab%3Dc%2A%3F%5B%5C%5D%25%23");
    }

    #[test]
    fn long_keys_are_shortened_with_a_digest_and_keep_their_prefix() {
        let long = "x".repeat(500);
        let key = ns().key("public:lessons").param("search", &long).build();
        assert_eq!(key.as_str().len(), MAX_KEY_LEN);
        assert!(key.as_str().contains('#'));
        assert_eq!(key.prefix(), "public:lessons");
        let other = ns()
            .key("public:lessons")
            .param("search", format!("{long}y"))
            .build();
        assert_ne!(key, other);
    }

    #[test]
    fn a_later_param_replaces_an_earlier_one_of_the_same_name() {
        let key = ns().key("p").param("a", 1).param("a", 2).build();
        assert_eq!(key.as_str(), "yc:v1:p:a=2");
    }

    #[test]
    fn bad_namespace_names_are_refused() {
        assert!(Namespace::new("", 1).is_err());
        assert!(Namespace::new("a:b", 1).is_err());
        assert!(Namespace::new("a*", 1).is_err());
    }

    #[test]
    fn shortened_keys_keep_the_whole_namespace_of_the_longest_name() {
        let name = "n".repeat(MAX_NAMESPACE_LEN);
        let ns = Namespace::new(&name, u32::MAX).unwrap();
        let key = ns.key("p").param("q", "x".repeat(500)).build();
        assert_eq!(key.as_str().len(), MAX_KEY_LEN);
        assert!(key.as_str().starts_with(ns.prefix()));
        assert_eq!(key.prefix(), "p");
        assert!(Namespace::new(&format!("{name}n"), 1).is_err());
    }

    #[test]
    #[should_panic(expected = "prefix")]
    fn a_prefix_with_a_glob_character_panics() {
        let _ = ns().key("admin:*");
    }

    #[test]
    fn redacted_keys_show_their_kind_and_param_names_only() {
        let root = ns().root().to_owned();
        let key = ns()
            .key("admin:courses")
            .param("adminId", "8f0c")
            .param("search", "secret plans")
            .build();
        assert_eq!(
            redacted(&root, key.as_str()),
            "yc:v1:admin:courses:adminId=…:search=…"
        );
        for (tag, shown) in [
            ("session:0123abcd", "yc:v1:~tag:session:…"),
            ("learner:u1:c1", "yc:v1:~tag:learner:…"),
            ("public-counts", "yc:v1:~tag:public-counts"),
        ] {
            assert_eq!(redacted(&root, ns().tag(tag).as_str()), shown);
        }
        assert_eq!(redacted(&root, ns().epoch().as_str()), "yc:v1:~epoch");
        let long = ns()
            .key("public:lessons")
            .param("search", "x".repeat(500))
            .build();
        assert_eq!(
            redacted(&root, long.as_str()),
            "yc:v1:public:lessons:search=…"
        );
        assert_eq!(redacted(&root, "other:v1:p:a=1"), "…");
    }

    #[test]
    fn tags_are_escaped_and_distinct_from_keys() {
        let tag = ns().tag("course:1");
        assert_eq!(tag.as_str(), "yc:v1:~tag:course:1");
        assert_ne!(ns().tag("a:b"), ns().tag("a%3Ab"));
    }
}
