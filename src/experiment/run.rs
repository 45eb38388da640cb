//! The part of `lmi test` that talks to AWS: find each function's invocable version, invoke it
//! in the test's pattern, and poll X-Ray for the traces.
//!
//! Tests are invoked one after another, in lmi.toml's order, so that one test's burst never
//! warms or saturates another's environments. A test's traces are polled in the background
//! while the next test invokes; every poll task is joined before judging.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use miette::miette;
use tokio_util::sync::CancellationToken;

use super::{Invoke, Outcome, TestRun, logtail, trace};
use crate::aws::invoke::InvokeError;
use crate::aws::{Aws, AwsError};
use crate::model::{Experiment, InitExpectation, Stack};
use crate::plan::resource::{Kind, Spec};

/// The first poll for traces comes right after the last invoke; then polls are spaced by this,
/// growing by half each time up to `MAX_POLL_INTERVAL`, which bounds how long a verdict can lag
/// behind the last trace's arrival.
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(250);
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What `run` reports while it works (one line each).
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

pub struct Options<'a> {
    pub progress: Progress<'a>,
    pub cancel: CancellationToken,
}

/// A function as deployed: where to send invokes.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    qualifier: Option<String>,
    lmi: bool,
    tracing: bool,
}

/// Runs `tests` (in order) against the applied stack and returns what each showed. Fails,
/// before any invoke, if a function under test is missing or not Active.
pub async fn run(
    aws: &Aws,
    stack: &Stack,
    tests: &[&Experiment],
    options: &Options<'_>,
) -> miette::Result<Vec<TestRun>> {
    let targets = targets(aws, stack, tests).await?;
    let mut polls = Vec::new();
    for experiment in tests {
        if options.cancel.is_cancelled() {
            break;
        }
        let target = &targets[&experiment.function];
        let renew =
            experiment.expect.initialization == Some(InitExpectation::FirstOnly) && !target.lmi;
        if renew {
            // A default function stays warm for minutes after an invoke; without new
            // environments a second `lmi test` would never see invoke #1 start cold.
            (options.progress)(format!(
                "{}: renewing the environments of `{}` so that invoke #1 is a cold start",
                experiment.name, experiment.function
            ));
            aws.lambda
                .renew_environments(&target.name, &renewal_note())
                .await?;
        }
        (options.progress)(format!(
            "{}: invoking `{}`{} {} time(s), {}",
            experiment.name,
            experiment.function,
            target
                .qualifier
                .as_deref()
                .map(|q| format!(" ({q})"))
                .unwrap_or_default(),
            experiment.invocations,
            if experiment.concurrency == 1 {
                "one after another".to_string()
            } else {
                format!("{} at a time", experiment.concurrency)
            }
        ));
        let started = Instant::now();
        let invokes = invoke_all(aws, target, experiment, &options.cancel).await;
        let invoking = started.elapsed();
        let traced = target.tracing && experiment.expect.initialization.is_some();
        let run = TestRun {
            name: experiment.name.clone(),
            function: experiment.function.clone(),
            function_name: target.name.clone(),
            qualifier: target.qualifier.clone(),
            invocations: experiment.invocations,
            concurrency: experiment.concurrency,
            traced,
            renewed_environments: renew,
            invokes,
            invoking,
            waiting_for_traces: Duration::ZERO,
        };
        let xray = aws.xray.clone();
        let cancel = options.cancel.clone();
        let deadline = experiment.trace_deadline;
        polls.push(tokio::spawn(async move {
            if traced {
                collect_traces(&xray, run, deadline, &cancel).await
            } else {
                Ok(run)
            }
        }));
    }
    let mut runs = Vec::new();
    for poll in polls {
        runs.push(
            poll.await
                .map_err(|e| miette!("a trace poll stopped: {e}"))??,
        );
    }
    if options.cancel.is_cancelled() {
        let invokes: usize = runs.iter().map(|r| r.invokes.len()).sum();
        return Err(miette!(
            code = "lmi::test::interrupted",
            "interrupted after {invokes} invoke(s): no verdict, and no report written"
        ));
    }
    Ok(runs)
}

/// Where each function under test is invoked, checked before anything is.
async fn targets(
    aws: &Aws,
    stack: &Stack,
    tests: &[&Experiment],
) -> miette::Result<BTreeMap<String, Target>> {
    let observed = aws.lambda.observe(&stack.name).await?;
    let mut targets = BTreeMap::new();
    for experiment in tests {
        let logical = &experiment.function;
        if targets.contains_key(logical) {
            continue;
        }
        let aws_name = stack.aws_name(logical);
        let found = observed.iter().find(|o| {
            o.resource.address.kind == Kind::Function && &o.resource.address.name == logical
        });
        let Some(found) = found else {
            return Err(miette!(
                code = "lmi::test::not_applied",
                help = "run `lmi apply` first (or `lmi run`, which applies, tests and destroys)",
                "function `{logical}` ({aws_name}) of stack `{}` is not in {}",
                stack.name,
                aws.region
            ));
        };
        let Spec::Function {
            tracing,
            capacity_provider,
            ..
        } = &found.resource.spec
        else {
            return Err(miette!(
                "`{aws_name}` is tagged as a function but is not one"
            ));
        };
        let lmi = capacity_provider.is_some();
        let qualifier = found.parts.get("qualifier").cloned();
        if lmi && qualifier.is_none() {
            return Err(miette!(
                code = "lmi::test::not_published",
                help = "run `lmi apply`: it publishes the function's version",
                "LMI function `{logical}` ({aws_name}) has no published version to invoke (an LMI function can't be invoked at $LATEST)"
            ));
        }
        let (state, reason) = aws.lambda.state(&aws_name, qualifier.as_deref()).await?;
        if state != "Active" {
            return Err(miette!(
                code = "lmi::test::not_active",
                help = if state == "Failed" {
                    "see the reason; fix lmi.toml or the code and run `lmi apply`"
                } else {
                    "wait until it is Active (`lmi apply` waits for that), then test again"
                },
                "function `{logical}` ({aws_name}{}) is {state}, not Active{}",
                qualifier
                    .as_deref()
                    .map(|q| format!(":{q}"))
                    .unwrap_or_default(),
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ));
        }
        targets.insert(
            logical.clone(),
            Target {
                name: aws_name,
                qualifier: qualifier.filter(|_| lmi),
                lmi,
                tracing: *tracing,
            },
        );
    }
    Ok(targets)
}

fn renewal_note() -> String {
    format!(
        "lmi test: environments renewed at {} for a cold first invoke",
        crate::model::now_rfc3339()
    )
}

/// A new X-Ray trace id: `1-<8 hex digits of epoch seconds>-<24 random hex digits>`.
pub fn new_trace_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "1-{:08x}-{:08x}{:016x}",
        secs as u32,
        fastrand::u32(..),
        fastrand::u64(..)
    )
}

/// Invokes in the experiment's pattern: `invocations` invokes, `concurrency` in flight.
/// Stops starting new ones when cancelled.
async fn invoke_all(
    aws: &Aws,
    target: &Target,
    experiment: &Experiment,
    cancel: &CancellationToken,
) -> Vec<Invoke> {
    // Validated TOML converts to JSON; the fallback keeps a payload error visible per invoke.
    let payload = serde_json::to_vec(&experiment.payload).unwrap_or_else(|_| b"{}".to_vec());
    let start = Instant::now();
    let mut invokes: Vec<Invoke> = futures::stream::iter(1..=experiment.invocations)
        .map(|index| {
            let payload = &payload;
            async move {
                if cancel.is_cancelled() {
                    return None;
                }
                let trace_id = new_trace_id();
                let started = start.elapsed();
                let sent = Instant::now();
                let result = aws
                    .invoker
                    .invoke(
                        &target.name,
                        target.qualifier.as_deref(),
                        payload,
                        &format!("Root={trace_id};Sampled=1"),
                    )
                    .await;
                let latency = sent.elapsed();
                let (outcome, tail) = match result {
                    Ok(done) => (
                        done.function_error.map_or(Outcome::Ok, |function_error| {
                            Outcome::FunctionError { function_error }
                        }),
                        done.log_tail
                            .as_deref()
                            .map(logtail::read)
                            .unwrap_or_default(),
                    ),
                    Err(InvokeError::Throttled { reason }) => {
                        (Outcome::Throttled { reason }, logtail::Tail::default())
                    }
                    Err(InvokeError::Failed { status, error }) => (
                        Outcome::Failed {
                            status,
                            error: error.to_string(),
                        },
                        logtail::Tail::default(),
                    ),
                };
                Some(Invoke {
                    index,
                    trace_id,
                    started,
                    latency,
                    outcome,
                    report: tail.report,
                    cold_start: tail.cold_start,
                    segment: None,
                })
            }
        })
        .buffer_unordered(experiment.concurrency.max(1) as usize)
        .filter_map(std::future::ready)
        .collect()
        .await;
    invokes.sort_by_key(|i| i.index);
    invokes
}

/// Polls X-Ray until every invoke that ran has its function segment, or the deadline passes.
async fn collect_traces(
    xray: &crate::aws::xray::Xray,
    mut run: TestRun,
    deadline: Duration,
    cancel: &CancellationToken,
) -> Result<TestRun, AwsError> {
    let start = Instant::now();
    let mut interval = FIRST_POLL_INTERVAL;
    loop {
        let pending: Vec<String> = run
            .invokes
            .iter()
            .filter(|i| i.outcome.ran() && i.segment.is_none())
            .map(|i| i.trace_id.clone())
            .collect();
        if pending.is_empty() {
            break;
        }
        let found = xray.segments(&pending).await?;
        for invoke in &mut run.invokes {
            if invoke.segment.is_none()
                && let Some(documents) = found.get(&invoke.trace_id)
            {
                invoke.segment = trace::function_segment(
                    documents.iter().map(String::as_str),
                    &run.function_name,
                );
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline
            || run
                .invokes
                .iter()
                .all(|i| !i.outcome.ran() || i.segment.is_some())
        {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(interval.min(deadline - elapsed)) => {}
            () = cancel.cancelled() => break,
        }
        interval = (interval * 3 / 2).min(MAX_POLL_INTERVAL);
    }
    run.waiting_for_traces = start.elapsed();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_have_aws_shape_and_differ() {
        let a = new_trace_id();
        let b = new_trace_id();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert!(
            parts[1..]
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
