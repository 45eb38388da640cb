//! From an `lmi.toml` on disk to a validated [`Stack`], with every problem found on the way.
//!
//! Stages: read the bytes → parse TOML (spanned) → `read` the tables into `raw` structs (types,
//! unknown keys, `${env:..}`) → `validate` the rules into the model. Each stage records problems
//! and goes on, so the user sees all of them at once. Nothing here talks to AWS.

pub mod diagnostic;
pub mod interpolate;
mod raw;
mod read;
mod validate;

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use thiserror::Error;
use toml::de::DeTable;

use diagnostic::Problems;
pub use diagnostic::{Problem, Severity, SourceFile};
use read::Cx;
pub use validate::is_region;

use crate::model::Stack;

/// A config file that could be read: its text, the stack if it is valid, and every problem.
#[derive(Debug)]
pub struct Loaded {
    pub file: SourceFile,
    pub stack: Option<Stack>,
    pub problems: Vec<Problem>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }
}

/// A config file that could not be read at all.
#[derive(Debug, Error, Diagnostic)]
pub enum LoadError {
    #[error("can't read `{}`", path.display())]
    #[diagnostic(
        code(lmi::config::unreadable),
        help("lmi reads ./lmi.toml unless -f/--file names another file")
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not UTF-8 text (invalid byte at line {line}, byte offset {offset})", path.display())]
    #[diagnostic(
        code(lmi::config::not_utf8),
        help("lmi.toml must be UTF-8, as TOML requires; re-save it with UTF-8 encoding")
    )]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
}

/// What the command line changes in lmi.toml before it is validated.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides<'a> {
    /// Appended to the stack name as `-{suffix}` (`lmi run --suffix $CI_JOB_ID`), before the
    /// name rules run, so every derived AWS name is checked with it.
    pub stack_suffix: Option<&'a str>,
}

/// Reads and validates a file, taking `${env:..}` values from the process environment.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    load_with(path, Overrides::default())
}

/// [`load`], with command-line overrides.
pub fn load_with(path: &Path, overrides: Overrides) -> Result<Loaded, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        LoadError::NotUtf8 {
            path: path.to_path_buf(),
            line,
            offset,
        }
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let env = |name: &str| std::env::var(name).ok();
    Ok(load_str_with(
        &path.display().to_string(),
        &text,
        base_dir,
        &env,
        overrides,
    ))
}

/// Validates config text; `base_dir` anchors relative code paths, `env` answers `${env:..}`.
pub fn load_str(
    name: &str,
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Loaded {
    load_str_with(name, text, base_dir, env, Overrides::default())
}

/// [`load_str`], with command-line overrides.
pub fn load_str_with(
    name: &str,
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    overrides: Overrides,
) -> Loaded {
    let file = SourceFile::new(name, text);
    let mut cx = Cx {
        text,
        env,
        problems: Problems::default(),
        invalid: Default::default(),
    };
    let stack = parse_and_validate(text, base_dir, &mut cx, overrides);
    let mut problems = cx.problems.into_vec();
    // In file order, as a reader goes through it (stable: same place, order found).
    problems.sort_by_key(|p| p.span.start);
    Loaded {
        file,
        stack,
        problems,
    }
}

fn parse_and_validate(
    text: &str,
    base_dir: &Path,
    cx: &mut Cx,
    overrides: Overrides,
) -> Option<Stack> {
    if text.trim().is_empty() {
        cx.push(
            Problem::error("lmi::config::empty", 0..0, "the file is empty")
                .label("nothing to deploy")
                .help("see examples/cold-start/lmi.toml for a complete stack"),
        );
        return None;
    }
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // The recovered tree is a guess; reading it would add noise to the real mistake.
        // A table defined twice also makes each of its keys a duplicate: one mistake, reported
        // once, at the second header.
        let mut duplicate_table_until = 0;
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            let mut message = error.message().trim().to_string();
            if message == "duplicate key" {
                if span.start < duplicate_table_until {
                    continue;
                }
                let line_start = text[..span.start.min(text.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                if text[line_start..].trim_start().starts_with('[') {
                    duplicate_table_until = text[span.end.min(text.len())..]
                        .find("\n[")
                        .map_or(text.len(), |i| span.end + i);
                }
                // TOML's message doesn't say which key; the span does.
                if let Some(key) = text.get(span.clone()).filter(|k| !k.is_empty()) {
                    message = format!("duplicate key `{key}`");
                }
            }
            let mut problem = Problem::error(
                "lmi::config::syntax",
                span.clone(),
                format!("invalid TOML: {message}"),
            )
            .label("here");
            if let Some(help) = syntax_help(text, span.start, &message) {
                problem = problem.help(help);
            }
            cx.push(problem);
        }
        return None;
    }
    let mut raw = raw::read(&doc, cx);
    let mut suffixed = None;
    if let Some(suffix) = overrides.stack_suffix
        && let Some(name) = raw.stack.as_mut().and_then(|s| s.name.as_mut())
    {
        name.get_mut().push_str(&format!("-{suffix}"));
        suffixed = Some((name.span(), suffix));
    }
    let stack = validate::validate(raw, base_dir, &mut cx.problems);
    // A problem with the name may be the suffix's doing: say so where the name is shown.
    if let Some((span, suffix)) = suffixed {
        cx.problems.for_each_at(&span, |problem| {
            let note = format!(
                "the name includes --suffix `{suffix}` ({} characters): shorten it, or the name",
                suffix.len() + 1
            );
            problem.help = Some(match problem.help.take() {
                Some(help) => format!("{help}; {note}"),
                None => note,
            });
        });
    }
    stack
}

/// A hint for the syntax errors whose TOML messages mislead: a value without quotes
/// (`runtime = nodejs22.x` reads as "invalid float, expected `nan`"), a backslash in a
/// double-quoted string (a Windows path reads as bad escapes), a table defined twice (reads as
/// a duplicate key).
fn syntax_help(text: &str, offset: usize, message: &str) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[line_start..line_end];
    if line.trim_start().starts_with('[') && message.starts_with("duplicate key") {
        return Some(String::from(
            "this table is already defined above: merge the two sections, or rename one",
        ));
    }
    let (key, value) = line.split_once('=')?;
    if offset < line_start + key.len() {
        return None;
    }
    let (key, value) = (key.trim(), value.trim());
    if value.starts_with('"') && value.contains('\\') {
        return Some(String::from(
            "a backslash starts an escape in \"double quotes\": write paths with / or in 'single quotes'",
        ));
    }
    let value = value.split('#').next().unwrap_or_default().trim_end();
    if ["true", "false"]
        .iter()
        .any(|b| value.eq_ignore_ascii_case(b))
    {
        return Some(format!(
            "booleans are lowercase: {key} = {}",
            value.to_ascii_lowercase()
        ));
    }
    let bare =
        value.starts_with(|c: char| c.is_ascii_alphabetic()) && !["inf", "nan"].contains(&value);
    bare.then(|| format!("strings need quotes: {key} = \"{value}\""))
}
