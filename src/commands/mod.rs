//! Glue, one module per subcommand: load → plan → engine → report.

mod apply;
mod destroy;
mod interrupt;
mod plan;
mod prepare;
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
