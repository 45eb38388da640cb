//! `lmi validate` end to end: the binary, its exit codes, its text and JSON output.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The binary, run from the repository root, without colour and with a fixed width.
fn lmi() -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("lmi");
    cmd.current_dir(root())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("LMI_STACK_SUFFIX");
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let output = lmi().args(args).output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/invalid").join(name)
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The `# expect:` lines of a fixture as (code, line, column), sorted.
fn expected_errors(path: &Path) -> Vec<(String, u64, u64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<(String, u64, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let (code, at) = rest.split_once(" at ").unwrap();
            let (line, column) = at.split_once(':').unwrap();
            (
                code.to_string(),
                line.parse().unwrap(),
                column.parse().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn valid_file_exits_0_with_a_summary_on_stdout() {
    let run = run(&["-f", "examples/cold-start/lmi.toml", "validate"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        "examples/cold-start/lmi.toml is valid: stack `cold-start`, 1 capacity provider, 2 functions, 2 tests\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn reads_lmi_toml_in_the_current_directory_by_default() {
    let run = run(&["validate"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("lmi.toml is valid: stack `cold-start`"),
        "{}",
        run.stdout
    );
}

#[test]
fn valid_file_with_warnings_exits_0_and_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("handler")).unwrap();
    std::fs::write(
        dir.path().join("handler/index.mjs"),
        "export const handler = async () => 1;\n",
    )
    .unwrap();
    let file = dir.path().join("lmi.toml");
    std::fs::write(
        &file,
        "[stack]\nname = \"legacy\"\n\n[functions.old]\nruntime = \"nodejs18.x\"\nhandler = \"index.handler\"\ncode = \"handler\"\n",
    )
    .unwrap();
    let run = run(&["-f", file.to_str().unwrap(), "validate"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(
        run.stdout.contains("is valid: stack `legacy`"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("(1 warning)"), "{}", run.stdout);
    assert!(
        run.stderr.contains("lmi::function::deprecated_runtime"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("⚠"),
        "a warning is marked as one:\n{}",
        run.stderr
    );
}

#[test]
fn invalid_file_exits_1_with_the_diagnostic_on_stderr() {
    let path = fixture("lmi-runtime-nodejs16.toml");
    let run = run(&["-f", path.to_str().unwrap(), "validate"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "", "nothing on stdout when invalid");
    for expected in [
        "lmi::function::runtime_not_supported_on_lmi",
        "runtime `nodejs16.x` does not run on Lambda Managed Instances",
        "lmi-runtime-nodejs16.toml:15:11]",
        "not supported on a capacity provider",
        "has 1 error; nothing was sent to AWS",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains('\u{1b}'),
        "NO_COLOR must disable ANSI codes"
    );
}

#[test]
fn every_error_of_a_file_is_reported_in_one_run() {
    let path = fixture("several-mistakes-at-once.toml");
    let run = run(&["-f", path.to_str().unwrap(), "validate"]);
    assert_eq!(run.code, Some(1));
    for code in [
        "lmi::function::runtime_not_supported_on_lmi",
        "lmi::function::memory_ratio",
        "lmi::test::unknown_function",
    ] {
        assert!(
            run.stderr.contains(code),
            "missing {code} in:\n{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("has 3 errors;"), "{}", run.stderr);
}

#[test]
fn json_for_an_invalid_file() {
    let path = fixture("several-mistakes-at-once.toml");
    let run = run(&["-f", path.to_str().unwrap(), "validate", "--format", "json"]);
    assert_eq!(run.code, Some(1));
    let report = json(&run);
    assert_eq!(report["valid"], false);
    assert_eq!(report["file"], path.to_str().unwrap());
    assert_eq!(report["warnings"], serde_json::json!([]));
    let errors = report["errors"].as_array().unwrap();
    let mut got: Vec<(String, u64, u64)> = errors
        .iter()
        .map(|e| {
            assert_eq!(e["severity"], "error");
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            assert!(e["label"].as_str().is_some(), "{e}");
            assert!(
                e["offset"].as_u64().is_some() && e["length"].as_u64().is_some(),
                "{e}"
            );
            (
                e["code"].as_str().unwrap().to_string(),
                e["line"].as_u64().unwrap(),
                e["column"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected_errors(&path));
    let runtime = errors
        .iter()
        .find(|e| e["code"] == "lmi::function::runtime_not_supported_on_lmi")
        .unwrap();
    assert!(
        runtime["help"].as_str().unwrap().contains("nodejs22.x"),
        "{runtime}"
    );
    // The span covers the value as written, quotes included.
    let text = std::fs::read_to_string(&path).unwrap();
    let (offset, length) = (
        runtime["offset"].as_u64().unwrap() as usize,
        runtime["length"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[offset..offset + length], "\"nodejs16.x\"");
}

#[test]
fn json_for_a_valid_file() {
    let run = run(&[
        "-f",
        "examples/private-endpoints/lmi.toml",
        "validate",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let report = json(&run);
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert_eq!(run.stderr, "");
}

#[test]
fn json_lists_warnings_apart_from_errors() {
    let path = fixture("deprecated-runtime-and-lmi-only-key.toml");
    let run = run(&["-f", path.to_str().unwrap(), "validate", "--format", "json"]);
    assert_eq!(run.code, Some(1));
    let report = json(&run);
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report}");
    assert_eq!(warnings[0]["severity"], "warning");
    assert_eq!(warnings[0]["code"], "lmi::function::deprecated_runtime");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(
        errors[0]["code"],
        "lmi::function::managed_key_without_provider"
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let run = run(&["-f", "does-not-exist.toml", "validate"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("lmi::config::unreadable"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("can't read `does-not-exist.toml`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn missing_file_in_json() {
    let run = run(&["-f", "does-not-exist.toml", "validate", "--format", "json"]);
    assert_eq!(run.code, Some(1));
    let report = json(&run);
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"][0]["code"], "lmi::config::unreadable");
    assert_eq!(report["errors"][0]["line"], 0);
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does-not-exist.toml"),
        "{report}"
    );
}

#[test]
fn non_utf8_file_is_rejected_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lmi.toml");
    // "café" saved as Latin-1.
    std::fs::write(&file, b"[stack]\nname = \"caf\xe9\"\n").unwrap();
    let path = file.to_str().unwrap();

    let text = run(&["-f", path, "validate"]);
    assert_eq!(text.code, Some(1));
    assert!(
        text.stderr.contains("lmi::config::not_utf8"),
        "{}",
        text.stderr
    );
    assert!(text.stderr.contains("line 2"), "{}", text.stderr);

    let json_run = run(&["-f", path, "validate", "--format", "json"]);
    assert_eq!(json_run.code, Some(1));
    let report = json(&json_run);
    assert_eq!(report["errors"][0]["code"], "lmi::config::not_utf8");
}

#[test]
fn empty_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lmi.toml");
    std::fs::write(&file, "\n").unwrap();
    let run = run(&["-f", file.to_str().unwrap(), "validate", "--format", "json"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(json(&run)["errors"][0]["code"], "lmi::config::empty");
}

/// Every fixture, in both formats: exit 1, never a panic, always parseable JSON.
#[test]
fn no_fixture_makes_the_binary_panic() {
    let files = fixtures();
    assert!(files.len() >= 40);
    for path in files {
        let p = path.to_str().unwrap();
        let text = run(&["-f", p, "validate"]);
        assert_eq!(text.code, Some(1), "{p}:\n{}", text.stderr);
        assert!(!text.stderr.contains("panicked"), "{p}:\n{}", text.stderr);
        assert!(
            text.stderr.contains("nothing was sent to AWS"),
            "{p}:\n{}",
            text.stderr
        );

        let json_run = run(&["-f", p, "validate", "--format", "json"]);
        assert_eq!(json_run.code, Some(1), "{p}");
        assert!(
            !json_run.stderr.contains("panicked"),
            "{p}:\n{}",
            json_run.stderr
        );
        let report = json(&json_run);
        assert_eq!(report["valid"], false, "{p}");
        assert!(!report["errors"].as_array().unwrap().is_empty(), "{p}");
    }
}
