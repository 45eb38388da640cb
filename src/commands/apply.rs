//! `lmi apply`: plan, confirm, carry out, report.

use std::path::Path;
use std::time::Instant;

use super::prepare::{carry_out, confirm, load_stack, prepare};
use crate::cli::RunArgs;
use crate::{exit, report};

pub async fn run(file: &Path, auto_approve: bool, args: RunArgs) -> miette::Result<u8> {
    let stack = load_stack(file)?;
    let started = Instant::now();
    let prepared = prepare(&stack).await?;
    print!(
        "{}",
        report::plan::render(&prepared.plan, &prepared.aws.region, report::color_stdout())
    );
    if prepared.plan.is_empty() {
        println!("{}", report::summary::calls(&prepared.aws.calls.snapshot()));
        return Ok(exit::OK);
    }
    if !confirm("Apply these changes?", auto_approve)? {
        eprintln!("Cancelled: nothing was changed.");
        return Ok(exit::ERROR);
    }
    let summary = carry_out(
        &prepared.aws,
        &prepared.plan,
        prepared.observation.ids(),
        &prepared.code,
        args,
        started,
    )
    .await;
    Ok(if summary.succeeded() {
        exit::OK
    } else {
        exit::ERROR
    })
}
