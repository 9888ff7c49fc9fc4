//! The `image.toml` schema: tags, architectures and the image's tests.
//! The `[tests]` table is corral-testrun's [`Tests`], which owns what a
//! test run checks; this module only places it in the file.

use corral_testrun::spec::Tests;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `dockerfiles/<name>/image.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub image: ImageSection,
    #[serde(default)]
    pub tests: Tests,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageSection {
    /// One line; matches the `summary` label.
    pub summary: String,
    /// Tags published for this image; the first is the one other library
    /// images use in FROM.
    pub tags: Vec<String>,
    pub architectures: Vec<Architecture>,
    /// `--build-arg` values; they override the Dockerfile's ARG defaults.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    X86_64,
    Aarch64,
    Ppc64le,
    S390x,
}

/// A problem in `image.toml` or `library.toml`, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct TomlError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses TOML text into `T`, turning errors into [`TomlError`]s with a
/// line and column.
pub fn from_toml<T: serde::de::DeserializeOwned>(path: &str, text: &str) -> Result<T, TomlError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        TomlError {
            path: path.to_string(),
            line,
            column,
            message: e.message().to_string(),
        }
    })
}

impl ImageSpec {
    /// Parses and checks an `image.toml`.
    pub fn parse(path: &str, text: &str) -> Result<Self, TomlError> {
        let spec: ImageSpec = from_toml(path, text)?;
        let fail = |message: String| TomlError {
            path: path.to_string(),
            line: 1,
            column: 1,
            message,
        };
        if spec.image.tags.is_empty() {
            return Err(fail("image.tags must list at least one tag".into()));
        }
        if spec.image.tags.iter().any(|t| t == "latest") {
            return Err(fail("image.tags must not contain latest".into()));
        }
        if spec.image.architectures.is_empty() {
            return Err(fail(
                "image.architectures must list at least one architecture".into(),
            ));
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[image]
summary = "PostgreSQL"
tags = ["16", "16-43"]
architectures = ["x86_64", "aarch64"]
build-args = { PG = "16" }

[tests]
user = "26"
volumes = ["/var/lib/pgsql/data"]
files-present = ["/usr/bin/postgres"]
files-absent = ["/usr/share/doc/postgresql"]

[[tests.commands]]
run = ["postgres", "--version"]
stdout = "^postgres \\(PostgreSQL\\) 16"

[[tests.mounts]]
target = "/var/lib/pgsql/backup"

[tests.service]
port = 5432
env = { POSTGRESQL_PASSWORD = "test" }
"#;

    #[test]
    fn parses_full_example() {
        let s = ImageSpec::parse("image.toml", FULL).unwrap();
        assert_eq!(s.image.tags[0], "16");
        assert_eq!(s.tests.commands[0].exit_code, 0);
        assert!(!s.tests.mounts[0].shared);
        assert!(s.tests.mounts[0].relabel && s.tests.mounts[0].source.is_none());
        let svc = s.tests.service.unwrap();
        assert_eq!((svc.port, svc.status, svc.timeout_seconds), (5432, 200, 60));
    }

    #[test]
    fn unknown_fields_have_positions() {
        let text = FULL.replace("user = \"26\"", "usr = \"26\"");
        let e = ImageSpec::parse("x/image.toml", &text).unwrap_err();
        assert_eq!((e.line, e.column), (9, 1), "{e}");
        assert!(e.message.contains("usr"), "{e}");
        let e = ImageSpec::parse("x", "[image]\nsummary = 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(ImageSpec::parse("x", &FULL.replace("\"16-43\"", "\"latest\"")).is_err());
    }
}
