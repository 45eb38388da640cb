//! The `lmi` binary: parse arguments, run the command, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lmi::cli::Cli::parse();
    lmi::report::install_miette_hook();
    match lmi::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(lmi::exit::ERROR)
        }
    }
}
