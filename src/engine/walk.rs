//! Runs the nodes of a dependency graph concurrently: a node starts once everything it
//! depends on is done, at most `parallelism` at a time. A node whose dependency failed is
//! skipped and names the root cause; cancellation stops new starts and lets running ones end.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::aws::AwsError;
use crate::plan::graph::Graph;

#[derive(Debug, Clone)]
pub enum Outcome {
    Done,
    Failed(AwsError),
    /// Not run: a node it depends on did not succeed (index of the first such node).
    Skipped {
        because: usize,
    },
    /// Not run: the walk was cancelled first.
    Cancelled,
}

/// What a walk did: each node's outcome, and how long each node that ran took.
#[derive(Debug)]
pub struct Walked {
    pub outcomes: Vec<Outcome>,
    pub durations: Vec<Duration>,
}

impl Walked {
    /// The longest dependency chain of the nodes' measured durations: the least wall time any
    /// schedule could have achieved with these durations. Compared with the real wall time,
    /// it shows what the walker's scheduling costs (docs/performance.md).
    pub fn critical_path(&self, graph: &Graph) -> Duration {
        graph.critical_path(|i| self.durations[i])
    }
}

/// Walks `graph`, calling `run(i)` for each node.
pub async fn walk<F, Fut>(
    graph: &Graph,
    parallelism: usize,
    cancel: &CancellationToken,
    run: F,
) -> Walked
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), AwsError>> + Send + 'static,
{
    let n = graph.nodes.len();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut waiting_on: Vec<usize> = graph.deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); n];
    for (node, deps) in graph.deps.iter().enumerate() {
        for &d in deps {
            dependents[d].push(node);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting_on[i] == 0).rev().collect();
    let mut durations = vec![Duration::ZERO; n];
    let mut running = JoinSet::new();
    let mut task_node = std::collections::HashMap::new();
    loop {
        while running.len() < parallelism.max(1) && !cancel.is_cancelled() {
            let Some(node) = ready.pop() else { break };
            let task = run(node);
            let handle = running.spawn(async move {
                let started = Instant::now();
                let result = task.await;
                (result, started.elapsed())
            });
            task_node.insert(handle.id(), node);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (node, result) = match joined {
            Ok((id, (result, elapsed))) => {
                durations[task_node[&id]] = elapsed;
                (task_node[&id], result)
            }
            // A panicking task is a bug in lmi; report it on its node, don't abort the walk.
            Err(e) => {
                let node = task_node[&e.id()];
                let message = format!("internal error: {e}");
                (
                    node,
                    Err(AwsError::lmi(
                        "lmi",
                        "Walk",
                        graph.nodes[node].to_string(),
                        message,
                    )),
                )
            }
        };
        match result {
            Ok(()) => {
                outcomes[node] = Some(Outcome::Done);
                for &d in &dependents[node] {
                    waiting_on[d] -= 1;
                    if waiting_on[d] == 0 && outcomes[d].is_none() {
                        ready.push(d);
                    }
                }
            }
            Err(error) => {
                outcomes[node] = Some(Outcome::Failed(error));
                skip_dependents(node, node, &dependents, &mut outcomes);
            }
        }
    }
    Walked {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Cancelled))
            .collect(),
        durations,
    }
}

fn skip_dependents(
    node: usize,
    root: usize,
    dependents: &[Vec<usize>],
    outcomes: &mut [Option<Outcome>],
) {
    for &d in &dependents[node] {
        if outcomes[d].is_none() {
            outcomes[d] = Some(Outcome::Skipped { because: root });
            skip_dependents(d, root, dependents, outcomes);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::plan::resource::{Address, Kind};

    fn graph(edges: &[(usize, usize)], n: usize) -> Graph {
        let nodes: Vec<Address> = (0..n)
            .map(|i| Address::new(Kind::Subnet, i.to_string()))
            .collect();
        let all = nodes.clone();
        Graph::new(nodes, |a| {
            let i: usize = a.name.parse().unwrap();
            edges
                .iter()
                .filter(|(from, _)| *from == i)
                .map(|(_, to)| all[*to].clone())
                .collect()
        })
    }

    #[tokio::test]
    async fn runs_in_dependency_order_and_skips_after_failure() {
        // 1 and 2 depend on 0; 3 depends on 2; 2 fails.
        let g = graph(&[(1, 0), (2, 0), (3, 2)], 4);
        let order = Arc::new(Mutex::new(Vec::new()));
        let outcomes = walk(&g, 4, &CancellationToken::new(), |i| {
            let order = order.clone();
            async move {
                order.lock().unwrap().push(i);
                if i == 2 {
                    Err(AwsError::lmi("test", "Op", "2", "boom"))
                } else {
                    Ok(())
                }
            }
        })
        .await
        .outcomes;
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], 0);
        assert!(!order.contains(&3));
        assert!(matches!(outcomes[1], Outcome::Done));
        assert!(matches!(outcomes[2], Outcome::Failed(_)));
        assert!(matches!(outcomes[3], Outcome::Skipped { because: 2 }));
    }

    #[tokio::test]
    async fn independent_nodes_run_concurrently_up_to_the_limit() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let g = graph(&[], 5);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let outcomes = walk(&g, 3, &CancellationToken::new(), |_| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .outcomes;
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Done)));
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn cancellation_stops_new_work() {
        let g = graph(&[(1, 0)], 2);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let outcomes = walk(&g, 1, &cancel, move |_| {
            let c = c.clone();
            async move {
                c.cancel();
                Ok(())
            }
        })
        .await
        .outcomes;
        assert!(matches!(outcomes[0], Outcome::Done));
        assert!(matches!(outcomes[1], Outcome::Cancelled));
    }
}
