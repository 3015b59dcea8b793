//! Text fields of request bodies: what each accepts, checked the same way on every database.
//!
//! No text the API stores or searches may hold a control character (`U+0000`–`U+001F`,
//! `U+007F`–`U+009F`): PostgreSQL refuses NUL outright, SQLite would store it, and either way
//! such text is never what a person typed. Multi-line texts (a course's presentation, a lesson's
//! content) accept line feeds, carriage returns and tabs. Emails are normalised (NFKC, lower
//! case, trimmed) and may hold no invisible character, so two accounts cannot look alike.

use unicode_normalization::UnicodeNormalization as _;

/// A body field that fails validation, named so the client knows which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Longest email, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest display name of an account.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Longest name of a course or a lesson.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest presentation of a course.
pub const MAX_PRESENTATION_CHARS: usize = 10_000;
/// Longest content of a lesson.
pub const MAX_CONTENT_CHARS: usize = 100_000;
/// Longest image URL.
pub const MAX_IMAGE_CHARS: usize = 2_000;
/// Shortest and longest password, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=200;

/// Whether `c` is a control character that no text may hold.
fn forbidden_in_line(c: char) -> bool {
    c.is_control()
}

/// Whether `c` is a control character that multi-line text may not hold.
fn forbidden_in_text(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// Whether `c` is drawn as nothing (Unicode's Default_Ignorable_Code_Point, plus the
/// bidirectional marks among them): refused in emails, where it would make look-alikes.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// `text` refused when it holds a control character (line breaks and tabs allowed when
/// `multi_line`).
fn without_controls(field: &'static str, text: &str, multi_line: bool) -> Result<(), FieldError> {
    let forbidden = if multi_line {
        forbidden_in_text
    } else {
        forbidden_in_line
    };
    if text.chars().any(forbidden) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// An email as accounts are stored and looked up: NFKC-normalised, lower case, trimmed.
///
/// # Errors
/// When it is not an address, is too long, or holds a control, space or invisible character.
pub fn email(raw: &str) -> Result<String, FieldError> {
    let email = normalized_email(raw)?;
    let valid = email.len() <= MAX_EMAIL_BYTES
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.contains(|c: char| c.is_whitespace() || invisible(c));
    if valid {
        Ok(email)
    } else {
        Err(FieldError::new("email", "must be an email address"))
    }
}

/// An email typed at sign-in, normalised as [`email`] stores them; an email no account can have
/// is left to fail as a wrong one would.
///
/// # Errors
/// When it holds a control character.
pub fn login_email(raw: &str) -> Result<String, FieldError> {
    normalized_email(raw)
}

fn normalized_email(raw: &str) -> Result<String, FieldError> {
    without_controls("email", raw, false)?;
    Ok(raw.trim().nfkc().collect::<String>().to_lowercase())
}

/// A single-line name, trimmed: 1..=`max` characters, no control character.
///
/// # Errors
/// When it is empty once trimmed, too long, or holds a control character.
pub fn name(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    without_controls(field, raw, false)?;
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// An account's display name.
///
/// # Errors
/// As [`name`].
pub fn display_name(raw: &str) -> Result<String, FieldError> {
    name("name", raw, MAX_DISPLAY_NAME_CHARS)
}

/// A multi-line text of at most `max` characters, kept as written.
///
/// # Errors
/// When it is too long or holds a control character other than a line break or a tab.
pub fn text(field: &'static str, raw: String, max: usize) -> Result<String, FieldError> {
    without_controls(field, &raw, true)?;
    if raw.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(raw)
}

/// An image URL: `http(s)://`, at most [`MAX_IMAGE_CHARS`] characters.
///
/// # Errors
/// When it is not such a URL or holds a control character.
pub fn image_url(raw: String) -> Result<String, FieldError> {
    without_controls("image", &raw, false)?;
    if raw.chars().count() > MAX_IMAGE_CHARS
        || !(raw.starts_with("https://") || raw.starts_with("http://"))
    {
        return Err(FieldError::new(
            "image",
            format!("must be an http(s) URL of at most {MAX_IMAGE_CHARS} characters"),
        ));
    }
    Ok(raw)
}

/// A new password: [`PASSWORD_CHARS`] characters, no control character.
///
/// # Errors
/// When it is too short, too long, or holds a control character.
pub fn password(raw: &str) -> Result<(), FieldError> {
    without_controls("password", raw, false)?;
    if !PASSWORD_CHARS.contains(&raw.chars().count()) {
        return Err(FieldError::new(
            "password",
            format!(
                "must be {} to {} characters",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        ));
    }
    Ok(())
}

/// Whether `text` holds a control character, for params checked elsewhere.
pub fn has_control(text: &str) -> bool {
    text.chars().any(forbidden_in_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(email("  Ada@Example.ORG ").unwrap(), "ada@example.org");
        // Full-width letters fold to their ASCII look-alikes.
        assert_eq!(email("ａｄａ@example.org").unwrap(), "ada@example.org");
    }

    #[test]
    fn emails_with_invisible_or_control_characters_are_refused() {
        for raw in [
            "a\u{200B}da@example.org",
            "ada@exam\u{00AD}ple.org",
            "ada\u{202E}@example.org",
            "ada@example.org\u{FEFF}x",
            "a\u{0}da@example.org",
            "ada@exa\u{7}mple.org",
            "ad a@example.org",
            "no-at-sign",
        ] {
            assert_eq!(email(raw).unwrap_err().field, "email", "{raw:?}");
        }
    }

    #[test]
    fn single_line_fields_refuse_every_control_character() {
        for c in ['\0', '\n', '\t', '\u{1B}', '\u{7F}', '\u{85}'] {
            let raw = format!("Rust{c}course");
            assert_eq!(name("name", &raw, 200).unwrap_err().field, "name");
            assert_eq!(display_name(&raw).unwrap_err().field, "name");
            assert!(image_url(format!("https://x.dev/{c}")).is_err());
            assert!(password(&format!("secret{c}secret")).is_err());
            assert!(has_control(&raw));
        }
    }

    #[test]
    fn multi_line_text_keeps_line_breaks_and_tabs_only() {
        let written = "line one\r\n\tline two\n".to_owned();
        assert_eq!(text("content", written.clone(), 100).unwrap(), written);
        for c in ['\0', '\u{1B}', '\u{7F}', '\u{9F}'] {
            let err = text("content", format!("a{c}b"), 100).unwrap_err();
            assert_eq!(err.field, "content");
        }
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        assert!(text("content", "é".repeat(10), 10).is_ok());
        assert!(text("content", "é".repeat(11), 10).is_err());
        assert!(name("name", &"é".repeat(200), 200).is_ok());
        assert!(name("name", "   ", 200).is_err());
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
    }
}
