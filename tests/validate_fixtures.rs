//! `lmi::config::load` against the fixtures: every invalid file under tests/fixtures/invalid
//! declares, in its first comment lines, exactly the problems it must produce:
//!
//! ```toml
//! # expect: lmi::function::runtime_not_supported_on_lmi at 14:11
//! # warn: lmi::function::deprecated_runtime at 9:11
//! ```
//!
//! `expect` lines are errors and `warn` lines warnings, each a rule code and the 1-based
//! line:column where its span starts. Nothing more may be reported, nothing less. The examples
//! and the top-level lmi.toml, on the other hand, must be valid.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lmi::config::{Loaded, Problem, Severity};

/// A problem as a fixture declares it: code, line, column.
type Declared = (String, usize, usize);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> Vec<PathBuf> {
    let dir = root().join("tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("can't list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The `# expect:` and `# warn:` lines at the top of a fixture, sorted.
fn declared(path: &Path, text: &str) -> (Vec<Declared>, Vec<Declared>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let (list, rest) = if let Some(rest) = line.strip_prefix("# expect:") {
            (&mut errors, rest)
        } else if let Some(rest) = line.strip_prefix("# warn:") {
            (&mut warnings, rest)
        } else {
            continue;
        };
        let parsed = rest.trim().split_once(" at ").and_then(|(code, at)| {
            let (line, column) = at.trim().split_once(':')?;
            Some((
                code.trim().to_string(),
                line.parse().ok()?,
                column.parse().ok()?,
            ))
        });
        match parsed {
            Some(d) => list.push(d),
            None => panic!(
                "{}: malformed declaration `{line}`; expected `# expect: CODE at LINE:COLUMN`",
                path.display()
            ),
        }
    }
    errors.sort();
    warnings.sort();
    (errors, warnings)
}

/// What the loader reported for one severity, sorted like the declarations.
fn produced(loaded: &Loaded, severity: Severity) -> Vec<(Declared, &Problem)> {
    let mut out: Vec<(Declared, &Problem)> = loaded
        .problems
        .iter()
        .filter(|p| p.severity == severity)
        .map(|p| {
            let (line, column) = loaded.file.line_column(p.span.start);
            ((p.code.to_string(), line, column), p)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn describe(declared: &[Declared]) -> String {
    if declared.is_empty() {
        return String::from("    (none)\n");
    }
    declared
        .iter()
        .map(|(code, line, column)| format!("    {code} at {line}:{column}\n"))
        .collect()
}

fn describe_produced(produced: &[(Declared, &Problem)]) -> String {
    if produced.is_empty() {
        return String::from("    (none)\n");
    }
    produced
        .iter()
        .map(|((code, line, column), p)| {
            format!(
                "    {code} at {line}:{column}  ({}; label: {})\n",
                p.message, p.label
            )
        })
        .collect()
}

#[test]
fn there_are_at_least_40_fixtures() {
    let n = fixtures().len();
    assert!(n >= 40, "only {n} fixtures in tests/fixtures/invalid");
}

#[test]
fn every_fixture_produces_exactly_its_declared_problems() {
    let mut failures = String::new();
    let files = fixtures();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let (expected_errors, expected_warnings) = declared(path, &text);
        if expected_errors.is_empty() {
            let _ = writeln!(
                failures,
                "{}: declares no `# expect:` error, but every fixture here is invalid\n",
                path.display()
            );
            continue;
        }
        let loaded = lmi::config::load(path)
            .unwrap_or_else(|e| panic!("{}: can't load: {e}", path.display()));
        let errors = produced(&loaded, Severity::Error);
        let warnings = produced(&loaded, Severity::Warning);
        let error_keys: Vec<Declared> = errors.iter().map(|(d, _)| d.clone()).collect();
        let warning_keys: Vec<Declared> = warnings.iter().map(|(d, _)| d.clone()).collect();
        if error_keys != expected_errors || warning_keys != expected_warnings {
            let _ = write!(
                failures,
                "{}:\n  expected errors:\n{}  produced errors:\n{}  expected warnings:\n{}  produced warnings:\n{}\n",
                path.display(),
                describe(&expected_errors),
                describe_produced(&errors),
                describe(&expected_warnings),
                describe_produced(&warnings),
            );
        }
        if loaded.stack.is_some() {
            let _ = writeln!(
                failures,
                "{}: has errors but still produced a stack\n",
                path.display()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures that don't match their declarations:\n\n{failures}"
    );
}

/// Every rule code in src/config has a fixture, except the few that can't be written as one
/// (each tested below or in tests/cli_validate.rs). A new rule needs a new fixture.
#[test]
fn every_rule_code_has_a_fixture() {
    let not_fixtures = [
        // An empty file has no room for a `# expect:` line: see `empty_files`.
        "lmi::config::empty",
        // Errors before any text is read: see tests/cli_validate.rs.
        "lmi::config::unreadable",
        "lmi::config::not_utf8",
    ];
    let mut codes = BTreeSet::new();
    let mut dirs = vec![root().join("src/config")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let mut rest = text.as_str();
                while let Some(i) = rest.find("\"lmi::") {
                    let code = &rest[i + 1..];
                    let end = code.find('"').unwrap();
                    codes.insert(code[..end].to_string());
                    rest = &code[end..];
                }
            }
        }
    }
    assert!(
        codes.len() > 30,
        "found only {} codes in src/config",
        codes.len()
    );
    let mut covered = BTreeSet::new();
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let (errors, warnings) = declared(&path, &text);
        covered.extend(errors.into_iter().chain(warnings).map(|(code, ..)| code));
    }
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| !covered.contains(*c) && !not_fixtures.contains(&c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "rule codes without a fixture: {missing:?}"
    );
}

#[test]
fn empty_files() {
    for text in ["", "\n", "  \n\t\n   "] {
        let loaded = lmi::config::load_str("lmi.toml", text, root(), &|_| None);
        let problems: Vec<(&str, (usize, usize))> = loaded
            .problems
            .iter()
            .map(|p| (p.code, loaded.file.line_column(p.span.start)))
            .collect();
        assert_eq!(problems, [("lmi::config::empty", (1, 1))], "{text:?}");
        assert!(loaded.stack.is_none());
    }
}

/// The environment the examples are validated with: what existing-vpc asks its user to export.
fn example_env(name: &str) -> Option<String> {
    let value = match name {
        "LMI_VPC_ID" => "vpc-0123456789abcdef0",
        "LMI_SUBNET_A" => "subnet-0123456789abcdef0",
        "LMI_SUBNET_B" => "subnet-0123456789abcdef1",
        "LMI_SECURITY_GROUP" => "sg-0123456789abcdef0",
        _ => return None,
    };
    Some(value.to_string())
}

fn load_example(path: &Path) -> Loaded {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("can't read {}: {e}", path.display()));
    let loaded = lmi::config::load_str(
        &path.display().to_string(),
        &text,
        path.parent().unwrap(),
        &example_env,
    );
    let problems: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| {
            let (line, column) = loaded.file.line_column(p.span.start);
            format!("{} at {line}:{column}: {}", p.code, p.message)
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} should be valid without warnings, got:\n{}",
        path.display(),
        problems.join("\n")
    );
    assert!(
        loaded.stack.is_some(),
        "{} produced no stack",
        path.display()
    );
    loaded
}

#[test]
fn every_example_is_valid() {
    let mut files = vec![root().join("lmi.toml")];
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let file = entry.unwrap().path().join("lmi.toml");
        if file.is_file() {
            files.push(file);
        }
    }
    assert!(
        files.len() >= 4,
        "expected lmi.toml and 3 examples, found {files:?}"
    );
    for file in files {
        load_example(&file);
    }
}

#[test]
fn examples_have_the_stacks_they_describe() {
    let stack = |example: &str| {
        load_example(&root().join("examples").join(example).join("lmi.toml"))
            .stack
            .unwrap()
    };
    let existing = stack("existing-vpc");
    assert_eq!(existing.name, "existing-vpc");
    assert_eq!(existing.region.as_deref(), Some("us-east-1"));
    let network = serde_json::to_value(existing.network.as_ref().unwrap()).unwrap();
    assert_eq!(network["kind"], "existing");
    assert_eq!(network["vpc_id"], "vpc-0123456789abcdef0");
    assert_eq!(
        network["subnet_ids"],
        serde_json::json!(["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"])
    );

    let private = stack("private-endpoints");
    let network = serde_json::to_value(private.network.as_ref().unwrap()).unwrap();
    assert_eq!(network["egress"], "endpoints");
    assert_eq!(
        network["interface_endpoints"],
        serde_json::json!(["logs", "xray"])
    );
    assert_eq!(private.functions[0].memory_mb, 4096);

    let cold = stack("cold-start");
    assert_eq!(cold.name, "cold-start");
    assert_eq!(cold.functions.len(), 2);
    assert!(cold.function("lmi").unwrap().managed().is_some());
    assert!(cold.function("default").unwrap().managed().is_none());
}

/// ./lmi.toml is examples/cold-start/lmi.toml with code paths from the repository root: same
/// stack, same handler directory.
#[test]
fn top_level_lmi_toml_is_the_cold_start_example() {
    let top = load_example(&root().join("lmi.toml")).stack.unwrap();
    let example = load_example(&root().join("examples/cold-start/lmi.toml"))
        .stack
        .unwrap();

    let code_dirs = |stack: &lmi::model::Stack| -> Vec<PathBuf> {
        stack
            .functions
            .iter()
            .map(|f| match &f.code {
                lmi::model::Code::Directory(p) | lmi::model::Code::Zip(p) => p
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            })
            .collect()
    };
    assert_eq!(code_dirs(&top), code_dirs(&example));
    assert_eq!(
        code_dirs(&top)[0],
        root()
            .join("examples/cold-start/handler")
            .canonicalize()
            .unwrap()
    );

    let without_code = |stack: &lmi::model::Stack| {
        let mut json = serde_json::to_value(stack).unwrap();
        for function in json["functions"].as_array_mut().unwrap() {
            function.as_object_mut().unwrap().remove("code");
        }
        json
    };
    assert_eq!(without_code(&top), without_code(&example));
}

/// A fixture's problem with `code`, rendered as a terminal shows it (no colour, 100 columns).
/// The file is named lmi.toml so that snapshots don't depend on where the repository is.
fn render(fixture: &str, code: &str) -> String {
    let path = root().join("tests/fixtures/invalid").join(fixture);
    let text = std::fs::read_to_string(&path).unwrap();
    let loaded = lmi::config::load_str("lmi.toml", &text, path.parent().unwrap(), &|_| None);
    let problem = loaded
        .problems
        .iter()
        .find(|p| p.code == code)
        .unwrap_or_else(|| panic!("{fixture} has no {code}"));
    lmi::report::validation::render(problem, &loaded.file, false, 100)
}

#[test]
fn snapshot_runtime_not_supported_on_lmi() {
    insta::assert_snapshot!(render(
        "lmi-runtime-nodejs16.toml",
        "lmi::function::runtime_not_supported_on_lmi"
    ));
}

#[test]
fn snapshot_unknown_key_with_suggestion() {
    insta::assert_snapshot!(render(
        "unknown-key-provider-max-vcpu.toml",
        "lmi::config::unknown_key"
    ));
}

#[test]
fn snapshot_no_egress() {
    insta::assert_snapshot!(render(
        "network-egress-endpoints-no-telemetry.toml",
        "lmi::network::no_egress"
    ));
}

#[test]
fn snapshot_memory_ratio() {
    insta::assert_snapshot!(render(
        "lmi-memory-ratio-3072.toml",
        "lmi::function::memory_ratio"
    ));
}

#[test]
fn snapshot_memory_ratio_with_default_memory() {
    insta::assert_snapshot!(render(
        "lmi-memory-ratio-default-memory.toml",
        "lmi::function::memory_ratio"
    ));
}

#[test]
fn snapshot_toml_syntax_error() {
    insta::assert_snapshot!(render(
        "syntax-bare-string-value.toml",
        "lmi::config::syntax"
    ));
}

#[test]
fn snapshot_unset_variable() {
    insta::assert_snapshot!(render(
        "env-unset-without-default.toml",
        "lmi::config::unset_variable"
    ));
}
