//! The stream file: one OSTree ref, its release cadence, retention, signing
//! key and the tree recipe it is composed from.
//!
//! Parsing takes text and returns data ([`Stream::parse`]); [`Stream::load`]
//! reads the file and resolves the recipe's paths and `${VAR}`s.

use std::path::{Path, PathBuf};

use corral_tree::Recipe;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::error::ComposeError;

/// An update stream, e.g. `fedora/43/x86_64/atomic-host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Stream {
    /// The OSTree ref the commits go to.
    #[serde(rename = "ref")]
    pub ostree_ref: String,
    /// The release, the first part of every version (`43.20261125.0`).
    pub releasever: String,
    /// One line for people (the website's stream page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub cadence: Cadence,
    #[serde(default)]
    pub retention: Retention,
    pub sign: Sign,
    /// The package lockfile (relative to the stream file): the exact
    /// packages a compose installs ([`crate::lockfile`]).
    #[serde(default)]
    pub lockfile: Option<PathBuf>,
    /// The tree recipe (the schema of `corral tree build` recipes). A
    /// stream committed only from ready trees (`--rootfs`) may have none:
    /// then this is an empty recipe and [`Stream::recipe`] is `None`.
    #[serde(default = "absent_tree", skip_serializing_if = "is_absent")]
    pub tree: Recipe,
    /// What is done to the tree between the install and the commit.
    #[serde(default)]
    pub postprocess: Postprocess,
    /// How `corral disk build` makes disk images of the stream's commits.
    #[serde(default)]
    pub disk: Disk,
}

/// rpm-ostree's treefile options: what is done to the tree after the
/// packages are installed, before it is made OSTree-ready and committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Postprocess {
    /// Shell scripts run in the tree (`/bin/sh`, the tree as `/`, no
    /// network), in order.
    #[serde(default)]
    pub scripts: Vec<String>,
    /// Units enabled with `systemctl --root`.
    #[serde(default)]
    pub units: Vec<String>,
    /// Paths removed from the tree (relative to its root; each must exist).
    #[serde(default)]
    pub remove_files: Vec<String>,
    /// Groups kept in `/etc/group` (humans are added to them), not moved
    /// to `/usr/lib/group`.
    #[serde(default)]
    pub etc_group_members: Vec<String>,
}

impl Postprocess {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        *self == Postprocess::default()
    }
}

/// Disk images of the stream (`corral disk build`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Disk {
    /// Virtual size, e.g. `10G` (suffixes K, M, G, T; powers of 1024).
    #[serde(default)]
    pub size: Option<String>,
    /// Kernel arguments after `root=UUID=…` and libostree's `ostree=…`.
    #[serde(default)]
    pub kargs: Vec<String>,
    /// The remote the host's origin points at (`REMOTE:REF`).
    #[serde(default)]
    pub remote_name: Option<String>,
    /// Where the host pulls updates from (the mirror's `/ostree` URL).
    #[serde(default)]
    pub remote_url: Option<String>,
    /// The formats published for the stream: `qcow2`, `raw`, `raw.xz`.
    #[serde(default)]
    pub formats: Vec<String>,
}

/// When regular releases fall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Cadence {
    /// Days between releases.
    pub every_days: u32,
    /// A release day; releases fall every `every-days` after (and before) it.
    #[serde(with = "iso_date")]
    pub anchor: Date,
}

/// How many commits the ref keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Retention {
    pub keep: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { keep: 6 }
    }
}

/// The GPG key commits and the summary are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Sign {
    /// Fingerprint, key id or user id of a secret key.
    pub gpg_key: String,
    /// GnuPG home; `$GNUPGHOME` or `~/.gnupg` when unset.
    #[serde(default)]
    pub gpg_homedir: Option<PathBuf>,
}

mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_date(*date))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        // TOML has a date type; a quoted string is accepted too.
        let value = toml::Value::deserialize(d)?;
        let text = match &value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a date like 2026-01-06, found {other}"
                )))
            }
        };
        super::parse_date(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a date like 2026-01-06"))
        })
    }
}

/// What a stream without `[tree]` holds in its place: a recipe with no
/// name, which no `[tree]` table can be (recipes must be named).
fn absent_tree() -> Recipe {
    toml::from_str("name = \"\"\nreleasever = \"\"\npackages = []\n")
        .expect("the empty recipe parses")
}

fn is_absent(tree: &Recipe) -> bool {
    tree.name.is_empty()
}

/// Parses `2026-01-06`.
pub fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// `2026-01-06`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

impl Stream {
    /// Parses stream text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Stream, ComposeError> {
        let stream: Stream = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| corral_configfile::line_col(text, s.start))
                .unwrap_or((0, 0));
            ComposeError::StreamSyntax {
                path: origin.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        stream.validate(origin)?;
        Ok(stream)
    }

    /// The tree recipe, if the stream has a `[tree]` table.
    pub fn recipe(&self) -> Option<&Recipe> {
        (!is_absent(&self.tree)).then_some(&self.tree)
    }

    /// Reads and parses a stream file without resolving the recipe's
    /// paths (enough to plan, or to commit a ready tree).
    pub fn read(path: &Path) -> Result<Stream, ComposeError> {
        // A stream file is a few KiB; 1 MiB leaves room and stops `/dev/zero`.
        let text = corral_configfile::read_to_string(path, 1024 * 1024)?;
        Stream::parse(&text, path)
    }

    /// Reads a stream file and resolves the recipe's relative paths and
    /// `${VAR}` references against the environment.
    pub fn load(path: &Path) -> Result<Stream, ComposeError> {
        let mut stream = Stream::read(path)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        if stream.recipe().is_some() {
            stream
                .tree
                .resolve(&dir, path, &|name| std::env::var(name).ok())
                .map_err(|e| ComposeError::StreamInvalid {
                    path: path.to_path_buf(),
                    message: format!("[tree]: {}", recipe_message(e)),
                })?;
        }
        if let Some(lockfile) = &mut stream.lockfile {
            if lockfile.is_relative() {
                *lockfile = dir.join(&*lockfile);
            }
        }
        Ok(stream)
    }

    fn validate(&self, origin: &Path) -> Result<(), ComposeError> {
        let invalid = |message: String| ComposeError::StreamInvalid {
            path: origin.to_path_buf(),
            message,
        };
        if self.ostree_ref.is_empty()
            || self.ostree_ref.starts_with('/')
            || self.ostree_ref.ends_with('/')
            || self.ostree_ref.contains("//")
            || !self
                .ostree_ref
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
        {
            return Err(invalid(format!(
                "ref `{}` is not a valid OSTree ref (letters, digits, `-_.`, parts split by `/`)",
                self.ostree_ref
            )));
        }
        if self.releasever.is_empty() || self.releasever.contains('.') {
            return Err(invalid(format!(
                "releasever `{}` must be non-empty and contain no `.` (versions are <releasever>.<YYYYMMDD>.<n>)",
                self.releasever
            )));
        }
        if self.cadence.every_days == 0 {
            return Err(invalid("cadence.every-days must be at least 1".into()));
        }
        if self.retention.keep == 0 {
            return Err(invalid("retention.keep must be at least 1".into()));
        }
        if self.sign.gpg_key.trim().is_empty() {
            return Err(invalid("sign.gpg-key is empty".into()));
        }
        for script in &self.postprocess.scripts {
            if script.trim().is_empty() {
                return Err(invalid("postprocess.scripts: a script is empty".into()));
            }
        }
        for unit in &self.postprocess.units {
            if unit.is_empty()
                || unit.starts_with('-')
                || unit.contains(['/', ' '])
                || !unit.contains('.')
            {
                return Err(invalid(format!(
                    "postprocess.units: `{unit}` is not a unit name like sshd.service"
                )));
            }
        }
        for path in &self.postprocess.remove_files {
            let p = Path::new(path);
            if path.is_empty()
                || p.is_absolute()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(invalid(format!(
                    "postprocess.remove-files: `{path}` must be a relative path inside the tree, without `..` (like usr/share/doc/x)"
                )));
            }
        }
        for group in &self.postprocess.etc_group_members {
            if group.is_empty() || group.contains([':', '\n', ',', ' ']) {
                return Err(invalid(format!(
                    "postprocess.etc-group-members: `{group}` is not a group name"
                )));
            }
        }
        if self.recipe().is_some() && self.tree.releasever != self.releasever {
            return Err(invalid(format!(
                "tree.releasever `{}` differs from the stream's releasever `{}`",
                self.tree.releasever, self.releasever
            )));
        }
        if let Some(size) = &self.disk.size {
            parse_size(size).map_err(|e| invalid(format!("disk.size: {e}")))?;
        }
        for f in &self.disk.formats {
            if !DISK_FORMATS.contains(&f.as_str()) {
                return Err(invalid(format!(
                    "disk.formats: `{f}` is not one of {}",
                    DISK_FORMATS.join(", ")
                )));
            }
        }
        if let Some(name) = &self.disk.remote_name {
            if name.is_empty() || name.contains(['/', ':', ' ']) {
                return Err(invalid(format!(
                    "disk.remote-name `{name}` may not be empty or hold '/', ':' or spaces"
                )));
            }
        }
        if self.recipe().is_none() {
            return Ok(());
        }
        // The recipe's own checks (repositories, files, footprint).
        let text = toml::to_string(&self.tree).map_err(|e| invalid(format!("[tree]: {e}")))?;
        Recipe::parse(&text, origin)
            .map_err(|e| invalid(format!("[tree]: {}", recipe_message(e))))?;
        Ok(())
    }
}

/// The disk image formats `corral disk build` writes.
pub const DISK_FORMATS: &[&str] = &["qcow2", "raw", "raw.xz"];

/// Sizes in `[disk]` are read as `corral disk build` reads them.
pub use corral_configfile::parse_size;

/// A recipe error without the file name the stream error already gives.
fn recipe_message(e: corral_tree::TreeError) -> String {
    match e {
        corral_tree::TreeError::RecipeInvalid { message, .. } => message,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_path_that_is_not_a_small_file_is_refused_by_name() {
        let err = Stream::read(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            format!("{err}"),
            "/dev/zero: is a character device, not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).unwrap();
        let err = Stream::read(&big).unwrap_err();
        assert!(
            format!("{err}").starts_with(&format!("{}: larger than", big.display())),
            "{err}"
        );
    }

    pub(crate) const SAMPLE: &str = r#"
ref = "sample/43/x86_64/atomic"
releasever = "43"

[cadence]
every-days = 14
anchor = 2026-01-06

[retention]
keep = 3

[sign]
gpg-key = "compose@corral.invalid"

[tree]
name = "sample-atomic"
releasever = "43"
packages = ["corral-kernel", "corral-busybox"]

[[tree.repo]]
id = "sample"
baseurl = "/srv/repos/main"
gpgcheck = false
"#;

    fn parse(text: &str) -> Result<Stream, ComposeError> {
        Stream::parse(text, Path::new("ostree-refs/x.toml"))
    }

    #[test]
    fn parses_a_stream() {
        let s = parse(SAMPLE).unwrap();
        assert_eq!(s.ostree_ref, "sample/43/x86_64/atomic");
        assert_eq!(s.cadence.every_days, 14);
        assert_eq!(format_date(s.cadence.anchor), "2026-01-06");
        assert_eq!(s.retention.keep, 3);
        assert_eq!(s.tree.packages, ["corral-kernel", "corral-busybox"]);
        assert_eq!(s.sign.gpg_homedir, None);
    }

    #[test]
    fn disk_section_is_optional_and_checked() {
        assert_eq!(parse(SAMPLE).unwrap().disk, Disk::default());
        let text = format!(
            "{SAMPLE}\n[disk]\nsize = \"8G\"\nkargs = [\"console=ttyS0\"]\nremote-name = \"corral\"\nformats = [\"qcow2\", \"raw.xz\"]\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.disk.size.as_deref(), Some("8G"));
        assert_eq!(s.disk.kargs, ["console=ttyS0"]);
        assert_eq!(s.disk.formats, ["qcow2", "raw.xz"]);
        let bad = text.replace("\"raw.xz\"]", "\"vmdk\"]");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(
            err.contains("`vmdk` is not one of qcow2, raw, raw.xz"),
            "{err}"
        );
        let bad = text.replace("8G", "eight");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("disk.size: `eight` is not a size"), "{err}");
    }

    #[test]
    fn anchor_may_be_a_string() {
        let s = parse(&SAMPLE.replace("anchor = 2026-01-06", "anchor = \"2026-01-06\"")).unwrap();
        assert_eq!(format_date(s.cadence.anchor), "2026-01-06");
    }

    #[test]
    fn unknown_field_names_line_and_column() {
        let text = SAMPLE.replace("keep = 3", "keep = 3\nkeep-days = 90");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("ostree-refs/x.toml:11:1: "), "{err}");
        assert!(err.contains("keep-days"), "{err}");
    }

    #[test]
    fn unknown_field_in_tree_names_line_and_column() {
        let text = SAMPLE.replace(
            "name = \"sample-atomic\"",
            "name = \"sample-atomic\"\n  pakages = []",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("ostree-refs/x.toml:17:3: "), "{err}");
        assert!(err.contains("pakages"), "{err}");
    }

    #[test]
    fn bad_date_names_line_and_column() {
        let text = SAMPLE.replace("anchor = 2026-01-06", "anchor = \"2026-13-06\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("ostree-refs/x.toml:7:10: "), "{err}");
        assert!(err.contains("not a date"), "{err}");
    }

    #[test]
    fn wrong_type_names_line_and_column() {
        let text = SAMPLE.replace("every-days = 14", "every-days = \"two weeks\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("ostree-refs/x.toml:6:14: "), "{err}");
    }

    #[test]
    fn missing_section_is_an_error() {
        let text = SAMPLE.replace("[sign]\ngpg-key = \"compose@corral.invalid\"\n", "");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("missing field `sign`"), "{err}");
    }

    /// A stream committed only from ready trees needs no recipe.
    #[test]
    fn tree_is_optional() {
        let start = SAMPLE.find("[tree]").unwrap();
        let s = parse(&SAMPLE[..start]).unwrap();
        assert!(s.recipe().is_none());
        assert_eq!(s.postprocess, Postprocess::default());
        assert!(parse(SAMPLE).unwrap().recipe().is_some());
    }

    #[test]
    fn postprocess_and_lockfile_parse_and_are_checked() {
        let start = SAMPLE.find("[tree]").unwrap();
        let text = format!(
            "lockfile = \"x.lock.json\"\n{}[postprocess]\nscripts = [\"echo hi > /etc/hi\"]\nunits = [\"sshd.service\"]\nremove-files = [\"usr/share/doc\"]\netc-group-members = [\"wheel\"]\n{}",
            &SAMPLE[..start],
            &SAMPLE[start..]
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.lockfile.as_deref(), Some(Path::new("x.lock.json")));
        assert_eq!(s.postprocess.units, ["sshd.service"]);
        assert_eq!(s.postprocess.remove_files, ["usr/share/doc"]);
        assert_eq!(s.postprocess.etc_group_members, ["wheel"]);
        for (from, to, want) in [
            ("\"usr/share/doc\"", "\"/usr/share/doc\"", "remove-files"),
            ("\"usr/share/doc\"", "\"usr/../etc\"", "without `..`"),
            ("\"sshd.service\"", "\"--now\"", "not a unit name"),
            ("\"wheel\"", "\"a:b\"", "not a group name"),
            ("\"echo hi > /etc/hi\"", "\" \"", "a script is empty"),
        ] {
            let err = parse(&text.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn semantic_errors_name_the_file() {
        for (from, to, want) in [
            ("keep = 3", "keep = 0", "retention.keep"),
            ("every-days = 14", "every-days = 0", "every-days"),
            (
                "ref = \"sample/43/x86_64/atomic\"",
                "ref = \"/bad ref\"",
                "not a valid OSTree ref",
            ),
            (
                "name = \"sample-atomic\"\nreleasever = \"43\"",
                "name = \"sample-atomic\"\nreleasever = \"42\"",
                "differs",
            ),
            ("gpgcheck = false", "gpgcheck = true", "names no gpgkey"),
        ] {
            let text = SAMPLE.replace(from, to);
            assert_ne!(text, SAMPLE, "{from}");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.starts_with("ostree-refs/x.toml: "), "{err}");
            assert_eq!(err.matches("x.toml").count(), 1, "{err}");
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn shipped_streams_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ostree-refs");
        for (name, arch) in [
            ("fedora-atomic-host.toml", "x86_64"),
            ("sample-atomic.toml", "x86_64"),
            ("sample-atomic-aarch64.toml", "aarch64"),
        ] {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            let s = Stream::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                s.tree.packages.iter().any(|p| p.contains("kernel")),
                "{name} installs a kernel"
            );
            assert_eq!(s.tree.arch, arch, "{name}");
            assert!(s.ostree_ref.contains(&format!("/{arch}/")), "{name}");
        }
    }
}
