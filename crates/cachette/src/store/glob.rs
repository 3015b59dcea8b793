//! Redis-style glob matching, so the memory store answers patterns exactly as Redis does.

/// Whether `text` matches the Redis glob `pattern`: `*` any run, `?` any one byte, `[abc]`,
/// `[^a]` and `[a-z]` classes, `\x` a literal `x`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    matches(pattern.as_bytes(), text.as_bytes())
}

fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index it stood at).
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                backtrack = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(&pattern[p..], text[t]).map(|len| p + len),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(p + 2),
            Some(&c) => (c == text[t]).then_some(p + 1),
            None => None,
        };
        match (step, backtrack) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((after_star, star_t))) => {
                p = after_star;
                t = star_t + 1;
                backtrack = Some((after_star, star_t + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `pattern`; on a match, the class's length.
fn class(pattern: &[u8], c: u8) -> Option<usize> {
    let mut i = 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut found = false;
    while i < pattern.len() && pattern[i] != b']' {
        let lo = if pattern[i] == b'\\' && i + 1 < pattern.len() {
            i += 1;
            pattern[i]
        } else {
            pattern[i]
        };
        if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() && pattern[i + 2] != b']' {
            let hi = pattern[i + 2];
            found |= (lo.min(hi)..=lo.max(hi)).contains(&c);
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
    // An unclosed class runs to the end of the pattern, as in Redis.
    let len = (i + 1).min(pattern.len());
    (found != negate).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn matches_like_redis() {
        let cases = [
            ("*", "", true),
            ("yc:*", "yc:v1:a", true),
            ("yc:*", "yd:v1:a", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*c*e", "abcde", true),
            ("a*c*e", "abcdf", false),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("*:lessons:*", "yc:v1:public:lessons:page=1", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} ~ {text}");
        }
    }
}
