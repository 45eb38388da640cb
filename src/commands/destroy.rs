//! `lmi destroy`: delete everything tagged with the stack, and check that nothing is left.

use std::path::Path;
use std::time::Instant;

use super::prepare::{carry_out, confirm, load_stack};
use crate::aws::Aws;
use crate::cli::RunArgs;
use crate::engine;
use crate::plan;
use crate::{exit, report};

pub async fn run(
    file: &Path,
    auto_approve: bool,
    stack: Option<String>,
    region: Option<String>,
    args: RunArgs,
) -> miette::Result<u8> {
    // The stack name is all destroy needs, so a broken or missing lmi.toml doesn't block it.
    let (name, region) = match stack {
        Some(name) => (name, region),
        None => {
            let stack = load_stack(file)?;
            (stack.name, region.or(stack.region))
        }
    };
    let started = Instant::now();
    let aws = Aws::connect(region.as_deref()).await?;
    let observation = engine::observe(&aws, &name).await?;
    let plan = plan::diff(&name, Vec::new(), observation.resources.clone());
    print!(
        "{}",
        report::plan::render(&plan, &aws.region, report::color_stdout())
    );
    if plan.is_empty() {
        println!(
            "Nothing tagged lmi:stack={name} in {}: nothing to destroy.",
            aws.region
        );
        return Ok(exit::OK);
    }
    if !confirm(
        &format!("Destroy every resource of stack `{name}`?"),
        auto_approve,
    )? {
        eprintln!("Cancelled: nothing was deleted.");
        return Ok(exit::ERROR);
    }
    let summary = carry_out(
        &aws,
        &plan,
        observation.ids(),
        &engine::execute::Code::new(),
        args,
        started,
    )
    .await;
    // Trust, but verify: anything still tagged with the stack is a leak to report.
    let left = engine::observe(&aws, &name).await?;
    if !left.resources.is_empty() {
        println!("{}", report::summary::leftovers(&name, &left));
        return Ok(exit::ERROR);
    }
    Ok(if summary.succeeded() {
        exit::OK
    } else {
        exit::ERROR
    })
}
