//! `lmi ls` and `lmi gc`: the lmi stacks of a region, found by their tags, with their age; and
//! the destruction of those older than a limit (what cancelled or crashed CI jobs left).
//!
//! A stack is found by its roles (path `/lmi/{stack}/`, which every stack with a function or a
//! capacity provider has, and its lock has) and by the `lmi:stack` tag of EC2 resources
//! (DescribeTags): two list calls, whatever the account holds. Its age is that of its oldest
//! `lmi:created` tag.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use miette::IntoDiagnostic;
use serde::Serialize;

use super::apply::say;
use super::destroy::destroy_stack;
use super::interrupt::cancel_on_interrupt;
use super::prepare::{Out, Session, confirm};
use crate::aws::Aws;
use crate::cli::RunArgs;
use crate::engine::{self, lock};
use crate::exit;
use crate::model::{CREATED_TAG, parse_rfc3339};

#[derive(Debug, Serialize)]
pub struct StackInfo {
    pub stack: String,
    /// The oldest `lmi:created` of its resources (and lock); `None` if nothing has one.
    pub created: Option<String>,
    pub age_s: Option<u64>,
    pub resources: usize,
    /// Who holds its lock, if anyone.
    pub locked_by: Option<String>,
    /// Whether that lock may be taken over (its holder is gone or it expired).
    pub lock_stale: bool,
}

/// Every lmi stack of the region, by name.
pub async fn list(aws: &Aws) -> miette::Result<Vec<StackInfo>> {
    let (roles, ec2) = futures::try_join!(aws.iam.stacks(), aws.ec2.stacks())?;
    let names: BTreeSet<String> = roles.into_iter().chain(ec2).collect();
    let now = SystemTime::now();
    let infos: Vec<miette::Result<StackInfo>> = futures::stream::iter(names)
        .map(|name| async move {
            let (observation, holder) =
                futures::try_join!(engine::observe(aws, &name), aws.iam.read_lock(&name))?;
            let holder = holder.map(|tags| lock::Holder::from_tags(&tags));
            let created = observation
                .resources
                .iter()
                .filter_map(|o| o.resource.tags.get(CREATED_TAG))
                .chain(holder.as_ref().map(|h| &h.since))
                .filter_map(|c| parse_rfc3339(c).map(|t| (t, c.clone())))
                .min();
            Ok(StackInfo {
                age_s: created
                    .as_ref()
                    .map(|(t, _)| now.duration_since(*t).unwrap_or_default().as_secs()),
                created: created.map(|(_, c)| c),
                resources: observation.resources.len(),
                lock_stale: holder.as_ref().is_some_and(|h| h.stale(now).is_some()),
                locked_by: holder.map(|h| h.to_string()),
                stack: name,
            })
        })
        .buffered(4)
        .collect()
        .await;
    // A name seen only in tags of deleted resources (EC2 keeps a deleted NAT gateway, and its
    // tags, for an hour) is no stack.
    Ok(infos
        .into_iter()
        .collect::<miette::Result<Vec<_>>>()?
        .into_iter()
        .filter(|s| s.resources > 0 || s.locked_by.is_some())
        .collect())
}

pub async fn ls(region: Option<String>, json: bool) -> miette::Result<u8> {
    let aws = Aws::connect(region.as_deref()).await?;
    let stacks = list(&aws).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stacks).into_diagnostic()?
        );
        return Ok(exit::OK);
    }
    if stacks.is_empty() {
        println!("No lmi stacks in {}.", aws.region);
        return Ok(exit::OK);
    }
    let mut rows = vec![[
        "STACK".to_string(),
        "AGE".into(),
        "CREATED".into(),
        "RESOURCES".into(),
        "LOCK".into(),
    ]];
    for s in &stacks {
        rows.push([
            s.stack.clone(),
            s.age_s
                .map_or_else(|| "?".into(), |a| age(Duration::from_secs(a))),
            s.created.clone().unwrap_or_else(|| "unknown".into()),
            s.resources.to_string(),
            match (&s.locked_by, s.lock_stale) {
                (None, _) => "-".into(),
                (Some(by), false) => format!("held by {by}"),
                (Some(by), true) => format!("stale: {by}"),
            },
        ]);
    }
    print!("{}", crate::report::table(&rows));
    Ok(exit::OK)
}

/// `2d3h`, `5h12m`, `7m30s`, `45s`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

pub async fn gc(
    older_than: Duration,
    dry_run: bool,
    auto_approve: bool,
    region: Option<String>,
    args: RunArgs,
) -> miette::Result<u8> {
    let aws = Aws::connect(region.as_deref()).await?;
    let stacks = list(&aws).await?;
    let mut old = Vec::new();
    for s in &stacks {
        match s.age_s {
            None => println!(
                "skip {}: no lmi:created tag, so its age is unknown (destroy it by hand)",
                s.stack
            ),
            Some(a) if Duration::from_secs(a) < older_than => {}
            Some(_) if s.locked_by.is_some() && !s.lock_stale => println!(
                "skip {}: in use, locked by {}",
                s.stack,
                s.locked_by.as_deref().unwrap_or_default()
            ),
            Some(a) => old.push((s.stack.clone(), a)),
        }
    }
    if old.is_empty() {
        println!(
            "No stack older than {} in {} ({} stack(s) seen).",
            age(older_than),
            aws.region,
            stacks.len()
        );
        return Ok(exit::OK);
    }
    println!("Older than {} in {}:", age(older_than), aws.region);
    for (name, a) in &old {
        println!("  {name} (age {})", age(Duration::from_secs(*a)));
    }
    if dry_run {
        println!("Dry run: nothing was destroyed.");
        return Ok(exit::OK);
    }
    if !confirm(
        &format!("Destroy these {} stack(s)?", old.len()),
        auto_approve,
    )? {
        eprintln!("Cancelled: nothing was deleted.");
        return Ok(exit::ERROR);
    }
    let cancel = cancel_on_interrupt();
    let mut failed = Vec::new();
    for (name, _) in &old {
        if cancel.is_cancelled() {
            failed.push(name.clone());
            continue;
        }
        println!("\n== destroy stack `{name}`");
        // A run that started meanwhile holds the lock: leave it alone.
        let lock = match lock::acquire(&aws, name, "gc", Duration::ZERO, &say).await {
            Ok(lock) => lock,
            Err(e) => {
                eprintln!("skip {name}: {e}");
                continue;
            }
        };
        let session = Session {
            args: &args,
            started: Instant::now(),
            cancel: &cancel,
            out: Out::Stdout,
        };
        let destroyed = destroy_stack(&aws, name, true, &session).await;
        lock.release().await?;
        match destroyed {
            Ok(exit::OK) => {}
            Ok(_) => failed.push(name.clone()),
            Err(e) => {
                eprintln!("{e:?}");
                failed.push(name.clone());
            }
        }
    }
    if failed.is_empty() {
        println!("\nCollected {} stack(s).", old.len());
        Ok(exit::OK)
    } else {
        println!(
            "\nNot fully destroyed: {} (run `lmi destroy --stack NAME`).",
            failed.join(", ")
        );
        Ok(exit::CLEANUP_FAILED)
    }
}

pub async fn unlock(
    file: &std::path::Path,
    stack: Option<String>,
    region: Option<String>,
    force: bool,
) -> miette::Result<u8> {
    let (name, region) = super::destroy::stack_and_region(file, stack, region)?;
    let aws = Aws::connect(region.as_deref()).await?;
    let Some(holder) = lock::holder(&aws, &name).await? else {
        println!("Stack `{name}` is not locked.");
        return Ok(exit::OK);
    };
    if holder.stale(SystemTime::now()).is_none() && !force {
        return Err(miette::miette!(
            code = "lmi::lock::in_use",
            help = "if you know that command is gone, pass --force",
            "stack `{name}` is locked by {holder}, which may still be running"
        ));
    }
    lock::remove(&aws, &name).await?;
    println!("Removed the lock of stack `{name}` (held by {holder}).");
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(age(Duration::from_secs(45)), "45s");
        assert_eq!(age(Duration::from_secs(450)), "7m30s");
        assert_eq!(age(Duration::from_secs(6 * 3600 + 60)), "6h01m");
        assert_eq!(age(Duration::from_secs(2 * 86400 + 3 * 3600)), "2d03h");
    }
}
