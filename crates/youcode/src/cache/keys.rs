//! Every cache key and tag the application uses, in one place.
//!
//! Tags name what an entry was built from; a write invalidates the tags of what it changed (the
//! functions of [`super::invalidation`] say which, for each kind of write):
//!
//! | tag | entries built from it | bumped by |
//! |---|---|---|
//! | `course:{id}` | the course's page (admin, and the one shared by users): its own fields | course edit/delete |
//! | `course-lessons:{id}` | everything showing the course's lessons | lesson create/edit/delete/move, course deletion |
//! | `lesson-count:{id}` | the admin's course page (it shows how many lessons the course has) | lesson create/delete, course deletion |
//! | `lesson:{id}` | the lesson's page (admin and user), which course it is in | lesson edit/delete/move; its course's name, state or deletion |
//! | `admin-courses:{adminId}` | the admin's course list | that admin's course create, delete, and edits of listed fields |
//! | `participants:{courseId}` | participant lists and count | join/leave, course state change or deletion |
//! | `learner:{userId}:{courseId}` | one user's enrolment and progress in one course | that user's join/leave of the course, progress in its lessons |
//! | `enrolments:{userId}` | the recent part of one user's course list | that user's join/leave |
//! | `earlier-enrolments:{userId}` | the earlier part of one user's course list, and its chunks | that user's leave of a course joined more than six days before |
//! | `courses` | every user's course list (it shows course names and images) | any change of a course's name, image or state, or its deletion |
//! | `public-lessons` | the public lesson list's pages | changes of its order or of what every page shows: lessons entering or leaving it, ranks, course names and states |
//! | `public-lessons-membership` | the public list's length, searched or not | lessons entering or leaving it (create, delete, state; course state, deletion) |
//! | `public-search:{gram}` | pages of the public list searched for a text starting with `gram` (the empty gram: unsearched pages and searches shorter than three characters), and lengths of searches too long for a `public-count` tag | renames of PUBLIC lessons (and any edit of one whose stored search form differs from the application's): the empty gram and every three-character window of the old and the new name |
//! | `public-count:{text}` | the public list's length searched for `text` (folded, at most twelve characters) | renames of PUBLIC lessons (as for `public-search`): every such text in one of the old and the new name but not in both |
//! | `public-counts` | every length with a `public-count` tag | renames of PUBLIC lessons that change more than 2 048 such texts (long names with little in common) |
//! | `session:{tokenHash}` | who a token belongs to, and since when it is used | logout, expiry, a recorded use (at most once per tenth of the idle timeout) |
//!
//! A list's tags must be known before its rows are read, so lists that show fields of many
//! courses depend on one broad tag (`courses`, `public-lessons`) rather than a tag per row;
//! writes bump those only when they change a field the lists show.
//!
//! Lesson renames are the public list's most frequent change, and a rename can change a search's
//! results only when the searched text is in the old or the new name. So a searched entry
//! depends on the first three characters of its (folded) text, and a rename bumps every
//! three-character window of both names (see [`search_gram`] and [`rename_grams`]): a search
//! for `rust` is not refetched when a lesson named `Go basics` becomes `Go testing`. Searches
//! shorter than three characters, and the unsearched pages, depend on the empty gram, which
//! every rename bumps.
//!
//! A searched list's length is costlier to refetch than a page (it counts every match) and
//! changes still more rarely: only when the text is in exactly one of the two names. So the
//! length of a search up to twelve characters depends on that very text, and a rename bumps
//! the texts it changes (see [`rename_counts`]): renaming `Rust lesson 3` to `Rust lesson 4`
//! leaves the length of a search for `lesson` cached.
//!
//! A user's course list is cached in two parts, split at the start of the UTC day a week back
//! ([`course_list_split`]): the courses joined since, which each join and leave changes, and the
//! earlier ones, which only the leave of an earlier course changes. A heavy user may be enrolled
//! in thousands of courses; a join then refetches the few recent ones, not all of them. The
//! earlier part is read through chunks of the courses matching a search, cached under its tags.
//! A leave bumps the earlier part's tag when the enrolment was made more than six days before
//! ([`in_earlier_part`]): the day between six and seven covers instances whose clocks differ by
//! less than a day.
//!
//! What users read is split in two: pages of published courses and lessons are shared by every
//! user (keyed by the course or lesson alone), and a user's enrolment and progress in a course
//! are one small entry keyed by the user and the course; routes combine the two. Per-user
//! entries carry the user id in their key: no user can reach another's entry, and shared
//! entries hold no per-user field.

use std::collections::BTreeSet;

use cachette::{Key, Namespace, Policy, Tag};

use crate::config::Policies;
use crate::db::JoinedPart;
use crate::domain::{CourseId, LessonId, ListParams, Page, Search, UserId, fold};

/// What a cached route needs: where its entry lives, what it depends on, how long it lives.
pub struct Entry {
    pub key: Key,
    pub tags: Vec<Tag>,
    pub policy: Policy,
}

/// How many courses one cached chunk of a user's earlier courses holds (a param of its key).
pub const CHUNK_LEN: usize = 50;

/// Builds the application's keys and tags.
#[derive(Clone)]
pub struct CacheKeys {
    /// Keys and tags need only the namespace, not the cache they are used with.
    namespace: Namespace,
    policies: Policies,
}

impl CacheKeys {
    pub fn new(namespace: Namespace, policies: Policies) -> Self {
        Self {
            namespace,
            policies,
        }
    }

    // Tags.

    pub fn course(&self, course: CourseId) -> Tag {
        self.namespace.tag(&format!("course:{course}"))
    }
    pub fn course_lessons(&self, course: CourseId) -> Tag {
        self.namespace.tag(&format!("course-lessons:{course}"))
    }
    pub fn lesson_count(&self, course: CourseId) -> Tag {
        self.namespace.tag(&format!("lesson-count:{course}"))
    }
    pub fn lesson(&self, lesson: LessonId) -> Tag {
        self.namespace.tag(&format!("lesson:{lesson}"))
    }
    pub fn admin_courses(&self, admin: UserId) -> Tag {
        self.namespace.tag(&format!("admin-courses:{admin}"))
    }
    pub fn participants(&self, course: CourseId) -> Tag {
        self.namespace.tag(&format!("participants:{course}"))
    }
    pub fn learner(&self, user: UserId, course: CourseId) -> Tag {
        self.namespace.tag(&format!("learner:{user}:{course}"))
    }
    pub fn enrolments(&self, user: UserId) -> Tag {
        self.namespace.tag(&format!("enrolments:{user}"))
    }
    pub fn earlier_enrolments(&self, user: UserId) -> Tag {
        self.namespace.tag(&format!("earlier-enrolments:{user}"))
    }
    pub fn all_courses(&self) -> Tag {
        self.namespace.tag("courses")
    }
    pub fn public_lessons(&self) -> Tag {
        self.namespace.tag("public-lessons")
    }
    pub fn public_membership(&self) -> Tag {
        self.namespace.tag("public-lessons-membership")
    }
    /// The searches of the public list whose folded text starts with `gram` (see [`search_gram`]).
    pub fn public_search(&self, gram: &str) -> Tag {
        self.namespace.tag(&format!("public-search:{gram}"))
    }
    /// The length of the public list searched for `text` (folded; see [`count_tag_text`]).
    pub fn public_count(&self, text: &str) -> Tag {
        self.namespace.tag(&format!("public-count:{text}"))
    }
    /// What renaming a PUBLIC lesson makes stale in the public list, given its names as searched
    /// (folded) before and after.
    pub fn public_rename(&self, searched_as: &[&str]) -> Vec<Tag> {
        let mut tags: Vec<Tag> = rename_grams(searched_as)
            .iter()
            .map(|gram| self.public_search(gram))
            .collect();
        match rename_counts(searched_as) {
            Some(texts) => tags.extend(texts.iter().map(|text| self.public_count(text))),
            None => tags.push(self.public_counts()),
        }
        tags
    }
    /// Every searched length with a `public-count` tag: bumped instead of its texts by renames
    /// that change too many of them.
    pub fn public_counts(&self) -> Tag {
        self.namespace.tag("public-counts")
    }
    pub fn session(&self, token_hash: &str) -> Tag {
        self.namespace.tag(&format!("session:{token_hash}"))
    }

    /// A tag given by name (admin invalidation endpoint, CLI).
    pub fn named(&self, name: &str) -> Tag {
        self.namespace.tag(name)
    }

    // Entries, one per cached read.

    pub fn session_entry(&self, token_hash: &str) -> Entry {
        Entry {
            key: self
                .namespace
                .key("session")
                .param("token", token_hash)
                .build(),
            tags: vec![self.session(token_hash)],
            policy: self.policies.session,
        }
    }

    pub fn public_lessons_page(&self, params: &ListParams) -> Entry {
        Entry {
            key: list_key(self.namespace.key("public:lessons"), params),
            tags: vec![
                self.public_lessons(),
                self.public_search(&search_gram(params.search.as_ref())),
            ],
            policy: self.policies.search_results,
        }
    }

    /// How many lessons the public list holds (those matching `search`, when given).
    pub fn public_lesson_count(&self, search: Option<&Search>) -> Entry {
        let mut tags = vec![self.public_membership()];
        if let Some(search) = search {
            match count_tag_text(search) {
                Some(text) => tags.extend([self.public_count(&text), self.public_counts()]),
                None => tags.push(self.public_search(&search_gram(Some(search)))),
            }
        }
        Entry {
            key: self
                .namespace
                .key("public:lessons:count")
                .param_opt("search", search.map(|s| fold(s.as_str())))
                .build(),
            tags,
            policy: self.policies.search_results,
        }
    }

    /// One user's enrolment and progress in one course.
    pub fn learner_state(&self, user: UserId, course: CourseId) -> Entry {
        Entry {
            key: self
                .namespace
                .key("user:state")
                .param("userId", user)
                .param("courseId", course)
                .build(),
            tags: vec![self.learner(user, course)],
            policy: self.policies.user_progress,
        }
    }

    /// The courses one user is enrolled in, of one part of their enrolments (see
    /// [`course_list_split`]); pages and searches are cut from the parts.
    pub fn user_course_list(&self, user: UserId, part: JoinedPart) -> Entry {
        let (name, bound, at, tag) = match part {
            JoinedPart::Since(at) => ("user:courses-since", "since", at, self.enrolments(user)),
            JoinedPart::Before(at) => (
                "user:courses-before",
                "before",
                at,
                self.earlier_enrolments(user),
            ),
        };
        Entry {
            key: self
                .namespace
                .key(name)
                .param("userId", user)
                .param(bound, at)
                .build(),
            tags: vec![tag, self.all_courses()],
            policy: self.policies.search_results,
        }
    }

    /// The `index`th chunk of a user's earlier courses (before `split`) that match `search`
    /// (see [`Chunk`](super::course_list::Chunk)).
    pub fn user_course_chunk(
        &self,
        user: UserId,
        split: i64,
        search: Option<&Search>,
        index: usize,
    ) -> Entry {
        Entry {
            key: self
                .namespace
                .key("user:earlier-courses")
                .param("userId", user)
                .param("before", split)
                .param_opt("search", search.map(|s| fold(s.as_str())))
                .param("chunk", index)
                .param("len", CHUNK_LEN)
                .build(),
            tags: vec![self.earlier_enrolments(user), self.all_courses()],
            policy: self.policies.search_results,
        }
    }

    /// A published course's page, shared by every user.
    pub fn published_course(&self, course: CourseId) -> Entry {
        Entry {
            key: self
                .namespace
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
                .namespace
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
                self.namespace.key("admin:courses").param("adminId", admin),
                params,
            ),
            tags: vec![self.admin_courses(admin)],
            policy: self.policies.search_results,
        }
    }

    pub fn admin_lessons(&self, admin: UserId, course: CourseId) -> Entry {
        Entry {
            key: self
                .namespace
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
                .namespace
                .key("admin:course")
                .param("adminId", admin)
                .param("courseId", course)
                .build(),
            tags: vec![
                self.course(course),
                self.lesson_count(course),
                self.participants(course),
            ],
            policy: self.policies.course_detail,
        }
    }

    pub fn admin_lesson(&self, admin: UserId, course: CourseId, lesson: LessonId) -> Entry {
        Entry {
            key: self
                .namespace
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
                self.namespace
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
                self.namespace
                    .key("user:participants")
                    .param("courseId", course),
                page,
            ),
            tags: vec![self.participants(course)],
            policy: self.policies.search_results,
        }
    }
}

/// The characters of a searched text that its public list entries depend on: the first three
/// of the folded text, or none (the empty gram) for shorter texts and the unsearched list.
pub fn search_gram(search: Option<&Search>) -> String {
    let Some(search) = search else {
        return String::new();
    };
    let folded = fold(search.as_str());
    if folded.chars().count() < GRAM_CHARS {
        return String::new();
    }
    folded.chars().take(GRAM_CHARS).collect()
}

/// The grams a rename bumps, given the lesson's names as searched (folded) before and after: the
/// empty gram and every window of [`GRAM_CHARS`] characters of each. A text contained in one of
/// the names starts with one of these windows, so every search whose results the rename can
/// change is bumped.
pub fn rename_grams(searched_as: &[&str]) -> BTreeSet<String> {
    let mut grams = BTreeSet::from([String::new()]);
    for name in searched_as {
        let chars: Vec<char> = name.chars().collect();
        grams.extend(
            chars
                .windows(GRAM_CHARS)
                .map(|w| w.iter().collect::<String>()),
        );
    }
    grams
}

/// The length of a search gram.
const GRAM_CHARS: usize = 3;

/// The longest searched text whose public list length has a tag of its own.
const COUNT_TAG_CHARS: usize = 12;

/// The text of the `public-count` tag a search's length depends on: the folded text, when it
/// is at most [`COUNT_TAG_CHARS`] characters long (longer ones depend on their gram).
pub fn count_tag_text(search: &Search) -> Option<String> {
    let folded = fold(search.as_str());
    (folded.chars().count() <= COUNT_TAG_CHARS).then_some(folded)
}

/// The most `public-count` tags one rename bumps; past it, it bumps `public-counts`.
const MAX_RENAME_COUNT_TAGS: usize = 2048;

/// The `public-count` texts a rename bumps, given the lesson's names as searched (folded)
/// before and after: every text of at most [`COUNT_TAG_CHARS`] characters contained in some
/// of the names but not in all. A search's length changes only when its text is in exactly one
/// of the stored names, old and new; a text found in every name given keeps its length.
/// `None` when there are more than [`MAX_RENAME_COUNT_TAGS`] (long names with little in
/// common): every searched length is then bumped at once.
pub fn rename_counts(searched_as: &[&str]) -> Option<BTreeSet<String>> {
    let substrings = |name: &str| {
        let chars: Vec<char> = name.chars().collect();
        let mut found = BTreeSet::new();
        for start in 0..chars.len() {
            for end in start + 1..=chars.len().min(start + COUNT_TAG_CHARS) {
                found.insert(chars[start..end].iter().collect::<String>());
            }
        }
        found
    };
    let each: Vec<BTreeSet<String>> = searched_as.iter().map(|name| substrings(name)).collect();
    let changed: BTreeSet<String> = each
        .iter()
        .flatten()
        .filter(|text| !each.iter().all(|other| other.contains(*text)))
        .cloned()
        .collect();
    (changed.len() <= MAX_RENAME_COUNT_TAGS).then_some(changed)
}

fn page_key(key: cachette::KeyBuilder, page: Page) -> Key {
    key.param("page", page.page)
        .param("limit", page.limit)
        .build()
}

fn list_key(key: cachette::KeyBuilder, params: &ListParams) -> Key {
    key.param("page", params.page.page)
        .param("limit", params.page.limit)
        .param_opt("search", params.search.as_ref().map(|s| fold(s.as_str())))
        .build()
}

const DAY_MS: i64 = 86_400_000;

/// How many days back a user's course list is split into its recent and earlier parts.
const RECENT_DAYS: i64 = 7;

/// Where a user's course list read at `now_ms` is split: the start of the UTC day
/// [`RECENT_DAYS`] back. Both parts' keys hold it, so each day's lists are new entries.
pub fn course_list_split(now_ms: i64) -> i64 {
    (now_ms.div_euclid(DAY_MS) - RECENT_DAYS) * DAY_MS
}

/// Whether ending, at `now_ms`, an enrolment made at `created_at` can change the earlier part
/// of a cached course list. Lists are split at most [`RECENT_DAYS`] days before they are read;
/// a day less leaves a day's margin for clocks of instances that differ by less than that.
pub fn in_earlier_part(created_at: i64, now_ms: i64) -> bool {
    created_at < now_ms - (RECENT_DAYS - 1) * DAY_MS
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn search(text: &str) -> Option<Search> {
        let query = HashMap::from([("search".to_owned(), text.to_owned())]);
        ListParams::parse(&query, 10).unwrap().search
    }

    #[test]
    fn a_leave_bumps_the_earlier_part_whenever_a_list_split_then_holds_it_there() {
        let hour = DAY_MS / 24;
        let writer = 1_780_000_000_000_i64 + 5 * hour;
        let split = course_list_split(writer);
        assert_eq!(split.rem_euclid(DAY_MS), 0, "a split starts a day");
        assert!((writer - 8 * DAY_MS..=writer - 7 * DAY_MS).contains(&split));
        // Readers whose clocks differ from the writer's by less than a day, or that read
        // earlier: every list they split holds an enrolment made at `made` in its earlier part
        // only if the writer's leave bumps that part.
        for made in (writer - 10 * DAY_MS..=writer).step_by(hour as usize) {
            for reader in (writer - 3 * DAY_MS..writer + DAY_MS).step_by(hour as usize) {
                if made < course_list_split(reader) {
                    assert!(in_earlier_part(made, writer), "made {made}, read {reader}");
                }
            }
        }
        // A leave of a course joined in the last six days leaves the earlier part cached.
        assert!(!in_earlier_part(writer - 6 * DAY_MS, writer));
        assert!(in_earlier_part(writer - 6 * DAY_MS - 1, writer));
    }

    #[test]
    fn a_rename_bumps_every_search_it_can_change() {
        let names = [
            "Go lesson 8: deployment",
            "Lesson renamed by client 3 edit 7",
            "Ça marche : l'ÉTÉ, ΣΟΦΙΑ",
            "ab",
        ];
        for old in names {
            for new in names {
                let bumped = rename_grams(&[&fold(old), &fold(new)]);
                for name in [old, new] {
                    let chars: Vec<char> = fold(name).chars().collect();
                    for start in 0..chars.len() {
                        for end in start + 1..=chars.len() {
                            let text: String = chars[start..end].iter().collect();
                            let Some(text) = search(&text) else { continue };
                            assert!(
                                bumped.contains(&search_gram(Some(&text))),
                                "renaming {old:?} to {new:?} misses a search for {text:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_rename_bumps_the_length_of_every_search_it_changes() {
        let names = [
            "Rust lesson 3: ownership",
            "Lesson renamed by client 3 edit 7",
            "Lesson renamed by client 3 edit 8",
            "Ça marche : l'ÉTÉ, ΣΟΦΙΑ",
            "ab",
        ];
        for old in names {
            for new in names {
                let (old, new) = (fold(old), fold(new));
                let counts = rename_counts(&[&old, &new]);
                let count_bumped =
                    |tag: &str| counts.as_ref().is_none_or(|texts| texts.contains(tag));
                let grams = rename_grams(&[&old, &new]);
                for name in [&old, &new] {
                    let chars: Vec<char> = name.chars().collect();
                    for start in 0..chars.len() {
                        for end in start + 1..=chars.len() {
                            let text: String = chars[start..end].iter().collect();
                            let Some(searched) = search(&text) else {
                                continue;
                            };
                            let folded = fold(searched.as_str());
                            if old.contains(&folded) == new.contains(&folded) {
                                continue;
                            }
                            let bumped = match count_tag_text(&searched) {
                                Some(tag) => count_bumped(&tag),
                                None => grams.contains(&search_gram(Some(&searched))),
                            };
                            assert!(
                                bumped,
                                "renaming {old:?} to {new:?} keeps the length of {text:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_rename_keeps_the_length_of_searches_in_both_names() {
        let counts = rename_counts(&["rust lesson 3", "rust lesson 4"]).unwrap();
        for kept in ["lesson", "rust", "st le", "go"] {
            let text = count_tag_text(&search(kept).unwrap()).unwrap();
            assert!(!counts.contains(&text), "{kept} was bumped");
        }
        for changed in ["3", "n 4", "ust lesson 4"] {
            assert!(counts.contains(changed), "{changed} was not bumped");
        }
        let long = search("a text of more than twelve characters").unwrap();
        assert_eq!(count_tag_text(&long), None);
    }

    #[test]
    fn renaming_long_names_bumps_every_length_at_once() {
        let (old, new) = ("a".repeat(200), "b".repeat(100) + &"c".repeat(100));
        let unrelated: String = ('\u{4e00}'..='\u{4ec7}').collect();
        assert!(rename_counts(&[&old, &new]).is_some(), "few distinct texts");
        let everyday = [
            "rust lesson 3: ownership and borrowing",
            "lesson renamed by client 12",
        ];
        assert!(
            rename_counts(&everyday).is_some(),
            "names of everyday length"
        );
        assert!(rename_counts(&[&old, &unrelated]).is_none());
    }

    #[test]
    fn a_rename_leaves_unrelated_searches_alone() {
        let bumped = rename_grams(&["go basics", "go testing"]);
        for text in ["rust", "React", "css"] {
            let gram = search_gram(search(text).as_ref());
            assert!(!bumped.contains(&gram), "{text} was bumped");
        }
        assert!(bumped.contains(&search_gram(search("TEST").as_ref())));
    }

    #[test]
    fn short_searches_and_the_whole_list_depend_on_every_rename() {
        assert_eq!(search_gram(None), "");
        assert_eq!(search_gram(search("go").as_ref()), "");
        assert_eq!(search_gram(search("Élan").as_ref()), "éla");
        assert!(rename_grams(&["x", "y"]).contains(""));
    }
}
