//! The pure decisions of a reconcile: how many replicas, which placement,
//! and what status to report (the mesh orders are in [`super::mesh`]).
//!
//! Nothing here does I/O. [`super::reconcile`] gathers the facts (service,
//! nodes, tasks, what each Aerospike node says), asks these functions what
//! to do, and does it. Keeping the rules here means each one is unit-tested
//! from hand-written facts, and a restarted operator reaches the same
//! decisions from the same facts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use super::mesh::Stray;
use crate::aerospike::{ClusterView, NodeReport, StabilityCheck};
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
/// manual `docker service scale` apart from a spec or node change. A resize
/// through the label is recognised by the desired count in the previous
/// status (`ready n/N`), which differs from the label's. Otherwise it was
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
         a host; swarm restarts no task for it while each task's node still fits, so tasks \
         that share a host now stay until swarm reschedules them"
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
        // The status records the replicas the last pass worked toward: a
        // different count there means the label changed since.
        let label_changed = previous
            .ready
            .is_some_and(|r| r.desired != u32::from(spec.replicas));
        // The last pass already worked toward this spec's count (an
        // Enterprise scale-down quiesces and excludes a node over several
        // passes before it lowers the count): a count above it is the
        // resize still under way, not a change by hand.
        let resizing_to_spec = previous.phase == Some(Phase::Scaling)
            && previous
                .ready
                .is_some_and(|r| r.desired == u32::from(spec.replicas));
        // A count this operator set itself (a step of a scale-down, one
        // node at a time) is not a change by hand.
        let by_hand = !label_changed
            && last_set != Some(current)
            && ((current > wanted && !resizing_to_spec)
                || last_set.is_some()
                || (was_ready_for_this_spec && current != wanted));
        let reason = if label_changed {
            let from = previous.ready.map_or(0, |r| r.desired);
            format!(
                "resizing from {current} to {target} replicas: the label changed from \
                 aerospike.cluster.replicas={from} to {why_target}"
            )
        } else if by_hand {
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
    /// Tasks meant to run that are away, for the message: on a swarm node
    /// that is down, or waiting for a node to take them.
    pub away: Vec<String>,
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
                summary.away.push(format!(
                    "task {} is on swarm node {}, which is down",
                    task.id, task.node_id
                ));
                continue;
            }
            if task.state == "pending" {
                summary
                    .away
                    .push(format!("task {} waits for a node to take it", task.id));
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
    /// What the reachable nodes said, grouped by cluster.
    pub view: &'a ClusterView,
    /// What the reachable nodes said, one report each.
    pub reports: &'a [NodeReport],
    /// Nodes that could not be asked, with why.
    pub unreachable: &'a [(SocketAddr, String)],
    /// Nodes that do not answer because they are cold-starting, each
    /// with where its cold start stands (for the message).
    pub cold_starting: &'a [(SocketAddr, String)],
    /// Whether no node has answered for longer than a starting node takes.
    pub unreachable_persists: bool,
    /// Nodes publishing addresses off the cluster network.
    pub strays: &'a [Stray],
    /// A node whose migrations have not moved for the stall timeout.
    pub stalled: Option<Stall>,
    /// The status as last written (for coarse progress).
    pub previous: &'a ClusterStatus,
    /// The cluster network's name, for messages.
    pub network: &'a str,
}

/// How soon a cluster should be looked at again, as far as its status
/// goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Still changing: look again soon.
    Converging,
    /// Nothing the operator can do, but the nodes may change by
    /// themselves (stalled migrations, stray addresses): look again now
    /// and then, since no swarm event will say so.
    Watching,
    /// Settled until something changes in the swarm.
    Settled,
}

/// A node whose migrations have not moved for the stall timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// The node.
    pub node: SocketAddr,
    /// The lowest count it reported since the clock started.
    pub remaining: u64,
    /// The stall timeout (`--migration-stall-timeout`), for the message.
    pub after: Duration,
}

/// Follows each node's `migrate_partitions_remaining` across passes to
/// tell slow migrations from stalled ones.
///
/// Progress means a new lowest count within the same cluster (key): a
/// count that wobbles without going lower is not progress, and a count
/// that rises within the same cluster is not a new start either. A new
/// cluster key (a node joined or left: a new rebalance) starts the clock
/// again.
#[derive(Debug, Clone, Default)]
pub struct MigrationProgress {
    /// Per node: the cluster key, the lowest count seen in it, and since
    /// when that has been the lowest.
    nodes: BTreeMap<SocketAddr, (String, u64, Instant)>,
}

impl MigrationProgress {
    /// Records this pass's counts (nodes not in `reports` are forgotten)
    /// and returns, of the nodes with partitions left whose lowest count
    /// has not gone down for `after`, the one stalled longest (then the
    /// lowest address): a choice that stays the same while the stall
    /// lasts, so the status naming it is not rewritten.
    pub fn observe(
        &mut self,
        reports: &[NodeReport],
        now: Instant,
        after: Duration,
    ) -> Option<Stall> {
        let mut seen = BTreeMap::new();
        for report in reports {
            let node = report.observation.addr;
            let stats = &report.observation.stats;
            let remaining = stats.migrate_partitions_remaining;
            let entry = match self.nodes.get(&node) {
                Some((key, lowest, since)) if *key == stats.cluster_key && remaining >= *lowest => {
                    (key.clone(), *lowest, *since)
                }
                _ => (stats.cluster_key.clone(), remaining, now),
            };
            seen.insert(node, (entry, remaining));
        }
        self.nodes = seen
            .iter()
            .map(|(node, (entry, _))| (*node, entry.clone()))
            .collect();
        seen.iter()
            .filter(|(_, ((_, lowest, since), remaining))| {
                *remaining > 0 && *lowest > 0 && now.duration_since(*since) >= after
            })
            .min_by_key(|(node, ((_, _, since), _))| (*since, **node))
            .map(|(node, ((_, lowest, _), _))| Stall {
                node: *node,
                remaining: *lowest,
                after,
            })
    }
}

/// The remaining-partitions figure to show: the previous one while the
/// phase is the same and the count has neither halved nor doubled since,
/// so that a long migration costs a status write per halving (about a
/// dozen from 4096), not one per pass, and a count that wobbles costs
/// none.
fn coarse_remaining(previous: &ClusterStatus, phase: Phase, actual: u64) -> u64 {
    // A rollout shows the computed phase's count under Upgrading: the same
    // count, kept as coarse.
    let same = |was: Phase| was == phase || (was == Phase::Upgrading && phase == Phase::Migrating);
    match (previous.phase, previous.migrations_remaining) {
        (Some(was), Some(shown)) if same(was) && actual * 2 > shown && actual < shown * 2 => shown,
        _ => actual,
    }
}

/// The status to report, and how soon to look again.
///
/// Phase order: Error (missing image) → Scaling (tasks not yet at the
/// target) → Error or Meshing when no node answers → Degraded when a node
/// publishes addresses off the cluster network (its peers may reach the
/// wrong node; the message names node, address and fix) → Meshing
/// (outsiders, unreachable nodes, nodes disagreeing on `cluster_size`) →
/// Degraded when migrations are stalled → Migrating until the whole
/// safe-restart gate passes on every node ([`StabilityCheck`]: one key, the
/// expected size, integrity, migrations allowed and none remaining,
/// `cluster-stable` answering that key) → Degraded (fewer ready than
/// asked) → Ready.
pub fn compute_status(
    facts: &StatusFacts<'_>,
    observed_version: Option<u64>,
) -> (ClusterStatus, Settle) {
    let (mut status, settle) = status_from(facts, observed_version);
    // Whatever the cluster waits for, say which of its tasks are away
    // (a node lost during a rollout: its message says why nothing moves).
    if !facts.tasks.away.is_empty() {
        if let Some(message) = &mut status.message {
            message.push_str(&format!("; {}", facts.tasks.away.join("; ")));
        }
    }
    (status, settle)
}

fn status_from(facts: &StatusFacts<'_>, observed_version: Option<u64>) -> (ClusterStatus, Settle) {
    let desired = u32::from(facts.spec.replicas);
    let main = facts.view.main_cluster();
    let ready = main.map_or(0, |m| {
        m.members
            .iter()
            .filter(|n| facts.tasks.running_addrs.contains(&n.addr.ip()))
            .count()
    }) as u32;
    let remaining: u64 = facts
        .reports
        .iter()
        .map(|r| r.observation.stats.migrate_partitions_remaining)
        .sum();
    let status = |phase, message: String, shown: Option<u64>| ClusterStatus {
        phase: Some(phase),
        ready: Some(ReadyCount { ready, desired }),
        message: Some(message),
        observed_version,
        cluster_key: main.map(|m| m.cluster_key.clone()),
        migrations_remaining: shown,
        // What the rollout remembers is kept; [`super::rollout`] sets it.
        rollout: None,
        rollout_step: None,
        image: facts.previous.image.clone(),
        config_secret: facts.previous.config_secret.clone(),
        config_object: facts.previous.config_object.clone(),
        config: facts.previous.config.clone(),
        config_live: facts.previous.config_live.clone(),
        failed_rollout: facts.previous.failed_rollout.clone(),
    };
    let shown = |phase| (remaining > 0).then(|| coarse_remaining(facts.previous, phase, remaining));
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
        return (status(Phase::Error, message, None), Settle::Settled);
    }
    if facts.scaled || facts.tasks.desired as u64 != target || facts.tasks.running as u64 != target
    {
        let message = format!(
            "scaling to {target} {}: {} running",
            plural(target, "task", "tasks"),
            facts.tasks.running
        );
        return (status(Phase::Scaling, message, None), Settle::Converging);
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
        return (status(phase, message, None), Settle::Converging);
    }
    if let Some(first) = facts.strays.first() {
        let mut message = stray_message(first, facts.network);
        if facts.strays.len() > 1 {
            let others: Vec<String> = facts.strays[1..]
                .iter()
                .map(|s| s.node.to_string())
                .collect();
            message.push_str(&format!(" (so do {})", others.join(", ")));
        }
        let shown = shown(Phase::Degraded);
        if let Some(shown) = shown {
            message.push_str(&format!("; {shown} partitions remaining"));
        }
        if let Some(stall) = facts.stalled {
            message.push_str(&format!(
                ", stalled on {} for {}",
                stall.node,
                seconds(stall.after)
            ));
        }
        return (status(Phase::Degraded, message, shown), Settle::Watching);
    }
    let outsiders = facts.view.outsiders().len();
    if outsiders > 0 || !facts.unreachable.is_empty() || !facts.cold_starting.is_empty() {
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
        for (node, cold) in facts.cold_starting {
            message.push_str(&format!("; {node} is {cold}"));
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
        return (status(Phase::Meshing, message, None), Settle::Converging);
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
            return (status(Phase::Meshing, message, None), Settle::Converging);
        }
    }
    if let Some(stall) = facts.stalled {
        let shown = shown(Phase::Degraded);
        let message = format!(
            "migrations stalled on {}: {} partitions remaining for {}; likely cause: the nodes \
             cannot reach each other's fabric port, or a namespace is out of space \
             (storage-engine data-size); see that node's log",
            stall.node,
            stall.remaining,
            seconds(stall.after)
        );
        return (status(Phase::Degraded, message, shown), Settle::Watching);
    }
    let gate = StabilityCheck {
        expected_size: facts.tasks.up.len() as u32,
    };
    if let Err(why) = gate.evaluate_reports(facts.reports) {
        let shown = shown(Phase::Migrating);
        let message = match shown {
            Some(shown) => {
                let migrating = facts
                    .reports
                    .iter()
                    .filter(|r| r.observation.stats.migrate_partitions_remaining > 0)
                    .count();
                format!(
                    "waiting for migrations: {shown} partitions remaining on {migrating} {}",
                    plural(migrating as u64, "node", "nodes")
                )
            }
            None => format!("waiting for the cluster to settle: {why}"),
        };
        return (status(Phase::Migrating, message, shown), Settle::Converging);
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
        return (status(Phase::Degraded, message, None), Settle::Settled);
    }
    let message = match main {
        Some(main) => format!(
            "{ready} {} in one cluster ({}), migrations done",
            plural(u64::from(ready), "node", "nodes"),
            main.cluster_key
        ),
        None => format!("{ready} nodes"),
    };
    (status(Phase::Ready, message, None), Settle::Settled)
}

/// What the status says of a node that publishes stray addresses.
fn stray_message(stray: &Stray, network: &str) -> String {
    let addrs: Vec<String> = stray.addrs.iter().map(IpAddr::to_string).collect();
    format!(
        "node {} publishes {} {}, not its address on network {network} ({}): peers may \
         reach the wrong node through it (docker_gwbridge has the same subnet on every host); \
         bind service, heartbeat and fabric to the overlay interface (address eth0 in \
         aerospike.conf)",
        stray.node,
        plural(addrs.len() as u64, "address", "addresses"),
        addrs.join(", "),
        stray.node.ip()
    )
}

/// `60 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// The replica count to set now on the way from `current` to `target`:
/// growing goes straight there; shrinking first drops the tasks that do not
/// run (swarm removes those first, and they hold no data), then one node
/// at a time, each only when [`cluster_is_safe`]. `None`: wait.
pub fn scale_step(
    target: u64,
    current: u64,
    reports: &[NodeReport],
    tasks: &TaskSummary,
) -> Option<u64> {
    let running = tasks.running as u64;
    if target >= current {
        Some(target)
    } else if running < current {
        Some(target.max(running))
    } else if cluster_is_safe(reports, tasks, current) {
        Some(current - 1)
    } else {
        None
    }
}

/// Whether removing one node now loses nothing: `replicas` tasks run, each
/// answers, and the whole gate passes on every node (one cluster of that
/// size, integrity, 0 migrations, `cluster-stable` agreeing). With a
/// replication factor of 2 or more, no single node then holds the last
/// copy of any partition.
pub fn cluster_is_safe(reports: &[NodeReport], tasks: &TaskSummary, replicas: u64) -> bool {
    safety(reports, tasks.running, replicas).is_ok()
}

/// [`cluster_is_safe`] with the reason when not: `tasks` of `replicas`
/// tasks run, every one answers, and the whole gate passes at that size.
pub fn safety(reports: &[NodeReport], tasks: usize, replicas: u64) -> Result<(), String> {
    if tasks as u64 != replicas {
        return Err(format!("{tasks} of {replicas} tasks running"));
    }
    if reports.len() as u64 != replicas {
        return Err(format!("{} of {replicas} nodes answer", reports.len()));
    }
    StabilityCheck {
        expected_size: replicas as u32,
    }
    .evaluate_reports(reports)
    .map(|_| ())
    .map_err(|e| e.to_string())
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
        assert!(plan.set_max_replicas.unwrap().contains("restarts no task"));
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
        // A change of the label is a resize, named as one, also when the
        // label goes down (the count is then above the spec).
        let plan = plan_placement(&spec(4), &service(3, Some(1)), 5, &ready_status(3), Some(3));
        let (to, reason) = plan.set_replicas.unwrap();
        assert_eq!(to, 4);
        assert_eq!(
            reason,
            "resizing from 3 to 4 replicas: the label changed from aerospike.cluster.replicas=3 \
             to aerospike.cluster.replicas=4"
        );
        let plan = plan_placement(&spec(2), &service(3, Some(1)), 5, &ready_status(3), Some(3));
        let (to, reason) = plan.set_replicas.unwrap();
        assert_eq!(to, 2);
        assert!(reason.starts_with("resizing from 3 to 2"), "{reason}");
        assert!(!reason.contains("outside the operator"), "{reason}");
        // The passes of a scale-down 3 -> 2 before the count is lowered
        // (quiesce, exclude): the status already says Scaling toward 2,
        // nothing was set yet; not blamed on the user either.
        let scaling_to_2 = ClusterStatus {
            phase: Some(Phase::Scaling),
            ..ready_status(2)
        };
        let plan = plan_placement(&spec(2), &service(3, Some(1)), 5, &scaling_to_2, None);
        let (to, reason) = plan.set_replicas.unwrap();
        assert_eq!(to, 2);
        assert!(!reason.contains("outside the operator"), "{reason}");
        // The control: the same count from a Ready status of 2 is a change
        // by hand.
        let plan = plan_placement(&spec(2), &service(3, Some(1)), 5, &ready_status(2), None);
        assert!(plan
            .set_replicas
            .unwrap()
            .1
            .contains("outside the operator"));
        // A step of a scale-down 5 -> 3 that the operator made itself (the
        // status already works toward 3): not blamed on the user.
        let plan = plan_placement(&spec(3), &service(4, Some(1)), 5, &ready_status(3), Some(4));
        let (to, reason) = plan.set_replicas.unwrap();
        assert_eq!(to, 3);
        assert!(!reason.contains("outside the operator"), "{reason}");
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
        assert_eq!(s.away, ["task a is on swarm node down, which is down"]);
        assert!(summarise_tasks(&tasks, "net", &none).away.is_empty());

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
        assert_eq!(s.away, ["task f waits for a node to take it"]);
        // Once a task runs, old rejections are history.
        let s = summarise_tasks(
            &[rejected, task("g", "running", "running", Some(2))],
            "net",
            &none,
        );
        assert_eq!(s.missing_image, None);
    }

    /// What a status test may change beyond the nodes.
    struct Knobs {
        scaled: bool,
        cold_starting: Vec<(SocketAddr, String)>,
        unreachable_persists: bool,
        strays: Vec<Stray>,
        stalled: Option<Stall>,
    }

    /// The status for these facts; `tweak` may change the reports (made
    /// from `nodes`: settled members publishing their own address only)
    /// and the knobs (default: not scaled, unreachable for long, no stray
    /// address, no stall, no previous status).
    fn status_of(
        spec: &ClusterSpec,
        placement: &PlacementPlan,
        tasks: &TaskSummary,
        nodes: &[NodeObservation],
        unreachable: &[(SocketAddr, String)],
        tweak: impl FnOnce(&mut Vec<NodeReport>, &mut Knobs),
    ) -> (ClusterStatus, Settle) {
        let mut reports: Vec<NodeReport> = nodes
            .iter()
            .map(|n| {
                let peers: Vec<u8> = nodes
                    .iter()
                    .filter(|o| o.addr != n.addr && o.stats.cluster_key == n.stats.cluster_key)
                    .map(|o| o.node_id.0 as u8)
                    .collect();
                crate::controller::mesh::tests::report(n.clone(), &peers)
            })
            .collect();
        let mut knobs = Knobs {
            scaled: false,
            cold_starting: Vec::new(),
            unreachable_persists: true,
            strays: Vec::new(),
            stalled: None,
        };
        tweak(&mut reports, &mut knobs);
        let view = ClusterView::from(nodes.to_vec());
        let previous = ClusterStatus::default();
        let facts = StatusFacts {
            spec,
            placement,
            scaled: knobs.scaled,
            tasks,
            view: &view,
            reports: &reports,
            unreachable,
            cold_starting: &knobs.cold_starting,
            unreachable_persists: knobs.unreachable_persists,
            strays: &knobs.strays,
            stalled: knobs.stalled,
            previous: &previous,
            network: "aerospike",
        };
        compute_status(&facts, Some(7))
    }

    fn tasks_at(lasts: &[u8]) -> TaskSummary {
        TaskSummary {
            desired: lasts.len(),
            running: lasts.len(),
            up: lasts.iter().map(|l| ip(*l)).collect(),
            running_addrs: lasts.iter().map(|l| ip(*l)).collect(),
            present: lasts.iter().map(|l| ip(*l)).collect(),
            missing_image: None,
            away: Vec::new(),
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
    fn status_ready_when_every_node_is_in_one_stable_cluster() {
        let (spec, placement, tasks) = (spec(3), placed(3, 3), tasks_at(&[2, 3, 4]));
        let nodes = [node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 3)];
        let (status, settle) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, _| {});
        assert_eq!(settle, Settle::Settled);
        assert_eq!(status.phase, Some(Phase::Ready));
        assert_eq!(status.ready.unwrap().to_string(), "3/3");
        assert_eq!(status.cluster_key.as_deref(), Some("AA"));
        assert_eq!(status.observed_version, Some(7));
        assert_eq!(status.migrations_remaining, None);
    }

    #[test]
    fn status_migrating_until_every_rule_of_the_gate_holds_on_every_node() {
        let (spec, placement, tasks) = (spec(3), placed(3, 3), tasks_at(&[2, 3, 4]));
        let settled = [node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 3)];
        let with = |change: &dyn Fn(&mut NodeObservation)| {
            let mut nodes = settled.clone();
            change(&mut nodes[1]);
            status_of(&spec, &placement, &tasks, &nodes, &[], |_, _| {})
        };
        let (status, settle) = with(&|n| n.stats.migrate_partitions_remaining = 1383);
        assert_eq!(status.phase, Some(Phase::Migrating));
        assert_eq!(settle, Settle::Converging);
        assert_eq!(
            status.message.as_deref(),
            Some("waiting for migrations: 1383 partitions remaining on 1 node")
        );
        assert_eq!(status.migrations_remaining, Some(1383));
        // remaining=0 counts only with migrate_allowed=true (field notes §3).
        let (status, _) = with(&|n| n.stats.migrate_allowed = false);
        assert_eq!(status.phase, Some(Phase::Migrating));
        assert!(status
            .message
            .unwrap()
            .contains("does not allow migrations"),);
        // cluster-stable is node-local: one node saying no is enough.
        let (status, _) = status_of(&spec, &placement, &tasks, &settled, &[], |reports, _| {
            reports[2].stable = Some(crate::aerospike::ClusterStable::Unstable {
                reply: "unstable-cluster".into(),
            });
        });
        assert_eq!(status.phase, Some(Phase::Migrating));
        assert!(status
            .message
            .unwrap()
            .contains("10.0.0.4:3000 answers cluster-stable with \"unstable-cluster\""),);
    }

    #[test]
    fn progress_is_written_coarsely() {
        let previous = |phase, shown| ClusterStatus {
            phase: Some(phase),
            migrations_remaining: Some(shown),
            ..ClusterStatus::default()
        };
        let migrating = previous(Phase::Migrating, 2730);
        assert_eq!(coarse_remaining(&migrating, Phase::Migrating, 2000), 2730);
        assert_eq!(coarse_remaining(&migrating, Phase::Migrating, 1366), 2730);
        assert_eq!(coarse_remaining(&migrating, Phase::Migrating, 1365), 1365);
        // A wobble upward is not shown; a doubling (a node joined mid-way)
        // or another phase is.
        assert_eq!(coarse_remaining(&migrating, Phase::Migrating, 2800), 2730);
        assert_eq!(coarse_remaining(&migrating, Phase::Migrating, 5460), 5460);
        assert_eq!(coarse_remaining(&migrating, Phase::Degraded, 2000), 2000);
        assert_eq!(
            coarse_remaining(&ClusterStatus::default(), Phase::Migrating, 5),
            5
        );
    }

    #[test]
    fn migration_progress_finds_a_count_that_does_not_go_down() {
        let mut progress = MigrationProgress::default();
        let after = Duration::from_secs(60);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut a = crate::controller::mesh::tests::report(node(2, "AA", 2), &[3]);
        let b = crate::controller::mesh::tests::report(node(3, "AA", 2), &[2]);
        let mut with = |a: &NodeReport, t| progress.observe(&[a.clone(), b.clone()], t, after);
        a.observation.stats.migrate_partitions_remaining = 500;
        assert_eq!(with(&a, at(0)), None);
        assert_eq!(with(&a, at(59)), None);
        // A wobble that does not go lower is not progress.
        a.observation.stats.migrate_partitions_remaining = 503;
        let stall = with(&a, at(60)).unwrap();
        assert_eq!((stall.node, stall.remaining), (a.observation.addr, 500));
        // A new low: the clock starts again.
        a.observation.stats.migrate_partitions_remaining = 499;
        assert_eq!(with(&a, at(61)), None);
        // Of two stalled nodes, the one stalled longest is named, and
        // stays named when the other one moves and stalls again.
        let mut c = crate::controller::mesh::tests::report(node(4, "AA", 2), &[2]);
        c.observation.stats.migrate_partitions_remaining = 7;
        let mut two = MigrationProgress::default();
        two.observe(&[a.clone(), c.clone()], at(0), after);
        c.observation.stats.migrate_partitions_remaining = 6;
        two.observe(&[a.clone(), c.clone()], at(10), after);
        assert_eq!(
            two.observe(&[a.clone(), c.clone()], at(100), after)
                .unwrap()
                .node,
            a.observation.addr
        );
        a.observation.stats.migrate_partitions_remaining = 498;
        assert_eq!(
            two.observe(&[a.clone(), c.clone()], at(101), after)
                .unwrap()
                .node,
            c.observation.addr
        );
        assert_eq!(
            two.observe(&[a.clone(), c.clone()], at(200), after)
                .unwrap()
                .node,
            c.observation.addr
        );
        a.observation.stats.migrate_partitions_remaining = 499;
        assert_eq!(with(&a, at(120)), None);
        assert!(with(&a, at(121)).is_some());
        // A new cluster (a node joined or left) starts it again too.
        a.observation.stats.cluster_key = "BB".into();
        a.observation.stats.migrate_partitions_remaining = 900;
        assert_eq!(with(&a, at(122)), None);
        // Zero left is never a stall.
        a.observation.stats.migrate_partitions_remaining = 0;
        assert_eq!(with(&a, at(123)), None);
        assert_eq!(with(&a, at(600)), None);
    }

    #[test]
    fn status_degraded_names_stray_addresses_and_stalls() {
        let (spec, placement, tasks) = (spec(3), placed(3, 3), tasks_at(&[2, 3, 4]));
        let mut nodes = [node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 3)];
        nodes[0].stats.migrate_partitions_remaining = 1383;
        let strays = [
            Stray {
                node: nodes[0].addr,
                addrs: vec![IpAddr::from([10, 215, 0, 3])],
            },
            Stray {
                node: nodes[1].addr,
                addrs: vec![IpAddr::from([10, 215, 0, 3])],
            },
        ];
        let stall = Stall {
            node: nodes[0].addr,
            remaining: 1383,
            after: Duration::from_secs(60),
        };
        let (status, settle) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, k| {
            k.strays = strays.to_vec();
            k.stalled = Some(stall);
        });
        assert_eq!(status.phase, Some(Phase::Degraded));
        assert_eq!(settle, Settle::Watching);
        assert_eq!(
            status.message.as_deref(),
            Some(
                "node 10.0.0.2:3000 publishes address 10.215.0.3, not its address on network \
                 aerospike (10.0.0.2): peers may reach the wrong node through it \
                 (docker_gwbridge has the same subnet on every host); bind service, heartbeat \
                 and fabric to the overlay interface (address eth0 in aerospike.conf) (so do \
                 10.0.0.3:3000); 1383 partitions remaining, stalled on 10.0.0.2:3000 for 60 s"
            )
        );
        // A stall with clean addresses names the likely causes.
        let (status, settle) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, k| {
            k.stalled = Some(stall);
        });
        assert_eq!(
            (status.phase, settle),
            (Some(Phase::Degraded), Settle::Watching)
        );
        let message = status.message.unwrap();
        assert!(
            message.starts_with(
                "migrations stalled on 10.0.0.2:3000: 1383 partitions remaining for 60 s; likely cause"
            ),
            "{message}"
        );
    }

    #[test]
    fn status_degraded_with_too_few_nodes_names_the_count() {
        let (spec, placement, tasks) = (spec(5), placed(3, 3), tasks_at(&[2, 3, 4]));
        let nodes = [node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 3)];
        let (status, settle) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, _| {});
        assert_eq!(settle, Settle::Settled);
        assert_eq!(status.phase, Some(Phase::Degraded));
        assert_eq!(status.ready.unwrap().to_string(), "3/5");
        let message = status.message.unwrap();
        assert!(message.contains("only 3 eligible nodes"), "{message}");
    }

    #[test]
    fn status_meshing_while_nodes_are_apart_or_disagree_on_size() {
        let (spec, placement, tasks) = (spec(3), placed(3, 3), tasks_at(&[2, 3, 4]));
        let nodes = [node(2, "AA", 2), node(3, "AA", 2), node(4, "BB", 1)];
        let (status, settle) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, _| {});
        assert_eq!(settle, Settle::Converging);
        assert_eq!(status.phase, Some(Phase::Meshing));
        assert_eq!(status.ready.unwrap().to_string(), "2/3");
        // Same key everywhere, but one node has not counted the newcomer.
        let nodes = [node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 2)];
        let (status, _) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, _| {});
        assert_eq!(status.phase, Some(Phase::Meshing));
    }

    #[test]
    fn status_scaling_until_the_tasks_run() {
        let (spec, placement) = (spec(3), placed(3, 3));
        let mut tasks = tasks_at(&[2, 3]);
        tasks.desired = 3;
        let nodes = [node(2, "AA", 2), node(3, "AA", 2)];
        let (status, settle) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, _| {});
        assert_eq!(settle, Settle::Converging);
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
        let (status, _) = status_of(&spec, &placement, &tasks, &[], &unreachable, |_, k| {
            k.unreachable_persists = false
        });
        assert_eq!(status.phase, Some(Phase::Meshing));
        let message = status.message.unwrap();
        assert!(
            message.starts_with("waiting for 3 nodes to answer on network aerospike"),
            "{message}"
        );
        // Right after a scale the status says so, whatever the nodes answer.
        let (status, _) = status_of(&spec, &placement, &tasks, &[], &unreachable, |_, k| {
            k.unreachable_persists = false;
            k.scaled = true;
        });
        assert_eq!(status.phase, Some(Phase::Scaling));
        let (status, _) = status_of(&spec, &placement, &tasks, &[], &unreachable, |_, _| {});
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
    fn the_message_names_the_tasks_that_are_away() {
        let (spec, placement) = (spec(3), placed(3, 3));
        let mut tasks = tasks_at(&[2, 3, 4]);
        let nodes = [node(2, "AA", 3), node(3, "AA", 3), node(4, "AA", 3)];
        let (status, _) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, _| {});
        assert_eq!(status.phase, Some(Phase::Ready), "the control: {status:?}");
        tasks.away = vec!["task t5 is on swarm node n5, which is down".into()];
        let (status, _) = status_of(&spec, &placement, &tasks, &nodes, &[], |_, _| {});
        assert!(status
            .message
            .unwrap_or_default()
            .ends_with("; task t5 is on swarm node n5, which is down"));
    }

    #[test]
    fn status_error_names_a_missing_image() {
        let (spec, placement) = (spec(3), placed(3, 3));
        let tasks = TaskSummary {
            desired: 3,
            missing_image: Some("aerospike/aerospike-server:9.9".into()),
            ..TaskSummary::default()
        };
        let (status, _) = status_of(&spec, &placement, &tasks, &[], &[], |_, _| {});
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

    #[test]
    fn a_rollout_keeps_the_migration_count_coarse() {
        let upgrading = ClusterStatus {
            phase: Some(Phase::Upgrading),
            migrations_remaining: Some(6000),
            ..ClusterStatus::default()
        };
        assert_eq!(coarse_remaining(&upgrading, Phase::Migrating, 5000), 6000);
        assert_eq!(coarse_remaining(&upgrading, Phase::Migrating, 2900), 2900);
        // The control: another phase before starts afresh.
        let degraded = ClusterStatus {
            phase: Some(Phase::Degraded),
            ..upgrading
        };
        assert_eq!(coarse_remaining(&degraded, Phase::Migrating, 5000), 5000);
    }
}
