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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}
