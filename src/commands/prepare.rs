//! What plan, apply and destroy share: load lmi.toml, package the code, connect, observe, diff,
//! preflight.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use miette::{IntoDiagnostic, miette};

use crate::aws::Aws;
use crate::cli::RunArgs;
use crate::config;
use crate::engine::execute::{Code, Summary};
use crate::engine::{self, Observation, preflight};
use crate::model::{Network, Stack};
use crate::plan::{self, Plan, desired};
use crate::report;

/// Loads lmi.toml; problems are printed, and errors stop the command before any AWS call.
pub fn load_stack(file: &Path) -> miette::Result<Stack> {
    load_stack_with(file, config::Overrides::default())
}

/// [`load_stack`], with command-line overrides.
pub fn load_stack_with(file: &Path, overrides: config::Overrides) -> miette::Result<Stack> {
    let loaded = config::load_with(file, overrides)?;
    let color = report::color();
    for problem in &loaded.problems {
        eprintln!(
            "{}",
            report::validation::render(problem, &loaded.file, color, 100)
        );
    }
    let errors = loaded.errors().count();
    loaded.stack.ok_or_else(|| {
        miette!(
            code = "lmi::config::invalid",
            "{} has {errors} error(s); nothing was sent to AWS",
            loaded.file.name,
        )
    })
}

/// A plan and what it was made from.
pub struct Prepared {
    pub plan: Plan,
    pub observation: Observation,
    /// Every function's packaged code, by function name.
    pub code: Code,
}

/// Packages the code, observes the stack, and diffs it with lmi.toml. Fails on a build or
/// packaging error (before any AWS call) or a preflight finding.
pub async fn prepare(aws: &Aws, stack: &Stack) -> miette::Result<Prepared> {
    // Packaging reads and compresses files: keep it off the async workers.
    let owned = stack.clone();
    let code = tokio::task::spawn_blocking(move || crate::package::package_stack(&owned))
        .await
        .map_err(|e| miette!("packaging stopped: {e}"))??;
    let hashes: BTreeMap<String, String> = code
        .iter()
        .map(|(name, p)| (name.clone(), p.sha256.clone()))
        .collect();
    let (observation, zones) = futures::try_join!(
        engine::observe(aws, &stack.name),
        aws.ec2.availability_zones()
    )?;
    if let Some(Network::Managed(net)) = &stack.network
        && zones.len() < usize::from(net.azs)
    {
        return Err(miette!(
            code = "lmi::network::availability_zones",
            help = "lower network.azs",
            "network.azs is {} but {} has only {} available zone(s)",
            net.azs,
            aws.region,
            zones.len()
        ));
    }
    let wanted = desired::desired(
        stack,
        &desired::Context {
            region: &aws.region,
            availability_zones: &zones,
            code: &hashes,
            created: &crate::model::now_rfc3339(),
        },
    );
    if !stack.capacity_providers.is_empty() {
        let findings = match &stack.network {
            Some(Network::Existing(net)) => preflight::existing(aws, stack, net).await?,
            Some(Network::Managed(_)) => preflight::planned(stack, &wanted),
            None => Vec::new(),
        };
        if !findings.is_empty() {
            return Err(miette!(
                code = "lmi::preflight::no_egress",
                "{}",
                report::plan::render_findings(&findings)
            ));
        }
    }
    let plan = plan::diff(&stack.name, wanted, observation.resources.clone());
    Ok(Prepared {
        plan,
        observation,
        code,
    })
}

/// Where a command's results go: stdout, or stderr when stdout is kept for something else
/// (`lmi run` keeps it for the test results, so that `--json` stays parseable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
}

impl Out {
    pub fn print(self, text: impl std::fmt::Display) {
        match self {
            Out::Stdout => print!("{text}"),
            Out::Stderr => eprint!("{text}"),
        }
    }

    pub fn line(self, text: impl std::fmt::Display) {
        self.print(format_args!("{text}\n"));
    }

    pub fn color(self) -> bool {
        match self {
            Out::Stdout => report::color_stdout(),
            Out::Stderr => report::color(),
        }
    }
}

/// How a changing command runs: its options, when it started (for "Done in"), what stops it,
/// and where its results go.
pub struct Session<'a> {
    pub args: &'a RunArgs,
    pub started: Instant,
    pub cancel: &'a tokio_util::sync::CancellationToken,
    pub out: Out,
}

/// Asks "proceed?" on a terminal; elsewhere requires the flag.
pub fn confirm(question: &str, auto_approve: bool) -> miette::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if auto_approve {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            code = "lmi::confirm::no_tty",
            help = "pass --auto-approve to run without a terminal (e.g. in CI)",
            "no terminal to confirm on"
        ));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().into_diagnostic()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .into_diagnostic()?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Carries out a confirmed plan with live progress, prints what it did, and returns the summary.
/// Ctrl-C stops new operations (see `interrupt`).
pub async fn carry_out(
    aws: &Aws,
    plan: &Plan,
    ids: BTreeMap<plan::Address, String>,
    code: &Code,
    session: &Session<'_>,
) -> Summary {
    let summary = engine::execute(
        aws,
        plan,
        ids,
        code,
        usize::from(session.args.parallelism),
        Arc::new(report::progress::Progress::new()),
        session.cancel,
    )
    .await;
    session.out.line(report::summary::apply(
        &summary,
        session.started.elapsed(),
        &aws.calls.snapshot(),
        session.out == Out::Stdout,
    ));
    summary
}
