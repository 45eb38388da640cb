//! Runs a plan in two walks: deletes (and the delete half of replaces) in reverse dependency
//! order, then creates and updates in dependency order. Every created id is recorded at once,
//! so a dependent resource can start the moment its dependencies exist.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::walk::{Outcome, walk};
use super::{Event, Observer};
use crate::aws::{Aws, AwsError};
use crate::package::Package;
use crate::plan::graph::Graph;
use crate::plan::resource::{Kind, Ref};
use crate::plan::{Action, Address, Change, Plan};

/// How long a delete may keep failing with a dependency conflict (ENIs still attached, a
/// NAT gateway still releasing its address) before lmi gives up. AWS has been seen to hold
/// VPC ENIs for 20–45 minutes (LMI-FACTS "Destroy order").
const CONFLICT_TIMEOUT: Duration = Duration::from_secs(45 * 60);

/// What happened to each change.
#[derive(Debug, Default)]
pub struct Summary {
    /// Wall time of the walks (deletes, then creates and updates).
    pub elapsed: Duration,
    /// The least time any schedule could have taken with the durations measured (see
    /// `Walked::critical_path`): `elapsed` near it means the walker wasted nothing.
    pub critical_path: Duration,
    pub done: Vec<(Address, Action)>,
    pub failed: Vec<(Address, AwsError)>,
    pub skipped: Vec<(Address, Address)>,
    pub cancelled: Vec<Address>,
}

impl Summary {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.cancelled.is_empty()
    }
}

type Ids = Arc<Mutex<BTreeMap<Address, String>>>;

/// Each function's packaged code, by function name (empty for destroy).
pub type Code = BTreeMap<String, Package>;

/// Carries out `plan`. `ids` holds the AWS id of every observed resource; `code` the zip of
/// every function the plan may create or update.
pub async fn execute(
    aws: &Aws,
    plan: &Plan,
    ids: BTreeMap<Address, String>,
    code: &Code,
    parallelism: usize,
    observer: Arc<dyn Observer>,
    cancel: &CancellationToken,
) -> Summary {
    let ids: Ids = Arc::new(Mutex::new(ids));
    let mut summary = Summary::default();
    let started = Instant::now();

    // Deletes first: a replaced resource must be gone before its successor takes its place
    // (a subnet's CIDR, a role's name).
    let deletes: Vec<Arc<Change>> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .map(|c| Arc::new(c.clone()))
        .collect();
    let graph = graph_of(&deletes, |c| {
        c.observed
            .as_ref()
            .map(|o| o.resource.spec.references().into_iter().cloned().collect())
            .unwrap_or_default()
    })
    .reversed();
    let walked = walk(&graph, parallelism, cancel, |i| {
        let change = deletes[i].clone();
        let (aws, ids, observer) = (aws.clone(), ids.clone(), observer.clone());
        let cancel = cancel.clone();
        async move { delete(&aws, &change, &ids, observer.as_ref(), &cancel).await }
    })
    .await;
    summary.critical_path += walked.critical_path(&graph);
    record(
        &mut summary,
        &graph,
        &deletes,
        walked.outcomes,
        true,
        observer.as_ref(),
    );
    if !summary.succeeded() {
        summary.elapsed = started.elapsed();
        // Creating on top of a half-deleted stack could collide; stop here and report.
        return summary;
    }

    let upserts: Vec<Arc<Change>> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .map(|c| Arc::new(c.clone()))
        .collect();
    let graph = graph_of(&upserts, |c| {
        c.desired
            .as_ref()
            .map(|d| d.spec.references().into_iter().cloned().collect())
            .unwrap_or_default()
    });
    let stack = plan.stack.clone();
    let code = Arc::new(code.clone());
    let walked = walk(&graph, parallelism, cancel, |i| {
        let change = upserts[i].clone();
        let (aws, ids, observer, stack, code) = (
            aws.clone(),
            ids.clone(),
            observer.clone(),
            stack.clone(),
            code.clone(),
        );
        async move { upsert(&aws, &stack, &change, &ids, &code, observer.as_ref()).await }
    })
    .await;
    summary.critical_path += walked.critical_path(&graph);
    record(
        &mut summary,
        &graph,
        &upserts,
        walked.outcomes,
        false,
        observer.as_ref(),
    );
    summary.elapsed = started.elapsed();
    summary
}

fn graph_of(changes: &[Arc<Change>], references: impl Fn(&Change) -> Vec<Address>) -> Graph {
    let by_address: BTreeMap<&Address, &Change> =
        changes.iter().map(|c| (&c.address, c.as_ref())).collect();
    Graph::new(changes.iter().map(|c| c.address.clone()).collect(), |a| {
        by_address.get(a).map(|c| references(c)).unwrap_or_default()
    })
}

fn record(
    summary: &mut Summary,
    graph: &Graph,
    changes: &[Arc<Change>],
    outcomes: Vec<Outcome>,
    delete_phase: bool,
    observer: &dyn Observer,
) {
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let address = graph.nodes[i].clone();
        match outcome {
            // A replace is done only when its create half is.
            Outcome::Done if delete_phase && changes[i].action == Action::Replace => {}
            Outcome::Done => summary.done.push((address, changes[i].action)),
            Outcome::Failed(e) => summary.failed.push((address, e)),
            Outcome::Skipped { because } => {
                let because = graph.nodes[because].clone();
                observer.event(Event::Skipped {
                    address: address.clone(),
                    because: because.clone(),
                });
                summary.skipped.push((address, because));
            }
            Outcome::Cancelled => summary.cancelled.push(address),
        }
    }
}

async fn delete(
    aws: &Aws,
    change: &Change,
    ids: &Ids,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), AwsError> {
    let Some(have) = &change.observed else {
        return Ok(());
    };
    let address = change.address.clone();
    let action = change.action;
    observer.event(Event::Started {
        address: address.clone(),
        action: Action::Delete,
    });
    let started = Instant::now();
    let mut pause = Duration::from_secs(2);
    let progress = |reason: String| {
        observer.event(Event::Waiting {
            address: address.clone(),
            reason,
        })
    };
    let result = loop {
        let result = match have.resource.address.kind {
            Kind::Role => aws.iam.delete(have).await,
            Kind::CapacityProvider => aws.lambda.delete_provider(have, &progress).await,
            Kind::Function => aws.lambda.delete_function(have, &progress).await,
            _ => aws.ec2.delete(have).await,
        };
        match result {
            // Someone (or an earlier, interrupted run) already deleted it: that is the goal.
            Err(e) if e.is_not_found() => break Ok(()),
            // Something still uses it (ENIs of a deleted endpoint, a NAT releasing its IP):
            // AWS frees those on its own schedule; try again with backoff.
            Err(e) if e.is_conflict() && started.elapsed() < CONFLICT_TIMEOUT => {
                // Name what holds a subnet or group, so a long wait is explained. A failed
                // look is no reason to stop waiting.
                let interfaces = match have.resource.address.kind {
                    Kind::Subnet | Kind::SecurityGroup => {
                        aws.ec2.interfaces_using(have).await.unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                observer.event(Event::Waiting {
                    address: address.clone(),
                    reason: conflict_reason(&e.message, &interfaces, pause),
                });
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = cancel.cancelled() => break Err(AwsError::lmi(
                        "lmi",
                        "Delete",
                        address.to_string(),
                        format!("interrupted while waiting: {}", e.message),
                    )),
                }
                pause = (pause * 2).min(Duration::from_secs(30));
            }
            other => break other,
        }
    };
    match &result {
        Ok(()) => {
            if let Ok(mut ids) = ids.lock() {
                ids.remove(&address);
            }
            if action == Action::Delete {
                observer.event(Event::Finished {
                    address,
                    action,
                    elapsed: started.elapsed(),
                });
            }
        }
        Err(e) => observer.event(Event::Failed {
            address,
            action,
            error: e.to_string(),
        }),
    }
    result
}

async fn upsert(
    aws: &Aws,
    stack: &str,
    change: &Change,
    ids: &Ids,
    code: &Code,
    observer: &dyn Observer,
) -> Result<(), AwsError> {
    let Some(want) = &change.desired else {
        return Ok(());
    };
    let address = change.address.clone();
    let action = change.action;
    observer.event(Event::Started {
        address: address.clone(),
        action,
    });
    let started = Instant::now();
    let lookup = ids.clone();
    let resolve = move |r: &Ref| -> Result<String, AwsError> {
        match r {
            Ref::External(id) => Ok(id.clone()),
            Ref::Resource(a) => lookup
                .lock()
                .ok()
                .and_then(|ids| ids.get(a).cloned())
                .ok_or_else(|| {
                    AwsError::lmi(
                        "lmi",
                        "Resolve",
                        a.to_string(),
                        "no AWS id: it was not created",
                    )
                }),
        }
    };
    let progress = |reason: String| {
        observer.event(Event::Waiting {
            address: address.clone(),
            reason,
        })
    };
    let zip = code.get(&want.address.name).map(|p| p.zip.as_slice());
    let result = match (action, &change.observed) {
        (Action::Update, Some(have)) => match want.address.kind {
            Kind::Role => aws.iam.update(have, want).await,
            Kind::CapacityProvider => aws.lambda.update_provider(have, want, &progress).await,
            Kind::Function => {
                aws.lambda
                    .update_function(have, want, zip, &resolve, &progress)
                    .await
            }
            _ => aws.ec2.update(have, want, &resolve).await,
        },
        _ => {
            let id = match want.address.kind {
                Kind::Role => aws.iam.create(want, stack).await,
                Kind::CapacityProvider => {
                    aws.lambda.create_provider(want, &resolve, &progress).await
                }
                Kind::Function => match zip {
                    Some(zip) => {
                        aws.lambda
                            .create_function(want, zip, &resolve, &progress)
                            .await
                    }
                    None => Err(AwsError::lmi(
                        "lambda",
                        "CreateFunction",
                        address.to_string(),
                        "no code was packaged for this function",
                    )),
                },
                _ => aws.ec2.create(want, &resolve).await,
            };
            id.map(|id| {
                if let Ok(mut ids) = ids.lock() {
                    ids.insert(address.clone(), id);
                }
            })
        }
    };
    match &result {
        Ok(()) => observer.event(Event::Finished {
            address,
            action,
            elapsed: started.elapsed(),
        }),
        Err(e) => observer.event(Event::Failed {
            address,
            action,
            error: e.to_string(),
        }),
    }
    result
}

/// Why a delete is waiting: AWS's message, and the network interfaces that hold the resource.
fn conflict_reason(message: &str, interfaces: &[String], pause: Duration) -> String {
    if interfaces.is_empty() {
        return format!("{message}; retrying in {} s", pause.as_secs());
    }
    format!(
        "{} network interface(s) still use it: {}. AWS releases them on its own once what made them (capacity provider instances, VPC endpoints, Lambda) is gone, which has taken up to 45 minutes; retrying in {} s",
        interfaces.len(),
        interfaces.join(", "),
        pause.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_delete_names_the_interfaces_and_why() {
        let plain = conflict_reason("in use", &[], Duration::from_secs(4));
        assert_eq!(plain, "in use; retrying in 4 s");
        let enis = vec!["eni-1 (AWS Lambda VPC ENI; in-use)".to_string()];
        let text = conflict_reason("has dependencies", &enis, Duration::from_secs(8));
        assert!(
            text.starts_with("1 network interface(s) still use it: eni-1"),
            "{text}"
        );
        assert!(text.contains("45 minutes"), "{text}");
        assert!(text.ends_with("retrying in 8 s"), "{text}");
    }
}
