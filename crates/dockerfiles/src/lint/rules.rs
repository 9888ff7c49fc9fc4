//! The checks. Each `check_*` function looks at one concern and pushes
//! findings; [`check`] runs them all.

use super::shell::{program, run_commands};
use super::{rule, Finding, Severity};
use crate::parse::{
    expand, referenced_variables, Body, Command, Dockerfile, ExpandError, ImageRef, Instruction,
    Kind, Span, Stage,
};
use std::collections::{HashMap, HashSet};

/// The ARGs BuildKit defines for every build.
pub(crate) const AUTOMATIC_ARGS: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// The labels of the Fedora container guidelines that describe the image
/// to OpenShift and Kubernetes tooling, and its build (CR028).
pub(crate) const FEDORA_LABELS: &[&str] = &[
    "release",
    "description",
    "io.k8s.description",
    "io.k8s.display-name",
    "io.openshift.tags",
];

pub(crate) const REQUIRED_LABELS: &[&str] = &[
    "com.redhat.component",
    "name",
    "version",
    "architecture",
    "summary",
    "maintainer",
];

struct Sink(Vec<Finding>);

impl Sink {
    fn push(&mut self, id: &'static str, at: Span, message: impl Into<String>) {
        let severity = rule(id).map_or(Severity::Error, |r| r.severity);
        self.with(id, severity, at, message);
    }

    fn with(&mut self, id: &'static str, severity: Severity, at: Span, message: impl Into<String>) {
        self.0.push(Finding {
            rule: id,
            severity,
            line: at.line,
            column: at.column,
            message: message.into(),
        });
    }
}

pub(crate) fn check(df: &Dockerfile) -> Vec<Finding> {
    let mut sink = Sink(Vec::new());
    let (global, stages) = df.stages();
    if stages.is_empty() {
        check_no_stage(df, &mut sink);
        return sink.0;
    }
    for ins in global.iter().filter(|i| i.kind != Kind::Arg) {
        sink.push(
            "CR000",
            ins.span,
            format!(
                "{} before the first FROM; only ARG may come before it (no build stage in current context)",
                ins.kind.as_str()
            ),
        );
    }
    let global_args = global_args(&global, df.escape);
    check_instructions(df, &mut sink);
    check_from(df, &stages, &global_args, &mut sink);
    for stage in &stages {
        check_stage(df, stage, &stages, &mut sink);
    }
    if let Some(last) = stages.last() {
        check_final_stage(df, last, &stages, &mut sink);
    }
    sink.0
}

/// A file with no FROM cannot be built, whatever else it holds; BuildKit
/// stops on it before any other check would matter.
fn check_no_stage(df: &Dockerfile, sink: &mut Sink) {
    let (at, message) = match df.instructions.first() {
        None => (
            Span::default(),
            "the Dockerfile has no instructions (an image needs a FROM)",
        ),
        Some(first) => (
            first.span,
            "the Dockerfile has no FROM, so it contains no stage to build",
        ),
    };
    let at = Span {
        line: at.line.max(1),
        column: at.column.max(1),
        ..at
    };
    sink.push("CR000", at, message);
}

/// Global ARG names with their defaults, each default expanded with the
/// ARGs declared before it (as BuildKit does: `ARG W=${V}` after
/// `ARG V=43` is `43`). A default that uses an ARG without a value has no
/// known value itself.
fn global_args(global: &[&Instruction], escape: char) -> HashMap<String, Option<String>> {
    let mut args: HashMap<String, Option<String>> = HashMap::new();
    for ins in global {
        if let Body::Arg(decls) = &ins.body {
            for d in decls {
                let value = d.default.as_ref().and_then(|raw| {
                    let mut known = true;
                    let v = expand(raw, escape, |n| match args.get(n) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => {
                            known = false;
                            None
                        }
                    });
                    v.ok().filter(|_| known)
                });
                args.insert(d.name.clone(), value);
            }
        }
    }
    args
}

/// Rules about one instruction at a time, wherever it is.
fn check_instructions(df: &Dockerfile, sink: &mut Sink) {
    for ins in &df.instructions {
        check_instruction(df, ins, sink);
        if let Body::Onbuild(inner) = &ins.body {
            check_instruction(df, inner, sink);
        }
    }
}

fn check_instruction(df: &Dockerfile, ins: &Instruction, sink: &mut Sink) {
    if ins.kind == Kind::Unknown {
        sink.push(
            "CR018",
            ins.keyword_span,
            format!("unknown instruction {}", ins.keyword),
        );
    }
    if ins.kind != Kind::Unknown {
        let known = ins.kind.known_flags();
        for f in &ins.flags {
            if !known.contains(&f.name.as_str()) {
                sink.push(
                    "CR022",
                    f.span,
                    format!("{} has no flag --{}", ins.kind.as_str(), f.name),
                );
            }
        }
    }
    match &ins.body {
        Body::Maintainer(_) => sink.push(
            "CR012",
            ins.span,
            "MAINTAINER is deprecated, use LABEL maintainer=...",
        ),
        Body::Cmd(Command::Shell(_)) | Body::Entrypoint(Command::Shell(_)) => sink.push(
            "CR011",
            ins.span,
            format!(
                "use the exec form {} [\"program\", \"arg\"] so the process gets signals",
                ins.kind.as_str()
            ),
        ),
        Body::Run(_) => check_run(df, ins, sink),
        Body::Add(c) => {
            let local = c.sources.iter().any(|s| {
                // BuildKit removes the quotes of `ADD "https://…" dst`
                let unquoted = crate::parse::unquote(&s.text, df.escape);
                let t = unquoted.as_str();
                !(t.starts_with("http://")
                    || t.starts_with("https://")
                    || t.starts_with("git@")
                    || t.starts_with("<<")
                    || is_archive(t))
            });
            if local {
                sink.push(
                    "CR016",
                    ins.span,
                    "use COPY for local files; ADD is for URLs and archives",
                );
            }
        }
        Body::Expose(ports) => {
            for p in ports {
                if let Err(why) = valid_port(&p.text) {
                    sink.push(
                        "CR009",
                        p.span,
                        format!("invalid EXPOSE {:?}: {why}", p.text),
                    );
                }
            }
        }
        Body::Workdir(w) if !w.starts_with('/') && !w.starts_with('$') && !is_windows_path(w) => {
            sink.push(
                "CR023",
                ins.span,
                format!("WORKDIR {w:?} is relative; use an absolute path"),
            );
        }
        Body::Env(kvs) | Body::Label(kvs) => {
            if let Some(kv) = kvs.iter().find(|kv| kv.legacy) {
                sink.push(
                    "CR024",
                    kv.span,
                    format!(
                        "use {} {}=... instead of the legacy space-separated form",
                        ins.kind.as_str(),
                        kv.key
                    ),
                );
            }
        }
        _ => {}
    }
}

fn is_windows_path(w: &str) -> bool {
    w.as_bytes().get(1) == Some(&b':')
}

fn is_archive(path: &str) -> bool {
    const EXT: &[&str] = &[
        ".tar",
        ".tar.gz",
        ".tgz",
        ".tar.bz2",
        ".tbz2",
        ".tbz",
        ".tar.xz",
        ".txz",
        ".tar.zst",
        ".tzst",
        ".tar.lz",
        ".tar.lzma",
    ];
    let lower = path.to_ascii_lowercase();
    EXT.iter().any(|e| lower.ends_with(e))
}

fn valid_port(spec: &str) -> Result<(), String> {
    if spec.contains('$') {
        return Ok(());
    }
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, Some(proto)),
        None => (spec, None),
    };
    if let Some(proto) = proto {
        if !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("protocol {proto:?} is not tcp, udp or sctp"));
        }
    }
    let port = |s: &str| -> Result<u32, String> {
        match s.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n),
            _ => Err(format!("{s:?} is not a port between 1 and 65535")),
        }
    };
    match ports.split_once('-') {
        Some((a, b)) => {
            if port(a)? > port(b)? {
                return Err("range start is after its end".into());
            }
        }
        None => {
            port(ports)?;
        }
    }
    Ok(())
}

fn check_run(df: &Dockerfile, ins: &Instruction, sink: &mut Sink) {
    let Body::Run(run) = &ins.body else { return };
    let cmds = run_commands(ins, df.escape);
    let cached = |dir: &str| {
        run.mounts.iter().any(|m| {
            m.kind == "cache"
                && m.options.iter().any(|(k, v)| {
                    matches!(k.as_str(), "target" | "dst" | "destination")
                        && v.as_deref().is_some_and(|v| v.starts_with(dir))
                })
        })
    };
    let mut sudo = false;
    let mut cd = false;
    for (n, cmd) in cmds.iter().enumerate() {
        if cmd
            .first()
            .is_some_and(|w| w == "sudo" || w.ends_with("/sudo"))
        {
            sudo = true;
        }
        let (at, prog) = program(cmd);
        let Some(prog) = prog else { continue };
        let args = &cmd[at + 1..];
        // the subcommand: the first word that is neither an option nor an
        // option's `key=value` (as in `dnf --setopt tsflags=nodocs install`)
        let sub = args
            .iter()
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .map(String::as_str);
        match prog {
            "cd" => cd = true,
            "dnf" | "dnf5" | "yum" | "microdnf" if sub == Some("install") => {
                let yes = args.iter().any(|a| {
                    a == "--assumeyes"
                        || a == "-y"
                        || (a.starts_with('-') && !a.starts_with("--") && a.contains('y'))
                });
                if !yes {
                    sink.push("CR005", ins.span, format!("{prog} install needs -y"));
                }
                let nodocs = args.iter().enumerate().any(|(i, a)| {
                    a == "--setopt=tsflags=nodocs"
                        || a == "--nodocs"
                        || a == "--no-docs"
                        || (a == "--setopt"
                            && args.get(i + 1).is_some_and(|v| v == "tsflags=nodocs"))
                });
                if !nodocs {
                    sink.push(
                        "CR006",
                        ins.span,
                        format!("{prog} install needs --setopt=tsflags=nodocs"),
                    );
                }
                let cache = if prog == "yum" {
                    "/var/cache/yum"
                } else {
                    "/var/cache/dnf"
                };
                let cleaned = cmds[n + 1..].iter().any(|c| {
                    let (i, p) = program(c);
                    let rest = &c[i + 1..];
                    (matches!(p, Some("dnf" | "dnf5" | "yum" | "microdnf"))
                        && rest.iter().any(|w| w == "clean")
                        && rest.iter().any(|w| w == "all"))
                        || (p == Some("rm") && rest.iter().any(|w| w.starts_with(cache)))
                });
                if !cleaned && !cached(cache) {
                    sink.push(
                        "CR007",
                        ins.span,
                        format!(
                            "{prog} install is not followed by `{prog} clean all` in the same RUN"
                        ),
                    );
                }
            }
            "apt-get" | "apt" if sub == Some("install") => {
                let yes = args
                    .iter()
                    .any(|a| matches!(a.as_str(), "-y" | "--yes" | "--assume-yes" | "-qy" | "-yq"));
                if !yes {
                    sink.push("CR015", ins.span, format!("{prog} install needs -y"));
                }
                // `apt-get dist-clean` (apt 2.7) also empties the lists;
                // current Debian and Ubuntu images use it
                let cleaned = cmds[n + 1..].iter().any(|c| {
                    let (i, p) = program(c);
                    let rest = &c[i + 1..];
                    (p == Some("rm") && rest.iter().any(|w| w.starts_with("/var/lib/apt/lists")))
                        || (matches!(p, Some("apt-get" | "apt"))
                            && rest.iter().any(|w| w == "dist-clean"))
                });
                if !cleaned && !cached("/var/lib/apt") {
                    sink.push(
                        "CR015",
                        ins.span,
                        "apt-get install is not followed by rm -rf /var/lib/apt/lists/* in the same RUN",
                    );
                }
            }
            "apk"
                if sub == Some("add")
                    && !args.iter().any(|a| a == "--no-cache")
                    && !cached("/var/cache/apk") =>
            {
                sink.push("CR015", ins.span, "apk add needs --no-cache");
            }
            _ => {}
        }
    }
    if sudo {
        sink.push(
            "CR013",
            ins.span,
            "do not use sudo; switch with USER root instead",
        );
    }
    if cd {
        sink.push("CR014", ins.span, "use WORKDIR instead of cd");
    }
}

fn check_from(
    df: &Dockerfile,
    stages: &[Stage<'_>],
    global_args: &HashMap<String, Option<String>>,
    sink: &mut Sink,
) {
    let mut names: HashSet<String> = HashSet::new();
    for stage in stages {
        let from = stage.from;
        let ins = stage.from_instruction;
        // variables visible to FROM
        let mut undefined = Vec::new();
        let mut texts = vec![from.image.as_str()];
        if let Some(p) = &from.platform {
            texts.push(p);
        }
        for text in &texts {
            for v in referenced_variables(text, df.escape) {
                if !global_args.contains_key(&v)
                    && !AUTOMATIC_ARGS.contains(&v.as_str())
                    && !undefined.contains(&v)
                {
                    undefined.push(v);
                }
            }
        }
        for v in &undefined {
            sink.push(
                "CR021",
                from.image_span,
                format!("{v} is not declared by an ARG before the first FROM"),
            );
        }
        // the image, with global ARG defaults substituted
        let mut unresolved = false;
        let image = expand(&from.image, df.escape, |n| match global_args.get(n) {
            Some(Some(v)) => Some(v.clone()),
            _ => {
                unresolved = true;
                None
            }
        });
        let image = match image {
            Ok(i) => i,
            Err(ExpandError::Required { .. }) => continue,
            Err(e) => {
                sink.push(
                    "CR021",
                    from.image_span,
                    format!("invalid variable reference: {e}"),
                );
                continue;
            }
        };
        if let Some(p) = &from.platform {
            let flag = ins.flag("platform").map_or(ins.span, |f| f.span);
            if !p.contains('$') {
                sink.push(
                    "CR020",
                    flag,
                    format!("--platform={p} is a constant; use $BUILDPLATFORM or leave it out"),
                );
            } else if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
                sink.with(
                    "CR020",
                    Severity::Info,
                    flag,
                    "--platform=$TARGETPLATFORM is the default and can be left out",
                );
            }
        }
        if let Some(name) = &from.stage_name {
            if !names.insert(name.text.to_ascii_lowercase()) {
                sink.push(
                    "CR017",
                    name.span,
                    format!("stage name {:?} is used twice", name.text),
                );
            }
        }
        if unresolved || image == "scratch" || names_earlier_stage(stages, stage.index, &image) {
            continue;
        }
        let r = match ImageRef::parse(&image) {
            Ok(r) => r,
            Err(e) => {
                sink.push(
                    "CR027",
                    from.image_span,
                    format!("invalid image reference {image:?}: {e}"),
                );
                continue;
            }
        };
        if r.registry.is_none() {
            sink.push(
                "CR001",
                from.image_span,
                format!("{image} is not fully qualified; name the registry, e.g. registry.fedoraproject.org/{}", r.repository),
            );
        }
        match r.tag.as_deref() {
            None => sink.push("CR002", from.image_span, format!("{image} has no tag")),
            Some("latest") => sink.push(
                "CR003",
                from.image_span,
                format!("{image} uses the latest tag"),
            ),
            Some(_) => {}
        }
    }
}

fn names_earlier_stage(stages: &[Stage<'_>], before: usize, name: &str) -> bool {
    stages[..before.min(stages.len())].iter().any(|s| {
        s.from
            .stage_name
            .as_ref()
            .is_some_and(|n| n.text.eq_ignore_ascii_case(name))
    })
}

fn check_stage(df: &Dockerfile, stage: &Stage<'_>, stages: &[Stage<'_>], sink: &mut Sink) {
    let _ = df;
    let mut labels: HashMap<&str, Span> = HashMap::new();
    let mut counts: HashMap<Kind, Vec<Span>> = HashMap::new();
    for ins in &stage.instructions {
        match &ins.body {
            Body::Label(kvs) => {
                for kv in kvs {
                    if labels.insert(&kv.key, kv.span).is_some() {
                        sink.push(
                            "CR019",
                            kv.span,
                            format!("label {:?} is set twice in this stage", kv.key),
                        );
                    }
                }
            }
            Body::Cmd(_) | Body::Entrypoint(_) | Body::Healthcheck(_) => {
                counts.entry(ins.kind).or_default().push(ins.span);
            }
            Body::Copy(c) => {
                if let Some(from) = &c.from {
                    let later = match from.parse::<usize>() {
                        Ok(i) => i >= stage.index,
                        Err(_) => {
                            stages[stage.index..].iter().any(|s| {
                                s.from
                                    .stage_name
                                    .as_ref()
                                    .is_some_and(|n| n.text.eq_ignore_ascii_case(from))
                            }) && !names_earlier_stage(stages, stage.index, from)
                        }
                    };
                    if later {
                        let at = ins.flag("from").map_or(ins.span, |f| f.span);
                        sink.push(
                            "CR026",
                            at,
                            format!("--from={from} is this stage or a later one"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let mut kinds: Vec<_> = counts.into_iter().filter(|(_, v)| v.len() > 1).collect();
    kinds.sort_by_key(|(_, v)| v[0].start);
    for (kind, spans) in kinds {
        for s in &spans[..spans.len() - 1] {
            sink.push(
                "CR025",
                *s,
                format!(
                    "{} is overridden by a later {} in this stage",
                    kind.as_str(),
                    kind.as_str()
                ),
            );
        }
    }
}

/// CR029: `architecture` names the platform the image is built for, from
/// `${TARGETARCH}` declared in the stage, never a fixed value: the library
/// builds every image for each architecture its image.toml lists.
fn check_architecture_label(instructions: &[&Instruction], sink: &mut Sink) {
    let mut declared = false;
    for ins in instructions {
        match &ins.body {
            Body::Arg(decls) => {
                declared |= decls.iter().any(|d| d.name == "TARGETARCH");
            }
            Body::Label(kvs) => {
                for kv in kvs.iter().filter(|kv| kv.key == "architecture") {
                    let uses =
                        kv.value.contains("${TARGETARCH}") || kv.value.contains("$TARGETARCH");
                    if !uses {
                        sink.push(
                            "CR029",
                            kv.span,
                            format!(
                                "architecture is fixed to {:?}; use \"${{TARGETARCH}}\" (with ARG TARGETARCH in the stage)",
                                kv.value
                            ),
                        );
                    } else if !declared {
                        sink.push(
                            "CR029",
                            kv.span,
                            "architecture uses ${TARGETARCH}, but no ARG TARGETARCH before it in the stage declares it, so it is empty",
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// CR030: the final stage puts a `help.1` man page at `/help.1`.
fn check_help_page(instructions: &[&Instruction], last: &Stage<'_>, sink: &mut Sink) {
    let has = instructions.iter().any(|ins| match &ins.body {
        Body::Copy(c) | Body::Add(c) => {
            let dest = c.destination.text.trim_end_matches('/');
            let from_help = c.sources.iter().any(|s| s.text.ends_with("help.1"));
            dest == "/help.1" || (dest.is_empty() && from_help)
        }
        _ => false,
    });
    if !has {
        sink.push(
            "CR030",
            last.from_instruction.span,
            "the final stage has no /help.1 man page; COPY help.1 /help.1 (generated from help.md)",
        );
    }
}

/// The final stage, with the stages it builds on inside this file.
fn lineage<'s, 'a>(stages: &'s [Stage<'a>], last: &'s Stage<'a>) -> Vec<&'s Stage<'a>> {
    let mut chain = vec![last];
    let mut current = last;
    while let Some(parent) = stages[..current.index].iter().rev().find(|s| {
        s.from
            .stage_name
            .as_ref()
            .is_some_and(|n| n.text.eq_ignore_ascii_case(&current.from.image))
    }) {
        chain.push(parent);
        current = parent;
    }
    chain.reverse();
    chain
}

fn check_final_stage(df: &Dockerfile, last: &Stage<'_>, stages: &[Stage<'_>], sink: &mut Sink) {
    let chain = lineage(stages, last);
    let instructions: Vec<&Instruction> = chain
        .iter()
        .flat_map(|s| s.instructions.iter().copied())
        .collect();

    // labels
    let keys: HashSet<&str> = instructions
        .iter()
        .filter_map(|i| match &i.body {
            Body::Label(kvs) => Some(kvs.iter().map(|kv| kv.key.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    let mut missing: Vec<&str> = REQUIRED_LABELS
        .iter()
        .copied()
        .filter(|l| !keys.contains(l))
        .collect();
    if !keys.contains("run") && !keys.contains("usage") {
        missing.push("run or usage");
    }
    if !missing.is_empty() {
        sink.push(
            "CR004",
            last.from_instruction.span,
            format!(
                "final stage is missing required labels: {}",
                missing.join(", ")
            ),
        );
    }

    let fedora_missing: Vec<&str> = FEDORA_LABELS
        .iter()
        .copied()
        .filter(|l| !keys.contains(l))
        .collect();
    if !fedora_missing.is_empty() {
        sink.push(
            "CR028",
            last.from_instruction.span,
            format!(
                "final stage is missing the Fedora guidelines' labels: {}",
                fedora_missing.join(", ")
            ),
        );
    }
    check_architecture_label(&instructions, sink);
    check_help_page(&instructions, last, sink);

    // user
    let allow_root = df
        .comments
        .iter()
        .find_map(|c| c.text.strip_prefix("corral: allow-root").map(str::trim));
    let last_user = instructions.iter().rev().find_map(|i| match &i.body {
        Body::User(u) => Some((i, u)),
        _ => None,
    });
    match last_user {
        Some((ins, u)) if u.user == "root" || u.user == "0" => match allow_root {
            Some(reason) if !reason.is_empty() => {}
            Some(_) => sink.push(
                "CR008",
                ins.span,
                "`# corral: allow-root` needs a reason after it",
            ),
            None => sink.push(
                "CR008",
                ins.span,
                "the image runs as root; end with a non-root USER or add `# corral: allow-root <reason>`",
            ),
        },
        Some(_) => {}
        None if allow_root.is_some_and(|r| !r.is_empty()) => {}
        None => sink.with(
            "CR008",
            Severity::Warning,
            last.from_instruction.span,
            "the final stage sets no USER, so it runs as its base image's user; set a non-root USER",
        ),
    }

    // healthcheck for services
    let expose = instructions.iter().find(|i| i.kind == Kind::Expose);
    let health = instructions.iter().any(|i| i.kind == Kind::Healthcheck);
    if let (Some(e), false) = (expose, health) {
        sink.push(
            "CR010",
            e.span,
            "the image exposes a port but has no HEALTHCHECK",
        );
    }
}
