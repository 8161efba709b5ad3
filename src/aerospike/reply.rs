//! What reply values mean: pure parsers from a command's value text to
//! typed results.
//!
//! Nothing here does I/O, so every reply form the operator relies on is
//! unit-tested in this file, and every parser is fed arbitrary text by a
//! property test to show it returns an error instead of panicking.
//!
//! Values come in a few shapes (field notes §3):
//! - errors: any value that starts with `ERROR` or `error` (`ERROR:7:unstable
//!   cluster` on 7.2+, `ERROR::unstable-cluster` on 7.1, a bare `error`, or
//!   `error: 0 cleared, 1 not found`), and the older `FAIL:<code>:<message>`.
//!   Their texts differ by command and version, so nothing here matches a
//!   whole error message: a parser looks at the form (error or not, a code,
//!   counts in the text) and passes the server's words on;
//! - maps: `k=v;k=v` (`statistics`, `namespace/<ns>`);
//! - lists: `a;b` (`namespaces`, `services-alumni`);
//! - single words: `ok`, a node id, a cluster key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
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
    /// `namespace/<ns>` for a namespace the node does not have: 7.1
    /// answers `type=unknown` (older sims said `ERROR::unknown-namespace`).
    #[error("no such namespace (type=unknown)")]
    UnknownNamespace,
    /// The whole value is not one of the forms the command answers with.
    #[error("reply {value:?} is not {expected}")]
    Unexpected {
        /// The value as received.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

/// Reads an error value; `None` for any value that is not an error.
///
/// An error is a value that starts with `ERROR` or `error` (7.1 answers a
/// bare `error` to a duplicate `tip`, and `error: 0 cleared, 1 not found`
/// to `tip-clear`) or with the older `FAIL`, followed by nothing or by `:`.
/// `ERROR:<code>:<message>` keeps its numeric code; the code is optional
/// (`ERROR::unstable-cluster`), and a code that is not a number is kept as
/// part of the message rather than dropped, so nothing the server said is
/// lost. The message is trimmed.
pub fn server_error(value: &str) -> Option<ReplyError> {
    let rest = ["ERROR", "error", "FAIL"]
        .iter()
        .find_map(|prefix| value.strip_prefix(prefix))?;
    let rest = match rest.strip_prefix(':') {
        Some(rest) => rest,
        None if rest.is_empty() => rest,
        // `ERRORS=...` or similar: an ordinary value that starts alike.
        None => return None,
    };
    let (code, message) = match rest.split_once(':') {
        Some(("", message)) => (None, message),
        Some((code, message)) => match code.trim().parse::<u32>() {
            Ok(code) => (Some(code), message),
            Err(_) => (None, rest),
        },
        None => match rest.trim().parse::<u32>() {
            Ok(code) => (Some(code), ""),
            Err(_) => (None, rest),
        },
    };
    Some(ReplyError::Server {
        code,
        message: message.trim().to_string(),
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

/// A namespace's name as a node lists it (`namespaces`), checked before the
/// operator puts it back into a command (`namespace/<ns>`): 1 to 31
/// printable ASCII characters (the server's limit is 31), none of which
/// separates anything in the info protocol (`;` `:` `=` `,` `/`, space,
/// tab, newline). A node that lists another name gets a
/// [`ReplyError::BadEntry`], and no command is built from it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace(String);

impl Namespace {
    /// The most characters a namespace name has.
    pub const MAX_LEN: usize = 31;

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Namespace {
    type Err = ReplyError;

    fn from_str(text: &str) -> Result<Namespace, ReplyError> {
        let valid = !text.is_empty()
            && text.len() <= Namespace::MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b':' | b'=' | b',' | b'/'));
        if valid {
            Ok(Namespace(text.to_string()))
        } else {
            Err(ReplyError::BadEntry {
                entry: text.to_string(),
                expected:
                    "a namespace name (1 to 31 printable ASCII characters, none of ; : = , /)",
            })
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for Namespace {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The `namespaces` reply: a `;`-separated list of [`Namespace`] names;
/// one name that does not parse fails the whole list.
pub fn parse_namespaces(value: &str) -> Result<Vec<Namespace>, ReplyError> {
    parse_list(value)?.iter().map(|n| n.parse()).collect()
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
    /// `pending_quiesce`: a `quiesce:` was accepted and not undone
    /// (Enterprise; absent, so false, on Community).
    pub pending_quiesce: bool,
    /// `effective_is_quiesced`: the quiesce took effect at a recluster: the
    /// node owns no partition.
    pub effective_is_quiesced: bool,
}

impl NamespaceStats {
    /// Parses a `namespace/<ns>` reply; `type=unknown` alone is
    /// [`ReplyError::UnknownNamespace`].
    pub fn parse(value: &str) -> Result<NamespaceStats, ReplyError> {
        let map = parse_map(value)?;
        if map.len() == 1 && map.get("type").is_some_and(|t| t == "unknown") {
            return Err(ReplyError::UnknownNamespace);
        }
        let fields = Fields(map);
        Ok(NamespaceStats {
            unavailable_partitions: fields.count("unavailable_partitions")?,
            dead_partitions: fields.count("dead_partitions")?,
            migrate_tx_partitions_remaining: fields.count("migrate_tx_partitions_remaining")?,
            migrate_rx_partitions_remaining: fields.count("migrate_rx_partitions_remaining")?,
            replication_factor: fields.parse("replication-factor", "a positive integer")?,
            pending_quiesce: fields.0.contains_key("pending_quiesce")
                && fields.flag("pending_quiesce")?,
            effective_is_quiesced: fields.0.contains_key("effective_is_quiesced")
                && fields.flag("effective_is_quiesced")?,
        })
    }
}

/// What a `tip` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TipOutcome {
    /// The node took the address as a new seed and will heartbeat to it.
    Added,
    /// The node refused the tip with an error. 7.1 answers a bare `error`
    /// when the address is already one of its seeds (a tip sent again), and
    /// the same for missing or bad parameters, which the operator never
    /// sends; the sim's older dialect said `ERROR::unknown`. Either way the
    /// node has not gained a seed, and nothing is wrong with it: whether it
    /// joined is read back from its statistics on the next pass. The reply
    /// is kept for the log.
    Refused {
        /// The server's words, as parsed.
        reply: String,
    },
}

/// Parses a `tip` reply: `ok`, or any error form (see [`TipOutcome`]).
pub fn parse_tip(value: &str) -> Result<TipOutcome, ReplyError> {
    match check(value) {
        Ok("ok") => Ok(TipOutcome::Added),
        Ok(other) => Err(ReplyError::Unexpected {
            value: other.to_string(),
            expected: "ok or an error",
        }),
        Err(error) => Ok(TipOutcome::Refused {
            reply: error.to_string(),
        }),
    }
}

/// What a `tip-clear` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TipClearOutcome {
    /// Seeds removed.
    pub cleared: u32,
    /// Addresses that were not seeds of the node. Final: asking again
    /// would get the same answer.
    pub not_found: u32,
}

/// Parses a `tip-clear` reply to a list of `sent` addresses: `ok` means all
/// were cleared; an error that reports counts (`error: 0 cleared, 1 not
/// found` on 7.1, `ERROR::1 cleared, 3 not found` in the sim's older form)
/// is the server's way of saying "some were not seeds", which is not a
/// failure for an operator that clears addresses it is unsure about. The
/// counts are read by form: the number before `cleared` and the one before
/// `not found`, wherever they stand in the message.
pub fn parse_tip_clear(value: &str, sent: u32) -> Result<TipClearOutcome, ReplyError> {
    let (code, message) = match check(value) {
        Ok("ok") => {
            return Ok(TipClearOutcome {
                cleared: sent,
                not_found: 0,
            })
        }
        Ok(other) => {
            return Err(ReplyError::Unexpected {
                value: other.to_string(),
                expected: "ok or an error with '<n> cleared, <m> not found'",
            })
        }
        Err(ReplyError::Server { code, message }) => (code, message),
        Err(other) => return Err(other),
    };
    match clear_counts(&message) {
        Some((cleared, not_found)) => Ok(TipClearOutcome { cleared, not_found }),
        // Any other error is a real failure: pass it on as the server said
        // it.
        None => Err(ReplyError::Server { code, message }),
    }
}

/// `(cleared, not found)` from a text such as `0 cleared, 1 not found`: the
/// number just before the word `cleared` and the one just before `not
/// found`.
fn clear_counts(message: &str) -> Option<(u32, u32)> {
    let words: Vec<&str> = message
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let before = |at: usize| -> Option<u32> { words.get(at.checked_sub(1)?)?.parse().ok() };
    let cleared = words
        .iter()
        .position(|w| *w == "cleared")
        .and_then(before)?;
    let not_found = words
        .windows(2)
        .position(|w| w == ["not", "found"])
        .and_then(before)?;
    Some((cleared, not_found))
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

/// What `cluster-stable:size=N;ignore-migrations=false` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterStable {
    /// The node calls its cluster stable at the size asked, with this key.
    Stable {
        /// The cluster key, as the node printed it.
        cluster_key: String,
    },
    /// Not stable, in the node's words. 7.1 says `ERROR::unstable-cluster`
    /// or `ERROR::cluster-not-specified-size`, 7.2+ `ERROR:7:unstable
    /// cluster` or `ERROR:7:cluster not specified size`; every error form
    /// means "not now" (the operator sends only well-formed requests), so
    /// none is matched by its text.
    Unstable {
        /// The server's words, e.g. `unstable-cluster`.
        reply: String,
    },
}

/// Parses a `cluster-stable` reply: a cluster key, or any error form.
pub fn parse_cluster_stable(value: &str) -> Result<ClusterStable, ReplyError> {
    match check(value) {
        Err(ReplyError::Server { message, .. }) => Ok(ClusterStable::Unstable {
            reply: if message.is_empty() {
                value.trim().to_string()
            } else {
                message
            },
        }),
        Err(other) => Err(other),
        Ok(key) => parse_cluster_key(key)
            .map(|cluster_key| ClusterStable::Stable { cluster_key })
            .ok_or_else(|| ReplyError::Unexpected {
                value: key.to_string(),
                expected: "a cluster key (hex) or an error",
            }),
    }
}

/// One entry of `peers-clear-std` / `alumni-clear-std`: a node and the
/// addresses it publishes for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    /// The peer's node id.
    pub node_id: NodeId,
    /// Its service addresses, in the order it published them. Host names
    /// (a configured `access-address` may be one) are left out.
    pub addrs: Vec<IpAddr>,
}

/// Parses `peers-clear-std` / `alumni-clear-std`:
/// `<generation>,<default port>,[[<node id>,<tls name>,[<addr>,<addr>:<port>,...]],...]`
/// (service_list.c: the default port is left off addresses that use it;
/// IPv6 addresses are bracketed). `peers-` lists the node's current peers,
/// `alumni-` every node it has known since the last
/// `services-alumni-reset`, current peers included.
pub fn parse_peers(value: &str) -> Result<Vec<PeerEntry>, ReplyError> {
    let value = check(value)?;
    let bad = || ReplyError::Unexpected {
        value: value.to_string(),
        expected: "<generation>,<port>,[[<node>,<tls name>,[<addresses>]],...]",
    };
    let mut head = value.splitn(3, ',');
    let (Some(generation), Some(_port), Some(list)) = (head.next(), head.next(), head.next())
    else {
        return Err(bad());
    };
    if generation.parse::<u64>().is_err() {
        return Err(bad());
    }
    let inner = list
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .ok_or_else(bad)?;
    split_top_level(inner)
        .into_iter()
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let body = entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .ok_or_else(|| ReplyError::BadEntry {
                    entry: entry.to_string(),
                    expected: "[<node>,<tls name>,[<addresses>]]",
                })?;
            let parts = split_top_level(body);
            let [node, _tls, addrs] = parts.as_slice() else {
                return Err(ReplyError::BadEntry {
                    entry: entry.to_string(),
                    expected: "[<node>,<tls name>,[<addresses>]]",
                });
            };
            let node_id: NodeId = node.parse()?;
            let addrs = addrs
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(addrs);
            Ok(PeerEntry {
                node_id,
                addrs: split_top_level(addrs)
                    .into_iter()
                    .filter_map(host_of)
                    .collect(),
            })
        })
        .collect()
}

/// Parses `service-clear-std` (`addr:port,addr:port`) or the older
/// `service` (`addr:port;addr:port`): the node's own client addresses, in
/// the order it publishes them. Host names are left out; an empty value
/// (no service address) is an empty list.
pub fn parse_service_addrs(value: &str) -> Result<Vec<IpAddr>, ReplyError> {
    let value = check(value)?;
    Ok(value
        .split([',', ';'])
        .filter(|entry| !entry.is_empty())
        .filter_map(host_of)
        .collect())
}

/// The address of `host`, `host:port`, `[v6]` or `[v6]:port`; `None` for a
/// host name.
fn host_of(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    entry
        .rsplit_once(':')?
        .0
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(IpAddr::V4)
}

/// Splits on commas that are not inside brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
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
                pending_quiesce: false,
                effective_is_quiesced: false,
            }
        );
        // Enterprise adds the quiesce flags.
        let quiesced = NamespaceStats::parse(&format!(
            "{value};pending_quiesce=true;effective_is_quiesced=true;nodes_quiesced=1"
        ))
        .unwrap();
        assert!(quiesced.pending_quiesce && quiesced.effective_is_quiesced);
        assert_eq!(
            NamespaceStats::parse(&value.replace("replication-factor=2;", "")),
            Err(ReplyError::MissingField {
                field: "replication-factor"
            })
        );
        // 7.1.0.23 for a namespace it does not have.
        assert_eq!(
            NamespaceStats::parse("type=unknown"),
            Err(ReplyError::UnknownNamespace)
        );
        assert_eq!(
            NamespaceStats::parse("ERROR::unknown-namespace"),
            Err(server(None, "unknown-namespace"))
        );
    }

    #[test]
    fn seven_one_error_forms() {
        // Field notes §3, from a 7.1.0.23 server.
        assert_eq!(server_error("error"), Some(server(None, "")));
        assert_eq!(
            server_error("error: 0 cleared, 1 not found"),
            Some(server(None, "0 cleared, 1 not found"))
        );
        assert_eq!(
            server_error("ERROR::unstable-cluster"),
            Some(server(None, "unstable-cluster"))
        );
        assert_eq!(
            server_error("ERROR:25:enterprise-only"),
            Some(server(Some(25), "enterprise-only"))
        );
        assert_eq!(
            server_error("ERROR:4:unrecognized command"),
            Some(server(Some(4), "unrecognized command"))
        );
        assert_eq!(server_error("errors=3"), None);
    }

    #[test]
    fn tip_replies() {
        assert_eq!(parse_tip("ok"), Ok(TipOutcome::Added));
        // 7.1: a tip sent again (or with bad parameters) is a bare `error`.
        for refused in ["error", "ERROR::unknown", "ERROR:4:bad", "error: whatever"] {
            assert!(
                matches!(parse_tip(refused), Ok(TipOutcome::Refused { .. })),
                "{refused}"
            );
        }
        assert!(matches!(
            parse_tip("okay"),
            Err(ReplyError::Unexpected { .. })
        ));
    }

    #[test]
    fn tip_clear_replies() {
        let counts = |cleared, not_found| Ok(TipClearOutcome { cleared, not_found });
        assert_eq!(parse_tip_clear("ok", 2), counts(2, 0));
        // 7.1, an address that is not a seed (learned via a peer, or
        // cleared already), and an empty or malformed list.
        assert_eq!(
            parse_tip_clear("error: 0 cleared, 1 not found", 1),
            counts(0, 1)
        );
        assert_eq!(
            parse_tip_clear("error: 0 cleared, 0 not found", 1),
            counts(0, 0)
        );
        // The older form the sim spoke, and counts in another order.
        assert_eq!(
            parse_tip_clear("ERROR::1 cleared, 3 not found", 4),
            counts(1, 3)
        );
        assert_eq!(
            parse_tip_clear("ERROR:4:2 not found, 5 cleared", 7),
            counts(5, 2)
        );
        assert_eq!(parse_tip_clear("error", 1), Err(server(None, "")));
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
        let unstable = |reply: &str| {
            Ok(ClusterStable::Unstable {
                reply: reply.to_string(),
            })
        };
        assert_eq!(
            parse_cluster_stable("5A1C0E2B9D74"),
            Ok(ClusterStable::Stable {
                cluster_key: "5A1C0E2B9D74".into()
            })
        );
        // 7.1.0.23's forms.
        assert_eq!(
            parse_cluster_stable("ERROR::unstable-cluster"),
            unstable("unstable-cluster")
        );
        assert_eq!(
            parse_cluster_stable("ERROR::cluster-not-specified-size"),
            unstable("cluster-not-specified-size")
        );
        // 7.2+ (server source).
        assert_eq!(
            parse_cluster_stable("ERROR:7:unstable cluster"),
            unstable("unstable cluster")
        );
        assert_eq!(
            parse_cluster_stable("ERROR:7:cluster not specified size"),
            unstable("cluster not specified size")
        );
        assert_eq!(parse_cluster_stable("error"), unstable("error"));
        assert!(matches!(
            parse_cluster_stable("stable"),
            Err(ReplyError::Unexpected { .. })
        ));
    }

    #[test]
    fn peer_lists() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A node bound to `address any` on a swarm task: overlay and
        // docker_gwbridge, default port left off.
        let peers = parse_peers(
            "12,3000,[[BB9030011AC4202,,[10.0.1.6,10.215.0.3]],[BB9040011AC4202,,[10.0.1.7:3100,[fd00::7]:3100]]]",
        )
        .unwrap();
        assert_eq!(
            peers,
            vec![
                PeerEntry {
                    node_id: NodeId(0xBB9030011AC4202),
                    addrs: vec![ip("10.0.1.6"), ip("10.215.0.3")]
                },
                PeerEntry {
                    node_id: NodeId(0xBB9040011AC4202),
                    addrs: vec![ip("10.0.1.7"), ip("fd00::7")]
                },
            ]
        );
        assert_eq!(parse_peers("0,3000,[]").unwrap(), vec![]);
        // A TLS name and a host name.
        assert_eq!(
            parse_peers("3,3000,[[A1,tls1,[db1.example:3000,10.0.1.8]]]").unwrap(),
            vec![PeerEntry {
                node_id: NodeId(0xA1),
                addrs: vec![ip("10.0.1.8")]
            }]
        );
        for bad in [
            "",
            "x,3000,[]",
            "1,3000",
            "1,3000,[[zz,,[]]]",
            "1,3000,[[A1,[]]]",
        ] {
            assert!(parse_peers(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_peers("ERROR:4:unrecognized command"),
            Err(server(Some(4), "unrecognized command"))
        );
    }

    #[test]
    fn service_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_service_addrs("10.0.1.5:3000,10.215.0.3:3000").unwrap(),
            vec![ip("10.0.1.5"), ip("10.215.0.3")]
        );
        assert_eq!(
            parse_service_addrs("10.0.1.5:3000;[fd00::5]:3000").unwrap(),
            vec![ip("10.0.1.5"), ip("fd00::5")]
        );
        assert_eq!(parse_service_addrs("").unwrap(), Vec::<IpAddr>::new());
        assert!(parse_service_addrs("ERROR:4:unrecognized command").is_err());
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
            let _ = parse_peers(&value);
            let _ = parse_service_addrs(&value);
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
                Some(server(Some(code), message.trim()))
            );
        }
    }
}
