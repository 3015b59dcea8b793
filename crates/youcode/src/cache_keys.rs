//! Every cache key and tag the application uses, in one place.
//!
//! Tags name what an entry was built from; a write invalidates the tags of what it changed:
//!
//! | tag | entries built from it | bumped by |
//! |---|---|---|
//! | `course:{id}` | the course's page (admin, and the one shared by users): its own fields | course edit/delete |
//! | `course-lessons:{id}` | everything showing the course's lessons or their count | lesson create/edit/delete/move, course deletion |
//! | `lesson:{id}` | the lesson's page (admin and user), which course it is in | lesson edit/delete/move; its course's name, state or deletion |
//! | `admin-courses:{adminId}` | the admin's course list | that admin's course create, delete, and edits of listed fields |
//! | `participants:{courseId}` | participant lists and count | join/leave, course state change or deletion |
//! | `learner:{userId}` | one user's enrolments and progress, and their course list | that user's join/leave/progress |
//! | `courses` | every user's course list (it shows course names and images) | any change of a course's name, image or state, or its deletion |
//! | `public-lessons` | the public lesson list | changes of what it shows: PUBLIC lessons, course names and states |
//! | `public-lessons-membership` | the public list's length | lessons entering or leaving it (create, delete, state; course state, deletion) |
//! | `session:{tokenHash}` | who a token belongs to | logout |
//!
//! A list's tags must be known before its rows are read, so lists that show fields of many
//! courses depend on one broad tag (`courses`, `public-lessons`) rather than a tag per row;
//! writes bump those only when they change a field the lists show.
//!
//! What users read is split in two: pages of published courses and lessons are shared by every
//! user (keyed by the course or lesson alone), and each user's enrolments and progress are one
//! small entry keyed by the user; routes combine the two. Per-user entries carry the user id in
//! their key: no user can reach another's entry, and shared entries hold no per-user field.

use cachette::{Key, Policy, Tag};

use crate::config::Policies;
use crate::domain::{CourseId, LessonId, ListParams, Page, UserId};
use crate::state::AppCache;

/// What a cached route needs: where its entry lives, what it depends on, how long it lives.
pub struct Entry {
    pub key: Key,
    pub tags: Vec<Tag>,
    pub policy: Policy,
}

/// Builds the application's keys and tags.
#[derive(Clone)]
pub struct CacheKeys {
    cache: AppCache,
    policies: Policies,
}

impl CacheKeys {
    pub fn new(cache: AppCache, policies: Policies) -> Self {
        Self { cache, policies }
    }

    // Tags.

    pub fn course(&self, course: impl std::fmt::Display) -> Tag {
        self.cache.tag(&format!("course:{course}"))
    }
    pub fn course_lessons(&self, course: CourseId) -> Tag {
        self.cache.tag(&format!("course-lessons:{course}"))
    }
    pub fn lesson(&self, lesson: impl std::fmt::Display) -> Tag {
        self.cache.tag(&format!("lesson:{lesson}"))
    }
    pub fn admin_courses(&self, admin: UserId) -> Tag {
        self.cache.tag(&format!("admin-courses:{admin}"))
    }
    pub fn participants(&self, course: CourseId) -> Tag {
        self.cache.tag(&format!("participants:{course}"))
    }
    pub fn learner(&self, user: UserId) -> Tag {
        self.cache.tag(&format!("learner:{user}"))
    }
    pub fn all_courses(&self) -> Tag {
        self.cache.tag("courses")
    }
    pub fn public_lessons(&self) -> Tag {
        self.cache.tag("public-lessons")
    }
    pub fn public_membership(&self) -> Tag {
        self.cache.tag("public-lessons-membership")
    }
    pub fn session(&self, token_hash: &str) -> Tag {
        self.cache.tag(&format!("session:{token_hash}"))
    }

    /// A tag given by name (admin invalidation endpoint, CLI).
    pub fn named(&self, name: &str) -> Tag {
        self.cache.tag(name)
    }

    // Entries, one per cached read.

    pub fn session_entry(&self, token_hash: &str) -> Entry {
        Entry {
            key: self.cache.key("session").param("token", token_hash).build(),
            tags: vec![self.session(token_hash)],
            policy: self.policies.session,
        }
    }

    pub fn public_lessons_page(&self, params: &ListParams) -> Entry {
        Entry {
            key: list_key(self.cache.key("public:lessons"), params),
            tags: vec![self.public_lessons()],
            policy: self.policies.search_results,
        }
    }

    /// How many lessons the (unsearched) public list holds.
    pub fn public_lesson_count(&self) -> Entry {
        Entry {
            key: self.cache.key("public:lessons:count").build(),
            tags: vec![self.public_membership()],
            policy: self.policies.search_results,
        }
    }

    /// One user's enrolments and progress.
    pub fn learner_state(&self, user: UserId) -> Entry {
        Entry {
            key: self.cache.key("user:state").param("userId", user).build(),
            tags: vec![self.learner(user)],
            policy: self.policies.user_progress,
        }
    }

    /// Every course one user is enrolled in; pages and searches are cut from it.
    pub fn user_course_list(&self, user: UserId) -> Entry {
        Entry {
            key: self.cache.key("user:courses").param("userId", user).build(),
            tags: vec![self.learner(user), self.all_courses()],
            policy: self.policies.search_results,
        }
    }

    /// A published course's page, shared by every user.
    pub fn published_course(&self, course: CourseId) -> Entry {
        Entry {
            key: self
                .cache
                .key("published:course")
                .param("courseId", course)
                .build(),
            tags: vec![self.course(course), self.course_lessons(course)],
            policy: self.policies.course_detail,
        }
    }

    /// A visible lesson's page, shared by every user.
    pub fn published_lesson(&self, lesson: LessonId) -> Entry {
        Entry {
            key: self
                .cache
                .key("published:lesson")
                .param("lessonId", lesson)
                .build(),
            tags: vec![self.lesson(lesson)],
            policy: self.policies.lesson_detail,
        }
    }

    pub fn admin_courses_page(&self, admin: UserId, params: &ListParams) -> Entry {
        Entry {
            key: list_key(
                self.cache.key("admin:courses").param("adminId", admin),
                params,
            ),
            tags: vec![self.admin_courses(admin)],
            policy: self.policies.search_results,
        }
    }

    pub fn admin_lessons(&self, admin: UserId, course: CourseId) -> Entry {
        Entry {
            key: self
                .cache
                .key("admin:lessons")
                .param("adminId", admin)
                .param("courseId", course)
                .build(),
            tags: vec![self.course_lessons(course)],
            policy: self.policies.lesson_list,
        }
    }

    pub fn admin_course(&self, admin: UserId, course: CourseId) -> Entry {
        Entry {
            key: self
                .cache
                .key("admin:course")
                .param("adminId", admin)
                .param("courseId", course)
                .build(),
            tags: vec![
                self.course(course),
                self.course_lessons(course),
                self.participants(course),
            ],
            policy: self.policies.course_detail,
        }
    }

    pub fn admin_lesson(&self, admin: UserId, course: CourseId, lesson: LessonId) -> Entry {
        Entry {
            key: self
                .cache
                .key("admin:lesson")
                .param("adminId", admin)
                .param("courseId", course)
                .param("lessonId", lesson)
                .build(),
            tags: vec![self.lesson(lesson)],
            policy: self.policies.lesson_detail,
        }
    }

    pub fn admin_participants(&self, admin: UserId, course: CourseId, page: Page) -> Entry {
        Entry {
            key: page_key(
                self.cache
                    .key("admin:participants")
                    .param("adminId", admin)
                    .param("courseId", course),
                page,
            ),
            tags: vec![self.participants(course)],
            policy: self.policies.search_results,
        }
    }

    /// Shared by every enrolled user: names and images only.
    pub fn user_participants(&self, course: CourseId, page: Page) -> Entry {
        Entry {
            key: page_key(
                self.cache
                    .key("user:participants")
                    .param("courseId", course),
                page,
            ),
            tags: vec![self.participants(course)],
            policy: self.policies.search_results,
        }
    }
}

fn page_key(key: cachette::KeyBuilder, page: Page) -> Key {
    key.param("page", page.page)
        .param("limit", page.limit)
        .build()
}

fn list_key(key: cachette::KeyBuilder, params: &ListParams) -> Key {
    key.param("page", params.page.page)
        .param("limit", params.page.limit)
        .param_opt(
            "search",
            params.search.as_ref().map(|s| s.as_str().to_lowercase()),
        )
        .build()
}
