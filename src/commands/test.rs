//! `lmi test`: run the experiments of lmi.toml against the applied stack, judge them, report.

use std::path::Path;

use miette::{IntoDiagnostic, WrapErr, miette};
use tokio_util::sync::CancellationToken;

use super::interrupt::cancel_on_interrupt;
use super::prepare::load_stack;
use crate::aws::Aws;
use crate::cli::TestArgs;
use crate::experiment::{self, Options};
use crate::model::{Experiment, Stack};
use crate::report::test::Results;
use crate::{exit, report};

pub async fn run(file: &Path, args: &TestArgs) -> miette::Result<u8> {
    let stack = load_stack(file)?;
    let aws = Aws::connect(stack.region.as_deref()).await?;
    let results = test(&aws, &stack, args, cancel_on_interrupt()).await?;
    report(&results, &aws, args)
}

/// Runs the selected tests and judges them; shared with `lmi run`.
pub async fn test(
    aws: &Aws,
    stack: &Stack,
    args: &TestArgs,
    cancel: CancellationToken,
) -> miette::Result<Results> {
    let selected = select(stack, &args.filter)?;
    let progress = |line: String| eprintln!("{line}");
    let options = Options {
        progress: &progress,
        cancel,
    };
    let runs = experiment::run(aws, stack, &selected, &options).await?;
    let judged = experiment::verdict::judge(&selected, &runs);
    Ok(Results::new(&stack.name, &aws.region, runs, judged))
}

/// Prints the results and writes the report files; returns the exit code.
pub fn report(results: &Results, aws: &Aws, args: &TestArgs) -> miette::Result<u8> {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(results).into_diagnostic()?
        );
    } else {
        print!("{}", report::test::render(results, report::color_stdout()));
        println!("{}", report::summary::calls(&aws.calls.snapshot()));
    }
    if let Some(path) = &args.junit {
        let xml = report::junit::render(results)
            .map_err(|e| miette!("can't write the JUnit report: {e}"))?;
        write(path, &xml)?;
    }
    if let Some(path) = &args.markdown {
        write(path, &report::test::markdown(results))?;
    }
    Ok(if results.passed() {
        exit::OK
    } else {
        exit::TEST_FAILED
    })
}

fn write(path: &Path, text: &str) -> miette::Result<()> {
    std::fs::write(path, text)
        .into_diagnostic()
        .wrap_err_with(|| format!("can't write {}", path.display()))
}

/// The tests named by `--filter` (all when none), in lmi.toml's order, plus the baselines their
/// ratio checks compare with.
fn select<'a>(stack: &'a Stack, filter: &[String]) -> miette::Result<Vec<&'a Experiment>> {
    if stack.tests.is_empty() {
        return Err(miette!(
            code = "lmi::test::none",
            help = "add a [tests.NAME] table: see docs/config.md",
            "lmi.toml has no tests"
        ));
    }
    let names: Vec<&str> = stack.tests.iter().map(|t| t.name.as_str()).collect();
    for wanted in filter {
        if !names.contains(&wanted.as_str()) {
            return Err(miette!(
                code = "lmi::test::unknown",
                help = format!("the tests are: {}", names.join(", ")),
                "--filter {wanted}: no such test in lmi.toml"
            ));
        }
    }
    let mut keep: Vec<&str> = if filter.is_empty() {
        names.clone()
    } else {
        filter.iter().map(String::as_str).collect()
    };
    // Baselines of baselines too: validation rejects only self-reference.
    loop {
        let more: Vec<&str> = stack
            .tests
            .iter()
            .filter(|t| keep.contains(&t.name.as_str()))
            .filter_map(|t| t.expect.ratio.as_ref().map(|r| r.baseline.as_str()))
            .filter(|b| !keep.contains(b))
            .collect();
        if more.is_empty() {
            break;
        }
        keep.extend(more);
    }
    Ok(stack
        .tests
        .iter()
        .filter(|t| keep.contains(&t.name.as_str()))
        .collect())
}
