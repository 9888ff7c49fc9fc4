//! The benchmarks: `scripts/bench-AREA.sh`, one script per area over the
//! shared helpers in `scripts/lib/bench.sh`; docs/benchmarks.md has their
//! numbers and how to read them.

use crate::workspace::{self, Workspace};
use crate::Failure;

/// Prints each area with its section title in docs/benchmarks.md.
pub fn list(ws: &Workspace) -> Result<(), Failure> {
    let areas = areas(ws)?;
    println!("cargo xtask bench AREA [ARGS...] runs scripts/bench-AREA.sh (docs/benchmarks.md):");
    let width = areas.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    for (area, title) in &areas {
        println!("  {area:width$}  {title}");
    }
    Ok(())
}

/// Runs `scripts/bench-AREA.sh ARGS…`; its exit code.
pub fn run(ws: &Workspace, area: &str, args: &[String]) -> Result<(), Failure> {
    let known = areas(ws)?;
    if !known.iter().any(|(a, _)| a == area) {
        let names: Vec<&str> = known.iter().map(|(a, _)| a.as_str()).collect();
        return Err(Failure::usage(format!(
            "no benchmark area {area}; the areas: {}",
            names.join(", ")
        )));
    }
    let mut cmd = ws.command("bash");
    cmd.arg(format!("scripts/bench-{area}.sh")).args(args);
    let status = workspace::status(&mut cmd)?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure {
            message: format!("bench {area} failed"),
            code: workspace::exit_code(status),
        })
    }
}

/// The areas (a `scripts/bench-AREA.sh` each), sorted, with their titles.
fn areas(ws: &Workspace) -> Result<Vec<(String, String)>, Failure> {
    let scripts = ws.root.join("scripts");
    let doc = std::fs::read_to_string(ws.root.join("docs/benchmarks.md")).unwrap_or_default();
    let mut areas = Vec::new();
    let dir = std::fs::read_dir(&scripts)
        .map_err(|e| Failure::usage(format!("reading {}: {e}", scripts.display())))?;
    for entry in dir {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(area) = name
            .strip_prefix("bench-")
            .and_then(|n| n.strip_suffix(".sh"))
        {
            let title = title(&doc, area).unwrap_or_default();
            areas.push((area.to_string(), title));
        }
    }
    areas.sort();
    Ok(areas)
}

/// The title of the section of docs/benchmarks.md on AREA: its heading
/// `## TITLE (`scripts/bench-AREA.sh`)`.
fn title(doc: &str, area: &str) -> Option<String> {
    let script = format!("(`scripts/bench-{area}.sh`)");
    doc.lines()
        .filter_map(|l| l.strip_prefix("## "))
        .find_map(|h| h.strip_suffix(&script))
        .map(|t| t.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_areas_title_is_its_heading_in_the_benchmarks_page() {
        let doc = "# Benchmarks\n\n## Start-up (`scripts/bench-startup.sh`)\n\ntext\n\
            ## Mirror soak (`scripts/soak-mirror.sh`)\n";
        assert_eq!(title(doc, "startup").as_deref(), Some("Start-up"));
        assert_eq!(title(doc, "soak"), None);
        assert_eq!(title(doc, "start"), None);
    }

    #[test]
    fn lists_the_checkouts_areas_and_refuses_others() {
        let ws = Workspace::locate().unwrap();
        let areas = areas(&ws).unwrap();
        let names: Vec<&str> = areas.iter().map(|(a, _)| a.as_str()).collect();
        assert!(
            names.contains(&"lint") && names.contains(&"pull"),
            "{names:?}"
        );
        // every benchmark script has its section in docs/benchmarks.md
        let untitled: Vec<_> = areas.iter().filter(|(_, t)| t.is_empty()).collect();
        assert!(
            untitled.is_empty(),
            "no section in docs/benchmarks.md: {untitled:?}"
        );
        let e = run(&ws, "nope", &[]).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(
            e.message.contains("lint") && e.message.contains("nope"),
            "{}",
            e.message
        );
    }
}
