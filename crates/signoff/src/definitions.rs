//! `signoff validate`, `signoff schema`, `signoff workflows`: the definitions, without a log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use signoff_core::workflow::validate::check;
use signoff_core::workflow::{Definition, Problem, parse::parse, schema};
use signoff_runtime::Definitions;
use signoff_runtime::definitions::{cross_check, definition_files};

use crate::Global;

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// Files or folders of definitions (default: the workflows folder). A folder is also
    /// checked as a whole: workflows it starts or is triggered by must be in it.
    paths: Vec<PathBuf>,
}

/// The definition files named by `paths`: files as given, folders' `*.yaml`/`*.yml` sorted.
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            out.extend(definition_files(path)?.into_iter().map(|p| (p, true)));
        } else if path.exists() {
            out.push((path.clone(), false));
        } else {
            anyhow::bail!("{}: no such file or folder", path.display());
        }
    }
    Ok(out)
}

fn problem_json(p: &Problem) -> serde_json::Value {
    json!({
        "file": p.file,
        "line": p.at.line,
        "column": p.at.column,
        "message": p.message,
        "hint": p.hint,
    })
}

pub fn validate(g: &Global, args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![g.workflows.clone()]
    } else {
        args.paths.clone()
    };
    let files = files(&paths)?;
    let mut problems = Vec::new();
    let mut in_folders: Vec<(String, Definition)> = Vec::new();
    for (path, in_folder) in &files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        // Parsed once: checked alone, then with the rest of its folder.
        match parse(&name, &text) {
            Err(problem) => problems.push(problem),
            Ok(def) => {
                let found = check(&name, &def).problems;
                if found.is_empty() && *in_folder {
                    in_folders.push((name, def));
                }
                problems.extend(found);
            }
        }
    }
    let all: Vec<(&str, &Definition)> = in_folders.iter().map(|(f, d)| (f.as_str(), d)).collect();
    problems.extend(cross_check(&all));
    if g.json {
        let list: Vec<_> = problems.iter().map(problem_json).collect();
        outln!(
            "{}",
            json!({"files": files.len(), "problems": list, "valid": problems.is_empty()})
        )?;
    } else if problems.is_empty() {
        outln!("{} definition file(s) checked: no problems", files.len())?;
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!(
            "{} problem(s) in {} definition file(s)",
            problems.len(),
            files.len()
        );
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_NO)
    })
}

pub fn schema() -> anyhow::Result<ExitCode> {
    outln!("{}", serde_json::to_string_pretty(&schema::json_schema())?)?;
    Ok(ExitCode::SUCCESS)
}

pub fn list(g: &Global) -> anyhow::Result<ExitCode> {
    let definitions = Definitions::load_dir(Path::new(&g.workflows))?;
    let list = definitions.list();
    if g.json {
        let rows: Vec<_> = list
            .iter()
            .map(|l| {
                json!({
                    "id": l.definition.id.value,
                    "title": l.definition.title,
                    "hash": l.hash,
                    "steps": l.definition.steps.len(),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string(&rows)?)?;
    } else if list.is_empty() {
        outln!("no workflows in {}", g.workflows.display())?;
    } else {
        for l in &list {
            outln!(
                "{:<28} {:<48} {} steps  {}",
                l.definition.id.value,
                l.definition.title,
                l.definition.steps.len(),
                &l.hash[..l.hash.len().min(19)]
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
