//! A page of a user's course list, as the route answers it: cut from the cached parts of the
//! list (see `cache::course_list`), decoding only the courses it shows.

use serde_json::value::RawValue;

use super::list_page::ListPage;
use crate::cache::course_list::Chunk;
use crate::domain::Page;

/// What a page of a user's course list is cut from: the recent courses, then the chunks of the
/// earlier ones that the page needs.
#[derive(Debug, Clone, Copy)]
pub struct ListParts<'a> {
    /// The recent courses that match the search, whole, in list order.
    pub recent: &'a [Box<RawValue>],
    /// How many earlier courses match the search.
    pub earlier_total: i64,
    /// The index of the first of `chunks` among the earlier courses' chunks.
    pub first_chunk: usize,
    /// The chunks the page needs (`cache::course_list::chunks_for`) that exist, from
    /// `first_chunk` on.
    pub chunks: &'a [Chunk],
    /// How many courses a chunk holds.
    pub chunk_len: usize,
}

impl ListParts<'_> {
    /// The JSON of the [`ListPage`] `page` of the recent courses followed by the earlier ones.
    pub fn page(&self, page: Page) -> serde_json::Result<Vec<u8>> {
        let Self {
            recent,
            earlier_total,
            first_chunk,
            chunks,
            chunk_len,
        } = *self;
        let total = recent.len() as i64 + earlier_total;
        let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        let mut data: Vec<&RawValue> = Vec::with_capacity(page.limit as usize);
        for index in offset..offset.saturating_add(page.limit as usize) {
            let course = match index.checked_sub(recent.len()) {
                None => recent.get(index),
                Some(earlier) => (earlier / chunk_len)
                    .checked_sub(first_chunk)
                    .and_then(|chunk| chunks.get(chunk))
                    .and_then(|chunk| chunk.courses.get(earlier % chunk_len)),
            };
            match course {
                Some(course) => data.push(course),
                None => break,
            }
        }
        serde_json::to_vec(&ListPage::new((data, total), page))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use cachette::Codec;
    use serde_json::{Value, json};

    use super::*;
    use crate::cache::course_list::tests::course;
    use crate::cache::course_list::{CourseList, CourseListCodec, chunks_for};
    use crate::cache::keys::CHUNK_LEN;
    use crate::db::UserCourseItem;
    use crate::domain::{ListParams, fold};

    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let query: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListParams::parse(&query, 10).unwrap()
    }

    /// The list stored and read back.
    fn stored(courses: &[UserCourseItem]) -> CourseList {
        let payload = CourseListCodec
            .encode(&CourseList::new(courses).unwrap())
            .unwrap();
        CourseListCodec.decode(&payload).unwrap()
    }

    /// A page as the route builds it: the recent part's matches, then the chunks of the earlier
    /// part it needs, each stored as JSON and read back.
    fn page_json(
        recent: &CourseList,
        earlier: &CourseList,
        pairs: &[(&str, &str)],
        chunk_len: usize,
    ) -> Value {
        let wanted = params(pairs);
        let search = wanted.search.as_ref();
        let recent = recent.matches(search).unwrap();
        let needed = chunks_for(recent.len(), wanted.page, chunk_len);
        let first = *needed.start();
        let earlier_total = earlier.chunk(search, 0, chunk_len).unwrap().total;
        let count = usize::try_from(earlier_total).unwrap().div_ceil(chunk_len);
        let chunks: Vec<Chunk> = needed
            .filter(|&index| index < count)
            .map(|index| {
                let chunk = earlier.chunk(search, index, chunk_len).unwrap();
                serde_json::from_slice(&serde_json::to_vec(&chunk).unwrap()).unwrap()
            })
            .collect();
        let parts = ListParts {
            recent: &recent,
            earlier_total,
            first_chunk: first,
            chunks: &chunks,
            chunk_len,
        };
        let page = parts.page(wanted.page).unwrap();
        serde_json::from_slice(&page).unwrap()
    }

    #[test]
    fn pages_and_searches_are_those_of_the_whole_list_however_it_is_split_and_chunked() {
        let names = ["Rust basics", "ΣΟΦΙΑ", "Go", "rust testing", "CSS"];
        let courses: Vec<UserCourseItem> = (0..25)
            .map(|n| course(n, &format!("{} {n}", names[n % names.len()])))
            .collect();
        assert_eq!(stored(&courses).matches(None).unwrap().len(), 25);
        for split in [0, 1, 9, 10, 11, 24, 25] {
            let (recent, earlier) = courses.split_at(split);
            let (recent, earlier) = (stored(recent), stored(earlier));
            for chunk_len in [1, 3, 4, 10, 50] {
                assert_same_pages(&courses, &recent, &earlier, chunk_len);
            }
        }
    }

    fn assert_same_pages(
        courses: &[UserCourseItem],
        recent: &CourseList,
        earlier: &CourseList,
        chunk_len: usize,
    ) {
        for pairs in [
            vec![],
            vec![("page", "2")],
            vec![("page", "3")],
            vec![("limit", "7"), ("page", "2")],
            vec![("limit", "100")],
            vec![("search", "RUST"), ("limit", "4"), ("page", "2")],
            vec![("search", "σοφ")],
            vec![("search", "nothing")],
            vec![("page", "9")],
        ] {
            let wanted = params(&pairs);
            let matching: Vec<&UserCourseItem> = courses
                .iter()
                .filter(|c| {
                    wanted
                        .search
                        .as_ref()
                        .is_none_or(|s| fold(&c.name).contains(&fold(s.as_str())))
                })
                .collect();
            let total = matching.len() as i64;
            let shown: Vec<&UserCourseItem> = matching
                .into_iter()
                .skip(wanted.page.offset() as usize)
                .take(wanted.page.limit as usize)
                .collect();
            let expected =
                serde_json::to_value(ListPage::new((shown, total), wanted.page)).unwrap();
            assert_eq!(
                page_json(recent, earlier, &pairs, chunk_len),
                expected,
                "{pairs:?}, chunks of {chunk_len}"
            );
        }
    }

    #[test]
    fn an_empty_list_has_empty_pages() {
        let list = CourseList::new(&[]).unwrap();
        assert!(list.matches(None).unwrap().is_empty());
        assert_eq!(
            page_json(&list, &list, &[], CHUNK_LEN),
            json!({"data": [], "total": 0, "page": 1, "limit": 10, "totalPages": 0})
        );
    }
}
