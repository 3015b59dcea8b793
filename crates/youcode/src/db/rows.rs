//! Reading rows: typed ids, named values and timestamps as the repository files read them.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::AnyRow;

use super::pool::{DbError, DbResult};
use crate::domain::Timestamp;

/// An id read from the database, where every id is a UUID written by the application: `wrap`
/// types it (`CourseId`, `LessonId`, `UserId`), and anything else is corrupt data, an error.
pub(crate) fn parse_id<T>(raw: &str, wrap: fn(uuid::Uuid) -> T) -> DbResult<T> {
    uuid::Uuid::try_parse(raw)
        .map(wrap)
        .map_err(|error| DbError::Sql(sqlx::Error::Decode(Box::new(error))))
}

/// Ids read as a column of text, each typed by `wrap` (see [`parse_id`]).
pub(crate) fn parse_ids<T>(raw: &[String], wrap: fn(uuid::Uuid) -> T) -> DbResult<Vec<T>> {
    raw.iter().map(|id| parse_id(id, wrap)).collect()
}

/// The id in `column`, typed by `wrap` (see [`parse_id`]).
pub(crate) fn id<T>(row: &AnyRow, column: &str, wrap: fn(uuid::Uuid) -> T) -> DbResult<T> {
    use sqlx::Row as _;
    uuid::Uuid::try_parse(&row.try_get::<String, _>(column)?)
        .map(wrap)
        .map_err(|error| {
            DbError::Sql(sqlx::Error::ColumnDecode {
                index: column.to_owned(),
                source: Box::new(error),
            })
        })
}

/// The time in `column`, stored as milliseconds since the Unix epoch.
pub(crate) fn timestamp(row: &AnyRow, column: &str) -> DbResult<Timestamp> {
    use sqlx::Row as _;
    Ok(Timestamp::from_millis(row.try_get(column)?))
}

/// A named value (a role, a state, a progress) read from `column`: a name the application does
/// not know is corrupt data, reported as an error rather than read as some default.
pub(crate) fn named<T>(
    row: &AnyRow,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> DbResult<T> {
    use sqlx::Row as _;
    named_value(column, &row.try_get::<String, _>(column)?, parse)
}

/// [`named`] for a name already read from `column`.
pub(crate) fn named_value<T>(
    column: &str,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> DbResult<T> {
    parse(name).ok_or_else(|| {
        DbError::Sql(sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: format!("unknown value {name:?}").into(),
        })
    })
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_name_read_from_the_database_is_an_error_not_a_default() {
        use sqlx::{AnyConnection, Connection as _};
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        let row = sqlx::query("SELECT 'PUBLISHED' AS known, 'ARCHIVED' AS unknown")
            .fetch_one(&mut conn)
            .await
            .unwrap();

        let known = named(&row, "known", crate::domain::CourseState::from_name);
        let unknown = named(&row, "unknown", crate::domain::CourseState::from_name);

        assert_eq!(known.unwrap(), crate::domain::CourseState::Published);
        let error = unknown.unwrap_err().to_string();
        assert!(error.contains("ARCHIVED"), "{error}");
    }
}
