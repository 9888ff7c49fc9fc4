//! `help.md` to `help.1`: the man page the Fedora container guidelines ask
//! every image to carry at `/help.1` (`man -l /help.1` in the container).
//!
//! A small converter for the Markdown the library's help files use:
//! `#`/`##` headings, paragraphs, `-`/`*` lists, fenced code blocks and
//! inline `code`. The pages are checked in beside `help.md` and kept
//! current by a test, so a build needs no converter.

/// The roff of `markdown`, titled `title` (the image's name).
///
/// ```
/// let page = corral_dockerfiles::help::man_page("corral/httpd", "# corral/httpd\n\nServes `/var/www`.\n");
/// assert!(page.starts_with(".TH \"CORRAL/HTTPD\" \"1\""));
/// assert!(page.contains("Serves \\fB/var/www\\fR.\n"));
/// ```
pub fn man_page(title: &str, markdown: &str) -> String {
    let mut out = format!(
        ".TH \"{}\" \"1\" \"\" \"corral\" \"Container Image Pages\"\n",
        title.to_uppercase().replace('"', "")
    );
    let mut in_code = false;
    let mut named = false;
    let mut para_open = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            if in_code {
                out.push_str(".fi\n.RE\n");
            } else {
                out.push_str(".PP\n.RS 4\n.nf\n");
            }
            in_code = !in_code;
            para_open = false;
            continue;
        }
        if in_code {
            out.push_str(&escape_line(line));
            out.push('\n');
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            para_open = false;
            continue;
        }
        if let Some(h) = trimmed.strip_prefix("# ") {
            // the page's title line: NAME, as man and whatis expect
            if !named {
                out.push_str(&format!(".SH NAME\n{}\n", escape_line(&inline(h))));
                named = true;
            } else {
                out.push_str(&format!(".SH \"{}\"\n", heading(h)));
            }
            para_open = false;
        } else if let Some(h) = trimmed
            .strip_prefix("## ")
            .or_else(|| trimmed.strip_prefix("### "))
        {
            out.push_str(&format!(".SH \"{}\"\n", heading(h)));
            para_open = false;
        } else if let Some(item) = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "))
        {
            out.push_str(".IP \\(bu 2\n");
            out.push_str(&escape_line(&inline(item)));
            out.push('\n');
            para_open = true;
        } else {
            if !para_open {
                out.push_str(".PP\n");
                para_open = true;
            }
            out.push_str(&escape_line(&inline(trimmed)));
            out.push('\n');
        }
    }
    if in_code {
        out.push_str(".fi\n.RE\n");
    }
    out
}

fn heading(h: &str) -> String {
    h.trim().to_uppercase().replace('"', "'")
}

/// Backslashes and roff's control characters at the start of a line.
fn escape_line(line: &str) -> String {
    // font escapes made by `inline` are kept: they are the only `\f`
    let escaped = line
        .replace('\\', "\\e")
        .replace("\\efB", "\\fB")
        .replace("\\efR", "\\fR")
        .replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// `code` to bold; `**strong**` to bold.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("\\fB{part}\\fR"));
        } else {
            let mut bold = false;
            for (j, piece) in part.split("**").enumerate() {
                if j > 0 {
                    out.push_str(if bold { "\\fR" } else { "\\fB" });
                    bold = !bold;
                }
                out.push_str(piece);
            }
            if bold {
                out.push_str("\\fR");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn headings_lists_code_and_escapes() {
        let md = "# corral/x\n\nRuns as `1001`.\nSecond line.\n\n## Running\n\n- one\n- **two**\n\n```\npodman run -it .x\n```\n\n.dot starts\n";
        let page = man_page("corral/x", md);
        assert_eq!(
            page,
            ".TH \"CORRAL/X\" \"1\" \"\" \"corral\" \"Container Image Pages\"\n\
             .SH NAME\ncorral/x\n\
             .PP\nRuns as \\fB1001\\fR.\nSecond line.\n\
             .SH \"RUNNING\"\n\
             .IP \\(bu 2\none\n.IP \\(bu 2\n\\fBtwo\\fR\n\
             .PP\n.RS 4\n.nf\npodman run \\-it .x\n.fi\n.RE\n\
             .PP\n\\&.dot starts\n"
        );
    }

    /// Every image's `help.1` is its `help.md` converted; regenerate with
    /// CORRAL_UPDATE_DOCS=1. man renders each without a warning.
    #[test]
    fn library_help_pages_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dockerfiles");
        let update = std::env::var_os("CORRAL_UPDATE_DOCS").is_some();
        let mut seen = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let dir = entry.unwrap().path();
            let md = dir.join("help.md");
            if !md.is_file() {
                continue;
            }
            let name = format!("corral/{}", dir.file_name().unwrap().to_string_lossy());
            let want = man_page(&name, &std::fs::read_to_string(&md).unwrap());
            let path = dir.join("help.1");
            if update {
                std::fs::write(&path, &want).unwrap();
            } else {
                assert!(
                    std::fs::read_to_string(&path).unwrap_or_default() == want,
                    "{} is stale; run CORRAL_UPDATE_DOCS=1 cargo test -p corral-dockerfiles help",
                    path.display()
                );
            }
            let out = std::process::Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(&path)
                .output()
                .expect("groff is installed");
            assert!(out.status.success(), "{}", path.display());
            assert!(
                out.stderr.is_empty(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            seen += 1;
        }
        assert!(seen >= 18, "{seen} help pages");
    }
}
