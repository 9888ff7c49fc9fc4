//! Corral's Dockerfile parser, to the Dockerfile reference grammar.
//!
//! [`parse`] takes text and returns a [`Dockerfile`]; it does no I/O and
//! never panics. Modules: [`span`] positions, `words` argument splitting,
//! [`expand`] variable expansion, [`image_ref`] image references, `ast`
//! the tree, `instruction` the per-instruction interpretation.

mod ast;
pub mod expand;
pub mod image_ref;
mod instruction;
pub mod span;
mod words;

pub use ast::*;
pub use expand::{expand, referenced_variables, ExpandError};
pub use image_ref::{ImageRef, ImageRefError};
pub use span::Span;
pub(crate) use words::unquote;

use span::{LineIndex, SourceMap};

/// Why a Dockerfile could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub line: usize,
    pub column: usize,
    /// Byte offset.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("invalid parser directive: {0}")]
    Directive(String),
    #[error("unterminated heredoc, expected a line `{0}`")]
    UnterminatedHeredoc(String),
    #[error("{0}")]
    Arguments(String),
}

/// Parses bytes: invalid UTF-8 is an error, a UTF-8 byte-order mark is skipped.
pub fn parse_bytes(src: &[u8]) -> Result<Dockerfile, ParseError> {
    match std::str::from_utf8(src) {
        Ok(s) => parse(s),
        Err(e) => {
            let offset = e.valid_up_to();
            let idx = LineIndex::new(std::str::from_utf8(&src[..offset]).unwrap_or_default());
            let (line, column) = idx.position(offset);
            Err(ParseError {
                kind: ParseErrorKind::InvalidUtf8,
                line,
                column,
                offset,
            })
        }
    }
}

/// Parses a Dockerfile.
///
/// ```
/// let df = corral_dockerfiles::parse("FROM quay.io/corral/base:43\nRUN echo \\\n  hi\n").unwrap();
/// assert_eq!(df.instructions.len(), 2);
/// assert_eq!(df.instructions[1].args, "echo   hi");
/// ```
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    Parser::new(src).run()
}

/// A physical line: its text without the line terminator, and where it starts.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    text: &'a str,
    start: usize,
}

pub(crate) struct Parser<'a> {
    src: &'a str,
    idx: LineIndex<'a>,
    lines: Vec<Line<'a>>,
    pos: usize,
    escape: char,
    comments: Vec<Comment>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        let body = if src.starts_with('\u{feff}') { 3 } else { 0 };
        let mut lines = Vec::new();
        let mut start = body;
        while start < src.len() {
            let (end, next) = match src[start..].find('\n') {
                Some(i) => (start + i, start + i + 1),
                None => (src.len(), src.len()),
            };
            let text = src[start..end]
                .strip_suffix('\r')
                .unwrap_or(&src[start..end]);
            lines.push(Line { text, start });
            start = next;
        }
        Self {
            src,
            idx: LineIndex::new(src),
            lines,
            pos: 0,
            escape: '\\',
            comments: Vec::new(),
        }
    }

    pub(crate) fn error(&self, offset: usize, kind: ParseErrorKind) -> ParseError {
        let (line, column) = self.idx.position(offset);
        ParseError {
            kind,
            line,
            column,
            offset,
        }
    }

    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        self.idx.span(start, end)
    }

    fn run(mut self) -> Result<Dockerfile, ParseError> {
        let directives = self.directives()?;
        let mut instructions = Vec::new();
        while self.pos < self.lines.len() {
            let line = self.lines[self.pos];
            let trimmed = line.text.trim_start();
            if trimmed.is_empty() {
                self.pos += 1;
            } else if trimmed.starts_with('#') {
                self.comment(line);
                self.pos += 1;
            } else {
                instructions.push(self.instruction()?);
            }
        }
        let _ = self.src;
        Ok(Dockerfile {
            directives,
            escape: self.escape,
            instructions,
            comments: self.comments,
        })
    }

    fn comment(&mut self, line: Line<'a>) {
        let lead = line.text.len() - line.text.trim_start().len();
        let text = line.text.trim_start()[1..].trim().to_string();
        let span = self.span(line.start + lead, line.start + line.text.len());
        self.comments.push(Comment { text, span });
    }

    fn directives(&mut self) -> Result<Vec<Directive>, ParseError> {
        let mut out: Vec<Directive> = Vec::new();
        while let Some(&line) = self.lines.get(self.pos) {
            let Some((name, value)) = split_directive(line.text) else {
                break;
            };
            let name = name.to_ascii_lowercase();
            if !matches!(name.as_str(), "syntax" | "escape" | "check") {
                break;
            }
            if out.iter().any(|d| d.name == name) {
                return Err(self.error(
                    line.start,
                    ParseErrorKind::Directive(format!("{name} given twice")),
                ));
            }
            if name == "escape" {
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    v => {
                        return Err(self.error(
                            line.start,
                            ParseErrorKind::Directive(format!("escape must be \\ or `, not {v:?}")),
                        ))
                    }
                };
            }
            self.comment(line);
            out.push(Directive {
                name,
                value: value.to_string(),
                span: self.span(line.start, line.start + line.text.len()),
            });
            self.pos += 1;
        }
        Ok(out)
    }

    /// Reads one instruction starting at the current line.
    fn instruction(&mut self) -> Result<Instruction, ParseError> {
        let mut logical = String::new();
        let mut map = SourceMap::default();
        let first = self.lines[self.pos];
        let lead = first.text.len() - first.text.trim_start().len();
        let mut current = &first.text[lead..];
        let mut current_start = first.start + lead;
        let mut end = first.start + first.text.len();
        loop {
            let (content, continued) = strip_continuation(current, self.escape);
            map.push(logical.len(), current_start);
            logical.push_str(content);
            self.pos += 1;
            if !continued {
                break;
            }
            // blank and comment lines inside a continuation are dropped
            while let Some(&l) = self.lines.get(self.pos) {
                let t = l.text.trim_start();
                if t.is_empty() {
                    self.pos += 1;
                } else if t.starts_with('#') {
                    self.comment(l);
                    self.pos += 1;
                } else {
                    break;
                }
            }
            let Some(&next) = self.lines.get(self.pos) else {
                break;
            };
            current = next.text;
            current_start = next.start;
            end = next.start + next.text.len();
        }
        let start = first.start + lead;
        let mut ins = instruction::build(self, &logical, 0, &map, true)?;
        if !ins.heredocs.is_empty() {
            let mut heredocs = std::mem::take(&mut ins.heredocs);
            for h in &mut heredocs {
                end = self.heredoc_body(h)?;
            }
            ins.heredocs = heredocs;
        }
        ins.span = self.span(start, end);
        Ok(ins)
    }

    /// Reads the body of a heredoc whose marker was seen; returns the end
    /// offset of its terminator line.
    fn heredoc_body(&mut self, h: &mut Heredoc) -> Result<usize, ParseError> {
        let body_start = self.lines.get(self.pos).map_or(self.src.len(), |l| l.start);
        while let Some(&l) = self.lines.get(self.pos) {
            self.pos += 1;
            let text = if h.strip_tabs {
                l.text.trim_start_matches('\t')
            } else {
                l.text
            };
            if text == h.delimiter {
                h.span = self.span(body_start, l.start + l.text.len());
                return Ok(l.start + l.text.len());
            }
            h.content.push_str(text);
            h.content.push('\n');
        }
        Err(self.error(
            h.span.start,
            ParseErrorKind::UnterminatedHeredoc(h.delimiter.clone()),
        ))
    }

    pub(crate) fn escape(&self) -> char {
        self.escape
    }
}

/// `# name = value` at the top of the file.
fn split_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    let mut chars = name.chars();
    if !chars.next()?.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// Removes a trailing escape character (and whitespace after it).
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(content) => (content, true),
        None => (line, false),
    }
}

#[cfg(test)]
mod tests;

/// Splits shell-like text into unquoted words (quotes and escapes removed,
/// variables not expanded).
pub fn words_of(text: &str, escape: char) -> Vec<String> {
    words::split_words(text, escape)
        .into_iter()
        .map(|w| words::unquote(w.text, escape))
        .collect()
}
