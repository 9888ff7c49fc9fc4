//! The image config a recipe gives: its labels, its `[image]` settings
//! with corral's defaults, and the OCI annotations derived from the labels.

use std::collections::BTreeMap;

use corral_oci::ImageConfigSpec;
use corral_tree::Recipe;

/// `PATH` when the recipe sets no environment.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

/// The config of an image of `packages` packages named `name`, made at
/// `created`: the recipe's settings (when there is a recipe) with corral's
/// defaults, `labels` (the recipe's plus the caller's) and annotations
/// from them.
pub fn image_config(
    recipe: Option<&Recipe>,
    name: &str,
    labels: BTreeMap<String, String>,
    created: i64,
    packages: usize,
) -> ImageConfigSpec {
    let settings = recipe.map(|r| r.image.clone()).unwrap_or_default();
    let arch = recipe
        .map(|r| r.arch.clone())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    ImageConfigSpec {
        architecture: oci_arch(&arch).to_string(),
        os: "linux".to_string(),
        env: if settings.env.is_empty() {
            vec![DEFAULT_PATH.to_string()]
        } else {
            settings.env
        },
        cmd: settings.cmd.or_else(|| Some(vec!["/bin/sh".to_string()])),
        entrypoint: settings.entrypoint,
        working_dir: settings.working_dir,
        user: settings.user,
        annotations: annotations(name, &labels),
        labels,
        created,
        history_comment: Some(format!("corral image build ({packages} packages)")),
    }
}

/// The OCI annotations of an image: its title (the `name` label, else
/// `name`), and its version, description and authors when labelled.
pub fn annotations(name: &str, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.title".to_string(),
        labels.get("name").cloned().unwrap_or(name.to_string()),
    );
    for (label, key) in [
        ("version", "org.opencontainers.image.version"),
        ("summary", "org.opencontainers.image.description"),
        ("maintainer", "org.opencontainers.image.authors"),
    ] {
        if let Some(v) = labels.get(label) {
            annotations.insert(key.to_string(), v.clone());
        }
    }
    annotations
}

/// rpm architecture names to OCI's (GOARCH).
pub fn oci_arch(rpm_arch: &str) -> &str {
    match rpm_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "i686" | "i386" => "386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_give_annotations() {
        let labels = BTreeMap::from([
            ("version".to_string(), "43".to_string()),
            ("maintainer".to_string(), "rel@example.org".to_string()),
        ]);
        let a = annotations("base", &labels);
        assert_eq!(a["org.opencontainers.image.title"], "base");
        assert_eq!(a["org.opencontainers.image.version"], "43");
        assert_eq!(a["org.opencontainers.image.authors"], "rel@example.org");
        assert!(!a.contains_key("org.opencontainers.image.description"));
        let named = BTreeMap::from([("name".to_string(), "corral-base".to_string())]);
        assert_eq!(
            annotations("base", &named)["org.opencontainers.image.title"],
            "corral-base"
        );
    }

    #[test]
    fn a_tree_without_recipe_gets_the_defaults() {
        let cfg = image_config(None, "rootfs", BTreeMap::new(), 7, 3);
        assert_eq!(cfg.env, [DEFAULT_PATH]);
        assert_eq!(cfg.cmd, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(cfg.os, "linux");
        assert_eq!(cfg.created, 7);
        assert_eq!(
            cfg.history_comment.as_deref(),
            Some("corral image build (3 packages)")
        );
        assert_eq!(oci_arch("x86_64"), "amd64");
        assert_eq!(oci_arch("riscv64"), "riscv64");
    }
}
