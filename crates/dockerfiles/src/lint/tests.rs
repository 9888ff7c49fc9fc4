use super::*;

fn ids(src: &str) -> Vec<&'static str> {
    lint_str(src).into_iter().map(|f| f.rule).collect()
}

fn with_from(fragment: &str) -> String {
    if fragment.lines().any(|l| l.starts_with("FROM")) {
        fragment.to_string()
    } else {
        format!("FROM registry.fedoraproject.org/fedora:43\n{fragment}")
    }
}

/// Every rule's documented bad example triggers it; the good one does not.
#[test]
fn rule_examples() {
    for r in RULES {
        let bad = ids(&with_from(r.bad));
        assert!(bad.contains(&r.id), "{}: bad example gives {bad:?}", r.id);
        let good = ids(&with_from(r.good));
        assert!(
            !good.contains(&r.id),
            "{}: good example gives {good:?}",
            r.id
        );
    }
}

#[test]
fn rule_ids_are_unique_and_ordered() {
    for w in RULES.windows(2) {
        assert!(w[0].id < w[1].id);
    }
}

/// `docs/rules/` is rendered from the catalogue; regenerate with
/// CORRAL_UPDATE_DOCS=1.
#[test]
fn rule_docs_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules");
    let update = std::env::var_os("CORRAL_UPDATE_DOCS").is_some();
    let mut pages: Vec<(String, String)> = RULES
        .iter()
        .map(|r| (format!("{}.md", r.id), registry::render_doc(r)))
        .collect();
    pages.push(("README.md".into(), registry::render_index()));
    for (name, want) in pages {
        let path = dir.join(&name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &want).unwrap();
        } else {
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} is stale; run CORRAL_UPDATE_DOCS=1 cargo test -p corral-dockerfiles rule_docs",
                path.display()
            );
        }
    }
}

const CLEAN: &str = r#"FROM quay.io/corral/base:43
ARG TARGETARCH
LABEL com.redhat.component="x-container" \
      name="corral/x" \
      version="1" \
      release="1" \
      architecture="${TARGETARCH}" \
      summary="x" \
      description="x does one thing" \
      io.k8s.description="x does one thing" \
      io.k8s.display-name="X 1" \
      io.openshift.tags="x" \
      maintainer="Corral <corral@example.invalid>" \
      usage="podman run corral/x"
USER root
RUN dnf -y --setopt=tsflags=nodocs install x && \
    dnf clean all
COPY help.1 /help.1
USER 1001
EXPOSE 8080
HEALTHCHECK CMD ["true"]
CMD ["x"]
"#;

#[test]
fn clean_file_has_no_findings() {
    assert_eq!(lint_str(CLEAN), vec![]);
}

#[test]
fn positions_and_messages() {
    let f = lint_str("FROM fedora:latest\n");
    let cr001 = f.iter().find(|f| f.rule == "CR001").unwrap();
    assert_eq!((cr001.line, cr001.column), (1, 6));
    assert!(f.iter().any(|f| f.rule == "CR003"));
    assert!(f
        .iter()
        .any(|f| f.rule == "CR004" && f.message.contains("com.redhat.component")));
}

#[test]
fn ignore_comments() {
    let src = "FROM registry.fedoraproject.org/fedora:43\n# corral-ignore: CR012\nMAINTAINER x\nMAINTAINER y\n";
    let f: Vec<_> = lint_str(src)
        .into_iter()
        .filter(|f| f.rule == "CR012")
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].line, 4);
    let src = "# corral-ignore-file: CR012, CR004\nFROM registry.fedoraproject.org/fedora:43\nMAINTAINER x\n";
    let f = ids(src);
    assert!(!f.contains(&"CR012") && !f.contains(&"CR004"));
    // an ignore covers every line of a continued instruction
    let src = "FROM registry.fedoraproject.org/fedora:43\n# corral-ignore: CR007\nRUN dnf -y --setopt=tsflags=nodocs \\\n  install x\n";
    assert!(!ids(src).contains(&"CR007"));
}

#[test]
fn allow_root_needs_a_reason() {
    let root = CLEAN.replace("USER 1001\n", "");
    assert!(ids(&root).contains(&"CR008"));
    let with_reason = format!("# corral: allow-root binds port 80\n{root}");
    assert!(!ids(&with_reason).contains(&"CR008"));
    let without = format!("# corral: allow-root\n{root}");
    assert!(ids(&without).contains(&"CR008"));
    let no_user = CLEAN.replace("USER root\n", "").replace("USER 1001\n", "");
    let f = lint_str(&no_user);
    let w = f.iter().find(|f| f.rule == "CR008").unwrap();
    assert_eq!(w.severity, Severity::Warning);
}

#[test]
fn dnf_variants() {
    let run = |r: &str| ids(&with_from(r));
    assert!(!run(
        "RUN --mount=type=cache,target=/var/cache/dnf dnf -y --setopt=tsflags=nodocs install x\n"
    )
    .contains(&"CR007"));
    assert!(
        !run("RUN dnf install -y --nodocs x && rm -rf /var/cache/dnf\n")
            .iter()
            .any(|r| matches!(*r, "CR005" | "CR006" | "CR007"))
    );
    assert!(run("RUN microdnf install x\n").contains(&"CR005"));
    assert!(
        run("RUN yum -y --setopt=tsflags=nodocs install x; yum clean all\n")
            .iter()
            .all(|r| !matches!(*r, "CR005" | "CR006" | "CR007"))
    );
    // heredoc RUN bodies are read too
    assert!(run("RUN <<EOF\ndnf -y install x\nEOF\n").contains(&"CR006"));
    assert!(run("RUN apk add curl\n").contains(&"CR015"));
    assert!(!run("RUN apk add --no-cache curl\n").contains(&"CR015"));
    assert!(!run("RUN echo 'cd /x'\n").contains(&"CR014"));
    assert!(
        !run("RUN dnf -y --setopt=tsflags=nodocs install sudo && dnf clean all\n")
            .contains(&"CR013")
    );
    assert!(run("RUN dnf --setopt tsflags=nodocs install x && dnf clean all\n").contains(&"CR005"));
}

#[test]
fn from_checks() {
    let f = ids("ARG TAG=43\nFROM registry.fedoraproject.org/fedora:${TAG}\n");
    assert!(!f.contains(&"CR001") && !f.contains(&"CR021"));
    let f = ids("ARG REG=registry.fedoraproject.org\nARG TAG\nFROM ${REG}/fedora:${TAG:?}\n");
    assert!(!f.contains(&"CR021"), "{f:?}");
    let f =
        ids("FROM --platform=$BUILDPLATFORM registry.fedoraproject.org/fedora:43 AS b\nFROM b\n");
    assert!(!f.contains(&"CR001") && !f.contains(&"CR020"), "{f:?}");
    assert!(ids("FROM --platform=$TARGETPLATFORM a.io/b:1\n").contains(&"CR020"));
    assert!(ids("FROM --platform=$NOPE a.io/b:1\n").contains(&"CR021"));
    assert!(ids("FROM a.io/b:${X#y}\n").contains(&"CR021"));
    assert!(!ids("FROM scratch\n").contains(&"CR001"));
    let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert!(ids(&format!("FROM a.io/b@{d}\n")).contains(&"CR002"));
}

#[test]
fn fedora_labels_a_platform_architecture_and_a_man_page_are_required() {
    let f = lint_str(&CLEAN.replace("      io.k8s.display-name=\"X 1\" \\\n", ""));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "CR028");
    assert!(
        f[0].message.ends_with(": io.k8s.display-name"),
        "{}",
        f[0].message
    );
    for missing in ["release", "io.k8s.description", "io.openshift.tags"] {
        let src: String = CLEAN
            .lines()
            .filter(|l| !l.trim_start().starts_with(&format!("{missing}=")))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(ids(&src), ["CR028"], "without {missing}");
    }

    // a fixed architecture, and the variable without its ARG
    let fixed = lint_str(&CLEAN.replace("${TARGETARCH}", "x86_64"));
    assert_eq!(fixed.len(), 1, "{fixed:?}");
    assert_eq!((fixed[0].rule, fixed[0].line), ("CR029", 7));
    assert!(
        fixed[0].message.contains("\"x86_64\""),
        "{}",
        fixed[0].message
    );
    let undeclared = lint_str(&CLEAN.replace("ARG TARGETARCH\n", ""));
    assert_eq!(undeclared.len(), 1, "{undeclared:?}");
    assert!(undeclared[0].message.contains("no ARG TARGETARCH"));
    assert!(ids(&CLEAN.replace("${TARGETARCH}", "$TARGETARCH")).is_empty());

    // the man page, copied to / or to /help.1
    assert_eq!(ids(&CLEAN.replace("COPY help.1 /help.1\n", "")), ["CR030"]);
    assert!(ids(&CLEAN.replace("COPY help.1 /help.1", "COPY help.1 /")).is_empty());
    assert_eq!(
        ids(&CLEAN.replace("COPY help.1 /help.1", "COPY help.md /help.1.md")),
        ["CR030"]
    );
}

#[test]
fn multi_stage_labels_follow_lineage() {
    let src = CLEAN.replace(
        "FROM quay.io/corral/base:43\n",
        "FROM quay.io/corral/base:43 AS base\nFROM quay.io/corral/x:1 AS other\nFROM base\n",
    );
    assert_eq!(ids(&src), Vec::<&str>::new());
}

#[test]
fn parse_errors_are_cr000() {
    let f = lint_bytes(b"FROM a\xff\n");
    assert_eq!(f[0].rule, "CR000");
    let f = lint_str("FROM a\nCOPY x\n");
    assert_eq!((f[0].rule, f[0].line), ("CR000", 2));
}

#[test]
fn sarif_is_shaped_right() {
    let reports = vec![output::FileReport {
        path: "a/Dockerfile".into(),
        findings: lint_str("FROM fedora\n"),
    }];
    let s = output::sarif(&reports);
    assert_eq!(s["version"], "2.1.0");
    let r = &s["runs"][0]["results"][0];
    assert!(r["ruleId"].is_string());
    assert_eq!(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "a/Dockerfile"
    );
    assert!(output::text(&reports).contains("a/Dockerfile:1:6: error[CR001] "));
    assert!(output::json(&reports)[0]["rule"].is_string());
}

#[test]
fn a_file_without_from_is_an_error() {
    for src in [
        "",
        "\n\n",
        "# only a comment\n",
        "# syntax=docker/dockerfile:1\n",
    ] {
        let f = lint_str(src);
        assert_eq!(f.len(), 1, "{src:?}: {f:?}");
        assert_eq!((f[0].rule, f[0].severity), ("CR000", Severity::Error));
        assert_eq!((f[0].line, f[0].column), (1, 1));
        assert!(f[0].message.contains("no instructions"), "{}", f[0].message);
    }
    let f = lint_str("ARG V=1\nRUN echo hi\n");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].rule, f[0].line), ("CR000", 1));
    assert!(f[0].message.contains("no FROM"), "{}", f[0].message);
    // only ARG may come before the first FROM
    let f = lint_str("RUN echo hi\nFROM registry.fedoraproject.org/fedora:43\n");
    let cr000: Vec<_> = f.iter().filter(|f| f.rule == "CR000").collect();
    assert_eq!(cr000.len(), 1, "{f:?}");
    assert_eq!(cr000[0].line, 1);
    assert!(cr000[0].message.starts_with("RUN before the first FROM"));
}

/// Seen on public Dockerfiles: an ARG whose default uses an earlier ARG.
#[test]
fn chained_global_args_expand_in_from() {
    let src = "ARG V=43\nARG W=${V}\nFROM registry.fedoraproject.org/fedora:${W}\n";
    assert_eq!(
        ids(src).iter().filter(|r| **r == "CR027").count(),
        0,
        "{:?}",
        lint_str(src)
    );
    let src = "ARG V=43\nARG W=\"${V}-minimal\"\nFROM registry.fedoraproject.org/fedora:${W}\n";
    assert!(!ids(src).contains(&"CR027"), "{:?}", lint_str(src));
    // a chain through an ARG without a value is unknown, not invalid
    let src = "ARG V\nARG W=${V}\nFROM registry.fedoraproject.org/fedora:${W}\n";
    assert!(!ids(src).contains(&"CR027"), "{:?}", lint_str(src));
    // and a chain that expands to something invalid is still caught
    let src = "ARG V=Bad\nARG W=${V}\nFROM registry.fedoraproject.org/Fedora:${W}\n";
    assert!(ids(src).contains(&"CR027"));
    // `latest` reached through a chain is still `latest`
    let src = "ARG V=latest\nARG W=$V\nFROM registry.fedoraproject.org/fedora:${W}\n";
    assert!(ids(src).contains(&"CR003"));
}

/// Seen on public Dockerfiles: quoted URLs in ADD.
#[test]
fn quoted_add_urls_are_not_local_files() {
    let run = |r: &str| ids(&with_from(r));
    for add in [
        "ADD \"https://example.org/app.tar\" /opt/\n",
        "ADD 'https://example.org/x.sh' /usr/local/bin/x\n",
        "ADD --keep-git-dir=true \"https://github.com/moby/buildkit.git#v0.10.1\" /buildkit\n",
        "ADD https://example.org/x.sh /usr/local/bin/x\n",
        "ADD [\"https://example.org/x.sh\", \"/usr/local/bin/x\"]\n",
        "ADD \"app.tar.gz\" /opt/\n",
    ] {
        let f = run(add);
        assert!(!f.contains(&"CR016"), "{add}: {f:?}");
        assert!(!f.contains(&"CR022"), "{add}: {f:?}");
    }
    assert!(run("ADD \"app.py\" /opt/\n").contains(&"CR016"));
}

/// Seen on public Dockerfiles: Debian and Ubuntu images clean up with
/// `apt-get dist-clean`.
#[test]
fn apt_dist_clean_counts_as_cleanup() {
    let run = |r: &str| ids(&with_from(r));
    assert!(
        !run("RUN apt-get update && apt-get install -y curl && apt-get dist-clean\n")
            .contains(&"CR015")
    );
    assert!(!run("RUN apt update && apt install -y curl && apt dist-clean\n").contains(&"CR015"));
    // `apt-get clean` leaves the lists
    assert!(
        run("RUN apt-get update && apt-get install -y curl && apt-get clean\n").contains(&"CR015")
    );
    assert!(run("RUN apt-get update && apt-get install -y curl\n").contains(&"CR015"));
}
