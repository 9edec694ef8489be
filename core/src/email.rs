//! Checking a contact's email address and encoding it as one URL path segment.
//!
//! HubSpot takes the address of the v1 upsert from the path, so it has to travel as exactly one
//! segment: every byte outside RFC 3986's unreserved set is percent-encoded, which means nothing a
//! caller passes (`/`, `?`, `#`, `..`, `+`, `%`) can change the path or add a query.

use crate::error::{Error, Result};

/// The longest address HubSpot (and RFC 5321) accepts.
pub(crate) const MAX_EMAIL_LEN: usize = 254;

/// Checks the shape of an address before anything is sent: non-empty, exactly one `@` with text
/// on both sides, no white space or control characters, at most 254 bytes.
/// Whether the domain is real is HubSpot's call (it answers `INVALID_EMAIL`).
pub fn validate(email: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::InvalidInput(format!(
            "invalid email '{email}': {why}"
        )))
    };
    if email.is_empty() {
        return bad("it is empty");
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(Error::InvalidInput(format!(
            "invalid email '{}...': it is {} bytes long, the limit is {MAX_EMAIL_LEN}",
            email.chars().take(40).collect::<String>(),
            email.len()
        )));
    }
    if let Some(c) = email.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return bad(&format!("it contains {c:?}"));
    }
    match email.matches('@').count() {
        0 => return bad("it has no '@'"),
        1 => {}
        n => return bad(&format!("it has {n} '@' characters, an address has one")),
    }
    let (local, domain) = email.split_once('@').expect("one '@' was counted");
    if local.is_empty() {
        return bad("nothing before the '@'");
    }
    if domain.is_empty() {
        return bad("nothing after the '@'");
    }
    Ok(())
}

/// Percent-encodes `segment` so that it stays one path segment: bytes in `A-Z a-z 0-9 - . _ ~`
/// pass as they are, every other byte (UTF-8 included) becomes `%XX` with upper-case hex digits.
pub(crate) fn encode_path_segment(segment: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(segment.len() + 8);
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0x0f) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_outside_unreserved() {
        assert_eq!(encode_path_segment("ada@example.com"), "ada%40example.com");
        assert_eq!(encode_path_segment("a+b/c@x.io"), "a%2Bb%2Fc%40x.io");
        assert_eq!(encode_path_segment("a?x=1#@y"), "a%3Fx%3D1%23%40y");
        assert_eq!(encode_path_segment("../../x@y"), "..%2F..%2Fx%40y");
        assert_eq!(encode_path_segment("a%20b@y"), "a%2520b%40y");
        assert_eq!(encode_path_segment("jörg@x.de"), "j%C3%B6rg%40x.de");
        assert_eq!(encode_path_segment("A-Z.a_z~09"), "A-Z.a_z~09");
        assert_eq!(encode_path_segment("a;b\\c@y"), "a%3Bb%5Cc%40y");
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "ada@example.com",
            "a+tag@x.io",
            "o'brien@x.ie",
            "jörg@bücher.de",
            "a/b@x.io",
        ] {
            validate(ok).unwrap();
        }
        validate(&format!("{}@x.io", "a".repeat(249))).unwrap();
    }

    #[test]
    fn rejects_malformed_addresses_naming_them() {
        for (bad, why) in [
            ("", "empty"),
            ("ada", "no '@'"),
            ("a@b@c.io", "2 '@'"),
            ("@x.io", "before"),
            ("ada@", "after"),
            ("ada @x.io", "' '"),
            ("ada@x.io\n", "'\\n'"),
            ("ada\u{0}@x.io", "'\\0'"),
        ] {
            let err = validate(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.contains("invalid email"), "{err}");
        }
        let long = format!("{}@x.io", "a".repeat(250));
        assert!(validate(&long)
            .unwrap_err()
            .to_string()
            .contains("255 bytes"));
    }
}
