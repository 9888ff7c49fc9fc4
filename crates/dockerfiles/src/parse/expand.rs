//! Variable expansion in instruction arguments, the way BuildKit's shell
//! lexer does it: `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`,
//! `${V:?msg}` and `${V?msg}`; single quotes are literal, double quotes
//! expand, the escape character escapes.

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandError {
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("unterminated variable reference `${{{name}`")]
    Unterminated { name: String },
    #[error("bad substitution in `${{{name}...}}`: unsupported modifier {modifier:?}")]
    Unsupported { name: String, modifier: char },
    #[error("bad substitution: missing variable name after `${{`")]
    MissingName,
    #[error("variable references nested more than {MAX_DEPTH} deep")]
    TooDeep,
}

/// Nesting limit for `${A:-${B:-...}}`, so hostile input cannot overflow the stack.
pub const MAX_DEPTH: usize = 64;

/// Expands variables in `word` and removes its quotes.
///
/// ```
/// use corral_dockerfiles::parse::expand;
/// let vars = |n: &str| (n == "TAG").then(|| "43".to_string());
/// assert_eq!(expand("fedora:${TAG}", '\\', vars).unwrap(), "fedora:43");
/// assert_eq!(expand("${MISSING:-x}", '\\', vars).unwrap(), "x");
/// assert!(expand("${MISSING:?required}", '\\', vars).is_err());
/// ```
pub fn expand<F>(word: &str, escape: char, lookup: F) -> Result<String, ExpandError>
where
    F: FnMut(&str) -> Option<String>,
{
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        lookup,
        depth: 0,
    };
    lexer.word(None)
}

/// The variable names a word refers to, in order, with duplicates.
pub fn referenced_variables(word: &str, escape: char) -> Vec<String> {
    let mut names = Vec::new();
    let _ = expand(word, escape, |n: &str| {
        names.push(n.to_string());
        None
    });
    names
}

struct Lexer<F> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: F,
    depth: usize,
}

impl<F: FnMut(&str) -> Option<String>> Lexer<F> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Reads up to the end, or to an unquoted, unescaped `stop`.
    fn word(&mut self, stop: Option<char>) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                return Ok(out);
            }
            self.pos += 1;
            if c == '\'' {
                while let Some(c) = self.next() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            } else if c == '"' {
                while let Some(c) = self.next() {
                    if c == '"' {
                        break;
                    } else if c == self.escape {
                        match self.peek() {
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                out.push(n);
                                self.pos += 1;
                            }
                            _ => out.push(c),
                        }
                    } else if c == '$' {
                        out.push_str(&self.dollar()?);
                    } else {
                        out.push(c);
                    }
                }
            } else if c == self.escape {
                match self.next() {
                    Some(n) => out.push(n),
                    None => out.push(c),
                }
            } else if c == '$' {
                out.push_str(&self.dollar()?);
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            _ => Ok("$".to_string()),
        }
    }

    /// After `${`.
    fn braced(&mut self) -> Result<String, ExpandError> {
        let name = self.name();
        if name.is_empty() {
            return Err(ExpandError::MissingName);
        }
        let value = (self.lookup)(&name);
        let Some(c) = self.next() else {
            return Err(ExpandError::Unterminated { name });
        };
        if c == '}' {
            return Ok(value.unwrap_or_default());
        }
        let colon = c == ':';
        let modifier = if colon { self.next() } else { Some(c) };
        let Some(modifier) = modifier else {
            return Err(ExpandError::Unterminated { name });
        };
        if !matches!(modifier, '-' | '+' | '?') {
            return Err(ExpandError::Unsupported { name, modifier });
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExpandError::TooDeep);
        }
        let word = self.word(Some('}'))?;
        self.depth -= 1;
        if self.next() != Some('}') {
            return Err(ExpandError::Unterminated { name });
        }
        // with a colon, an empty value counts as unset
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match modifier {
            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
            '+' => Ok(if set { word } else { String::new() }),
            _ if set => Ok(value.unwrap_or_default()),
            _ => Err(ExpandError::Required {
                message: if word.is_empty() {
                    "parameter null or not set".to_string()
                } else {
                    word
                },
                name,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn x(s: &str) -> Result<String, ExpandError> {
        expand(s, '\\', env)
    }

    #[test]
    fn simple_forms() {
        assert_eq!(x("$SET/${SET}x").unwrap(), "v/vx");
        assert_eq!(x("$UNSET-").unwrap(), "-");
        assert_eq!(x("a$").unwrap(), "a$");
        assert_eq!(x("'$SET'\"$SET\"").unwrap(), "$SETv");
        assert_eq!(x(r"\$SET").unwrap(), "$SET");
        assert_eq!(expand("`$SET", '`', env).unwrap(), "$SET");
    }

    #[test]
    fn modifiers() {
        assert_eq!(x("${UNSET:-d}").unwrap(), "d");
        assert_eq!(x("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(x("${EMPTY-d}").unwrap(), "");
        assert_eq!(x("${UNSET-d}").unwrap(), "d");
        assert_eq!(x("${SET:-d}").unwrap(), "v");
        assert_eq!(x("${SET:+w}").unwrap(), "w");
        assert_eq!(x("${EMPTY:+w}").unwrap(), "");
        assert_eq!(x("${EMPTY+w}").unwrap(), "w");
        assert_eq!(x("${UNSET+w}").unwrap(), "");
        assert_eq!(x("${UNSET:-${SET}x}").unwrap(), "vx");
        assert_eq!(x("${SET:?m}").unwrap(), "v");
        assert_eq!(x("${EMPTY?m}").unwrap(), "");
    }

    #[test]
    fn errors() {
        assert!(
            matches!(x("${UNSET:?need it}"), Err(ExpandError::Required { message, .. }) if message == "need it")
        );
        assert!(matches!(x("${EMPTY:?}"), Err(ExpandError::Required { .. })));
        assert!(matches!(x("${SET"), Err(ExpandError::Unterminated { .. })));
        assert!(matches!(
            x("${SET:-x"),
            Err(ExpandError::Unterminated { .. })
        ));
        assert!(matches!(
            x("${SET#x}"),
            Err(ExpandError::Unsupported { .. })
        ));
        assert!(matches!(x("${}"), Err(ExpandError::MissingName)));
        let deep = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
        assert!(matches!(x(&deep), Err(ExpandError::TooDeep)));
        let ok = format!("{}x{}", "${A:-".repeat(10), "}".repeat(10));
        assert_eq!(x(&ok).unwrap(), "x");
    }

    #[test]
    fn references() {
        assert_eq!(
            referenced_variables("${REG:-q}/$IMG:${TAG}", '\\'),
            vec!["REG", "IMG", "TAG"]
        );
    }
}
