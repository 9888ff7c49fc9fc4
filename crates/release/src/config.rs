//! `release.toml`: what a release builds, where it publishes and with
//! which keys.
//!
//! Paths are relative to the file's directory; `${VAR}` in any string is
//! taken from the environment (an unset variable is an error naming the
//! file and line), so one file serves machines with different work
//! directories and ports.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;

/// The default respin cadence of base images without security advisories.
pub const DEFAULT_RESPIN_DAYS: u32 = 30;

/// The size limit of `release.toml`: a few kilobytes in practice.
pub const CONFIG_LIMIT: u64 = 1024 * 1024;

/// The whole file, paths resolved.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReleaseConfig {
    pub release: ReleaseSection,
    pub mirror: MirrorSection,
    #[serde(default)]
    pub sign: SignSection,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default, rename = "base")]
    pub bases: Vec<BaseImage>,
    pub library: Option<LibrarySection>,
    #[serde(default, rename = "stream")]
    pub streams: Vec<StreamEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReleaseSection {
    /// Image layouts, SBOMs, the state file and the reports.
    pub work: PathBuf,
    /// Days between respins of an image whose updates carry no security
    /// advisory.
    #[serde(default = "default_respin_days")]
    pub respin_days: u32,
}

fn default_respin_days() -> u32 {
    DEFAULT_RESPIN_DAYS
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MirrorSection {
    /// `HOST:PORT` of the registry images are pushed to.
    pub registry: String,
    /// Talk plain HTTP to it (a loopback mirror).
    #[serde(default)]
    pub plain_http: bool,
    /// The OSTree archive repository the mirror serves (`--ostree-repo`);
    /// Atomic Host commits are composed straight into it.
    pub ostree_repo: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignSection {
    /// cosign private key (password from `CORRAL_KEY_PASSWORD`).
    pub cosign_key: Option<PathBuf>,
    /// GPG key for simple signing to the mirror's lookaside and for
    /// compose commits.
    pub gpg_key: Option<String>,
    pub gpg_homedir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EngineSection {
    /// The Docker Engine for library builds and image tests; default
    /// `DOCKER_HOST`, then the local socket.
    pub url: Option<String>,
}

/// One base image: a tree recipe to an image in the mirror.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BaseImage {
    pub recipe: PathBuf,
    /// Repository in the mirror, e.g. `sample/base`.
    pub image: String,
    pub tag: String,
    /// An `image.toml` whose `[tests]` run against the built image.
    pub tests: Option<PathBuf>,
    /// The name the library's FROM lines use for this image
    /// (e.g. `quay.io/corral/base:43`).
    pub provides: Option<String>,
    /// The platforms to build for (`linux/amd64`, `linux/arm64`); the
    /// host's only when empty. More than one: the tag names an image
    /// index of one manifest per platform.
    #[serde(default)]
    pub platforms: Vec<String>,
}

impl BaseImage {
    /// The item name in plans, state and reports.
    pub fn name(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    /// The platforms to build for, parsed; empty for the host's alone
    /// (a single image, no index).
    pub fn parsed_platforms(&self) -> Result<Vec<corral_image::platform::Platform>, String> {
        if self.platforms.is_empty() {
            return Ok(Vec::new());
        }
        corral_image::platform::parse_list(&self.platforms.join(","))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LibrarySection {
    /// The library folder (with `library.toml`).
    pub path: PathBuf,
    /// Pushed as `REGISTRY/NAMESPACE/NAME:TAG`.
    pub namespace: String,
    /// Images to release; all when empty.
    #[serde(default)]
    pub images: Vec<String>,
    /// Concurrent builds.
    #[serde(default = "default_jobs")]
    pub jobs: usize,
}

fn default_jobs() -> usize {
    2
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StreamEntry {
    /// The stream file (`ostree-refs/*.toml`).
    pub file: PathBuf,
    /// The repository in the mirror the stream's commits are pushed to as
    /// OS images (the ostree container format); `os/NAME` when absent.
    pub image: Option<String>,
    /// The OS image's moving tag; the stream's `releasever` when absent.
    /// Each image is also tagged with its commit's version.
    pub image_tag: Option<String>,
    /// At most this many layers per OS image.
    #[serde(default = "default_image_layers")]
    pub image_layers: usize,
}

fn default_image_layers() -> usize {
    corral_ostree::container::export::DEFAULT_MAX_LAYERS
}

impl StreamEntry {
    pub fn name(&self) -> String {
        self.file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The OS image's repository in the mirror (`os/NAME` by default).
    pub fn image_repository(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| format!("os/{}", self.name()))
    }
}

impl ReleaseConfig {
    /// Reads `path`, expands `${VAR}` from the environment and resolves
    /// paths against the file's directory.
    pub fn load(path: &Path) -> Result<ReleaseConfig, ConfigError> {
        let text = corral_configfile::read_to_string(path, CONFIG_LIMIT)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        ReleaseConfig::parse(&text, path, &dir, &|name| std::env::var(name).ok())
    }

    /// Parses `text` (read from `origin`), taking variables from `env` and
    /// resolving relative paths against `dir`.
    ///
    /// ```
    /// use std::path::Path;
    /// use corral_release::ReleaseConfig;
    ///
    /// let text = "[release]\nwork = \"${WORK}\"\n[mirror]\nregistry = \"127.0.0.1:5000\"\n\
    ///             [[base]]\nrecipe = \"base.toml\"\nimage = \"os/base\"\ntag = \"43\"\n";
    /// let env = |v: &str| (v == "WORK").then(|| "/srv/release".to_string());
    /// let c = ReleaseConfig::parse(text, Path::new("release.toml"), Path::new("/src"), &env)?;
    /// assert_eq!(c.mirror_reference(&c.bases[0]), "127.0.0.1:5000/os/base:43");
    /// assert_eq!(c.bases[0].recipe, Path::new("/src/base.toml"));
    ///
    /// let e = ReleaseConfig::parse("[release]\nwork = 1\n", Path::new("release.toml"), Path::new("/"), &env);
    /// assert!(e.unwrap_err().to_string().starts_with("release.toml:2:8: "));
    /// # Ok::<(), corral_release::ConfigError>(())
    /// ```
    pub fn parse(
        text: &str,
        origin: &Path,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ReleaseConfig, ConfigError> {
        let expanded = expand_vars(text, env).map_err(|(offset, var)| {
            let (line, column) = corral_configfile::line_col(text, offset);
            ConfigError::Invalid {
                path: origin.to_path_buf(),
                line,
                column,
                message: format!("${{{var}}} is not set"),
            }
        })?;
        let mut config: ReleaseConfig = toml::from_str(&expanded).map_err(|e| {
            // Spans are into the expanded text; lines are the same as the
            // original's because values carry no newlines of their own.
            let (line, column) = e
                .span()
                .map(|s| corral_configfile::line_col(&expanded, s.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid {
                path: origin.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        config.resolve(dir);
        config.validate(origin, text)?;
        Ok(config)
    }

    fn resolve(&mut self, dir: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        abs(&mut self.release.work);
        if let Some(p) = &mut self.mirror.ostree_repo {
            abs(p);
        }
        if let Some(p) = &mut self.sign.cosign_key {
            abs(p);
        }
        if let Some(p) = &mut self.sign.gpg_homedir {
            abs(p);
        }
        for b in &mut self.bases {
            abs(&mut b.recipe);
            if let Some(t) = &mut b.tests {
                abs(t);
            }
        }
        if let Some(l) = &mut self.library {
            abs(&mut l.path);
        }
        for s in &mut self.streams {
            abs(&mut s.file);
        }
    }

    fn validate(&self, origin: &Path, text: &str) -> Result<(), ConfigError> {
        // Semantic errors point at the line that names the offending value.
        let invalid = |needle: &str, message: String| {
            let offset = text.find(needle).unwrap_or(0);
            let (line, column) = corral_configfile::line_col(text, offset);
            ConfigError::Invalid {
                path: origin.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for b in &self.bases {
            if !seen.insert(b.name()) {
                return Err(invalid(
                    &b.image,
                    format!("base image {} is listed twice", b.name()),
                ));
            }
            if let Err(e) = b.parsed_platforms() {
                return Err(invalid(
                    "platforms",
                    format!("base image {}: {e}", b.name()),
                ));
            }
            if b.image.contains(':') || b.image.starts_with('/') {
                return Err(invalid(
                    &b.image,
                    format!(
                        "image `{}` is a repository path (like sample/base), without host or tag",
                        b.image
                    ),
                ));
            }
        }
        for s in &self.streams {
            let repo = s.image_repository();
            if repo.contains(':') || repo.starts_with('/') || repo.is_empty() {
                return Err(invalid(
                    &repo,
                    format!(
                        "stream image `{repo}` is a repository path (like os/sample-atomic), without host or tag"
                    ),
                ));
            }
            if s.image_layers == 0 {
                return Err(invalid(
                    "image-layers",
                    "stream image-layers must be at least 1".into(),
                ));
            }
        }
        if self.streams.is_empty() && self.bases.is_empty() && self.library.is_none() {
            return Err(invalid(
                "[release]",
                "nothing to release: add a [[base]], a [library] or a [[stream]]".into(),
            ));
        }
        if !self.streams.is_empty() && self.mirror.ostree_repo.is_none() {
            return Err(invalid(
                "[mirror]",
                "[[stream]] needs mirror.ostree-repo, the repository the mirror serves".into(),
            ));
        }
        if self.library.as_ref().is_some_and(|l| l.jobs == 0) {
            return Err(invalid("jobs", "library.jobs must be at least 1".into()));
        }
        Ok(())
    }

    /// Where the resumable state is kept.
    pub fn state_path(&self) -> PathBuf {
        self.release.work.join("state.json")
    }

    /// Where base image layouts and their SBOMs are.
    pub fn images_dir(&self) -> PathBuf {
        self.release.work.join("images")
    }

    /// A new scratch directory in [`Config::images_dir`] (created when
    /// missing), removed when dropped: where a build writes before it
    /// swaps its result in.
    pub fn images_scratch(&self, prefix: &str) -> anyhow::Result<tempfile::TempDir> {
        use anyhow::Context;
        let dir = self.images_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&dir)
            .with_context(|| format!("creating a directory in {}", dir.display()))
    }

    /// The layout of base image `b`.
    pub fn layout_of(&self, b: &BaseImage) -> PathBuf {
        self.images_dir().join(b.image.replace('/', "_"))
    }

    /// The SBOM beside the layout of `b`, as `corral image build` writes it.
    pub fn sbom_of(&self, b: &BaseImage) -> PathBuf {
        corral_image::sbom::path_beside(&self.layout_of(b))
    }

    /// The base images named in `names` (all when empty; a name is
    /// `REPOSITORY:TAG` or `REPOSITORY`), as `corral image outdated`
    /// checks them: each one's SBOM and recipe.
    pub fn released(
        &self,
        names: &[String],
    ) -> anyhow::Result<Vec<corral_image::outdated::Released>> {
        let named = |b: &BaseImage, n: &String| b.name() == *n || b.image == *n;
        for n in names {
            anyhow::ensure!(
                self.bases.iter().any(|b| named(b, n)),
                "no [[base]] in the release config is `{n}`"
            );
        }
        Ok(self
            .bases
            .iter()
            .filter(|b| names.is_empty() || names.iter().any(|n| named(b, n)))
            .map(|b| corral_image::outdated::Released {
                image: b.name(),
                sbom: self.sbom_of(b),
                recipe: b.recipe.clone(),
            })
            .collect())
    }

    /// `HOST/REPOSITORY` of stream `s`'s OS image in the mirror.
    pub fn os_image_repository(&self, s: &StreamEntry) -> String {
        format!("{}/{}", self.mirror.registry, s.image_repository())
    }

    /// `REGISTRY/IMAGE:TAG` of base image `b` in the mirror.
    pub fn mirror_reference(&self, b: &BaseImage) -> String {
        format!("{}/{}:{}", self.mirror.registry, b.image, b.tag)
    }

    /// The Docker Engine: `[engine] url`, else `DOCKER_HOST`, else the
    /// local socket.
    pub fn engine_url(&self) -> String {
        self.engine
            .url
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| corral_dockerfiles::engine_build::DEFAULT_ENGINE.to_string())
    }

    /// `http[s]://REGISTRY`.
    pub fn mirror_url(&self) -> String {
        let scheme = if self.mirror.plain_http {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.mirror.registry)
    }
}

/// Expands `${NAME}` outside comments; on an unset variable returns its
/// byte offset and name.
fn expand_vars(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let code_len = comment_start(line).unwrap_or(line.len());
        let (code, comment) = line.split_at(code_len);
        let code = corral_configfile::expand_vars(code, env)
            .map_err(|unset| (line_start + unset.offset, unset.name))?;
        out.push_str(&code);
        out.push_str(comment);
        line_start += line.len();
    }
    Ok(out)
}

/// Where a line's comment starts: the first `#` outside a string.
fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return Some(i),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[release]
work = "${WORK}"

[mirror]
registry = "127.0.0.1:${PORT}"
plain-http = true
ostree-repo = "ostree"

[sign]
cosign-key = "keys/cosign.key"
gpg-key = "release@corral.invalid"

[[base]]
recipe = "recipes/sample-base.toml"
image = "sample/base"
tag = "43"
provides = "quay.io/corral/base:43"

[library]
path = "tests/fixtures/dockerfiles"
namespace = "sample"

[[stream]]
file = "ostree-refs/sample-atomic.toml"
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "WORK" => Some("/var/tmp/w".into()),
            "PORT" => Some("5000".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<ReleaseConfig, ConfigError> {
        ReleaseConfig::parse(text, Path::new("release.toml"), Path::new("/src"), &env)
    }

    #[test]
    fn parses_expands_and_resolves() {
        let c = parse(SAMPLE).unwrap();
        assert_eq!(c.release.work, PathBuf::from("/var/tmp/w"));
        assert_eq!(c.release.respin_days, DEFAULT_RESPIN_DAYS);
        assert_eq!(c.mirror.registry, "127.0.0.1:5000");
        assert_eq!(c.mirror.ostree_repo, Some(PathBuf::from("/src/ostree")));
        assert_eq!(
            c.bases[0].recipe,
            PathBuf::from("/src/recipes/sample-base.toml")
        );
        assert_eq!(c.bases[0].name(), "sample/base:43");
        assert_eq!(
            c.mirror_reference(&c.bases[0]),
            "127.0.0.1:5000/sample/base:43"
        );
        assert_eq!(c.library.as_ref().unwrap().jobs, 2);
        assert_eq!(c.streams[0].name(), "sample-atomic");
        assert_eq!(c.mirror_url(), "http://127.0.0.1:5000");
        // the OS image: os/NAME unless named, 50 layers at most
        assert_eq!(
            c.os_image_repository(&c.streams[0]),
            "127.0.0.1:5000/os/sample-atomic"
        );
        assert_eq!(c.streams[0].image_tag, None);
        assert_eq!(c.streams[0].image_layers, 50);
    }

    #[test]
    fn a_streams_os_image_is_configured_and_checked() {
        let text = SAMPLE.replace(
            "file = \"ostree-refs/sample-atomic.toml\"\n",
            "file = \"ostree-refs/sample-atomic.toml\"\nimage = \"atomic/host\"\nimage-tag = \"stable\"\nimage-layers = 8\n",
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.os_image_repository(&c.streams[0]),
            "127.0.0.1:5000/atomic/host"
        );
        assert_eq!(c.streams[0].image_tag.as_deref(), Some("stable"));
        assert_eq!(c.streams[0].image_layers, 8);
        let bad = text.replace("atomic/host", "127.0.0.1:5000/atomic/host");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("without host or tag"), "{e}");
        let zero = text.replace("image-layers = 8", "image-layers = 0");
        let e = parse(&zero).unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn unknown_fields_name_file_and_line() {
        let text = SAMPLE.replace("tag = \"43\"", "tag = \"43\"\ntagz = \"x\"");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("release.toml:18:"), "{e}");
        assert!(e.contains("tagz"), "{e}");
    }

    #[test]
    fn unset_variables_name_their_line() {
        let text = SAMPLE.replace("${PORT}", "${NO_SUCH_PORT}");
        let e = parse(&text).unwrap_err().to_string();
        assert_eq!(e, "release.toml:6:23: ${NO_SUCH_PORT} is not set");
    }

    #[test]
    fn streams_need_the_mirrors_ostree_repository() {
        let text = SAMPLE.replace("ostree-repo = \"ostree\"\n", "");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("release.toml:5:"), "{e}");
        assert!(e.contains("ostree-repo"), "{e}");
    }

    #[test]
    fn rejects_a_duplicate_base_and_a_tagged_repository() {
        let dup = format!(
            "{SAMPLE}\n[[base]]\nrecipe = \"r.toml\"\nimage = \"sample/base\"\ntag = \"43\"\n"
        );
        assert!(parse(&dup)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        let tagged = SAMPLE.replace("image = \"sample/base\"", "image = \"sample/base:43\"");
        let e = parse(&tagged).unwrap_err().to_string();
        assert!(e.starts_with("release.toml:16:"), "{e}");
    }

    /// `platforms` is parsed with the base image: the listed ones in
    /// order, none (the host's) when absent, and an unknown one refused
    /// at its line.
    #[test]
    fn base_platforms_are_checked_where_they_are_written() {
        assert!(parse(SAMPLE).unwrap().bases[0]
            .parsed_platforms()
            .unwrap()
            .is_empty());
        let two = SAMPLE.replace(
            "tag = \"43\"",
            "tag = \"43\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]",
        );
        let c = parse(&two).unwrap();
        let p = c.bases[0].parsed_platforms().unwrap();
        assert_eq!(
            p.iter().map(|p| p.rpm_arch()).collect::<Vec<_>>(),
            ["x86_64", "aarch64"]
        );
        let bad = SAMPLE.replace(
            "tag = \"43\"",
            "tag = \"43\"\nplatforms = [\"linux/aarch64\"]",
        );
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.starts_with("release.toml:18:"), "{e}");
        assert!(
            e.contains("linux/aarch64") && e.contains("not one corral builds"),
            "{e}"
        );
    }

    #[test]
    fn comments_are_not_expanded() {
        let text = format!("# ${{UNSET}} is fine here\n{SAMPLE}");
        let c = parse(&text).unwrap();
        assert_eq!(c.release.work, PathBuf::from("/var/tmp/w"));
        let text = SAMPLE.replace(
            "tag = \"43\"",
            "tag = \"43\" # not ${UNSET}\nprovides2 = \"#${NOPE}\"",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert_eq!(e, "release.toml:18:15: ${NOPE} is not set");
    }

    /// The chain printed with `{:#}`: each part once.
    fn chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut parts = vec![e.to_string()];
        let mut cur = e.source();
        while let Some(c) = cur {
            parts.push(c.to_string());
            cur = c.source();
        }
        parts.join(": ")
    }

    #[test]
    fn reading_names_the_file_once_and_refuses_devices_and_huge_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("release.toml");
        let e = ReleaseConfig::load(&missing).unwrap_err();
        let text = chain(&e);
        assert_eq!(
            text.matches("No such file or directory").count(),
            1,
            "{text}"
        );
        assert_eq!(text.matches("release.toml").count(), 1, "{text}");

        let e = ReleaseConfig::load(Path::new("/dev/zero")).unwrap_err();
        assert!(chain(&e).contains("/dev/zero"), "{}", chain(&e));
        assert!(chain(&e).contains("not a regular file"), "{}", chain(&e));

        let big = dir.path().join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(CONFIG_LIMIT + 1).unwrap();
        let e = chain(&ReleaseConfig::load(&big).unwrap_err());
        assert!(e.contains("big.toml") && e.contains("limit"), "{e}");
    }

    #[test]
    fn a_state_file_is_read_with_a_limit_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(crate::state::STATE_LIMIT + 1)
            .unwrap();
        let e = format!("{:#}", crate::state::ReleaseState::load(&path).unwrap_err());
        assert!(e.contains("state.json") && e.contains("limit"), "{e}");
        let e = format!(
            "{:#}",
            crate::state::ReleaseState::load(Path::new("/dev/zero")).unwrap_err()
        );
        assert!(e.contains("not a regular file"), "{e}");
    }
}
