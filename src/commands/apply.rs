//! `lmi apply`: lock, plan, confirm, carry out, report.

use std::path::Path;
use std::time::Instant;

use super::interrupt::cancel_on_interrupt;
use super::prepare::{Out, Session, carry_out, confirm, load_stack, prepare};
use crate::aws::Aws;
use crate::cli::RunArgs;
use crate::engine::lock;
use crate::model::Stack;
use crate::{exit, report};

pub async fn run(file: &Path, auto_approve: bool, args: RunArgs) -> miette::Result<u8> {
    let stack = load_stack(file)?;
    let started = Instant::now();
    let aws = Aws::connect(stack.region.as_deref()).await?;
    // A converged stack needs no lock: apply stays read-only when there is nothing to do.
    let prepared = prepare(&aws, &stack).await?;
    if prepared.plan.is_empty() {
        print!(
            "{}",
            report::plan::render(&prepared.plan, &aws.region, report::color_stdout())
        );
        println!("{}", report::summary::calls(&aws.calls.snapshot()));
        return Ok(exit::OK);
    }
    let lock = lock::acquire(&aws, &stack.name, "apply", args.lock_timeout, &say).await?;
    let cancel = cancel_on_interrupt();
    let session = Session {
        args: &args,
        started,
        cancel: &cancel,
        out: Out::Stdout,
    };
    let applied = apply_stack(&aws, &stack, auto_approve, &session).await;
    lock.release().await?;
    applied
}

/// Progress lines on stderr.
pub fn say(line: String) {
    eprintln!("{line}");
}

/// Plans, shows the plan, confirms and carries it out; the caller holds the lock, so the plan
/// is made (again) under it. Returns `OK` or `ERROR`.
pub async fn apply_stack(
    aws: &Aws,
    stack: &Stack,
    auto_approve: bool,
    session: &Session<'_>,
) -> miette::Result<u8> {
    let out = session.out;
    let prepared = prepare(aws, stack).await?;
    out.print(report::plan::render(
        &prepared.plan,
        &aws.region,
        out.color(),
    ));
    if prepared.plan.is_empty() {
        out.line(report::summary::calls(&aws.calls.snapshot()));
        return Ok(exit::OK);
    }
    if !confirm("Apply these changes?", auto_approve)? {
        eprintln!("Cancelled: nothing was changed.");
        return Ok(exit::ERROR);
    }
    let summary = carry_out(
        aws,
        &prepared.plan,
        prepared.observation.ids(),
        &prepared.code,
        session,
    )
    .await;
    Ok(if summary.succeeded() {
        exit::OK
    } else {
        exit::ERROR
    })
}
