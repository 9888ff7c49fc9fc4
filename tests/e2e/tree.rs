//! `corral tree` against the real dnf, rpm and createrepo_c, with the
//! sample repositories built from tests/fixtures/rpms.

use std::path::Path;
use std::process::Command;

use corral_test_support::*;

fn sample_recipe() -> std::path::PathBuf {
    repo_root().join("recipes/sample-base.toml")
}

#[test]
fn builds_the_sample_tree_with_dnf_and_the_footprint_policy() {
    let repos = sample_repos();
    let work = scratch();
    let rootfs = work.path().join("rootfs");
    let out = run_ok(
        corral(repos.path())
            .args(["tree", "build", "--json", "--rootfs"])
            .arg(&rootfs)
            .arg(sample_recipe()),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // The dependency chain came in with the requested packages.
    let names: Vec<&str> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in [
        "corral-filesystem",
        "corral-busybox",
        "corral-libcore",
        "corral-libgreet",
        "corral-hello",
        "corral-signed",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(
        !names.contains(&"corral-kernel"),
        "an unrequested package was installed"
    );

    // The rpm database is inside the tree, where Fedora keeps it, and the
    // real rpm reads it.
    assert!(rootfs.join("usr/lib/sysimage/rpm/rpmdb.sqlite").is_file());
    let q = run_ok(
        Command::new("rpm")
            .arg("--root")
            .arg(&rootfs)
            .args([
                "--dbpath",
                "/usr/lib/sysimage/rpm",
                "-q",
                "corral-hello",
                "corral-signed",
            ])
            .env("HOME", work.path()),
    );
    let q = String::from_utf8_lossy(&q.stdout);
    assert!(
        q.contains("corral-hello-1.0-1.noarch") && q.contains("corral-signed-1.0-1.noarch"),
        "{q}"
    );

    // Footprint: no docs, only the kept locale, no caches or logs.
    assert!(rootfs.join("usr/bin/corral-hello").is_file());
    assert!(
        !rootfs.join("usr/share/doc/corral-hello/README").exists(),
        "docs were installed"
    );
    assert!(
        !rootfs.join("usr/share/man/man1/corral-hello.1").exists(),
        "man pages were installed"
    );
    assert!(rootfs
        .join("usr/share/locale/en_US/LC_MESSAGES/corral-hello.mo")
        .is_file());
    assert!(!rootfs
        .join("usr/share/locale/de/LC_MESSAGES/corral-hello.mo")
        .exists());
    assert!(!rootfs
        .join("usr/share/locale/fr/LC_MESSAGES/corral-hello.mo")
        .exists());
    assert!(!rootfs.join("var/cache/dnf").exists());
    assert!(!rootfs.join("var/log/dnf.log").exists());
    assert!(!rootfs.join("var/lib/dnf").exists());
    assert_eq!(
        std::fs::read_link(rootfs.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert!(
        rootfs.join("etc/os-release").is_file(),
        "the recipe's extra file is missing"
    );

    let saved = |item: &str| -> (u64, u64) {
        let s = report["savings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["item"] == item)
            .unwrap();
        (s["files"].as_u64().unwrap(), s["bytes"].as_u64().unwrap())
    };
    assert_eq!(
        saved("docs"),
        (2, 20019),
        "README (20000 bytes) and the man page (19)"
    );
    assert_eq!(
        saved("locales"),
        (2, 16000),
        "de and fr catalogues, 8000 bytes each"
    );
    assert!(saved("caches").1 > 0, "dnf's metadata cache was measured");
    assert!(saved("logs").0 >= 4, "dnf's logs and history were measured");
}

#[test]
fn two_installs_of_one_recipe_are_identical_and_so_is_a_sandboxed_one() {
    require_tool("bwrap");
    let repos = sample_repos();
    let work = scratch();
    let (a, b, c) = (
        work.path().join("a"),
        work.path().join("b"),
        work.path().join("c"),
    );
    for (root, sandbox) in [(&a, false), (&b, false), (&c, true)] {
        let mut cmd = corral(repos.path());
        cmd.args(["tree", "build", "--rootfs"])
            .arg(root)
            .arg(sample_recipe());
        if sandbox {
            cmd.arg("--sandbox");
        }
        run_ok(&mut cmd);
        // dnf stamps logs with the second it ran: make the second run differ.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let fa = tree_facts(&a);
    for other in [&b, &c] {
        let fb = tree_facts(other);
        assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
        for (path, facts) in &fa {
            assert_eq!(
                Some(facts),
                fb.get(path),
                "{path} differs between {} and {}",
                a.display(),
                other.display()
            );
        }
    }
    // Nothing newer than SOURCE_DATE_EPOCH is left in the tree.
    assert!(fa.values().all(|f| f.mtime <= 1767225600));
}

#[test]
fn a_sandboxed_build_needs_local_repositories_and_bwrap() {
    let repos = sample_repos();
    let work = scratch();
    let recipe = work.path().join("r.toml");
    let text = std::fs::read_to_string(sample_recipe()).unwrap().replace(
        "baseurl = \"${CORRAL_SAMPLE_REPOS}/$basearch\"",
        "baseurl = \"https://repo.example.invalid/$basearch\"",
    );
    std::fs::write(&recipe, text).unwrap();
    let rootfs = work.path().join("rootfs");
    let started = std::time::Instant::now();
    let out = corral(repos.path())
        .args(["tree", "build", "--sandbox", "--rootfs"])
        .arg(&rootfs)
        .arg(&recipe)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "repository `sample-arch` is not local (https://repo.example.invalid/$basearch): \
             a sandboxed build has no network"
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "dnf ran"
    );
    assert!(!rootfs.exists());

    // No bwrap on PATH: said so, nothing built.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let out = corral(repos.path())
        .env("PATH", &bin)
        .args(["tree", "build", "--sandbox", "--rootfs"])
        .arg(&rootfs)
        .arg(sample_recipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bwrap is not installed: install bubblewrap"),
        "{err}"
    );
    assert!(!rootfs.exists());
}

#[test]
fn a_missing_package_is_named_with_the_repositories_searched() {
    let repos = sample_repos();
    let work = scratch();
    let recipe = work.path().join("r.toml");
    let text = std::fs::read_to_string(sample_recipe()).unwrap().replace(
        "\"corral-hello\",",
        "\"corral-hello\", \"no-such-package\",",
    );
    std::fs::write(&recipe, text).unwrap();
    let rootfs = work.path().join("rootfs");
    let out = corral(repos.path())
        .args(["tree", "build", "--rootfs"])
        .arg(&rootfs)
        .arg(&recipe)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no package `no-such-package`"), "{err}");
    assert!(
        err.contains("sample (file://") && err.contains("sample-signed (file://"),
        "{err}"
    );
    assert!(!rootfs.exists(), "a failed build left a tree behind");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".corral-tree-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging directories left: {leftovers:?}"
    );
}

#[test]
fn a_tampered_signed_package_is_refused() {
    let repos = sample_repos();
    // Another key in the recipe's place: the signed package no longer verifies.
    let other = scratch();
    run_ok(Command::new("gpg").env("GNUPGHOME", other.path()).args([
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "someone else <else@corral.invalid>",
        "rsa2048",
        "sign",
        "never",
    ]));
    let key = run_ok(Command::new("gpg").env("GNUPGHOME", other.path()).args([
        "--armor",
        "--export",
        "else@corral.invalid",
    ]));
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", other.path())
        .args(["--kill", "gpg-agent"])
        .status();
    std::fs::write(repos.path().join("RPM-GPG-KEY-corral-test"), key.stdout).unwrap();
    let work = scratch();
    let rootfs = work.path().join("rootfs");
    let out = corral(repos.path())
        .args(["tree", "build", "--rootfs"])
        .arg(&rootfs)
        .arg(sample_recipe())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dnf failed"), "{err}");
    assert!(
        err.to_lowercase().contains("gpg") || err.contains("signature") || err.contains("key"),
        "{err}"
    );
    assert!(!rootfs.exists());
}

#[test]
fn recipe_errors_name_file_line_and_column() {
    let work = scratch();
    let recipe = work.path().join("bad.toml");
    let text = std::fs::read_to_string(sample_recipe())
        .unwrap()
        .replace("[footprint]\n", "[footprint]\nno-docs = true\n");
    std::fs::write(&recipe, &text).unwrap();
    let line = text.lines().position(|l| l == "no-docs = true").unwrap() + 1;
    let out = Command::new(corral_bin())
        .args(["tree", "plan"])
        .arg(&recipe)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:{line}:1: unknown field `no-docs`",
            recipe.display()
        )),
        "{err}"
    );
}

#[test]
fn fedora_recipes_parse_and_plan() {
    for name in ["fedora-container-base", "fedora-minimal"] {
        let recipe = repo_root().join(format!("recipes/{name}.toml"));
        let out = run_ok(
            Command::new(corral_bin())
                .args(["tree", "plan", "--json"])
                .arg(&recipe),
        );
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let conf = plan["dnf_conf"].as_str().unwrap();
        assert!(conf.contains("metalink=https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch"), "{conf}");
        assert!(conf.contains("[updates]"), "{conf}");
        assert!(
            !conf.contains("\ngpgcheck=False"),
            "Fedora repositories must check signatures:\n{conf}"
        );
        let argv: Vec<&str> = plan["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(argv.contains(&"--setopt=tsflags=nodocs"));
        assert!(argv.contains(&"--releasever=43"));
        assert!(argv.contains(&"glibc-minimal-langpack"));
        assert_eq!(
            plan["rpm_macros"],
            "%_dbpath /usr/lib/sysimage/rpm\n%_install_langs C:en_US\n"
        );
    }
}
