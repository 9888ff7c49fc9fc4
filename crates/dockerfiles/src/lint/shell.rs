//! Just enough shell to read RUN lines: split a script into simple
//! commands on `&&`, `||`, `;`, `|`, `&` and newlines, then into words.

use crate::parse::{Command, Instruction};

/// The simple commands of a RUN instruction (heredoc bodies included), each
/// as unquoted words with leading `VAR=value` assignments dropped.
pub(crate) fn run_commands(ins: &Instruction, escape: char) -> Vec<Vec<String>> {
    match ins.body_command() {
        Some(Command::Exec(v)) => vec![v.clone()],
        Some(Command::Shell(s)) => {
            let mut cmds = commands(s, escape);
            for h in &ins.heredocs {
                cmds.extend(commands(&h.content, '\\'));
            }
            cmds
        }
        None => Vec::new(),
    }
}

pub(crate) fn commands(script: &str, escape: char) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // the command being read is script[start..]: every character but an
    // unquoted separator belongs to it
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in script.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == escape && quote != Some('\'') {
            escaped = true;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if matches!(c, '&' | '|' | ';' | '\n' | '(' | ')' | '{' | '}') => {
                push_command(&mut out, &script[start..i], escape);
                start = i + c.len_utf8();
            }
            None => {}
        }
    }
    push_command(&mut out, &script[start..], escape);
    out
}

fn push_command(out: &mut Vec<Vec<String>>, text: &str, escape: char) {
    let words: Vec<String> = crate::parse::words_of(text, escape)
        .into_iter()
        .skip_while(|w| {
            w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .collect();
    if !words.is_empty() {
        out.push(words);
    }
}

/// The program a command runs, past `sudo`, `env`, `exec`, `time`, `command`.
pub(crate) fn program(cmd: &[String]) -> (usize, Option<&str>) {
    let mut i = 0;
    while let Some(w) = cmd.get(i) {
        let base = w.rsplit('/').next().unwrap_or(w);
        match base {
            "sudo" | "env" | "exec" | "time" | "command" | "nohup" => {
                i += 1;
                // options of the wrapper
                while cmd.get(i).is_some_and(|w| w.starts_with('-')) {
                    i += 1;
                }
            }
            _ => return (i, Some(base)),
        }
    }
    (i, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_operators_outside_quotes() {
        let c = commands("A=1 dnf -y install x && echo 'a && b' ; cd /x | tee", '\\');
        assert_eq!(c.len(), 4);
        assert_eq!(c[0], vec!["dnf", "-y", "install", "x"]);
        assert_eq!(c[1], vec!["echo", "a && b"]);
        assert_eq!(c[2], vec!["cd", "/x"]);
    }

    #[test]
    fn program_skips_wrappers() {
        let cmd: Vec<String> = ["sudo", "-E", "/usr/bin/dnf", "install"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(program(&cmd), (2, Some("dnf")));
    }
}
