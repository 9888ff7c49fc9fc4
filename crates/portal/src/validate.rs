//! What the portal accepts as names and text, before anything is stored.
//!
//! Template names become image names (`community/NAME`), so they follow the
//! distribution spec's path component rule. Account names are those an
//! htpasswd file can hold. Free text (comments, log references, reasons)
//! is stored as given, except for control characters PostgreSQL's text
//! cannot hold or that have no business in a page.

/// The longest account name.
pub const MAX_ACCOUNT_NAME: usize = 64;
/// The longest template name.
pub const MAX_TEMPLATE_NAME: usize = 64;
/// The longest comment or reason.
pub const MAX_TEXT: usize = 16 * 1024;

/// Why a name or text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is refused: {why}")]
pub struct Invalid {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

fn invalid(what: &'static str, value: &str, why: &'static str) -> Invalid {
    let mut value = value.to_string();
    if value.len() > 80 {
        let mut cut = 80;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
        value.push('…');
    }
    Invalid { what, value, why }
}

/// An account name: 1 to 64 characters, no `:` (htpasswd's separator), no
/// whitespace or control characters. Anything else, quotes included, is a
/// valid name.
pub fn account_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.chars().count() > MAX_ACCOUNT_NAME {
        return Err(invalid(
            "account name",
            name,
            "it must have 1 to 64 characters",
        ));
    }
    if name
        .chars()
        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "account name",
            name,
            "it must not hold ':', whitespace or control characters",
        ));
    }
    Ok(())
}

/// A template name: lowercase letters and digits, separated by single `.`,
/// `_` or `-` (the distribution spec's path component), 64 at most.
pub fn template_name(name: &str) -> Result<(), Invalid> {
    let why = "it must be lowercase letters and digits separated by single '.', '_' or '-'";
    if name.is_empty() || name.len() > MAX_TEMPLATE_NAME {
        return Err(invalid(
            "template name",
            name,
            "it must have 1 to 64 characters",
        ));
    }
    let b = name.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let sep = |c: u8| matches!(c, b'.' | b'_' | b'-');
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(invalid("template name", name, why));
    }
    for w in b.windows(2) {
        if !(alnum(w[0]) || sep(w[0])) || (sep(w[0]) && sep(w[1])) {
            return Err(invalid("template name", name, why));
        }
    }
    Ok(())
}

/// An archive digest: `sha256:` and 64 lowercase hex digits.
pub fn digest(d: &str) -> Result<(), Invalid> {
    match d.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(())
        }
        _ => Err(invalid(
            "digest",
            d,
            "it must be sha256: and 64 lowercase hex digits",
        )),
    }
}

/// Free text: at most 16 KiB, no control characters but newline and tab.
pub fn text(what: &'static str, s: &str) -> Result<(), Invalid> {
    if s.len() > MAX_TEXT {
        return Err(invalid(what, s, "it is longer than 16 KiB"));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(what, s, "it holds control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for ok in [
            "alice",
            "O'Brien\";--",
            "ünïcödé",
            "a.b-c_d@example.org",
            "%_\\$1?",
        ] {
            account_name(ok).unwrap();
        }
        for bad in ["", "a:b", "a b", "tab\there", "nul\0", &"x".repeat(65)] {
            assert!(account_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn template_names() {
        for ok in ["nginx", "my-app.v2", "a", "a_b", "x9"] {
            template_name(ok).unwrap();
        }
        for bad in [
            "", "Nginx", "-a", "a-", "a--b", "a/b", "a..b", "../x", "a'b", "é",
        ] {
            assert!(template_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digests_and_text() {
        digest(&format!("sha256:{}", "0a".repeat(32))).unwrap();
        assert!(digest(&format!("sha256:{}", "0A".repeat(32))).is_err());
        assert!(digest("sha512:00").is_err());
        text("comment", "line\n\tindented 'quoted' \"x\"; DROP TABLE").unwrap();
        assert!(text("comment", "nul\0").is_err());
        assert!(text("comment", &"x".repeat(MAX_TEXT + 1)).is_err());
        let e = text("comment", &format!("{}\x07", "é".repeat(100))).unwrap_err();
        assert!(e.to_string().starts_with("comment \""), "{e}");
    }
}
