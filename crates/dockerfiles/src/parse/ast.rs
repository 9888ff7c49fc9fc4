//! The syntax tree: what [`crate::parse`] returns.

use super::image_ref::ImageRef;
use super::span::Span;
use serde::Serialize;

/// A parsed Dockerfile.
#[derive(Debug, Clone, Serialize)]
pub struct Dockerfile {
    /// Parser directives at the top (`# syntax=`, `# escape=`, `# check=`).
    pub directives: Vec<Directive>,
    /// The escape character, `\` unless `# escape=` chose `` ` ``.
    pub escape: char,
    pub instructions: Vec<Instruction>,
    /// Every comment line, including those inside continuations.
    pub comments: Vec<Comment>,
}

impl Dockerfile {
    /// The value of a parser directive, by lowercase name.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }

    /// The instructions split into build stages. Instructions before the
    /// first FROM (global ARGs) are returned separately.
    pub fn stages(&self) -> (Vec<&Instruction>, Vec<Stage<'_>>) {
        let mut global = Vec::new();
        let mut stages: Vec<Stage<'_>> = Vec::new();
        for ins in &self.instructions {
            match &ins.body {
                Body::From(from) => stages.push(Stage {
                    index: stages.len(),
                    from,
                    from_instruction: ins,
                    instructions: Vec::new(),
                }),
                _ => match stages.last_mut() {
                    Some(s) => s.instructions.push(ins),
                    None => global.push(ins),
                },
            }
        }
        (global, stages)
    }
}

/// One build stage: a FROM and what follows it up to the next FROM.
#[derive(Debug, Clone)]
pub struct Stage<'a> {
    pub index: usize,
    pub from: &'a From,
    pub from_instruction: &'a Instruction,
    pub instructions: Vec<&'a Instruction>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Directive {
    /// Lowercase.
    pub name: String,
    pub value: String,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comment {
    /// The text after `#`, trimmed.
    pub text: String,
    pub span: Span,
}

/// The instruction keywords of the Dockerfile reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Kind {
    From,
    Run,
    Cmd,
    Entrypoint,
    Shell,
    Copy,
    Add,
    Env,
    Label,
    Arg,
    Expose,
    User,
    Workdir,
    Volume,
    Healthcheck,
    Stopsignal,
    Onbuild,
    Maintainer,
    /// Anything else; the keyword is kept in [`Instruction::keyword`].
    Unknown,
}

impl Kind {
    pub fn from_keyword(k: &str) -> Self {
        match k.to_ascii_uppercase().as_str() {
            "FROM" => Kind::From,
            "RUN" => Kind::Run,
            "CMD" => Kind::Cmd,
            "ENTRYPOINT" => Kind::Entrypoint,
            "SHELL" => Kind::Shell,
            "COPY" => Kind::Copy,
            "ADD" => Kind::Add,
            "ENV" => Kind::Env,
            "LABEL" => Kind::Label,
            "ARG" => Kind::Arg,
            "EXPOSE" => Kind::Expose,
            "USER" => Kind::User,
            "WORKDIR" => Kind::Workdir,
            "VOLUME" => Kind::Volume,
            "HEALTHCHECK" => Kind::Healthcheck,
            "STOPSIGNAL" => Kind::Stopsignal,
            "ONBUILD" => Kind::Onbuild,
            "MAINTAINER" => Kind::Maintainer,
            _ => Kind::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::From => "FROM",
            Kind::Run => "RUN",
            Kind::Cmd => "CMD",
            Kind::Entrypoint => "ENTRYPOINT",
            Kind::Shell => "SHELL",
            Kind::Copy => "COPY",
            Kind::Add => "ADD",
            Kind::Env => "ENV",
            Kind::Label => "LABEL",
            Kind::Arg => "ARG",
            Kind::Expose => "EXPOSE",
            Kind::User => "USER",
            Kind::Workdir => "WORKDIR",
            Kind::Volume => "VOLUME",
            Kind::Healthcheck => "HEALTHCHECK",
            Kind::Stopsignal => "STOPSIGNAL",
            Kind::Onbuild => "ONBUILD",
            Kind::Maintainer => "MAINTAINER",
            Kind::Unknown => "UNKNOWN",
        }
    }

    /// The flags BuildKit accepts for this instruction.
    pub fn known_flags(self) -> &'static [&'static str] {
        match self {
            Kind::From => &["platform"],
            Kind::Run => &["mount", "network", "security"],
            Kind::Copy => &["from", "chown", "chmod", "link", "parents", "exclude"],
            Kind::Add => &[
                "chown",
                "chmod",
                "link",
                "parents",
                "exclude",
                "checksum",
                "keep-git-dir",
                "unpack",
            ],
            Kind::Healthcheck => &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ],
            _ => &[],
        }
    }
}

/// One instruction, with its continuation lines joined.
#[derive(Debug, Clone, Serialize)]
pub struct Instruction {
    pub kind: Kind,
    /// The keyword as written (case kept).
    pub keyword: String,
    pub keyword_span: Span,
    /// From the keyword to the end of its last line (heredoc bodies included).
    pub span: Span,
    /// Leading `--name[=value]` options.
    pub flags: Vec<Flag>,
    /// The arguments after the flags, continuations joined, unexpanded.
    pub args: String,
    pub args_span: Span,
    pub heredocs: Vec<Heredoc>,
    pub body: Body,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub name: String,
    /// `None` for a bare `--link`.
    pub value: Option<String>,
    pub span: Span,
}

impl Flag {
    /// A boolean flag: bare, `=true` or `=false`.
    pub fn is_true(&self) -> bool {
        !matches!(self.value.as_deref(), Some("false"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    pub delimiter: String,
    /// `<<-`: leading tabs were removed from the body and terminator.
    pub strip_tabs: bool,
    /// False when the delimiter was quoted: no variable expansion in the body.
    pub expand: bool,
    /// The body, each line ending in `\n`.
    pub content: String,
    pub span: Span,
}

/// A word of the arguments, unexpanded, with its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// `key=value` of ENV and LABEL (quotes removed, variables not expanded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written `ENV key value` (the legacy form).
    pub legacy: bool,
    pub span: Span,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
    pub span: Span,
}

/// Shell form (run by the SHELL) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// As written, unexpanded.
    pub image: String,
    pub image_span: Span,
    /// Parsed when the image has no variables and is a valid reference.
    pub image_ref: Option<ImageRef>,
    /// `AS name`.
    pub stage_name: Option<Word>,
    pub platform: Option<String>,
}

/// `--mount=type=cache,target=/root/.cache,...`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// `bind` when not given.
    pub kind: String,
    pub options: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: Command,
    pub mounts: Vec<Mount>,
    pub network: Option<String>,
    pub security: Option<String>,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    pub sources: Vec<Word>,
    pub destination: Word,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub user: String,
    pub group: Option<String>,
}

/// The interpreted arguments of an instruction.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Body {
    From(From),
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Copy(Copy),
    Add(Copy),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Expose(Vec<Word>),
    User(User),
    Workdir(String),
    Volume(Vec<String>),
    /// `None` for `HEALTHCHECK NONE`.
    Healthcheck(Option<Command>),
    Stopsignal(String),
    Onbuild(Box<Instruction>),
    Maintainer(String),
    Unknown,
}

impl Instruction {
    /// The command of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD.
    pub fn body_command(&self) -> Option<&Command> {
        match &self.body {
            Body::Run(r) => Some(&r.command),
            Body::Cmd(c) | Body::Entrypoint(c) => Some(c),
            Body::Healthcheck(c) => c.as_ref(),
            _ => None,
        }
    }
}
