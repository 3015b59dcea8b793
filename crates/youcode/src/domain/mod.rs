//! Domain types: typed ids, roles and states, timestamps, validated request params.
//!
//! Everything here is parsed once at the edge ("parse, don't validate"): a value of these types
//! is valid, so handlers and the repository never check again.

pub mod fields;
mod ids;
mod params;
mod states;
mod timestamp;

pub use fields::FieldError;
pub use ids::{CourseId, LessonId, UserId};
pub use params::{ListParams, Page, ParamError, Search, fold};
pub use states::{CourseState, LessonState, Progress, Role};
pub use timestamp::Timestamp;
