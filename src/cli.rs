//! The command line, as clap sees it. Holds only what the user typed; `commands` turns it into
//! work.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Apply, test and destroy in one command: the CI gate. Destroy always runs, after passing
    /// or failing tests, a failed apply, or an interrupt.
    ///
    /// Exit status: the tests' (0 passed, 3 failed) or 1 for an apply error, unless the cleanup
    /// fails (4, with what remains listed); 130 after an interrupt.
    Run {
        /// Appended to the stack name as `-SUFFIX`, so every CI job gets its own stack
        /// (e.g. --suffix "$GITHUB_RUN_ID").
        #[arg(long, value_name = "SUFFIX", value_parser = parse_suffix)]
        suffix: Option<String>,
        /// Keep the stack when apply or a test fails, for debugging (`lmi destroy` removes it).
        #[arg(long)]
        keep_on_failure: bool,
        /// Run even if the stack already exists (e.g. made by `lmi apply`), and destroy it at
        /// the end like one `run` made. Without it, an existing stack is refused.
        #[arg(long)]
        adopt: bool,
        #[command(flatten)]
        test: TestArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// List the lmi stacks in the region, with their age, resources and lock.
    Ls {
        /// The region (otherwise lmi.toml's if readable, or the AWS configuration's).
        #[arg(long, value_name = "REGION", value_parser = parse_region)]
        region: Option<String>,
        /// Print the stacks as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Destroy every lmi stack in the region older than a limit: what crashed CI jobs left.
    ///
    /// A stack's age is that of its oldest `lmi:created` tag; a stack with none, or locked by
    /// a live command, is never collected.
    Gc {
        /// The age limit: `90m`, `6h`, `2d` (s, m, h, d).
        #[arg(long, value_name = "AGE", value_parser = parse_duration)]
        older_than: Duration,
        /// Only list what would be destroyed.
        #[arg(long)]
        dry_run: bool,
        /// Destroy without asking.
        #[arg(long)]
        auto_approve: bool,
        /// The region (otherwise the AWS configuration's).
        #[arg(long, value_name = "REGION", value_parser = parse_region)]
        region: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Remove a stack's lock, left by a run that is gone (killed, or its machine lost).
    Unlock {
        /// The stack, instead of the one in lmi.toml.
        #[arg(long, value_name = "NAME")]
        stack: Option<String>,
        /// The region, with --stack (otherwise lmi.toml's or the AWS configuration's).
        #[arg(long, value_name = "REGION", value_parser = parse_region)]
        region: Option<String>,
        /// Remove it even if its holder seems alive (it runs on this host).
        #[arg(long)]
        force: bool,
    },
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
        #[arg(long, value_name = "REGION", value_parser = parse_region)]
        region: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, Clone, clap::Args)]
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
    /// Also append a Markdown summary to this file (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RunArgs {
    /// How many AWS operations may run at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
    /// How long to wait for another apply, destroy or run of the stack to release its lock
    /// (`30s`, `5m`); by default fail at once.
    #[arg(long, value_name = "AGE", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

/// A region name, shaped like `us-east-1` (the same rule as `stack.region`).
fn parse_region(text: &str) -> Result<String, String> {
    if crate::config::is_region(text) {
        Ok(text.to_string())
    } else {
        Err("not a region name: expected one like us-east-1 or eu-west-1".into())
    }
}

/// A stack-name suffix: it becomes part of every AWS name, so the stack name's characters.
fn parse_suffix(text: &str) -> Result<String, String> {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(text.to_string())
    } else {
        Err("use letters, digits and hyphens (it is appended to the stack name)".into())
    }
}

/// `90`, `90s`, `15m`, `6h`, `2d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: use e.g. 30s, 15m, 6h, 2d"))?;
    let seconds = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("unknown unit `{unit}`: use s, m, h or d")),
    };
    Duration::try_from_secs_f64(value * seconds).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert!(parse_duration("6 hours").is_err());
        assert!(parse_duration("h").is_err());
    }
}
