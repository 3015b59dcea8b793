//! youcode's cached course lists: any payload is refused or read (pages, searches, chunks)
//! without panicking, and a list built from any courses reads back the same through its codec,
//! with the pages and searches of the whole list however it is split and chunked.
//!
//! The first byte picks the mode: even, the rest is a stored payload; odd, the rest is turned
//! into courses.

#![no_main]

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use cachette::Codec;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;
use youcode::db::UserCourseItem;
use youcode::domain::{CourseId, ListParams, Timestamp, fold};
use youcode::fuzzing::{CHUNK_LEN, Chunk, CourseList, CourseListCodec, ListParts, chunks_for};

#[derive(Arbitrary, Debug)]
struct Course {
    id: u128,
    name: String,
    image: Option<String>,
    creator_name: String,
    /// Milliseconds since the Unix epoch, any of them (those RFC 3339 cannot write included).
    joined_at: i64,
}

/// How the list is read: which page, what search, and how it is cut.
#[derive(Arbitrary, Debug)]
struct Read {
    page: u8,
    limit: u8,
    search: Option<String>,
    /// The number of courses in the recent part.
    split: u8,
    /// 0 stands for `CHUNK_LEN`.
    chunk_len: u8,
}

#[derive(Arbitrary, Debug)]
struct Lists {
    courses: Vec<Course>,
    read: Read,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = Unstructured::new(rest);
    if mode % 2 == 0 {
        let Ok(read) = Read::arbitrary(&mut input) else {
            return;
        };
        read_any(Bytes::copy_from_slice(input.take_rest()), &read);
    } else if let Ok(lists) = Lists::arbitrary_take_rest(input) {
        round_trip(&lists);
    }
});

/// The list params of `read`, as the route parses them; `None` when they are refused.
fn params(read: &Read) -> Option<ListParams> {
    let mut query = HashMap::new();
    query.insert("page".to_owned(), (u32::from(read.page) + 1).to_string());
    query.insert(
        "limit".to_owned(),
        (u32::from(read.limit) % 100 + 1).to_string(),
    );
    if let Some(search) = &read.search {
        query.insert("search".to_owned(), search.clone());
    }
    ListParams::parse(&query, 10).ok()
}

fn chunk_len(read: &Read) -> usize {
    match read.chunk_len {
        0 => CHUNK_LEN,
        n => usize::from(n % 16),
    }
    .max(1)
}

fn read_any(payload: Bytes, read: &Read) {
    let Some(list) = CourseListCodec.decode(&payload) else {
        return;
    };
    assert_eq!(CourseListCodec.encode(&list).as_ref(), Some(&payload));
    let Some(wanted) = params(read) else {
        return;
    };
    page_of(&list, &list, &wanted, chunk_len(read));
}

/// The page `wanted` of `recent` then `earlier`, as the route builds it; `None` when a part is
/// not JSON.
fn page_of(
    recent: &CourseList,
    earlier: &CourseList,
    wanted: &ListParams,
    chunk_len: usize,
) -> Option<Value> {
    let search = wanted.search.as_ref();
    let recent = recent.matches(search)?;
    let needed = chunks_for(recent.len(), wanted.page, chunk_len);
    let first = *needed.start();
    let earlier_total = earlier.chunk(search, 0, chunk_len)?.total;
    let count = usize::try_from(earlier_total).unwrap().div_ceil(chunk_len);
    let chunks: Vec<Chunk> = needed
        .filter(|&index| index < count)
        .map(|index| earlier.chunk(search, index, chunk_len))
        .collect::<Option<_>>()?;
    let parts = ListParts {
        recent: &recent,
        earlier_total,
        first_chunk: first,
        chunks: &chunks,
        chunk_len,
    };
    let json = parts.page(wanted.page).expect("a page encodes");
    Some(serde_json::from_slice(&json).expect("a page is JSON"))
}

fn round_trip(lists: &Lists) {
    let courses: Vec<UserCourseItem> = lists
        .courses
        .iter()
        .map(|c| UserCourseItem {
            id: CourseId(Uuid::from_u128(c.id)),
            name: c.name.clone(),
            image: c.image.clone(),
            creator_name: c.creator_name.clone(),
            joined_at: Timestamp::from_millis(c.joined_at),
        })
        .collect();
    let stored = |courses: &[UserCourseItem]| {
        let payload = CourseListCodec
            .encode(&CourseList::new(courses).expect("a course encodes"))
            .expect("a list is stored");
        CourseListCodec
            .decode(&payload)
            .expect("a stored list reads back")
    };
    let whole = stored(&courses);
    let read_back: Vec<Value> = whole
        .matches(None)
        .expect("every course is JSON")
        .iter()
        .map(|raw: &Box<RawValue>| serde_json::from_str(raw.get()).unwrap())
        .collect();
    let expected: Vec<Value> = courses
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    assert_eq!(read_back, expected);

    let Some(wanted) = params(&lists.read) else {
        return;
    };
    let split = usize::from(lists.read.split).min(courses.len());
    let (recent, earlier) = courses.split_at(split);
    let got = page_of(
        &stored(recent),
        &stored(earlier),
        &wanted,
        chunk_len(&lists.read),
    )
    .expect("every course is JSON");

    let matching: Vec<&UserCourseItem> = courses
        .iter()
        .filter(|c| {
            wanted
                .search
                .as_ref()
                .is_none_or(|s| fold(&c.name).contains(&fold(s.as_str())))
        })
        .collect();
    let total = matching.len() as u64;
    let shown: Vec<Value> = matching
        .into_iter()
        .skip(usize::try_from(wanted.page.offset()).unwrap())
        .take(wanted.page.limit as usize)
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    assert_eq!(got["data"], Value::Array(shown), "{wanted:?}");
    assert_eq!(got["total"], total, "{wanted:?}");
}
