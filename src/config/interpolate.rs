//! `${env:NAME}` and `${env:NAME:-default}` in string values, e.g. a CI job id as a stack-name
//! suffix. `$${` stands for a literal `${`.
//!
//! Pure: the environment is passed in, so tests don't touch the process environment.

use std::ops::Range;

/// Why a reference could not be expanded; `range` is a byte range within the string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    pub range: Range<usize>,
    pub kind: InterpolationErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationErrorKind {
    /// `${env:NAME}` with NAME unset and no default.
    Unset(String),
    /// `${...}` that is not `env:NAME` or `env:NAME:-default`.
    Malformed,
    /// `${` with no closing `}`.
    Unterminated,
}

/// Expands every reference in `value`, or returns every reference that could not be expanded.
pub fn interpolate(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<InterpolationError>> {
    let mut out = String::with_capacity(value.len());
    let mut errors = Vec::new();
    let mut rest = value;
    let mut offset = 0;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            let consumed = after.len() - stripped.len();
            offset += pos + consumed;
            rest = stripped;
            continue;
        }
        if !after.starts_with("${") {
            out.push('$');
            offset += pos + 1;
            rest = &after[1..];
            continue;
        }
        let start = offset + pos;
        let Some(close) = after.find('}') else {
            errors.push(InterpolationError {
                range: start..offset + rest.len(),
                kind: InterpolationErrorKind::Unterminated,
            });
            return Err(errors);
        };
        let range = start..start + close + 1;
        match expand(&after[2..close], lookup) {
            Ok(expanded) => out.push_str(&expanded),
            Err(kind) => errors.push(InterpolationError { range, kind }),
        }
        offset += pos + close + 1;
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn expand(
    reference: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationErrorKind> {
    let body = reference
        .strip_prefix("env:")
        .ok_or(InterpolationErrorKind::Malformed)?;
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if !is_variable_name(name) {
        return Err(InterpolationErrorKind::Malformed);
    }
    // As in the shell, `:-` also replaces a variable that is set but empty.
    match (lookup(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_string()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_string()),
        (None, None) => Err(InterpolationErrorKind::Unset(name.to_string())),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "JOB" => Some("42".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(value: &str) -> Result<String, Vec<InterpolationError>> {
        interpolate(value, &env)
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(run("demo-${env:JOB}").unwrap(), "demo-42");
        assert_eq!(run("demo${env:NOPE:-}").unwrap(), "demo");
        assert_eq!(run("${env:NOPE:-us-east-1}").unwrap(), "us-east-1");
        assert_eq!(run("${env:EMPTY:-x}").unwrap(), "x");
        assert_eq!(run("${env:EMPTY}").unwrap(), "");
        assert_eq!(run("no refs, $5 and $x").unwrap(), "no refs, $5 and $x");
        assert_eq!(run("$${env:JOB}").unwrap(), "${env:JOB}");
    }

    #[test]
    fn reports_every_bad_reference_with_its_range() {
        let errors = run("a-${env:NOPE}-${HOME}").unwrap_err();
        assert_eq!(
            errors,
            vec![
                InterpolationError {
                    range: 2..13,
                    kind: InterpolationErrorKind::Unset("NOPE".into())
                },
                InterpolationError {
                    range: 14..21,
                    kind: InterpolationErrorKind::Malformed
                },
            ]
        );
    }

    #[test]
    fn unterminated_and_bad_names() {
        assert_eq!(
            run("x${env:JOB").unwrap_err()[0].kind,
            InterpolationErrorKind::Unterminated
        );
        assert_eq!(
            run("${env:1X}").unwrap_err()[0].kind,
            InterpolationErrorKind::Malformed
        );
        assert_eq!(
            run("${env:}").unwrap_err()[0].kind,
            InterpolationErrorKind::Malformed
        );
    }
}
