//! The page every list route answers.

use serde::Serialize;

use crate::domain::Page;

/// A page of a list, as every list route answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    pub data: Vec<T>,
    /// Items of the whole list.
    pub total: i64,
    pub page: u32,
    pub limit: u32,
    /// ceil(total / limit).
    pub total_pages: i64,
}

impl<T> ListPage<T> {
    pub fn new((data, total): (Vec<T>, i64), page: Page) -> Self {
        Self {
            data,
            total,
            page: page.page,
            limit: page.limit,
            total_pages: page.total_pages(total),
        }
    }
}
