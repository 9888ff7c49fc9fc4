//! SPDX 2.3 JSON software bills of materials from a tree's packages.
//!
//! The document is a pure function of its inputs (no wall-clock time, no
//! random namespace), so a reproducible image carries a reproducible SBOM.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::rpmdb::Package;

/// The media type of an SPDX JSON document.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";

/// Builds the SBOM of `packages`. `purl_namespace` is the distribution
/// (e.g. `fedora`); `created` is a Unix time, normally SOURCE_DATE_EPOCH.
pub fn spdx_document(
    name: &str,
    purl_namespace: &str,
    packages: &[Package],
    created: i64,
) -> Value {
    let mut hasher = Sha256::new();
    for p in packages {
        hasher.update(p.nevra().as_bytes());
        hasher.update(b"\n");
    }
    let id_hash = hex::encode(hasher.finalize());
    let spdx_packages: Vec<Value> = packages
        .iter()
        .map(|p| {
            let mut qualifiers = format!("arch={}", p.arch);
            if let Some(e) = p.epoch.filter(|e| *e != 0) {
                qualifiers.push_str(&format!("&epoch={e}"));
            }
            if let Some(src) = &p.sourcerpm {
                qualifiers.push_str(&format!("&upstream={src}"));
            }
            json!({
                "name": p.name,
                "SPDXID": spdx_id(p),
                "versionInfo": p.evr(),
                "supplier": "NOASSERTION",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": license_expression(&p.license),
                "summary": p.summary,
                "externalRefs": [{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": format!("pkg:rpm/{purl_namespace}/{}@{}-{}?{qualifiers}", p.name, p.version, p.release),
                }],
            })
        })
        .collect();
    let relationships: Vec<Value> = packages
        .iter()
        .map(|p| {
            json!({
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": spdx_id(p),
            })
        })
        .collect();
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://spdx.corral.invalid/{name}-{id_hash}"),
        "creationInfo": {
            "created": rfc3339(created),
            "creators": [format!("Tool: corral-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": spdx_packages,
        "relationships": relationships,
    })
}

/// The packages listed in an SPDX document corral wrote, as (name, evr, arch).
pub fn packages_in(doc: &Value) -> Vec<(String, String, String)> {
    doc["packages"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    let name = p["name"].as_str()?.to_string();
                    let evr = p["versionInfo"].as_str()?.to_string();
                    let purl = p["externalRefs"][0]["referenceLocator"]
                        .as_str()
                        .unwrap_or("");
                    let arch = purl
                        .split("arch=")
                        .nth(1)
                        .map(|a| a.split('&').next().unwrap_or(a).to_string())
                        .unwrap_or_default();
                    Some((name, evr, arch))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn spdx_id(p: &Package) -> String {
    let clean: String = format!("{}-{}", p.name, p.arch)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-Package-{clean}")
}

/// rpm License tags in Fedora are SPDX expressions since 2023; older
/// callaway names are passed as NOASSERTION rather than as invalid SPDX.
fn license_expression(license: &str) -> String {
    let ok = !license.is_empty()
        && license
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " .-+()".contains(c))
        && !license.contains(" and ")
        && !license.contains(" or ");
    if ok {
        license.to_string()
    } else {
        "NOASSERTION".to_string()
    }
}

/// Unix seconds as an RFC 3339 UTC timestamp (the Unix epoch when out
/// of range).
pub fn rfc3339(secs: i64) -> String {
    corral_oci::rfc3339(secs).unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, epoch: Option<u32>) -> Package {
        Package {
            name: name.into(),
            epoch,
            version: "1.0".into(),
            release: "1.fc43".into(),
            arch: "x86_64".into(),
            license: "MIT AND GPL-2.0-or-later".into(),
            sourcerpm: Some(format!("{name}-1.0-1.fc43.src.rpm")),
            summary: "s".into(),
            buildtime: 1,
            size: 2,
        }
    }

    #[test]
    fn document_is_deterministic_and_round_trips() {
        let ps = vec![pkg("bash", None), pkg("shadow-utils", Some(2))];
        let a = spdx_document("base", "fedora", &ps, 1767225600);
        let b = spdx_document("base", "fedora", &ps, 1767225600);
        assert_eq!(a, b);
        assert_eq!(a["creationInfo"]["created"], "2026-01-01T00:00:00Z");
        assert_eq!(a["packages"][1]["versionInfo"], "2:1.0-1.fc43");
        assert_eq!(
            a["packages"][1]["externalRefs"][0]["referenceLocator"],
            "pkg:rpm/fedora/shadow-utils@1.0-1.fc43?arch=x86_64&epoch=2&upstream=shadow-utils-1.0-1.fc43.src.rpm"
        );
        assert_eq!(
            a["packages"][0]["licenseDeclared"],
            "MIT AND GPL-2.0-or-later"
        );
        assert_eq!(
            packages_in(&a),
            vec![
                (
                    "bash".to_string(),
                    "1.0-1.fc43".to_string(),
                    "x86_64".to_string()
                ),
                (
                    "shadow-utils".to_string(),
                    "2:1.0-1.fc43".to_string(),
                    "x86_64".to_string()
                ),
            ]
        );
        let other = spdx_document("base", "fedora", &ps[..1], 1767225600);
        assert_ne!(a["documentNamespace"], other["documentNamespace"]);
    }

    #[test]
    fn old_license_names_are_not_passed_as_spdx() {
        assert_eq!(license_expression("GPLv2+ and MIT"), "NOASSERTION");
        assert_eq!(license_expression("Apache-2.0"), "Apache-2.0");
    }
}
