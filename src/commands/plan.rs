//! `lmi plan`: what apply would do, as text or JSON.

use std::path::Path;

use miette::IntoDiagnostic;

use super::prepare::{load_stack, prepare};
use crate::aws::Aws;
use crate::{exit, report};

pub async fn run(file: &Path, json: bool, detailed_exitcode: bool) -> miette::Result<u8> {
    let stack = load_stack(file)?;
    let aws = Aws::connect(stack.region.as_deref()).await?;
    let prepared = prepare(&aws, &stack).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&prepared.plan).into_diagnostic()?
        );
    } else {
        print!(
            "{}",
            report::plan::render(&prepared.plan, &aws.region, report::color_stdout())
        );
    }
    Ok(if detailed_exitcode && !prepared.plan.is_empty() {
        exit::CHANGES
    } else {
        exit::OK
    })
}
