//! `# corral-ignore: ID[, ID]` (next instruction) and
//! `# corral-ignore-file: ID[, ID]` (whole file).

use super::Finding;
use crate::parse::Dockerfile;

fn ids(list: &str) -> Vec<String> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}

pub(crate) fn apply(df: &Dockerfile, src: &str, findings: &mut Vec<Finding>) {
    let mut file_ids = Vec::new();
    // (first line, last line, ids)
    let mut ranges: Vec<(usize, usize, Vec<String>)> = Vec::new();
    for c in &df.comments {
        if let Some(rest) = c.text.strip_prefix("corral-ignore-file:") {
            file_ids.extend(ids(rest));
        } else if let Some(rest) = c.text.strip_prefix("corral-ignore:") {
            let target = c.span.line + 1;
            if let Some(ins) = df.instructions.iter().find(|i| i.span.line == target) {
                let text = src.get(ins.span.start..ins.span.end).unwrap_or("");
                let last = ins.span.line + text.matches('\n').count();
                ranges.push((ins.span.line, last, ids(rest)));
            }
        }
    }
    if file_ids.is_empty() && ranges.is_empty() {
        return;
    }
    findings.retain(|f| {
        let id = f.rule.to_string();
        !file_ids.contains(&id)
            && !ranges
                .iter()
                .any(|(a, b, ids)| (*a..=*b).contains(&f.line) && ids.contains(&id))
    });
}
