//! Problems found in an `lmi.toml`: one type for every rule, rendered by miette with a labelled
//! span, or as JSON by `lmi validate --format json`.
//!
//! Validation never stops at the first problem: every stage pushes into a [`Problems`] list and
//! carries on, so a user fixes a file in one round trip, as with a good compiler.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

/// A byte range into the source file.
pub type Span = Range<usize>;

/// Whether a problem stops lmi (an error) or only deserves attention (a warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One broken rule, at one place of the file.
#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    /// Stable identifier of the rule, e.g. `lmi::config::unknown_key`. Tests and scripts match on it.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    /// Short text shown under the span.
    pub label: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Problem {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: String::from("here"),
            help: None,
        }
    }

    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, span, message)
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found so far in one file.
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.list.push(problem);
    }

    /// Changes every problem found at exactly `span`.
    pub fn for_each_at(&mut self, span: &Span, mut f: impl FnMut(&mut Problem)) {
        self.list
            .iter_mut()
            .filter(|p| p.span == *span)
            .for_each(&mut f);
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|p| p.severity == Severity::Error)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.list.iter()
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.list
    }
}

/// The text of a config file, named as the user gave it, shared by every diagnostic on it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset, as editors count them.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn named(&self) -> NamedSource<Arc<str>> {
        NamedSource::new(&self.name, Arc::clone(&self.text)).with_language("toml")
    }
}

/// A problem together with the file it is in: what miette renders.
#[derive(Debug)]
pub struct Located {
    problem: Problem,
    source: NamedSource<Arc<str>>,
}

impl Located {
    pub fn new(problem: Problem, file: &SourceFile) -> Self {
        Located {
            problem,
            source: file.named(),
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for Located {}

impl Diagnostic for Located {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.problem.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.problem.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = &self.problem.span;
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(
                Some(self.problem.label.clone()),
                (span.start, span.end.saturating_sub(span.start)),
            ),
        )))
    }
}

/// The JSON form of a problem (`lmi validate --format json`): a stable schema for scripts.
#[derive(Debug, Serialize)]
pub struct JsonProblem<'a> {
    pub severity: Severity,
    pub code: &'static str,
    pub message: &'a str,
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub length: usize,
    pub label: &'a str,
    pub help: Option<&'a str>,
}

impl<'a> JsonProblem<'a> {
    pub fn new(problem: &'a Problem, file: &'a SourceFile) -> Self {
        let (line, column) = file.line_column(problem.span.start);
        JsonProblem {
            severity: problem.severity,
            code: problem.code,
            message: &problem.message,
            file: &file.name,
            line,
            column,
            offset: problem.span.start,
            length: problem.span.len(),
            label: &problem.label,
            help: problem.help.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_in_characters() {
        let file = SourceFile::new("x.toml", "a = 1\nbé = \"x\"\n");
        assert_eq!(file.line_column(0), (1, 1));
        assert_eq!(file.line_column(6), (2, 1));
        // "bé" is 3 bytes but 2 characters.
        assert_eq!(file.line_column(9), (2, 3));
    }
}
