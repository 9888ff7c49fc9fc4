//! What each recipe value may be.
//!
//! Recipe values end up on dnf's command line, in the generated dnf.conf
//! and in rpm's macros file, so a value that is not what it claims to be
//! (a package named `--installroot=/`, a repository id with a newline and
//! an `[evil]` section after it, an architecture `../../etc`) changes what
//! the build does. Each function here takes one value and says why it is
//! refused; [`crate::recipe`] names the field and the file.

/// The architectures a recipe may name (`$basearch`, dnf's `--forcearch`).
pub const ARCHITECTURES: &[&str] = &[
    "x86_64", "aarch64", "ppc64le", "s390x", "i686", "armv7hl", "riscv64",
];

/// The URL schemes dnf reads repositories and keys from.
pub const URL_SCHEMES: &[&str] = &["http", "https", "ftp", "file"];

/// Longest package name, provide, path or glob accepted.
const MAX_PACKAGE_LEN: usize = 256;

/// A value quoted for an error message, control characters escaped so a
/// newline in the value cannot forge lines of the message.
pub(crate) fn quoted(value: &str) -> String {
    format!("`{}`", value.escape_debug())
}

/// Text that goes into a file line by line or into an argument: no control
/// characters (newlines, tabs, escapes, NUL).
pub fn plain_text(value: &str) -> Result<(), String> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "contains the control character {}",
            c.escape_debug()
        )),
        None => Ok(()),
    }
}

/// A package to install or exclude, as dnf takes it: an RPM name or NEVRA
/// (`bash`, `bash-5.2.26-3.fc43.x86_64`, `1:foo-2^git~rc`), a provide
/// (`pkgconfig(glib-2.0)`, `perl(File::Temp)`), a file path
/// (`/usr/bin/sh`), a group (`@core`) or a glob (`kernel*`).
///
/// Version comparisons with spaces (`foo >= 1`) are not accepted, nor are
/// commas (dnf.conf's `excludepkgs` separator).
///
/// ```
/// use corral_tree::values::package_spec;
/// assert!(package_spec("pkgconfig(glib-2.0)").is_ok());
/// assert!(package_spec("--installroot=/").is_err());
/// ```
pub fn package_spec(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".into());
    }
    if value.starts_with('-') {
        return Err("starts with `-`, so dnf would read it as an option".into());
    }
    if value.len() > MAX_PACKAGE_LEN {
        return Err(format!("is longer than {MAX_PACKAGE_LEN} characters"));
    }
    plain_text(value)?;
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._+~^:()/@*?[]".contains(*c)))
    {
        return Err(format!(
            "contains {}, which is not in an RPM name, provide, path or glob (letters, digits and -._+~^:()/@*?[])",
            quoted(&c.to_string())
        ));
    }
    Ok(())
}

/// A repository id, as dnf allows them: letters, digits and `-_.:`.
pub fn repo_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".into());
    }
    if value.starts_with('-') {
        return Err("starts with `-`".into());
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err("may only hold letters, digits and -_.: (as dnf's repository ids)".into());
    }
    Ok(())
}

/// One of [`ARCHITECTURES`].
pub fn arch(value: &str) -> Result<(), String> {
    if ARCHITECTURES.contains(&value) {
        Ok(())
    } else {
        Err(format!("is not one of {}", ARCHITECTURES.join(", ")))
    }
}

/// A release version such as `43`, `rawhide` or `9.4`.
pub fn releasever(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".into());
    }
    if !value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+~^-".contains(c))
    {
        return Err(
            "must start with a letter or digit and hold only letters, digits and ._+~^-".into(),
        );
    }
    Ok(())
}

/// A locale for rpm's `%_install_langs` (`en_US`, `sr@latin`, `C.UTF-8`),
/// or `all`.
pub fn lang(value: &str) -> Result<(), String> {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c))
    {
        return Err("is not a locale name (letters, digits and _.@-)".into());
    }
    Ok(())
}

/// A URL dnf can read: one of [`URL_SCHEMES`], a host for the network
/// ones, an absolute path for `file`, no spaces or control characters
/// (dnf.conf separates several `gpgkey` URLs with spaces).
///
/// ```
/// use corral_tree::values::url;
/// assert!(url("https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch").is_ok());
/// assert!(url("file:///srv/repos/main").is_ok());
/// assert!(url("https://x/\n[evil]").is_err());
/// assert!(url("repos/main").is_err());
/// ```
pub fn url(value: &str) -> Result<(), String> {
    plain_text(value)?;
    if value.chars().any(char::is_whitespace) {
        return Err("contains whitespace".into());
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return Err(format!("is not a URL (want {}://…)", URL_SCHEMES.join("|")));
    };
    if !URL_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "has the scheme `{}`; dnf reads {}",
            scheme.escape_debug(),
            URL_SCHEMES.join(", ")
        ));
    }
    if scheme.eq_ignore_ascii_case("file") {
        if !rest.starts_with('/') {
            return Err("is a file URL without an absolute path (file:///…)".into());
        }
    } else {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        if host.is_empty() || host.starts_with(':') {
            return Err("has no host".into());
        }
    }
    Ok(())
}

/// A path inside the tree for a `[[file]]`: absolute, and made of plain
/// names only, so it cannot climb out of the tree with `..`.
pub fn tree_path(value: &str) -> Result<(), String> {
    plain_text(value)?;
    if !value.starts_with('/') {
        return Err("is not absolute".into());
    }
    let mut names = 0;
    for part in value.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(format!("has a `{part}` component"));
        }
        names += 1;
    }
    if names == 0 {
        return Err("names the root of the tree, not a file".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_from_real_recipes_pass() {
        for p in [
            "bash",
            "glibc-minimal-langpack",
            "util-linux-core",
            "kernel*",
            "langpacks-*",
            "pkgconfig(glib-2.0)",
            "perl(File::Temp)",
            "/usr/bin/sh",
            "@core",
            "1:foo-2.0^git1~rc-3.fc43.x86_64",
            "libstdc++",
            "python3.12",
        ] {
            assert_eq!(package_spec(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn packages_that_are_options_or_carry_separators_fail() {
        for (p, why) in [
            ("--installroot=/", "starts with `-`"),
            ("-y", "starts with `-`"),
            ("", "is empty"),
            ("bash\n[evil]", "control character \\n"),
            ("foo >= 1", "contains ` `"),
            ("a,b", "contains `,`"),
            ("$(id)", "contains `$`"),
        ] {
            let err = package_spec(p).unwrap_err();
            assert!(err.contains(why), "{p:?}: {err}");
        }
        assert!(package_spec(&"a".repeat(257)).is_err());
    }

    #[test]
    fn repo_ids_arches_and_versions() {
        assert_eq!(repo_id("updates-testing:1.x_y"), Ok(()));
        assert!(repo_id("main]\n[evil").is_err());
        assert!(repo_id("-x").is_err());
        assert!(repo_id("").is_err());
        assert_eq!(arch("aarch64"), Ok(()));
        let err = arch("../../etc").unwrap_err();
        assert!(err.contains("x86_64, aarch64"), "{err}");
        assert_eq!(releasever("43"), Ok(()));
        assert_eq!(releasever("rawhide"), Ok(()));
        assert!(releasever("-43").is_err());
        assert!(releasever("43 --nogpgcheck").is_err());
        assert_eq!(lang("sr@latin"), Ok(()));
        assert!(lang("en_US\n%_dbpath /").is_err());
        assert!(lang("de:fr").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(url("http://127.0.0.1:8080/repo"), Ok(()));
        assert_eq!(url("https://user@example.org/r"), Ok(()));
        assert!(url("https://").unwrap_err().contains("no host"));
        assert!(url("https://:80/x").unwrap_err().contains("no host"));
        assert!(url("gopher://x/").unwrap_err().contains("`gopher`"));
        assert!(url("file://relative").unwrap_err().contains("absolute"));
        assert!(url("https://a/b c").unwrap_err().contains("whitespace"));
        assert!(url("https://a/\n[evil]")
            .unwrap_err()
            .contains("control character"));
        assert!(url("/srv/repo").unwrap_err().contains("not a URL"));
    }

    #[test]
    fn tree_paths_stay_inside() {
        assert_eq!(tree_path("/etc/os-release"), Ok(()));
        assert!(tree_path("/../../etc/passwd").unwrap_err().contains("`..`"));
        assert!(tree_path("/etc/./x").unwrap_err().contains("`.`"));
        assert!(tree_path("etc/x").unwrap_err().contains("not absolute"));
        assert!(tree_path("/").unwrap_err().contains("root"));
        assert!(tree_path("//").unwrap_err().contains("root"));
    }

    #[test]
    fn quoting_escapes_newlines() {
        assert_eq!(quoted("a\n[evil]"), "`a\\n[evil]`");
    }
}
