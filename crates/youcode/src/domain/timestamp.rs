//! A point in time as rows keep it: milliseconds since the Unix epoch, shown as RFC 3339.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time read from or written to the database (milliseconds since the Unix epoch, as stored).
///
/// It serializes as the RFC 3339 text the API shows (`2026-01-02T03:04:05.5Z`, UTC, no more
/// sub-second digits than needed), and reads that text back, so cached rows stay the same JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The time `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch, as stored.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The RFC 3339 text; empty for a time RFC 3339 cannot write (past the year 9999).
    pub fn rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    /// The time RFC 3339 `text` names, to the millisecond; `None` when it is not RFC 3339.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(time.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.rfc3339())
    }
}

/// As it serializes: an RFC 3339 `date-time` string.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_serialize_as_rfc3339_with_the_digits_they_need() {
        let json = |ms| serde_json::to_string(&Timestamp::from_millis(ms)).unwrap();
        assert_eq!(json(0), r#""1970-01-01T00:00:00Z""#);
        assert_eq!(json(1_500), r#""1970-01-01T00:00:01.5Z""#);
        assert_eq!(json(1_767_323_045_123), r#""2026-01-02T03:04:05.123Z""#);
    }

    #[test]
    fn a_serialized_timestamp_reads_back_the_same() {
        for ms in [0, 1, 1_500, 1_767_323_045_123, -86_400_001] {
            let time = Timestamp::from_millis(ms);
            let json = serde_json::to_string(&time).unwrap();
            assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), time);
        }
    }

    #[test]
    fn text_that_is_not_rfc3339_is_refused() {
        assert!(serde_json::from_str::<Timestamp>(r#""yesterday""#).is_err());
        assert!(serde_json::from_str::<Timestamp>("12").is_err());
    }
}
