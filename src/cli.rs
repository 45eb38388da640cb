//! The command line, as clap sees it. Holds only what the user typed; `commands` turns it into
//! work.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lmi",
    version,
    about = "Deploy, test and destroy Lambda Managed Instances stacks from one lmi.toml",
    long_about = None,
)]
pub struct Cli {
    /// The stack's config file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "lmi.toml",
        value_name = "FILE"
    )]
    pub file: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check lmi.toml against every rule lmi knows, without calling AWS.
    ///
    /// Exit status: 0 valid (warnings allowed), 1 invalid or unreadable.
    Validate {
        /// How to print problems: text for people, json for scripts.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show what `apply` would change in AWS, without changing anything.
    ///
    /// Exit status: 0 no changes (or changes without --detailed-exitcode), 2 changes with
    /// --detailed-exitcode, 1 error.
    Plan {
        /// Print the plan as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Exit 2 when the plan has changes, 0 when it has none.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Create or update the stack in AWS so that it matches lmi.toml.
    ///
    /// Shows the plan and asks on a terminal; elsewhere --auto-approve is required.
    Apply {
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run the tests of lmi.toml against the applied stack: invoke, fetch X-Ray traces, judge.
    ///
    /// Exit status: 0 every test passed, 3 a check failed or was inconclusive, 1 an error (an
    /// invalid lmi.toml, a stack that isn't applied, an AWS failure).
    Test(TestArgs),
    /// Delete every resource tagged with the stack, in reverse dependency order.
    ///
    /// Needs only the stack name: from lmi.toml, or --stack when the file is gone or broken.
    Destroy {
        /// Destroy without asking.
        #[arg(long)]
        auto_approve: bool,
        /// The stack to destroy, instead of the one in lmi.toml.
        #[arg(long, value_name = "NAME")]
        stack: Option<String>,
        /// The region, with --stack (otherwise lmi.toml's or the AWS configuration's).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TestArgs {
    /// Run only this test (repeatable); tests its ratio checks compare with run too.
    #[arg(long, value_name = "NAME")]
    pub filter: Vec<String>,
    /// Print the results as JSON on stdout (schema in docs/testing.md).
    #[arg(long)]
    pub json: bool,
    /// Also write a JUnit XML report: one test case per check.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a Markdown summary (e.g. to $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RunArgs {
    /// How many AWS operations may run at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}
