//! Roles and states, stored and sent as their upper-case names.

use serde::{Deserialize, Serialize};

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)* }
            }

            /// The value named `text`, if any.
            pub fn from_name(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)* _ => None }
            }
        }

        /// Its wire names (written by hand: utoipa's derive does not see a `serde(rename)`
        /// made by a macro).
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),*]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

named_enum!(
    /// What a user may do: admins manage their own courses, users follow courses.
    Role { Admin = "ADMIN", User = "USER" }
);
named_enum!(
    /// Whether a course is visible to users.
    CourseState { Draft = "DRAFT", Published = "PUBLISHED" }
);
named_enum!(
    /// Who can see a lesson: nobody but its admin, enrolled users, or everybody.
    LessonState { Hidden = "HIDDEN", Published = "PUBLISHED", Public = "PUBLIC" }
);
named_enum!(
    /// A user's progress in a lesson.
    Progress { NotStarted = "NOT_STARTED", InProgress = "IN_PROGRESS", Completed = "COMPLETED" }
);
