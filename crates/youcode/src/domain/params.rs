//! Validated query params of list routes.

use std::collections::HashMap;

use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// A bad request parameter, named so the client knows which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct ParamError {
    pub param: &'static str,
    pub reason: &'static str,
}

impl ParamError {
    pub fn new(param: &'static str, reason: &'static str) -> Self {
        Self { param, reason }
    }
}

/// Longest search string accepted.
pub const MAX_SEARCH_CHARS: usize = 100;
/// Largest page size accepted.
pub const MAX_LIMIT: u32 = 100;
/// Largest page number accepted.
pub const MAX_PAGE: u32 = 1_000_000;

/// A page of a list: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u32,
    pub limit: u32,
}

impl Page {
    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.limit)
    }

    /// Pages needed for `total` rows.
    pub fn total_pages(&self, total: i64) -> i64 {
        (total + i64::from(self.limit) - 1) / i64::from(self.limit)
    }
}

/// A name as search compares it: lower-cased with full Unicode rules, as stored beside the name.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// A case-insensitive name filter, trimmed; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(String);

impl Search {
    /// The text searched for, as the user typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A `LIKE … ESCAPE '\'` pattern matching names that contain the text, lower-cased.
    pub fn like_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in fold(&self.0).chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// `page`, `limit` and `search` of a list route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub page: Page,
    pub search: Option<Search>,
}

impl ListParams {
    /// Parses a query string's params, with `default_limit` when `limit` is absent. Unknown
    /// params are ignored, like any web server does.
    ///
    /// # Errors
    /// [`ParamError`] naming the first bad param.
    pub fn parse(query: &HashMap<String, String>, default_limit: u32) -> Result<Self, ParamError> {
        let page = match query.get("page") {
            None => 1,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=MAX_PAGE).contains(p))
                .ok_or(ParamError::new("page", "must be a whole number from 1"))?,
        };
        let limit = match query.get("limit") {
            None => default_limit,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or(ParamError::new(
                    "limit",
                    "must be a whole number from 1 to 100",
                ))?,
        };
        let search = match query.get("search").map(|s| s.trim()) {
            None | Some("") => None,
            Some(text) if text.chars().count() > MAX_SEARCH_CHARS => {
                return Err(ParamError::new("search", "must be at most 100 characters"));
            }
            Some(text) if super::fields::has_control(text) => {
                return Err(ParamError::new(
                    "search",
                    "must not contain control characters",
                ));
            }
            Some(text) => Some(Search(text.to_owned())),
        };
        Ok(Self {
            page: Page { page, limit },
            search,
        })
    }

    /// `page` and `limit` only, for lists that take no search: a `search` param is ignored (once
    /// checked like any list's, so a malformed one is still a 400).
    ///
    /// # Errors
    /// [`ParamError`] naming the first bad param.
    pub fn parse_without_search(
        query: &HashMap<String, String>,
        default_limit: u32,
    ) -> Result<Page, ParamError> {
        Self::parse(query, default_limit).map(|params| params.page)
    }
}

/// `page` and `limit`, as the query of a list route that takes no search.
impl utoipa::IntoParams for Page {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            query_param(
                "page",
                "The page, from 1 (default 1).",
                whole_number(1, MAX_PAGE),
            ),
            query_param(
                "limit",
                "Items a page holds (default 5 on `/api/admin/courses`, 10 elsewhere).",
                whole_number(1, MAX_LIMIT),
            ),
        ]
    }
}

/// `page`, `limit` and `search`, as the query of a list route.
impl utoipa::IntoParams for ListParams {
    fn into_params(in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let search = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_SEARCH_CHARS));
        let mut params = Page::into_params(in_provider);
        params.push(query_param(
            "search",
            "A case-insensitive match on the name, trimmed (absent or empty: no filter); no \
             control characters.",
            search,
        ));
        params
    }
}

fn whole_number(min: u32, max: u32) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(f64::from(min)))
        .maximum(Some(f64::from(max)))
}

fn query_param(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_params_are_absent() {
        let params = ListParams::parse(&query(&[]), 5).unwrap();
        assert_eq!(params.page, Page { page: 1, limit: 5 });
        assert_eq!(params.search, None);
    }

    #[test]
    fn bad_params_are_named() {
        for (pairs, param) in [
            (vec![("page", "0")], "page"),
            (vec![("page", "-1")], "page"),
            (vec![("limit", "abc")], "limit"),
            (vec![("limit", "1000")], "limit"),
            (vec![("limit", "0")], "limit"),
        ] {
            assert_eq!(
                ListParams::parse(&query(&pairs), 10).unwrap_err().param,
                param
            );
        }
        for search in ["a\u{0}b", "tab\there", "esc\u{1b}"] {
            assert_eq!(
                ListParams::parse(&query(&[("search", search)]), 10)
                    .unwrap_err()
                    .param,
                "search"
            );
        }
        let long = "x".repeat(101);
        assert_eq!(
            ListParams::parse(&query(&[("search", &long)]), 10)
                .unwrap_err()
                .param,
            "search"
        );
    }

    #[test]
    fn search_patterns_escape_like_wildcards() {
        let params = ListParams::parse(&query(&[("search", " 50%_Off\\ ")]), 10).unwrap();
        assert_eq!(params.search.unwrap().like_pattern(), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn total_pages_round_up() {
        let page = Page { page: 1, limit: 10 };
        assert_eq!(
            (
                page.total_pages(0),
                page.total_pages(10),
                page.total_pages(11)
            ),
            (0, 1, 2)
        );
    }
}
