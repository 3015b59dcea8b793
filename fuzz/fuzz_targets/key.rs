//! cachette's keys and tags: no input panics (prefixes and param names are those code may
//! write), two different inputs never give the same key or tag, and every key and tag fits in
//! `MAX_KEY_LEN` bytes.

#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use cachette::Namespace;
use cachette::key::{MAX_KEY_LEN, MAX_NAMESPACE_LEN};
use libfuzzer_sys::fuzz_target;

/// The characters of a namespace name or prefix segment: exactly 64, so any byte maps to one.
const SEGMENT_CHARS: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Param names as code writes them.
const PARAM_NAMES: [&str; 8] = ["a", "b", "page", "limit", "search", "adminId", "a_1", "Z9"];

#[derive(Arbitrary, Debug)]
struct KeyInput {
    /// Used as it is when valid, else as bytes mapped onto `SEGMENT_CHARS`.
    namespace: String,
    version: u32,
    prefix: Vec<Vec<u8>>,
    params: Vec<(u8, Option<String>)>,
    tag: String,
}

/// What a key is made of, once later params have replaced earlier ones of the same name.
#[derive(Debug, PartialEq, Eq)]
struct Model {
    namespace: String,
    version: u32,
    prefix: String,
    params: BTreeMap<&'static str, String>,
}

fuzz_target!(|inputs: (KeyInput, KeyInput)| {
    let (a, b) = inputs;
    let (key_a, tag_a, model_a) = build(&a);
    let (key_b, tag_b, model_b) = build(&b);
    assert_eq!(
        key_a == key_b,
        model_a == model_b,
        "{model_a:?} and {model_b:?} give {key_a:?} and {key_b:?}"
    );
    let same_tag = (&model_a.namespace, model_a.version, &a.tag)
        == (&model_b.namespace, model_b.version, &b.tag);
    assert_eq!(tag_a == tag_b, same_tag, "{tag_a:?} and {tag_b:?}");
    assert_ne!(key_a, tag_b, "a key equals a tag");
    assert_ne!(key_b, tag_a, "a key equals a tag");
});

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAMESPACE_LEN && s.bytes().all(|b| SEGMENT_CHARS.contains(&b))
}

fn segment(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| char::from(SEGMENT_CHARS[usize::from(b % 64)]))
        .collect()
}

/// The key and tag of `input`, checked on their own, and the model of the key.
fn build(input: &KeyInput) -> (String, String, Model) {
    let namespace = match Namespace::new(&input.namespace, input.version) {
        Ok(namespace) => {
            assert!(is_name(&input.namespace), "{:?} accepted", input.namespace);
            (namespace, input.namespace.clone())
        }
        Err(_) => {
            assert!(!is_name(&input.namespace), "{:?} refused", input.namespace);
            let bytes = input.namespace.as_bytes();
            let name = match segment(&bytes[..bytes.len().min(MAX_NAMESPACE_LEN)]) {
                name if name.is_empty() => "n".to_owned(),
                name => name,
            };
            (Namespace::new(&name, input.version).unwrap(), name)
        }
    };
    let (namespace, name) = namespace;
    let segments: Vec<String> = input
        .prefix
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| segment(s))
        .collect();
    let prefix = if segments.is_empty() {
        "p".to_owned()
    } else {
        segments.join(":")
    };

    let mut builder = namespace.key(&prefix);
    let mut params = BTreeMap::new();
    for (n, value) in &input.params {
        let name = PARAM_NAMES[usize::from(*n) % PARAM_NAMES.len()];
        if let Some(value) = value {
            params.insert(name, value.clone());
        }
        builder = builder.param_opt(name, value.as_ref());
    }
    let key = builder.build();
    assert!(key.as_str().len() <= MAX_KEY_LEN, "{key:?} is too long");
    // `clear` finds every key and tag of a namespace by its root.
    assert!(key.as_str().starts_with(namespace.prefix()));
    assert!(namespace.epoch().as_str().len() <= MAX_KEY_LEN);
    // A shortened key keeps a head of all but `#` and 32 hex digits.
    if namespace.prefix().len() + prefix.len() <= MAX_KEY_LEN - 33 {
        assert_eq!(key.prefix(), prefix);
    }
    let tag = namespace.tag(&input.tag);
    assert!(tag.as_str().len() <= MAX_KEY_LEN, "{tag:?} is too long");
    assert!(tag.as_str().starts_with(namespace.prefix()));
    assert_ne!(tag.as_str(), namespace.epoch().as_str());
    assert_ne!(key.as_str(), namespace.epoch().as_str());
    let model = Model {
        namespace: name,
        version: input.version,
        prefix,
        params,
    };
    (key.as_str().to_owned(), tag.as_str().to_owned(), model)
}
