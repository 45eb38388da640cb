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

/// Reads and validates a file, taking `${env:..}` values from the process environment.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
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
    Ok(load_str(&path.display().to_string(), &text, base_dir, &env))
}

/// Validates config text; `base_dir` anchors relative code paths, `env` answers `${env:..}`.
pub fn load_str(
    name: &str,
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Loaded {
    let file = SourceFile::new(name, text);
    let mut cx = Cx {
        text,
        env,
        problems: Problems::default(),
        invalid: Default::default(),
    };
    let stack = parse_and_validate(text, base_dir, &mut cx);
    Loaded {
        file,
        stack,
        problems: cx.problems.into_vec(),
    }
}

fn parse_and_validate(text: &str, base_dir: &Path, cx: &mut Cx) -> Option<Stack> {
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
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            cx.push(
                Problem::error(
                    "lmi::config::syntax",
                    span,
                    format!("invalid TOML: {}", error.message().trim()),
                )
                .label("here"),
            );
        }
        return None;
    }
    let raw = raw::read(&doc, cx);
    validate::validate(raw, base_dir, &mut cx.problems)
}
