//! The SQL repository: one pool over SQLite or PostgreSQL, the same SQL for both.
//!
//! Queries use `$N` placeholders (both backends accept them), TEXT ids, and integer millisecond
//! timestamps, so one statement serves both; where PostgreSQL needs a lock that SQLite's write
//! lock gives already, each backend has its own whole statement. Every statement run is counted,
//! where it runs (`executor.rs`): the count shows how much database work the cache saves.
//! Statements outside a transaction run on connections kept between statements (`stash.rs`).

pub mod bus;
mod courses;
mod enrolments;
mod executor;
mod instance_lock;
mod learners;
mod lessons;
pub mod outbox;
mod pool;
mod reconnect;
mod rows;
pub mod seed;
mod stash;
mod users;

pub use executor::CountedTransaction;
pub use instance_lock::InstanceLock;
pub use pool::{Backend, Connections, Db, DbError, DbResult, redact};
pub use reconnect::connection_lost;
pub use rows::now_ms;
pub use users::holds_accounts;

pub use courses::{AdminCourse, AdminCourseItem, CourseChanges, CourseUpdate, NewCourse};
pub use enrolments::{AdminParticipant, UserParticipant};
pub use learners::{
    JoinedPart, LearnerState, PublishedCourse, PublishedCourseLesson, PublishedLesson,
    UserCourseItem,
};
pub use lessons::{
    AdminLesson, AdminLessonItem, LessonChanges, LessonWrite, NewLesson, PublicLesson,
};
pub use users::{NewUser, Principal, Session, User};
