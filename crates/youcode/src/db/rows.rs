//! Reading rows: typed ids, named values and timestamps as the repository files read them.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::AnyRow;

use super::pool::{DbError, DbResult};
use crate::domain::CourseId;

/// A course id read from the database, where every id is a UUID written by the application.
pub(crate) fn parse_course_id(raw: String) -> DbResult<CourseId> {
    uuid::Uuid::try_parse(&raw)
        .map(CourseId)
        .map_err(|error| DbError::Sql(sqlx::Error::Decode(Box::new(error))))
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

/// RFC 3339 text of a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
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

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }
}
