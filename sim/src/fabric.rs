//! The fabric: node-to-node connections that carry partition copies.
//!
//! Modelled on the server's fabric (`as/src/fabric/fabric.c`): a node
//! opens several connections to a peer (`node::FABRIC_FDS_PER_PEER`, the
//! server's default channel sizes), each to one of the fabric endpoints
//! the peer publishes in its heartbeats, chosen by `as_endpoint_connect_any`
//! (`as/src/fabric/endpoint.c`): the endpoints are sorted by preference
//! (TLS first, then IPv6, then a hash salted with `rand()`, i.e. a random
//! order among equal IPv4 clear-text endpoints), and the first one that
//! accepts a TCP connection is used. The connecting node's first message
//! names it (`FS_FIELD_NODE`); the accepting node files the connection
//! under that id. Nothing checks that the connection reached the node it
//! was meant for: when it reached another node (a shared address), that
//! node answers the migration control messages, and the sender drops the
//! answers ("ctrl ack: unexpected source", `as/src/fabric/migrate.c`), so
//! the migration never starts and is retried for ever.
//!
//! The sim's wire format is JSON lines (sim nodes only talk to sim nodes):
//! the dialer sends `hello` with its id and the id it meant to reach; the
//! acceptor answers `hello` with its own id. A dialer that reached another
//! node logs `fabric_wrong_node` and keeps the connection open, as the
//! server does; one such connection stops the link: every copy meant for
//! that peer is lost, so its migrations stall for good. Over a connection to the
//! right node, each copy is a `part` message, preceded by its records in
//! `records` messages, and the receiver marks the copy held only on
//! receipt, answering `ack` with its own id. The data plane adds replica
//! writes (`write`, answered by `write_ack`) and proxied transactions
//! (`proxy`, answered by `proxy_reply`), correlated by request id.

use serde::{Deserialize, Serialize};

/// Longest fabric line accepted: a proxied request of the largest size
/// the service port accepts, in hex, fits.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// Records per `records` message of a migration (a partition's records
/// travel in chunks of at most this many, and of about a quarter of
/// [`MAX_LINE`], before its `part` message).
pub const RECORDS_PER_CHUNK: usize = 256;

/// One fabric message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Message {
    /// First line each way: the sender's node id, and (from the dialer) the
    /// node it meant to reach.
    Hello {
        /// Sender's node id.
        node: u64,
        /// Node the dialer meant to reach (absent in the answer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<u64>,
    },
    /// A partition copy.
    Part {
        /// Cluster key the migration was decided in.
        key: u64,
        /// Namespace name.
        ns: String,
        /// Partition id.
        pid: usize,
    },
    /// Records of a partition copy on its way (before its `part`
    /// message, on the same connection); the receiver merges them (newer
    /// generation, then last-update time, wins).
    Records {
        /// Cluster key the migration was decided in.
        key: u64,
        /// Namespace name.
        ns: String,
        /// Partition id.
        pid: usize,
        /// The records.
        records: Vec<crate::record::WireRecord>,
        /// A merge push (a copy that came back from a device file sends
        /// its records to the partition's source, which merges them into
        /// the copy it holds) rather than a migration to an owner.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        merge: bool,
    },
    /// A replica write: the master's new version of a record (or its
    /// deletion), to be applied before the master answers the client.
    Write {
        /// Request id (answered by `write_ack`).
        id: u64,
        /// Namespace name.
        ns: String,
        /// Partition id.
        pid: usize,
        /// Digest, hex.
        digest: String,
        /// The record's new version; `None` deletes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<crate::record::WireRecord>,
    },
    /// Answer to `write`.
    WriteAck {
        /// Request id.
        id: u64,
        /// The node that answers.
        node: u64,
        /// Whether the write was applied.
        ok: bool,
    },
    /// A client transaction forwarded to the node that serves its
    /// partition (the server's proxy): the AS_MSG body, hex.
    Proxy {
        /// Request id (answered by `proxy_reply`).
        id: u64,
        /// How many times the transaction was proxied, this time included.
        #[serde(default = "one")]
        hops: u8,
        /// The request body (after the proto header), hex.
        body: String,
    },
    /// Answer to `proxy`: the complete reply frame for the client, hex.
    ProxyReply {
        /// Request id.
        id: u64,
        /// The reply frame, hex.
        frame: String,
    },
    /// Answer to `part`.
    Ack {
        /// The node that answers.
        node: u64,
        /// Cluster key of the copy.
        key: u64,
        /// Namespace name.
        ns: String,
        /// Partition id.
        pid: usize,
        /// Whether the copy was kept.
        kept: bool,
    },
}

fn one() -> u8 {
    1
}

/// One line, with its `\n`.
pub fn encode(message: &Message) -> String {
    let mut line = serde_json::to_string(message).unwrap_or_default();
    line.push('\n');
    line
}

/// Parses one line.
pub fn decode(line: &str) -> Result<Message, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| format!("bad fabric message: {e}"))
}

/// The order `as_endpoint_connect_any` tries endpoints in: IPv6 before
/// IPv4 (the sim has no TLS), then a random order (`salt` plays the part
/// of the server's `rand()` tie-breaker).
pub fn connect_order(endpoints: &[String], salt: u64) -> Vec<String> {
    let mut keyed: Vec<(bool, u64, String)> = endpoints
        .iter()
        .map(|ep| {
            let ipv4 = !ep.starts_with('[');
            (ipv4, hash(salt, ep), ep.clone())
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, _, ep)| ep).collect()
}

/// Jenkins one-at-a-time over the salt and the endpoint, as endpoint.c's
/// `endpoint_sort_hash`.
fn hash(salt: u64, endpoint: &str) -> u64 {
    let mut h: u32 = 0;
    for byte in salt.to_le_bytes().iter().chain(endpoint.as_bytes()) {
        h = h.wrapping_add(u32::from(*byte));
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h = h.wrapping_add(h << 15);
    u64::from(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for m in [
            Message::Hello {
                node: 5,
                to: Some(6),
            },
            Message::Hello { node: 6, to: None },
            Message::Part {
                key: 1,
                ns: "test".into(),
                pid: 4095,
            },
            Message::Ack {
                node: 6,
                key: 1,
                ns: "test".into(),
                pid: 7,
                kept: true,
            },
        ] {
            assert_eq!(decode(&encode(&m)).unwrap(), m);
        }
        assert!(decode("{}").is_err());
        assert!(decode("garbage").is_err());
    }

    #[test]
    fn connect_order_is_a_shuffle_with_ipv6_first() {
        let eps = vec![
            "10.0.1.5:3001".to_string(),
            "172.18.0.3:3001".to_string(),
            "[::1]:3001".to_string(),
        ];
        let mut firsts = std::collections::BTreeSet::new();
        for salt in 0..64 {
            let order = connect_order(&eps, salt);
            assert_eq!(order[0], "[::1]:3001");
            assert_eq!(order.len(), 3);
            firsts.insert(order[1].clone());
        }
        assert_eq!(firsts.len(), 2, "either IPv4 endpoint can come first");
    }
}
