//! The heartbeat message sim nodes exchange on the heartbeat port.
//!
//! Real Aerospike heartbeats are a binary `msg` format only Aerospike
//! servers speak; sim nodes only ever talk to sim nodes, so the sim sends one
//! JSON object per line instead. What matters is the content, which mirrors
//! what real heartbeats carry: the sender's node id and endpoints, its
//! adjacency list (so one tip joins a whole cluster), the cluster it belongs
//! to, and (beyond real heartbeats, which leave this to the fabric) which
//! partitions it holds.

use serde::{Deserialize, Serialize};

/// Longest heartbeat line accepted; larger lines close the connection.
pub const MAX_LINE: usize = 1024 * 1024;

/// The line a dialer writes: the heartbeat plus the endpoint it dialled, so
/// a node that receives its own heartbeat knows which endpoint is itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// The `host:port` the sender connected to.
    pub to: String,
    /// The heartbeat proper.
    pub hb: Heartbeat,
}

/// One heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heartbeat {
    /// Sender's node id.
    pub node: u64,
    /// Sender's published heartbeat endpoints `ip:port`, in its order (as
    /// the server's heartbeat carries its endpoint list).
    pub hb_addrs: Vec<String>,
    /// Sender's service endpoints `ip:port` (the server sends these over
    /// the fabric, service_list.c; the sim sends them here).
    pub service_addrs: Vec<String>,
    /// Sender's published fabric endpoints `ip:port` (the server's fabric
    /// heartbeat plugin data, which peers' fabric connects to).
    pub fabric_addrs: Vec<String>,
    /// Sender's start time (ms since the Unix epoch); older nodes are kept
    /// first when a Community cluster would grow past its size limit.
    pub started_ms: u64,
    /// Nodes the sender currently hears, with their heartbeat endpoints.
    pub adjacency: Vec<Adjacent>,
    /// `quiesce:` was accepted and not undone (Enterprise).
    pub quiesce_pending: bool,
    /// The data lineage of the partitions the sender holds, if any.
    pub lineage: Option<Lineage>,
    /// Per namespace, the partitions the sender holds.
    pub namespaces: Vec<NamespaceReport>,
    /// The cluster the sender is a member of; `None` while orphaned.
    pub cluster: Option<ClusterView>,
}

/// An entry of an adjacency list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Adjacent {
    /// Node id.
    pub node: u64,
    /// Its heartbeat endpoints `ip:port`.
    pub hb: Vec<String>,
}

/// Identity of a data lineage: the set of copies descended from one
/// cluster's creation of its partitions. A node that starts empty and forms
/// a cluster on its own starts a new lineage; when clusters of different
/// lineages merge, the oldest lineage wins and the others' copies are
/// discarded (see `state.rs`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lineage {
    /// When the lineage was created (ms since the Unix epoch).
    pub created_ms: u64,
    /// Random tie-breaker.
    pub id: u64,
}

/// One namespace's partition report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamespaceReport {
    /// Namespace name.
    pub name: String,
    /// Held partitions, [`crate::partitions::Bitmap::to_hex`] form.
    pub held: String,
    /// Partitions known lost in this lineage.
    pub dead: String,
    /// Held partitions whose copy came back from a device file and has
    /// not been refreshed by a migration since (same form as `held`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stale: String,
}

/// A cluster as formed and announced by its principal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterView {
    /// Cluster key.
    pub key: u64,
    /// Principal (highest member id).
    pub principal: u64,
    /// Members, ascending.
    pub members: Vec<u64>,
    /// Each member's start time (ms since the Unix epoch), in `members`
    /// order: a node restarted with the same id is told apart by it.
    pub starts: Vec<u64>,
    /// Members whose quiesce took effect at this formation.
    pub quiesced: Vec<u64>,
    /// Lineage the cluster's partitions belong to.
    pub lineage: Lineage,
    /// The lineage was created at this formation: owners create empty
    /// partitions instead of waiting for migrations.
    pub fresh: bool,
    /// Per namespace: partitions lost for good, and how many of them were
    /// lost at this formation.
    pub dead: Vec<DeadReport>,
}

/// Dead partitions of one namespace in a [`ClusterView`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeadReport {
    /// Namespace name.
    pub name: String,
    /// Dead partitions, hex bitmap.
    pub dead: String,
    /// Of which newly lost at this formation.
    pub newly_lost: usize,
}

/// Serialises an envelope as one line (with its `\n`).
pub fn encode_line(to: &str, hb: &Heartbeat) -> String {
    let envelope = Envelope {
        to: to.to_string(),
        hb: hb.clone(),
    };
    // Serialising plain structs of strings and integers cannot fail.
    let mut line = serde_json::to_string(&envelope).unwrap_or_default();
    line.push('\n');
    line
}

/// Parses one line into an envelope.
pub fn decode_line(line: &str) -> Result<Envelope, String> {
    serde_json::from_str(line).map_err(|e| format!("bad heartbeat: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Heartbeat {
        Heartbeat {
            node: 0xBB9,
            hb_addrs: vec!["127.0.0.1:3002".into()],
            service_addrs: vec![],
            fabric_addrs: vec!["127.0.0.1:3001".into()],
            started_ms: 1,
            adjacency: vec![Adjacent {
                node: 0xCC1,
                hb: vec!["127.0.0.1:3102".into()],
            }],
            quiesce_pending: false,
            lineage: Some(Lineage {
                created_ms: 5,
                id: 6,
            }),
            namespaces: vec![NamespaceReport {
                stale: String::new(),
                name: "test".into(),
                held: String::new(),
                dead: String::new(),
            }],
            cluster: None,
        }
    }

    #[test]
    fn round_trips_one_line() {
        let line = encode_line("127.0.0.1:3002", &sample());
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let envelope = decode_line(line.trim_end()).unwrap();
        assert_eq!(envelope.to, "127.0.0.1:3002");
        assert_eq!(envelope.hb, sample());
    }

    proptest! {
        #[test]
        fn garbage_is_an_error_not_a_panic(text in ".{0,200}") {
            let _ = decode_line(&text);
        }
    }
}
