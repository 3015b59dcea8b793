//! Typed ids: a course id can never be passed where a lesson id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::params::ParamError;

macro_rules! id_type {
    ($name:ident, $param:literal) => {
        #[doc = concat!("The id of a ", $param, " (a UUID).")]
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            Serialize,
            Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// Parses a path segment, naming the parameter in the error.
            ///
            /// # Errors
            /// [`ParamError`] when `raw` is not a UUID.
            pub fn parse(param: &'static str, raw: &str) -> Result<Self, ParamError> {
                Uuid::try_parse(raw)
                    .map(Self)
                    .map_err(|_| ParamError::new(param, "must be a UUID"))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(UserId, "user");
id_type!(CourseId, "course");
id_type!(LessonId, "lesson");
