//! Is a published image behind its repositories? Its SBOM's packages
//! against the repositories' newest packages and security advisories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::repodata::Repodata;
use crate::rpmvercmp::Evr;

/// A package the repositories have a newer build of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageUpdate {
    pub name: String,
    pub arch: String,
    pub installed: String,
    pub available: String,
}

/// A security advisory the image does not have the fix of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdvisoryHit {
    pub id: String,
    pub severity: Option<String>,
    pub title: String,
    /// `name-evr.arch` of the fixed packages the image lacks.
    pub fixed_in: Vec<String>,
}

/// The answer for one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Staleness {
    pub updates: Vec<PackageUpdate>,
    pub advisories: Vec<AdvisoryHit>,
}

impl Staleness {
    pub fn is_outdated(&self) -> bool {
        !self.updates.is_empty()
    }

    /// The advisory ids, comma-separated.
    pub fn advisory_ids(&self) -> String {
        self.advisories
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Compares `installed` (name, evr, arch as the SBOM lists them) with
/// the repositories.
pub fn compare(installed: &[(String, String, String)], repos: &[Repodata]) -> Staleness {
    let arch_fits = |have: &str, offered: &str| have == offered || offered == "noarch";
    // the newest offer per (name, arch)
    let mut newest: BTreeMap<(&str, &str), &Evr> = BTreeMap::new();
    for p in repos.iter().flat_map(|r| &r.packages) {
        let e = newest
            .entry((p.name.as_str(), p.arch.as_str()))
            .or_insert(&p.evr);
        if p.evr > **e {
            *e = &p.evr;
        }
    }
    let mut out = Staleness::default();
    for (name, evr, arch) in installed {
        let have = Evr::parse(evr);
        let best = newest
            .iter()
            .filter(|((n, a), _)| n == name && arch_fits(arch, a))
            .map(|(_, e)| *e)
            .max();
        if let Some(best) = best.filter(|b| **b > have) {
            out.updates.push(PackageUpdate {
                name: name.clone(),
                arch: arch.clone(),
                installed: have.to_string(),
                available: best.to_string(),
            });
        }
    }
    for adv in repos
        .iter()
        .flat_map(|r| &r.advisories)
        .filter(|a| a.is_security())
    {
        let fixed_in: Vec<String> = adv
            .packages
            .iter()
            .filter(|fix| {
                installed.iter().any(|(name, evr, arch)| {
                    name == &fix.name && arch_fits(arch, &fix.arch) && Evr::parse(evr) < fix.evr
                }) && out
                    .updates
                    .iter()
                    .any(|u| u.name == fix.name && Evr::parse(&u.available) >= fix.evr)
            })
            .map(|fix| format!("{}-{}.{}", fix.name, fix.evr, fix.arch))
            .collect();
        if !fixed_in.is_empty() && !out.advisories.iter().any(|a| a.id == adv.id) {
            out.advisories.push(AdvisoryHit {
                id: adv.id.clone(),
                severity: adv.severity.clone(),
                title: adv.title.clone(),
                fixed_in,
            });
        }
    }
    out
}

/// The (name, evr, arch) list of an SBOM file `corral image build` wrote.
pub fn sbom_packages(sbom: &Path) -> anyhow::Result<Vec<(String, String, String)>> {
    let bytes = std::fs::read(sbom).with_context(|| format!("reading {}", sbom.display()))?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing the SBOM {}", sbom.display()))?;
    Ok(corral_tree::sbom::packages_in(&doc))
}

/// `name-evr.arch` of every package of an SBOM, for package diffs.
pub fn nevras(packages: &[(String, String, String)]) -> Vec<String> {
    packages
        .iter()
        .map(|(n, evr, a)| format!("{n}-{evr}.{a}"))
        .collect()
}

/// The URL of repository `repo` of `recipe` with dnf's `$basearch` and
/// `$releasever` filled in as dnf fills them for the recipe's build.
pub fn repo_url(recipe: &corral_tree::Recipe, repo: &corral_tree::recipe::Repo) -> String {
    repo.baseurl
        .as_deref()
        .or(repo.metalink.as_deref())
        .unwrap_or_default()
        .replace("$basearch", &recipe.arch)
        .replace("$releasever", &recipe.releasever)
}

/// The repositories of a recipe, read.
pub fn recipe_repodata(recipe: &corral_tree::Recipe) -> anyhow::Result<Vec<Repodata>> {
    // A repository that cannot be read is an error, never "up to date".
    recipe
        .repos
        .iter()
        .map(|r| {
            Repodata::read(&repo_url(recipe, r))
                .with_context(|| format!("reading the metadata of repository `{}`", r.id))
        })
        .collect()
}

/// One published base image's answer.
#[derive(Debug, Clone, Serialize)]
pub struct ImageStaleness {
    /// `sample/base:43`.
    pub image: String,
    pub sbom: PathBuf,
    #[serde(flatten)]
    pub staleness: Staleness,
}

/// A released image to check: its name, the SBOM it was published with
/// and the recipe whose repositories it is checked against.
#[derive(Debug, Clone)]
pub struct Released {
    /// `sample/base:43`.
    pub image: String,
    pub sbom: PathBuf,
    pub recipe: PathBuf,
}

/// Checks each of `images` against its recipe's repositories. An image
/// whose SBOM is missing has not been released: an error, never "up to
/// date".
pub fn check(images: &[Released]) -> anyhow::Result<Vec<ImageStaleness>> {
    let mut out = Vec::new();
    for r in images {
        anyhow::ensure!(
            r.sbom.exists(),
            "{} has not been released yet ({} does not exist)",
            r.image,
            r.sbom.display()
        );
        let recipe = corral_tree::Recipe::load(&r.recipe)?;
        let staleness = compare(&sbom_packages(&r.sbom)?, &recipe_repodata(&recipe)?);
        out.push(ImageStaleness {
            image: r.image.clone(),
            sbom: r.sbom.clone(),
            staleness,
        });
    }
    Ok(out)
}

/// The answer for people: one block per image.
pub fn render_text(images: &[ImageStaleness]) -> String {
    let mut s = String::new();
    for i in images {
        let st = &i.staleness;
        if !st.is_outdated() {
            s.push_str(&format!("{}: up to date\n", i.image));
            continue;
        }
        let when = if st.advisories.is_empty() {
            "at the next monthly respin"
        } else {
            "now (security advisory)"
        };
        s.push_str(&format!(
            "{}: needs a respin {when}: {} package update{}\n",
            i.image,
            st.updates.len(),
            if st.updates.len() == 1 { "" } else { "s" }
        ));
        for a in &st.advisories {
            s.push_str(&format!(
                "  advisory {} ({}): {} — fixed in {}\n",
                a.id,
                a.severity.as_deref().unwrap_or("no severity"),
                a.title,
                a.fixed_in.join(", ")
            ));
        }
        for u in &st.updates {
            s.push_str(&format!(
                "  update   {}.{} {} → {}\n",
                u.name, u.arch, u.installed, u.available
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repodata::{Advisory, RepoPackage};

    fn pkg(name: &str, evr: &str, arch: &str) -> RepoPackage {
        RepoPackage {
            name: name.into(),
            arch: arch.into(),
            evr: Evr::parse(evr),
        }
    }

    fn installed() -> Vec<(String, String, String)> {
        [
            ("corral-hello", "1.0-1", "x86_64"),
            ("corral-busybox", "1.36-1", "x86_64"),
            ("corral-data", "1-1", "x86_64"),
        ]
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
    }

    fn repo(packages: Vec<RepoPackage>, advisories: Vec<Advisory>) -> Repodata {
        Repodata {
            location: "file:///r".into(),
            revision: "1".into(),
            packages,
            advisories,
        }
    }

    #[test]
    fn a_remote_repository_is_an_error_not_up_to_date() {
        let text = "name = \"x\"\nreleasever = \"43\"\narch = \"x86_64\"\npackages = [\"a\"]\n\
                    [[repo]]\nid = \"fedora\"\n\
                    metalink = \"https://mirrors.example.invalid/metalink?repo=fedora-43\"\n\
                    gpgcheck = false\n[footprint]\nlangs = [\"en_US\"]\n";
        let recipe = corral_tree::Recipe::parse(text, Path::new("x.toml")).unwrap();
        let e = format!("{:#}", recipe_repodata(&recipe).unwrap_err());
        assert!(
            e.starts_with("reading the metadata of repository `fedora`: "),
            "{e}"
        );
        assert!(e.contains("only local repositories"), "{e}");
    }

    #[test]
    fn up_to_date_when_the_repositories_have_nothing_newer() {
        let r = repo(
            vec![
                pkg("corral-hello", "1.0-1", "x86_64"),
                pkg("corral-busybox", "1.36-1", "x86_64"),
                pkg("corral-hello", "0.9-1", "x86_64"),
            ],
            vec![],
        );
        let s = compare(&installed(), &[r]);
        assert!(!s.is_outdated());
        assert!(s.advisories.is_empty());
    }

    #[test]
    fn finds_the_newest_update_and_the_advisory_it_fixes() {
        let fix = Advisory {
            id: "CORRAL-2026-0042".into(),
            kind: "security".into(),
            severity: Some("Important".into()),
            title: "hello".into(),
            packages: vec![pkg("corral-hello", "1.1-1", "x86_64")],
        };
        let bugfix = Advisory {
            id: "CORRAL-2026-0043".into(),
            kind: "bugfix".into(),
            ..fix.clone()
        };
        let r = repo(
            vec![
                pkg("corral-hello", "1.1-1", "x86_64"),
                pkg("corral-hello", "1.2-1", "x86_64"),
                pkg("corral-data", "2-1", "noarch"),
                pkg("corral-busybox", "9-1", "aarch64"),
            ],
            vec![fix, bugfix],
        );
        let s = compare(&installed(), &[r]);
        assert_eq!(
            s.updates
                .iter()
                .map(|u| (u.name.as_str(), u.available.as_str()))
                .collect::<Vec<_>>(),
            [("corral-hello", "1.2-1"), ("corral-data", "2-1")]
        );
        assert_eq!(s.advisory_ids(), "CORRAL-2026-0042");
        assert_eq!(s.advisories[0].fixed_in, ["corral-hello-1.1-1.x86_64"]);
    }

    #[test]
    fn an_advisory_already_applied_or_not_yet_published_does_not_count() {
        let adv = |evr: &str| Advisory {
            id: "A".into(),
            kind: "security".into(),
            severity: None,
            title: String::new(),
            packages: vec![pkg("corral-hello", evr, "x86_64")],
        };
        // the image already has 1.0-1
        let s = compare(&installed(), &[repo(vec![], vec![adv("1.0-1")])]);
        assert!(s.advisories.is_empty());
        // the fix is announced but no repository carries it
        let s = compare(&installed(), &[repo(vec![], vec![adv("1.1-1")])]);
        assert!(s.advisories.is_empty());
    }
}
