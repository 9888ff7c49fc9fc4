use super::*;

fn p(s: &str) -> Dockerfile {
    parse(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn empty_and_comments_only() {
    assert!(p("").instructions.is_empty());
    assert!(p("\n\n# just a comment\n").instructions.is_empty());
}

#[test]
fn directives_and_escape() {
    let df = p("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN echo `\n  hi\n");
    assert_eq!(df.directive("syntax"), Some("docker/dockerfile:1"));
    assert_eq!(df.escape, '`');
    assert_eq!(df.instructions[1].args, "echo   hi");
    // a directive after a comment is a comment
    let df = p("# hello\n# escape=`\nFROM a\n");
    assert_eq!(df.escape, '\\');
    assert!(parse("# escape=x\nFROM a").is_err());
    assert!(parse("# escape=`\n# escape=\\\nFROM a").is_err());
    let df = p("# check=skip=JSONArgsRecommended\nFROM a\n");
    assert_eq!(df.directive("check"), Some("skip=JSONArgsRecommended"));
}

#[test]
fn continuations_skip_blank_and_comment_lines() {
    let df = p("RUN a \\\n\n  # inside\n  b \\\n\t\n  c\nCMD x\n");
    assert_eq!(df.instructions.len(), 2);
    assert_eq!(df.instructions[0].args, "a   b   c");
    assert_eq!(df.comments.len(), 1);
    assert_eq!(df.comments[0].text, "inside");
    assert_eq!(df.comments[0].span.line, 3);
    assert_eq!(df.instructions[0].span.line, 1);
    assert_eq!(df.instructions[1].span.line, 7);
    // trailing whitespace after the escape still continues
    assert_eq!(p("RUN a \\  \n b").instructions[0].args, "a  b");
    // continuation at end of file
    assert_eq!(p("RUN a \\").instructions[0].args, "a");
}

#[test]
fn crlf_and_bom() {
    let df = p("\u{feff}FROM a:1\r\nRUN x \\\r\n  y\r\n");
    assert_eq!(df.instructions.len(), 2);
    assert_eq!(df.instructions[1].args, "x   y");
    assert_eq!(df.instructions[0].span.line, 1);
    assert_eq!(df.instructions[0].span.column, 1);
}

#[test]
fn heredocs() {
    let src = "FROM a\nRUN <<EOF\necho hi\nEOF\nCOPY <<-\"A\" <<'B' /dst/\n\tone $X\n\tA\ntwo\nB\nCMD [\"x\"]\n";
    let df = p(src);
    assert_eq!(df.instructions.len(), 4);
    let run = &df.instructions[1];
    assert_eq!(run.heredocs.len(), 1);
    assert_eq!(run.heredocs[0].content, "echo hi\n");
    assert!(run.heredocs[0].expand);
    assert_eq!(run.span.line, 2);
    let copy = &df.instructions[2];
    assert_eq!(copy.heredocs.len(), 2);
    assert_eq!(copy.heredocs[0].delimiter, "A");
    assert!(copy.heredocs[0].strip_tabs);
    assert!(!copy.heredocs[0].expand);
    assert_eq!(copy.heredocs[0].content, "one $X\n");
    assert_eq!(copy.heredocs[1].content, "two\n");
    let Body::Copy(c) = &copy.body else { panic!() };
    assert_eq!(c.destination.text, "/dst/");
    assert_eq!(c.sources.len(), 2);
    assert_eq!(df.instructions[3].span.line, 10);
    let e = parse("RUN <<EOF\nno end\n").unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::UnterminatedHeredoc(_)));
    // heredoc after a continuation and with a redirection
    let df = p("RUN python3 \\\n  <<EOF > /out\nprint(1)\nEOF\n");
    assert_eq!(df.instructions[0].heredocs[0].content, "print(1)\n");
    // `<<<` is a here-string, not a heredoc
    assert!(p("RUN cat <<<hello\n").instructions[0].heredocs.is_empty());
}

#[test]
fn flags_are_structured() {
    let df = p("FROM --platform=$BUILDPLATFORM golang:1 AS build\n\
                RUN --mount=type=cache,target=/root/.cache --network=none go build\n\
                COPY --from=build --chown=1001:0 --chmod=755 --link --parents /a /b /dst\n\
                ADD --checksum=sha256:abc https://x/y.tar /z\n\
                HEALTHCHECK --interval=30s --start-period=5s CMD [\"curl\", \"-f\", \"http://localhost/\"]\n");
    let Body::From(f) = &df.instructions[0].body else {
        panic!()
    };
    assert_eq!(f.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(f.stage_name.as_ref().unwrap().text, "build");
    assert!(f.image_ref.is_some());
    let Body::Run(r) = &df.instructions[1].body else {
        panic!()
    };
    assert_eq!(r.mounts[0].kind, "cache");
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.command, Command::Shell("go build".into()));
    assert_eq!(df.instructions[1].flags[0].span.column, 5);
    let Body::Copy(c) = &df.instructions[2].body else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1001:0"));
    assert!(c.link && c.parents);
    assert_eq!(c.sources.len(), 2);
    let Body::Add(a) = &df.instructions[3].body else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    let hc = &df.instructions[4];
    assert_eq!(
        hc.flag("start-period").unwrap().value.as_deref(),
        Some("5s")
    );
    assert!(matches!(&hc.body, Body::Healthcheck(Some(Command::Exec(v))) if v.len() == 3));
}

#[test]
fn exec_and_shell_forms() {
    let df = p("CMD [\"a\", \"b c\"]\nENTRYPOINT exec x\nCMD [not json\nCOPY [\"a b\", \"/c\"]\nSHELL [\"/bin/bash\", \"-c\"]\n");
    assert_eq!(
        df.instructions[0].body_command(),
        Some(&Command::Exec(vec!["a".into(), "b c".into()]))
    );
    assert_eq!(
        df.instructions[1].body_command(),
        Some(&Command::Shell("exec x".into()))
    );
    assert_eq!(
        df.instructions[2].body_command(),
        Some(&Command::Shell("[not json".into()))
    );
    let Body::Copy(c) = &df.instructions[3].body else {
        panic!()
    };
    assert_eq!(c.sources[0].text, "a b");
    assert!(parse("SHELL /bin/sh").is_err());
}

#[test]
fn env_label_arg_forms() {
    let df = p("ENV A=1 B=\"two words\" C=x\\ y\nENV OLD value with spaces\nLABEL \"com.x\"=\"v\" name=n\nARG V=1 W\nUSER 1001:0\nEXPOSE 8080/tcp 53/udp\n");
    let Body::Env(e) = &df.instructions[0].body else {
        panic!()
    };
    assert_eq!(
        e.iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect::<Vec<_>>(),
        vec![("A", "1"), ("B", "two words"), ("C", "x y")]
    );
    let Body::Env(e) = &df.instructions[1].body else {
        panic!()
    };
    assert!(e[0].legacy);
    assert_eq!(e[0].value, "value with spaces");
    let Body::Label(l) = &df.instructions[2].body else {
        panic!()
    };
    assert_eq!(l[0].key, "com.x");
    assert_eq!(l[1].span.column, 19);
    let Body::Arg(a) = &df.instructions[3].body else {
        panic!()
    };
    assert_eq!(a[0].default.as_deref(), Some("1"));
    assert_eq!(a[1].default, None);
    let Body::User(u) = &df.instructions[4].body else {
        panic!()
    };
    assert_eq!((u.user.as_str(), u.group.as_deref()), ("1001", Some("0")));
    let Body::Expose(x) = &df.instructions[5].body else {
        panic!()
    };
    assert_eq!(x.len(), 2);
    assert!(parse("LABEL a=1 b").is_err());
    assert!(parse("ENV A").is_err());
}

#[test]
fn image_with_tag_and_digest() {
    let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let df = p(&format!("FROM quay.io/a/b:1.0@{d} AS x\n"));
    let Body::From(f) = &df.instructions[0].body else {
        panic!()
    };
    let r = f.image_ref.as_ref().unwrap();
    assert_eq!(r.tag.as_deref(), Some("1.0"));
    assert_eq!(r.digest.as_deref(), Some(d));
}

#[test]
fn onbuild_workdir_unknown() {
    let df = p("ONBUILD RUN make\nWORKDIR \"/opt/app root\"\nFROBNICATE x\nstopsignal SIGTERM\n");
    let Body::Onbuild(inner) = &df.instructions[0].body else {
        panic!()
    };
    assert_eq!(inner.kind, Kind::Run);
    assert!(matches!(&df.instructions[1].body, Body::Workdir(w) if w == "/opt/app root"));
    assert_eq!(df.instructions[2].kind, Kind::Unknown);
    assert_eq!(df.instructions[2].keyword, "FROBNICATE");
    assert_eq!(df.instructions[3].kind, Kind::Stopsignal);
    assert!(parse("ONBUILD FROM x").is_err());
}

#[test]
fn positions_on_continued_lines() {
    let df = p("FROM a\nLABEL a=1 \\\n      b=2\n");
    let Body::Label(l) = &df.instructions[1].body else {
        panic!()
    };
    assert_eq!((l[1].span.line, l[1].span.column), (3, 7));
    assert_eq!(df.instructions[1].span.line, 2);
    assert_eq!(df.instructions[1].keyword_span.column, 1);
}

#[test]
fn invalid_utf8_is_an_error() {
    let e = parse_bytes(b"FROM a\nRUN \xff\n").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::InvalidUtf8);
    assert_eq!(e.line, 2);
}

#[test]
fn errors_have_positions() {
    let e = parse("FROM a\nCOPY onlyone\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("COPY requires"));
    assert!(parse("FROM a b\n").is_err());
    assert!(parse("FROM\n").is_err());
}

/// The whole tree of a fixture, compared with its `.json` golden file;
/// regenerate with CORRAL_UPDATE_GOLDEN=1.
#[test]
fn golden_kitchen_sink() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/parse/fixtures");
    let src = std::fs::read_to_string(dir.join("kitchen-sink.Dockerfile")).unwrap();
    let got = serde_json::to_string_pretty(&p(&src)).unwrap() + "\n";
    let golden = dir.join("kitchen-sink.json");
    if std::env::var_os("CORRAL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        got == want,
        "{} differs; CORRAL_UPDATE_GOLDEN=1 regenerates it\n{got}",
        golden.display()
    );
}
