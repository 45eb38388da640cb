//! How `lmi validate` (and every command that loads lmi.toml) shows problems: miette diagnostics
//! for people, a JSON document for scripts.

use std::path::Path;

use serde::Serialize;

use crate::config::diagnostic::{JsonProblem, Located};
use crate::config::{LoadError, Loaded, Problem, Severity, SourceFile};

/// Renders one problem as miette does on a terminal, without colour when `color` is false.
pub fn render(problem: &Problem, file: &SourceFile, color: bool, width: usize) -> String {
    let mut out = String::new();
    let located = Located::new(problem.clone(), file);
    // Writing into a String can't fail.
    let _ = super::handler(color, width).render_report(&mut out, &located);
    out
}

/// Problems on stderr, then a one-line verdict (stdout when valid, stderr when not).
pub fn print_text(loaded: &Loaded) {
    let color = super::color();
    let width = super::width();
    for problem in &loaded.problems {
        eprintln!("{}", render(problem, &loaded.file, color, width));
    }
    let errors = loaded.errors().count();
    let warnings = loaded.warnings().count();
    match &loaded.stack {
        Some(stack) => println!(
            "{} is valid: stack `{}`, {} capacity provider{}, {} function{}, {} test{}{}",
            loaded.file.name,
            stack.name,
            stack.capacity_providers.len(),
            plural(stack.capacity_providers.len()),
            stack.functions.len(),
            plural(stack.functions.len()),
            stack.tests.len(),
            plural(stack.tests.len()),
            if warnings > 0 {
                format!(" ({warnings} warning{})", plural(warnings))
            } else {
                String::new()
            }
        ),
        None => eprintln!(
            "error: {} has {errors} error{}{}; nothing was sent to AWS",
            loaded.file.name,
            plural(errors),
            if warnings > 0 {
                format!(" and {warnings} warning{}", plural(warnings))
            } else {
                String::new()
            }
        ),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    file: &'a str,
    valid: bool,
    errors: Vec<JsonProblem<'a>>,
    warnings: Vec<JsonProblem<'a>>,
}

/// The machine-readable verdict on stdout. Schema: `{file, valid, errors[], warnings[]}`, each
/// problem `{severity, code, message, file, line, column, offset, length, label, help}`.
pub fn print_json(loaded: &Loaded) {
    let of = |severity| {
        loaded
            .problems
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p| JsonProblem::new(p, &loaded.file))
            .collect()
    };
    let report = JsonReport {
        file: &loaded.file.name,
        valid: loaded.stack.is_some(),
        errors: of(Severity::Error),
        warnings: of(Severity::Warning),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}

/// A file that could not be read, in the same JSON schema (line and column 0: no position).
pub fn print_json_load_error(path: &Path, error: &LoadError) {
    let code = match error {
        LoadError::Unreadable { .. } => "lmi::config::unreadable",
        LoadError::NotUtf8 { .. } => "lmi::config::not_utf8",
    };
    let report = serde_json::json!({
        "file": path.display().to_string(),
        "valid": false,
        "errors": [{
            "severity": "error",
            "code": code,
            "message": error.to_string(),
            "file": path.display().to_string(),
            "line": 0,
            "column": 0,
            "offset": 0,
            "length": 0,
            "label": "",
            "help": null,
        }],
        "warnings": [],
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
