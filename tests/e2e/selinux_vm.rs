//! The proof that `corral test`'s labels are enforced: a Debian VM with
//! SELinux enforcing (`scripts/vm-selinux.sh`, built once and cached)
//! boots under qemu and runs `tests/fixtures/selinux-vm/run.sh`, two
//! `corral test` runs through podman's Docker-compatible API. This test
//! reads what the guest leaves in the share and checks that
//!
//! - both reports say enforcing and each container's
//!   `/proc/self/attr/current` carried its run's label;
//! - each run reads and writes its own `:Z` directory, and both read the
//!   shared `:z` one;
//! - the second run, with another MCS pair, is denied the first run's
//!   directory, and the kernel logged that AVC denial with the second run's
//!   categories as scontext and the first run's as tcontext.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use corral_test_support::*;
use serde_json::Value;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The image report of `corral test --json` output `name`.json.
fn report(out: &Path, name: &str) -> Value {
    let text = read(&out.join(format!("{name}.json")));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}\n{text}"))
}

/// The case of `image` whose name starts with `prefix`.
fn case<'a>(image: &'a Value, prefix: &str) -> &'a Value {
    image["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no case {prefix:?} in {image:#}"))
}

fn passed(image: &Value, prefix: &str) {
    let c = case(image, prefix);
    assert_eq!(c["outcome"], "passed", "{c:#}");
}

#[test]
fn labels_are_enforced_in_an_selinux_vm() {
    for tool in [
        "qemu-system-x86_64",
        "debootstrap",
        "setfiles",
        "mkfs.ext4",
        "debugfs",
        "objcopy",
    ] {
        require_tool(tool);
    }
    let script = repo_root().join("scripts/vm-selinux.sh");

    let start = Instant::now();
    let built = run_ok(Command::new("bash").arg(&script).arg("build"));
    let image = String::from_utf8_lossy(&built.stdout).trim().to_string();
    eprintln!(
        "selinux_vm: VM image {image} ready in {:.0} s",
        start.elapsed().as_secs_f64()
    );

    // the share: the proof script, its specs and a corral without debug info
    let work = scratch();
    let share = work.path();
    for f in ["run.sh", "owner.toml", "intruder.toml"] {
        std::fs::copy(
            repo_root().join("tests/fixtures/selinux-vm").join(f),
            share.join(f),
        )
        .unwrap_or_else(|e| panic!("copying {f}: {e}"));
    }
    run_ok(
        Command::new("objcopy")
            .arg("--strip-debug")
            .arg(corral_bin())
            .arg(share.join("corral")),
    );

    let start = Instant::now();
    let booted = Command::new("nice")
        .arg("bash")
        .arg(&script)
        .arg("run")
        .arg(share)
        .output()
        .expect("running scripts/vm-selinux.sh run");
    let secs = start.elapsed().as_secs_f64();
    let guest_log = std::fs::read_to_string(share.join("guest.log")).unwrap_or_default();
    let script_log = String::from_utf8_lossy(&booted.stderr);
    let accel = script_log
        .lines()
        .find_map(|l| l.strip_prefix("vm-selinux: qemu with "))
        .unwrap_or("(not said)");
    eprintln!(
        "selinux_vm: boot and proof took {secs:.0} s with {accel}\n--- guest log\n{guest_log}"
    );
    assert!(
        booted.status.success(),
        "the VM run failed ({}):\n{}\n--- console\n{}",
        booted.status,
        script_log,
        std::fs::read_to_string(share.join("console.log")).unwrap_or_default()
    );
    assert_eq!(read(&share.join("guest.rc")).trim(), "0", "{guest_log}");
    assert!(guest_log.contains("selinux: Enforcing"), "{guest_log}");

    let out = share.join("out");
    let owner = report(&out, "owner");
    let intruder = report(&out, "intruder");
    for (name, r) in [("owner", &owner), ("intruder", &intruder)] {
        assert_eq!(r["enforcement"], "enforcing", "{name}: {r:#}");
        assert_eq!(
            r["enforcement_note"],
            "SELinux is enforcing: labels were set and enforced"
        );
        assert_eq!(
            read(&out.join(format!("{name}.rc"))).trim(),
            "0",
            "{name}: {r:#}"
        );
    }
    let owner = &owner["images"][0];
    let intruder = &intruder["images"][0];
    let (a, b) = (
        owner["level"].as_str().unwrap().to_string(),
        intruder["level"].as_str().unwrap().to_string(),
    );
    assert!(a.starts_with("s0:c") && b.starts_with("s0:c"), "{a} {b}");
    assert_ne!(
        a, b,
        "the running owner container's level was handed out again"
    );

    // the enforcing path: the process inside carried the run's label
    for (image, level) in [(owner, &a), (intruder, &b)] {
        let label = case(image, "selinux label");
        assert_eq!(
            label["name"],
            format!("selinux label system_u:system_r:container_t:{level}")
        );
        assert_eq!(label["outcome"], "passed", "{label:#}");
        assert_eq!(
            label["message"],
            "enforced: /proc/self/attr/current matches"
        );
    }

    // the owner's private directory took its level; its own :Z and the shared :z work
    let private = case(owner, "mount /private:Z");
    assert_eq!(private["outcome"], "passed", "{private:#}");
    assert!(
        private["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("labelled system_u:object_r:container_file_t:{a}")),
        "{private:#}"
    );
    passed(owner, "command sh -c echo secret of the owner");
    passed(owner, "command sh -c echo written by the owner");
    passed(owner, "command sh -c echo own");
    passed(owner, "service port 8080 GET /");
    passed(intruder, "command cat /shared/note");
    passed(intruder, "command sh -c echo own");

    // the intruder saw the directory as the owner left it, and was denied
    let foreign = case(intruder, "mount /foreign (not relabelled)");
    assert!(
        foreign["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("container_file_t:{a}")),
        "{foreign:#}"
    );
    passed(intruder, "command cat /foreign/secret");

    let labels = read(&out.join("labels.txt"));
    assert!(
        labels.contains(&format!(
            "system_u:object_r:container_file_t:{a} /srv/proof/private/secret"
        )),
        "{labels}"
    );

    let dmesg = read(&out.join("dmesg.txt"));
    let scontext = format!("scontext=system_u:system_r:container_t:{b} ");
    let tcontext = format!("tcontext=system_u:object_r:container_file_t:{a} ");
    let avc = dmesg
        .lines()
        .find(|l| l.contains("avc:  denied") && l.contains(&scontext) && l.contains(&tcontext))
        .unwrap_or_else(|| {
            panic!("no AVC denial of {b} reading {a}'s files in the kernel log:\n{dmesg}")
        });
    assert!(avc.contains("comm=\"cat\""), "{avc}");
    assert!(avc.contains("permissive=0"), "{avc}");
    eprintln!("selinux_vm: {avc}");
    // nothing denied the owner its own files, nor either run the shared ones
    let owner_denied = format!("scontext=system_u:system_r:container_t:{a} ");
    assert!(
        !dmesg
            .lines()
            .any(|l| l.contains("avc:  denied") && l.contains(&owner_denied)),
        "the owner run was denied something:\n{dmesg}"
    );
}
