//! The rules of lmi.toml: raw tables in, the validated [`Stack`] out, every broken rule recorded
//! as a [`Problem`]. Pure: no AWS call; the only I/O is checking that code paths exist.
//!
//! Each rule cites its source in `model::limits`, `model::runtime` or ../shared/LMI-FACTS.md.

mod compute;
mod experiments;
mod network;

use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;
use std::path::Path;

use toml::Spanned;

use super::diagnostic::{Problem, Problems};
use super::raw::RawConfig;
use super::read::{Pairs, did_you_mean};
use crate::model::Stack;

type S<T> = Spanned<T>;

/// Turns a read file into a stack. Returns `None` when an error makes the stack meaningless;
/// the problems say why.
pub fn validate(raw: RawConfig, base_dir: &Path, problems: &mut Problems) -> Option<Stack> {
    let mut v = Validator {
        problems,
        base_dir,
        invalid: &raw.invalid,
    };
    let stack = v.stack(&raw);
    let network = raw.network.as_ref().and_then(|n| v.network(n));
    let stack_name = stack.as_ref().map(|(name, ..)| name.get_ref().as_str());
    let capacity_providers = v.capacity_providers(&raw, stack_name);
    let functions = v.functions(&raw, stack_name, &capacity_providers);
    v.egress(&raw);
    let tests = v.experiments(&raw);

    let (name, region, tags) = stack?;
    if v.problems.has_errors() {
        return None;
    }
    Some(Stack {
        name: name.into_inner(),
        region,
        tags,
        network: network.map(|n| n.model),
        capacity_providers: capacity_providers.into_iter().map(|(_, cp)| cp).collect(),
        functions: functions.into_iter().map(|(_, f)| f).collect(),
        tests,
    })
}

struct Validator<'a> {
    problems: &'a mut Problems,
    base_dir: &'a Path,
    /// Keys whose values were already reported as invalid: not missing, just wrong.
    invalid: &'a HashSet<String>,
}

type StackHeader = (S<String>, Option<String>, BTreeMap<String, String>);

impl Validator<'_> {
    fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Reports a missing key, unless it is there with a value already reported as wrong:
    /// one mistake, one message.
    fn missing(&mut self, path: &str, problem: Problem) {
        if !self.invalid.contains(path) {
            self.push(problem);
        }
    }

    fn stack(&mut self, raw: &RawConfig) -> Option<StackHeader> {
        let Some(stack) = &raw.stack else {
            self.push(
                Problem::error(
                    "lmi::config::missing_key",
                    raw.span.start..raw.span.start,
                    "missing section `[stack]`",
                )
                .label("expected `[stack]` with a `name`")
                .help("start the file with:\n[stack]\nname = \"my-stack\""),
            );
            return None;
        };
        let name = stack.name.clone();
        if name.is_none() {
            self.missing(
                "stack.name",
                Problem::error(
                    "lmi::config::missing_key",
                    stack.span.clone(),
                    "missing key `stack.name`",
                )
                .label("`name` is required here")
                .help("the stack name prefixes every AWS name and tags every resource lmi owns"),
            );
        }
        let name = name.filter(|n| self.stack_name(n));
        if let Some(region) = &stack.region
            && !is_region(region.get_ref())
        {
            self.push(
                Problem::error(
                    "lmi::stack::region",
                    region.span(),
                    format!("`{}` is not an AWS region name", region.get_ref()),
                )
                .label("expected e.g. us-east-1")
                .help("or leave `region` out to use AWS_REGION or your profile's region"),
            );
        }
        let tags = self.tags(stack.tags.as_ref());
        Some((
            name?,
            stack.region.as_ref().map(|r| r.get_ref().clone()),
            tags,
        ))
    }

    fn stack_name(&mut self, name: &S<String>) -> bool {
        let n = name.get_ref();
        let valid = n.len() <= 32
            && n.starts_with(|c: char| c.is_ascii_alphabetic())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !n.ends_with('-');
        if !valid {
            self.push(
                Problem::error(
                    "lmi::stack::name",
                    name.span(),
                    format!("invalid stack name `{n}`"),
                )
                .label("1–32 letters, digits and hyphens, starting with a letter")
                .help("it prefixes every AWS name (functions, roles, providers), so it must be valid in all of them"),
            );
        }
        valid
    }

    fn tags(&mut self, tags: Option<&Pairs>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(tags) = tags
            && tags.get_ref().len() > crate::model::limits::USER_TAGS_MAX
        {
            self.push(
                Problem::error(
                    "lmi::stack::too_many_tags",
                    tags.span(),
                    format!(
                        "{} tags; AWS allows 50 per resource and lmi sets 3 of its own",
                        tags.get_ref().len()
                    ),
                )
                .label(format!("at most {}", crate::model::limits::USER_TAGS_MAX)),
            );
        }
        for (key, value) in tags.map(|t| t.get_ref().as_slice()).unwrap_or_default() {
            let k = key.get_ref();
            if k.starts_with("aws:") || k.starts_with("lmi:") {
                self.push(
                    Problem::error(
                        "lmi::stack::reserved_tag",
                        key.span(),
                        format!("tag key `{k}` is reserved"),
                    )
                    .label("`aws:` belongs to AWS and `lmi:` to lmi")
                    .help("lmi sets lmi:stack and lmi:resource itself to track what it owns"),
                );
            } else if k.is_empty() || k.chars().count() > 128 {
                self.push(
                    Problem::error(
                        "lmi::stack::tag_length",
                        key.span(),
                        format!("tag key `{k}` is {} characters", k.chars().count()),
                    )
                    .label("keys are 1–128 characters"),
                );
            } else if value.get_ref().chars().count() > 256 {
                self.push(
                    Problem::error(
                        "lmi::stack::tag_length",
                        value.span(),
                        format!(
                            "the value of tag `{k}` is {} characters; AWS allows 256",
                            value.get_ref().chars().count()
                        ),
                    )
                    .label("too long"),
                );
            } else {
                out.insert(k.clone(), value.get_ref().clone());
            }
        }
        out
    }

    /// An integer within AWS's range, or a problem that names the range.
    fn in_range(
        &mut self,
        value: &S<i64>,
        range: RangeInclusive<i64>,
        what: &str,
        unit: &str,
    ) -> Option<i64> {
        let n = *value.get_ref();
        if range.contains(&n) {
            return Some(n);
        }
        self.push(
            Problem::error(
                "lmi::config::out_of_range",
                value.span(),
                format!(
                    "{what} must be between {} and {}{unit}, got {n}",
                    range.start(),
                    range.end()
                ),
            )
            .label(format!("not in {}–{}", range.start(), range.end())),
        );
        None
    }

    /// One of a fixed set of words, or a problem that lists them.
    fn one_of<'v>(
        &mut self,
        value: &'v S<String>,
        options: &[&str],
        what: &str,
    ) -> Option<&'v str> {
        let v = value.get_ref().as_str();
        if options.contains(&v) {
            return Some(v);
        }
        let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
        let mut problem = Problem::error(
            "lmi::config::invalid_value",
            value.span(),
            format!("`{v}` is not a valid {what}"),
        )
        .label(format!("expected {}", quoted.join(" or ")));
        // Case slips and the usual synonyms first: edit distance gets them wrong ("median" is
        // closer to "mean" than to "p50").
        const SYNONYMS: &[(&str, &str)] = &[
            ("median", "p50"),
            ("average", "mean"),
            ("avg", "mean"),
            ("minimum", "min"),
            ("maximum", "max"),
        ];
        let lower = v.to_lowercase();
        let synonym = SYNONYMS
            .iter()
            .find(|(alias, _)| *alias == lower)
            .map(|(_, name)| *name);
        let best = options
            .iter()
            .copied()
            .find(|o| *o == lower)
            .or(synonym.filter(|s| options.contains(s)))
            .or_else(|| did_you_mean(v, options));
        if let Some(best) = best {
            problem = problem.help(format!("did you mean \"{best}\"?"));
        }
        self.push(problem);
        None
    }

    /// A name lmi derives for AWS from the stack and a logical name, checked against AWS's
    /// rules so the mistake shows here and not minutes into an apply.
    fn aws_name(&mut self, logical: &S<String>, aws: &str, max: usize, what: &str) -> bool {
        let chars_ok = logical
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !chars_ok || logical.get_ref().is_empty() {
            self.push(
                Problem::error(
                    "lmi::name::characters",
                    logical.span(),
                    format!("`{}` can't be part of an AWS name", logical.get_ref()),
                )
                .label("use letters, digits, - and _")
                .help(format!("it becomes the {what} `{aws}`")),
            );
            return false;
        }
        if aws.len() > max {
            self.push(
                Problem::error(
                    "lmi::name::too_long",
                    logical.span(),
                    format!(
                        "the {what} `{aws}` is {} characters; AWS allows {max}",
                        aws.len()
                    ),
                )
                .label("too long once the stack name is prefixed")
                .help("shorten this name or the stack name"),
            );
            return false;
        }
        true
    }

    /// `arn:<partition>:<service>:...`, with the resource part lmi expects.
    fn arn(
        &mut self,
        value: &S<String>,
        service: &str,
        resource: &str,
        what: &str,
    ) -> Option<String> {
        let v = value.get_ref();
        let parts: Vec<&str> = v.splitn(6, ':').collect();
        let valid = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == service
            && parts[5].starts_with(resource);
        if valid {
            Some(v.clone())
        } else {
            self.push(
                Problem::error(
                    "lmi::config::arn",
                    value.span(),
                    format!("`{v}` is not {what} ARN"),
                )
                .label(format!("expected arn:aws:{service}:…:{resource}…")),
            );
            None
        }
    }
}

pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

#[cfg(test)]
mod tests {
    use super::is_region;

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-3",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["us-east", "US-EAST-1", "useast1", "us-east-1a", ""] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    fn help_for(statistic: &str) -> Option<String> {
        let text = format!(
            r#"
[stack]
name = "demo"

[functions.f]
runtime = "nodejs22.x"
handler = "index.handler"
code = "."

[tests.a]
function = "f"

[tests.b]
function = "f"
expect.ratio = {{ baseline = "a", statistic = "{statistic}", max = 1 }}
"#
        );
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let loaded = crate::config::load_str("lmi.toml", &text, dir, &|_| None);
        loaded
            .problems
            .iter()
            .find(|p| p.code == "lmi::config::invalid_value")
            .and_then(|p| p.help.clone())
    }

    #[test]
    fn synonyms_and_case_slips_get_the_right_suggestion() {
        assert_eq!(help_for("median").as_deref(), Some("did you mean \"p50\"?"));
        assert_eq!(help_for("P95").as_deref(), Some("did you mean \"p95\"?"));
        assert_eq!(
            help_for("average").as_deref(),
            Some("did you mean \"mean\"?")
        );
        assert_eq!(help_for("p59").as_deref(), Some("did you mean \"p50\"?"));
    }
}
