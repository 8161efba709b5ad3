//! The membership watch: sees an unannounced failure (a container killed,
//! an engine stopped, a host cut off) within a second or two, between the
//! reconciles of a settled cluster.
//!
//! Swarm offers no task events (FIELD-NOTES §2: container events are per
//! engine, and the manager's engine sees only its own), so a settled cluster
//! is otherwise looked at only on the next slow task poll. The watch asks
//! the nodes instead, cheaply:
//!
//! - it **holds one info connection per member** of the main cluster the
//!   last pass saw. A process that dies (SIGKILL, or a clean stop when its
//!   engine stops) has its kernel close the socket: the watch reads the
//!   end of stream at once and wakes the cluster's reconcile;
//! - every [`PROBE_EVERY`] it sends one small command on one of those
//!   connections, round robin: `cluster-stable:size=N;ignore-migrations=true`,
//!   which answers the cluster key while the node is in a cluster of the
//!   size the pass saw, and an error otherwise. A different key, an error,
//!   or no answer within [`PROBE_TIMEOUT`] wakes the reconcile. This
//!   catches what closes no socket: a host cut off is dropped by the
//!   survivors after the cluster's heartbeat timeout (1.5 s with the
//!   recipe's 150 ms × 10), and the cut-off node's own probe goes
//!   unanswered. The probes also keep the held connections from the
//!   server's idle reaping (`proto-fd-idle-ms`, 60 s).
//!
//! One wake per arming: after waking, the watch of that cluster ends, and
//! the reconcile that follows arms it again with the members it then sees
//! (see [`WatchSet`]). The watch never decides anything; the reconcile reads
//! everything afresh.
//!
//! Cost of a settled cluster: one held TCP connection per node and
//! `60 / PROBE_EVERY` info requests a minute (120), whatever its size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{debug, info};

use crate::aerospike::frame::{self, Header, HEADER_LEN};

use super::metrics::Trigger;
use super::scheduler::Scheduler;
use super::telemetry::Counters;

/// How often one member of a watched cluster is probed (round robin over
/// the members): the cluster costs `60 s / PROBE_EVERY` requests a minute.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// How long a probe, or a connect, may take before the node counts as
/// gone.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// The largest probe reply accepted (a cluster key or a short error).
const MAX_REPLY: usize = 4096;

/// What one pass saw of a cluster that is whole: the watch keeps an eye on
/// exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSet {
    /// The members' service addresses, in address order.
    pub members: Vec<SocketAddr>,
    /// The cluster key they share, as `statistics` reports it.
    pub cluster_key: String,
}

/// Why the watch woke a cluster's reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// The node closed the held connection (its process ended).
    Closed(SocketAddr),
    /// The node could not be reached, or did not answer in time.
    Silent(SocketAddr, String),
    /// The node answered, but not the cluster key the pass saw: it left
    /// the cluster, the cluster changed size, or it re-formed.
    Changed {
        /// The node asked.
        node: SocketAddr,
        /// What it answered.
        reply: String,
    },
}

impl std::fmt::Display for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wake::Closed(node) => {
                write!(f, "node {node} closed its connection (its process ended)")
            }
            Wake::Silent(node, why) => write!(f, "node {node} does not answer ({why})"),
            Wake::Changed { node, reply } => write!(
                f,
                "node {node} answers {reply:?} to cluster-stable: the cluster changed"
            ),
        }
    }
}

/// Whether `reply` to the probe says the cluster is still the one with
/// `key`. Errors have many forms across versions (FIELD-NOTES §3): any
/// value starting with `ERROR` or `error` is one. Keys are hex without
/// zero padding; compared case-insensitively, leading zeros ignored.
pub fn still_same(reply: &str, key: &str) -> bool {
    let reply = reply.trim();
    if reply.is_empty() || reply.starts_with("ERROR") || reply.starts_with("error") {
        return false;
    }
    let norm = |k: &str| k.trim_start_matches('0').to_ascii_uppercase();
    norm(reply) == norm(key)
}

/// The watches of every cluster, keyed by service id.
#[derive(Debug)]
pub struct MembershipWatch {
    scheduler: Arc<Scheduler<String>>,
    counters: Arc<Counters>,
    watches: Mutex<HashMap<String, (WatchSet, JoinHandle<()>)>>,
}

impl MembershipWatch {
    /// A watch that wakes clusters on `scheduler` and counts its probes in
    /// `counters.info_requests`.
    pub fn new(scheduler: Arc<Scheduler<String>>, counters: Arc<Counters>) -> Self {
        MembershipWatch {
            scheduler,
            counters,
            watches: Mutex::new(HashMap::new()),
        }
    }

    fn watches(&self) -> std::sync::MutexGuard<'_, HashMap<String, (WatchSet, JoinHandle<()>)>> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms the watch of cluster `id` on `set` (or ends it: `None`, when the
    /// pass saw no whole cluster, or the service is gone or unmanaged).
    /// The same set as the running watch keeps it running; a watch that
    /// has woken already is started again.
    pub fn arm(&self, id: &str, set: Option<WatchSet>) {
        let mut watches = self.watches();
        let Some(set) = set.filter(|s| !s.members.is_empty()) else {
            if let Some((_, task)) = watches.remove(id) {
                task.abort();
            }
            return;
        };
        if let Some((current, task)) = watches.get(id) {
            if *current == set && !task.is_finished() {
                return;
            }
        }
        let task = tokio::spawn(watch_cluster(
            id.to_string(),
            set.clone(),
            self.scheduler.clone(),
            self.counters.clone(),
        ));
        if let Some((_, old)) = watches.insert(id.to_string(), (set, task)) {
            old.abort();
        }
    }

    /// How many clusters are watched now (for tests and the log).
    pub fn watching(&self) -> usize {
        self.watches()
            .values()
            .filter(|(_, t)| !t.is_finished())
            .count()
    }

    /// Ends every watch.
    pub fn stop(&self) {
        for (_, (_, task)) in self.watches().drain() {
            task.abort();
        }
    }
}

impl Drop for MembershipWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Watches one cluster until something changes, then wakes its reconcile
/// and returns.
async fn watch_cluster(
    id: String,
    set: WatchSet,
    scheduler: Arc<Scheduler<String>>,
    counters: Arc<Counters>,
) {
    let wake = watch_until_change(&set, &counters).await;
    info!(service = %id, reason = %wake, "membership changed: reconciling now");
    scheduler.schedule(id, Duration::ZERO, Trigger::Membership);
}

/// Holds a connection to every member and probes them in turn; returns the
/// first sign of change. An empty set never changes: it waits forever.
pub async fn watch_until_change(set: &WatchSet, counters: &Counters) -> Wake {
    let size = set.members.len();
    if size == 0 {
        return std::future::pending().await;
    }
    let command = format!("cluster-stable:size={size};ignore-migrations=true");
    let mut conns: Vec<TcpStream> = Vec::with_capacity(size);
    for addr in &set.members {
        match connect(*addr).await {
            Ok(stream) => conns.push(stream),
            Err(why) => return Wake::Silent(*addr, why),
        }
    }
    let mut ticks = tokio::time::interval(PROBE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = 0usize;
    loop {
        // Between probes: any held connection that becomes readable has
        // either ended (read 0) or sent bytes nobody asked for.
        let closed = async {
            let readable = conns.iter().enumerate().map(|(i, c)| {
                Box::pin(async move {
                    let _ = c.readable().await;
                    i
                })
            });
            futures::future::select_all(readable).await.0
        };
        tokio::select! {
            _ = ticks.tick() => {}
            i = closed => {
                let addr = set.members[i];
                let mut buf = [0u8; 256];
                match conns[i].try_read(&mut buf) {
                    Ok(0) => return Wake::Closed(addr),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Wake::Silent(addr, e.to_string()),
                    // Stray bytes: dropped; the next probe on it reads
                    // a fresh frame on a fresh connection.
                    Ok(_) => match connect(addr).await {
                        Ok(stream) => { conns[i] = stream; continue; }
                        Err(why) => return Wake::Silent(addr, why),
                    },
                }
            }
        }
        let i = turn % size;
        turn += 1;
        let addr = set.members[i];
        Counters::bump(&counters.info_requests);
        match timeout(PROBE_TIMEOUT, probe(&mut conns[i], &command)).await {
            Ok(Ok(reply)) if still_same(&reply, &set.cluster_key) => {
                debug!(node = %addr, "membership probe: unchanged")
            }
            Ok(Ok(reply)) => return Wake::Changed { node: addr, reply },
            Ok(Err(ProbeError::Closed)) => {
                // Closed between two probes and not seen yet (or reaped as
                // idle): gone only if it cannot be reached again.
                match connect(addr).await {
                    Ok(stream) => conns[i] = stream,
                    Err(_) => return Wake::Closed(addr),
                }
            }
            Ok(Err(ProbeError::Other(why))) => return Wake::Silent(addr, why),
            Err(_) => {
                return Wake::Silent(
                    addr,
                    format!("no answer within {} ms", PROBE_TIMEOUT.as_millis()),
                )
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    match timeout(PROBE_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "connect not done within {} ms",
            PROBE_TIMEOUT.as_millis()
        )),
    }
}

enum ProbeError {
    Closed,
    Other(String),
}

/// One request and its reply on a held connection.
async fn probe(stream: &mut TcpStream, command: &str) -> Result<String, ProbeError> {
    let request =
        frame::encode_request(&[command]).map_err(|e| ProbeError::Other(e.to_string()))?;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::BrokenPipe => ProbeError::Closed,
        _ => ProbeError::Other(e.to_string()),
    };
    stream.write_all(&request).await.map_err(io)?;
    let mut head = [0u8; HEADER_LEN];
    stream.read_exact(&mut head).await.map_err(io)?;
    let header = Header::decode(head, MAX_REPLY).map_err(|e| ProbeError::Other(e.to_string()))?;
    let mut body = vec![0u8; header.body_len as usize];
    stream.read_exact(&mut body).await.map_err(io)?;
    let lines = frame::parse_reply_body(&body).map_err(|e| ProbeError::Other(e.to_string()))?;
    match lines.as_slice() {
        [(echo, value)] if echo == command => Ok(value.clone()),
        _ => Err(ProbeError::Other(format!(
            "reply does not answer {command:?}: {lines:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_in_any_case_or_padding_is_unchanged_and_errors_are_changes() {
        assert!(still_same("5A93D13F2A0", "5A93D13F2A0"));
        assert!(still_same("05a93d13f2a0", "5A93D13F2A0"));
        assert!(!still_same("5A93D13F2A1", "5A93D13F2A0"));
        for error in [
            "ERROR::cluster-not-specified-size",
            "ERROR:7:cluster not specified size",
            "ERROR::unstable-cluster",
            "error",
            "",
        ] {
            assert!(!still_same(error, "5A93D13F2A0"), "{error}");
        }
    }
}
