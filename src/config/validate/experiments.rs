//! `[tests.NAME]`: experiments on the stack's functions and what they must show.

use std::time::Duration;

use super::{S, Validator};
use crate::config::diagnostic::Problem;
use crate::config::raw::{RawConfig, RawExpect, RawFunction, RawTest};
use crate::config::read::did_you_mean;
use crate::model::{
    Expectations, Experiment, InitExpectation, LatencyLimits, LatencyRatio, Statistic, limits,
};

impl Validator<'_> {
    pub(super) fn experiments(&mut self, raw: &RawConfig) -> Vec<Experiment> {
        let test_names: Vec<&str> = raw
            .tests
            .iter()
            .map(|t| t.name.get_ref().as_str())
            .collect();
        raw.tests
            .iter()
            .filter_map(|t| self.experiment(t, raw, &test_names))
            .collect()
    }

    fn experiment(
        &mut self,
        raw: &RawTest,
        config: &RawConfig,
        test_names: &[&str],
    ) -> Option<Experiment> {
        let name = raw.name.get_ref().clone();
        let function = match &raw.function {
            None => {
                self.missing(
                    &format!("tests.{name}.function"),
                    Problem::error(
                        "lmi::config::missing_key",
                        raw.span.clone(),
                        format!("missing key `tests.{name}.function`"),
                    )
                    .label("`function` is required here")
                    .help("the name of a [functions.NAME] section to invoke"),
                );
                None
            }
            Some(reference) => {
                // Look among every declared function, valid or not, so one mistake in a function
                // does not also read as a dangling reference here.
                let declared = config
                    .functions
                    .iter()
                    .any(|f| f.name.get_ref() == reference.get_ref());
                if !declared {
                    let names: Vec<&str> = config
                        .functions
                        .iter()
                        .map(|f| f.name.get_ref().as_str())
                        .collect();
                    let mut problem = Problem::error(
                        "lmi::test::unknown_function",
                        reference.span(),
                        format!("no function named `{}`", reference.get_ref()),
                    )
                    .label("not defined in this file");
                    problem = match did_you_mean(reference.get_ref(), &names) {
                        Some(best) => problem.help(format!("did you mean `{best}`?")),
                        None => problem.help(format!("defined functions: {}", names.join(", "))),
                    };
                    self.push(problem);
                }
                Some(reference)
            }
        };
        // The function as written: its tracing setting counts even if it has other errors.
        let target = function.and_then(|r| {
            config
                .functions
                .iter()
                .find(|f| f.name.get_ref() == r.get_ref())
        });

        let invocations = match &raw.invocations {
            Some(n) => self.in_range(n, limits::TEST_INVOCATIONS, "`invocations`", "")?,
            None => 3,
        };
        let concurrency = match &raw.concurrency {
            Some(c) => {
                let c_value = self.in_range(c, limits::TEST_CONCURRENCY, "`concurrency`", "")?;
                if c_value > invocations {
                    self.push(
                        Problem::error(
                            "lmi::test::concurrency",
                            c.span(),
                            format!("concurrency {c_value} is above the {invocations} invocations"),
                        )
                        .label("more parallel invokes than invokes")
                        .help("raise `invocations` or lower `concurrency`"),
                    );
                    return None;
                }
                c_value
            }
            None => 1,
        };
        let expect = match &raw.expect {
            Some(e) => self.expectations(e, raw, target, concurrency, test_names)?,
            None => Expectations::default(),
        };
        let trace_deadline = match &raw.trace_deadline_s {
            Some(d) if *d.get_ref() > 0.0 && *d.get_ref() <= 900.0 => {
                Duration::from_secs_f64(*d.get_ref())
            }
            Some(d) => {
                self.push(
                    Problem::error(
                        "lmi::config::out_of_range",
                        d.span(),
                        format!(
                            "`trace_deadline_s` must be above 0 and at most 900, got {}",
                            d.get_ref()
                        ),
                    )
                    .label("not in (0, 900]"),
                );
                return None;
            }
            None => Duration::from_secs(60),
        };
        Some(Experiment {
            name,
            function: function?.get_ref().clone(),
            invocations: invocations as u32,
            concurrency: concurrency as u32,
            payload: raw
                .payload
                .as_ref()
                .map_or_else(|| serde_json::json!({}), |p| p.get_ref().clone()),
            expect,
            trace_deadline,
            allow_inconclusive: raw
                .allow_inconclusive
                .as_ref()
                .is_some_and(|a| *a.get_ref()),
        })
    }

    fn expectations(
        &mut self,
        raw: &RawExpect,
        test: &RawTest,
        target: Option<&RawFunction>,
        concurrency: i64,
        test_names: &[&str],
    ) -> Option<Expectations> {
        let initialization = match &raw.initialization {
            None => None,
            Some(value) => {
                let expectation = match self.one_of(
                    value,
                    &["none", "first_only", "any"],
                    "initialization expectation",
                )? {
                    "none" => InitExpectation::None,
                    "first_only" => InitExpectation::FirstOnly,
                    _ => InitExpectation::Any,
                };
                // "any" asserts nothing about traces, so it doesn't need them.
                let untraced = target.filter(|f| {
                    expectation != InitExpectation::Any
                        && !f.tracing.as_ref().is_some_and(|t| *t.get_ref())
                        && !self
                            .invalid
                            .contains(&format!("functions.{}.tracing", f.name.get_ref()))
                });
                if let Some(f) = untraced.map(|f| f.name.get_ref()) {
                    self.push(
                        Problem::error(
                            "lmi::test::tracing_required",
                            value.span(),
                            format!("asserting on Initialization segments needs X-Ray tracing on function `{f}`"),
                        )
                        .label("no traces to check without tracing")
                        .help(format!("set tracing = true in [functions.{f}]")),
                    );
                }
                if expectation == InitExpectation::FirstOnly && concurrency > 1 {
                    self.push(
                        Problem::warning(
                            "lmi::test::first_only_concurrent",
                            value.span(),
                            "\"first_only\" with concurrent invokes: several environments may start at once",
                        )
                        .label("which invoke is first is a race")
                        .help("use concurrency = 1 for a cold-start check"),
                    );
                }
                Some(expectation)
            }
        };
        let latency = match &raw.latency_ms {
            None => LatencyLimits::default(),
            Some(l) => LatencyLimits {
                p50: self.millis(l.p50.as_ref(), "p50"),
                p95: self.millis(l.p95.as_ref(), "p95"),
                p99: self.millis(l.p99.as_ref(), "p99"),
                max: self.millis(l.max.as_ref(), "max"),
            },
        };
        let ratio = match &raw.ratio {
            None => None,
            Some(r) => {
                let baseline = r.baseline.as_ref().or_else(|| {
                    self.missing(
                        &format!("tests.{}.expect.ratio.baseline", test.name.get_ref()),
                        Problem::error(
                            "lmi::config::missing_key",
                            r.span.clone(),
                            format!(
                                "missing key `tests.{}.expect.ratio.baseline`",
                                test.name.get_ref()
                            ),
                        )
                        .label("compare against which test?")
                        .help("baseline = \"NAME\" names another [tests.NAME]"),
                    );
                    None
                })?;
                if baseline.get_ref() == test.name.get_ref() {
                    self.push(
                        Problem::error(
                            "lmi::test::baseline",
                            baseline.span(),
                            "a test can't be its own baseline",
                        )
                        .label("this test"),
                    );
                    return None;
                }
                if !test_names.contains(&baseline.get_ref().as_str()) {
                    let mut problem = Problem::error(
                        "lmi::test::baseline",
                        baseline.span(),
                        format!("no test named `{}`", baseline.get_ref()),
                    )
                    .label("not defined in this file");
                    if let Some(best) = did_you_mean(baseline.get_ref(), test_names) {
                        problem = problem.help(format!("did you mean `{best}`?"));
                    }
                    self.push(problem);
                    return None;
                }
                let statistic = self.statistic(r.statistic.as_ref(), Statistic::P50)?;
                let baseline_statistic =
                    self.statistic(r.baseline_statistic.as_ref(), Statistic::P50)?;
                let max = r.max.as_ref().or_else(|| {
                    self.missing(
                        &format!("tests.{}.expect.ratio.max", test.name.get_ref()),
                        Problem::error(
                            "lmi::config::missing_key",
                            r.span.clone(),
                            format!(
                                "missing key `tests.{}.expect.ratio.max`",
                                test.name.get_ref()
                            ),
                        )
                        .label("the largest ratio allowed")
                        .help(
                            "e.g. max = 0.2: this test's statistic at most 20% of the baseline's",
                        ),
                    );
                    None
                })?;
                if *max.get_ref() <= 0.0 {
                    self.push(
                        Problem::error(
                            "lmi::config::out_of_range",
                            max.span(),
                            "`max` must be above 0",
                        )
                        .label("not a positive ratio"),
                    );
                    return None;
                }
                Some(LatencyRatio {
                    baseline: baseline.get_ref().clone(),
                    statistic,
                    baseline_statistic,
                    max: *max.get_ref(),
                })
            }
        };
        Some(Expectations {
            initialization,
            latency,
            ratio,
            max_throttle_rate: self.rate(raw.max_throttle_rate.as_ref(), "max_throttle_rate"),
            max_error_rate: self.rate(raw.max_error_rate.as_ref(), "max_error_rate"),
        })
    }

    fn statistic(&mut self, value: Option<&S<String>>, default: Statistic) -> Option<Statistic> {
        match value {
            None => Some(default),
            Some(v) => self
                .one_of(v, Statistic::NAMES, "statistic")
                .and_then(Statistic::parse),
        }
    }

    fn millis(&mut self, value: Option<&S<f64>>, what: &str) -> Option<Duration> {
        let value = value?;
        let ms = *value.get_ref();
        if ms > 0.0 && ms <= 900_000.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
        self.push(
            Problem::error(
                "lmi::config::out_of_range",
                value.span(),
                format!("latency limit `{what}` must be above 0 and at most 900000 ms, got {ms}"),
            )
            .label("not a positive duration in ms"),
        );
        None
    }

    fn rate(&mut self, value: Option<&S<f64>>, what: &str) -> Option<f64> {
        let value = value?;
        let rate = *value.get_ref();
        if (0.0..=1.0).contains(&rate) {
            return Some(rate);
        }
        self.push(
            Problem::error(
                "lmi::config::out_of_range",
                value.span(),
                format!("`{what}` is a fraction from 0 to 1, got {rate}"),
            )
            .label("not in 0–1")
            .help("0.05 means at most 5% of invokes"),
        );
        None
    }
}
