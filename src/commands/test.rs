//! `lmi test`: run the experiments of lmi.toml against the applied stack, judge them, report.

use std::path::Path;

use miette::{IntoDiagnostic, miette};
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
    check_report_paths(args)?;
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
        write_report(path, &xml, false)?;
    }
    if let Some(path) = &args.markdown {
        write_report(path, &report::test::markdown(results), true)?;
    }
    Ok(if results.passed() {
        exit::OK
    } else {
        exit::TEST_FAILED
    })
}

/// Writes a report: the JUnit file is replaced, the Markdown summary appended to (a CI step
/// summary file may hold other steps' text).
fn write_report(path: &Path, text: &str, append: bool) -> miette::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| report_path_error(path, e))
}

fn report_path_error(path: &Path, e: std::io::Error) -> miette::Report {
    miette!(
        code = "lmi::test::report_path",
        help = "create its directory, or pass another path",
        "can't write the report {}: {e}",
        path.display()
    )
}

/// Fails before any AWS call when a report file can't be written, rather than after every
/// invoke. Opening for append creates the file and changes nothing in an existing one.
pub fn check_report_paths(args: &TestArgs) -> miette::Result<()> {
    for path in args.junit.iter().chain(&args.markdown) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| report_path_error(path, e))?;
    }
    Ok(())
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
