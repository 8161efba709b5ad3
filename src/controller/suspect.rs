//! Untrusted nodes: nodes that answer, but whose answers the operator
//! does not act on.
//!
//! A node is untrusted for one pass when
//! - it answered something the operator cannot use: a reply that is not an
//!   info frame (a length beyond the limit, another protocol), that does
//!   not answer the request, a value of the wrong shape, or an error where
//!   a value was due ([`crate::aerospike::InfoError::is_misbehaviour`]);
//! - it did not finish its reply within the call's time limit (a node
//!   that answers one byte a second);
//! - it reports a node id that another node of the cluster holds: a node
//!   that reported the id on an earlier pass and is still one of the
//!   cluster's tasks, or, when no node held it before, any other node
//!   reporting it now (then every one of them is untrusted: which one is
//!   right cannot be told, and two nodes with one id cannot form one
//!   cluster anyway).
//!
//! [`screen`] splits a pass's reports into the trusted ones and the
//! [`Suspect`]s. [`super::decide`] screens first and decides everything —
//! tips, tip-clears, the rollout's release, a scale-down's next removal,
//! the quiesce — from the trusted reports alone; an untrusted node counts
//! as not ready, and the status is Degraded with a message naming it
//! ([`degrade`]). Nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;

use crate::aerospike::{NodeId, NodeReport};
use crate::spec::{ClusterStatus, Phase};
use crate::swarm::TaskInfo;

/// A node whose reply this pass is not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    /// Its service endpoint, as asked.
    pub node: SocketAddr,
    /// Its task, when one of the service's tasks has that address.
    pub task: Option<String>,
    /// Why it is not trusted.
    pub why: Why,
}

/// Why a node is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// It answered something unusable, or too slowly: the client's error,
    /// without the address it starts with.
    Misbehaves {
        /// What was wrong, e.g. `no reply within 2s`.
        error: String,
    },
    /// It reports a node id another node reports or held.
    DuplicateId {
        /// The id.
        id: NodeId,
        /// The node that held the id on an earlier pass, when one did.
        holder: Option<SocketAddr>,
        /// Every other node reporting the id now.
        others: Vec<SocketAddr>,
    },
}

impl fmt::Display for Suspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.node)?;
        if let Some(task) = &self.task {
            write!(f, " (task {task})")?;
        }
        match &self.why {
            Why::Misbehaves { error } => write!(f, " answers unusably: {error}"),
            Why::DuplicateId {
                id,
                holder: Some(holder),
                ..
            } => write!(f, " reports node id {id}, which node {holder} holds"),
            Why::DuplicateId {
                id,
                holder: None,
                others,
            } => {
                let others: Vec<String> = others.iter().map(SocketAddr::to_string).collect();
                write!(
                    f,
                    " reports node id {id}, as {} {} (node-id set in the config?)",
                    if others.len() == 1 { "does" } else { "do" },
                    others.join(", ")
                )
            }
        }
    }
}

/// A pass's reports, screened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screened {
    /// The reports the pass decides from.
    pub trusted: Vec<NodeReport>,
    /// The nodes it does not trust, in address order.
    pub suspects: Vec<Suspect>,
}

impl Screened {
    /// Whether `node` is untrusted.
    pub fn is_suspect(&self, node: SocketAddr) -> bool {
        self.suspects.iter().any(|s| s.node == node)
    }
}

/// Screens one pass: `reports` (the nodes that answered), `misbehaving`
/// (nodes whose reply could not be used, with the client's error),
/// `holders` (which node held each id, from [`remember`] on the pass
/// before), `addrs` (every node asked: the tasks that are up), and the
/// service's `tasks` on `network_id` to name each suspect's task.
pub fn screen(
    reports: &[NodeReport],
    misbehaving: &[(SocketAddr, String)],
    holders: &BTreeMap<NodeId, SocketAddr>,
    addrs: &[SocketAddr],
    tasks: &[TaskInfo],
    network_id: &str,
) -> Screened {
    let mut claims: BTreeMap<NodeId, BTreeSet<SocketAddr>> = BTreeMap::new();
    for report in reports {
        claims
            .entry(report.observation.node_id)
            .or_default()
            .insert(report.observation.addr);
    }
    let task_of = |node: SocketAddr| {
        tasks
            .iter()
            .filter(|t| t.desired_state == "running")
            .find(|t| t.address_on(network_id) == Some(node.ip()))
            .map(|t| t.id.clone())
    };
    let mut suspects: Vec<Suspect> = misbehaving
        .iter()
        .map(|(node, error)| Suspect {
            node: *node,
            task: task_of(*node),
            why: Why::Misbehaves {
                error: clip(error.strip_prefix(&format!("{node}: ")).unwrap_or(error)),
            },
        })
        .collect();
    for (id, claimants) in &claims {
        // The node that held the id before, while it is still a task that
        // is up (answering now or not).
        let holder = holders
            .get(id)
            .copied()
            .filter(|h| addrs.contains(h) || claimants.contains(h));
        for node in claimants {
            let others: Vec<SocketAddr> = claimants.iter().copied().filter(|c| c != node).collect();
            let duplicate = match holder {
                Some(holder) => holder != *node,
                None => !others.is_empty(),
            };
            if duplicate {
                suspects.push(Suspect {
                    node: *node,
                    task: task_of(*node),
                    why: Why::DuplicateId {
                        id: *id,
                        holder,
                        others,
                    },
                });
            }
        }
    }
    suspects.sort_by_key(|s| s.node);
    let untrusted: BTreeSet<SocketAddr> = suspects.iter().map(|s| s.node).collect();
    Screened {
        trusted: reports
            .iter()
            .filter(|r| !untrusted.contains(&r.observation.addr))
            .cloned()
            .collect(),
        suspects,
    }
}

/// The most of a client's error a suspect's message quotes, in
/// characters: the error may quote the node's reply, and a hostile node
/// chooses how long that is.
pub const ERROR_QUOTE_MAX: usize = 160;

/// `error`, cut to [`ERROR_QUOTE_MAX`] characters (`...` marks a cut).
fn clip(error: &str) -> String {
    match error.char_indices().nth(ERROR_QUOTE_MAX) {
        Some((at, _)) => format!("{}...", &error[..at]),
        None => error.to_string(),
    }
}

/// Which node holds each id after a pass: the holders before that are
/// still tasks that are up (in `addrs`) and did not report another id
/// now, and every trusted report's id.
pub fn remember(
    holders: &BTreeMap<NodeId, SocketAddr>,
    screened: &Screened,
    reports: &[NodeReport],
    addrs: &[SocketAddr],
) -> BTreeMap<NodeId, SocketAddr> {
    let now: BTreeMap<SocketAddr, NodeId> = reports
        .iter()
        .map(|r| (r.observation.addr, r.observation.node_id))
        .collect();
    let mut kept: BTreeMap<NodeId, SocketAddr> = holders
        .iter()
        .filter(|(id, node)| addrs.contains(node) && now.get(node).is_none_or(|n| n == *id))
        .map(|(id, node)| (*id, *node))
        .collect();
    for report in &screened.trusted {
        kept.insert(report.observation.node_id, report.observation.addr);
    }
    kept
}

/// The status message part that names the suspects.
pub fn message(suspects: &[Suspect]) -> String {
    let named: Vec<String> = suspects.iter().map(Suspect::to_string).collect();
    format!(
        "{}; the operator acts on nothing {} says",
        named.join("; "),
        if suspects.len() == 1 { "it" } else { "they" }
    )
}

/// `status` with the suspects named first in its message, and phase
/// Degraded unless it is Error (an error the user must fix stays one).
pub fn degrade(status: ClusterStatus, suspects: &[Suspect]) -> ClusterStatus {
    if suspects.is_empty() {
        return status;
    }
    let named = message(suspects);
    let message = match status.message.as_deref() {
        Some(rest) if !rest.is_empty() => format!("{named}; {rest}"),
        _ => named,
    };
    ClusterStatus {
        phase: Some(match status.phase {
            Some(Phase::Error) => Phase::Error,
            _ => Phase::Degraded,
        }),
        message: Some(message),
        ..status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::addr;
    use crate::controller::mesh::tests::report;
    use crate::controller::plan::tests::node;

    fn reports(nodes: &[(u8, u64)]) -> Vec<NodeReport> {
        nodes
            .iter()
            .map(|(last, id)| {
                let mut observation = node(*last, "AA", nodes.len() as u32);
                observation.node_id = NodeId(*id);
                report(observation, &[])
            })
            .collect()
    }

    fn addrs(lasts: &[u8]) -> Vec<SocketAddr> {
        lasts.iter().map(|l| addr(*l)).collect()
    }

    fn task(last: u8) -> TaskInfo {
        TaskInfo {
            id: format!("t{last}"),
            desired_state: "running".into(),
            addresses: vec![("net1".into(), addr(last).ip())],
            ..TaskInfo::default()
        }
    }

    fn suspects(screened: &Screened) -> Vec<SocketAddr> {
        screened.suspects.iter().map(|s| s.node).collect()
    }

    #[test]
    fn distinct_ids_are_all_trusted() {
        let all = reports(&[(2, 2), (3, 3), (4, 4)]);
        let screened = screen(&all, &[], &BTreeMap::new(), &addrs(&[2, 3, 4]), &[], "net1");
        assert_eq!(screened.trusted, all);
        assert!(screened.suspects.is_empty());
    }

    #[test]
    fn a_node_claiming_a_held_id_is_the_suspect_and_the_holder_stays_trusted() {
        let before = BTreeMap::from([(NodeId(2), addr(2)), (NodeId(3), addr(3))]);
        let all = reports(&[(2, 2), (3, 3), (4, 2)]);
        let tasks = [task(2), task(3), task(4)];
        let screened = screen(&all, &[], &before, &addrs(&[2, 3, 4]), &tasks, "net1");
        assert_eq!(suspects(&screened), [addr(4)]);
        assert_eq!(screened.trusted.len(), 2);
        assert_eq!(
            screened.suspects[0].to_string(),
            "node 10.0.0.4:3000 (task t4) reports node id 2, which node 10.0.0.2:3000 holds"
        );
        // The holder is silent this pass but still a task that is up: the
        // id is still its.
        let without_holder = reports(&[(3, 3), (4, 2)]);
        let screened = screen(
            &without_holder,
            &[],
            &before,
            &addrs(&[2, 3, 4]),
            &tasks,
            "net1",
        );
        assert_eq!(suspects(&screened), [addr(4)]);
        // Its task is gone (replaced at another address): the id is free.
        let screened = screen(
            &without_holder,
            &[],
            &before,
            &addrs(&[3, 4]),
            &tasks,
            "net1",
        );
        assert!(screened.suspects.is_empty(), "{:?}", screened.suspects);
    }

    #[test]
    fn with_no_holder_every_claimant_is_a_suspect() {
        let all = reports(&[(2, 7), (3, 3), (4, 7)]);
        let screened = screen(&all, &[], &BTreeMap::new(), &addrs(&[2, 3, 4]), &[], "net1");
        assert_eq!(suspects(&screened), [addr(2), addr(4)]);
        assert_eq!(screened.trusted.len(), 1);
        assert_eq!(
            screened.suspects[0].to_string(),
            "node 10.0.0.2:3000 reports node id 7, as does 10.0.0.4:3000 (node-id set in the \
             config?)"
        );
    }

    #[test]
    fn misbehaving_nodes_are_named_with_the_error_without_the_address() {
        let all = reports(&[(2, 2), (3, 3)]);
        let misbehaving = [(addr(4), "10.0.0.4:3000: no reply within 2s".to_string())];
        let screened = screen(
            &all,
            &misbehaving,
            &BTreeMap::new(),
            &addrs(&[2, 3, 4]),
            &[task(4)],
            "net1",
        );
        assert_eq!(screened.trusted, all);
        assert_eq!(
            screened.suspects[0].to_string(),
            "node 10.0.0.4:3000 (task t4) answers unusably: no reply within 2s"
        );
    }

    #[test]
    fn a_long_error_is_quoted_cut() {
        // A value of a megabyte quoted in the client's error.
        let huge = format!(
            "10.0.0.4:3000: statistics: field cluster_key is \"{}\", expected 1 to 16 hex digits",
            "é".repeat(1 << 20)
        );
        let screened = screen(
            &[],
            &[(addr(4), huge)],
            &BTreeMap::new(),
            &addrs(&[4]),
            &[],
            "net1",
        );
        let Why::Misbehaves { error } = &screened.suspects[0].why else {
            panic!("{:?}", screened.suspects);
        };
        assert_eq!(error.chars().count(), ERROR_QUOTE_MAX + 3);
        assert!(error.starts_with("statistics: field cluster_key is \"éé"));
        assert!(error.ends_with("..."));
        // The control: a short one is quoted whole.
        assert_eq!(clip("no reply within 2s"), "no reply within 2s");
    }

    #[test]
    fn the_memory_keeps_holders_that_are_still_up_and_takes_the_trusted() {
        let before = BTreeMap::from([(NodeId(2), addr(2)), (NodeId(9), addr(9))]);
        let all = reports(&[(3, 3), (4, 2)]);
        let up = addrs(&[2, 3, 4]);
        let screened = screen(&all, &[], &before, &up, &[], "net1");
        let after = remember(&before, &screened, &all, &up);
        // 2 stays with .2 (silent, still up), 9's node is gone, 3 is new;
        // .4's claim on 2 is not taken.
        assert_eq!(
            after,
            BTreeMap::from([(NodeId(2), addr(2)), (NodeId(3), addr(3))])
        );
        // A holder that now reports another id gives its old one up.
        let all = reports(&[(2, 5), (3, 3)]);
        let screened = screen(&all, &[], &after, &up, &[], "net1");
        let later = remember(&after, &screened, &all, &up);
        assert_eq!(
            later,
            BTreeMap::from([(NodeId(3), addr(3)), (NodeId(5), addr(2))])
        );
    }

    #[test]
    fn degrade_names_the_suspects_first_and_keeps_errors() {
        let suspect = Suspect {
            node: addr(4),
            task: None,
            why: Why::Misbehaves {
                error: "bad reply frame: reply has protocol version 72, expected 2".into(),
            },
        };
        let ready = ClusterStatus {
            phase: Some(Phase::Ready),
            message: Some("3 nodes in one cluster (AA), migrations done".into()),
            ..ClusterStatus::default()
        };
        // The control: no suspect, no change.
        assert_eq!(degrade(ready.clone(), &[]), ready);
        let degraded = degrade(ready, std::slice::from_ref(&suspect));
        assert_eq!(degraded.phase, Some(Phase::Degraded));
        assert_eq!(
            degraded.message.as_deref(),
            Some(
                "node 10.0.0.4:3000 answers unusably: bad reply frame: reply has protocol \
                 version 72, expected 2; the operator acts on nothing it says; 3 nodes in one \
                 cluster (AA), migrations done"
            )
        );
        let error = ClusterStatus {
            phase: Some(Phase::Error),
            ..ClusterStatus::default()
        };
        assert_eq!(degrade(error, &[suspect]).phase, Some(Phase::Error));
    }
}
