//! End-to-end tests of Atomic Host commits as OCI images (the ostree
//! container format): composes of the sample repositories exported to OCI
//! layouts, read back by skopeo and imported into other repositories, the
//! commit checksums and signatures unchanged; package layers reused
//! across releases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use corral_test_support::faults::{htpasswd, CREDS};
use corral_test_support::*;

const REF: &str = "corral-sample/43/x86_64/atomic-host";

fn compose(repos: Option<&Path>, gpg: &Gpg) -> Command {
    let mut cmd = Command::new(corral_bin());
    cmd.arg("compose")
        .current_dir(repo_root())
        .env("GNUPGHOME", gpg.home.path())
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env_remove("RUST_LOG");
    if let Some(repos) = repos {
        cmd.env("CORRAL_SAMPLE_REPOS", repos);
    }
    cmd
}

fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = run_ok(cmd.arg("--json"));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", String::from_utf8_lossy(&out.stdout)))
}

fn ostree(repo: &Path) -> Command {
    require_tool("ostree");
    let mut cmd = Command::new("ostree");
    cmd.arg(format!("--repo={}", repo.display()));
    cmd
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_ok(cmd).stdout)
        .trim()
        .to_string()
}

/// One compose of the sample stream into `WORK/repo`, signed by a new
/// key: the key, the scratch directory, the repository, the sample
/// repositories (kept for more composes) and the commit.
fn compose_sample() -> (Gpg, tempfile::TempDir, PathBuf, tempfile::TempDir, String) {
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let server = work.path().join("repo");
    let repos = sample_repos();
    let v = run_json(
        compose(Some(repos.path()), &gpg)
            .args(["run", "sample-atomic", "--no-deltas", "--repo"])
            .arg(&server),
    );
    let commit = v[0]["checksum"].as_str().unwrap().to_string();
    (gpg, work, server, repos, commit)
}

/// Composes the sample stream three times: hello 1.0, hello 1.1, and a
/// forced recompose of the same packages. Returns the commits, oldest first.
fn three_releases(server: &Path, gpg: &Gpg) -> Vec<String> {
    let repos = sample_repos();
    let mut commits = Vec::new();
    let mut run = |repos: &Path, extra: &[&str]| {
        let v = run_json(
            compose(Some(repos), gpg)
                .args(["run", "sample-atomic", "--no-deltas", "--repo"])
                .arg(server)
                .args(extra),
        );
        assert_eq!(v[0]["result"], "committed", "{v}");
        commits.push(v[0]["checksum"].as_str().unwrap().to_string());
    };
    run(repos.path(), &[]);
    let updated = sample_repos_hello("1.1");
    run(updated.path(), &[]);
    run(updated.path(), &["--force", "--reason", "rebuild"]);
    commits
}

fn export(server: &Path, commit: &str, dest: &Path) -> serde_json::Value {
    run_json(
        Command::new(corral_bin())
            .args(["compose", "export", "--repo"])
            .arg(server)
            .arg(commit)
            .arg("-o")
            .arg(format!("oci:{}:os", dest.display())),
    )
}

/// Layer digest → components, of an export's JSON.
fn layers(image: &serde_json::Value) -> Vec<(String, String)> {
    image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let components: Vec<&str> = l["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            (
                l["digest"].as_str().unwrap().to_string(),
                components.join(","),
            )
        })
        .collect()
}

fn commitmeta(repo: &Path, commit: &str) -> Vec<u8> {
    let path = repo.join(format!(
        "objects/{}/{}.commitmeta",
        &commit[..2],
        &commit[2..]
    ));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Every commit of a three-release stream exports to an image that
/// skopeo reads, with the labels of the format; the same commit exported
/// twice gives the same manifest digest; importing it into an empty
/// repository gives the same commit, the same signatures, fsck clean.
/// A release changing one package changes that package's layer and the
/// final one; a recompose of the same packages changes only the final one.
#[test]
fn exports_are_stable_lossless_and_reuse_package_layers() {
    require_tool("skopeo");
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let server = work.path().join("repo");
    let commits = three_releases(&server, &gpg);

    let mut images = Vec::new();
    for (i, commit) in commits.iter().enumerate() {
        let layout = work.path().join(format!("image-{i}"));
        let image = export(&server, commit, &layout);
        assert_eq!(image["commit"], commit.as_str());
        // Stable bytes: a second export, same manifest.
        let again = export(&server, commit, &work.path().join(format!("again-{i}")));
        assert_eq!(image["manifest_digest"], again["manifest_digest"]);

        // What another OCI reader sees.
        let inspect: serde_json::Value = serde_json::from_str(&stdout(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("oci:{}:os", layout.display())),
        ))
        .unwrap();
        let labels = &inspect["Labels"];
        assert_eq!(labels["ostree.commit"], commit.as_str(), "{inspect}");
        assert_eq!(labels["containers.bootc"], "1");
        assert_eq!(labels["ostree.bootable"], "true");
        assert!(
            labels["version"].as_str().unwrap().starts_with("43."),
            "{inspect}"
        );
        let diff_ids = stdout(
            Command::new("skopeo")
                .arg("inspect")
                .arg("--config")
                .arg(format!("oci:{}:os", layout.display())),
        );
        let config: serde_json::Value = serde_json::from_str(&diff_ids).unwrap();
        assert_eq!(
            labels["ostree.final-diffid"],
            config["rootfs"]["diff_ids"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .clone()
        );
        // The commit layer first: where ostree-ext (rpm-ostree, bootc)
        // looks for the commit.
        let first = blob(&layout, &layers(&image)[0].0);
        let listing = stdout(Command::new("tar").arg("-tzf").arg(&first));
        let objects: Vec<&str> = listing
            .lines()
            .filter(|l| {
                l.strip_prefix("sysroot/ostree/repo/objects/")
                    .is_some_and(|rest| rest.trim_end_matches('/').contains('/'))
            })
            .take(2)
            .collect();
        assert_eq!(
            objects,
            [
                format!(
                    "sysroot/ostree/repo/objects/{}/{}.commit",
                    &commit[..2],
                    &commit[2..]
                ),
                format!(
                    "sysroot/ostree/repo/objects/{}/{}.commitmeta",
                    &commit[..2],
                    &commit[2..]
                ),
            ],
            "the first layer does not open with the commit and its signatures"
        );

        // Lossless: the same commit and signatures in an empty repository.
        let client = work.path().join(format!("client-{i}"));
        init_archive_repo(&client);
        let imported = run_json(
            Command::new(corral_bin())
                .args(["compose", "import", "--repo"])
                .arg(&client)
                .args(["--ref", REF])
                .arg(format!("oci:{}:os", layout.display())),
        );
        assert_eq!(imported["commit"], commit.as_str());
        assert_eq!(stdout(ostree(&client).args(["rev-parse", REF])), *commit);
        run_ok(ostree(&client).arg("fsck"));
        assert_eq!(commitmeta(&client, commit), commitmeta(&server, commit));
        let ls = |repo: &Path| stdout(ostree(repo).args(["ls", "-RCX", commit]));
        assert_eq!(ls(&client), ls(&server));
        images.push(image);
    }

    // The commit layer, then one layer per package group.
    let [l1, l2, l3] = [&images[0], &images[1], &images[2]].map(layers);
    eprintln!("layers of the three releases:\n{l1:#?}\n{l2:#?}\n{l3:#?}");
    assert!(l1.len() >= 4, "too few package layers: {l1:?}");
    assert_eq!(l1.len(), l2.len());
    assert!(l1[0].1.is_empty(), "the commit layer has no components");
    let changed: Vec<&str> = l1
        .iter()
        .zip(&l2)
        .filter(|(a, b)| a.0 != b.0)
        .map(|(_, b)| b.1.as_str())
        .collect();
    assert_eq!(changed.len(), 2, "hello 1.0 -> 1.1 changed {changed:?}");
    assert_eq!(changed[0], "", "the commit layer");
    assert!(
        changed[1].split(',').any(|c| c == "corral-hello"),
        "{changed:?}"
    );
    let changed = l2.iter().zip(&l3).filter(|(a, b)| a.0 != b.0).count();
    assert_eq!(changed, 1, "a recompose changed more than the commit layer");
    let reused = l1.iter().filter(|l| l3.contains(l)).count();
    eprintln!(
        "layers reused from release 1 in release 3: {reused} of {}",
        l3.len()
    );

    // A tampered package layer is refused, and nothing is referenced.
    let layout = work.path().join("image-1");
    let (digest, _) = &l2[1];
    let path = blob(&layout, digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let client = work.path().join("client-tampered");
    init_archive_repo(&client);
    let out = Command::new(corral_bin())
        .args(["compose", "import", "--repo"])
        .arg(&client)
        .args(["--ref", REF])
        .arg(format!("oci:{}:os", layout.display()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a tampered layer was imported");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(digest.as_str()), "{err}");
    let refs = stdout(ostree(&client).arg("refs"));
    assert_eq!(refs, "", "a ref was set: {refs}");
}

/// The tar stream of an export, checked against the documented format:
/// the repository config, the commit and its signatures under
/// sysroot/ostree/repo/objects, extended attributes linked from each file
/// object, the checkout hard-linked to the objects, /usr/etc at /etc.
#[test]
fn layers_follow_the_documented_tar_format() {
    require_tool("tar");
    let (_gpg, work, server, _repos, commit) = compose_sample();
    let layout = work.path().join("image");
    let image = export(&server, &commit, &layout);
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    for (digest, _) in layers(&image) {
        let listing = stdout(Command::new("tar").arg("-tvzf").arg(blob(&layout, &digest)));
        for line in listing.lines() {
            let name = line.split_whitespace().nth(5).unwrap();
            let name = name.trim_end_matches('/').to_string();
            entries.insert(name, line.to_string());
        }
    }
    let object = |ext: &str| {
        format!(
            "sysroot/ostree/repo/objects/{}/{}.{ext}",
            &commit[..2],
            &commit[2..]
        )
    };
    for want in [
        "sysroot/ostree/repo/config".to_string(),
        "sysroot/ostree/repo/objects/00".to_string(),
        "sysroot/ostree/repo/objects/ff".to_string(),
        object("commit"),
        object("commitmeta"),
        "etc/passwd".to_string(),
        "usr/lib/os-release".to_string(),
        "var/tmp".to_string(),
    ] {
        assert!(entries.contains_key(&want), "{want} missing");
    }
    assert!(
        !entries.keys().any(|k| k.starts_with("usr/etc")),
        "usr/etc in the checkout"
    );
    let passwd = &entries["etc/passwd"];
    assert!(passwd.starts_with('h'), "not a hard link: {passwd}");
    assert!(
        passwd.contains(" link to sysroot/ostree/repo/objects/"),
        "{passwd}"
    );
    assert!(passwd.ends_with(".file"), "{passwd}");
    let files = entries.keys().filter(|k| k.ends_with(".file")).count();
    let links = entries
        .keys()
        .filter(|k| k.ends_with(".file-xattrs-link"))
        .count();
    assert_eq!(files, links, "every file object has its xattrs link");
    assert!(files > 10, "{files} file objects");
}

/// `compose export -o docker://…` pushes to corral's mirror (credentials
/// from skopeo's auth file); what the mirror serves, copied back by
/// skopeo, imports as the same commit.
#[test]
fn exported_to_the_mirror_and_back() {
    require_tool("skopeo");
    let (gpg, work, server, repos, commit) = compose_sample();
    let htpasswd = htpasswd(work.path());
    let mirror = Mirror::start(&["--htpasswd", htpasswd.to_str().unwrap()]);
    let remote = format!("{}/corral/atomic-host:43", mirror.host());
    let auth = work.path().join("auth.json");
    let token = "dXNlcjpwYXNz"; // base64 of CREDS
    assert_eq!(CREDS, "user:pass");
    std::fs::write(
        &auth,
        serde_json::json!({"auths": {mirror.host(): {"auth": token}}}).to_string(),
    )
    .unwrap();
    let pushed = run_json(
        Command::new(corral_bin())
            .env("REGISTRY_AUTH_FILE", &auth)
            .args(["compose", "export", "--repo"])
            .arg(&server)
            .arg(REF)
            .arg("-o")
            .arg(format!("docker://{remote}"))
            .arg("--tls-verify=false"),
    );
    assert_eq!(pushed["commit"], commit.as_str());
    assert_eq!(pushed["pushed"], remote.as_str());
    for layer in pushed["layers"].as_array().unwrap() {
        assert!(
            mirror.has_blob(layer["digest"].as_str().unwrap()),
            "{layer}"
        );
    }
    let inspect: serde_json::Value = serde_json::from_str(&stdout(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--creds", CREDS])
            .arg(format!("docker://{remote}")),
    ))
    .unwrap();
    assert_eq!(inspect["Labels"]["ostree.commit"], commit.as_str());

    let layout = work.path().join("pulled");
    run_ok(
        Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--src-creds",
                CREDS,
            ])
            .arg(format!("docker://{remote}"))
            .arg(format!("oci:{}:os", layout.display())),
    );
    let client = work.path().join("client");
    init_archive_repo(&client);
    let imported = run_json(
        Command::new(corral_bin())
            .args(["compose", "import", "--repo"])
            .arg(&client)
            .arg(format!("oci:{}:os", layout.display())),
    );
    assert_eq!(imported["commit"], commit.as_str());
    assert_eq!(imported["manifest_digest"], pushed["manifest_digest"]);
    run_ok(ostree(&client).arg("fsck"));

    // `compose run --export` publishes the commit it makes under its
    // version; a tag in the destination is refused before anything runs.
    let repo_ref = format!("{}/corral/atomic-host", mirror.host());
    let tagged = compose(Some(repos.path()), &gpg)
        .args(["run", "sample-atomic", "--no-deltas", "--force", "--repo"])
        .arg(&server)
        .arg(format!("--export=docker://{repo_ref}:43"))
        .output()
        .unwrap();
    assert_eq!(tagged.status.code(), Some(2), "a tagged --export was taken");
    assert_eq!(stdout(ostree(&server).args(["rev-parse", REF])), commit);
    let v = run_json(
        compose(Some(repos.path()), &gpg)
            .env("REGISTRY_AUTH_FILE", &auth)
            .args(["run", "sample-atomic", "--no-deltas", "--force", "--repo"])
            .arg(&server)
            .arg(format!("--export=docker://{repo_ref}"))
            .arg("--export-tls-verify=false"),
    );
    let respin = v[0]["checksum"].as_str().unwrap();
    let version = v[0]["version"].as_str().unwrap();
    assert_ne!(respin, commit);
    assert_eq!(v[0]["image"]["commit"], respin);
    assert_eq!(
        v[0]["image"]["pushed"],
        format!("{repo_ref}:{version}").as_str()
    );
    let inspect: serde_json::Value = serde_json::from_str(&stdout(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--creds", CREDS])
            .arg(format!("docker://{repo_ref}:{version}")),
    ))
    .unwrap();
    assert_eq!(inspect["Labels"]["ostree.commit"], respin);
    assert_eq!(inspect["Digest"], v[0]["image"]["manifest_digest"]);
}

/// An independent reader and writer: ostree-ext, the library rpm-ostree
/// and bootc are built on, through its own CLI. It imports corral's image
/// of a composed commit (the same commit, its signature checked against
/// the compose key through an OSTree remote, `ostree fsck` clean, and
/// refused against another key), and corral imports the image ostree-ext
/// writes of that commit as the same commit and tree.
#[test]
fn ostree_ext_reads_corral_images_and_corral_reads_its() {
    let cli = ostree_ext_cli();
    let (gpg, work, server, _repos, commit) = compose_sample();
    let other = Gpg::new("someone else <other@corral.invalid>");
    let layout = work.path().join("corral-image");
    export(&server, &commit, &layout);
    let corral_image = format!("oci:{}:os", layout.display());
    let ls = |repo: &Path| stdout(ostree(repo).args(["ls", "-RCX", &commit]));

    // ostree-ext imports corral's image, verified through a remote that
    // trusts the compose key.
    let bare = |name: &str, key: &Path| {
        let repo = work.path().join(name);
        run_ok(ostree(&repo).args(["init", "--mode=bare-user"]));
        run_ok(
            ostree(&repo)
                .args(["remote", "add", "--set=gpg-verify=true"])
                .arg(format!("--gpg-import={}", key.display()))
                .args(["corral", "http://127.0.0.1:9/unused"]),
        );
        repo
    };
    let trusted = bare("ext-trusted", &gpg.public_key);
    let out = run_ok(
        Command::new(&cli)
            .args(["container", "unencapsulate", "--repo"])
            .arg(&trusted)
            .arg(format!("ostree-remote-image:corral:{corral_image}")),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&commit), "ostree-ext imported: {said}");
    run_ok(ostree(&trusted).arg("fsck"));
    assert_eq!(ls(&trusted), ls(&server));
    assert_eq!(commitmeta(&trusted, &commit), commitmeta(&server, &commit));

    // The same image against another key: refused, nothing imported.
    let untrusted = bare("ext-untrusted", &other.public_key);
    let out = Command::new(&cli)
        .args(["container", "unencapsulate", "--repo"])
        .arg(&untrusted)
        .arg(format!("ostree-remote-image:corral:{corral_image}"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "ostree-ext accepted the image against another key"
    );
    let has = ostree(&untrusted).args(["show", &commit]).output().unwrap();
    assert!(!has.status.success(), "the refused commit was written");

    // ostree-ext writes an image of the commit; corral imports it whole.
    let ext_layout = work.path().join("ext-image");
    run_ok(
        Command::new(&cli)
            .args(["container", "encapsulate", "--repo"])
            .arg(&server)
            .arg(&commit)
            .arg(format!("oci:{}:ext", ext_layout.display())),
    );
    let client = work.path().join("client");
    init_archive_repo(&client);
    let imported = run_json(
        Command::new(corral_bin())
            .args(["compose", "import", "--repo"])
            .arg(&client)
            .args(["--ref", REF])
            .arg(format!("oci:{}:ext", ext_layout.display())),
    );
    assert_eq!(imported["commit"], commit.as_str());
    run_ok(ostree(&client).arg("fsck"));
    assert_eq!(ls(&client), ls(&server));
    assert_eq!(commitmeta(&client, &commit), commitmeta(&server, &commit));
}
