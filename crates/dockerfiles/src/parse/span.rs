//! Source positions: byte spans with the 1-based line and column of their start.

use serde::Serialize;

/// Where a node sits in the source text.
///
/// `start`/`end` are byte offsets into the text given to [`crate::parse`]
/// (after a byte-order mark, if any, was skipped: offsets still count it so
/// they index the original buffer). `line` and `column` are 1-based; the
/// column counts characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
}

/// Maps byte offsets to lines and columns.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        // a byte-order mark takes no column
        let mut line_starts = vec![if text.starts_with('\u{feff}') { 3 } else { 0 }];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, line_starts }
    }

    /// The 1-based line and character column of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts[line].min(offset);
        let column = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line + 1, column + 1)
    }

    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        let (line, column) = self.position(start);
        Span {
            start,
            end: end.max(start),
            line,
            column,
        }
    }
}

/// Maps offsets in a logical line (continuations joined) back to the source.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceMap {
    /// (offset in the logical text, offset in the source), sorted.
    segments: Vec<(usize, usize)>,
}

impl SourceMap {
    pub(crate) fn push(&mut self, logical: usize, source: usize) {
        self.segments.push((logical, source));
    }

    pub(crate) fn to_source(&self, logical: usize) -> usize {
        let i = match self.segments.binary_search_by_key(&logical, |s| s.0) {
            Ok(i) => i,
            Err(0) => return self.segments.first().map_or(logical, |s| s.1),
            Err(i) => i - 1,
        };
        let (l, s) = self.segments[i];
        s + (logical - l)
    }
}
