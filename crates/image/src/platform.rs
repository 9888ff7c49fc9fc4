//! Image platforms (`linux/arm64`): OCI's names, and the rpm architecture
//! whose packages make each platform's tree.

use std::fmt;
use std::str::FromStr;

/// An OCI platform corral builds base images for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform {
    /// `linux`: the only OS whose trees dnf installs.
    pub os: String,
    /// OCI's (GOARCH) spelling: `amd64`, `arm64`, ...
    pub architecture: String,
}

/// OCI architecture names and the rpm architectures (`$basearch`) of the
/// packages their trees are made of.
const ARCHES: &[(&str, &str)] = &[
    ("amd64", "x86_64"),
    ("arm64", "aarch64"),
    ("ppc64le", "ppc64le"),
    ("s390x", "s390x"),
    ("386", "i686"),
    ("riscv64", "riscv64"),
];

impl Platform {
    /// The rpm architecture of the platform's packages.
    pub fn rpm_arch(&self) -> &'static str {
        ARCHES
            .iter()
            .find(|(oci, _)| *oci == self.architecture)
            .map(|(_, rpm)| *rpm)
            .expect("a parsed platform has a known architecture")
    }

    /// `linux-arm64`: the platform in file names.
    pub fn slug(&self) -> String {
        format!("{}-{}", self.os, self.architecture)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Platform, String> {
        let known = || {
            ARCHES
                .iter()
                .map(|(oci, _)| format!("linux/{oci}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((os, architecture)) = s.split_once('/') else {
            return Err(format!(
                "platform `{}` is not OS/ARCH (one of {})",
                s.escape_debug(),
                known()
            ));
        };
        if os != "linux" || !ARCHES.iter().any(|(oci, _)| *oci == architecture) {
            return Err(format!(
                "platform `{}` is not one corral builds ({})",
                s.escape_debug(),
                known()
            ));
        }
        Ok(Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
        })
    }
}

/// `linux/amd64,linux/arm64`, each once.
pub fn parse_list(s: &str) -> Result<Vec<Platform>, String> {
    let mut platforms: Vec<Platform> = Vec::new();
    for item in s.split(',').map(str::trim) {
        let p: Platform = item.parse()?;
        if platforms.contains(&p) {
            return Err(format!("platform `{p}` is given twice"));
        }
        platforms.push(p);
    }
    Ok(platforms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_map_to_rpm_architectures() {
        let list = parse_list("linux/amd64, linux/arm64").unwrap();
        assert_eq!(
            list.iter().map(|p| p.rpm_arch()).collect::<Vec<_>>(),
            ["x86_64", "aarch64"]
        );
        assert_eq!(list[1].to_string(), "linux/arm64");
        assert_eq!(list[1].slug(), "linux-arm64");
    }

    #[test]
    fn unknown_repeated_and_malformed_platforms_are_refused() {
        let e = parse_list("linux/aarch64").unwrap_err();
        assert!(
            e.contains("not one corral builds (linux/amd64, linux/arm64"),
            "{e}"
        );
        assert!(parse_list("windows/amd64").is_err());
        assert!(parse_list("arm64").unwrap_err().contains("not OS/ARCH"));
        assert!(parse_list("linux/arm64,linux/arm64")
            .unwrap_err()
            .contains("given twice"));
    }
}
