//! `lmi destroy`: delete everything tagged with the stack, and check that nothing is left.

use std::path::Path;
use std::time::Instant;

use super::apply::say;
use super::interrupt::cancel_on_interrupt;
use super::prepare::{Out, Session, carry_out, confirm, load_stack};
use crate::aws::Aws;
use crate::cli::RunArgs;
use crate::engine::{self, lock};
use crate::plan;
use crate::{exit, report};

pub async fn run(
    file: &Path,
    auto_approve: bool,
    stack: Option<String>,
    region: Option<String>,
    args: RunArgs,
) -> miette::Result<u8> {
    let (name, region) = stack_and_region(file, stack, region)?;
    let started = Instant::now();
    let aws = Aws::connect(region.as_deref()).await?;
    if engine::observe(&aws, &name).await?.resources.is_empty() {
        // A lock left by a killed command is the stack's last trace: take it over (it is
        // stale) and remove it.
        if lock::holder(&aws, &name).await?.is_some() {
            lock::acquire(&aws, &name, "destroy", args.lock_timeout, &say)
                .await?
                .release()
                .await?;
        }
        println!(
            "Nothing tagged lmi:stack={name} in {}: nothing to destroy.",
            aws.region
        );
        return Ok(exit::OK);
    }
    let lock = lock::acquire(&aws, &name, "destroy", args.lock_timeout, &say).await?;
    let cancel = cancel_on_interrupt();
    let session = Session {
        args: &args,
        started,
        cancel: &cancel,
        out: Out::Stdout,
    };
    let destroyed = destroy_stack(&aws, &name, auto_approve, &session).await;
    lock.release().await?;
    destroyed
}

/// The stack name and region from `--stack`/`--region`, else from lmi.toml: the name is all
/// destroy needs, so a broken or missing lmi.toml doesn't block it when `--stack` is given.
pub fn stack_and_region(
    file: &Path,
    stack: Option<String>,
    region: Option<String>,
) -> miette::Result<(String, Option<String>)> {
    Ok(match stack {
        Some(name) => (name, region),
        None => {
            let stack = load_stack(file)?;
            (stack.name, region.or(stack.region))
        }
    })
}

/// Plans the deletion of everything tagged with the stack, confirms, carries it out, and checks
/// that nothing is left (listing what is); the caller holds the lock. Returns `OK`, or `ERROR`
/// when something failed or remains.
pub async fn destroy_stack(
    aws: &Aws,
    name: &str,
    auto_approve: bool,
    session: &Session<'_>,
) -> miette::Result<u8> {
    let out = session.out;
    let observation = engine::observe(aws, name).await?;
    let plan = plan::diff(name, Vec::new(), observation.resources.clone());
    if plan.is_empty() {
        out.line(format_args!(
            "Nothing tagged lmi:stack={name} in {}: nothing to destroy.",
            aws.region
        ));
        return Ok(exit::OK);
    }
    out.print(report::plan::render(&plan, &aws.region, out.color()));
    if !confirm(
        &format!("Destroy every resource of stack `{name}`?"),
        auto_approve,
    )? {
        eprintln!("Cancelled: nothing was deleted.");
        return Ok(exit::ERROR);
    }
    let summary = carry_out(
        aws,
        &plan,
        observation.ids(),
        &engine::execute::Code::new(),
        session,
    )
    .await;
    // Trust, but verify: anything still tagged with the stack is a leak to report.
    let left = engine::observe(aws, name).await?;
    if !left.resources.is_empty() {
        out.line(report::summary::leftovers(name, &left));
    }
    Ok(if summary.succeeded() && left.resources.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    })
}
