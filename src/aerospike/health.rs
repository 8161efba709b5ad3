//! Decisions over what nodes said: which nodes form the main cluster, and
//! whether the cluster is settled enough to disturb.
//!
//! Everything here except [`check_stable`] is a pure function of
//! [`NodeObservation`]s, so each rule is unit-tested without a network.
//!
//! - [`ClusterView`] groups nodes by the cluster they say they are in. The
//!   mesh logic tips every [`ClusterView::outsiders`] node toward a member
//!   of [`ClusterView::main_cluster`].
//! - [`StabilityCheck`] is the safe-restart gate of the Aerospike
//!   Kubernetes operator (field notes §4): the whole cluster must agree on
//!   one key and the expected size, have integrity, allow migrations and
//!   have none left. [`check_stable`] adds the server's own
//!   `cluster-stable` verdict on every node.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use futures::future::join_all;

use super::client::InfoClient;
use super::commands::{NodeObservation, NodeReport};
use super::error::InfoError;
use super::reply::{ClusterStable, NodeId};

/// Nodes that report the same cluster key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterGroup {
    /// The key they share.
    pub cluster_key: String,
    /// The nodes, in address order.
    pub members: Vec<NodeObservation>,
}

impl ClusterGroup {
    /// The highest node id in the group.
    pub fn highest_node_id(&self) -> Option<NodeId> {
        self.members.iter().map(|n| n.node_id).max()
    }
}

/// Observed nodes, grouped by the cluster each says it is in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// One entry per distinct cluster key, in key order.
    groups: Vec<ClusterGroup>,
    /// Nodes that are in no cluster at all (not a member, or key 0): a
    /// node between clusters, typically just after it started or lost its
    /// peers.
    orphans: Vec<NodeObservation>,
}

impl From<Vec<NodeObservation>> for ClusterView {
    fn from(observations: Vec<NodeObservation>) -> ClusterView {
        let mut by_key: BTreeMap<String, Vec<NodeObservation>> = BTreeMap::new();
        let mut orphans = Vec::new();
        for node in observations {
            let in_a_cluster =
                node.stats.cluster_is_member && node.stats.cluster_key.bytes().any(|b| b != b'0');
            if in_a_cluster {
                by_key
                    .entry(node.stats.cluster_key.clone())
                    .or_default()
                    .push(node);
            } else {
                orphans.push(node);
            }
        }
        let groups = by_key
            .into_iter()
            .map(|(cluster_key, mut members)| {
                members.sort_by_key(|n| n.addr);
                ClusterGroup {
                    cluster_key,
                    members,
                }
            })
            .collect();
        orphans.sort_by_key(|n| n.addr);
        ClusterView { groups, orphans }
    }
}

impl ClusterView {
    /// Every group, in key order.
    pub fn groups(&self) -> &[ClusterGroup] {
        &self.groups
    }

    /// Nodes in no cluster.
    pub fn orphans(&self) -> &[NodeObservation] {
        &self.orphans
    }

    /// The group the others should join: the one with the most members.
    ///
    /// On a tie, the group holding the highest node id wins. Aerospike makes
    /// the highest node id the principal of a merged cluster, so this picks
    /// the side that will lead once they merge; more importantly, it is a
    /// choice every reconcile (and a restarted operator) makes the same way
    /// from the same facts, whereas "first seen" could flip between calls
    /// and tip the two halves toward each other in turn. `None` when no
    /// node is in a cluster.
    pub fn main_cluster(&self) -> Option<&ClusterGroup> {
        self.groups
            .iter()
            .max_by_key(|g| (g.members.len(), g.highest_node_id()))
    }

    /// Every node not in the main cluster (other groups and orphans), in
    /// address order.
    pub fn outsiders(&self) -> Vec<&NodeObservation> {
        let main_key = self.main_cluster().map(|g| g.cluster_key.as_str());
        let mut outsiders: Vec<&NodeObservation> = self
            .groups
            .iter()
            .filter(|g| Some(g.cluster_key.as_str()) != main_key)
            .flat_map(|g| &g.members)
            .chain(&self.orphans)
            .collect();
        outsiders.sort_by_key(|n| n.addr);
        outsiders
    }
}

/// Why a cluster is not safe to disturb yet. Displays as a sentence for
/// logs and status messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instability {
    /// No node was observed.
    NoNodes,
    /// A node is in no cluster.
    NotMember {
        /// The node.
        addr: SocketAddr,
    },
    /// Nodes disagree about which cluster they are in.
    Split {
        /// Each cluster key with the nodes reporting it.
        clusters: Vec<(String, Vec<SocketAddr>)>,
    },
    /// A node's cluster is not the expected size.
    WrongSize {
        /// The node.
        addr: SocketAddr,
        /// The size it reports.
        size: u32,
        /// The size wanted.
        expected: u32,
    },
    /// A node sees nodes outside its cluster view.
    NoIntegrity {
        /// The node.
        addr: SocketAddr,
    },
    /// A node's cluster has not yet agreed on partition ownership.
    MigrationsNotAllowed {
        /// The node.
        addr: SocketAddr,
    },
    /// A node still has partitions to migrate.
    Migrating {
        /// The node.
        addr: SocketAddr,
        /// Partitions left.
        remaining: u64,
    },
    /// The node's `cluster-stable` answered an error (not stable).
    ServerSaysUnstable {
        /// The node.
        addr: SocketAddr,
        /// The server's words, e.g. `unstable-cluster`.
        reply: String,
    },
    /// `cluster-stable` returned a key other than the one `statistics`
    /// reported moments before: the cluster changed in between.
    KeyChanged {
        /// The node.
        addr: SocketAddr,
        /// Key from `statistics`.
        observed: String,
        /// Key from `cluster-stable`.
        stable: String,
    },
}

impl fmt::Display for Instability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Instability::NoNodes => write!(f, "no node was observed"),
            Instability::NotMember { addr } => write!(f, "node {addr} is not in a cluster"),
            Instability::Split { clusters } => {
                write!(f, "nodes are in {} clusters:", clusters.len())?;
                for (i, (key, addrs)) in clusters.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    let addrs: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
                    write!(f, "{sep}{key} ({})", addrs.join(", "))?;
                }
                Ok(())
            }
            Instability::WrongSize {
                addr,
                size,
                expected,
            } => write!(
                f,
                "node {addr} is in a cluster of {size}, expected {expected}"
            ),
            Instability::NoIntegrity { addr } => {
                write!(f, "node {addr} reports cluster_integrity=false")
            }
            Instability::MigrationsNotAllowed { addr } => {
                write!(f, "node {addr} does not allow migrations yet")
            }
            Instability::Migrating { addr, remaining } => {
                write!(f, "node {addr} has {remaining} partitions left to migrate")
            }
            Instability::ServerSaysUnstable { addr, reply } => {
                write!(f, "node {addr} answers cluster-stable with {reply:?}")
            }
            Instability::KeyChanged {
                addr,
                observed,
                stable,
            } => write!(
                f,
                "node {addr} changed cluster from {observed} to {stable} while being checked"
            ),
        }
    }
}

/// The answer to "may the operator disturb this cluster now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StableVerdict {
    /// Every check passed; every node is in the cluster with this key.
    Stable {
        /// The cluster key.
        cluster_key: String,
    },
    /// Not yet, and why.
    Unstable(Instability),
}

impl StableVerdict {
    /// True for [`StableVerdict::Stable`].
    pub fn is_stable(&self) -> bool {
        matches!(self, StableVerdict::Stable { .. })
    }
}

/// The whole-cluster safe-restart gate over `statistics` (field notes §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StabilityCheck {
    /// The cluster size every node must report.
    pub expected_size: u32,
}

impl StabilityCheck {
    /// Checks the observations; `Ok(cluster key)` when they pass.
    ///
    /// Each rule is applied to every node before the next rule, so the
    /// reason given is the most basic one: a split cluster is reported
    /// before a node's migration count, which would only follow from it.
    pub fn evaluate(&self, observations: &[NodeObservation]) -> Result<String, Instability> {
        let mut nodes: Vec<&NodeObservation> = observations.iter().collect();
        nodes.sort_by_key(|n| n.addr);
        let first = nodes.first().ok_or(Instability::NoNodes)?;
        if let Some(n) = nodes.iter().find(|n| !n.stats.cluster_is_member) {
            return Err(Instability::NotMember { addr: n.addr });
        }
        let mut clusters: BTreeMap<&str, Vec<SocketAddr>> = BTreeMap::new();
        for n in &nodes {
            clusters
                .entry(&n.stats.cluster_key)
                .or_default()
                .push(n.addr);
        }
        if clusters.len() > 1 {
            return Err(Instability::Split {
                clusters: clusters
                    .into_iter()
                    .map(|(key, addrs)| (key.to_string(), addrs))
                    .collect(),
            });
        }
        if let Some(n) = nodes
            .iter()
            .find(|n| n.stats.cluster_size != self.expected_size)
        {
            return Err(Instability::WrongSize {
                addr: n.addr,
                size: n.stats.cluster_size,
                expected: self.expected_size,
            });
        }
        if let Some(n) = nodes.iter().find(|n| !n.stats.cluster_integrity) {
            return Err(Instability::NoIntegrity { addr: n.addr });
        }
        if let Some(n) = nodes.iter().find(|n| !n.stats.migrate_allowed) {
            return Err(Instability::MigrationsNotAllowed { addr: n.addr });
        }
        if let Some(n) = nodes
            .iter()
            .find(|n| n.stats.migrate_partitions_remaining > 0)
        {
            return Err(Instability::Migrating {
                addr: n.addr,
                remaining: n.stats.migrate_partitions_remaining,
            });
        }
        Ok(first.stats.cluster_key.clone())
    }
}

impl StabilityCheck {
    /// The whole gate over one pass's reports: [`StabilityCheck::evaluate`]
    /// on their statistics, then every node's own `cluster-stable` verdict
    /// (it is node-local: one node's answer says nothing about the others),
    /// each of which must name the key the statistics agreed on. A node
    /// whose `cluster-stable` reply did not parse is not stable either.
    pub fn evaluate_reports(&self, reports: &[NodeReport]) -> Result<String, Instability> {
        let observations: Vec<NodeObservation> =
            reports.iter().map(|r| r.observation.clone()).collect();
        let key = self.evaluate(&observations)?;
        let mut reports: Vec<&NodeReport> = reports.iter().collect();
        reports.sort_by_key(|r| r.observation.addr);
        for report in reports {
            let addr = report.observation.addr;
            match &report.stable {
                Some(ClusterStable::Stable { cluster_key }) if *cluster_key == key => {}
                Some(ClusterStable::Stable { cluster_key }) => {
                    return Err(Instability::KeyChanged {
                        addr,
                        observed: key,
                        stable: cluster_key.clone(),
                    })
                }
                Some(ClusterStable::Unstable { reply }) => {
                    return Err(Instability::ServerSaysUnstable {
                        addr,
                        reply: reply.clone(),
                    })
                }
                None => {
                    return Err(Instability::ServerSaysUnstable {
                        addr,
                        reply: "no verdict that parses".into(),
                    })
                }
            }
        }
        Ok(key)
    }
}

/// The full gate, asked afresh: reads every node in `addrs` with
/// [`InfoClient::observe_node`] (statistics and
/// `cluster-stable:size=<expected>;ignore-migrations=false` in one request
/// per node) and applies [`StabilityCheck::evaluate_reports`].
///
/// A node that cannot be asked is an `Err`, not an unstable verdict: the
/// caller learns which node is unreachable and why, and should treat the
/// cluster as not safe to disturb either way.
pub async fn check_stable(
    client: &InfoClient,
    addrs: &[SocketAddr],
    expected: u32,
) -> Result<StableVerdict, InfoError> {
    let reports = join_all(
        addrs
            .iter()
            .map(|addr| client.observe_node(*addr, expected)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    Ok(
        match (StabilityCheck {
            expected_size: expected,
        })
        .evaluate_reports(&reports)
        {
            Ok(cluster_key) => StableVerdict::Stable { cluster_key },
            Err(reason) => StableVerdict::Unstable(reason),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aerospike::reply::Statistics;

    /// A settled member of cluster `key` with `size` nodes.
    fn node(port: u16, id: u64, key: &str, size: u32) -> NodeObservation {
        NodeObservation {
            addr: SocketAddr::from(([10, 0, 1, 5], port)),
            node_id: NodeId(id),
            stats: Statistics {
                cluster_size: size,
                cluster_key: key.to_string(),
                cluster_generation: 3,
                cluster_principal: "0".to_string(),
                cluster_integrity: true,
                cluster_is_member: true,
                migrate_allowed: true,
                migrate_partitions_remaining: 0,
            },
        }
    }

    fn orphan(port: u16, id: u64) -> NodeObservation {
        let mut n = node(port, id, "0", 0);
        n.stats.cluster_is_member = false;
        n
    }

    fn ports(nodes: &[&NodeObservation]) -> Vec<u16> {
        nodes.iter().map(|n| n.addr.port()).collect()
    }

    #[test]
    fn the_biggest_group_is_the_main_cluster() {
        let view = ClusterView::from(vec![
            node(3003, 9, "B", 1),
            node(3001, 1, "A", 2),
            orphan(3004, 4),
            node(3002, 2, "A", 2),
        ]);
        assert_eq!(view.groups().len(), 2);
        let main = view.main_cluster().unwrap();
        assert_eq!(main.cluster_key, "A");
        assert_eq!(main.members.len(), 2);
        assert_eq!(ports(&view.outsiders()), vec![3003, 3004]);
        assert_eq!(view.orphans().len(), 1);
    }

    #[test]
    fn a_tie_goes_to_the_group_with_the_highest_node_id() {
        let nodes = vec![
            node(3001, 0x100, "A", 1),
            node(3002, 0xFF, "B", 1),
            node(3003, 0x50, "B", 1),
            node(3004, 0x20, "A", 1),
        ];
        let view = ClusterView::from(nodes.clone());
        assert_eq!(view.main_cluster().unwrap().cluster_key, "A");
        // Input order does not matter.
        let reversed: Vec<_> = nodes.into_iter().rev().collect();
        assert_eq!(
            ClusterView::from(reversed)
                .main_cluster()
                .unwrap()
                .cluster_key,
            "A"
        );
    }

    #[test]
    fn orphans_only_means_no_main_cluster() {
        let view = ClusterView::from(vec![orphan(3001, 1), orphan(3002, 2)]);
        assert!(view.main_cluster().is_none());
        assert_eq!(ports(&view.outsiders()), vec![3001, 3002]);
        assert!(ClusterView::from(vec![]).main_cluster().is_none());
        // A member that reports key 0 is not in a cluster either.
        let view = ClusterView::from(vec![node(3001, 1, "0", 1)]);
        assert!(view.main_cluster().is_none());
    }

    #[test]
    fn a_settled_cluster_passes() {
        let check = StabilityCheck { expected_size: 3 };
        let nodes = [
            node(3001, 1, "K", 3),
            node(3002, 2, "K", 3),
            node(3003, 3, "K", 3),
        ];
        assert_eq!(check.evaluate(&nodes), Ok("K".to_string()));
    }

    #[test]
    fn every_rule_of_the_gate_can_fail() {
        let check = StabilityCheck { expected_size: 2 };
        let a = node(3001, 1, "K", 2);
        let b = node(3002, 2, "K", 2);
        let addr_b = b.addr;
        let with_b = |change: &dyn Fn(&mut NodeObservation)| {
            let mut b = b.clone();
            change(&mut b);
            check.evaluate(&[a.clone(), b]).unwrap_err()
        };
        assert_eq!(check.evaluate(&[]), Err(Instability::NoNodes));
        assert_eq!(
            with_b(&|b| b.stats.cluster_is_member = false),
            Instability::NotMember { addr: addr_b }
        );
        assert_eq!(
            with_b(&|b| b.stats.cluster_key = "J".into()),
            Instability::Split {
                clusters: vec![("J".into(), vec![addr_b]), ("K".into(), vec![a.addr])]
            }
        );
        assert_eq!(
            with_b(&|b| b.stats.cluster_size = 3),
            Instability::WrongSize {
                addr: addr_b,
                size: 3,
                expected: 2
            }
        );
        assert_eq!(
            with_b(&|b| b.stats.cluster_integrity = false),
            Instability::NoIntegrity { addr: addr_b }
        );
        assert_eq!(
            with_b(&|b| b.stats.migrate_allowed = false),
            Instability::MigrationsNotAllowed { addr: addr_b }
        );
        assert_eq!(
            with_b(&|b| b.stats.migrate_partitions_remaining = 312),
            Instability::Migrating {
                addr: addr_b,
                remaining: 312
            }
        );
        // Both nodes the wrong size: a one-node view of a two-node cluster.
        assert_eq!(
            StabilityCheck { expected_size: 1 }.evaluate(std::slice::from_ref(&a)),
            Err(Instability::WrongSize {
                addr: a.addr,
                size: 2,
                expected: 1
            })
        );
    }

    #[test]
    fn the_most_basic_reason_is_reported() {
        let check = StabilityCheck { expected_size: 2 };
        let mut a = node(3001, 1, "K", 2);
        a.stats.migrate_partitions_remaining = 5;
        let b = node(3002, 2, "J", 1);
        assert!(matches!(
            check.evaluate(&[a, b]),
            Err(Instability::Split { .. })
        ));
    }

    #[test]
    fn reasons_read_as_sentences() {
        let addr: SocketAddr = "10.0.1.5:3000".parse().unwrap();
        assert_eq!(
            Instability::Migrating {
                addr,
                remaining: 312
            }
            .to_string(),
            "node 10.0.1.5:3000 has 312 partitions left to migrate"
        );
        let other: SocketAddr = "10.0.1.6:3000".parse().unwrap();
        assert_eq!(
            Instability::Split {
                clusters: vec![("A1".into(), vec![addr, other]), ("B2".into(), vec![])]
            }
            .to_string(),
            "nodes are in 2 clusters: A1 (10.0.1.5:3000, 10.0.1.6:3000); B2 ()"
        );
        assert_eq!(
            Instability::WrongSize {
                addr,
                size: 2,
                expected: 3
            }
            .to_string(),
            "node 10.0.1.5:3000 is in a cluster of 2, expected 3"
        );
    }
}
