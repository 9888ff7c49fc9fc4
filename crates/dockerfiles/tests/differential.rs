//! Differential test against the `dockerfile-parser` crate: on inputs both
//! parsers accept, instruction kinds and arguments agree.
//!
//! Where that crate is known to be wrong the comparison skips the field:
//! it keeps `--mount`/`--link`/`--parents` inside the arguments (we compare
//! arguments only for flag-free instructions), and drops the tag of
//! `image:tag@digest`.

use corral_dockerfiles::parse::{Body, Command, Kind};
use dockerfile_parser as theirs;

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn corpus() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dockerfiles");
    for e in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_name() == "Dockerfile" {
            out.push((
                e.path().display().to_string(),
                std::fs::read_to_string(e.path()).unwrap(),
            ));
        }
    }
    let snippets = [
        "FROM alpine:3.20 AS build\nARG A=1\nARG B\nRUN echo $A \\\n  && echo b\nFROM scratch\nCOPY a b /c/\n",
        "FROM registry.fedoraproject.org/fedora:43\nLABEL a=1 \"b\"=\"two words\"\nENV X=1 Y=2\nCMD [\"a\", \"b\"]\nENTRYPOINT exec foo\n",
        "FROM a.io/b:1\nEXPOSE 80 443/tcp\nUSER 1001\nWORKDIR /x\nVOLUME /data\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/bash\", \"-c\"]\n",
        "FROM a.io/b:1\nRUN [\"echo\", \"exec\"]\nHEALTHCHECK CMD curl -f http://localhost/\nONBUILD RUN make\n",
        "ARG TAG=43\nFROM quay.io/x/y:${TAG}\nRUN a \\\n    # comment inside\n    b\n",
    ];
    for (i, s) in snippets.iter().enumerate() {
        out.push((format!("snippet {i}"), s.to_string()));
    }
    out
}

fn kind_of(i: &theirs::Instruction) -> String {
    match i {
        theirs::Instruction::From(_) => "FROM".into(),
        theirs::Instruction::Arg(_) => "ARG".into(),
        theirs::Instruction::Label(_) => "LABEL".into(),
        theirs::Instruction::Run(_) => "RUN".into(),
        theirs::Instruction::Entrypoint(_) => "ENTRYPOINT".into(),
        theirs::Instruction::Cmd(_) => "CMD".into(),
        theirs::Instruction::Copy(_) => "COPY".into(),
        theirs::Instruction::Env(_) => "ENV".into(),
        theirs::Instruction::Misc(m) => m.instruction.content.to_ascii_uppercase(),
    }
}

fn their_command(e: &theirs::ShellOrExecExpr) -> Command {
    match e {
        theirs::ShellOrExecExpr::Shell(s) => Command::Shell(norm(&s.to_string())),
        theirs::ShellOrExecExpr::Exec(a) => {
            Command::Exec(a.as_str_vec().iter().map(|s| s.to_string()).collect())
        }
    }
}

fn our_command(c: &Command) -> Command {
    match c {
        Command::Shell(s) => Command::Shell(norm(s)),
        Command::Exec(v) => Command::Exec(v.clone()),
    }
}

#[test]
fn agrees_with_dockerfile_parser() {
    let mut compared = 0;
    for (name, text) in corpus() {
        let ours = corral_dockerfiles::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Ok(them) = theirs::Dockerfile::parse(&text) else {
            continue;
        };
        compared += 1;
        assert_eq!(
            ours.instructions.len(),
            them.instructions.len(),
            "{name}: instruction count"
        );
        for (o, t) in ours.instructions.iter().zip(&them.instructions) {
            let at = format!("{name}:{}", o.span.line);
            assert_eq!(o.kind.as_str(), kind_of(t).as_str(), "{at}: kind");
            match (&o.body, t) {
                (Body::From(f), theirs::Instruction::From(tf)) => {
                    assert_eq!(f.image, tf.image.content, "{at}: FROM image");
                    assert_eq!(
                        f.stage_name.as_ref().map(|w| w.text.clone()),
                        tf.alias.as_ref().map(|a| a.content.clone()),
                        "{at}: FROM alias"
                    );
                }
                (Body::Arg(a), theirs::Instruction::Arg(ta)) => {
                    assert_eq!(a[0].name, ta.name.content, "{at}: ARG name");
                    assert_eq!(
                        a[0].default,
                        ta.value.as_ref().map(|v| v.content.clone()),
                        "{at}: ARG default"
                    );
                }
                (Body::Label(l), theirs::Instruction::Label(tl)) => {
                    let ours: Vec<_> = l
                        .iter()
                        .map(|kv| (kv.key.clone(), kv.value.clone()))
                        .collect();
                    let theirs: Vec<_> = tl
                        .labels
                        .iter()
                        .map(|kv| (kv.name.content.clone(), kv.value.content.clone()))
                        .collect();
                    assert_eq!(ours, theirs, "{at}: LABEL");
                }
                (Body::Env(e), theirs::Instruction::Env(te)) => {
                    let ours: Vec<_> = e
                        .iter()
                        .map(|kv| (kv.key.clone(), norm(&kv.value)))
                        .collect();
                    let theirs: Vec<_> = te
                        .vars
                        .iter()
                        .map(|v| (v.key.content.clone(), norm(&v.value.to_string())))
                        .collect();
                    assert_eq!(ours, theirs, "{at}: ENV");
                }
                (Body::Run(r), theirs::Instruction::Run(tr)) if o.flags.is_empty() => {
                    assert_eq!(
                        our_command(&r.command),
                        their_command(&tr.expr),
                        "{at}: RUN"
                    );
                }
                (Body::Cmd(c), theirs::Instruction::Cmd(tc)) => {
                    assert_eq!(our_command(c), their_command(&tc.expr), "{at}: CMD");
                }
                (Body::Entrypoint(c), theirs::Instruction::Entrypoint(tc)) => {
                    assert_eq!(our_command(c), their_command(&tc.expr), "{at}: ENTRYPOINT");
                }
                (Body::Copy(c), theirs::Instruction::Copy(tc)) if o.flags.is_empty() => {
                    let ours: Vec<_> = c.sources.iter().map(|w| w.text.clone()).collect();
                    let theirs: Vec<_> = tc.sources.iter().map(|s| s.content.clone()).collect();
                    assert_eq!(ours, theirs, "{at}: COPY sources");
                    assert_eq!(
                        c.destination.text, tc.destination.content,
                        "{at}: COPY destination"
                    );
                }
                (_, theirs::Instruction::Misc(m))
                    if o.flags.is_empty() && o.kind != Kind::Healthcheck =>
                {
                    assert_eq!(
                        norm(&o.args),
                        norm(&m.arguments.to_string()),
                        "{at}: {} arguments",
                        o.kind.as_str()
                    );
                }
                _ => {}
            }
        }
    }
    assert!(
        compared >= 10,
        "only {compared} inputs were accepted by both parsers"
    );
}
