//! Expectations → checks. Each check has a verdict, what was expected, what was seen, and the
//! trace ids that prove it (the invokes that broke it, or the ones whose traces never came).
//!
//! A check is inconclusive when the evidence it needs is missing: a trace that did not arrive
//! before the deadline, or a baseline with no sample. Inconclusive fails the test unless the
//! test sets `allow_inconclusive`; a failure anywhere fails it regardless.

use serde::Serialize;

use super::stats::show;
use super::{Invoke, TestRun};
use crate::model::{Experiment, InitExpectation, Statistic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Failed,
    Inconclusive,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `initialization`, `latency.p95`, `ratio`, `throttle_rate`, `error_rate`.
    pub name: String,
    pub verdict: Verdict,
    pub expected: String,
    pub actual: String,
    /// Evidence: the trace ids of the invokes the verdict rests on.
    pub traces: Vec<String>,
}

/// A test's checks and overall verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub name: String,
    pub verdict: Verdict,
    pub allow_inconclusive: bool,
    /// The test its ratio check compares with, if any.
    pub baseline: Option<String>,
    pub checks: Vec<Check>,
}

impl Judged {
    /// Whether the gate passes for this test.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }
}

/// Judges every run against its experiment; `runs` holds the baselines of ratio checks.
pub fn judge(experiments: &[&Experiment], runs: &[TestRun]) -> Vec<Judged> {
    experiments
        .iter()
        .filter_map(|e| {
            let run = runs.iter().find(|r| r.name == e.name)?;
            Some(judge_one(e, run, runs))
        })
        .collect()
}

fn judge_one(experiment: &Experiment, run: &TestRun, runs: &[TestRun]) -> Judged {
    let expect = &experiment.expect;
    let summary = run.summary();
    let mut checks = Vec::new();
    if let Some(init) = expect.initialization {
        checks.push(initialization(
            init,
            run,
            experiment.trace_deadline.as_secs_f64(),
        ));
    }
    for (name, limit) in [
        (Statistic::P50, expect.latency.p50),
        (Statistic::P95, expect.latency.p95),
        (Statistic::P99, expect.latency.p99),
        (Statistic::Max, expect.latency.max),
    ] {
        let Some(limit) = limit else { continue };
        let label = statistic_name(name);
        checks.push(match &summary {
            None => no_sample(
                format!("latency.{label}"),
                format!("{label} ≤ {}", show(limit)),
            ),
            Some(s) => {
                let value = s.get(name);
                Check {
                    name: format!("latency.{label}"),
                    verdict: pass_if(value <= limit),
                    expected: format!("{label} ≤ {}", show(limit)),
                    actual: format!("{label} = {} over {} invokes", show(value), s.count),
                    traces: if value <= limit {
                        Vec::new()
                    } else {
                        slower_than(run, limit)
                    },
                }
            }
        });
    }
    if let Some(ratio) = &expect.ratio {
        let expected = format!(
            "{} ≤ {} × {} of {}",
            statistic_name(ratio.statistic),
            ratio.max,
            statistic_name(ratio.baseline_statistic),
            ratio.baseline
        );
        let baseline = runs
            .iter()
            .find(|r| r.name == ratio.baseline)
            .and_then(TestRun::summary);
        checks.push(match (&summary, baseline) {
            (None, _) => no_sample("ratio".into(), expected),
            (Some(_), None) => Check {
                name: "ratio".into(),
                verdict: Verdict::Inconclusive,
                expected,
                actual: format!("{} has no latency sample", ratio.baseline),
                traces: Vec::new(),
            },
            (Some(s), Some(b)) => {
                let value = s.get(ratio.statistic);
                let base = b.get(ratio.baseline_statistic);
                let factor = value.as_secs_f64() / base.as_secs_f64().max(f64::MIN_POSITIVE);
                Check {
                    name: "ratio".into(),
                    verdict: pass_if(value.as_secs_f64() <= ratio.max * base.as_secs_f64()),
                    expected,
                    actual: format!(
                        "{} = {} = {factor:.3} × {} of {} ({})",
                        statistic_name(ratio.statistic),
                        show(value),
                        statistic_name(ratio.baseline_statistic),
                        ratio.baseline,
                        show(base)
                    ),
                    traces: Vec::new(),
                }
            }
        });
    }
    if let Some(max) = expect.max_throttle_rate {
        checks.push(rate(
            "throttle_rate",
            "throttled",
            max,
            run,
            |i: &Invoke| matches!(i.outcome, super::Outcome::Throttled { .. }),
        ));
    }
    if let Some(max) = expect.max_error_rate {
        checks.push(rate("error_rate", "failed", max, run, |i: &Invoke| {
            i.outcome.is_error()
        }));
    }
    let verdict = if checks.iter().any(|c| c.verdict == Verdict::Failed) {
        Verdict::Failed
    } else if !experiment.allow_inconclusive
        && checks.iter().any(|c| c.verdict == Verdict::Inconclusive)
    {
        Verdict::Inconclusive
    } else {
        Verdict::Passed
    };
    Judged {
        name: experiment.name.clone(),
        verdict,
        allow_inconclusive: experiment.allow_inconclusive,
        baseline: expect.ratio.as_ref().map(|r| r.baseline.clone()),
        checks,
    }
}

pub fn statistic_name(s: Statistic) -> &'static str {
    match s {
        Statistic::First => "first",
        Statistic::Min => "min",
        Statistic::Mean => "mean",
        Statistic::P50 => "p50",
        Statistic::P95 => "p95",
        Statistic::P99 => "p99",
        Statistic::Max => "max",
    }
}

fn pass_if(ok: bool) -> Verdict {
    if ok { Verdict::Passed } else { Verdict::Failed }
}

fn no_sample(name: String, expected: String) -> Check {
    Check {
        name,
        verdict: Verdict::Failed,
        expected,
        actual: "no invoke reached the function".into(),
        traces: Vec::new(),
    }
}

fn slower_than(run: &TestRun, limit: std::time::Duration) -> Vec<String> {
    run.invokes
        .iter()
        .filter(|i| i.outcome.ran() && i.latency > limit)
        .map(|i| i.trace_id.clone())
        .collect()
}

fn invoke_list(invokes: &[&Invoke]) -> String {
    let numbers: Vec<String> = invokes.iter().map(|i| format!("#{}", i.index)).collect();
    numbers.join(", ")
}

/// Which invokes had an Initialization subsegment, against which may have.
fn initialization(expect: InitExpectation, run: &TestRun, deadline_s: f64) -> Check {
    let ran: Vec<&Invoke> = run.invokes.iter().filter(|i| i.outcome.ran()).collect();
    let expected = match expect {
        InitExpectation::None => "no invoke has an Initialization segment",
        InitExpectation::FirstOnly => "only invoke #1 has an Initialization segment",
        InitExpectation::Any => "any (recorded, not asserted)",
    }
    .to_string();
    let check = |verdict, actual: String, traces: Vec<String>| Check {
        name: "initialization".into(),
        verdict,
        expected: expected.clone(),
        actual,
        traces,
    };
    if ran.is_empty() {
        return check(
            Verdict::Failed,
            "no invoke reached the function".into(),
            Vec::new(),
        );
    }
    let cold: Vec<&Invoke> = ran
        .iter()
        .copied()
        .filter(|i| i.segment.as_ref().is_some_and(|s| s.cold()))
        .collect();
    let missing: Vec<&Invoke> = ran
        .iter()
        .copied()
        .filter(|i| i.segment.is_none())
        .collect();
    let ids = |v: &[&Invoke]| v.iter().map(|i| i.trace_id.clone()).collect::<Vec<_>>();
    let seen = format!(
        "Initialization on {} of {} traced invokes{}",
        cold.len(),
        ran.len() - missing.len(),
        if cold.is_empty() {
            String::new()
        } else {
            format!(" ({})", invoke_list(&cold))
        }
    );
    let first = ran[0];
    let violations: Vec<&Invoke> = match expect {
        InitExpectation::Any => Vec::new(),
        InitExpectation::None => cold.clone(),
        InitExpectation::FirstOnly => {
            let mut v: Vec<&Invoke> = cold
                .iter()
                .copied()
                .filter(|i| i.index != first.index)
                .collect();
            if first.segment.as_ref().is_some_and(|s| !s.cold()) {
                v.insert(0, first);
            }
            v
        }
    };
    if !violations.is_empty() {
        let mut actual = seen;
        if expect == InitExpectation::FirstOnly && violations[0].index == first.index {
            actual.push_str("; invoke #1 was warm (an environment was already running)");
        }
        return check(Verdict::Failed, actual, ids(&violations));
    }
    if !missing.is_empty() && expect != InitExpectation::Any {
        return check(
            Verdict::Inconclusive,
            format!(
                "no trace within {deadline_s} s for {} of {} invokes ({})",
                missing.len(),
                ran.len(),
                invoke_list(&missing)
            ),
            ids(&missing),
        );
    }
    check(Verdict::Passed, seen, ids(&ran))
}

fn rate(
    name: &str,
    what: &str,
    max: f64,
    run: &TestRun,
    counts: impl Fn(&Invoke) -> bool,
) -> Check {
    let hits: Vec<&Invoke> = run.invokes.iter().filter(|i| counts(i)).collect();
    let total = run.invokes.len().max(1);
    let share = hits.len() as f64 / total as f64;
    Check {
        name: name.into(),
        verdict: pass_if(share <= max + f64::EPSILON),
        expected: format!("≤ {:.1}% {what}", max * 100.0),
        actual: format!(
            "{:.1}% {what} ({} of {})",
            share * 100.0,
            hits.len(),
            run.invokes.len()
        ),
        traces: hits.iter().map(|i| i.trace_id.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::experiment::Outcome;
    use crate::experiment::trace::FunctionSegment;
    use crate::model::{Expectations, LatencyRatio};

    fn experiment(name: &str, expect: Expectations) -> Experiment {
        Experiment {
            name: name.into(),
            function: "f".into(),
            invocations: 3,
            concurrency: 1,
            payload: serde_json::json!({}),
            expect,
            trace_deadline: Duration::from_secs(60),
            allow_inconclusive: false,
        }
    }

    /// Invokes with these latencies (ms); `cold` per invoke: Some(true/false), None = no trace.
    fn run(name: &str, latencies: &[u64], cold: &[Option<bool>]) -> TestRun {
        TestRun {
            name: name.into(),
            function: "f".into(),
            function_name: "s-f".into(),
            qualifier: None,
            invocations: latencies.len() as u32,
            concurrency: 1,
            traced: true,
            renewed_environments: false,
            invokes: latencies
                .iter()
                .zip(cold)
                .enumerate()
                .map(|(i, (&ms, &cold))| Invoke {
                    index: i as u32 + 1,
                    trace_id: format!("1-00000000-{i:024x}"),
                    started: Duration::ZERO,
                    latency: Duration::from_millis(ms),
                    outcome: Outcome::Ok,
                    report: None,
                    cold_start: None,
                    segment: cold.map(|c| FunctionSegment {
                        initialization: c.then_some(Duration::from_millis(200)),
                        ..FunctionSegment::default()
                    }),
                })
                .collect(),
            invoking: Duration::ZERO,
            waiting_for_traces: Duration::ZERO,
        }
    }

    fn init(expect: InitExpectation) -> Expectations {
        Expectations {
            initialization: Some(expect),
            ..Expectations::default()
        }
    }

    #[test]
    fn the_reference_experiment_passes() {
        let default = experiment("default", init(InitExpectation::FirstOnly));
        let lmi = experiment(
            "lmi",
            Expectations {
                initialization: Some(InitExpectation::None),
                ratio: Some(LatencyRatio {
                    baseline: "default".into(),
                    statistic: Statistic::Max,
                    baseline_statistic: Statistic::First,
                    max: 0.5,
                }),
                max_error_rate: Some(0.0),
                ..Expectations::default()
            },
        );
        let runs = [
            run(
                "default",
                &[807, 58, 42],
                &[Some(true), Some(false), Some(false)],
            ),
            run("lmi", &[17, 23, 11], &[Some(false); 3]),
        ];
        let judged = judge(&[&default, &lmi], &runs);
        assert!(judged.iter().all(Judged::passed), "{judged:#?}");
        let ratio = &judged[1].checks[1];
        assert_eq!(
            ratio.actual,
            "max = 23.0 ms = 0.029 × first of default (807.0 ms)"
        );
    }

    #[test]
    fn a_warm_first_invoke_fails_first_only_with_its_trace() {
        let e = experiment("d", init(InitExpectation::FirstOnly));
        let judged = judge(&[&e], &[run("d", &[40, 41], &[Some(false), Some(false)])]);
        let check = &judged[0].checks[0];
        assert_eq!(judged[0].verdict, Verdict::Failed);
        assert!(
            check.actual.contains("invoke #1 was warm"),
            "{}",
            check.actual
        );
        assert_eq!(check.traces, ["1-00000000-000000000000000000000000"]);
    }

    #[test]
    fn a_cold_start_on_lmi_fails_none() {
        let e = experiment("l", init(InitExpectation::None));
        let judged = judge(
            &[&e],
            &[run(
                "l",
                &[1, 2, 3],
                &[Some(false), Some(true), Some(false)],
            )],
        );
        let check = &judged[0].checks[0];
        assert_eq!(check.verdict, Verdict::Failed);
        assert_eq!(check.actual, "Initialization on 1 of 3 traced invokes (#2)");
        assert_eq!(check.traces.len(), 1);
    }

    #[test]
    fn missing_traces_are_inconclusive_unless_allowed() {
        let mut e = experiment("l", init(InitExpectation::None));
        let runs = [run("l", &[1, 2], &[Some(false), None])];
        let judged = judge(&[&e], &runs);
        assert_eq!(judged[0].verdict, Verdict::Inconclusive);
        assert_eq!(
            judged[0].checks[0].traces,
            ["1-00000000-000000000000000000000001"]
        );
        e.allow_inconclusive = true;
        let judged = judge(&[&e], &runs);
        assert_eq!(judged[0].verdict, Verdict::Passed);
        assert_eq!(judged[0].checks[0].verdict, Verdict::Inconclusive);
    }

    #[test]
    fn a_violation_wins_over_a_missing_trace() {
        let e = experiment("l", init(InitExpectation::None));
        let judged = judge(&[&e], &[run("l", &[1, 2], &[Some(true), None])]);
        assert_eq!(judged[0].verdict, Verdict::Failed);
    }

    #[test]
    fn throttles_count_against_the_throttle_rate_not_errors() {
        let e = experiment(
            "b",
            Expectations {
                max_throttle_rate: Some(0.25),
                max_error_rate: Some(0.0),
                ..Expectations::default()
            },
        );
        let mut r = run("b", &[5, 5, 5, 5], &[None; 4]);
        for i in &mut r.invokes[2..] {
            i.outcome = Outcome::Throttled {
                reason: "Rate Exceeded.".into(),
            };
        }
        let judged = judge(&[&e], &[r]);
        let [throttle, error] = &judged[0].checks[..] else {
            panic!()
        };
        assert_eq!(throttle.verdict, Verdict::Failed);
        assert_eq!(throttle.actual, "50.0% throttled (2 of 4)");
        assert_eq!(error.verdict, Verdict::Passed);
    }

    #[test]
    fn latency_limits_name_the_slow_invokes() {
        let mut expect = Expectations::default();
        expect.latency.p50 = Some(Duration::from_millis(100));
        expect.latency.max = Some(Duration::from_millis(100));
        let e = experiment("t", expect);
        let judged = judge(&[&e], &[run("t", &[10, 20, 300], &[None; 3])]);
        let [p50, max] = &judged[0].checks[..] else {
            panic!()
        };
        assert_eq!(p50.verdict, Verdict::Passed);
        assert_eq!(max.verdict, Verdict::Failed);
        assert_eq!(max.traces, ["1-00000000-000000000000000000000002"]);
    }

    #[test]
    fn everything_throttled_fails_latency_and_initialization() {
        let mut expect = init(InitExpectation::None);
        expect.latency.p95 = Some(Duration::from_millis(100));
        let e = experiment("t", expect);
        let mut r = run("t", &[1], &[None]);
        r.invokes[0].outcome = Outcome::Throttled {
            reason: String::new(),
        };
        let judged = judge(&[&e], &[r]);
        assert!(
            judged[0]
                .checks
                .iter()
                .all(|c| c.verdict == Verdict::Failed)
        );
    }
}
