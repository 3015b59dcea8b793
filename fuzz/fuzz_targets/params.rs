//! youcode's list params: any query string, parsed as the `Query<HashMap<String, String>>`
//! extractor parses it (`serde_urlencoded`), is refused with the bad param named or gives
//! values within the documented bounds.

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use youcode::domain::ListParams;

/// The bounds `docs/API.md` gives, and the parser's cap on page numbers.
const MAX_LIMIT: u32 = 100;
const MAX_SEARCH_CHARS: usize = 100;
const MAX_PAGE: u32 = 1_000_000;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the default page size, as a route does (1 to 100).
    let Some((&default, query)) = data.split_first() else {
        return;
    };
    let default_limit = u32::from(default) % MAX_LIMIT + 1;
    let Ok(query) = serde_urlencoded::from_bytes::<HashMap<String, String>>(query) else {
        return;
    };
    let parsed = ListParams::parse(&query, default_limit);
    match &parsed {
        Ok(params) => {
            let page = params.page;
            assert!(page.page >= 1 && page.page <= MAX_PAGE, "{page:?}");
            assert!((1..=MAX_LIMIT).contains(&page.limit), "{page:?}");
            assert!(page.offset() >= 0);
            if !query.contains_key("limit") {
                assert_eq!(page.limit, default_limit);
            }
            if !query.contains_key("page") {
                assert_eq!(page.page, 1);
            }
            let wanted = query
                .get("search")
                .map(|s| s.trim())
                .filter(|s| !s.is_empty());
            assert_eq!(params.search.as_ref().map(|s| s.as_str()), wanted);
            if let Some(search) = &params.search {
                let text = search.as_str();
                assert!(!text.is_empty() && text == text.trim());
                assert!(text.chars().count() <= MAX_SEARCH_CHARS);
                let pattern = search.like_pattern();
                assert!(pattern.len() >= 2 && pattern.starts_with('%') && pattern.ends_with('%'));
            }
        }
        Err(error) => assert!(
            ["page", "limit", "search"].contains(&error.param),
            "{error:?}"
        ),
    }
    assert_eq!(
        ListParams::parse_without_search(&query, default_limit),
        parsed.map(|params| params.page)
    );
});
