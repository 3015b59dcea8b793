//! Invariant 2: keys are injective whatever characters the params hold.

use std::collections::BTreeMap;

use cachette::{Key, Namespace};
use proptest::prelude::*;

/// Characters chosen to break naive key schemes: separators, glob characters, escapes,
/// spaces, unicode.
fn adversarial_value() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "", ":", "=", "*", "?", "[", "]", "\\", "%", "%3A", "%25", " ", "#", "a", "b", "1", "é",
        "日本", "🦀", ":a=b", "x:y", "\u{0}", "~tag", "/", "+",
    ]);
    prop::collection::vec(pieces, 0..6).prop_map(|p| p.concat())
}

fn params() -> impl Strategy<Value = BTreeMap<&'static str, String>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["a", "b", "page", "search", "userId"]),
        adversarial_value(),
        0..4,
    )
}

fn build(ns: &Namespace, prefix: &str, params: &BTreeMap<&'static str, String>) -> Key {
    params
        .iter()
        .fold(ns.key(prefix), |key, (name, value)| key.param(name, value))
        .build()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn different_inputs_never_share_a_key(
        prefix_a in prop::sample::select(vec!["courses", "admin:courses", "admin"]),
        prefix_b in prop::sample::select(vec!["courses", "admin:courses", "admin"]),
        params_a in params(),
        params_b in params(),
    ) {
        let ns = Namespace::new("yc", 1).unwrap();
        let a = build(&ns, prefix_a, &params_a);
        let b = build(&ns, prefix_b, &params_b);
        prop_assert_eq!(a == b, prefix_a == prefix_b && params_a == params_b, "{} vs {}", a, b);
    }

    #[test]
    fn keys_hold_no_glob_characters_and_stay_short(params in params()) {
        let ns = Namespace::new("yc", 1).unwrap();
        let key = build(&ns, "public:lessons", &params);
        prop_assert!(key.as_str().len() <= cachette::key::MAX_KEY_LEN);
        prop_assert!(!key.as_str().contains(['*', '?', '[', ']', '\\', ' ']));
        prop_assert!(key.as_str().starts_with("yc:v1:public:lessons"));
    }

    #[test]
    fn param_order_does_not_change_the_key(params in params()) {
        let ns = Namespace::new("yc", 1).unwrap();
        let forward = build(&ns, "p", &params);
        let backward = params
            .iter()
            .rev()
            .fold(ns.key("p"), |key, (name, value)| key.param(name, value))
            .build();
        prop_assert_eq!(forward, backward);
    }

    #[test]
    fn different_tag_names_never_share_a_generation_key(a in adversarial_value(), b in adversarial_value()) {
        let ns = Namespace::new("yc", 1).unwrap();
        prop_assert_eq!(ns.tag(&a) == ns.tag(&b), a == b);
    }

    #[test]
    fn long_values_are_still_injective(a in "[a-z:=*%]{150,300}", b in "[a-z:=*%]{150,300}") {
        let ns = Namespace::new("yc", 1).unwrap();
        let ka = ns.key("search").param("q", &a).build();
        let kb = ns.key("search").param("q", &b).build();
        prop_assert_eq!(ka == kb, a == b);
    }
}

#[test]
fn namespaces_and_versions_separate_keys() {
    let v1 = Namespace::new("yc", 1).unwrap();
    let v2 = Namespace::new("yc", 2).unwrap();
    let other = Namespace::new("yc2", 1).unwrap();
    let key = |ns: &Namespace| ns.key("p").param("a", 1).build();
    assert_ne!(key(&v1), key(&v2));
    assert_ne!(key(&v1), key(&other));
    assert!(!key(&other).as_str().starts_with(v1.root()));
}
