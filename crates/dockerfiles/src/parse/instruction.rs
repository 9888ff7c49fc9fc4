//! Interpreting one logical instruction line: keyword, flags, heredoc
//! markers and the per-instruction argument forms.

use super::ast::*;
use super::image_ref::ImageRef;
use super::span::{SourceMap, Span};
use super::words::{split_fields, split_flags, split_words, unquote};
use super::{ParseError, ParseErrorKind, Parser};

struct Ctx<'p, 'a> {
    parser: &'p Parser<'a>,
    map: &'p SourceMap,
}

impl Ctx<'_, '_> {
    fn span(&self, start: usize, end: usize) -> Span {
        self.parser
            .span(self.map.to_source(start), self.map.to_source(end))
    }

    fn error(&self, at: usize, msg: String) -> ParseError {
        self.parser
            .error(self.map.to_source(at), ParseErrorKind::Arguments(msg))
    }
}

/// Builds the instruction in `text`, which starts at `base` in the logical
/// line mapped by `map`. Heredoc bodies are read by the caller.
pub(super) fn build(
    parser: &Parser<'_>,
    text: &str,
    base: usize,
    map: &SourceMap,
    allow_heredoc: bool,
) -> Result<Instruction, ParseError> {
    let cx = Ctx { parser, map };
    let kw_len = text.find(char::is_whitespace).unwrap_or(text.len());
    let keyword = &text[..kw_len];
    let kind = Kind::from_keyword(keyword);
    let after_kw = &text[kw_len..];
    let args_off = kw_len + (after_kw.len() - after_kw.trim_start().len());
    let all_args = text[args_off..].trim_end();

    // ONBUILD's argument is an instruction of its own, flags included
    let (raw_flags, rest_off) = if kind == Kind::Onbuild {
        (Vec::new(), 0)
    } else {
        split_flags(all_args)
    };
    let flags: Vec<Flag> = raw_flags
        .into_iter()
        .map(|(name, value, s, e)| Flag {
            name,
            value,
            span: cx.span(base + args_off + s, base + args_off + e),
        })
        .collect();
    let args = &all_args[rest_off..];
    let args_base = base + args_off + rest_off;

    let mut heredocs = Vec::new();
    if allow_heredoc
        && matches!(kind, Kind::Run | Kind::Copy | Kind::Add)
        && !args.starts_with('[')
        && args.contains("<<")
    {
        for w in split_words(args, parser.escape()) {
            if let Some((delimiter, strip_tabs, expand)) = heredoc_marker(w.text, parser.escape()) {
                heredocs.push(Heredoc {
                    delimiter,
                    strip_tabs,
                    expand,
                    content: String::new(),
                    span: cx.span(args_base + w.start, args_base + w.end),
                });
            }
        }
    }

    let body = body(&cx, kind, keyword, args, args_base, &flags)?;
    let keyword_span = cx.span(base, base + kw_len);
    let args_span = cx.span(args_base, args_base + args.len());
    Ok(Instruction {
        kind,
        keyword: keyword.to_string(),
        keyword_span,
        span: cx.span(base, base + text.trim_end().len()),
        flags,
        args: args.to_string(),
        args_span,
        heredocs,
        body,
    })
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`, optionally after a file
/// descriptor number. Returns (delimiter, strip tabs, expand).
fn heredoc_marker(word: &str, escape: char) -> Option<(String, bool, bool)> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let w = w.strip_prefix("<<")?;
    let (w, strip) = match w.strip_prefix('-') {
        Some(w) => (w, true),
        None => (w, false),
    };
    if w.is_empty() || w.contains('<') {
        return None;
    }
    let quoted = w.contains(['"', '\'']);
    let delimiter = unquote(w, escape);
    if delimiter.is_empty() {
        return None;
    }
    Some((delimiter, strip, !quoted))
}

fn command(args: &str) -> Command {
    if args.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(args) {
            return Command::Exec(v);
        }
    }
    Command::Shell(args.to_string())
}

fn flag_value(flags: &[Flag], name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|f| f.name == name)
        .and_then(|f| f.value.clone())
}

fn flag_bool(flags: &[Flag], name: &str) -> bool {
    flags
        .iter()
        .rev()
        .find(|f| f.name == name)
        .is_some_and(Flag::is_true)
}

fn words(cx: &Ctx<'_, '_>, args: &str, base: usize, json: bool) -> Vec<Word> {
    if json && args.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(args) {
            let span = cx.span(base, base + args.len());
            return v.into_iter().map(|text| Word { text, span }).collect();
        }
    }
    split_fields(args)
        .into_iter()
        .map(|w| Word {
            text: w.text.to_string(),
            span: cx.span(base + w.start, base + w.end),
        })
        .collect()
}

fn body(
    cx: &Ctx<'_, '_>,
    kind: Kind,
    keyword: &str,
    args: &str,
    base: usize,
    flags: &[Flag],
) -> Result<Body, ParseError> {
    let kw = keyword.to_ascii_uppercase();
    let need = |ok: bool, what: &str| -> Result<(), ParseError> {
        if ok {
            Ok(())
        } else {
            Err(cx.error(base, format!("{kw} requires {what}")))
        }
    };
    let escape = cx.parser.escape();
    Ok(match kind {
        Kind::From => {
            let w = words(cx, args, base, false);
            let ok = w.len() == 1 || (w.len() == 3 && w[1].text.eq_ignore_ascii_case("as"));
            need(ok, "either one argument or three (image AS name)")?;
            let image = w[0].text.clone();
            let image_ref = if image.contains('$') {
                None
            } else {
                ImageRef::parse(&image).ok()
            };
            Body::From(From {
                image_span: w[0].span,
                image,
                image_ref,
                stage_name: w.get(2).cloned(),
                platform: flag_value(flags, "platform"),
            })
        }
        Kind::Run => {
            need(!args.is_empty(), "at least one argument")?;
            let mounts = flags
                .iter()
                .filter(|f| f.name == "mount")
                .map(|f| parse_mount(f.value.as_deref().unwrap_or("")))
                .collect();
            Body::Run(Run {
                command: command(args),
                mounts,
                network: flag_value(flags, "network"),
                security: flag_value(flags, "security"),
            })
        }
        Kind::Cmd => Body::Cmd(command(args)),
        Kind::Entrypoint => Body::Entrypoint(command(args)),
        Kind::Shell => match serde_json::from_str::<Vec<String>>(args) {
            Ok(v) if !v.is_empty() => Body::Shell(v),
            _ => return Err(cx.error(base, "SHELL requires a JSON array of strings".into())),
        },
        Kind::Copy | Kind::Add => {
            let mut w = words(cx, args, base, true);
            need(
                w.len() >= 2,
                "at least two arguments (source and destination)",
            )?;
            let destination = w.pop().unwrap_or_else(|| Word {
                text: String::new(),
                span: Span::default(),
            });
            let copy = Copy {
                sources: w,
                destination,
                from: flag_value(flags, "from"),
                chown: flag_value(flags, "chown"),
                chmod: flag_value(flags, "chmod"),
                link: flag_bool(flags, "link"),
                parents: flag_bool(flags, "parents"),
                exclude: flags
                    .iter()
                    .filter(|f| f.name == "exclude")
                    .filter_map(|f| f.value.clone())
                    .collect(),
                checksum: flag_value(flags, "checksum"),
            };
            if kind == Kind::Copy {
                Body::Copy(copy)
            } else {
                Body::Add(copy)
            }
        }
        Kind::Env | Kind::Label => {
            let pairs = name_values(cx, &kw, args, base, escape)?;
            need(!pairs.is_empty(), "at least one argument")?;
            if kind == Kind::Env {
                Body::Env(pairs)
            } else {
                Body::Label(pairs)
            }
        }
        Kind::Arg => {
            let w = split_words(args, escape);
            need(!w.is_empty(), "at least one argument")?;
            Body::Arg(
                w.into_iter()
                    .map(|w| {
                        let (name, default) = match w.text.split_once('=') {
                            Some((n, d)) => (n, Some(unquote(d, escape))),
                            None => (w.text, None),
                        };
                        ArgDecl {
                            name: name.to_string(),
                            default,
                            span: cx.span(base + w.start, base + w.end),
                        }
                    })
                    .collect(),
            )
        }
        Kind::Expose => {
            let w = words(cx, args, base, false);
            need(!w.is_empty(), "at least one argument")?;
            Body::Expose(w)
        }
        Kind::User => {
            let w = split_fields(args);
            need(w.len() == 1, "exactly one argument")?;
            let (user, group) = match w[0].text.split_once(':') {
                Some((u, g)) => (u.to_string(), Some(g.to_string())),
                None => (w[0].text.to_string(), None),
            };
            Body::User(User { user, group })
        }
        Kind::Workdir => {
            need(!args.is_empty(), "exactly one argument")?;
            Body::Workdir(unquote(args, escape))
        }
        Kind::Volume => {
            let w = words(cx, args, base, true);
            need(!w.is_empty(), "at least one argument")?;
            Body::Volume(w.into_iter().map(|w| w.text).collect())
        }
        Kind::Healthcheck => {
            let kw_len = args.find(char::is_whitespace).unwrap_or(args.len());
            match args[..kw_len].to_ascii_uppercase().as_str() {
                "NONE" => {
                    need(args[kw_len..].trim().is_empty(), "no arguments after NONE")?;
                    Body::Healthcheck(None)
                }
                "CMD" => {
                    let cmd = args[kw_len..].trim_start();
                    need(!cmd.is_empty(), "a command after CMD")?;
                    Body::Healthcheck(Some(command(cmd)))
                }
                _ => return Err(cx.error(base, "HEALTHCHECK requires CMD or NONE".into())),
            }
        }
        Kind::Stopsignal => {
            let w = split_fields(args);
            need(w.len() == 1, "exactly one argument")?;
            Body::Stopsignal(w[0].text.to_string())
        }
        Kind::Onbuild => {
            need(!args.is_empty(), "an instruction")?;
            let inner = build(cx.parser, args, base, cx.map, false)?;
            if matches!(inner.kind, Kind::Onbuild | Kind::From | Kind::Maintainer) {
                return Err(cx.error(
                    base,
                    format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        inner.kind.as_str()
                    ),
                ));
            }
            Body::Onbuild(Box::new(inner))
        }
        Kind::Maintainer => {
            need(!args.is_empty(), "exactly one argument")?;
            Body::Maintainer(args.to_string())
        }
        Kind::Unknown => Body::Unknown,
    })
}

/// ENV and LABEL: `k=v k2="v 2"`, or the legacy single `k v`.
fn name_values(
    cx: &Ctx<'_, '_>,
    kw: &str,
    args: &str,
    base: usize,
    escape: char,
) -> Result<Vec<KeyValue>, ParseError> {
    let words = split_words(args, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.text.contains('=') {
        // legacy `ENV key value`: the value is the rest of the line
        let value = args[first.end..].trim();
        if value.is_empty() {
            return Err(cx.error(base, format!("{kw} {} needs a value", first.text)));
        }
        return Ok(vec![KeyValue {
            key: unquote(first.text, escape),
            value: unquote(value, escape),
            legacy: true,
            span: cx.span(base, base + args.len()),
        }]);
    }
    words
        .iter()
        .map(|w| {
            let Some((k, v)) = w.text.split_once('=') else {
                return Err(cx.error(
                    base + w.start,
                    format!(
                        "{kw}: can't find = in {:?}, must be of the form name=value",
                        w.text
                    ),
                ));
            };
            let key = unquote(k, escape);
            if key.is_empty() {
                return Err(cx.error(base + w.start, format!("{kw} names can not be blank")));
            }
            Ok(KeyValue {
                key,
                value: unquote(v, escape),
                legacy: false,
                span: cx.span(base + w.start, base + w.end),
            })
        })
        .collect()
}

fn parse_mount(value: &str) -> Mount {
    let mut kind = "bind".to_string();
    let mut options = Vec::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("type", t)) => kind = t.to_string(),
            Some((k, v)) => options.push((k.to_string(), Some(v.to_string()))),
            None => options.push((part.to_string(), None)),
        }
    }
    Mount { kind, options }
}
