//! A user's course list as it is cached: each course's folded name beside its JSON, so that a
//! page or a search is cut from the list without decoding the courses it does not show.
//!
//! A user may be enrolled in thousands of courses and reads the list a page at a time: decoding
//! every course on each read would cost far more than the page.
//!
//! Layout: a version byte, then for each course, in list order, `u32` (little-endian) length
//! and bytes of its folded name, then `u32` length and bytes of its JSON object.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use cachette::Codec;
use memchr::memmem;
use serde_json::value::RawValue;

use super::ListPage;
use crate::db::UserCourseItem;
use crate::domain::{ListParams, fold};

const VERSION: u8 = 1;

/// A user's courses, in list order.
#[derive(Debug, Clone)]
pub struct CourseList {
    payload: Bytes,
    items: Vec<Item>,
}

/// Where one course's parts are in the payload.
#[derive(Debug, Clone)]
struct Item {
    folded_name: Range<usize>,
    json: Range<usize>,
}

impl CourseList {
    /// The list of `courses`, in their order.
    ///
    /// # Errors
    /// When a course does not encode as JSON.
    pub fn new(courses: &[UserCourseItem]) -> serde_json::Result<Self> {
        let mut payload = BytesMut::new();
        payload.put_u8(VERSION);
        let mut items = Vec::with_capacity(courses.len());
        for course in courses {
            items.push(Item {
                folded_name: put_part(&mut payload, fold(&course.name).as_bytes()),
                json: put_part(&mut payload, &serde_json::to_vec(course)?),
            });
        }
        Ok(Self {
            payload: payload.freeze(),
            items,
        })
    }

    /// The list a payload holds, or `None` when it is not one: wrong version, lengths past its
    /// end, or parts that do not look like JSON objects. A part is checked to be JSON (and
    /// UTF-8) only when a page shows it.
    pub fn parse(payload: Bytes) -> Option<Self> {
        let (&version, mut rest) = payload.split_first()?;
        if version != VERSION {
            return None;
        }
        let mut items = Vec::new();
        let mut at = 1;
        while !rest.is_empty() {
            let folded_name = take_part(&mut rest, &mut at)?;
            let json = take_part(&mut rest, &mut at)?;
            let object = &payload[json.clone()];
            if object.first() != Some(&b'{') || object.last() != Some(&b'}') {
                return None;
            }
            items.push(Item { folded_name, json });
        }
        Some(Self { payload, items })
    }
}

/// The page `params` ask for of the courses of `parts` one after the other, among those whose
/// name contains the searched text, as the JSON of a [`ListPage`]. `None` when a course of the
/// page is not valid JSON (a corrupt entry).
pub fn page(parts: &[&CourseList], params: &ListParams) -> Option<Vec<u8>> {
    let wanted = params.search.as_ref().map(|s| fold(s.as_str()));
    let finder = wanted.as_deref().map(memmem::Finder::new);
    let matching = parts
        .iter()
        .flat_map(|list| list.items.iter().map(move |item| (&list.payload, item)))
        .filter(|(payload, item)| {
            finder
                .as_ref()
                .is_none_or(|finder| finder.find(&payload[item.folded_name.clone()]).is_some())
        });
    let offset = usize::try_from(params.page.offset()).unwrap_or(usize::MAX);
    let mut total = 0_i64;
    let mut data: Vec<&RawValue> = Vec::with_capacity(params.page.limit as usize);
    for (index, (payload, item)) in matching.enumerate() {
        total += 1;
        if index >= offset && data.len() < params.page.limit as usize {
            data.push(serde_json::from_slice(&payload[item.json.clone()]).ok()?);
        }
    }
    serde_json::to_vec(&ListPage::new((data, total), params.page)).ok()
}

/// Reads the length-prefixed part at the start of `rest`, which starts at `at` in the payload;
/// moves both past it and returns where its bytes are in the payload.
fn take_part(rest: &mut &[u8], at: &mut usize) -> Option<Range<usize>> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    tail.get(..len)?;
    *rest = &tail[len..];
    let text = *at + 4..*at + 4 + len;
    *at = text.end;
    Some(text)
}

/// Appends `bytes`, length first; returns where they are in the payload.
fn put_part(payload: &mut BytesMut, bytes: &[u8]) -> Range<usize> {
    payload.put_u32_le(u32::try_from(bytes.len()).expect("a course encodes to less than 4 GiB"));
    let start = payload.len();
    payload.put_slice(bytes);
    start..payload.len()
}

/// Stores a [`CourseList`] in its own layout.
pub struct CourseListCodec;

impl Codec<CourseList> for CourseListCodec {
    fn encode(&self, list: &CourseList) -> Option<Bytes> {
        Some(list.payload.clone())
    }
    fn decode(&self, payload: &Bytes) -> Option<CourseList> {
        CourseList::parse(payload.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::{Value, json};

    use super::*;

    fn course(n: usize, name: &str) -> UserCourseItem {
        UserCourseItem {
            id: format!("c{n}"),
            name: name.to_owned(),
            image: n
                .is_multiple_of(2)
                .then(|| format!("https://img.example.org/{n}.png")),
            creator_name: "Ada \"the admin\"".to_owned(),
            joined_at: "2026-01-02T03:04:05.000Z".to_owned(),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let query: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListParams::parse(&query, 10).unwrap()
    }

    fn page_json(parts: &[&CourseList], pairs: &[(&str, &str)]) -> Value {
        serde_json::from_slice(&page(parts, &params(pairs)).unwrap()).unwrap()
    }

    /// The list stored and read back.
    fn stored(courses: &[UserCourseItem]) -> CourseList {
        let payload = CourseListCodec
            .encode(&CourseList::new(courses).unwrap())
            .unwrap();
        CourseListCodec.decode(&payload).unwrap()
    }

    #[test]
    fn pages_and_searches_are_those_of_the_decoded_list_however_it_is_split() {
        let names = ["Rust basics", "ΣΟΦΙΑ", "Go", "rust testing", "CSS"];
        let courses: Vec<UserCourseItem> = (0..25)
            .map(|n| course(n, &format!("{} {n}", names[n % names.len()])))
            .collect();
        assert_eq!(stored(&courses).items.len(), 25);
        for split in [0, 1, 9, 10, 11, 24, 25] {
            let (recent, earlier) = courses.split_at(split);
            let (recent, earlier) = (stored(recent), stored(earlier));
            assert_same_pages(&courses, &[&recent, &earlier]);
        }
    }

    fn assert_same_pages(courses: &[UserCourseItem], parts: &[&CourseList]) {
        for pairs in [
            vec![],
            vec![("page", "3")],
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
            assert_eq!(page_json(parts, &pairs), expected, "{pairs:?}");
        }
    }

    #[test]
    fn an_empty_list_has_empty_pages() {
        let list = CourseList::new(&[]).unwrap();
        assert!(list.items.is_empty());
        assert_eq!(
            page_json(&[&list, &list], &[]),
            json!({"data": [], "total": 0, "page": 1, "limit": 10, "totalPages": 0})
        );
    }

    #[test]
    fn payloads_that_are_not_lists_do_not_decode() {
        let good = CourseList::new(&[course(1, "Rust"), course(2, "Go")])
            .unwrap()
            .payload;
        let mut wrong_version = good.to_vec();
        wrong_version[0] = 9;
        let mut not_object = good.to_vec();
        let last = not_object.len() - 1;
        not_object[last] = b']';
        for bad in [
            Vec::new(),
            wrong_version,
            good[..good.len() - 1].to_vec(),
            not_object,
            b"[{\"id\":\"c1\"}]".to_vec(),
        ] {
            assert!(CourseListCodec.decode(&Bytes::from(bad)).is_none());
        }
        assert!(CourseListCodec.decode(&good).is_some());
    }

    #[test]
    fn a_page_with_a_course_that_is_not_json_is_refused() {
        let mut payload = CourseList::new(&[course(1, "Rust")])
            .unwrap()
            .payload
            .to_vec();
        // Keep the braces, break what is between them.
        let quote = payload.iter().rposition(|&b| b == b'"').unwrap();
        payload[quote] = b'{';
        let list = CourseList::parse(Bytes::from(payload)).unwrap();
        assert_eq!(page(&[&list], &params(&[])), None);
    }
}
