//! The pure decisions of a reconcile: how many replicas, which placement,
//! which tips and tip-clears, and what status to report.
//!
//! Nothing here does I/O. [`super::reconcile`] gathers the facts (service,
//! nodes, tasks, what each Aerospike node says), asks these functions what
//! to do, and does it. Keeping the rules here means each one is unit-tested
//! from hand-written facts, and a restarted operator reaches the same
//! decisions from the same facts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use crate::aerospike::ClusterView;
use crate::spec::{ClusterSpec, ClusterStatus, Phase, ReadyCount};
use crate::swarm::{ServiceInfo, TaskInfo};

/// What the placement and replicas step must change on the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementPlan {
    /// The replica count the service should have:
    /// `min(spec.replicas, eligible nodes)`.
    pub target: u64,
    /// Nodes the service's tasks may run on (Ready, Active, matching its
    /// constraints).
    pub eligible: usize,
    /// `Some(reason)` when `MaxReplicas` must be set to 1.
    pub set_max_replicas: Option<String>,
    /// `Some((count, reason))` when the replica count must change.
    pub set_replicas: Option<(u64, String)>,
}

/// Decides replicas and placement.
///
/// One Aerospike node per host is the point of `MaxReplicas 1`: two nodes of
/// one cluster on the same host would both hold copies of the same
/// partitions, and losing the host would lose data. The replica count is
/// capped at the eligible node count because with `MaxReplicas 1` any task
/// beyond it stays `Pending` forever.
///
/// With no eligible node at all the count is left alone: scaling to zero
/// would stop every node, which is never what a momentary "all nodes down"
/// reading should cause.
///
/// When the count must change, the log says why, and in particular tells a
/// manual `docker service scale` apart from a spec or node change. It was
/// changed by hand when it is above the spec (the operator never sets
/// more), when it differs from `last_set` (the count this operator last
/// set, if it remembers one), or when the last status was Ready for this
/// very spec (so the count then was the spec) and the count is no longer
/// the spec. A node going down is none of these: the count is still what
/// was set; only the target moved.
pub fn plan_placement(
    spec: &ClusterSpec,
    service: &ServiceInfo,
    eligible: usize,
    previous: &ClusterStatus,
    last_set: Option<u64>,
) -> PlacementPlan {
    let wanted = u64::from(spec.replicas);
    let target = if eligible == 0 {
        service.replicas.unwrap_or(wanted)
    } else {
        wanted.min(eligible as u64)
    };
    let set_max_replicas = (service.max_replicas_per_node != Some(1)).then(|| {
        "sets one task per node (MaxReplicas 1) so no two Aerospike nodes of the cluster share \
         a host; changing placement restarts every task once"
            .to_string()
    });
    let current = service.replicas.unwrap_or(0);
    let set_replicas = (current != target).then(|| {
        let why_target = if target < wanted {
            format!(
                "aerospike.cluster.replicas={wanted} but only {eligible} eligible nodes (one \
                 task per node)"
            )
        } else {
            format!("aerospike.cluster.replicas={wanted}")
        };
        let was_ready_for_this_spec = previous.phase == Some(Phase::Ready)
            && previous
                .ready
                .is_some_and(|r| r.desired == u32::from(spec.replicas));
        let by_hand = current > wanted
            || last_set.is_some_and(|set| set != current)
            || (was_ready_for_this_spec && current != wanted);
        let reason = if by_hand {
            format!(
                "the service was changed to {current} replicas outside the operator (docker \
                 service scale?); putting back {target}: {why_target}; change the label to \
                 resize the cluster"
            )
        } else {
            format!("scaling from {current} to {target} replicas: {why_target}")
        };
        (target, reason)
    });
    PlacementPlan {
        target,
        eligible,
        set_max_replicas,
        set_replicas,
    }
}

/// The tasks of one cluster, sorted into what the mesh and status need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSummary {
    /// Tasks meant to run (desired state `running`), whatever their state.
    pub desired: usize,
    /// Of those, the ones in state `running`.
    pub running: usize,
    /// Addresses on the cluster network of tasks whose container is up
    /// (`starting` or `running`). These are the nodes to observe and mesh:
    /// a task whose healthcheck waits for cluster membership stays
    /// `starting` until it is tipped, so waiting for `running` would wait
    /// forever.
    pub up: Vec<IpAddr>,
    /// Addresses of `running` tasks, for the ready count.
    pub running_addrs: BTreeSet<IpAddr>,
    /// Addresses of every task meant to run: a node listed in a survivor's
    /// alumni whose address is not here is gone for good.
    pub present: BTreeSet<IpAddr>,
    /// `Some(image)` when tasks fail because a node lacks the image
    /// (`No such image: ...`) and none of them runs.
    pub missing_image: Option<String>,
}

/// Sorts a cluster's tasks (its whole task list, history included) into a
/// [`TaskSummary`]; `network_id` is the cluster network.
///
/// `lost_nodes` are swarm nodes that are not Ready (daemon stopped, network
/// cut). Their tasks still read `running` until swarm gives up on them, but
/// they are not up: they are neither counted nor asked anything (asking
/// would only time out). Their addresses stay `present`, so a node that
/// comes back is not tip-cleared meanwhile.
pub fn summarise_tasks(
    tasks: &[TaskInfo],
    network_id: &str,
    lost_nodes: &BTreeSet<&str>,
) -> TaskSummary {
    let mut summary = TaskSummary::default();
    let mut missing_image = None;
    for task in tasks {
        if task.desired_state == "running" {
            let address = task.address_on(network_id);
            if let Some(ip) = address {
                summary.present.insert(ip);
            }
            if lost_nodes.contains(task.node_id.as_str()) {
                continue;
            }
            summary.desired += 1;
            if task.state == "running" {
                summary.running += 1;
                summary.running_addrs.extend(address);
            }
            if matches!(task.state.as_str(), "starting" | "running") {
                summary.up.extend(address);
            }
        }
        if let Some(image) = task
            .error
            .as_deref()
            .and_then(|e| e.split_once("No such image:"))
            .map(|(_, image)| image.trim().to_string())
        {
            missing_image = Some(image);
        }
    }
    summary.up.sort();
    summary.up.dedup();
    if summary.running == 0 {
        summary.missing_image = missing_image;
    }
    summary
}

/// The mesh orders for one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshPlan {
    /// `(node to ask, address to tip it toward)`.
    pub tips: Vec<(SocketAddr, IpAddr)>,
    /// `(node to ask, heartbeat endpoints to forget)`, each followed by a
    /// `services-alumni-reset` on the same node.
    pub clears: Vec<(SocketAddr, Vec<SocketAddr>)>,
}

impl MeshPlan {
    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.tips.is_empty() && self.clears.is_empty()
    }
}

/// Decides tips and tip-clears from what the nodes said.
///
/// - Every node outside the main cluster is tipped toward one member of it
///   (the lowest address, so every pass and every operator instance picks
///   the same one). One tip to any member is enough: heartbeats carry
///   adjacency lists, so the node meets the whole cluster. When no node is
///   in a cluster yet, the others are tipped toward the lowest-addressed
///   node.
/// - A node whose `services-alumni` lists an address that no task has any
///   more keeps dialing it: it gets `tip-clear` of that address's
///   heartbeat endpoint, then `services-alumni-reset`.
pub fn plan_mesh(
    view: &ClusterView,
    alumni: &BTreeMap<SocketAddr, Vec<SocketAddr>>,
    present: &BTreeSet<IpAddr>,
    heartbeat_port: u16,
) -> MeshPlan {
    let mut plan = MeshPlan::default();
    let target = match view.main_cluster() {
        Some(main) => main.members.first().map(|n| n.addr.ip()),
        None => view.orphans().first().map(|n| n.addr.ip()),
    };
    if let Some(target) = target {
        for outsider in view.outsiders() {
            if outsider.addr.ip() != target {
                plan.tips.push((outsider.addr, target));
            }
        }
    }
    for (node, seen) in alumni {
        let gone: BTreeSet<SocketAddr> = seen
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !present.contains(ip) && *ip != node.ip())
            .map(|ip| SocketAddr::new(ip, heartbeat_port))
            .collect();
        if !gone.is_empty() {
            plan.clears.push((*node, gone.into_iter().collect()));
        }
    }
    plan
}

/// Everything a status is computed from.
#[derive(Debug, Clone)]
pub struct StatusFacts<'a> {
    /// The spec.
    pub spec: &'a ClusterSpec,
    /// The placement decision of this pass.
    pub placement: &'a PlacementPlan,
    /// Whether this pass changed the replica count or placement.
    pub scaled: bool,
    /// The cluster's tasks.
    pub tasks: &'a TaskSummary,
    /// What the reachable nodes said.
    pub view: &'a ClusterView,
    /// Nodes that could not be asked, with why.
    pub unreachable: &'a [(SocketAddr, String)],
    /// Whether no node has answered for longer than a starting node takes.
    pub unreachable_persists: bool,
    /// The cluster network's name, for messages.
    pub network: &'a str,
}

/// The status to report, and whether the cluster is settled (nothing left
/// to converge until something changes).
pub fn compute_status(
    facts: &StatusFacts<'_>,
    observed_version: Option<u64>,
) -> (ClusterStatus, bool) {
    let desired = u32::from(facts.spec.replicas);
    let main = facts.view.main_cluster();
    let ready = main.map_or(0, |m| {
        m.members
            .iter()
            .filter(|n| facts.tasks.running_addrs.contains(&n.addr.ip()))
            .count()
    }) as u32;
    let status = |phase, message: String| ClusterStatus {
        phase: Some(phase),
        ready: Some(ReadyCount { ready, desired }),
        message: Some(message),
        observed_version,
        cluster_key: main.map(|m| m.cluster_key.clone()),
    };
    let placement = facts.placement;
    let target = placement.target;
    let reached = facts
        .view
        .groups()
        .iter()
        .map(|g| g.members.len())
        .sum::<usize>()
        + facts.view.orphans().len();

    if let Some(image) = &facts.tasks.missing_image {
        let message = format!(
            "no node has the image {image}: tasks fail with \"No such image\"; load or build it \
             on the nodes, or fix aerospike.cluster.image / aerospike.cluster.version"
        );
        return (status(Phase::Error, message), true);
    }
    if facts.scaled || facts.tasks.desired as u64 != target || facts.tasks.running as u64 != target
    {
        let message = format!(
            "scaling to {target} {}: {} running",
            plural(target, "task", "tasks"),
            facts.tasks.running
        );
        return (status(Phase::Scaling, message), false);
    }
    if !facts.unreachable.is_empty() && reached == 0 {
        let n = facts.unreachable.len();
        let nodes = plural(n as u64, "node", "nodes");
        let (phase, message) = if facts.unreachable_persists {
            let message = format!(
                "cannot reach {n} {nodes} on network {}: is the operator attached to it? ({})",
                facts.network, facts.unreachable[0].1
            );
            (Phase::Error, message)
        } else {
            let message = format!(
                "waiting for {n} {nodes} to answer on network {} ({})",
                facts.network, facts.unreachable[0].1
            );
            (Phase::Meshing, message)
        };
        return (status(phase, message), false);
    }
    let outsiders = facts.view.outsiders().len();
    if outsiders > 0 || !facts.unreachable.is_empty() {
        let mut message = format!(
            "{} of {} nodes in the main cluster",
            main.map_or(0, |m| m.members.len()),
            facts.tasks.up.len()
        );
        if outsiders > 0 {
            // Not "tipped N": a pass that waits for a tip just sent would
            // say something else and cost a status write for nothing.
            message.push_str("; tipping the others toward it");
        }
        if !facts.unreachable.is_empty() {
            message.push_str(&format!(
                "; cannot reach {} on network {} ({})",
                facts
                    .unreachable
                    .iter()
                    .map(|(a, _)| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                facts.network,
                facts.unreachable[0].1
            ));
        }
        return (status(Phase::Meshing, message), false);
    }
    // Every node reached is in one cluster; check the nodes agree on its
    // size (a node that just joined may not have been counted yet).
    if let Some(main) = main {
        let members = main.members.len() as u32;
        if let Some(node) = main
            .members
            .iter()
            .find(|n| n.stats.cluster_size != members || !n.stats.cluster_integrity)
        {
            let message = format!(
                "{members} nodes share cluster key {} but {} reports cluster_size {} (integrity \
                 {}); waiting for the cluster to settle",
                main.cluster_key, node.addr, node.stats.cluster_size, node.stats.cluster_integrity
            );
            return (status(Phase::Meshing, message), false);
        }
    }
    if ready < desired {
        let message = if placement.eligible == 0 {
            format!(
                "no eligible node for {desired} {}: none is Ready, Active and matching the \
                 service's placement constraints",
                plural(u64::from(desired), "replica", "replicas")
            )
        } else if (placement.eligible as u32) < desired {
            format!(
                "only {} eligible {} for {desired} replicas (one node per host): {ready} ready",
                placement.eligible,
                plural(placement.eligible as u64, "node", "nodes")
            )
        } else {
            format!("{ready} of {desired} nodes ready")
        };
        return (status(Phase::Degraded, message), true);
    }
    let message = match main {
        Some(main) => format!(
            "{ready} {} in one cluster ({})",
            plural(u64::from(ready), "node", "nodes"),
            main.cluster_key
        ),
        None => format!("{ready} nodes"),
    };
    (status(Phase::Ready, message), true)
}

/// The status for a spec the operator cannot act on (bad labels, missing
/// secret or network, global mode): phase Error with `message`, keeping
/// what was known about the nodes and the version last acted on.
pub fn error_status(previous: &ClusterStatus, message: String) -> ClusterStatus {
    ClusterStatus {
        phase: Some(Phase::Error),
        message: Some(message),
        ..previous.clone()
    }
}

/// The status of a paused cluster: phase Paused, the rest as last seen.
pub fn paused_status(previous: &ClusterStatus) -> ClusterStatus {
    ClusterStatus {
        phase: Some(Phase::Paused),
        message: Some(
            "aerospike.cluster.paused=true: the operator changes nothing in this cluster".into(),
        ),
        ..previous.clone()
    }
}

/// The `observed-version` to report.
///
/// Normally the version of the service as read. But when the service's
/// last update changed only status labels, it was the operator's own status
/// write: keep the version it recorded, or every status write (which bumps
/// the version) would make the next status differ, and the operator would
/// write forever. The rule reads only the service, so it holds across
/// operator restarts.
pub fn observed_version(service: &ServiceInfo, previous: &ClusterStatus) -> u64 {
    match previous.observed_version {
        Some(kept) if service.status_only_update => kept,
        _ => service.version,
    }
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aerospike::{NodeId, NodeObservation, Statistics};

    pub(crate) fn spec(replicas: u16) -> ClusterSpec {
        let labels: BTreeMap<String, String> = [
            ("aerospike.cluster.replicas", replicas.to_string()),
            ("aerospike.cluster.version", "7.1.0.0".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        ClusterSpec::from_labels(&labels, None).unwrap().unwrap()
    }

    fn service(replicas: u64, max: Option<u64>) -> ServiceInfo {
        ServiceInfo {
            id: "s1".into(),
            name: "db".into(),
            replicas: Some(replicas),
            max_replicas_per_node: max,
            ..ServiceInfo::default()
        }
    }

    /// A node at `10.0.0.<last>:3000` in cluster `key` of `size`.
    pub(crate) fn node(last: u8, key: &str, size: u32) -> NodeObservation {
        NodeObservation {
            addr: SocketAddr::new(IpAddr::from([10, 0, 0, last]), 3000),
            node_id: NodeId(u64::from(last)),
            stats: Statistics {
                cluster_size: size,
                cluster_key: key.to_string(),
                cluster_generation: 1,
                cluster_principal: "1".into(),
                cluster_integrity: true,
                cluster_is_member: true,
                migrate_allowed: true,
                migrate_partitions_remaining: 0,
            },
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn ready_status(desired: u32) -> ClusterStatus {
        ClusterStatus {
            phase: Some(Phase::Ready),
            ready: Some(ReadyCount {
                ready: desired,
                desired,
            }),
            ..ClusterStatus::default()
        }
    }

    #[test]
    fn placement_sets_one_task_per_node_and_caps_replicas_at_eligible_nodes() {
        let plan = plan_placement(
            &spec(5),
            &service(5, None),
            3,
            &ClusterStatus::default(),
            None,
        );
        assert_eq!(plan.target, 3);
        assert!(plan
            .set_max_replicas
            .unwrap()
            .contains("restarts every task once"));
        let (to, reason) = plan.set_replicas.unwrap();
        assert_eq!(to, 3);
        assert!(reason.contains("only 3 eligible nodes"), "{reason}");

        // Already right: nothing to change.
        let plan = plan_placement(&spec(3), &service(3, Some(1)), 5, &ready_status(3), None);
        assert_eq!((plan.set_max_replicas, plan.set_replicas), (None, None));
        assert_eq!(plan.target, 3);
    }

    #[test]
    fn a_manual_scale_is_put_back_and_the_reason_says_so() {
        let by_hand = |current: u64, previous: &ClusterStatus, last_set: Option<u64>| {
            let plan = plan_placement(&spec(3), &service(current, Some(1)), 5, previous, last_set);
            let (to, reason) = plan.set_replicas.expect("a change");
            assert_eq!(to, 3);
            reason
        };
        // Down from Ready, up above the spec, away from what we last set.
        for reason in [
            by_hand(1, &ready_status(3), None),
            by_hand(5, &ClusterStatus::default(), None),
            by_hand(2, &ClusterStatus::default(), Some(3)),
        ] {
            assert!(reason.contains("outside the operator"), "{reason}");
            assert!(reason.contains("docker service scale"), "{reason}");
            assert!(reason.contains("aerospike.cluster.replicas=3"), "{reason}");
        }
        // A spec change is a plain scale.
        let plan = plan_placement(&spec(4), &service(3, Some(1)), 5, &ready_status(3), Some(3));
        let (to, reason) = plan.set_replicas.unwrap();
        assert_eq!(to, 4);
        assert!(reason.starts_with("scaling from 3 to 4"), "{reason}");
    }

    #[test]
    fn a_node_going_down_or_joining_is_not_a_manual_scale() {
        // Ready at 3, a node goes down: 2 eligible.
        let plan = plan_placement(&spec(3), &service(3, Some(1)), 2, &ready_status(3), None);
        let (to, reason) = plan.set_replicas.unwrap();
        assert_eq!(to, 2);
        assert!(reason.starts_with("scaling from 3 to 2"), "{reason}");
        assert!(reason.contains("only 2 eligible nodes"), "{reason}");
        // Degraded at 2 of 3, the node is back.
        let degraded = ClusterStatus {
            phase: Some(Phase::Degraded),
            ..ready_status(3)
        };
        let plan = plan_placement(&spec(3), &service(2, Some(1)), 3, &degraded, Some(2));
        assert!(plan
            .set_replicas
            .unwrap()
            .1
            .starts_with("scaling from 2 to 3"));
    }

    #[test]
    fn no_eligible_node_never_scales_to_zero() {
        let plan = plan_placement(&spec(3), &service(3, Some(1)), 0, &ready_status(3), None);
        assert_eq!(plan.target, 3);
        assert_eq!(plan.set_replicas, None);
    }

    #[test]
    fn task_summary_sorts_states_and_finds_missing_images() {
        let task = |id: &str, state: &str, desired: &str, last: Option<u8>| TaskInfo {
            id: id.into(),
            state: state.into(),
            desired_state: desired.into(),
            addresses: last
                .map(|l| ("net".to_string(), ip(l)))
                .into_iter()
                .collect(),
            ..TaskInfo::default()
        };
        let tasks = vec![
            task("a", "running", "running", Some(2)),
            task("b", "starting", "running", Some(3)),
            task("c", "preparing", "running", Some(4)),
            task("d", "shutdown", "shutdown", Some(5)),
        ];
        let none = BTreeSet::new();
        let s = summarise_tasks(&tasks, "net", &none);
        assert_eq!((s.desired, s.running), (3, 1));
        assert_eq!(s.up, vec![ip(2), ip(3)]);
        assert_eq!(s.present, [ip(2), ip(3), ip(4)].into());
        assert_eq!(s.missing_image, None);

        // The node of task a is down: a is lost, but its address stays.
        let mut on_down_node = tasks.clone();
        on_down_node[0].node_id = "down".into();
        let s = summarise_tasks(&on_down_node, "net", &["down"].into());
        assert_eq!((s.desired, s.running), (2, 0));
        assert_eq!(s.up, vec![ip(3)]);
        assert!(s.present.contains(&ip(2)));

        let mut rejected = task("e", "rejected", "shutdown", None);
        rejected.error = Some("No such image: aerospike/aerospike-server:9.9".into());
        let s = summarise_tasks(
            &[rejected.clone(), task("f", "pending", "running", None)],
            "net",
            &none,
        );
        assert_eq!(
            s.missing_image.as_deref(),
            Some("aerospike/aerospike-server:9.9")
        );
        // Once a task runs, old rejections are history.
        let s = summarise_tasks(
            &[rejected, task("g", "running", "running", Some(2))],
            "net",
            &none,
        );
        assert_eq!(s.missing_image, None);
    }

    #[test]
    fn mesh_tips_outsiders_toward_the_lowest_member_of_the_main_cluster() {
        let view = ClusterView::from(vec![
            node(2, "AA", 2),
            node(3, "AA", 2),
            node(4, "BB", 1),
            node(5, "CC", 1),
        ]);
        let plan = plan_mesh(&view, &BTreeMap::new(), &BTreeSet::new(), 3002);
        assert_eq!(
            plan.tips,
            vec![(node(4, "", 0).addr, ip(2)), (node(5, "", 0).addr, ip(2))]
        );
        assert!(plan.clears.is_empty());

        // One cluster: nothing to do.
        let view = ClusterView::from(vec![node(2, "AA", 2), node(3, "AA", 2)]);
        let alumni = BTreeMap::from([
            (node(2, "", 0).addr, vec![SocketAddr::new(ip(3), 3000)]),
            (node(3, "", 0).addr, vec![SocketAddr::new(ip(2), 3000)]),
        ]);
        let plan = plan_mesh(&view, &alumni, &[ip(2), ip(3)].into(), 3002);
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn mesh_with_no_cluster_yet_tips_toward_the_lowest_orphan() {
        let mut a = node(2, "0", 0);
        a.stats.cluster_is_member = false;
        let mut b = node(3, "0", 0);
        b.stats.cluster_is_member = false;
        let plan = plan_mesh(
            &ClusterView::from(vec![a, b]),
            &BTreeMap::new(),
            &BTreeSet::new(),
            3002,
        );
        assert_eq!(plan.tips, vec![(node(3, "", 0).addr, ip(2))]);
    }

    #[test]
    fn mesh_clears_departed_nodes_by_heartbeat_endpoint() {
        let view = ClusterView::from(vec![node(2, "AA", 1)]);
        let alumni = BTreeMap::from([(
            node(2, "", 0).addr,
            vec![SocketAddr::new(ip(3), 3000), SocketAddr::new(ip(9), 3000)],
        )]);
        // 10.0.0.3 is still a task (starting, say); 10.0.0.9 is gone.
        let plan = plan_mesh(&view, &alumni, &[ip(2), ip(3)].into(), 3002);
        assert_eq!(
            plan.clears,
            vec![(node(2, "", 0).addr, vec![SocketAddr::new(ip(9), 3002)])]
        );
        assert!(plan.tips.is_empty());
    }

    fn facts<'a>(
        spec: &'a ClusterSpec,
        placement: &'a PlacementPlan,
        tasks: &'a TaskSummary,
        view: &'a ClusterView,
        unreachable: &'a [(SocketAddr, String)],
    ) -> StatusFacts<'a> {
        StatusFacts {
            spec,
            placement,
            scaled: false,
            tasks,
            view,
            unreachable,
            unreachable_persists: true,
            network: "aerospike",
        }
    }

    fn tasks_at(lasts: &[u8]) -> TaskSummary {
        TaskSummary {
            desired: lasts.len(),
            running: lasts.len(),
            up: lasts.iter().map(|l| ip(*l)).collect(),
            running_addrs: lasts.iter().map(|l| ip(*l)).collect(),
            present: lasts.iter().map(|l| ip(*l)).collect(),
            missing_image: None,
        }
    }

    fn placed(target: u64, eligible: usize) -> PlacementPlan {
        PlacementPlan {
            target,
            eligible,
            set_max_replicas: None,
            set_replicas: None,
        }
    }

    #[test]
    fn status_ready_when_every_node_is_in_one_cluster() {
        let (spec, placement, tasks) = (spec(3), placed(3, 3), tasks_at(&[2, 3, 4]));
        let view = ClusterView::from(vec![node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 3)]);
        let (status, settled) =
            compute_status(&facts(&spec, &placement, &tasks, &view, &[]), Some(7));
        assert!(settled);
        assert_eq!(status.phase, Some(Phase::Ready));
        assert_eq!(status.ready.unwrap().to_string(), "3/3");
        assert_eq!(status.cluster_key.as_deref(), Some("AA"));
        assert_eq!(status.observed_version, Some(7));
    }

    #[test]
    fn status_degraded_with_too_few_nodes_names_the_count() {
        let (spec, placement, tasks) = (spec(5), placed(3, 3), tasks_at(&[2, 3, 4]));
        let view = ClusterView::from(vec![node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 3)]);
        let (status, settled) = compute_status(&facts(&spec, &placement, &tasks, &view, &[]), None);
        assert!(settled);
        assert_eq!(status.phase, Some(Phase::Degraded));
        assert_eq!(status.ready.unwrap().to_string(), "3/5");
        let message = status.message.unwrap();
        assert!(message.contains("only 3 eligible nodes"), "{message}");
    }

    #[test]
    fn status_meshing_while_nodes_are_apart_or_disagree_on_size() {
        let (spec, placement, tasks) = (spec(3), placed(3, 3), tasks_at(&[2, 3, 4]));
        let view = ClusterView::from(vec![node(2, "AA", 2), node(3, "AA", 2), node(4, "BB", 1)]);
        let (status, settled) = compute_status(&facts(&spec, &placement, &tasks, &view, &[]), None);
        assert!(!settled);
        assert_eq!(status.phase, Some(Phase::Meshing));
        assert_eq!(status.ready.unwrap().to_string(), "2/3");
        // Same key everywhere, but one node has not counted the newcomer.
        let view = ClusterView::from(vec![node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 2)]);
        let (status, _) = compute_status(&facts(&spec, &placement, &tasks, &view, &[]), None);
        assert_eq!(status.phase, Some(Phase::Meshing));
    }

    #[test]
    fn status_scaling_until_the_tasks_run() {
        let (spec, placement) = (spec(3), placed(3, 3));
        let mut tasks = tasks_at(&[2, 3]);
        tasks.desired = 3;
        let view = ClusterView::from(vec![node(2, "AA", 2), node(3, "AA", 2)]);
        let (status, settled) = compute_status(&facts(&spec, &placement, &tasks, &view, &[]), None);
        assert!(!settled);
        assert_eq!(status.phase, Some(Phase::Scaling));
    }

    #[test]
    fn status_says_when_nodes_cannot_be_reached_and_names_the_network() {
        let (spec, placement, tasks) = (spec(3), placed(3, 3), tasks_at(&[2, 3, 4]));
        let unreachable: Vec<(SocketAddr, String)> = [2, 3, 4]
            .iter()
            .map(|l| {
                (
                    SocketAddr::new(ip(*l), 3000),
                    "no connection within 1s".to_string(),
                )
            })
            .collect();
        let view = ClusterView::default();
        let mut starting = facts(&spec, &placement, &tasks, &view, &unreachable);
        starting.unreachable_persists = false;
        let (status, _) = compute_status(&starting, None);
        assert_eq!(status.phase, Some(Phase::Meshing));
        let message = status.message.unwrap();
        assert!(
            message.starts_with("waiting for 3 nodes to answer on network aerospike"),
            "{message}"
        );
        // Right after a scale the status says so, whatever the nodes answer.
        starting.scaled = true;
        assert_eq!(
            compute_status(&starting, None).0.phase,
            Some(Phase::Scaling)
        );
        let (status, _) =
            compute_status(&facts(&spec, &placement, &tasks, &view, &unreachable), None);
        assert_eq!(status.phase, Some(Phase::Error));
        let message = status.message.unwrap();
        assert!(
            message.starts_with(
                "cannot reach 3 nodes on network aerospike: is the operator attached to it?"
            ),
            "{message}"
        );
    }

    #[test]
    fn status_error_names_a_missing_image() {
        let (spec, placement) = (spec(3), placed(3, 3));
        let tasks = TaskSummary {
            desired: 3,
            missing_image: Some("aerospike/aerospike-server:9.9".into()),
            ..TaskSummary::default()
        };
        let view = ClusterView::default();
        let (status, _) = compute_status(&facts(&spec, &placement, &tasks, &view, &[]), None);
        assert_eq!(status.phase, Some(Phase::Error));
        assert!(status
            .message
            .unwrap()
            .contains("aerospike/aerospike-server:9.9"));
    }

    #[test]
    fn observed_version_ignores_our_own_status_writes() {
        let previous = ClusterStatus {
            observed_version: Some(40),
            ..ClusterStatus::default()
        };
        let mut service = service(3, Some(1));
        service.version = 41;
        service.status_only_update = true;
        assert_eq!(observed_version(&service, &previous), 40);
        service.status_only_update = false;
        assert_eq!(observed_version(&service, &previous), 41);
        // No recorded version yet: take the current one.
        service.status_only_update = true;
        assert_eq!(observed_version(&service, &ClusterStatus::default()), 41);
    }

    #[test]
    fn error_and_paused_keep_what_was_known() {
        let previous = ClusterStatus {
            cluster_key: Some("AA".into()),
            observed_version: Some(3),
            ..ready_status(3)
        };
        let error = error_status(&previous, "bad".into());
        assert_eq!(error.phase, Some(Phase::Error));
        assert_eq!(error.cluster_key.as_deref(), Some("AA"));
        assert_eq!(error.observed_version, Some(3));
        assert_eq!(paused_status(&previous).phase, Some(Phase::Paused));
    }
}
