//! The closing lines of apply and destroy: what was done, what failed and why, what remains,
//! and the AWS calls it took.

use std::fmt::Write;
use std::time::Duration;

use crate::aws::Call;
use crate::engine::Observation;
use crate::engine::execute::Summary;
use crate::plan::Action;

/// "N AWS calls (M writes)", the evidence that a converged apply changed nothing.
pub fn calls(calls: &[Call]) -> String {
    let writes = calls.iter().filter(|c| c.is_write()).count();
    let invokes = calls.iter().filter(|c| c.is_invoke()).count();
    let retried = calls.iter().filter(|c| c.attempts > 1).count();
    format!(
        "{} AWS call{} ({} write{}{}{}).",
        calls.len(),
        if calls.len() == 1 { "" } else { "s" },
        writes,
        if writes == 1 { "" } else { "s" },
        if invokes > 0 {
            format!(", {invokes} invoke{}", if invokes == 1 { "" } else { "s" })
        } else {
            String::new()
        },
        if retried > 0 {
            format!(", {retried} retried")
        } else {
            String::new()
        }
    )
}

/// `resumable`: whether to say that running the command again continues (not in `lmi run`,
/// which goes on to destroy).
pub fn apply(summary: &Summary, elapsed: Duration, log: &[Call], resumable: bool) -> String {
    let mut out = String::new();
    let count = |action| summary.done.iter().filter(|(_, a)| *a == action).count();
    if summary.succeeded() {
        let _ = write!(out, "\nDone in {:.1} s: ", elapsed.as_secs_f64());
    } else {
        let _ = write!(out, "\nStopped after {:.1} s: ", elapsed.as_secs_f64());
    }
    let _ = write!(
        out,
        "{} created, {} updated, {} replaced, {} deleted. {}",
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Delete),
        calls(log)
    );
    let _ = write!(
        out,
        "\nChanges took {:.2} s; their longest dependency chain {:.2} s.",
        summary.elapsed.as_secs_f64(),
        summary.critical_path.as_secs_f64()
    );
    for (address, error) in &summary.failed {
        let _ = write!(out, "\n  ✗ {address}: {error}");
    }
    for (address, because) in &summary.skipped {
        let _ = write!(out, "\n  - {address} not done: it needs {because}");
    }
    if !summary.cancelled.is_empty() {
        let names: Vec<String> = summary.cancelled.iter().map(|a| a.to_string()).collect();
        let _ = write!(out, "\n  Interrupted before: {}", names.join(", "));
    }
    if !summary.succeeded() && resumable {
        out.push_str("\nRun the command again to continue: lmi reads what exists from AWS.");
    }
    out
}

pub fn leftovers(stack: &str, left: &Observation) -> String {
    let mut out = format!("Still tagged lmi:stack={stack} after destroy:");
    for resource in &left.resources {
        let _ = write!(out, "\n  {} ({})", resource.resource.address, resource.id);
    }
    out
}
