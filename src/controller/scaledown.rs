//! Lowering the replica count one node at a time, each only when the
//! cluster is safe; on Enterprise, the leaving node is quiesced first.
//! Pure decisions; [`super::reconcile`] applies them.
//!
//! Swarm chooses which task a scale-down removes (it prefers tasks that do
//! not run, then picks among the rest at random), so the operator cannot
//! quiesce "the node swarm will remove". On Enterprise it makes the choice
//! itself:
//!
//! 1. the leaving node is the running task with the highest slot;
//! 2. `quiesce:` on it, then `recluster:` on every member, so that it hands
//!    its partitions off; wait until it reports `effective_is_quiesced` and
//!    the whole cluster is safe (0 migrations: the data left it);
//! 3. a placement constraint `node.id!=<its swarm node>`: swarm's updater
//!    replaces exactly that task (the others still satisfy the
//!    constraints, so they are not touched), and its replacement stays
//!    pending (one task per node, no node left);
//! 4. the replica count one lower: swarm removes the pending task first;
//! 5. once the count is reached, the operator's constraints are removed
//!    (a change of constraints alone restarts no task whose node
//!    satisfies them).
//!
//! On Community Edition (no `quiesce`) a step is one lower replica count
//! when the cluster is safe: with a replication factor of 2 or more, no
//! single node of a safe cluster holds the last copy of a partition, so
//! whichever task swarm removes, nothing is lost.

use std::net::SocketAddr;

use crate::aerospike::NodeReport;
use crate::swarm::TaskInfo;

use super::nodes::QuiesceState;
use super::plan::{cluster_is_safe, TaskSummary};

/// The constraint prefix the operator uses to make swarm stop one task.
pub const EXCLUDE_PREFIX: &str = "node.id!=";

/// Everything a scale-down decision needs from one pass.
#[derive(Debug)]
pub struct ScaleFacts<'a> {
    /// Whether the build has `quiesce` (Enterprise).
    pub enterprise: bool,
    /// The replica count to reach.
    pub target: u64,
    /// The service's replica count now.
    pub current: u64,
    /// The service's tasks meant to run.
    pub tasks: &'a [TaskInfo],
    pub network_id: &'a str,
    pub service_port: u16,
    pub reports: &'a [NodeReport],
    pub summary: &'a TaskSummary,
    /// The service's placement constraints.
    pub constraints: &'a [String],
    /// The leaving node's quiesce, read this pass (Enterprise).
    pub quiesce: Option<QuiesceState>,
}

/// One pass's scale step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleStep {
    /// Set the replica count.
    Replicas(u64),
    /// Wait (the reason goes into the status).
    Wait(String),
    /// Quiesce this node (and recluster the members).
    Quiesce { node: SocketAddr, task: String },
    /// The quiesce of this node is pending: recluster again (the
    /// principal may have reclustered before it heard of the quiesce).
    Recluster { node: SocketAddr },
    /// Make swarm stop this task: add `node.id!=<node>`.
    Exclude { task: String, constraint: String },
    /// Done: drop the operator's exclusion constraints.
    Unexclude { constraints: Vec<String> },
    /// Nothing to do.
    Nothing,
}

/// The task that leaves next: the running one with the highest slot.
pub fn leaving<'a>(tasks: &'a [TaskInfo], network_id: &str) -> Option<&'a TaskInfo> {
    tasks
        .iter()
        .filter(|t| t.is_running() && t.address_on(network_id).is_some())
        .max_by_key(|t| t.slot)
}

/// Decides this pass's scale step.
pub fn decide(facts: &ScaleFacts<'_>) -> ScaleStep {
    let running = facts.summary.running as u64;
    let ours: Vec<String> = facts
        .constraints
        .iter()
        .filter(|c| c.replace(' ', "").starts_with(EXCLUDE_PREFIX))
        .cloned()
        .collect();
    if facts.target >= facts.current {
        if facts.target == facts.current && !ours.is_empty() && running == facts.current {
            return ScaleStep::Unexclude { constraints: ours };
        }
        return if facts.target > facts.current {
            ScaleStep::Replicas(facts.target)
        } else {
            ScaleStep::Nothing
        };
    }
    // Tasks that do not run hold no data, and swarm removes them first.
    if running < facts.current {
        return ScaleStep::Replicas(facts.target.max(running));
    }
    let safe = cluster_is_safe(facts.reports, facts.summary, facts.current);
    if !facts.enterprise {
        return if safe {
            ScaleStep::Replicas(facts.current - 1)
        } else {
            ScaleStep::Wait("removing the next node once every node reports 0 migrations".into())
        };
    }
    let Some(task) = leaving(facts.tasks, facts.network_id) else {
        return ScaleStep::Wait("no running node to remove".into());
    };
    let ip = task
        .address_on(facts.network_id)
        .expect("leaving() has one");
    let node = SocketAddr::new(ip, facts.service_port);
    match facts.quiesce {
        Some(q) if !q.pending => ScaleStep::Quiesce {
            node,
            task: task.id.clone(),
        },
        Some(q) if q.effective && safe => ScaleStep::Exclude {
            task: task.id.clone(),
            constraint: format!("{EXCLUDE_PREFIX}{}", task.node_id),
        },
        Some(q) if q.effective => ScaleStep::Wait(format!(
            "node {node} is quiesced; waiting for its partitions to migrate off before it \
             stops"
        )),
        Some(_) => ScaleStep::Recluster { node },
        None => ScaleStep::Wait(format!("cannot read the quiesce state of node {node}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::mesh::tests::report;
    use crate::controller::plan::tests::node;
    use std::net::IpAddr;

    fn task(last: u8, slot: u64) -> TaskInfo {
        TaskInfo {
            id: format!("t{last}"),
            node_id: format!("n{last}"),
            slot: Some(slot),
            desired_state: "running".into(),
            state: "running".into(),
            addresses: vec![("net1".into(), IpAddr::from([10, 0, 0, last]))],
            ..TaskInfo::default()
        }
    }

    struct Scene {
        tasks: Vec<TaskInfo>,
        reports: Vec<NodeReport>,
        summary: TaskSummary,
        constraints: Vec<String>,
    }

    fn scene(lasts: &[u8]) -> Scene {
        let tasks: Vec<TaskInfo> = lasts
            .iter()
            .enumerate()
            .map(|(i, l)| task(*l, i as u64 + 1))
            .collect();
        let reports = lasts
            .iter()
            .map(|l| {
                let peers: Vec<u8> = lasts.iter().copied().filter(|p| p != l).collect();
                report(node(*l, "AA", lasts.len() as u32), &peers)
            })
            .collect();
        let summary = crate::controller::plan::summarise_tasks(&tasks, "net1", &Default::default());
        Scene {
            tasks,
            reports,
            summary,
            constraints: vec!["node.role==worker".into()],
        }
    }

    fn decide_in(
        s: &Scene,
        enterprise: bool,
        target: u64,
        quiesce: Option<QuiesceState>,
    ) -> ScaleStep {
        decide(&ScaleFacts {
            enterprise,
            target,
            current: s.tasks.len() as u64,
            tasks: &s.tasks,
            network_id: "net1",
            service_port: 3000,
            reports: &s.reports,
            summary: &s.summary,
            constraints: &s.constraints,
            quiesce,
        })
    }

    #[test]
    fn community_steps_down_one_node_per_safe_pass() {
        let mut s = scene(&[2, 3, 4, 5, 6]);
        assert_eq!(decide_in(&s, false, 3, None), ScaleStep::Replicas(4));
        s.reports[1].observation.stats.migrate_partitions_remaining = 9;
        assert!(matches!(decide_in(&s, false, 3, None), ScaleStep::Wait(_)));
    }

    #[test]
    fn enterprise_quiesces_the_highest_slot_then_excludes_it_then_scales() {
        let s = scene(&[2, 3, 4, 5, 6]);
        let not_yet = QuiesceState::default();
        assert_eq!(
            decide_in(&s, true, 3, Some(not_yet)),
            ScaleStep::Quiesce {
                node: "10.0.0.6:3000".parse().unwrap(),
                task: "t6".into()
            }
        );
        let pending = QuiesceState {
            pending: true,
            effective: false,
        };
        assert_eq!(
            decide_in(&s, true, 3, Some(pending)),
            ScaleStep::Recluster {
                node: "10.0.0.6:3000".parse().unwrap()
            }
        );
        let done = QuiesceState {
            pending: true,
            effective: true,
        };
        assert_eq!(
            decide_in(&s, true, 3, Some(done)),
            ScaleStep::Exclude {
                task: "t6".into(),
                constraint: "node.id!=n6".into()
            }
        );
        // Swarm stopped it; its replacement is pending: one replica less.
        let mut s = s;
        s.tasks[4].state = "pending".into();
        s.summary = crate::controller::plan::summarise_tasks(&s.tasks, "net1", &Default::default());
        assert_eq!(decide_in(&s, true, 3, Some(done)), ScaleStep::Replicas(4));
    }

    #[test]
    fn the_exclusions_go_once_the_count_is_reached() {
        let mut s = scene(&[2, 3, 4]);
        s.constraints
            .extend(["node.id!=n5".to_string(), "node.id!=n6".to_string()]);
        assert_eq!(
            decide_in(&s, true, 3, None),
            ScaleStep::Unexclude {
                constraints: vec!["node.id!=n5".into(), "node.id!=n6".into()]
            }
        );
        assert_eq!(
            decide_in(&scene(&[2, 3, 4]), true, 3, None),
            ScaleStep::Nothing
        );
    }
}
