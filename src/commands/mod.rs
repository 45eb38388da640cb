//! Glue, one module per subcommand: load → (plan → engine) → report.

mod validate;

use crate::cli::{Cli, Command};

/// Runs a command and returns its exit code; `Err` is an error to show (exit 1).
pub fn run(cli: Cli) -> miette::Result<u8> {
    match cli.command {
        Command::Validate { format } => validate::run(&cli.file, format),
    }
}
