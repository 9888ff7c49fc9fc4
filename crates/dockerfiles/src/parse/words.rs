//! Splitting instruction arguments into words, flags and key=value pairs.

/// A word of an argument string with its byte range in that string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawWord<'a> {
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

/// Splits on unquoted whitespace; quotes and the escape character are kept
/// in the word (they are processed later, by [`unquote`] or expansion).
pub(crate) fn split_words(s: &str, escape: char) -> Vec<RawWord<'_>> {
    // Dockerfiles are nearly always ASCII: their bytes are their
    // characters, with no UTF-8 decoding on the way
    if s.is_ascii() {
        split_words_in(
            s,
            escape,
            s.bytes().enumerate().map(|(i, b)| (i, char::from(b))),
        )
    } else {
        split_words_in(s, escape, s.char_indices())
    }
}

fn split_words_in<'a>(
    s: &'a str,
    escape: char,
    chars: impl Iterator<Item = (usize, char)>,
) -> Vec<RawWord<'a>> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            escaped = false;
            continue;
        }
        if c == escape && quote != Some('\'') {
            escaped = true;
            start.get_or_insert(i);
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            None if c.is_whitespace() => {
                if let Some(b) = start.take() {
                    words.push(RawWord {
                        text: &s[b..i],
                        start: b,
                        end: i,
                    });
                }
            }
            None => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(b) = start {
        words.push(RawWord {
            text: &s[b..],
            start: b,
            end: s.len(),
        });
    }
    words
}

/// Splits on whitespace only, the way BuildKit reads the non-JSON forms of
/// COPY, ADD, VOLUME and EXPOSE.
pub(crate) fn split_fields(s: &str) -> Vec<RawWord<'_>> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if let Some(b) = start.take() {
                words.push(RawWord {
                    text: &s[b..i],
                    start: b,
                    end: i,
                });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(b) = start {
        words.push(RawWord {
            text: &s[b..],
            start: b,
            end: s.len(),
        });
    }
    words
}

/// Removes quotes and escape characters without expanding variables.
pub(crate) fn unquote(word: &str, escape: char) -> String {
    if !word.chars().any(|c| c == '"' || c == '\'' || c == escape) {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len());
    let mut quote: Option<char> = None;
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some('\'') if c == '\'' => quote = None,
            Some('\'') => out.push(c),
            Some(q) if c == q => quote = None,
            Some(_) if c == escape => match chars.peek() {
                Some(&n) if n == '"' || n == escape || n == '$' => {
                    out.push(n);
                    chars.next();
                }
                _ => out.push(c),
            },
            Some(_) => out.push(c),
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == escape => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// A flag as read: name, value, start and end offsets.
pub(crate) type RawFlag = (String, Option<String>, usize, usize);

/// Leading `--name[=value]` words, as BuildKit's `extractBuilderFlags`
/// reads them: quotes in a flag are removed, a bare `--` ends the flags.
/// Returns the flags (name, value, start, end) and the offset where the
/// rest of the arguments begin.
pub(crate) fn split_flags(s: &str) -> (Vec<RawFlag>, usize) {
    let mut flags = Vec::new();
    let bytes = s.as_bytes();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && (bytes[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if !s[pos..].starts_with("--") {
            return (flags, pos);
        }
        let start = pos;
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut end = s.len();
        for (i, c) in s[pos..].char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => word.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None => word.push(c),
            }
        }
        pos = end;
        if word == "--" {
            while pos < bytes.len() && (bytes[pos] as char).is_ascii_whitespace() {
                pos += 1;
            }
            return (flags, pos);
        }
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        flags.push((name, value, start, end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quoted_spaces() {
        let w: Vec<_> = split_words(r#"a="b c" d=e\ f 'g h'"#, '\\')
            .into_iter()
            .map(|w| w.text)
            .collect();
        assert_eq!(w, vec![r#"a="b c""#, r"d=e\ f", "'g h'"]);
    }

    #[test]
    fn unquote_handles_both_quotes_and_escape() {
        assert_eq!(unquote(r#""a \"b\"" 'c\d'"#, '\\'), r#"a "b" c\d"#);
        assert_eq!(unquote(r"a\ b", '\\'), "a b");
        assert_eq!(unquote("a` b", '`'), "a b");
    }

    #[test]
    fn flags_stop_at_first_argument() {
        let (f, rest) = split_flags(r#"--mount=type=cache,target="/a b" --link  src dst"#);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].0, "mount");
        assert_eq!(f[0].1.as_deref(), Some("type=cache,target=/a b"));
        assert_eq!(f[1].0, "link");
        assert_eq!(f[1].1, None);
        assert_eq!(
            &r#"--mount=type=cache,target="/a b" --link  src dst"#[rest..],
            "src dst"
        );
    }
}
