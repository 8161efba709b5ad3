//! What reply values mean: pure parsers from a command's value text to
//! typed results.
//!
//! Nothing here does I/O, so every reply form the operator relies on is
//! unit-tested in this file, and every parser is fed arbitrary text by a
//! property test to show it returns an error instead of panicking.
//!
//! Values come in a few shapes (field notes §3):
//! - errors: `ERROR:<code>:<message>`, `ERROR::unknown`, and the older
//!   `FAIL:<code>:<message>`;
//! - maps: `k=v;k=v` (`statistics`, `namespace/<ns>`);
//! - lists: `a;b` (`namespaces`, `services-alumni`);
//! - single words: `ok`, a node id, a cluster key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use thiserror::Error;

/// A reply value that is an error from the server, or that does not have
/// the shape the command promises.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    /// The server answered `ERROR:<code>:<message>` (or `FAIL:...`).
    #[error("server error{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Server {
        /// The numeric code; `None` for `ERROR::<message>`.
        code: Option<u32>,
        /// The text after the code (`unknown` for `ERROR::unknown`).
        message: String,
    },
    /// A map reply lacks a field the operator needs.
    #[error("field {field} is missing")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// A field is present but its value does not parse.
    #[error("field {field} is {value:?}, expected {expected}")]
    BadField {
        /// The field's name.
        field: &'static str,
        /// The value as received.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// One `;`-separated entry of a map or list does not parse.
    #[error("entry {entry:?} is not {expected}")]
    BadEntry {
        /// The entry as received.
        entry: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The whole value is not one of the forms the command answers with.
    #[error("reply {value:?} is not {expected}")]
    Unexpected {
        /// The value as received.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

/// Reads `ERROR:<code>:<message>` or `FAIL:<code>:<message>`; `None` for
/// any value that is not an error.
///
/// The code is optional (`ERROR::unknown`); a code that is not a number is
/// kept as part of the message rather than dropped, so nothing the server
/// said is lost.
pub fn server_error(value: &str) -> Option<ReplyError> {
    let rest = value
        .strip_prefix("ERROR")
        .or_else(|| value.strip_prefix("FAIL"))?;
    let rest = match rest.strip_prefix(':') {
        Some(rest) => rest,
        None if rest.is_empty() => rest,
        // `ERRORS=...` or similar: an ordinary value that starts alike.
        None => return None,
    };
    let (code, message) = match rest.split_once(':') {
        Some(("", message)) => (None, message),
        Some((code, message)) => match code.parse::<u32>() {
            Ok(code) => (Some(code), message),
            Err(_) => (None, rest),
        },
        None => match rest.parse::<u32>() {
            Ok(code) => (Some(code), ""),
            Err(_) => (None, rest),
        },
    };
    Some(ReplyError::Server {
        code,
        message: message.to_string(),
    })
}

/// The value itself, or the server error it carries.
pub fn check(value: &str) -> Result<&str, ReplyError> {
    match server_error(value) {
        Some(error) => Err(error),
        None => Ok(value),
    }
}

/// Parses a `k=v;k=v` map. Empty entries (a trailing `;`) are skipped; an
/// entry without `=` is an error; the value is everything after the first
/// `=`. A key given twice keeps its last value.
pub fn parse_map(value: &str) -> Result<BTreeMap<String, String>, ReplyError> {
    let value = check(value)?;
    value
        .split(';')
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once('=') {
            Some((key, value)) => Ok((key.to_string(), value.to_string())),
            None => Err(ReplyError::BadEntry {
                entry: entry.to_string(),
                expected: "key=value",
            }),
        })
        .collect()
}

/// A `;`-separated list; an empty value is an empty list.
pub fn parse_list(value: &str) -> Result<Vec<String>, ReplyError> {
    let value = check(value)?;
    Ok(value
        .split(';')
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect())
}

/// An Aerospike node id: 64 bits, printed by the server as upper-case hex
/// without leading zeros (`BB9020011AC4202`).
///
/// It is a number rather than a string because ordering matters: the
/// cluster's principal is the node with the highest id, and comparing hex
/// text of different lengths would get that wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl FromStr for NodeId {
    type Err = ReplyError;

    /// Parses 1 to 16 hex digits; zero is not a node id.
    fn from_str(text: &str) -> Result<NodeId, ReplyError> {
        let text = check(text)?;
        let valid = !text.is_empty() && text.len() <= 16 && is_hex(text);
        match valid.then(|| u64::from_str_radix(text, 16)) {
            Some(Ok(id)) if id != 0 => Ok(NodeId(id)),
            _ => Err(ReplyError::Unexpected {
                value: text.to_string(),
                expected: "a node id (1 to 16 hex digits, not zero)",
            }),
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", self.0)
    }
}

/// `u64::from_str_radix` also accepts a leading `+`; the server never sends
/// one, so only digits count as hex here.
fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A cluster key as the server prints it (hex). Kept as text because keys
/// are only ever compared for equality, and always between values the
/// servers formatted the same way.
fn parse_cluster_key(text: &str) -> Option<String> {
    (!text.is_empty() && text.len() <= 16 && is_hex(text)).then(|| text.to_string())
}

/// Typed access to the fields of a parsed map, with errors that name the
/// field.
struct Fields(BTreeMap<String, String>);

impl Fields {
    fn raw(&self, field: &'static str) -> Result<&str, ReplyError> {
        self.0
            .get(field)
            .map(String::as_str)
            .ok_or(ReplyError::MissingField { field })
    }

    fn parse<T: FromStr>(
        &self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<T, ReplyError> {
        let value = self.raw(field)?;
        value.parse().map_err(|_| ReplyError::BadField {
            field,
            value: value.to_string(),
            expected,
        })
    }

    fn count(&self, field: &'static str) -> Result<u64, ReplyError> {
        self.parse(field, "a non-negative integer")
    }

    fn flag(&self, field: &'static str) -> Result<bool, ReplyError> {
        match self.raw(field)? {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(ReplyError::BadField {
                field,
                value: other.to_string(),
                expected: "true or false",
            }),
        }
    }

    fn hex(&self, field: &'static str) -> Result<String, ReplyError> {
        let value = self.raw(field)?;
        parse_cluster_key(value).ok_or_else(|| ReplyError::BadField {
            field,
            value: value.to_string(),
            expected: "1 to 16 hex digits",
        })
    }
}

/// The node-wide `statistics` the operator decides on (field notes §3, §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statistics {
    /// Members of the cluster this node is in (0 while it is in none).
    pub cluster_size: u32,
    /// The cluster's key in hex, the same on every member; `0` while the
    /// node is in no cluster.
    pub cluster_key: String,
    /// How many times this node's cluster has changed.
    pub cluster_generation: u64,
    /// Node id (hex) of the cluster's principal, `0` while in no cluster.
    pub cluster_principal: String,
    /// False while the node sees nodes that are not in its cluster view
    /// (a split or a join in progress).
    pub cluster_integrity: bool,
    /// Whether the node is in a cluster at all.
    pub cluster_is_member: bool,
    /// False while the cluster is still agreeing on partition ownership.
    pub migrate_allowed: bool,
    /// Partitions this node still has to send or receive.
    pub migrate_partitions_remaining: u64,
}

impl Statistics {
    /// Parses a `statistics` reply. Fields the operator does not use are
    /// ignored; a missing or malformed one it uses is an error naming it.
    pub fn parse(value: &str) -> Result<Statistics, ReplyError> {
        let fields = Fields(parse_map(value)?);
        Ok(Statistics {
            cluster_size: fields.parse("cluster_size", "a non-negative integer below 2^32")?,
            cluster_key: fields.hex("cluster_key")?,
            cluster_generation: fields.count("cluster_generation")?,
            cluster_principal: fields.hex("cluster_principal")?,
            cluster_integrity: fields.flag("cluster_integrity")?,
            cluster_is_member: fields.flag("cluster_is_member")?,
            migrate_allowed: fields.flag("migrate_allowed")?,
            migrate_partitions_remaining: fields.count("migrate_partitions_remaining")?,
        })
    }
}

/// The per-namespace figures (`namespace/<ns>`) that tell whether data is
/// at risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceStats {
    /// Partitions with no available copy right now (they may come back).
    pub unavailable_partitions: u64,
    /// Partitions whose every copy is gone: data was lost.
    pub dead_partitions: u64,
    /// Partitions this node still has to send.
    pub migrate_tx_partitions_remaining: u64,
    /// Partitions this node still has to receive.
    pub migrate_rx_partitions_remaining: u64,
    /// Configured copies of each record (`replication-factor`).
    pub replication_factor: u32,
}

impl NamespaceStats {
    /// Parses a `namespace/<ns>` reply.
    pub fn parse(value: &str) -> Result<NamespaceStats, ReplyError> {
        let fields = Fields(parse_map(value)?);
        Ok(NamespaceStats {
            unavailable_partitions: fields.count("unavailable_partitions")?,
            dead_partitions: fields.count("dead_partitions")?,
            migrate_tx_partitions_remaining: fields.count("migrate_tx_partitions_remaining")?,
            migrate_rx_partitions_remaining: fields.count("migrate_rx_partitions_remaining")?,
            replication_factor: fields.parse("replication-factor", "a positive integer")?,
        })
    }
}

/// What a `tip` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TipOutcome {
    /// The node took the address as a new seed and will heartbeat to it.
    Added,
    /// The node refused the tip with `ERROR::unknown`, which it does when
    /// it already knows the address (as a seed, a peer or itself). Field
    /// notes §3: harmless. The server gives the same reply for an invalid
    /// tip, but the operator only ever sends well-formed ones.
    AlreadyKnown,
}

/// Parses a `tip` reply.
pub fn parse_tip(value: &str) -> Result<TipOutcome, ReplyError> {
    match check(value) {
        Ok("ok") => Ok(TipOutcome::Added),
        Ok(other) => Err(ReplyError::Unexpected {
            value: other.to_string(),
            expected: "ok or ERROR::unknown",
        }),
        Err(ReplyError::Server {
            code: None,
            ref message,
        }) if message == "unknown" => Ok(TipOutcome::AlreadyKnown),
        Err(other) => Err(other),
    }
}

/// What a `tip-clear` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TipClearOutcome {
    /// Seeds removed (or live peers matched).
    pub cleared: u32,
    /// Addresses the node did not know.
    pub not_found: u32,
}

/// Parses a `tip-clear` reply to a list of `sent` addresses: `ok` means all
/// were cleared; `ERROR::<n> cleared, <m> not found` reports the split. The
/// latter is the server's way of saying "some were not seeds", which is not
/// a failure for an operator that clears addresses it is unsure about.
pub fn parse_tip_clear(value: &str, sent: u32) -> Result<TipClearOutcome, ReplyError> {
    let message = match check(value) {
        Ok("ok") => {
            return Ok(TipClearOutcome {
                cleared: sent,
                not_found: 0,
            })
        }
        Ok(other) => {
            return Err(ReplyError::Unexpected {
                value: other.to_string(),
                expected: "ok or ERROR::<n> cleared, <m> not found",
            })
        }
        Err(ReplyError::Server {
            code: None,
            message,
        }) => message,
        Err(other) => return Err(other),
    };
    let counts = message
        .split_once(" cleared, ")
        .and_then(|(cleared, rest)| Some((cleared, rest.strip_suffix(" not found")?)))
        .and_then(|(cleared, not_found)| Some((cleared.parse().ok()?, not_found.parse().ok()?)));
    match counts {
        Some((cleared, not_found)) => Ok(TipClearOutcome { cleared, not_found }),
        // Any other message (`ERROR::unknown` for a list that does not
        // parse) is a real failure: pass it on as the server said it.
        None => Err(ReplyError::Server {
            code: None,
            message,
        }),
    }
}

/// Parses `ok`, the whole reply of commands that only succeed or fail.
pub fn parse_ok(value: &str) -> Result<(), ReplyError> {
    match check(value)? {
        "ok" => Ok(()),
        other => Err(ReplyError::Unexpected {
            value: other.to_string(),
            expected: "ok",
        }),
    }
}

/// What a `recluster:` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReclusterOutcome {
    /// This node is the principal and started a new cluster round.
    Started,
    /// This node is not the principal; only the principal reclusters.
    IgnoredByNonPrincipal,
}

/// Parses a `recluster:` reply.
pub fn parse_recluster(value: &str) -> Result<ReclusterOutcome, ReplyError> {
    match check(value)? {
        "ok" => Ok(ReclusterOutcome::Started),
        "ignored-by-non-principal" => Ok(ReclusterOutcome::IgnoredByNonPrincipal),
        other => Err(ReplyError::Unexpected {
            value: other.to_string(),
            expected: "ok or ignored-by-non-principal",
        }),
    }
}

/// Parses `ip:port;ip:port` (`services-alumni`, `services`); IPv6 as
/// `[addr]:port`. An empty value is an empty list.
pub fn parse_endpoints(value: &str) -> Result<Vec<SocketAddr>, ReplyError> {
    parse_list(value)?
        .into_iter()
        .map(|entry| {
            entry.parse().map_err(|_| ReplyError::BadEntry {
                entry,
                expected: "an ip:port address",
            })
        })
        .collect()
}

/// Parses a `cluster-stable` reply: the cluster key when the node calls
/// the cluster stable, `None` for `ERROR:7:...` (unstable, or not the size
/// asked for). Other errors (`ERROR:4:bad size`) are errors.
pub fn parse_cluster_stable(value: &str) -> Result<Option<String>, ReplyError> {
    match check(value) {
        Err(ReplyError::Server { code: Some(7), .. }) => Ok(None),
        Err(other) => Err(other),
        Ok(key) => parse_cluster_key(key)
            .map(Some)
            .ok_or_else(|| ReplyError::Unexpected {
                value: key.to_string(),
                expected: "a cluster key (hex) or ERROR:7",
            }),
    }
}

/// Parses a non-empty single-word value such as `build`'s `7.1.0.0`.
pub fn parse_word(value: &str, expected: &'static str) -> Result<String, ReplyError> {
    match check(value)? {
        "" => Err(ReplyError::Unexpected {
            value: String::new(),
            expected,
        }),
        word => Ok(word.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn server(code: Option<u32>, message: &str) -> ReplyError {
        ReplyError::Server {
            code,
            message: message.to_string(),
        }
    }

    #[test]
    fn error_forms() {
        assert_eq!(
            server_error("ERROR:7:unstable cluster"),
            Some(server(Some(7), "unstable cluster"))
        );
        assert_eq!(
            server_error("ERROR::unknown"),
            Some(server(None, "unknown"))
        );
        assert_eq!(
            server_error("FAIL:4:bad size"),
            Some(server(Some(4), "bad size"))
        );
        // Messages may contain colons.
        assert_eq!(
            server_error("ERROR:4:bad host:port"),
            Some(server(Some(4), "bad host:port"))
        );
        assert_eq!(server_error("ERROR"), Some(server(None, "")));
        assert_eq!(server_error("ERROR:25"), Some(server(Some(25), "")));
        assert_eq!(server_error("ERROR:oops"), Some(server(None, "oops")));
        assert_eq!(server_error("ERROR:x:y"), Some(server(None, "x:y")));
        assert_eq!(server_error("ok"), None);
        assert_eq!(server_error("ERRORS=3"), None);
        assert_eq!(server_error(""), None);
    }

    #[test]
    fn maps_and_lists() {
        let map = parse_map("a=1;b=x=y;;c=;").unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map["a"], "1");
        assert_eq!(map["b"], "x=y");
        assert_eq!(map["c"], "");
        assert_eq!(parse_map("").unwrap().len(), 0);
        assert_eq!(
            parse_map("a=1;junk"),
            Err(ReplyError::BadEntry {
                entry: "junk".into(),
                expected: "key=value"
            })
        );
        assert_eq!(parse_map("ERROR::unknown"), Err(server(None, "unknown")));
        assert_eq!(parse_list("test;bar").unwrap(), vec!["test", "bar"]);
        assert_eq!(parse_list("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn node_ids() {
        assert_eq!("BB9".parse::<NodeId>().unwrap(), NodeId(0xBB9));
        assert_eq!(
            "BB9020011AC4202".parse::<NodeId>().unwrap().to_string(),
            "BB9020011AC4202"
        );
        // Ordering is numeric: "FF" < "100" although it sorts after as text.
        assert!("FF".parse::<NodeId>().unwrap() < "100".parse::<NodeId>().unwrap());
        for bad in ["", "0", "+1", "xyz", "11112222333344445", "ERROR::unknown"] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad}");
        }
    }

    const STATS: &str = "cluster_size=3;cluster_key=5A1C0E2B9D74;cluster_generation=7;\
        cluster_principal=BB9040011AC4202;cluster_integrity=true;cluster_is_member=true;\
        cluster_duplicate_nodes=null;uptime=88;migrate_allowed=false;\
        migrate_partitions_remaining=312";

    #[test]
    fn statistics() {
        assert_eq!(
            Statistics::parse(STATS).unwrap(),
            Statistics {
                cluster_size: 3,
                cluster_key: "5A1C0E2B9D74".into(),
                cluster_generation: 7,
                cluster_principal: "BB9040011AC4202".into(),
                cluster_integrity: true,
                cluster_is_member: true,
                migrate_allowed: false,
                migrate_partitions_remaining: 312,
            }
        );
        // A node in no cluster yet.
        let orphan = STATS
            .replace("cluster_key=5A1C0E2B9D74", "cluster_key=0")
            .replace("cluster_principal=BB9040011AC4202", "cluster_principal=0");
        assert_eq!(Statistics::parse(&orphan).unwrap().cluster_key, "0");
    }

    #[test]
    fn statistics_errors_name_the_field() {
        let missing = STATS.replace("cluster_integrity=true;", "");
        assert_eq!(
            Statistics::parse(&missing),
            Err(ReplyError::MissingField {
                field: "cluster_integrity"
            })
        );
        let cases = [
            ("cluster_size=3", "cluster_size=-1", "cluster_size"),
            ("cluster_size=3", "cluster_size=4294967296", "cluster_size"),
            ("cluster_key=5A1C0E2B9D74", "cluster_key=", "cluster_key"),
            ("cluster_key=5A1C0E2B9D74", "cluster_key=zz", "cluster_key"),
            (
                "cluster_is_member=true",
                "cluster_is_member=yes",
                "cluster_is_member",
            ),
            (
                "migrate_partitions_remaining=312",
                "migrate_partitions_remaining=lots",
                "migrate_partitions_remaining",
            ),
        ];
        for (good, bad, name) in cases {
            let text = STATS.replace(good, bad);
            match Statistics::parse(&text) {
                Err(ReplyError::BadField { field, .. }) => assert_eq!(field, name),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(
            Statistics::parse("ERROR:1:not ready"),
            Err(server(Some(1), "not ready"))
        );
    }

    #[test]
    fn namespace_stats() {
        let value = "ns_cluster_size=2;effective_replication_factor=2;\
            migrate_tx_partitions_remaining=10;migrate_rx_partitions_remaining=20;\
            unavailable_partitions=0;dead_partitions=4;replication-factor=2;\
            storage-engine=memory";
        assert_eq!(
            NamespaceStats::parse(value).unwrap(),
            NamespaceStats {
                unavailable_partitions: 0,
                dead_partitions: 4,
                migrate_tx_partitions_remaining: 10,
                migrate_rx_partitions_remaining: 20,
                replication_factor: 2,
            }
        );
        assert_eq!(
            NamespaceStats::parse(&value.replace("replication-factor=2;", "")),
            Err(ReplyError::MissingField {
                field: "replication-factor"
            })
        );
        assert_eq!(
            NamespaceStats::parse("ERROR::unknown-namespace"),
            Err(server(None, "unknown-namespace"))
        );
    }

    #[test]
    fn tip_replies() {
        assert_eq!(parse_tip("ok"), Ok(TipOutcome::Added));
        assert_eq!(parse_tip("ERROR::unknown"), Ok(TipOutcome::AlreadyKnown));
        assert_eq!(parse_tip("ERROR:4:bad"), Err(server(Some(4), "bad")));
        assert_eq!(parse_tip("ERROR::other"), Err(server(None, "other")));
        assert!(matches!(
            parse_tip("okay"),
            Err(ReplyError::Unexpected { .. })
        ));
    }

    #[test]
    fn tip_clear_replies() {
        assert_eq!(
            parse_tip_clear("ok", 2),
            Ok(TipClearOutcome {
                cleared: 2,
                not_found: 0
            })
        );
        assert_eq!(
            parse_tip_clear("ERROR::1 cleared, 3 not found", 4),
            Ok(TipClearOutcome {
                cleared: 1,
                not_found: 3
            })
        );
        assert_eq!(
            parse_tip_clear("ERROR::unknown", 1),
            Err(server(None, "unknown"))
        );
        assert_eq!(
            parse_tip_clear("ERROR::x cleared, 3 not found", 1),
            Err(server(None, "x cleared, 3 not found"))
        );
        assert_eq!(
            parse_tip_clear("ERROR:4:bad", 1),
            Err(server(Some(4), "bad"))
        );
        assert!(matches!(
            parse_tip_clear("done", 1),
            Err(ReplyError::Unexpected { .. })
        ));
    }

    #[test]
    fn ok_and_recluster_replies() {
        assert_eq!(parse_ok("ok"), Ok(()));
        assert_eq!(
            parse_ok("ERROR:25:enterprise only"),
            Err(server(Some(25), "enterprise only"))
        );
        assert!(matches!(parse_ok(""), Err(ReplyError::Unexpected { .. })));
        assert_eq!(parse_recluster("ok"), Ok(ReclusterOutcome::Started));
        assert_eq!(
            parse_recluster("ignored-by-non-principal"),
            Ok(ReclusterOutcome::IgnoredByNonPrincipal)
        );
        assert!(parse_recluster("maybe").is_err());
    }

    #[test]
    fn endpoint_lists() {
        assert_eq!(parse_endpoints("").unwrap(), vec![]);
        assert_eq!(
            parse_endpoints("10.0.1.5:3000;[::1]:3100").unwrap(),
            vec![
                "10.0.1.5:3000".parse::<SocketAddr>().unwrap(),
                "[::1]:3100".parse().unwrap()
            ]
        );
        assert_eq!(
            parse_endpoints("10.0.1.5:3000;10.0.1.6"),
            Err(ReplyError::BadEntry {
                entry: "10.0.1.6".into(),
                expected: "an ip:port address"
            })
        );
    }

    #[test]
    fn cluster_stable_replies() {
        assert_eq!(
            parse_cluster_stable("5A1C0E2B9D74"),
            Ok(Some("5A1C0E2B9D74".into()))
        );
        assert_eq!(parse_cluster_stable("ERROR:7:unstable cluster"), Ok(None));
        assert_eq!(
            parse_cluster_stable("ERROR:7:cluster not specified size"),
            Ok(None)
        );
        assert_eq!(
            parse_cluster_stable("ERROR:4:bad size"),
            Err(server(Some(4), "bad size"))
        );
        assert!(matches!(
            parse_cluster_stable("stable"),
            Err(ReplyError::Unexpected { .. })
        ));
    }

    #[test]
    fn words() {
        assert_eq!(parse_word("7.1.0.0", "a version").unwrap(), "7.1.0.0");
        assert!(parse_word("", "a version").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(value in ".{0,80}", sent in any::<u32>()) {
            let _ = server_error(&value);
            let _ = parse_map(&value);
            let _ = parse_list(&value);
            let _ = value.parse::<NodeId>();
            let _ = Statistics::parse(&value);
            let _ = NamespaceStats::parse(&value);
            let _ = parse_tip(&value);
            let _ = parse_tip_clear(&value, sent);
            let _ = parse_ok(&value);
            let _ = parse_recluster(&value);
            let _ = parse_endpoints(&value);
            let _ = parse_cluster_stable(&value);
            let _ = parse_word(&value, "a word");
        }

        #[test]
        fn statistics_with_one_field_mangled_never_panic(
            field in 0usize..8,
            junk in "[-0-9a-zA-Z=;:]{0,12}",
        ) {
            let mut entries: Vec<String> = STATS.split(';').map(str::to_string).collect();
            let index = field.min(entries.len() - 1);
            let key = entries[index].split('=').next().unwrap_or("").to_string();
            entries[index] = format!("{key}={junk}");
            let _ = Statistics::parse(&entries.join(";"));
        }

        #[test]
        fn error_replies_keep_code_and_message(code in any::<u32>(), message in "[ -~]{0,30}") {
            prop_assert_eq!(
                server_error(&format!("ERROR:{code}:{message}")),
                Some(server(Some(code), &message))
            );
        }
    }
}
