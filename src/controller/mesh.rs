//! The pure mesh decisions of a pass: which nodes to tip, which departed
//! nodes to clean up on which survivor, and which nodes publish addresses
//! that are not theirs on the cluster network.
//!
//! Everything here is a function of what the nodes reported in this pass
//! (a [`NodeReport`] per reachable node) and of the swarm's tasks, so a
//! restarted operator decides the same from the same facts. The only
//! memory it takes is the set of tip-clears already answered, which is
//! final per node and address (see [`plan_cleanup`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use crate::aerospike::{ClusterView, NodeId, NodeReport};

/// `(node to ask, address to tip it toward)`.
pub type Tip = (SocketAddr, IpAddr);

/// Decides tips from what the nodes said.
///
/// Every node outside the main cluster is tipped toward one member of it
/// (the lowest address, so every pass and every operator instance picks the
/// same one). One tip to any member is enough: heartbeats carry adjacency
/// lists, so the node meets the whole cluster. When no node is in a
/// cluster yet, the others are tipped toward the lowest-addressed node.
pub fn plan_tips(view: &ClusterView) -> Vec<Tip> {
    let target = match view.main_cluster() {
        Some(main) => main.members.first().map(|n| n.addr.ip()),
        None => view.orphans().first().map(|n| n.addr.ip()),
    };
    let Some(target) = target else {
        return Vec::new();
    };
    view.outsiders()
        .into_iter()
        .filter(|outsider| outsider.addr.ip() != target)
        .map(|outsider| (outsider.addr, target))
        .collect()
}

/// The clean-up of departed nodes on one survivor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    /// The survivor (its service endpoint).
    pub node: SocketAddr,
    /// The departed nodes it still lists in its alumni.
    pub departed: Vec<NodeId>,
    /// Heartbeat endpoints to `tip-clear` first (may be empty: every one
    /// was answered already, or none is an address worth clearing).
    pub tip_clear: Vec<SocketAddr>,
}

/// Decides which survivors must forget which departed nodes.
///
/// A node keeps every node it has known in its alumni (`alumni-clear-std`)
/// until `services-alumni-reset`, and keeps dialing a departed node that
/// was one of its mesh seeds (a tip) until `tip-clear`. A node it lists is
/// **departed** when it is not one of its current peers (`peers-clear-std`
/// — the cluster has re-formed without it), is not a node this pass
/// reached, and no task of the service has any of its addresses (a task on
/// a swarm node that is down keeps its address, and comes back as it was).
///
/// For each survivor with departed nodes: `tip-clear` of their addresses
/// on the heartbeat port — except addresses that a live node publishes too
/// (a docker_gwbridge address two hosts share) and those in `answered`,
/// which this survivor already answered (`ok` or "not found": either is
/// final) — then `services-alumni-reset`. Once the reset is done the
/// survivor no longer lists them, so nothing more is decided: the
/// clean-up happens once per departure, and a restarted operator learns
/// that from the nodes, not from memory. Survivors whose peers or alumni
/// did not parse are left alone.
pub fn plan_cleanup(
    reports: &[NodeReport],
    present: &BTreeSet<IpAddr>,
    heartbeat_port: u16,
    answered: &BTreeSet<(SocketAddr, SocketAddr)>,
) -> Vec<Cleanup> {
    let reached: BTreeSet<NodeId> = reports.iter().map(|r| r.observation.node_id).collect();
    let live: BTreeSet<IpAddr> = reports
        .iter()
        .flat_map(|r| {
            r.advertised
                .iter()
                .flatten()
                .copied()
                .chain([r.observation.addr.ip()])
        })
        .collect();
    let mut plans = Vec::new();
    for report in reports {
        let node = report.observation.addr;
        let (Some(peers), Some(alumni)) = (&report.peers, &report.alumni) else {
            continue;
        };
        let peer_ids: BTreeSet<NodeId> = peers.iter().map(|p| p.node_id).collect();
        let departed: Vec<_> = alumni
            .iter()
            .filter(|a| a.node_id != report.observation.node_id)
            .filter(|a| !peer_ids.contains(&a.node_id) && !reached.contains(&a.node_id))
            .filter(|a| !a.addrs.iter().any(|ip| present.contains(ip)))
            .collect();
        if departed.is_empty() {
            continue;
        }
        let tip_clear: BTreeSet<SocketAddr> = departed
            .iter()
            .flat_map(|a| &a.addrs)
            .filter(|ip| !live.contains(ip))
            .map(|ip| SocketAddr::new(*ip, heartbeat_port))
            .filter(|hb| !answered.contains(&(node, *hb)))
            .collect();
        plans.push(Cleanup {
            node,
            departed: departed.iter().map(|a| a.node_id).collect(),
            tip_clear: tip_clear.into_iter().collect(),
        });
    }
    plans
}

/// A node that publishes addresses other than its own on the cluster
/// network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// The node (its address on the cluster network, as asked).
    pub node: SocketAddr,
    /// The other addresses it publishes, in its order.
    pub addrs: Vec<IpAddr>,
}

/// Nodes whose `service-clear-std` lists an address that is not theirs on
/// the cluster network.
///
/// With `address any` (or no address) a node publishes every interface
/// address it has, and peers use them for fabric and heartbeat. A swarm
/// task has docker_gwbridge on `eth1`, whose subnet is the same on every
/// host, so two nodes on different hosts often share an address there:
/// peers' fabric connections then reach the wrong node and migrations
/// stall for good (field notes §3). Nodes whose reply did not parse are
/// not judged.
pub fn stray_addresses(reports: &[NodeReport]) -> Vec<Stray> {
    let mut strays: BTreeMap<SocketAddr, Vec<IpAddr>> = BTreeMap::new();
    for report in reports {
        let node = report.observation.addr;
        let others: Vec<IpAddr> = report
            .advertised
            .iter()
            .flatten()
            .copied()
            .filter(|ip| *ip != node.ip())
            .collect();
        if !others.is_empty() {
            strays.insert(node, others);
        }
    }
    strays
        .into_iter()
        .map(|(node, addrs)| Stray { node, addrs })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aerospike::{ClusterStable, NodeObservation, PeerEntry};
    use crate::controller::plan::tests::node;

    pub(crate) fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn gw(last: u8) -> IpAddr {
        IpAddr::from([10, 215, 0, last])
    }

    fn peer(last: u8, addrs: &[IpAddr]) -> PeerEntry {
        PeerEntry {
            node_id: NodeId(u64::from(last)),
            addrs: addrs.to_vec(),
        }
    }

    /// The report of a settled member of cluster `key` (size `size`) at
    /// `10.0.0.<last>` publishing only that address, with `peers` as its
    /// peers and alumni.
    pub(crate) fn report(observation: NodeObservation, peers: &[u8]) -> NodeReport {
        let entries: Vec<PeerEntry> = peers.iter().map(|l| peer(*l, &[ip(*l)])).collect();
        NodeReport {
            advertised: Some(vec![observation.addr.ip()]),
            peers: Some(entries.clone()),
            alumni: Some(entries),
            stable: Some(ClusterStable::Stable {
                cluster_key: observation.stats.cluster_key.clone(),
            }),
            observation,
        }
    }

    fn present(lasts: &[u8]) -> BTreeSet<IpAddr> {
        lasts.iter().map(|l| ip(*l)).collect()
    }

    #[test]
    fn outsiders_are_tipped_toward_the_lowest_member_of_the_main_cluster() {
        let view = ClusterView::from(vec![node(2, "AA", 2), node(3, "AA", 2), node(4, "BB", 1)]);
        assert_eq!(
            plan_tips(&view),
            vec![(SocketAddr::new(ip(4), 3000), ip(2))]
        );
        // Nobody in a cluster yet: everyone toward the lowest address.
        let mut lone = node(3, "0", 0);
        lone.stats.cluster_is_member = false;
        let mut other = node(2, "0", 0);
        other.stats.cluster_is_member = false;
        let view = ClusterView::from(vec![lone, other]);
        assert_eq!(
            plan_tips(&view),
            vec![(SocketAddr::new(ip(3), 3000), ip(2))]
        );
        assert_eq!(plan_tips(&ClusterView::default()), vec![]);
    }

    #[test]
    fn a_departed_node_is_cleared_then_reset_on_each_survivor() {
        // 10.0.0.4 left: its task is gone, the cluster re-formed without
        // it, but both survivors still list it among their alumni.
        let mut a = report(node(2, "AA", 2), &[3]);
        a.alumni = Some(vec![peer(3, &[ip(3)]), peer(4, &[ip(4), gw(9)])]);
        let mut b = report(node(3, "AA", 2), &[2]);
        b.alumni = Some(vec![peer(2, &[ip(2)]), peer(4, &[ip(4), gw(9)])]);
        let plans = plan_cleanup(&[a.clone(), b], &present(&[2, 3]), 3002, &BTreeSet::new());
        let hb = |ip| SocketAddr::new(ip, 3002);
        assert_eq!(
            plans,
            vec![
                Cleanup {
                    node: SocketAddr::new(ip(2), 3000),
                    departed: vec![NodeId(4)],
                    tip_clear: vec![hb(ip(4)), hb(gw(9))],
                },
                Cleanup {
                    node: SocketAddr::new(ip(3), 3000),
                    departed: vec![NodeId(4)],
                    tip_clear: vec![hb(ip(4)), hb(gw(9))],
                },
            ]
        );
        // Tip-clears already answered are not sent again; the reset still
        // is, until the node stops listing the departed node.
        let answered: BTreeSet<_> = [
            (SocketAddr::new(ip(2), 3000), hb(ip(4))),
            (SocketAddr::new(ip(2), 3000), hb(gw(9))),
        ]
        .into();
        let plans = plan_cleanup(std::slice::from_ref(&a), &present(&[2, 3]), 3002, &answered);
        assert_eq!(plans[0].tip_clear, vec![]);
        assert_eq!(plans[0].departed, vec![NodeId(4)]);
        // After the reset the survivor lists only its peers: nothing to do.
        a.alumni = a.peers.clone();
        assert_eq!(
            plan_cleanup(&[a], &present(&[2, 3]), 3002, &BTreeSet::new()),
            vec![]
        );
    }

    #[test]
    fn nodes_that_are_not_gone_are_left_alone() {
        // Still a peer (the cluster has not re-formed without it yet).
        let mut a = report(node(2, "AA", 2), &[3, 4]);
        assert_eq!(
            plan_cleanup(
                std::slice::from_ref(&a),
                &present(&[2, 3]),
                3002,
                &BTreeSet::new()
            ),
            vec![]
        );
        // Not a peer, but its task is still there (a swarm node that is
        // down, or a split the tips will heal).
        a.peers = Some(vec![peer(3, &[ip(3)])]);
        assert_eq!(
            plan_cleanup(
                std::slice::from_ref(&a),
                &present(&[2, 3, 4]),
                3002,
                &BTreeSet::new()
            ),
            vec![]
        );
        // Not a peer, no task, but reached this pass under a new address.
        let moved = report(node(4, "BB", 1), &[]);
        assert_eq!(
            plan_cleanup(
                &[a.clone(), moved],
                &present(&[2, 3]),
                3002,
                &BTreeSet::new()
            ),
            vec![]
        );
        // Peers or alumni that did not parse: no decision.
        a.peers = None;
        assert_eq!(
            plan_cleanup(&[a], &present(&[2, 3]), 3002, &BTreeSet::new()),
            vec![]
        );
    }

    #[test]
    fn an_address_a_live_node_publishes_too_is_not_cleared() {
        // The departed node shared docker_gwbridge address 10.215.0.3 with
        // the live node 10.0.0.3.
        let mut a = report(node(2, "AA", 2), &[3]);
        a.alumni = Some(vec![peer(3, &[ip(3), gw(3)]), peer(4, &[ip(4), gw(3)])]);
        let mut b = report(node(3, "AA", 2), &[2]);
        b.advertised = Some(vec![ip(3), gw(3)]);
        let plans = plan_cleanup(&[a, b], &present(&[2, 3]), 3002, &BTreeSet::new());
        assert_eq!(plans[0].tip_clear, vec![SocketAddr::new(ip(4), 3002)]);
    }

    #[test]
    fn stray_addresses_are_the_published_ones_off_the_cluster_network() {
        let mut a = report(node(2, "AA", 3), &[3, 4]);
        a.advertised = Some(vec![ip(2), gw(3)]);
        let b = report(node(3, "AA", 3), &[2, 4]);
        let mut c = report(node(4, "AA", 3), &[2, 3]);
        // Bound to the wrong interface only.
        c.advertised = Some(vec![gw(3)]);
        let mut d = report(node(5, "AA", 3), &[]);
        d.advertised = None;
        assert_eq!(
            stray_addresses(&[c, b, a, d]),
            vec![
                Stray {
                    node: SocketAddr::new(ip(2), 3000),
                    addrs: vec![gw(3)]
                },
                Stray {
                    node: SocketAddr::new(ip(4), 3000),
                    addrs: vec![gw(3)]
                },
            ]
        );
    }
}
