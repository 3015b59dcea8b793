//! How large a request body may be.

use crate::domain::fields;

/// Largest request body accepted, but by the routes that write courses and lessons.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Most bytes JSON can spend on one character of a string: one outside the Basic Multilingual
/// Plane written as two `\uXXXX` escapes.
const MAX_JSON_BYTES_PER_CHAR: usize = 12;

/// Largest body of a course or lesson write: a longest lesson (name and content), every
/// character escaped as expensively as JSON allows, and room for the other fields. Only admins
/// get this far: the body is read after the token is checked.
pub const MAX_CONTENT_BODY_BYTES: usize = MAX_JSON_BYTES_PER_CHAR
    * (fields::MAX_TITLE_CHARS + fields::MAX_CONTENT_CHARS)
    + MAX_BODY_BYTES;
