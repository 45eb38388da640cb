//! The `lmi` binary: parse arguments, run the command, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A usage error exits 1, like every other error: clap's default, 2, means "changes" to a
    // script running `plan --detailed-exitcode`. --help and --version still exit 0.
    let cli = match lmi::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                lmi::exit::ERROR
            } else {
                lmi::exit::OK
            });
        }
    };
    lmi::report::install_miette_hook();
    match lmi::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(lmi::exit::ERROR)
        }
    }
}
