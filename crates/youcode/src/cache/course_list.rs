//! A user's course list as it is cached: each course's folded name beside its JSON, so that a
//! page or a search is cut from the list without decoding the courses it does not show.
//!
//! A user may be enrolled in thousands of courses and reads the list a page at a time: decoding
//! every course on each read would cost far more than the page. The list is cached in two parts
//! (see [`super::keys`]): the recent courses, few, read whole; and the earlier ones, read through
//! [`Chunk`]s of those matching a search, each cut from the earlier part once and cached, so a
//! page reads a few small entries whatever the number of courses. The page itself is cut in
//! `http::course_list`.
//!
//! Layout: a version byte, then for each course, in list order, `u32` (little-endian) length
//! and bytes of its folded name, then `u32` length and bytes of its JSON object.

use std::ops::{Range, RangeInclusive};

use bytes::{BufMut, Bytes, BytesMut};
use cachette::Codec;
use memchr::memmem;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::db::UserCourseItem;
use crate::domain::{Page, Search, fold};

const VERSION: u8 = 1;

/// A user's courses, in list order.
#[derive(Debug, Clone)]
pub struct CourseList {
    payload: Bytes,
    items: Vec<Item>,
}

/// A run of the courses of a list that match a search, as cached: at most `chunk_len` of them,
/// from the `index * chunk_len`th (see [`CourseList::chunk`]), and how many match in all.
#[derive(Debug, Serialize, Deserialize)]
pub struct Chunk {
    pub total: i64,
    pub courses: Vec<Box<RawValue>>,
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
    /// UTF-8) only when it is taken into a page or a chunk.
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

    /// The JSON of the courses whose folded name contains the folded `search` (every course
    /// without one), in list order.
    fn matching(&self, search: Option<&Search>) -> impl Iterator<Item = &[u8]> {
        let wanted = search.map(|s| fold(s.as_str()));
        let finder = wanted.map(|w| memmem::Finder::new(w.as_bytes()).into_owned());
        self.items
            .iter()
            .filter(move |item| {
                finder
                    .as_ref()
                    .is_none_or(|f| f.find(&self.payload[item.folded_name.clone()]).is_some())
            })
            .map(|item| &self.payload[item.json.clone()])
    }

    /// Every course matching `search`, as JSON; `None` when one is not JSON (a corrupt entry).
    pub fn matches(&self, search: Option<&Search>) -> Option<Vec<Box<RawValue>>> {
        self.matching(search)
            .map(|json| serde_json::from_slice(json).ok())
            .collect()
    }

    /// The `index`th run of `chunk_len` courses matching `search`; `None` when one of them is
    /// not JSON (a corrupt entry).
    pub fn chunk(&self, search: Option<&Search>, index: usize, chunk_len: usize) -> Option<Chunk> {
        let mut total = 0;
        let mut courses = Vec::new();
        for (n, json) in self.matching(search).enumerate() {
            total += 1;
            if n / chunk_len == index {
                courses.push(serde_json::from_slice(json).ok()?);
            }
        }
        Some(Chunk { total, courses })
    }
}

/// The chunks of the earlier courses that `page` needs when `recent` courses come before them:
/// those it shows, or the first one (for the total) when it shows none.
pub fn chunks_for(recent: usize, page: Page, chunk_len: usize) -> RangeInclusive<usize> {
    let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let start = offset.saturating_sub(recent);
    let end = offset
        .saturating_add(page.limit as usize)
        .saturating_sub(recent);
    let last = if end > start { end - 1 } else { start };
    start / chunk_len..=last / chunk_len
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
pub(crate) mod tests {
    use super::*;
    use crate::cache::keys::CHUNK_LEN;
    use crate::domain::{CourseId, Timestamp};

    pub(crate) fn course(n: usize, name: &str) -> UserCourseItem {
        UserCourseItem {
            id: CourseId(uuid::Uuid::from_u128(n as u128)),
            name: name.to_owned(),
            image: n
                .is_multiple_of(2)
                .then(|| format!("https://img.example.org/{n}.png")),
            creator_name: "Ada \"the admin\"".to_owned(),
            joined_at: Timestamp::from_millis(1_767_323_045_000),
        }
    }

    #[test]
    fn a_page_needs_the_chunks_it_shows_or_the_first() {
        let page = |page, limit| Page { page, limit };
        assert_eq!(chunks_for(0, page(1, 10), 50), 0..=0);
        assert_eq!(chunks_for(30, page(1, 10), 50), 0..=0);
        assert_eq!(chunks_for(5, page(1, 10), 50), 0..=0);
        assert_eq!(chunks_for(0, page(5, 10), 50), 0..=0);
        assert_eq!(chunks_for(0, page(6, 10), 50), 1..=1);
        assert_eq!(chunks_for(3, page(5, 10), 50), 0..=0);
        assert_eq!(chunks_for(3, page(6, 10), 50), 0..=1);
        assert_eq!(chunks_for(0, page(1, 100), 50), 0..=1);
        assert_eq!(chunks_for(1, page(2, 100), 50), 1..=3);
        assert_eq!(
            chunks_for(0, page(1_000_000, 100), 50),
            1_999_998..=1_999_999
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
    fn a_course_that_is_not_json_is_refused() {
        let mut payload = CourseList::new(&[course(1, "Rust")])
            .unwrap()
            .payload
            .to_vec();
        // Keep the braces, break what is between them.
        let quote = payload.iter().rposition(|&b| b == b'"').unwrap();
        payload[quote] = b'{';
        let list = CourseList::parse(Bytes::from(payload)).unwrap();
        assert!(list.matches(None).is_none());
        assert!(list.chunk(None, 0, CHUNK_LEN).is_none());
    }
}
