//! A walker over the spanned TOML tree that reads typed values and records a [`Problem`] for each
//! unknown key, wrong type or bad `${env:..}` reference, then carries on.
//!
//! serde stops at the first error; this walker is why `lmi validate` reports every mistake of a
//! file at once. It knows TOML types, not lmi's rules: those live in `validate`.

use std::collections::HashSet;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Problem, Problems, Span};
use super::interpolate::{InterpolationErrorKind, interpolate};

/// What every read needs: the source text (to place spans inside strings), the environment for
/// interpolation, and the list of problems found so far.
pub struct Cx<'a> {
    pub text: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub problems: Problems,
    /// Dotted paths of keys whose values were reported as invalid, so that later rules don't
    /// report them again as missing.
    pub invalid: HashSet<String>,
}

impl Cx<'_> {
    pub fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Records a problem with the value at `path`.
    fn reject(&mut self, path: &str, problem: Problem) {
        self.invalid.insert(path.to_string());
        self.push(problem);
    }
}

/// A table of strings as written: each key and value spanned.
pub type Pairs = Spanned<Vec<(Spanned<String>, Spanned<String>)>>;

/// A TOML table being read, with its dotted path for messages (`functions.lmi`).
#[derive(Clone)]
pub struct Table<'t, 'i> {
    map: &'t DeTable<'i>,
    pub span: Span,
    path: &'t str,
}

/// One key of a table, spanned, with its value.
pub struct Entry<'t, 'i> {
    pub key: Spanned<&'t str>,
    pub value: &'t Spanned<DeValue<'i>>,
}

impl<'t, 'i> Table<'t, 'i> {
    pub fn new(map: &'t DeTable<'i>, span: Span, path: &'t str) -> Self {
        Table { map, span, path }
    }

    /// The dotted path of a key of this table.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = Entry<'t, 'i>> + 't {
        self.map.iter().map(|(k, v)| Entry {
            key: Spanned::new(k.span(), k.get_ref().as_ref()),
            value: v,
        })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Records an unknown-key problem, with a suggestion, for every key not in `known`.
    pub fn deny_unknown(&self, known: &[&str], cx: &mut Cx) {
        for entry in self.entries() {
            if known.contains(entry.key.get_ref()) {
                continue;
            }
            let key = *entry.key.get_ref();
            let mut problem = Problem::error(
                "lmi::config::unknown_key",
                entry.key.span(),
                format!("unknown key `{}`", self.key_path(key)),
            )
            .label("not a known key");
            problem = match did_you_mean(key, known) {
                Some(best) => problem.help(format!("did you mean `{best}`?")),
                None => problem.help(format!(
                    "{} takes: {}",
                    if self.path.is_empty() {
                        "the top level"
                    } else {
                        self.path
                    },
                    known.join(", ")
                )),
            };
            cx.push(problem);
        }
    }

    /// A key that must be present: records a problem at the table when it is missing.
    pub fn require<T>(&self, key: &str, value: Option<T>, cx: &mut Cx) -> Option<T> {
        if value.is_none() && !self.contains(key) {
            cx.push(
                Problem::error(
                    "lmi::config::missing_key",
                    self.span.clone(),
                    format!("missing key `{}`", self.key_path(key)),
                )
                .label(format!("`{key}` is required here")),
            );
        }
        value
    }

    pub fn string(&self, key: &str, cx: &mut Cx) -> Option<Spanned<String>> {
        let value = self.map.get(key)?;
        string(value, &self.key_path(key), cx)
    }

    pub fn integer(&self, key: &str, cx: &mut Cx) -> Option<Spanned<i64>> {
        let value = self.map.get(key)?;
        integer(value, &self.key_path(key), cx)
    }

    pub fn number(&self, key: &str, cx: &mut Cx) -> Option<Spanned<f64>> {
        let value = self.map.get(key)?;
        number(value, &self.key_path(key), cx)
    }

    pub fn boolean(&self, key: &str, cx: &mut Cx) -> Option<Spanned<bool>> {
        let value = self.map.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(value.span(), *b)),
            other => type_error(
                value,
                other,
                "a boolean (true or false)",
                &self.key_path(key),
                cx,
            ),
        }
    }

    pub fn table(&self, key: &str, path: &'t str, cx: &mut Cx) -> Option<Table<'t, 'i>> {
        let value = self.map.get(key)?;
        table(value, path, cx)
    }

    pub fn array(&self, key: &str, cx: &mut Cx) -> Option<Spanned<&'t [Spanned<DeValue<'i>>]>> {
        let value = self.map.get(key)?;
        match value.get_ref() {
            DeValue::Array(items) => Some(Spanned::new(value.span(), &items[..])),
            other => type_error(value, other, "an array", &self.key_path(key), cx),
        }
    }

    /// An array of strings; items of another type are reported and skipped.
    pub fn strings(&self, key: &str, cx: &mut Cx) -> Option<Spanned<Vec<Spanned<String>>>> {
        let items = self.array(key, cx)?;
        let path = self.key_path(key);
        let strings: Vec<Option<Spanned<String>>> = items
            .get_ref()
            .iter()
            .map(|item| string(item, &path, cx))
            .collect();
        // One bad item makes the list unknown, rather than a shorter list with wrong counts.
        let strings: Option<Vec<_>> = strings.into_iter().collect();
        Some(Spanned::new(items.span(), strings?))
    }

    /// A table of strings (tags, environment variables).
    pub fn string_map(&self, key: &str, cx: &mut Cx) -> Option<Pairs> {
        let value = self.map.get(key)?;
        let path = self.key_path(key);
        let DeValue::Table(map) = value.get_ref() else {
            return type_error(value, value.get_ref(), "a table of strings", &path, cx);
        };
        let pairs = map
            .iter()
            .filter_map(|(k, v)| {
                let v = string(v, &format!("{path}.{}", k.get_ref()), cx)?;
                Some((Spanned::new(k.span(), k.get_ref().to_string()), v))
            })
            .collect();
        Some(Spanned::new(value.span(), pairs))
    }
}

/// A table value, or a type problem.
pub fn table<'t, 'i>(
    value: &'t Spanned<DeValue<'i>>,
    path: &'t str,
    cx: &mut Cx,
) -> Option<Table<'t, 'i>> {
    match value.get_ref() {
        DeValue::Table(map) => Some(Table::new(map, value.span(), path)),
        other => type_error(value, other, "a table", path, cx),
    }
}

/// A string value with `${env:..}` references expanded, or a problem at the bad reference.
pub fn string(value: &Spanned<DeValue>, path: &str, cx: &mut Cx) -> Option<Spanned<String>> {
    let DeValue::String(s) = value.get_ref() else {
        return type_error(value, value.get_ref(), "a string", path, cx);
    };
    match interpolate(s, cx.env) {
        Ok(expanded) => Some(Spanned::new(value.span(), expanded)),
        Err(errors) => {
            for error in errors {
                let span = inner_span(cx.text, value.span(), s, error.range);
                let problem = match error.kind {
                    InterpolationErrorKind::Unset(name) => Problem::error(
                        "lmi::config::unset_variable",
                        span,
                        format!("environment variable `{name}` is not set"),
                    )
                    .label("unset, and no default")
                    .help(format!(
                        "set {name}, or give a default: ${{env:{name}:-value}}"
                    )),
                    InterpolationErrorKind::Malformed => Problem::error(
                        "lmi::config::bad_interpolation",
                        span,
                        "malformed reference",
                    )
                    .label("not `${env:NAME}` or `${env:NAME:-default}`")
                    .help("write $${ for a literal ${"),
                    InterpolationErrorKind::Unterminated => {
                        Problem::error("lmi::config::bad_interpolation", span, "unterminated `${`")
                            .label("no closing `}`")
                            .help("write $${ for a literal ${")
                    }
                };
                cx.reject(path, problem);
            }
            None
        }
    }
}

pub fn integer(value: &Spanned<DeValue>, path: &str, cx: &mut Cx) -> Option<Spanned<i64>> {
    match value.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Some(Spanned::new(value.span(), n)),
            Err(_) => {
                cx.reject(
                    path,
                    Problem::error(
                        "lmi::config::out_of_range",
                        value.span(),
                        format!("`{path}` is too large"),
                    )
                    .label("does not fit in 64 bits"),
                );
                None
            }
        },
        other => type_error(value, other, "an integer", path, cx),
    }
}

/// An integer or a float, as f64 (rates, ratios, CPU targets).
pub fn number(value: &Spanned<DeValue>, path: &str, cx: &mut Cx) -> Option<Spanned<f64>> {
    match value.get_ref() {
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(n) if n.is_finite() => Some(Spanned::new(value.span(), n)),
            _ => {
                cx.reject(
                    path,
                    Problem::error(
                        "lmi::config::wrong_type",
                        value.span(),
                        format!("`{path}` must be a finite number"),
                    )
                    .label("not finite"),
                );
                None
            }
        },
        DeValue::Integer(_) => {
            integer(value, path, cx).map(|n| Spanned::new(n.span(), *n.get_ref() as f64))
        }
        other => type_error(value, other, "a number", path, cx),
    }
}

fn type_error<T>(
    value: &Spanned<DeValue>,
    found: &DeValue,
    expected: &str,
    path: &str,
    cx: &mut Cx,
) -> Option<T> {
    let mut problem = Problem::error(
        "lmi::config::wrong_type",
        value.span(),
        format!(
            "`{path}` must be {expected}, found {}",
            article(found.type_str())
        ),
    )
    .label(format!("expected {expected}"));
    if let Some(help) = type_help(
        cx.text.get(value.span()).unwrap_or_default(),
        found,
        expected,
    ) {
        problem = problem.help(help);
    }
    cx.reject(path, problem);
    None
}

/// The fix for the usual type slips: a number where TOML wants a string, quotes around a
/// number, one comma-separated string where a list is wanted.
fn type_help(raw: &str, found: &DeValue, expected: &str) -> Option<String> {
    match found {
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) if expected == "a string" => {
            Some(format!("quote it: \"{raw}\""))
        }
        DeValue::String(s)
            if (expected == "an integer" && s.trim().parse::<i64>().is_ok())
                || (expected == "a number" && s.trim().parse::<f64>().is_ok()) =>
        {
            Some(format!("remove the quotes: {}", s.trim()))
        }
        DeValue::String(s) if expected == "an array" => {
            let items: Vec<String> = s.split(',').map(|i| format!("\"{}\"", i.trim())).collect();
            Some(format!("write a list: [{}]", items.join(", ")))
        }
        _ => None,
    }
}

pub(super) fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

/// Places a range of a string's *value* in the source file. Exact when the literal holds the value
/// verbatim (no escapes), which is the common case; otherwise the whole literal.
fn inner_span(text: &str, literal: Span, value: &str, range: std::ops::Range<usize>) -> Span {
    let Some(source) = text.get(literal.clone()) else {
        return literal;
    };
    let quote = if source.starts_with("\"\"\"") || source.starts_with("'''") {
        3
    } else {
        1
    };
    let start = literal.start + quote;
    match text.get(start..start + value.len()) {
        Some(raw) if raw == value => start + range.start..start + range.end,
        _ => literal,
    }
}

/// The closest known key, if one is close enough to be a likely typo. Ties go to the first
/// listed (e.g. the newest runtime: "python3.15" suggests python3.14, not python3.11).
pub fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .rev()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, k)| *score >= 0.8 || k.contains(key) || key.contains(k))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let known = ["runtime", "handler", "memory_mb", "timeout_s"];
        assert_eq!(did_you_mean("runtim", &known), Some("runtime"));
        assert_eq!(did_you_mean("memory", &known), Some("memory_mb"));
        assert_eq!(did_you_mean("timeout", &known), Some("timeout_s"));
        assert_eq!(did_you_mean("zzz", &known), None);
    }
}
