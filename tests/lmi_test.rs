//! `lmi test` on the local AWS: the cold-start example passes with its comparison table and
//! reports; a wrong expectation, a saturated LMI version and traces that never arrive fail the
//! gate with exit 3 and the evidence; a stack that isn't applied is an error (exit 1). JUnit
//! files are checked by a real consumer: the JUnit XSD and junitparser (tests/junit).

mod common;

use std::path::Path;

use common::{Output, Target, example, project, unique_stack};
use serde_json::Value;

fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        )
    })
}

/// The JUnit file as tests/junit/check_junit.py reads it, after validating it against the XSD.
fn junit(path: &Path) -> Value {
    let out = std::process::Command::new(common::python())
        .arg(common::repo().join("tests/junit/check_junit.py"))
        .arg(path)
        .output()
        .expect("run check_junit.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the JUnit report is invalid:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).expect("check_junit.py prints JSON")
}

fn test_named<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["tests"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no test {name} in {results:#}"))
}

#[test]
fn the_cold_start_example_passes_with_its_comparison_and_reports() {
    let target = Target::get();
    let stack = unique_stack("ct");
    let dir = example("cold-start", &stack);
    let dir = dir.path();
    target.lmi(dir, &["apply", "--auto-approve"]).expect(0);

    let text = target.lmi(dir, &["test"]).expect(0);
    assert!(
        text.stdout
            .contains("Side by side: default-cold-start and lmi-no-cold-start"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("PASSED: 2 passed, 0 failed, 0 inconclusive.")
    );

    // Again, with every report: the default function's environments are renewed, so its
    // first invoke is cold a second time.
    let out = target
        .lmi(
            dir,
            &[
                "test",
                "--json",
                "--junit",
                "report.xml",
                "--markdown",
                "summary.md",
            ],
        )
        .expect(0);
    let results = json(&out);
    assert_eq!(results["schema_version"], 1);
    assert_eq!(results["verdict"], "passed");
    let default = test_named(&results, "default-cold-start");
    assert_eq!(default["renewed_environments"], true);
    let inits: Vec<bool> = default["invokes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| !i["segment"]["initialization_ms"].is_null())
        .collect();
    assert_eq!(inits, [true, false, false]);
    let lmi = test_named(&results, "lmi-no-cold-start");
    assert_eq!(lmi["qualifier"], "$LATEST.PUBLISHED");
    assert_eq!(lmi["latency_ms"]["count"], 3);
    let comparison = &results["comparisons"][0];
    assert_eq!(comparison["tests"][0], "default-cold-start");
    assert_eq!(comparison["rows"].as_array().unwrap().len(), 3);
    assert_eq!(comparison["rows"][0][0]["initialization"], true);
    assert_eq!(comparison["rows"][0][1]["initialization"], false);

    let report = junit(&dir.join("report.xml"));
    assert_eq!(report["valid"], true);
    let suites = report["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 2);
    let cases: Vec<&Value> = suites
        .iter()
        .flat_map(|s| s["cases"].as_array().unwrap())
        .collect();
    assert_eq!(cases.len(), 4, "one case per check: {report:#}");
    assert!(cases.iter().all(|c| c["result"] == "passed"));

    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(summary.starts_with("## lmi test: ✅ passed"), "{summary}");
    assert!(summary.contains("| 1 |"), "{summary}");

    target.lmi(dir, &["destroy", "--auto-approve"]).expect(0);
}

#[test]
fn a_wrong_expectation_fails_with_the_trace_in_junit() {
    let target = Target::get();
    let stack = unique_stack("cw");
    let dir = project(&format!(
        r#"
[stack]
name = "{stack}"

[functions.default]
runtime = "nodejs22.x"
handler = "index.handler"
code = "handler"
tracing = true

# Wrong on purpose: a default function's first invoke is a cold start.
[tests.never-cold]
function = "default"
invocations = 2
expect.initialization = "none"
"#
    ));
    let dir = dir.path();
    target.lmi(dir, &["apply", "--auto-approve"]).expect(0);
    let out = target
        .lmi(dir, &["test", "--json", "--junit", "report.xml"])
        .expect(3);
    let results = json(&out);
    assert_eq!(results["verdict"], "failed");
    let test = test_named(&results, "never-cold");
    let check = &test["checks"][0];
    assert_eq!(check["name"], "initialization");
    assert_eq!(check["verdict"], "failed");
    let first_trace = test["invokes"][0]["trace_id"].as_str().unwrap();
    assert_eq!(check["traces"][0], first_trace);

    let report = junit(&dir.join("report.xml"));
    let case = &report["suites"][0]["cases"][0];
    assert_eq!(case["result"], "failure");
    assert_eq!(case["type"], "failed");
    assert!(
        case["message"]
            .as_str()
            .unwrap()
            .starts_with("expected no invoke has an Initialization"),
        "{case:#}"
    );
    assert!(
        case["text"].as_str().unwrap().contains(first_trace),
        "the failure names the trace: {case:#}"
    );
    target.lmi(dir, &["destroy", "--auto-approve"]).expect(0);
}

#[test]
fn a_burst_above_an_lmi_versions_capacity_is_throttled() {
    if common::real_aws() {
        // Saturating one environment is the local AWS's model; on AWS it costs real capacity.
        return;
    }
    let target = Target::get();
    let stack = unique_stack("cb");
    let dir = project(&format!(
        r#"
[stack]
name = "{stack}"

[network]
cidr = "10.71.0.0/16"
azs = 2

[capacity_providers.main]

[functions.lmi]
runtime = "nodejs22.x"
handler = "index.handler"
code = "handler"
tracing = true
capacity_provider = "main"
per_environment_max_concurrency = 1
min_environments = 1
max_environments = 1

# One environment serving one invoke at a time, 4 invokes at once, each 300 ms long.
[tests.burst]
function = "lmi"
invocations = 8
concurrency = 4
payload = {{ sleep_ms = 300 }}
expect.max_throttle_rate = 0.0
expect.max_error_rate = 0.0
"#
    ));
    let dir = dir.path();
    target.lmi(dir, &["apply", "--auto-approve"]).expect(0);
    let out = target
        .lmi(dir, &["test", "--json", "--junit", "report.xml"])
        .expect(3);
    let results = json(&out);
    let test = test_named(&results, "burst");
    let throttles = test["throttles"].as_u64().unwrap();
    assert!(
        throttles >= 3,
        "expected most of each wave throttled: {test:#}"
    );
    let throttle = &test["checks"][0];
    assert_eq!(throttle["name"], "throttle_rate");
    assert_eq!(throttle["verdict"], "failed");
    assert_eq!(
        throttle["traces"].as_array().unwrap().len() as u64,
        throttles
    );
    // Throttles are not errors.
    assert_eq!(test["checks"][1]["verdict"], "passed");
    let throttled = test["invokes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "throttled")
        .count() as u64;
    assert_eq!(throttled, throttles);
    let report = junit(&dir.join("report.xml"));
    assert_eq!(report["suites"][0]["failures"], 1);
    target.lmi(dir, &["destroy", "--auto-approve"]).expect(0);
}

#[test]
fn traces_that_never_arrive_are_inconclusive_at_the_deadline() {
    if common::real_aws() {
        return;
    }
    let target = Target::private();
    let local = target.local.expect("a local AWS");
    let stack = unique_stack("ci");
    let config = |allow: bool| {
        format!(
            r#"
[stack]
name = "{stack}"

[functions.default]
runtime = "nodejs22.x"
handler = "index.handler"
code = "handler"
tracing = true

[tests.lost]
function = "default"
invocations = 2
trace_deadline_s = 1.5
allow_inconclusive = {allow}
expect.initialization = "first_only"
"#
        )
    };
    let dir = project(&config(false));
    let dir = dir.path();
    target.lmi(dir, &["apply", "--auto-approve"]).expect(0);
    local.configure(r#"{"drop_traces": true}"#);

    let out = target
        .lmi(dir, &["test", "--json", "--junit", "report.xml"])
        .expect(3);
    let results = json(&out);
    assert_eq!(results["verdict"], "inconclusive");
    let test = test_named(&results, "lost");
    assert_eq!(test["checks"][0]["verdict"], "inconclusive");
    assert_eq!(test["checks"][0]["traces"].as_array().unwrap().len(), 2);
    // It waited out the deadline, and no longer than one poll interval past it.
    let waited = test["waiting_for_traces_ms"].as_f64().unwrap();
    assert!(waited >= 1500.0, "{waited}");
    let report = junit(&dir.join("report.xml"));
    assert_eq!(report["suites"][0]["cases"][0]["type"], "inconclusive");

    // Allowed: the gate passes and JUnit shows the check as skipped.
    std::fs::write(dir.join("lmi.toml"), config(true)).expect("write lmi.toml");
    target
        .lmi(dir, &["test", "--junit", "report.xml"])
        .expect(0);
    let report = junit(&dir.join("report.xml"));
    assert_eq!(report["suites"][0]["cases"][0]["result"], "skipped");

    local.configure(r#"{"drop_traces": false}"#);
    target.lmi(dir, &["destroy", "--auto-approve"]).expect(0);
}

#[test]
fn a_stack_that_is_not_applied_is_an_error_not_a_failed_test() {
    let target = Target::get();
    let stack = unique_stack("cn");
    let dir = example("cold-start", &stack);
    let out = target.lmi(dir.path(), &["test"]).expect(1);
    assert!(out.stderr.contains("is not in"), "{}", out.stderr);
    assert!(out.stderr.contains("lmi apply"), "{}", out.stderr);
    let out = target
        .lmi(dir.path(), &["test", "--filter", "nope"])
        .expect(1);
    assert!(
        out.stderr
            .contains("the tests are: default-cold-start, lmi-no-cold-start"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_filter_runs_the_test_and_its_ratio_baseline() {
    let target = Target::get();
    let stack = unique_stack("cf");
    let dir = project(&format!(
        r#"
[stack]
name = "{stack}"

[functions.a]
runtime = "nodejs22.x"
handler = "index.handler"
code = "handler"

[tests.one]
function = "a"
invocations = 2

[tests.two]
function = "a"
invocations = 1
expect.latency_ms = {{ max = 60000 }}

[tests.three]
function = "a"
invocations = 2
expect.ratio = {{ baseline = "one", statistic = "max", baseline_statistic = "max", max = 1000 }}
"#
    ));
    let dir = dir.path();
    target.lmi(dir, &["apply", "--auto-approve"]).expect(0);
    let out = target
        .lmi(dir, &["test", "--json", "--filter", "three"])
        .expect(0);
    let results = json(&out);
    let names: Vec<&str> = results["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "three"]);
    target.lmi(dir, &["destroy", "--auto-approve"]).expect(0);
}
