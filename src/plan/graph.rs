//! The order of work: a dependency graph over addresses, checked for cycles before anything
//! runs. Creates walk it forward, deletes walk it reversed.

use std::collections::BTreeMap;

use super::resource::Address;

/// Nodes and, for each, the indices of the nodes it waits for.
#[derive(Debug, Clone)]
pub struct Graph {
    pub nodes: Vec<Address>,
    pub deps: Vec<Vec<usize>>,
}

impl Graph {
    /// Builds a graph from each node's references; references to addresses outside `nodes`
    /// are already satisfied (the resource exists and is not changing).
    pub fn new(nodes: Vec<Address>, references: impl Fn(&Address) -> Vec<Address>) -> Graph {
        let index: BTreeMap<&Address, usize> =
            nodes.iter().enumerate().map(|(i, a)| (a, i)).collect();
        let deps = nodes
            .iter()
            .map(|a| {
                let mut d: Vec<usize> = references(a)
                    .iter()
                    .filter_map(|r| index.get(r).copied())
                    .filter(|&i| nodes[i] != *a)
                    .collect();
                d.sort_unstable();
                d.dedup();
                d
            })
            .collect();
        Graph { nodes, deps }
    }

    /// The same nodes with every edge turned around: for deletes, dependents go first.
    pub fn reversed(&self) -> Graph {
        let mut deps = vec![Vec::new(); self.nodes.len()];
        for (node, node_deps) in self.deps.iter().enumerate() {
            for &dep in node_deps {
                deps[dep].push(node);
            }
        }
        Graph {
            nodes: self.nodes.clone(),
            deps,
        }
    }

    /// `Err` with the nodes of one cycle, in order, if there is one.
    pub fn check_acyclic(&self) -> Result<(), Vec<Address>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        fn visit(
            g: &Graph,
            n: usize,
            marks: &mut [Mark],
            path: &mut Vec<usize>,
        ) -> Option<Vec<usize>> {
            marks[n] = Mark::Open;
            path.push(n);
            for &d in &g.deps[n] {
                match marks[d] {
                    Mark::Open => {
                        let start = path.iter().position(|&p| p == d).unwrap_or(0);
                        return Some(path[start..].to_vec());
                    }
                    Mark::New => {
                        if let Some(cycle) = visit(g, d, marks, path) {
                            return Some(cycle);
                        }
                    }
                    Mark::Done => {}
                }
            }
            path.pop();
            marks[n] = Mark::Done;
            None
        }
        let mut marks = vec![Mark::New; self.nodes.len()];
        for n in 0..self.nodes.len() {
            if marks[n] == Mark::New
                && let Some(cycle) = visit(self, n, &mut marks, &mut Vec::new())
            {
                return Err(cycle.into_iter().map(|i| self.nodes[i].clone()).collect());
            }
        }
        Ok(())
    }

    /// The longest chain of `cost` through the graph: the least wall time any schedule can
    /// achieve with unlimited parallelism.
    pub fn critical_path<T: Copy + Ord + std::ops::Add<Output = T> + Default>(
        &self,
        cost: impl Fn(usize) -> T,
    ) -> T {
        let mut finish: Vec<Option<T>> = vec![None; self.nodes.len()];
        fn at<T: Copy + Ord + std::ops::Add<Output = T> + Default>(
            g: &Graph,
            n: usize,
            cost: &dyn Fn(usize) -> T,
            finish: &mut Vec<Option<T>>,
        ) -> T {
            if let Some(t) = finish[n] {
                return t;
            }
            let start = g.deps[n]
                .iter()
                .map(|&d| at(g, d, cost, finish))
                .max()
                .unwrap_or_default();
            let t = start + cost(n);
            finish[n] = Some(t);
            t
        }
        (0..self.nodes.len())
            .map(|n| at(self, n, &cost, &mut finish))
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::resource::Kind;

    fn a(name: &str) -> Address {
        Address::new(Kind::Subnet, name)
    }

    #[test]
    fn finds_cycles_and_reverses_edges() {
        let g = Graph::new(vec![a("x"), a("y"), a("z")], |n| match n.name.as_str() {
            "y" => vec![a("x")],
            "z" => vec![a("y"), a("outside")],
            _ => vec![],
        });
        assert_eq!(g.deps, vec![vec![], vec![0], vec![1]]);
        assert!(g.check_acyclic().is_ok());
        assert_eq!(g.reversed().deps, vec![vec![1], vec![2], vec![]]);
        assert_eq!(g.critical_path(|_| 2u32), 6);

        let cyclic = Graph::new(vec![a("x"), a("y")], |n| match n.name.as_str() {
            "x" => vec![a("y")],
            _ => vec![a("x")],
        });
        assert_eq!(cyclic.check_acyclic().unwrap_err().len(), 2);
    }
}
