//! Lint rules for Dockerfiles: the Fedora container guidelines plus common
//! practice. [`lint_str`] parses and checks one file's text; [`registry`]
//! holds the rule catalogue; [`output`] renders text, JSON and SARIF.
//!
//! Findings are suppressed with `# corral-ignore: CR012` on the line before
//! an instruction, or `# corral-ignore-file: CR012` anywhere in the file.

mod ignore;
pub mod output;
pub mod registry;
mod rules;
mod shell;

pub use registry::{rule, RuleInfo, RULES};

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses and lints a Dockerfile's bytes. A file that does not parse gives
/// one CR000 finding.
///
/// ```
/// let f = corral_dockerfiles::lint::lint_bytes(b"FROM fedora\n");
/// assert!(f.iter().any(|f| f.rule == "CR001"));
/// ```
pub fn lint_bytes(src: &[u8]) -> Vec<Finding> {
    match crate::parse::parse_bytes(src) {
        Ok(df) => {
            let text = std::str::from_utf8(src).unwrap_or_default();
            let mut findings = rules::check(&df);
            ignore::apply(&df, text, &mut findings);
            findings.sort_by(|a, b| (a.line, a.column, a.rule).cmp(&(b.line, b.column, b.rule)));
            findings
        }
        Err(e) => vec![Finding {
            rule: "CR000",
            severity: Severity::Error,
            line: e.line,
            column: e.column,
            message: e.kind.to_string(),
        }],
    }
}

/// [`lint_bytes`] on text.
pub fn lint_str(src: &str) -> Vec<Finding> {
    lint_bytes(src.as_bytes())
}

#[cfg(test)]
mod tests;
