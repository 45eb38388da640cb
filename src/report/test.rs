//! `lmi test`'s results: a table per test, side-by-side comparisons like the reference
//! experiment's, a stable JSON document, and a Markdown summary for CI step summaries.

use std::fmt::Write;

use owo_colors::OwoColorize;
use serde::Serialize;

use crate::experiment::stats::{Summary, show};
use crate::experiment::{Invoke, Judged, Outcome, TestRun, Verdict};

/// Bumped only on an incompatible change of the JSON document.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `lmi test` found: the JSON document, and what every other format renders.
#[derive(Debug, Serialize)]
pub struct Results {
    pub schema_version: u32,
    pub stack: String,
    pub region: String,
    pub verdict: Verdict,
    pub tests: Vec<TestResult>,
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Serialize)]
pub struct TestResult {
    #[serde(flatten)]
    pub run: TestRun,
    pub verdict: Verdict,
    pub allow_inconclusive: bool,
    /// The test its ratio check compares with.
    pub baseline: Option<String>,
    /// `null` when no invoke reached the function.
    pub latency_ms: Option<Summary>,
    pub throttles: usize,
    pub errors: usize,
    pub checks: Vec<crate::experiment::Check>,
}

/// Two tests over the same pattern, invoke by invoke.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub tests: [String; 2],
    pub rows: Vec<[Cell; 2]>,
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub invoke: u32,
    /// `null` when the invoke didn't reach the function.
    pub latency_ms: Option<f64>,
    /// `null` when the trace is unknown (not fetched, or never arrived).
    pub initialization: Option<bool>,
}

impl Results {
    pub fn new(stack: &str, region: &str, runs: Vec<TestRun>, judged: Vec<Judged>) -> Results {
        let tests: Vec<TestResult> = runs
            .into_iter()
            .filter_map(|run| {
                let j = judged.iter().find(|j| j.name == run.name)?.clone();
                Some(TestResult {
                    latency_ms: run.summary(),
                    throttles: run
                        .invokes
                        .iter()
                        .filter(|i| matches!(i.outcome, Outcome::Throttled { .. }))
                        .count(),
                    errors: run.invokes.iter().filter(|i| i.outcome.is_error()).count(),
                    run,
                    verdict: j.verdict,
                    allow_inconclusive: j.allow_inconclusive,
                    baseline: j.baseline,
                    checks: j.checks,
                })
            })
            .collect();
        let verdict = if tests.iter().any(|t| t.verdict == Verdict::Failed) {
            Verdict::Failed
        } else if tests.iter().any(|t| t.verdict == Verdict::Inconclusive) {
            Verdict::Inconclusive
        } else {
            Verdict::Passed
        };
        let comparisons = comparisons(&tests);
        Results {
            schema_version: SCHEMA_VERSION,
            stack: stack.to_string(),
            region: region.to_string(),
            verdict,
            tests,
            comparisons,
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.tests.iter().filter(|t| t.verdict == verdict).count()
    }
}

/// Pairs of tests on different functions with the same pattern (invocations, concurrency):
/// the reference experiment's side-by-side view. A test pairs with the baseline of its ratio
/// check first, else with the next unpaired test of the same pattern.
fn comparisons(tests: &[TestResult]) -> Vec<Comparison> {
    let same_pattern = |a: &TestRun, b: &TestRun| {
        a.function != b.function && a.invocations == b.invocations && a.concurrency == b.concurrency
    };
    let mut paired = vec![false; tests.len()];
    let mut out = Vec::new();
    for i in 0..tests.len() {
        if paired[i] {
            continue;
        }
        let partner = (0..tests.len())
            .filter(|&j| j != i && !paired[j] && same_pattern(&tests[i].run, &tests[j].run))
            .min_by_key(|&j| {
                let baseline_of =
                    |a: usize, b: usize| tests[a].baseline.as_deref() == Some(&tests[b].run.name);
                (!(baseline_of(i, j) || baseline_of(j, i)), j)
            });
        let Some(j) = partner else { continue };
        paired[i] = true;
        paired[j] = true;
        let cell = |invoke: &Invoke| Cell {
            invoke: invoke.index,
            latency_ms: invoke
                .outcome
                .ran()
                .then(|| crate::experiment::stats::ms(invoke.latency)),
            initialization: invoke.segment.as_ref().map(|s| s.cold()),
        };
        out.push(Comparison {
            tests: [tests[i].run.name.clone(), tests[j].run.name.clone()],
            rows: tests[i]
                .run
                .invokes
                .iter()
                .zip(&tests[j].run.invokes)
                .map(|(a, b)| [cell(a), cell(b)])
                .collect(),
        });
    }
    out
}

fn verdict_word(v: Verdict, color: bool) -> String {
    let word = match v {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
        Verdict::Inconclusive => "INCONCLUSIVE",
    };
    if !color {
        return word.to_string();
    }
    match v {
        Verdict::Passed => word.green().bold().to_string(),
        Verdict::Failed => word.red().bold().to_string(),
        Verdict::Inconclusive => word.yellow().bold().to_string(),
    }
}

fn check_mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Passed => "✓",
        Verdict::Failed => "✗",
        Verdict::Inconclusive => "?",
    }
}

fn status(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok => "ok".into(),
        Outcome::FunctionError { function_error } => format!("error ({function_error})"),
        Outcome::Throttled { .. } => "throttled (429)".into(),
        Outcome::Failed { status, .. } => match status {
            Some(s) => format!("failed ({s})"),
            None => "failed".into(),
        },
    }
}

fn opt(d: Option<std::time::Duration>) -> String {
    d.map_or_else(|| "-".into(), show)
}

fn initialization(invoke: &Invoke, traced: bool) -> String {
    if !invoke.outcome.ran() {
        return "-".into();
    }
    match (&invoke.segment, traced) {
        (_, false) => "not fetched".into(),
        (None, true) => "no trace".into(),
        (Some(s), true) => match s.initialization {
            Some(d) => format!("yes ({})", show(d)),
            None => "no".into(),
        },
    }
}

/// The text report, for people.
pub fn render(results: &Results, color: bool) -> String {
    let mut out = String::new();
    for t in &results.tests {
        let run = &t.run;
        let _ = writeln!(
            out,
            "\n{}  {}  `{}` ({}{}), {} invoke(s), {}",
            verdict_word(t.verdict, color),
            if color {
                run.name.bold().to_string()
            } else {
                run.name.clone()
            },
            run.function,
            run.function_name,
            run.qualifier
                .as_deref()
                .map(|q| format!(":{q}"))
                .unwrap_or_default(),
            run.invocations,
            if run.concurrency == 1 {
                "one after another".to_string()
            } else {
                format!("{} at a time", run.concurrency)
            }
        );
        let mut rows = vec![[
            "#".to_string(),
            "latency".into(),
            "status".into(),
            "duration".into(),
            "billed".into(),
            "init (log)".into(),
            "Initialization".into(),
            "trace id".into(),
        ]];
        for i in &run.invokes {
            let report = i.report.clone().unwrap_or_default();
            rows.push([
                i.index.to_string(),
                show(i.latency),
                status(&i.outcome),
                opt(report.duration),
                opt(report.billed_duration),
                opt(report.init_duration),
                initialization(i, run.traced),
                i.trace_id.clone(),
            ]);
        }
        out.push_str(&super::indented(&rows, "  "));
        if let Some(s) = &t.latency_ms {
            let _ = writeln!(
                out,
                "  latency: first {}, min {}, mean {}, p50 {}, p95 {}, p99 {}, max {} ({} sample(s))",
                show(s.first),
                show(s.min),
                show(s.mean),
                show(s.p50),
                show(s.p95),
                show(s.p99),
                show(s.max),
                s.count
            );
        }
        if run.traced {
            let _ = writeln!(
                out,
                "  traces: {} of {} found, {} after the last invoke",
                run.invokes.iter().filter(|i| i.segment.is_some()).count(),
                run.invokes.iter().filter(|i| i.outcome.ran()).count(),
                show(run.waiting_for_traces)
            );
        }
        for c in &t.checks {
            let _ = writeln!(
                out,
                "  {} {}: expected {}; got {}",
                check_mark(c.verdict),
                c.name,
                c.expected,
                c.actual
            );
            if c.verdict != Verdict::Passed && !c.traces.is_empty() {
                let _ = writeln!(out, "      traces: {}", c.traces.join(", "));
            }
        }
        if t.checks.is_empty() {
            let _ = writeln!(out, "  (no expectations: nothing asserted)");
        }
    }
    for c in &results.comparisons {
        let _ = writeln!(out, "\nSide by side: {} and {}", c.tests[0], c.tests[1]);
        let mut rows = vec![[
            "invoke".to_string(),
            format!("{} latency", c.tests[0]),
            "Init".into(),
            format!("{} latency", c.tests[1]),
            "Init".into(),
        ]];
        let latency = |cell: &Cell| {
            cell.latency_ms
                .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"))
        };
        let init = |cell: &Cell| match cell.initialization {
            Some(true) => "yes".to_string(),
            Some(false) => "no".into(),
            None => "?".into(),
        };
        for [a, b] in &c.rows {
            rows.push([
                a.invoke.to_string(),
                latency(a),
                init(a),
                latency(b),
                init(b),
            ]);
        }
        out.push_str(&super::indented(&rows, "  "));
    }
    let _ = writeln!(
        out,
        "\n{}: {} passed, {} failed, {} inconclusive.",
        verdict_word(results.verdict, color),
        results.count(Verdict::Passed),
        results.count(Verdict::Failed),
        results.count(Verdict::Inconclusive)
    );
    out
}

/// A Markdown summary for a CI step summary (`$GITHUB_STEP_SUMMARY`).
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let icon = |v: Verdict| match v {
        Verdict::Passed => "✅",
        Verdict::Failed => "❌",
        Verdict::Inconclusive => "⚠️",
    };
    let _ = writeln!(
        out,
        "## lmi test: {} {}\n\nStack `{}` in `{}`: {} passed, {} failed, {} inconclusive.\n",
        icon(results.verdict),
        verdict_word(results.verdict, false).to_lowercase(),
        results.stack,
        results.region,
        results.count(Verdict::Passed),
        results.count(Verdict::Failed),
        results.count(Verdict::Inconclusive)
    );
    let _ = writeln!(
        out,
        "| Test | Function | Invokes | p50 | p95 | max | Verdict |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|");
    for t in &results.tests {
        let (p50, p95, max) = t
            .latency_ms
            .as_ref()
            .map_or(("-".into(), "-".into(), "-".into()), |s| {
                (show(s.p50), show(s.p95), show(s.max))
            });
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {p50} | {p95} | {max} | {} {} |",
            t.run.name,
            t.run.function,
            t.run.invocations,
            icon(t.verdict),
            verdict_word(t.verdict, false).to_lowercase()
        );
    }
    for c in &results.comparisons {
        let _ = writeln!(
            out,
            "\n### `{}` and `{}`, invoke by invoke\n\n| # | `{}` | Init | `{}` | Init |\n|---:|---:|---|---:|---|",
            c.tests[0], c.tests[1], c.tests[0], c.tests[1]
        );
        for [a, b] in &c.rows {
            let cell = |c: &Cell| {
                (
                    c.latency_ms
                        .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms")),
                    match c.initialization {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "?",
                    },
                )
            };
            let ((la, ia), (lb, ib)) = (cell(a), cell(b));
            let _ = writeln!(out, "| {} | {la} | {ia} | {lb} | {ib} |", a.invoke);
        }
    }
    let _ = writeln!(out, "\n### Checks\n");
    for t in &results.tests {
        for c in &t.checks {
            let _ = writeln!(
                out,
                "- {} `{}` {}: expected {}; got {}{}",
                icon(c.verdict),
                t.run.name,
                c.name,
                c.expected,
                c.actual,
                if c.verdict != Verdict::Passed && !c.traces.is_empty() {
                    format!(
                        " (traces: {})",
                        c.traces
                            .iter()
                            .map(|t| format!("`{t}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    out
}
