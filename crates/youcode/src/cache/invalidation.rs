//! What each write makes stale: pure functions from what a write changed to the tags it bumps.
//!
//! Handlers run the write, call the function of its kind with its outcome, and invalidate the
//! tags it returns; they decide no tag themselves. The table of tags and what reads them is in
//! [`super::keys`].

use cachette::Tag;

use super::keys::CacheKeys;
use crate::db::{AdminLesson, CourseUpdate, LessonWrite};
use crate::domain::{CourseId, LessonId, LessonState, UserId, fold};

/// A course `admin` created: only their list shows it (a new course is a draft, or has no
/// lessons and no participants yet).
pub fn course_created(keys: &CacheKeys, admin: UserId) -> Vec<Tag> {
    vec![keys.admin_courses(admin)]
}

/// What a change to a course changed, for working out what it makes stale.
#[derive(Debug, Clone, Copy)]
pub struct CourseChange<'a> {
    /// A field lists show: name, image or state.
    listed: bool,
    /// What lesson pages and the public list show of the course: its name or state.
    public: bool,
    /// Its state: who may join it, whether its lessons are listed.
    state: bool,
    /// The course is gone, lessons included.
    deleted: bool,
    /// Its lessons, whose pages show the course's name.
    lessons: &'a [LessonId],
}

impl<'a> CourseChange<'a> {
    /// An edit, from the course before and after it.
    pub fn updated(update: &'a CourseUpdate) -> Self {
        let (before, after) = (&update.previous, &update.updated);
        Self {
            listed: before.listed_differently(after),
            public: before.shown_with_lessons_differently(after),
            state: before.state != after.state,
            deleted: false,
            lessons: &update.lessons,
        }
    }

    /// A deletion, with the lessons it deleted.
    pub fn deleted(lessons: &'a [LessonId]) -> Self {
        Self {
            listed: true,
            public: true,
            state: true,
            deleted: true,
            lessons,
        }
    }
}

/// What a change to a course makes stale: always the course itself; the lists only when a
/// field they show changed; its lessons' pages when the course name or state changed (they show
/// the name, and only while the course is published).
pub fn course_changed(
    keys: &CacheKeys,
    admin: UserId,
    course: CourseId,
    change: CourseChange<'_>,
) -> Vec<Tag> {
    let mut tags = vec![keys.course(course)];
    if change.listed {
        tags.extend([keys.admin_courses(admin), keys.all_courses()]);
    }
    if change.public {
        tags.push(keys.public_lessons());
        tags.extend(change.lessons.iter().map(|&lesson| keys.lesson(lesson)));
    }
    if change.state {
        tags.extend([keys.participants(course), keys.public_membership()]);
    }
    if change.deleted {
        tags.extend([keys.course_lessons(course), keys.lesson_count(course)]);
    }
    tags
}

/// What a lesson write makes stale: the lesson, those it moved, its course's lessons (and their
/// count when one was created or deleted), and the public list when the write changed something
/// it shows: its length when a PUBLIC lesson appeared or went, its order when ranks moved, and
/// only the searches a rename can change when a PUBLIC lesson was renamed.
pub fn lesson_written(keys: &CacheKeys, course: CourseId, write: &LessonWrite) -> Vec<Tag> {
    let mut tags = vec![keys.course_lessons(course)];
    let written = write.lesson.as_ref().or(write.previous.as_ref());
    tags.extend(written.map(|lesson| keys.lesson(lesson.id)));
    tags.extend(write.moved.iter().map(|&id| keys.lesson(id)));
    if write.previous.is_none() || write.lesson.is_none() {
        tags.push(keys.lesson_count(course));
    }
    fn public(lesson: Option<&AdminLesson>) -> Option<&AdminLesson> {
        lesson.filter(|lesson| lesson.state == LessonState::Public)
    }
    match (
        public(write.previous.as_ref()),
        public(write.lesson.as_ref()),
    ) {
        (None, None) => {}
        (Some(before), Some(after)) => {
            let (old, new) = (fold(&before.name), fold(&after.name));
            // Every update stores the name as the application folds it: a row folded otherwise
            // (by migration 0002) changes what it matches even when the name stays.
            let refolded = write
                .previous_searched_as
                .as_deref()
                .is_some_and(|stored| stored != new);
            if before.name != after.name || refolded {
                let mut searched_as = vec![old.as_str(), new.as_str()];
                searched_as.extend(write.previous_searched_as.as_deref());
                tags.extend(keys.public_rename(&searched_as));
            }
        }
        _ => tags.extend([keys.public_lessons(), keys.public_membership()]),
    }
    // A new rank moves the lessons in between, so `moved` covers every change of order.
    if !write.moved.is_empty() {
        tags.push(keys.public_lessons());
    }
    tags
}

/// What a join or a leave found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrolmentOutcome {
    /// The enrolment changed (it was not already as asked).
    pub changed: bool,
    /// A leave ended an enrolment old enough to be in the course list's earlier part.
    pub left_earlier_part: bool,
}

/// What a join or a leave makes stale: the user's own enrolment in the course and their recent
/// courses, always (the same request made at once may have changed them without having
/// invalidated them yet); the earlier courses when it ended an enrolment listed there; the
/// course's participants only when the enrolment changed.
pub fn enrolment_set(
    keys: &CacheKeys,
    user: UserId,
    course: CourseId,
    outcome: EnrolmentOutcome,
) -> Vec<Tag> {
    let mut tags = vec![keys.learner(user, course), keys.enrolments(user)];
    if outcome.left_earlier_part {
        tags.push(keys.earlier_enrolments(user));
    }
    if outcome.changed {
        tags.push(keys.participants(course));
    }
    tags
}

/// A user's progress in a lesson of `course`: only their own state in the course shows it.
pub fn progress_set(keys: &CacheKeys, user: UserId, course: CourseId) -> Vec<Tag> {
    vec![keys.learner(user, course)]
}

/// A session ended (logout, expiry) or its last use moved: every instance's cached copy.
pub fn session_changed(keys: &CacheKeys, token_hash: &str) -> Vec<Tag> {
    vec![keys.session(token_hash)]
}

#[cfg(test)]
mod tests {
    use cachette::Namespace;

    use super::*;
    use crate::config::Policies;
    use crate::db::AdminCourse;
    use crate::domain::{CourseState, Timestamp};

    fn keys() -> CacheKeys {
        CacheKeys::new(Namespace::new("t", 1).unwrap(), Policies::default())
    }

    /// The tags' names without the namespace, sorted, for comparing sets.
    fn names(tags: &[Tag]) -> Vec<String> {
        let mut names: Vec<String> = tags
            .iter()
            .map(|tag| tag.as_str().trim_start_matches("t:v1:~tag:").to_owned())
            .collect();
        names.sort();
        names
    }

    fn sorted(mut expected: Vec<String>) -> Vec<String> {
        expected.sort();
        expected
    }

    /// The lesson id numbered `n`, so that tests can name it.
    fn lesson_id(n: u128) -> LessonId {
        LessonId(uuid::Uuid::from_u128(n))
    }

    fn course(name: &str, state: CourseState) -> AdminCourse {
        AdminCourse {
            id: CourseId::new(),
            name: name.into(),
            image: None,
            presentation: String::new(),
            state,
            created_at: Timestamp::from_millis(0),
            lesson_count: 0,
            participant_count: 0,
        }
    }

    fn lesson(name: &str, state: LessonState) -> AdminLesson {
        AdminLesson {
            id: lesson_id(1),
            course_id: CourseId::new(),
            name: name.into(),
            content: String::new(),
            rank: 1,
            state,
        }
    }

    fn ids() -> (UserId, CourseId) {
        (UserId::new(), CourseId::new())
    }

    #[test]
    fn a_created_course_bumps_its_admins_list_only() {
        let (admin, _) = ids();
        assert_eq!(
            names(&course_created(&keys(), admin)),
            [format!("admin-courses:{admin}")]
        );
    }

    #[test]
    fn a_presentation_edit_bumps_the_course_alone() {
        let (admin, id) = ids();
        let mut after = course("Rust", CourseState::Published);
        after.presentation = "new".into();
        let update = CourseUpdate {
            previous: course("Rust", CourseState::Published),
            updated: after,
            lessons: vec![],
        };

        let tags = course_changed(&keys(), admin, id, CourseChange::updated(&update));

        assert_eq!(names(&tags), [format!("course:{id}")]);
    }

    #[test]
    fn a_rename_bumps_the_lists_and_the_lessons_that_show_the_name() {
        let (admin, id) = ids();
        let update = CourseUpdate {
            previous: course("Rust", CourseState::Published),
            updated: course("Rust 2", CourseState::Published),
            lessons: vec![lesson_id(1), lesson_id(2)],
        };

        let tags = course_changed(&keys(), admin, id, CourseChange::updated(&update));

        assert_eq!(
            names(&tags),
            sorted(vec![
                format!("course:{id}"),
                format!("admin-courses:{admin}"),
                "courses".into(),
                "public-lessons".into(),
                format!("lesson:{}", lesson_id(1)),
                format!("lesson:{}", lesson_id(2)),
            ])
        );
    }

    #[test]
    fn a_state_change_also_bumps_participants_and_membership() {
        let (admin, id) = ids();
        let update = CourseUpdate {
            previous: course("Rust", CourseState::Draft),
            updated: course("Rust", CourseState::Published),
            lessons: vec![],
        };

        let tags = names(&course_changed(
            &keys(),
            admin,
            id,
            CourseChange::updated(&update),
        ));

        for expected in [
            format!("participants:{id}"),
            "public-lessons-membership".into(),
            "public-lessons".into(),
            format!("admin-courses:{admin}"),
        ] {
            assert!(tags.contains(&expected), "{expected} not in {tags:?}");
        }
    }

    #[test]
    fn a_deletion_bumps_everything_the_course_was_part_of() {
        let (admin, id) = ids();
        let lessons = vec![lesson_id(1)];

        let tags = names(&course_changed(
            &keys(),
            admin,
            id,
            CourseChange::deleted(&lessons),
        ));

        for expected in [
            format!("course:{id}"),
            format!("course-lessons:{id}"),
            format!("lesson-count:{id}"),
            format!("participants:{id}"),
            format!("lesson:{}", lesson_id(1)),
            "public-lessons".into(),
        ] {
            assert!(tags.contains(&expected), "{expected} not in {tags:?}");
        }
    }

    #[test]
    fn a_hidden_lesson_created_bumps_its_course_lessons_and_count_only() {
        let (_, id) = ids();
        let write = LessonWrite {
            previous: None,
            lesson: Some(lesson("Intro", LessonState::Hidden)),
            moved: vec![],
            previous_searched_as: None,
        };

        assert_eq!(
            names(&lesson_written(&keys(), id, &write)),
            sorted(vec![
                format!("course-lessons:{id}"),
                format!("lesson-count:{id}"),
                format!("lesson:{}", lesson_id(1)),
            ])
        );
    }

    #[test]
    fn a_lesson_made_public_bumps_the_public_list_and_membership() {
        let (_, id) = ids();
        let write = LessonWrite {
            previous: Some(lesson("Intro", LessonState::Published)),
            lesson: Some(lesson("Intro", LessonState::Public)),
            moved: vec![],
            previous_searched_as: Some("intro".into()),
        };

        let tags = names(&lesson_written(&keys(), id, &write));

        assert!(tags.contains(&"public-lessons".to_owned()), "{tags:?}");
        assert!(
            tags.contains(&"public-lessons-membership".to_owned()),
            "{tags:?}"
        );
        assert!(!tags.contains(&format!("lesson-count:{id}")), "{tags:?}");
    }

    #[test]
    fn a_public_lesson_deleted_bumps_its_count_and_the_public_list() {
        let (_, id) = ids();
        let write = LessonWrite {
            previous: Some(lesson("Intro", LessonState::Public)),
            lesson: None,
            moved: vec![lesson_id(2)],
            previous_searched_as: Some("intro".into()),
        };

        let tags = names(&lesson_written(&keys(), id, &write));

        for expected in [
            format!("lesson-count:{id}"),
            format!("course-lessons:{id}"),
            format!("lesson:{}", lesson_id(1)),
            format!("lesson:{}", lesson_id(2)),
            "public-lessons".into(),
            "public-lessons-membership".into(),
        ] {
            assert!(tags.contains(&expected), "{expected} not in {tags:?}");
        }
    }

    #[test]
    fn a_public_lesson_renamed_bumps_only_the_searches_it_can_change() {
        let (_, id) = ids();
        let write = LessonWrite {
            previous: Some(lesson("Intro", LessonState::Public)),
            lesson: Some(lesson("Outro", LessonState::Public)),
            moved: vec![],
            previous_searched_as: Some("intro".into()),
        };

        let tags = names(&lesson_written(&keys(), id, &write));

        assert!(!tags.contains(&"public-lessons".to_owned()), "{tags:?}");
        assert!(
            tags.iter().any(|t| t.starts_with("public-search:")),
            "{tags:?}"
        );
    }

    #[test]
    fn moving_lessons_bumps_each_moved_lesson_and_the_public_order() {
        let (_, id) = ids();
        let write = LessonWrite {
            previous: Some(lesson("Intro", LessonState::Hidden)),
            lesson: Some(lesson("Intro", LessonState::Hidden)),
            moved: vec![lesson_id(2), lesson_id(3)],
            previous_searched_as: Some("intro".into()),
        };

        let tags = names(&lesson_written(&keys(), id, &write));

        for expected in [
            format!("lesson:{}", lesson_id(2)),
            format!("lesson:{}", lesson_id(3)),
            "public-lessons".into(),
        ] {
            assert!(tags.contains(&expected), "{expected} not in {tags:?}");
        }
    }

    #[test]
    fn a_join_or_leave_always_bumps_the_users_own_entries() {
        let (user, course) = ids();
        let done_already = EnrolmentOutcome {
            changed: false,
            left_earlier_part: false,
        };

        assert_eq!(
            names(&enrolment_set(&keys(), user, course, done_already)),
            sorted(vec![
                format!("learner:{user}:{course}"),
                format!("enrolments:{user}"),
            ])
        );
    }

    #[test]
    fn a_change_of_enrolment_bumps_participants_and_an_old_leave_the_earlier_part() {
        let (user, course) = ids();
        let left_old = EnrolmentOutcome {
            changed: true,
            left_earlier_part: true,
        };

        let tags = names(&enrolment_set(&keys(), user, course, left_old));

        for expected in [
            format!("participants:{course}"),
            format!("earlier-enrolments:{user}"),
        ] {
            assert!(tags.contains(&expected), "{expected} not in {tags:?}");
        }
    }

    #[test]
    fn progress_and_sessions_bump_their_own_tag() {
        let (user, course) = ids();
        assert_eq!(
            names(&progress_set(&keys(), user, course)),
            [format!("learner:{user}:{course}")]
        );
        assert_eq!(
            names(&session_changed(&keys(), "abc")),
            ["session:abc".to_owned()]
        );
    }
}
