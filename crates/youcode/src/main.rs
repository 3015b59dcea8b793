//! The YouCode course platform API. The HTTP server arrives with the API; until then this shows
//! the cache working on the embedded defaults.

use std::convert::Infallible;

use cachette::{Cache, MemoryStore, Namespace, Policy};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::builder(
        MemoryStore::default(),
        Namespace::new("youcode", 1).unwrap(),
    )
    .build();
    let key = cache.key("public:lessons").param("page", 1).build();
    for _ in 0..2 {
        let fetched = cache
            .get_or_fetch(
                &key,
                &[cache.tag("lessons")],
                &Policy::SEARCH_RESULTS,
                || async { Ok::<_, Infallible>(vec!["Welcome to YouCode".to_string()]) },
            )
            .await
            .unwrap();
        println!("{} {:?}", fetched.outcome.as_str(), fetched.value);
    }
}
