//! Glue, one module per subcommand: load → plan → engine → report.

mod apply;
mod destroy;
mod interrupt;
mod plan;
mod prepare;
mod run;
mod stacks;
mod test;
mod validate;

use crate::cli::{Cli, Command};

/// Runs a command and returns its exit code; `Err` is an error to show (exit 1).
pub fn run(cli: Cli) -> miette::Result<u8> {
    match cli.command {
        Command::Validate { format } => validate::run(&cli.file, format),
        Command::Plan {
            json,
            detailed_exitcode,
        } => runtime()?.block_on(plan::run(&cli.file, json, detailed_exitcode)),
        Command::Apply { auto_approve, run } => {
            runtime()?.block_on(apply::run(&cli.file, auto_approve, run))
        }
        Command::Test(args) => runtime()?.block_on(test::run(&cli.file, &args)),
        Command::Run {
            suffix,
            keep_on_failure,
            adopt,
            test,
            run,
        } => runtime()?.block_on(run::run(
            &cli.file,
            run::Options {
                suffix: suffix.as_deref(),
                keep_on_failure,
                adopt,
                test: &test,
                run: &run,
            },
        )),
        Command::Ls { region, json } => runtime()?.block_on(stacks::ls(region, json)),
        Command::Gc {
            older_than,
            dry_run,
            auto_approve,
            region,
            run,
        } => runtime()?.block_on(stacks::gc(older_than, dry_run, auto_approve, region, run)),
        Command::Unlock {
            stack,
            region,
            force,
        } => runtime()?.block_on(stacks::unlock(&cli.file, stack, region, force)),
        Command::Destroy {
            auto_approve,
            stack,
            region,
            run,
        } => runtime()?.block_on(destroy::run(&cli.file, auto_approve, stack, region, run)),
    }
}

fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("can't start the async runtime: {e}"))
}
