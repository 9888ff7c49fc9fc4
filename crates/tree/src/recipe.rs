//! The tree recipe: a TOML description of a root filesystem.
//!
//! Parsing takes text and returns data; nothing here touches the system
//! except [`Recipe::load`], which reads the file and resolves paths that are
//! relative to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TreeError;
use crate::values::{self, quoted};

/// The largest recipe file read: real ones are a few KiB.
pub const RECIPE_LIMIT: u64 = 1024 * 1024;

/// A root filesystem described as packages from repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Recipe {
    /// Short name of the tree; the image name defaults to it.
    pub name: String,
    /// The distribution release (`$releasever` for dnf).
    pub releasever: String,
    /// Target architecture (`$basearch`), e.g. `x86_64`.
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Repositories, in priority order.
    #[serde(default, rename = "repo")]
    pub repos: Vec<Repo>,
    /// Packages to install (names, provides or file paths as dnf takes them).
    pub packages: Vec<String>,
    /// Packages never to install, even as dependencies.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Install weak dependencies (Recommends). Off by default, as in
    /// Fedora's container base.
    #[serde(default)]
    pub install_weak_deps: bool,
    /// What to leave out of the tree.
    #[serde(default)]
    pub footprint: Footprint,
    /// Files added after the packages are installed.
    #[serde(default, rename = "file")]
    pub files: Vec<ExtraFile>,
    /// Labels for an image built from the tree (Fedora container labels).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Runtime configuration for an image built from the tree.
    #[serde(default)]
    pub image: ImageSettings,
}

fn default_arch() -> String {
    "x86_64".to_string()
}

/// One package repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Repo {
    /// Repository id, as in a `.repo` file section.
    pub id: String,
    /// Base URL; a path without a scheme is relative to the recipe file.
    #[serde(default)]
    pub baseurl: Option<String>,
    /// Metalink URL (Fedora's mirror manager).
    #[serde(default)]
    pub metalink: Option<String>,
    /// Check package signatures. On unless the recipe turns it off.
    #[serde(default = "yes")]
    pub gpgcheck: bool,
    /// The signing key(s): URLs, or paths relative to the recipe file.
    #[serde(default)]
    pub gpgkey: Vec<String>,
}

fn yes() -> bool {
    true
}

/// The footprint policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Footprint {
    /// Keep documentation (%doc files, man pages). Off by default.
    #[serde(default)]
    pub docs: bool,
    /// Locales to keep (rpm's `%_install_langs`); `["all"]` keeps every one.
    #[serde(default = "default_langs")]
    pub langs: Vec<String>,
    /// Remove package-manager caches (dnf metadata and packages).
    #[serde(default = "yes")]
    pub drop_caches: bool,
    /// Remove package-manager logs and transaction history.
    #[serde(default = "yes")]
    pub drop_logs: bool,
}

fn default_langs() -> Vec<String> {
    vec!["en_US".to_string()]
}

impl Default for Footprint {
    fn default() -> Self {
        Footprint {
            docs: false,
            langs: default_langs(),
            drop_caches: true,
            drop_logs: true,
        }
    }
}

/// A file written into the tree after installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExtraFile {
    /// Absolute path inside the tree.
    pub path: String,
    /// Inline content.
    #[serde(default)]
    pub content: Option<String>,
    /// A file to copy, relative to the recipe file.
    #[serde(default)]
    pub source: Option<String>,
    /// Octal mode, e.g. "0644".
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_mode() -> String {
    "0644".to_string()
}

/// Runtime settings carried into an image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageSettings {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

impl Recipe {
    /// Parses recipe text. `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Recipe, TreeError> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| corral_configfile::line_col(text, s.start))
                .unwrap_or((0, 0));
            TreeError::RecipeSyntax {
                path: origin.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        recipe.validate(origin)?;
        recipe.check_repo_ids(text, origin)?;
        Ok(recipe)
    }

    /// Refuses repository ids dnf would not keep as a repository: `main`
    /// (any case) names dnf.conf's own `[main]` section, so the repository
    /// would merge into it and silently disappear. Reported with the line
    /// and column of the id in the recipe.
    fn check_repo_ids(&self, text: &str, origin: &Path) -> Result<(), TreeError> {
        let Some(repo) = self
            .repos
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case("main"))
        else {
            return Ok(());
        };
        #[derive(Deserialize)]
        struct IdSpans {
            #[serde(default)]
            repo: Vec<IdSpan>,
        }
        #[derive(Deserialize)]
        struct IdSpan {
            id: toml::Spanned<String>,
        }
        let (line, column) = toml::from_str::<IdSpans>(text)
            .ok()
            .and_then(|s| s.repo.into_iter().find(|r| *r.id.get_ref() == repo.id))
            .map(|r| corral_configfile::line_col(text, r.id.span().start))
            .unwrap_or((0, 0));
        Err(TreeError::RecipeSyntax {
            path: origin.to_path_buf(),
            line,
            column,
            message: format!(
                "repository id `{}` is reserved: dnf.conf's own [main] section would swallow the repository; choose another id",
                repo.id
            ),
        })
    }

    /// Reads and parses a recipe file without resolving its repositories:
    /// enough for the labels and image settings of a ready tree.
    pub fn read(path: &Path) -> Result<Recipe, TreeError> {
        let text = corral_configfile::read_to_string(path, RECIPE_LIMIT)?;
        Recipe::parse(&text, path)
    }

    /// Reads and parses a recipe file, resolving relative repository paths
    /// and `${VAR}` references against the environment.
    pub fn load(path: &Path) -> Result<Recipe, TreeError> {
        let mut recipe = Recipe::read(path)?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        recipe.resolve(&dir, path, &|name| std::env::var(name).ok())?;
        Ok(recipe)
    }

    /// The recipe for another architecture (`--arch`, an image platform):
    /// dnf resolves `$basearch` and installs that architecture's packages.
    pub fn for_arch(&self, arch: &str) -> Result<Recipe, TreeError> {
        values::arch(arch).map_err(|why| TreeError::RecipeInvalid {
            path: PathBuf::from("--arch"),
            message: format!("arch {} {why}", quoted(arch)),
        })?;
        Ok(Recipe {
            arch: arch.to_string(),
            ..self.clone()
        })
    }

    fn validate(&self, origin: &Path) -> Result<(), TreeError> {
        let invalid = |message: String| TreeError::RecipeInvalid {
            path: origin.to_path_buf(),
            message,
        };
        // `what value: why`, with the value's control characters escaped
        let check = |what: &str, value: &str, rule: fn(&str) -> Result<(), String>| {
            rule(value).map_err(|why| invalid(format!("{what} {} {why}", quoted(value))))
        };
        check("name", &self.name, values::plain_text)?;
        if self.name.trim().is_empty() {
            return Err(invalid("`name` is empty".into()));
        }
        check("releasever", &self.releasever, values::releasever)?;
        check("arch", &self.arch, values::arch)?;
        if self.packages.is_empty() {
            return Err(invalid("`packages` is empty".into()));
        }
        for p in &self.packages {
            check("package", p, values::package_spec)?;
        }
        for p in &self.exclude {
            check("exclude", p, values::package_spec)?;
        }
        if self.repos.is_empty() {
            return Err(invalid("no [[repo]] is defined".into()));
        }
        let mut ids = std::collections::BTreeSet::new();
        for repo in &self.repos {
            check("repository id", &repo.id, values::repo_id)?;
            if !ids.insert(&repo.id) {
                return Err(invalid(format!(
                    "repository `{}` is defined twice",
                    repo.id
                )));
            }
            match (&repo.baseurl, &repo.metalink) {
                (None, None) => {
                    return Err(invalid(format!(
                        "repository `{}` needs a baseurl or a metalink",
                        repo.id
                    )))
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(format!(
                        "repository `{}` has both a baseurl and a metalink",
                        repo.id
                    )))
                }
                _ => {}
            }
            // Paths are only made URLs by `resolve`; what can be checked
            // before is that nothing can break a dnf.conf line.
            let what = format!("repository `{}`", repo.id);
            for value in repo
                .baseurl
                .iter()
                .chain(&repo.metalink)
                .chain(&repo.gpgkey)
            {
                check(&what, value, unsplittable)?;
            }
            if let Some(m) = &repo.metalink {
                check(
                    &format!("repository `{}` metalink", repo.id),
                    m,
                    values::url,
                )?;
            }
            if repo.gpgcheck && repo.gpgkey.is_empty() {
                return Err(invalid(format!(
                    "repository `{}` checks signatures but names no gpgkey (set gpgkey, or gpgcheck = false)",
                    repo.id
                )));
            }
        }
        for file in &self.files {
            check("file path", &file.path, values::tree_path)?;
            if let Some(source) = &file.source {
                check("file source", source, values::plain_text)?;
            }
            if file.content.is_some() == file.source.is_some() {
                return Err(invalid(format!(
                    "file `{}` needs exactly one of content and source",
                    file.path
                )));
            }
            if !u32::from_str_radix(&file.mode, 8).is_ok_and(|m| m <= 0o7777) {
                return Err(invalid(format!(
                    "file `{}` has mode {}, which is not an octal mode up to 7777",
                    file.path,
                    quoted(&file.mode)
                )));
            }
        }
        if self.footprint.langs.is_empty() {
            return Err(invalid(
                "footprint.langs is empty; name at least one locale, or \"all\"".into(),
            ));
        }
        for l in &self.footprint.langs {
            check("footprint.langs entry", l, values::lang)?;
        }
        for (k, v) in &self.labels {
            check("label", k, values::plain_text)?;
            check(&format!("label `{k}` value"), v, values::plain_text)?;
        }
        for e in &self.image.env {
            check("image.env entry", e, values::plain_text)?;
            if e.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(invalid(format!(
                    "image.env entry {} is not KEY=VALUE",
                    quoted(e)
                )));
            }
        }
        for (what, value) in [
            ("image.working-dir", &self.image.working_dir),
            ("image.user", &self.image.user),
        ] {
            if let Some(v) = value {
                check(what, v, values::plain_text)?;
            }
        }
        // Arguments may hold newlines (`sh -c` scripts), but no NUL: the
        // kernel ends an argument there.
        let args = self
            .image
            .cmd
            .iter()
            .chain(&self.image.entrypoint)
            .flatten();
        if let Some(a) = args.into_iter().find(|a| a.contains('\0')) {
            return Err(invalid(format!(
                "image.cmd/entrypoint argument {} contains NUL",
                quoted(a)
            )));
        }
        Ok(())
    }

    /// Expands `${VAR}` in URLs and makes scheme-less paths absolute
    /// against `dir`.
    pub fn resolve(
        &mut self,
        dir: &Path,
        origin: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), TreeError> {
        let fix = |value: &str| -> Result<String, TreeError> {
            let expanded = expand_vars(value, env).map_err(|var| TreeError::RecipeInvalid {
                path: origin.to_path_buf(),
                message: format!("`{value}` uses ${{{var}}}, which is not set"),
            })?;
            Ok(absolutize(&expanded, dir))
        };
        for repo in &mut self.repos {
            if let Some(url) = &repo.baseurl {
                repo.baseurl = Some(fix(url)?);
            }
            if let Some(url) = &repo.metalink {
                repo.metalink =
                    Some(
                        expand_vars(url, env).map_err(|var| TreeError::RecipeInvalid {
                            path: origin.to_path_buf(),
                            message: format!("metalink uses ${{{var}}}, which is not set"),
                        })?,
                    );
            }
            repo.gpgkey = repo
                .gpgkey
                .iter()
                .map(|k| fix(k))
                .collect::<Result<_, _>>()?;
        }
        // `${VAR}` values come from the environment: only now is the
        // whole URL known.
        for repo in &self.repos {
            let urls = repo
                .baseurl
                .iter()
                .chain(&repo.metalink)
                .chain(&repo.gpgkey);
            for url in urls {
                values::url(url).map_err(|why| TreeError::RecipeInvalid {
                    path: origin.to_path_buf(),
                    message: format!("repository `{}`: {} {why}", repo.id, quoted(url)),
                })?;
            }
        }
        for file in &mut self.files {
            if let Some(src) = &file.source {
                let p = Path::new(src);
                if p.is_relative() {
                    file.source = Some(dir.join(p).to_string_lossy().into_owned());
                }
            }
        }
        Ok(())
    }

    /// The locales rpm installs, as `%_install_langs` wants them.
    pub fn install_langs(&self) -> String {
        if self.footprint.langs.iter().any(|l| l == "all") {
            "all".to_string()
        } else {
            // C is the untranslated default and is always kept.
            let mut langs = vec!["C".to_string()];
            langs.extend(self.footprint.langs.iter().cloned());
            langs.join(":")
        }
    }
}

/// A value that fits on one dnf.conf line and in a space-separated list.
fn unsplittable(value: &str) -> Result<(), String> {
    values::plain_text(value)?;
    if value.chars().any(char::is_whitespace) {
        return Err("contains whitespace".into());
    }
    Ok(())
}

/// `${NAME}` replaced; the name of the first unset variable otherwise.
fn expand_vars(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    corral_configfile::expand_vars(value, env).map_err(|unset| unset.name)
}

/// A value with no URL scheme is a path; relative paths hang off `dir`.
fn absolutize(value: &str, dir: &Path) -> String {
    if value.contains("://") {
        return value.to_string();
    }
    let p = Path::new(value);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    };
    // `dir` is empty or `.` for a recipe named without a folder; a file
    // URL needs an absolute path even when the path does not exist yet.
    let abs = std::path::absolute(&abs).unwrap_or(abs);
    let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
    format!("file://{}", abs.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "sample"
releasever = "43"
packages = ["corral-hello"]

[[repo]]
id = "base"
baseurl = "repo/main"
gpgcheck = false

[[repo]]
id = "signed"
baseurl = "file:///srv/signed"
gpgkey = ["keys/RPM-GPG-KEY"]

[footprint]
langs = ["de"]

[labels]
name = "sample"
"#;

    #[test]
    fn parses_and_defaults() {
        let r = Recipe::parse(GOOD, Path::new("r.toml")).unwrap();
        assert_eq!(r.arch, "x86_64");
        assert!(!r.footprint.docs);
        assert!(r.footprint.drop_caches);
        assert!(r.repos[1].gpgcheck, "gpgcheck defaults to on");
        assert_eq!(r.install_langs(), "C:de");
    }

    #[test]
    fn resolves_relative_paths_and_vars() {
        let mut r = Recipe::parse(GOOD, Path::new("/x/r.toml")).unwrap();
        r.repos[0].baseurl = Some("${REPOS}/main".into());
        r.resolve(Path::new("/x"), Path::new("/x/r.toml"), &|n| {
            (n == "REPOS").then(|| "/srv/repos".to_string())
        })
        .unwrap();
        assert_eq!(
            r.repos[0].baseurl.as_deref(),
            Some("file:///srv/repos/main")
        );
        assert_eq!(r.repos[1].baseurl.as_deref(), Some("file:///srv/signed"));
        assert_eq!(
            r.repos[1].gpgkey,
            vec!["file:///x/keys/RPM-GPG-KEY".to_string()]
        );

        let mut r = Recipe::parse(GOOD, Path::new("/x/r.toml")).unwrap();
        r.repos[0].baseurl = Some("${NOPE}/main".into());
        let err = r
            .resolve(Path::new("/x"), Path::new("/x/r.toml"), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("${NOPE}"), "{err}");
    }

    #[test]
    fn relative_paths_of_a_recipe_without_folder_become_absolute() {
        let mut r = Recipe::parse(GOOD, Path::new("r.toml")).unwrap();
        r.repos[0].baseurl = Some("no-such-repo".into());
        r.resolve(Path::new(""), Path::new("r.toml"), &|_| None)
            .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            r.repos[0].baseurl,
            Some(format!("file://{}", cwd.join("no-such-repo").display()))
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let text = GOOD.replace("[footprint]\n", "[footprint]\nnodocs = true\n");
        let err = Recipe::parse(&text, Path::new("recipes/x.toml")).unwrap_err();
        match &err {
            TreeError::RecipeSyntax {
                path, line, column, ..
            } => {
                assert_eq!(path, Path::new("recipes/x.toml"));
                assert_eq!(*line, 17);
                assert_eq!(*column, 1);
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.starts_with("recipes/x.toml:17:1:"), "{msg}");
        assert!(msg.contains("nodocs"), "{msg}");
    }

    #[test]
    fn wrong_type_and_missing_field() {
        let text = GOOD.replace("releasever = \"43\"", "releasever = 43");
        let msg = Recipe::parse(&text, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("r.toml:3:14:"), "{msg}");

        let text = GOOD.replace("packages = [\"corral-hello\"]\n", "");
        let msg = Recipe::parse(&text, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing field `packages`"), "{msg}");
    }

    #[test]
    fn gpgcheck_without_key_is_refused() {
        let text = GOOD.replace("gpgkey = [\"keys/RPM-GPG-KEY\"]\n", "");
        let msg = Recipe::parse(&text, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`signed` checks signatures"), "{msg}");
    }

    fn refused(text: &str) -> String {
        match Recipe::parse(text, Path::new("r.toml")) {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn package_that_is_a_dnf_option_is_refused() {
        let msg = refused(&GOOD.replace("\"corral-hello\"", "\"--installroot=/\""));
        assert_eq!(
            msg,
            "r.toml: package `--installroot=/` starts with `-`, so dnf would read it as an option"
        );
        // top-level keys go before the first table
        let msg = refused(&GOOD.replace(
            "packages = [\"corral-hello\"]",
            "packages = [\"corral-hello\"]\nexclude = [\"kernel*\", \"-x\"]",
        ));
        assert!(msg.contains("exclude `-x` starts with `-`"), "{msg}");
    }

    #[test]
    fn newline_in_repo_values_is_refused() {
        let msg = refused(&GOOD.replace("id = \"base\"", "id = \"main]\\n[evil\""));
        assert!(msg.contains("repository id `main]\\n[evil`"), "{msg}");
        let msg = refused(&GOOD.replace(
            "baseurl = \"repo/main\"",
            "baseurl = \"repo/main\\n[evil]\\nbaseurl=file:///x\"",
        ));
        assert!(msg.contains("control character \\n"), "{msg}");
        let msg = refused(&GOOD.replace("gpgkey = [\"keys/RPM-GPG-KEY\"]", "gpgkey = [\"a b\"]"));
        assert!(msg.contains("`a b` contains whitespace"), "{msg}");
    }

    #[test]
    fn repository_id_main_is_refused_with_its_line() {
        for id in ["main", "MAIN", "Main"] {
            let msg = refused(&GOOD.replace("id = \"signed\"", &format!("id = \"{id}\"")));
            assert_eq!(
                msg,
                format!(
                    "r.toml:12:6: repository id `{id}` is reserved: dnf.conf's own [main] \
                     section would swallow the repository; choose another id"
                )
            );
        }
        // ids dnf would not take as they are
        let msg = refused(&GOOD.replace("id = \"base\"", "id = \"a/b\""));
        assert!(msg.contains("repository id `a/b` may only hold"), "{msg}");
        let msg = refused(&GOOD.replace("id = \"base\"", "id = \"$x\""));
        assert!(msg.contains("repository id `$x` may only hold"), "{msg}");
        // `mainline` or `main-updates` are ordinary ids
        Recipe::parse(
            &GOOD.replace("id = \"base\"", "id = \"mainline\""),
            Path::new("r.toml"),
        )
        .unwrap();
    }

    #[test]
    fn newline_from_the_environment_is_refused() {
        let mut r = Recipe::parse(GOOD, Path::new("/x/r.toml")).unwrap();
        r.repos[1].baseurl = Some("${MIRROR}/signed".into());
        let err = r
            .resolve(Path::new("/x"), Path::new("/x/r.toml"), &|_| {
                Some("https://m.example\n[evil]\ngpgcheck=0".into())
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/x/r.toml: repository `signed`: `https://m.example\\n[evil]"),
            "{err}"
        );
        assert!(err.contains("control character"), "{err}");
        let mut r = Recipe::parse(GOOD, Path::new("/x/r.toml")).unwrap();
        r.repos[1].baseurl = Some("gopher://x/".into());
        let err = r
            .resolve(Path::new("/x"), Path::new("/x/r.toml"), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("scheme `gopher`"), "{err}");
    }

    #[test]
    fn for_arch_changes_only_the_architecture() {
        let r = Recipe::parse(GOOD, Path::new("r.toml")).unwrap();
        let arm = r.for_arch("aarch64").unwrap();
        assert_eq!(arm.arch, "aarch64");
        assert_eq!(
            Recipe {
                arch: r.arch.clone(),
                ..arm
            },
            r
        );
        let err = r.for_arch("arm64").unwrap_err().to_string();
        assert!(err.contains("arch `arm64` is not one of"), "{err}");
    }

    #[test]
    fn unknown_arch_and_odd_values_are_refused() {
        let msg = refused(&GOOD.replace(
            "releasever = \"43\"",
            "releasever = \"43\"\narch = \"../../etc\"",
        ));
        assert!(
            msg.contains("arch `../../etc` is not one of x86_64"),
            "{msg}"
        );
        let msg = refused(&GOOD.replace("releasever = \"43\"", "releasever = \"-43\""));
        assert!(msg.contains("releasever `-43`"), "{msg}");
        let msg = refused(&GOOD.replace("langs = [\"de\"]", "langs = [\"de\\n%_dbpath /\"]"));
        assert!(msg.contains("footprint.langs entry"), "{msg}");
        // GOOD ends in [labels], so this line adds a label
        let msg = refused(&format!("{GOOD}title = \"a\\u001b[2J\"\n"));
        assert!(msg.contains("label `title` value `a\\u{1b}[2J`"), "{msg}");
    }

    #[test]
    fn file_paths_stay_in_the_tree() {
        let text = format!("{GOOD}\n[[file]]\npath = \"/../../etc/passwd\"\ncontent = \"x\"\n");
        // [[file]] after [labels] is still a top-level array of tables
        let msg = refused(&text);
        assert!(
            msg.contains("file path `/../../etc/passwd` has a `..` component"),
            "{msg}"
        );
        let text = format!("{GOOD}\n[[file]]\npath = \"/x\"\ncontent = \"x\"\nmode = \"17777\"\n");
        assert!(refused(&text).contains("not an octal mode up to 7777"));
    }

    #[test]
    fn recipe_file_must_be_small_and_regular() {
        let started = std::time::Instant::now();
        let msg = Recipe::read(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "/dev/zero: is a character device, not a regular file");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; RECIPE_LIMIT as usize + 1]).unwrap();
        let msg = Recipe::read(&big).unwrap_err().to_string();
        assert!(
            msg.ends_with("larger than the 1 MiB limit for this file"),
            "{msg}"
        );
    }

    #[test]
    fn missing_recipe_names_the_error_once() {
        let err = Recipe::read(Path::new("/nonexistent/r.toml")).unwrap_err();
        let chain = format!("{:#}", ChainDisplay(&err));
        assert_eq!(
            chain,
            "reading /nonexistent/r.toml: No such file or directory (os error 2)"
        );
    }

    /// The cause chain as anyhow's `{:#}` prints it.
    struct ChainDisplay<'a>(&'a dyn std::error::Error);

    impl std::fmt::Display for ChainDisplay<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", self.0)?;
            let mut next = self.0.source();
            while let Some(e) = next {
                write!(f, ": {e}")?;
                next = e.source();
            }
            Ok(())
        }
    }
}
