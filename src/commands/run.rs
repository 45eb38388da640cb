//! `lmi run`: apply, test, destroy, as one CI gate. The stack is destroyed whatever happens
//! before: passing or failing tests, a failed apply, an interrupt. Only `--keep-on-failure`
//! keeps a failed stack, and a second interrupt stops the cleanup (saying what remains).

use std::path::Path;
use std::time::Instant;

use miette::miette;

use super::apply::{apply_stack, say};
use super::destroy::destroy_stack;
use super::interrupt::run_interrupts;
use super::prepare::{Out, Session, load_stack_with};
use crate::aws::Aws;
use crate::cli::{RunArgs, TestArgs};
use crate::config::Overrides;
use crate::engine::{self, lock};
use crate::{exit, report};

pub struct Options<'a> {
    pub suffix: Option<&'a str>,
    pub keep_on_failure: bool,
    pub adopt: bool,
    pub test: &'a TestArgs,
    pub run: &'a RunArgs,
}

pub async fn run(file: &Path, options: Options<'_>) -> miette::Result<u8> {
    let stack = load_stack_with(
        file,
        Overrides {
            stack_suffix: options.suffix,
        },
    )?;
    super::test::check_report_paths(options.test)?;
    let started = Instant::now();
    let aws = Aws::connect(stack.region.as_deref()).await?;
    let interrupts = run_interrupts();
    let lock = lock::acquire(&aws, &stack.name, "run", options.run.lock_timeout, &say).await?;
    // run destroys the stack it runs on: one that exists already (a dev stack made with
    // `lmi apply`, another job's) is not its to take unless asked.
    let existing = match engine::observe(&aws, &stack.name).await {
        Ok(existing) => existing.resources.len(),
        Err(e) => {
            lock.release().await?;
            return Err(e.into());
        }
    };
    if existing > 0 && !options.adopt {
        lock.release().await?;
        return Err(miette!(
            code = "lmi::run::stack_exists",
            help = "give this run a stack of its own with --suffix, test the existing stack with `lmi test`, or pass --adopt to run on it and destroy it afterwards",
            "stack `{}` already exists in {} ({existing} resources), and `lmi run` destroys the stack it runs on",
            stack.name,
            aws.region
        ));
    }

    eprintln!("== apply stack `{}`", stack.name);
    // stdout is for the test results (`--json` stays parseable); the rest goes to stderr.
    let applying = Session {
        args: options.run,
        started,
        cancel: &interrupts.work,
        out: Out::Stderr,
    };
    let applied = apply_stack(&aws, &stack, true, &applying).await;
    let mut code = match &applied {
        Ok(code) => *code,
        Err(e) => {
            eprintln!("{e:?}");
            exit::ERROR
        }
    };
    if code == exit::OK && !interrupts.work.is_cancelled() {
        eprintln!("\n== test stack `{}`", stack.name);
        // Any error here (a report that can't be written included) still ends in the cleanup.
        let tested = super::test::test(&aws, &stack, options.test, interrupts.work.clone())
            .await
            .and_then(|results| super::test::report(&results, &aws, options.test));
        code = match tested {
            Ok(code) => code,
            Err(e) => {
                eprintln!("{e:?}");
                exit::ERROR
            }
        };
    }
    if interrupts.work.is_cancelled() {
        code = exit::INTERRUPTED;
    }

    if code != exit::OK && options.keep_on_failure && !interrupts.work.is_cancelled() {
        lock.release().await?;
        eprintln!(
            "\nKept stack `{}` for debugging (--keep-on-failure); `lmi destroy --stack {}{}` removes it.",
            stack.name,
            stack.name,
            stack
                .region
                .as_deref()
                .map(|r| format!(" --region {r}"))
                .unwrap_or_default()
        );
        return Ok(code);
    }

    eprintln!("\n== destroy stack `{}`", stack.name);
    let destroying = Session {
        args: options.run,
        started: Instant::now(),
        cancel: &interrupts.cleanup,
        out: Out::Stderr,
    };
    let destroyed = destroy_stack(&aws, &stack.name, true, &destroying).await;
    lock.release().await?;
    let finished = match destroyed {
        Ok(code) => code == exit::OK,
        Err(e) => {
            eprintln!("{e:?}");
            // Whatever can still be seen is what remains.
            if let Ok(left) = crate::engine::observe(&aws, &stack.name).await
                && !left.resources.is_empty()
            {
                eprintln!("{}", report::summary::leftovers(&stack.name, &left));
            }
            false
        }
    };
    if finished {
        return Ok(code);
    }
    eprintln!(
        "Cleanup of stack `{}` did not finish: `lmi destroy --stack {}` removes what remains.",
        stack.name, stack.name
    );
    Ok(exit::CLEANUP_FAILED)
}
