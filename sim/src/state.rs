//! The node's state machine: peers, cluster membership, partitions and
//! migrations.
//!
//! Everything here is synchronous and takes the current time as an
//! argument, so the whole cluster model can be driven in-process by tests
//! (see the tests at the bottom) and by the network tasks in `node.rs`
//! alike. The network layer feeds it heartbeats ([`NodeState::on_heartbeat`])
//! and calls [`NodeState::tick`] once per heartbeat interval.
//!
//! The model, in short:
//! - A peer is alive while its heartbeats arrive; silent for
//!   `interval x timeout` it leaves.
//! - The candidate cluster is this node plus every live peer, capped at 8
//!   nodes in Community builds (the earliest started nodes stay).
//! - The principal is the highest node id. Once the candidate set has been
//!   stable for two intervals it forms a cluster: a new random key, the
//!   member list, the quiesced members, the data lineage and the dead
//!   partitions. It announces the cluster in its heartbeats; the others
//!   adopt it when it matches their own candidate set.
//! - Partition owners are the top `replication-factor` members of a
//!   deterministic ranking. An owner without a copy receives one from a
//!   member that has it, at the migration rate; a non-owner drops its copy
//!   once every owner has one. A partition with no copy left in the cluster
//!   is dead for good.
//! - Each copy holds its partition's records. Transactions are served by
//!   the partition's working master (the migration source); writes reach
//!   every owner and holder before they are acknowledged (see
//!   [`NodeState::route`], [`NodeState::write_record`]). A copy read back
//!   from a device is stale until a current copy is merged into it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::config::{Config, NamespaceConfig};
use crate::events::EventLog;
use crate::heartbeat::{
    Adjacent, ClusterView, DeadReport, Envelope, Heartbeat, Lineage, NamespaceReport,
};
use crate::ids::{new_cluster_key, random_u64, NodeId};
use crate::msg::{self, result, Kind, Request};
use crate::partitions::{effective_rf, ranking, Bitmap, OwnerTable, N_PARTITIONS};
use crate::record::{Digest, Partition, Record, WireRecord};

/// Where a data-plane transaction is served (see [`NodeState::route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Here: this node is the partition's working master (namespace index).
    Local(usize),
    /// At another node, the working master: the transaction is proxied.
    Proxy(NodeId),
    /// Nowhere: every copy of the partition is lost (namespace index).
    Dead(usize),
    /// Not now: no cluster, or no known copy yet.
    Unavailable,
    /// The namespace does not exist.
    UnknownNamespace,
}

/// How many times a transaction may be proxied (see [`NodeState::route`]).
pub const MAX_PROXY_HOPS: u8 = 2;

/// The outcome of a write at the working master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Result code for the client.
    pub result: u8,
    /// The record's generation after the write (0 when deleted or failed).
    pub generation: u32,
    /// The nodes the new version must reach before the client is answered.
    pub replicas: Vec<NodeId>,
    /// The new version, as replicas get it (`None`: deleted).
    pub record: Option<WireRecord>,
}

/// Record counts of a namespace on this node (`objects`,
/// `master_objects`, `prole_objects`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Objects {
    /// Records in every partition copy held.
    pub total: usize,
    /// Records of partitions this node is final master of.
    pub master: usize,
    /// Records of partitions this node is a final replica (not master) of.
    pub prole: usize,
}

/// Community or Enterprise behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// Cluster of at most 8 nodes, no quiesce.
    Community,
    /// Quiesce supported.
    Enterprise,
}

impl Edition {
    /// Parses `community` or `enterprise` (any case).
    pub fn parse(text: &str) -> Option<Edition> {
        match text.to_ascii_lowercase().as_str() {
            "community" => Some(Edition::Community),
            "enterprise" => Some(Edition::Enterprise),
            _ => None,
        }
    }

    /// The `edition` info value.
    pub fn long_name(self) -> &'static str {
        match self {
            Edition::Community => "Aerospike Community Edition",
            Edition::Enterprise => "Aerospike Enterprise Edition",
        }
    }

    /// Largest cluster the edition forms.
    pub fn max_cluster_size(self) -> usize {
        match self {
            Edition::Community => 8,
            // The real limit is far above anything a sandbox runs.
            Edition::Enterprise => 255,
        }
    }
}

/// A failure injected with `AEROSPIKE_SIM_FAULT`, standing for a bad new
/// server version in upgrade tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `never-join`: a version whose heartbeat protocol is incompatible.
    /// The node serves info commands as a node alone (a cluster of one),
    /// answers `tip` as usual, but dials nobody and ignores every heartbeat
    /// it receives, so it never forms a cluster with anyone and nobody
    /// ever hears it: to the other nodes it is an unreachable peer.
    NeverJoin,
    /// `exit-on-start`: a version that refuses to start. The node logs a
    /// fatal line about a second after start, before binding any port, and
    /// the process exits with status 1.
    ExitOnStart,
}

impl Fault {
    /// The accepted values of `AEROSPIKE_SIM_FAULT`, as documented.
    pub const ACCEPTED: &'static str = "never-join, exit-on-start (or empty for none)";

    /// Parses `never-join` or `exit-on-start` (exactly).
    pub fn parse(text: &str) -> Option<Fault> {
        match text {
            "never-join" => Some(Fault::NeverJoin),
            "exit-on-start" => Some(Fault::ExitOnStart),
            _ => None,
        }
    }

    /// The value as written in `AEROSPIKE_SIM_FAULT`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::NeverJoin => "never-join",
            Fault::ExitOnStart => "exit-on-start",
        }
    }
}

/// Default of `AEROSPIKE_SIM_COLD_START_RATE`: a typical node of a 3-node
/// RF 2 cluster (about 2,731 copies) reads its file back in about 0.27 s.
pub const DEFAULT_COLD_START_RATE: f64 = 10_000.0;

/// Knobs that come from the environment or command line, not the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Version reported by `build` (e.g. `7.1.0.0`).
    pub build: String,
    /// Edition.
    pub edition: Edition,
    /// Partitions this node sends per second during migrations.
    pub migrate_rate: f64,
    /// Test seam (`AEROSPIKE_SIM_INTERFACES`): the interface list used in
    /// place of the host's; `None` reads the host's with getifaddrs.
    pub interfaces: Option<Vec<crate::netif::Interface>>,
    /// `AEROSPIKE_SIM_FAULT`: an injected failure; `None` is a healthy node.
    pub fault: Option<Fault>,
    /// `AEROSPIKE_SIM_COLD_START_RATE`: partition copies a cold start reads
    /// back from a device file per second.
    pub cold_start_rate: f64,
}

impl Settings {
    /// Whether this is an Enterprise build.
    pub fn enterprise(&self) -> bool {
        self.edition == Edition::Enterprise
    }

    /// The reply to an info command a Community build does not have
    /// (`quiesce`, `racks`, ...): code 25, spelled `enterprise-only` up to
    /// 7.1 (measured on 7.1.0.23) and `enterprise only` from 7.2.
    pub fn enterprise_only_reply(&self) -> &'static str {
        if self.replies_7_2() {
            "ERROR:25:enterprise only"
        } else {
            "ERROR:25:enterprise-only"
        }
    }

    /// Whether the 7.2 reply forms apply (`cluster-stable` errors with code 7,
    /// `ignore-migrations` only `true`/`false`).
    pub fn replies_7_2(&self) -> bool {
        self.build_at_least(7, 2)
    }

    /// Whether the reported build is `major.minor` or later. A build string
    /// that does not start with two numbers counts as the newest.
    pub fn build_at_least(&self, major: u32, minor: u32) -> bool {
        let mut parts = self.build.split('.').map(|p| p.parse::<u32>());
        match (parts.next(), parts.next()) {
            (Some(Ok(have_major)), Some(Ok(have_minor))) => {
                (have_major, have_minor) >= (major, minor)
            }
            _ => true,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            build: "7.1.0.0".to_string(),
            edition: Edition::Community,
            migrate_rate: 500.0,
            interfaces: None,
            fault: None,
            cold_start_rate: DEFAULT_COLD_START_RATE,
        }
    }
}

/// The addresses a node publishes, per listener, resolved from its
/// config at start-up (see [`crate::netif`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// Service addresses.
    pub service: Vec<IpAddr>,
    /// Heartbeat addresses.
    pub heartbeat: Vec<IpAddr>,
    /// Fabric addresses.
    pub fabric: Vec<IpAddr>,
}

impl Addresses {
    /// One address for everything.
    pub fn single(ip: IpAddr) -> Addresses {
        Addresses {
            service: vec![ip],
            heartbeat: vec![ip],
            fabric: vec![ip],
        }
    }
}

/// A partition copy to send over the fabric (see `node.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The node that must receive it.
    pub to: NodeId,
    /// Cluster key it was decided in.
    pub key: u64,
    /// Namespace name.
    pub namespace: String,
    /// Partition id.
    pub pid: usize,
    /// `Some`: not a copy but a merge push of these records (taken when
    /// it was decided) from a copy that came back from a device file.
    pub push: Option<Vec<WireRecord>>,
}

/// What the node knows about a live peer.
#[derive(Debug, Clone)]
struct Peer {
    hb: Heartbeat,
    last_heard: Instant,
    /// Held partitions per namespace, in this node's namespace order.
    held: Vec<Bitmap>,
    /// Dead partitions per namespace, in this node's namespace order.
    dead: Vec<Bitmap>,
    /// Stale copies per namespace (see [`NamespaceState::stale`]).
    stale: Vec<Bitmap>,
}

/// One namespace's partitions on this node.
#[derive(Debug, Clone)]
pub(crate) struct NamespaceState {
    pub(crate) config: NamespaceConfig,
    /// Partitions this node has a copy of.
    pub(crate) held: Bitmap,
    /// Partitions lost for good in this node's lineage.
    pub(crate) dead: Bitmap,
    /// Held copies that came back from a device file and were not
    /// refreshed since: they count as copies (a partition with one is not
    /// dead) but are not current. While a current copy exists elsewhere,
    /// a stale one serves nothing and its owner receives the partition
    /// again (merged, newer record wins), as the server migrates to a
    /// returning node whose partition version differs.
    pub(crate) stale: Bitmap,
    /// Stale copies whose records were pushed to the source in this
    /// cluster.
    pushed: Bitmap,
    pub(crate) owners: OwnerTable,
    pub(crate) rx_initial: usize,
    pub(crate) tx_initial: usize,
    migrating: bool,
    received: usize,
    /// Remaining migrations as of the last tick.
    pub(crate) rx_remaining: usize,
    pub(crate) tx_remaining: usize,
    /// Records by partition. A held partition's records are its copy; a
    /// partition not held may have records on their way in (a migration's
    /// chunks, replica writes to a new owner) until it is held, or until
    /// the next cluster change drops them.
    pub(crate) records: BTreeMap<usize, Partition>,
    /// Data-plane transaction counters by statistic name (see
    /// [`DATA_COUNTERS`]).
    pub(crate) transactions: BTreeMap<&'static str, u64>,
}

/// The namespace statistics counting data-plane transactions, in the
/// order `namespace/<ns>` reports them (the server's names). Reads,
/// writes and deletes count where they are executed; proxies where the
/// client sent them.
pub const DATA_COUNTERS: [&str; 9] = [
    "client_read_success",
    "client_read_not_found",
    "client_write_success",
    "client_write_error",
    "client_write_timeout",
    "client_delete_success",
    "client_delete_not_found",
    "client_proxy_complete",
    "client_proxy_timeout",
];

/// Counters reported by `statistics`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Info requests answered.
    pub info_complete: u64,
    /// Heartbeats received from this node itself (a tip of its own address).
    pub heartbeat_received_self: u64,
    /// Heartbeats received from other nodes.
    pub heartbeat_received_foreign: u64,
    /// Open service connections.
    pub client_connections: u64,
    /// Open heartbeat connections (both directions).
    pub heartbeat_connections: u64,
}

/// The whole state of one sim node.
pub struct NodeState {
    /// This node's id.
    pub id: NodeId,
    pub(crate) config: Config,
    pub(crate) settings: Settings,
    events: EventLog,
    started: Instant,
    started_ms: u64,
    interval: Duration,
    timeout: Duration,
    addresses: Addresses,
    peers: BTreeMap<NodeId, Peer>,
    seeds: Vec<(String, u16)>,
    self_endpoints: BTreeSet<String>,
    /// service_list.c's peer table: every node seen since the last
    /// `services-alumni-reset`, with its service endpoints.
    alumni: BTreeMap<NodeId, Vec<String>>,
    /// Under [`Fault::NeverJoin`]: the nodes whose heartbeats were ignored
    /// (each is logged once).
    ignored: BTreeSet<u64>,
    /// Partition copies sent and not yet acknowledged: (to, ns, pid) -> when.
    in_flight: BTreeMap<(NodeId, usize, usize), Instant>,
    /// Copies acknowledged by their owner in the current cluster.
    acked: BTreeSet<(NodeId, usize, usize)>,
    outgoing: Vec<Outgoing>,
    last_progress: Instant,
    pub(crate) cluster: Option<ClusterView>,
    pub(crate) cluster_generation: u64,
    pub(crate) last_rebalance: Instant,
    candidate: Vec<NodeId>,
    candidate_since: Instant,
    excluded: bool,
    recluster_requested: bool,
    pub(crate) quiesce_pending: bool,
    lineage: Option<Lineage>,
    pub(crate) namespaces: Vec<NamespaceState>,
    migrate_tokens: f64,
    last_tick: Instant,
    peers_list: String,
    pub(crate) peers_generation: u64,
    /// Counters for `statistics`.
    pub counters: Counters,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn hex_list(nodes: &[u64]) -> Vec<String> {
    nodes.iter().map(|n| NodeId(*n).to_string()).collect()
}

/// `host:port`, with IPv6 literals in brackets.
pub fn endpoint(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}

impl NodeState {
    /// A node that has just started: alone, orphaned, holding nothing.
    pub fn new(
        id: NodeId,
        config: Config,
        settings: Settings,
        events: EventLog,
        now: Instant,
    ) -> NodeState {
        let interval = Duration::from_millis(config.heartbeat.interval_ms);
        let timeout = interval * config.heartbeat.timeout as u32;
        let namespaces = config
            .namespaces
            .iter()
            .map(|ns| NamespaceState {
                config: ns.clone(),
                held: Bitmap::empty(),
                dead: Bitmap::empty(),
                stale: Bitmap::empty(),
                pushed: Bitmap::empty(),
                owners: OwnerTable::default(),
                rx_initial: 0,
                tx_initial: 0,
                migrating: false,
                received: 0,
                rx_remaining: 0,
                tx_remaining: 0,
                records: BTreeMap::new(),
                transactions: BTreeMap::new(),
            })
            .collect();
        NodeState {
            id,
            seeds: config.heartbeat.seeds.clone(),
            addresses: Addresses::default(),
            config,
            settings,
            events,
            started: now,
            started_ms: epoch_ms(),
            interval,
            timeout,
            peers: BTreeMap::new(),
            self_endpoints: BTreeSet::new(),
            alumni: BTreeMap::new(),
            ignored: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            acked: BTreeSet::new(),
            outgoing: Vec::new(),
            last_progress: now,
            cluster: None,
            cluster_generation: 0,
            last_rebalance: now,
            candidate: vec![id],
            candidate_since: now,
            excluded: false,
            recluster_requested: false,
            quiesce_pending: false,
            lineage: None,
            namespaces,
            migrate_tokens: 0.0,
            last_tick: now,
            peers_list: String::new(),
            peers_generation: 0,
            counters: Counters::default(),
        }
    }

    /// The event log, stamped with this node's id.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Seconds since start.
    pub fn uptime(&self, now: Instant) -> u64 {
        now.duration_since(self.started).as_secs()
    }

    /// Heartbeat interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    // ----- addresses -------------------------------------------------------

    /// Sets the addresses this node publishes (resolved from the config by
    /// the caller; see [`crate::netif::resolve`]).
    pub fn set_addresses(&mut self, addresses: Addresses) {
        self.addresses = addresses;
    }

    /// The published addresses.
    pub fn addresses(&self) -> &Addresses {
        &self.addresses
    }

    fn endpoints(ips: &[IpAddr], port: u16) -> Vec<String> {
        ips.iter()
            .map(|ip| SocketAddr::new(*ip, port).to_string())
            .collect()
    }

    /// This node's heartbeat endpoints, in published order.
    pub fn heartbeat_endpoints(&self) -> Vec<String> {
        Self::endpoints(&self.addresses.heartbeat, self.config.heartbeat.port)
    }

    /// The first heartbeat endpoint, if any.
    pub fn heartbeat_endpoint(&self) -> Option<String> {
        self.heartbeat_endpoints().into_iter().next()
    }

    /// This node's service endpoints, in published order.
    pub fn service_endpoints(&self) -> Vec<String> {
        Self::endpoints(&self.addresses.service, self.config.service_port)
    }

    /// This node's fabric endpoints, in published order.
    pub fn fabric_endpoints(&self) -> Vec<String> {
        Self::endpoints(&self.addresses.fabric, self.config.fabric_port)
    }

    /// A live peer's published fabric endpoints.
    pub fn peer_fabric_endpoints(&self, node: NodeId) -> Vec<String> {
        self.peers
            .get(&node)
            .map(|p| p.hb.fabric_addrs.clone())
            .unwrap_or_default()
    }

    /// Whether `node` is a live peer.
    pub fn is_peer(&self, node: NodeId) -> bool {
        self.peers.contains_key(&node)
    }

    // ----- heartbeats ------------------------------------------------------

    /// The heartbeat this node sends now.
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            node: self.id.0,
            hb_addrs: self.heartbeat_endpoints(),
            service_addrs: self.service_endpoints(),
            fabric_addrs: self.fabric_endpoints(),
            started_ms: self.started_ms,
            adjacency: self
                .peers
                .iter()
                .map(|(id, peer)| Adjacent {
                    node: id.0,
                    hb: peer.hb.hb_addrs.clone(),
                })
                .collect(),
            quiesce_pending: self.quiesce_pending,
            lineage: self.lineage,
            namespaces: self
                .namespaces
                .iter()
                .map(|ns| NamespaceReport {
                    name: ns.config.name.clone(),
                    held: ns.held.to_hex(),
                    dead: ns.dead.to_hex(),
                    stale: ns.stale.to_hex(),
                })
                .collect(),
            cluster: self.cluster.clone(),
        }
    }

    /// Takes in one received heartbeat.
    pub fn on_heartbeat(&mut self, envelope: Envelope, now: Instant) -> Result<(), String> {
        let hb = envelope.hb;
        if hb.node == self.id.0 {
            // Someone (a tip or a seed) pointed us at ourselves: stop
            // dialling that endpoint, as the real mesh does.
            self.counters.heartbeat_received_self += 1;
            if self.self_endpoints.insert(envelope.to.clone()) {
                self.events
                    .emit("self_endpoint", json!({"heartbeat": envelope.to}));
            }
            return Ok(());
        }
        if hb.node == 0 {
            return Err("heartbeat from node id 0".to_string());
        }
        if self.settings.fault == Some(Fault::NeverJoin) {
            // An incompatible heartbeat protocol: the message is dropped
            // as unreadable, so the sender never becomes a peer.
            if self.ignored.insert(hb.node) {
                self.events.emit(
                    "heartbeat_ignored",
                    json!({"peer": NodeId(hb.node).to_string(), "fault": "never-join"}),
                );
            }
            return Ok(());
        }
        self.counters.heartbeat_received_foreign += 1;
        let mut held = Vec::with_capacity(self.namespaces.len());
        let mut dead = Vec::with_capacity(self.namespaces.len());
        let mut stale = Vec::with_capacity(self.namespaces.len());
        for ns in &self.namespaces {
            let report = hb.namespaces.iter().find(|r| r.name == ns.config.name);
            let parse = |text: Option<&String>| match text {
                None => Ok(Bitmap::empty()),
                Some(text) => Bitmap::from_hex(text)
                    .ok_or_else(|| format!("bad partition map for {}", ns.config.name)),
            };
            held.push(parse(report.map(|r| &r.held))?);
            dead.push(parse(report.map(|r| &r.dead))?);
            stale.push(parse(report.map(|r| &r.stale))?);
        }
        let id = NodeId(hb.node);
        if !self.peers.contains_key(&id) {
            self.events.emit(
                "join",
                json!({
                    "peer": id.to_string(),
                    "heartbeat": hb.hb_addrs,
                    "service": hb.service_addrs,
                    "fabric": hb.fabric_addrs,
                }),
            );
        }
        self.alumni.insert(id, hb.service_addrs.clone());
        self.peers.insert(
            id,
            Peer {
                hb,
                last_heard: now,
                held,
                dead,
                stale,
            },
        );
        Ok(())
    }

    /// The heartbeat connections this node should keep, by key: one per
    /// seed (`host:port`) and one per known node (`node:<id>`, from live
    /// peers and their adjacency lists). Each comes with the endpoints to
    /// try, minus those that turned out to be this node itself. Like the
    /// server's mesh, a node is reached through one connection to one of
    /// its published endpoints. Under [`Fault::NeverJoin`] there are
    /// none: whatever such a node sent would be dropped by its receivers,
    /// so it sends nothing.
    pub fn dial_targets(&self) -> BTreeMap<String, Vec<String>> {
        if self.settings.fault == Some(Fault::NeverJoin) {
            return BTreeMap::new();
        }
        let own: BTreeSet<String> = self.heartbeat_endpoints().into_iter().collect();
        let usable = |ep: &String| !own.contains(ep) && !self.self_endpoints.contains(ep);
        let mut targets = BTreeMap::new();
        for (host, port) in &self.seeds {
            let ep = endpoint(host, *port);
            if usable(&ep) {
                targets.insert(ep.clone(), vec![ep]);
            }
        }
        let mut add_node = |node: u64, eps: &[String]| {
            if node == self.id.0 {
                return;
            }
            let eps: Vec<String> = eps.iter().filter(|e| usable(e)).cloned().collect();
            if !eps.is_empty() {
                targets.insert(format!("node:{}", NodeId(node)), eps);
            }
        };
        for (id, peer) in &self.peers {
            add_node(id.0, &peer.hb.hb_addrs);
        }
        for peer in self.peers.values() {
            for adjacent in &peer.hb.adjacency {
                if !self.peers.contains_key(&NodeId(adjacent.node)) {
                    add_node(adjacent.node, &adjacent.hb);
                }
            }
        }
        targets
    }

    // ----- tips ------------------------------------------------------------

    /// `tip`: adds a mesh seed. As in 7.1, refused only when the endpoint
    /// is a seed already: a live peer's endpoint, this node's own address
    /// and a port nobody listens on are accepted.
    pub fn tip(&mut self, host: &str, port: u16) -> bool {
        let target = endpoint(host, port);
        let known = self.seeds.iter().any(|(h, p)| endpoint(h, *p) == target);
        self.events
            .emit("tip", json!({"heartbeat": target, "accepted": !known}));
        if known {
            return false;
        }
        self.seeds.push((host.to_string(), port));
        true
    }

    /// `tip-clear`: removes seeds (`host:port,host:port`, IPv6 as
    /// `[addr]:port`). `Ok(cleared)` when every entry was found; otherwise
    /// `Err((cleared, not_found))`, counting over the whole list
    /// (thr_info.c `info_command_tip_clear`). An empty list or an entry
    /// that does not parse stops with the counts so far; `all` is such an
    /// entry in 7.1 (FIELD-NOTES section 3). Only seeds (config and tips)
    /// can be cleared: an endpoint learned from peers is "not found".
    pub fn tip_clear(&mut self, list: &str) -> Result<usize, (usize, usize)> {
        let result = self.clear_seeds(list);
        let (cleared, not_found) = match result {
            Ok(cleared) => (cleared, 0),
            Err(counts) => counts,
        };
        self.events.emit(
            "tip_clear",
            json!({"list": list, "cleared": cleared, "not_found": not_found}),
        );
        result
    }

    fn clear_seeds(&mut self, list: &str) -> Result<usize, (usize, usize)> {
        if list.is_empty() {
            return Err((0, 0));
        }
        let (mut cleared, mut not_found) = (0, 0);
        for item in list.split(',').filter(|s| !s.is_empty()) {
            let Some((host, port)) = item.rsplit_once(':') else {
                return Err((cleared, not_found));
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let Ok(port) = port.parse::<u16>() else {
                return Err((cleared, not_found));
            };
            let target = endpoint(host, port);
            let before = self.seeds.len();
            self.seeds.retain(|(h, p)| endpoint(h, *p) != target);
            if self.seeds.len() < before {
                cleared += 1;
            } else {
                not_found += 1;
            }
        }
        if not_found == 0 {
            Ok(cleared)
        } else {
            Err((cleared, not_found))
        }
    }

    // ----- services --------------------------------------------------------

    /// The current cluster's other members: service_list.c's "present"
    /// peers, set at each cluster change (not by heartbeats), so a node
    /// that left stays in `services` until the cluster re-forms without it.
    fn present(&self) -> Vec<NodeId> {
        self.cluster
            .as_ref()
            .map(|c| {
                c.members
                    .iter()
                    .map(|n| NodeId(*n))
                    .filter(|n| *n != self.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Service endpoints of the present peers (`services`), each node's
    /// list in its own order, nodes in id order.
    pub fn services(&self) -> Vec<String> {
        self.present()
            .iter()
            .filter_map(|n| self.alumni.get(n))
            .flatten()
            .cloned()
            .collect()
    }

    /// Service endpoints of every node in the peer table: present peers
    /// and alumni alike (service_list.c `ALUMNI_CLEAR` does not filter on
    /// presence).
    pub fn services_alumni(&self) -> Vec<String> {
        self.alumni.values().flatten().cloned().collect()
    }

    /// `services-alumni-reset`: deletes the alumni, keeps the present
    /// peers (service_list.c `purge_alumni`).
    pub fn reset_alumni(&mut self) {
        let present = self.present();
        self.alumni.retain(|id, _| present.contains(id));
    }

    /// Every node in the peer table (present peers and alumni) with its
    /// service endpoints, in id order, for `alumni-clear-std`.
    pub fn alumni_for_clients(&self) -> Vec<(NodeId, Vec<String>)> {
        self.alumni
            .iter()
            .map(|(id, services)| (*id, services.clone()))
            .collect()
    }

    /// Present peers with their service endpoints, for `peers-clear-std`;
    /// bumps the peers generation when the list changes.
    pub fn peers_for_clients(&mut self) -> Vec<(NodeId, Vec<String>)> {
        let list: Vec<(NodeId, Vec<String>)> = self
            .present()
            .into_iter()
            .map(|n| (n, self.alumni.get(&n).cloned().unwrap_or_default()))
            .collect();
        let fingerprint = format!("{list:?}");
        if fingerprint != self.peers_list {
            self.peers_list = fingerprint;
            self.peers_generation += 1;
        }
        list
    }

    // ----- cluster ---------------------------------------------------------

    /// `recluster`: only the principal acts.
    pub fn request_recluster(&mut self) -> bool {
        let is_principal = self
            .cluster
            .as_ref()
            .is_some_and(|c| c.principal == self.id.0);
        if is_principal {
            self.recluster_requested = true;
        }
        is_principal
    }

    /// Whether this node is in a cluster.
    pub fn is_member(&self) -> bool {
        self.cluster.is_some()
    }

    /// Whether the cluster this node is in is the one its heartbeats say it
    /// should be in (every member agrees on the member list).
    pub fn integrity(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| {
            let members: Vec<u64> = self.candidate.iter().map(|n| n.0).collect();
            c.members == members
        })
    }

    /// Migrations run only in an agreed cluster.
    pub fn migrate_allowed(&self) -> bool {
        self.integrity()
    }

    /// Sum of migrations this node still has to send or receive.
    pub fn migrate_partitions_remaining(&self) -> usize {
        self.namespaces
            .iter()
            .map(|ns| ns.rx_remaining + ns.tx_remaining)
            .sum()
    }

    /// Nodes that would form the cluster now: this node and every live
    /// peer, capped by the edition's cluster size (earliest started first).
    fn candidate_members(&self) -> Vec<NodeId> {
        let mut nodes: Vec<(u64, NodeId)> = vec![(self.started_ms, self.id)];
        nodes.extend(
            self.peers
                .iter()
                .map(|(id, peer)| (peer.hb.started_ms, *id)),
        );
        let limit = self.settings.edition.max_cluster_size();
        if nodes.len() > limit {
            nodes.sort_by_key(|(started, id)| (*started, std::cmp::Reverse(*id)));
            nodes.truncate(limit);
        }
        let mut ids: Vec<NodeId> = nodes.into_iter().map(|(_, id)| id).collect();
        ids.sort();
        ids
    }

    /// Advances the state machine: expires silent peers, forms or adopts a
    /// cluster, and runs migrations.
    pub fn tick(&mut self, now: Instant) {
        self.expire_peers(now);
        let members = self.candidate_members();
        if members != self.candidate {
            self.candidate = members.clone();
            self.candidate_since = now;
        }
        if !members.contains(&self.id) {
            if !self.excluded {
                self.excluded = true;
                self.cluster = None;
                self.events.emit(
                    "orphaned",
                    json!({
                        "reason": "cluster size limit",
                        "limit": self.settings.edition.max_cluster_size(),
                    }),
                );
            }
            self.update_remaining();
            return;
        }
        self.excluded = false;
        let principal = members.iter().copied().max().unwrap_or(self.id);
        let member_ids: Vec<u64> = members.iter().map(|n| n.0).collect();
        if principal == self.id {
            // A member that restarted with the same node id (`node-id` in its
            // config) is a new node all the same.
            let restarted = self.cluster.as_ref().is_some_and(|c| {
                c.members
                    .iter()
                    .zip(&c.starts)
                    .any(|(n, started)| self.started_ms_of(NodeId(*n)) != Some(*started))
            });
            let changed = restarted
                || self
                    .cluster
                    .as_ref()
                    .is_none_or(|c| c.principal != self.id.0 || c.members != member_ids);
            // Wait for the candidate set to settle, so a burst of arrivals
            // makes one cluster change rather than several.
            let settled = now.duration_since(self.candidate_since) >= self.interval * 2;
            // And, as the server's clustering does, for a clique: every
            // member hears every other one (the server evicts the others
            // from its proposal; the sim waits until the heartbeats agree).
            let clique = members.iter().filter(|m| **m != self.id).all(|m| {
                self.peers.get(m).is_some_and(|peer| {
                    members
                        .iter()
                        .filter(|o| *o != m)
                        .all(|o| peer.hb.adjacency.iter().any(|a| a.node == o.0))
                })
            });
            // And never take a node away from a cluster it is still in:
            // a member of another principal's cluster comes along with every
            // member of that cluster it still hears, or not yet. (The
            // server's orphan asks an existing cluster's principal to take
            // it in; it does not split that cluster. Without this, a new
            // node that heard one member of a cluster before the others
            // formed a cluster with that member alone, for about a second.)
            let whole = members.iter().filter(|m| **m != self.id).all(|m| {
                self.peers.get(m).is_none_or(|peer| {
                    peer.hb.cluster.as_ref().is_none_or(|view| {
                        view.principal == self.id.0
                            || view.members.iter().all(|other| {
                                members.iter().any(|c| c.0 == *other)
                                    || !peer.hb.adjacency.iter().any(|a| a.node == *other)
                            })
                    })
                })
            });
            if (changed && settled && clique && whole) || self.recluster_requested {
                self.recluster_requested = false;
                let view = self.form(&members);
                self.adopt(view, now);
            }
        } else if let Some(view) = self
            .peers
            .get(&principal)
            .and_then(|peer| peer.hb.cluster.clone())
        {
            let new_key = self.cluster.as_ref().map(|c| c.key) != Some(view.key);
            // A view formed before this process started is not ours to
            // adopt, even if it lists our node id. Otherwise a member adopts
            // its principal's view as sent, as the server's paxos acceptor
            // learns the succession list verbatim: it never compares the
            // list with the peers it hears itself (one that has not heard a
            // joiner yet, or still hears a member that left, follows all the
            // same instead of staying on the old key).
            let formed_with_us = view
                .members
                .iter()
                .zip(&view.starts)
                .any(|(n, started)| *n == self.id.0 && *started == self.started_ms);
            if view.principal == principal.0 && new_key && formed_with_us {
                self.adopt(view, now);
            }
        }
        self.migrate(now);
    }

    fn expire_peers(&mut self, now: Instant) {
        let timeout = self.timeout;
        let gone: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, peer)| now.duration_since(peer.last_heard) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(peer) = self.peers.remove(&id) {
                self.events.emit(
                    "leave",
                    json!({"peer": id.to_string(), "heartbeat": peer.hb.hb_addrs, "reason": "timeout"}),
                );
            }
        }
    }

    fn started_ms_of(&self, node: NodeId) -> Option<u64> {
        if node == self.id {
            Some(self.started_ms)
        } else {
            self.peers.get(&node).map(|p| p.hb.started_ms)
        }
    }

    fn lineage_of(&self, node: NodeId) -> Option<Lineage> {
        if node == self.id {
            self.lineage
        } else {
            self.peers.get(&node).and_then(|p| p.hb.lineage)
        }
    }

    fn holds(&self, node: NodeId, ns: usize, pid: usize) -> bool {
        if node == self.id {
            self.namespaces[ns].held.get(pid)
        } else {
            self.acked.contains(&(node, ns, pid))
                || self.peers.get(&node).is_some_and(|p| p.held[ns].get(pid))
        }
    }

    /// Whether `node` holds a current (not stale) copy of `pid`.
    fn holds_current(&self, node: NodeId, ns: usize, pid: usize) -> bool {
        if node == self.id {
            self.namespaces[ns].held.get(pid) && !self.namespaces[ns].stale.get(pid)
        } else {
            self.acked.contains(&(node, ns, pid))
                || self
                    .peers
                    .get(&node)
                    .is_some_and(|p| p.held[ns].get(pid) && !p.stale[ns].get(pid))
        }
    }

    /// The node a partition's copies come from (and its working master):
    /// the best-ranked source holding a current copy, else the
    /// best-ranked one holding a stale copy (every copy came back from a
    /// device: the others merge into it, and it into the first owner
    /// that turns current).
    fn source_of(
        &self,
        index: usize,
        pid: usize,
        members: &[NodeId],
        quiesced: &[NodeId],
        sources: &[NodeId],
    ) -> Option<NodeId> {
        let ranked = ranking(pid, members, quiesced);
        ranked
            .iter()
            .copied()
            .find(|n| sources.contains(n) && self.holds_current(*n, index, pid))
            .or_else(|| {
                ranked
                    .iter()
                    .copied()
                    .find(|n| sources.contains(n) && self.holds(*n, index, pid))
            })
    }

    /// The principal's decision: the new cluster's key, members, quiesced
    /// nodes, lineage and dead partitions.
    fn form(&self, members: &[NodeId]) -> ClusterView {
        let quiesced: Vec<u64> = members
            .iter()
            .filter(|n| {
                if **n == self.id {
                    self.quiesce_pending
                } else {
                    self.peers.get(n).is_some_and(|p| p.hb.quiesce_pending)
                }
            })
            .map(|n| n.0)
            .collect();
        // The oldest lineage wins; a cluster of empty nodes starts one.
        let existing = members.iter().filter_map(|n| self.lineage_of(*n)).min();
        let (lineage, fresh) = match existing {
            Some(lineage) => (lineage, false),
            None => (
                Lineage {
                    created_ms: epoch_ms(),
                    id: random_u64(),
                },
                true,
            ),
        };
        let in_lineage: Vec<NodeId> = members
            .iter()
            .copied()
            .filter(|n| self.lineage_of(*n) == Some(lineage))
            .collect();
        let mut dead_reports = Vec::new();
        for (index, ns) in self.namespaces.iter().enumerate() {
            // What the members knew dead before, to count the new losses.
            let mut before = Bitmap::empty();
            for node in &in_lineage {
                if *node == self.id {
                    before.union_with(&ns.dead);
                } else if let Some(peer) = self.peers.get(node) {
                    before.union_with(&peer.dead[index]);
                }
            }
            // Dead: no member of the lineage holds a copy now. A copy that
            // comes back later (a node that cold-started from its device
            // file) makes the partition live again.
            let mut dead = Bitmap::empty();
            let mut newly_lost = 0;
            if !fresh {
                for pid in 0..N_PARTITIONS {
                    if !in_lineage.iter().any(|n| self.holds(*n, index, pid)) {
                        dead.set(pid, true);
                        if !before.get(pid) {
                            newly_lost += 1;
                        }
                    }
                }
            }
            dead_reports.push(DeadReport {
                name: ns.config.name.clone(),
                dead: dead.to_hex(),
                newly_lost,
            });
        }
        ClusterView {
            key: new_cluster_key(),
            principal: self.id.0,
            members: members.iter().map(|n| n.0).collect(),
            starts: members
                .iter()
                .map(|n| self.started_ms_of(*n).unwrap_or(0))
                .collect(),
            quiesced,
            lineage,
            fresh,
            dead: dead_reports,
        }
    }

    /// Joins the cluster `view` describes.
    fn adopt(&mut self, view: ClusterView, now: Instant) {
        let members: Vec<NodeId> = view.members.iter().map(|n| NodeId(*n)).collect();
        let quiesced: Vec<NodeId> = view.quiesced.iter().map(|n| NodeId(*n)).collect();
        let switching = self.lineage != Some(view.lineage);
        if switching {
            // Copies of another lineage are not this cluster's data: a
            // restarted node's empty partitions must not pass for replicas.
            let discarded: usize = self.namespaces.iter().map(|ns| ns.held.count()).sum();
            if discarded > 0 {
                self.events
                    .emit("lineage_discarded", json!({"partitions": discarded}));
            }
            for ns in &mut self.namespaces {
                ns.held = Bitmap::empty();
                ns.dead = Bitmap::empty();
                ns.stale = Bitmap::empty();
                ns.records.clear();
            }
            self.lineage = Some(view.lineage);
        }
        for ns in &mut self.namespaces {
            let rf = effective_rf(ns.config.replication_factor, members.len());
            ns.owners = OwnerTable::new(&members, &quiesced, rf);
            let report = view.dead.iter().find(|d| d.name == ns.config.name);
            let before = std::mem::take(&mut ns.dead);
            ns.dead = report
                .and_then(|d| Bitmap::from_hex(&d.dead))
                .unwrap_or_default();
            // A copy this node holds is never dropped for being reported
            // dead: the principal's picture may be an interval old.
            ns.dead.subtract(&ns.held);
            if !switching {
                let mut revived = before;
                revived.subtract(&ns.dead);
                if !revived.is_empty() {
                    self.events.emit(
                        "partitions_revived",
                        json!({
                            "namespace": ns.config.name,
                            "count": revived.count(),
                            "dead_partitions": ns.dead.count(),
                        }),
                    );
                }
            }
            if view.fresh && switching {
                let mut owned = ns.owners.owned_by(self.id);
                owned.subtract(&ns.dead);
                ns.held = owned;
            }
            if let Some(report) = report.filter(|d| d.newly_lost > 0) {
                self.events.emit(
                    "partitions_lost",
                    json!({
                        "namespace": ns.config.name,
                        "count": report.newly_lost,
                        "dead_partitions": ns.dead.count(),
                    }),
                );
            }
            ns.received = 0;
            ns.migrating = false;
            ns.pushed = Bitmap::empty();
            // Records of copies that were on their way belong to the old
            // plan: a partition not held is received whole again.
            let held = ns.held.clone();
            ns.records.retain(|pid, _| held.get(*pid));
        }
        // Copies in flight belong to the old cluster's plan.
        self.in_flight.clear();
        self.acked.clear();
        self.outgoing.clear();
        self.cluster_generation += 1;
        self.last_rebalance = now;
        self.events.emit(
            "cluster_changed",
            json!({
                "size": view.members.len(),
                "key": format!("{:X}", view.key),
                "principal": NodeId(view.principal).to_string(),
                "generation": self.cluster_generation,
                "members": hex_list(&view.members),
                "quiesced": hex_list(&view.quiesced),
                "fresh_lineage": view.fresh,
            }),
        );
        self.cluster = Some(view);
        self.update_remaining();
        for index in 0..self.namespaces.len() {
            let ns = &mut self.namespaces[index];
            ns.rx_initial = ns.rx_remaining;
            ns.tx_initial = ns.tx_remaining;
            if ns.rx_initial + ns.tx_initial > 0 {
                ns.migrating = true;
                self.events.emit(
                    "migration_started",
                    json!({
                        "namespace": ns.config.name,
                        "rx_partitions": ns.rx_initial,
                        "tx_partitions": ns.tx_initial,
                    }),
                );
            }
        }
    }

    /// Whether `node` has adopted the current cluster, so its reported
    /// partitions are of the current lineage and ownership. Until a peer
    /// adopts, what it holds is unknown, not missing.
    fn in_current_cluster(&self, node: NodeId) -> bool {
        let Some(cluster) = &self.cluster else {
            return false;
        };
        node == self.id
            || self
                .peers
                .get(&node)
                .and_then(|p| p.hb.cluster.as_ref())
                .is_some_and(|c| c.key == cluster.key)
    }

    /// Members of the current cluster whose copies count as sources.
    fn sources(&self) -> Vec<NodeId> {
        let Some(cluster) = &self.cluster else {
            return Vec::new();
        };
        cluster
            .members
            .iter()
            .map(|n| NodeId(*n))
            .filter(|n| *n == self.id || self.lineage_of(*n) == Some(cluster.lineage))
            .filter(|n| *n == self.id || self.peers.contains_key(n))
            .collect()
    }

    /// Receives partitions at the migration rate, drops copies every owner
    /// already has, and reports finished migrations.
    /// A dead partition of which a member of the current cluster (of the
    /// cluster's lineage) holds a copy is live again, as a real AP server
    /// merges a returning copy back (`partitions_revived`).
    fn revive(&mut self) {
        let sources = self.sources();
        for index in 0..self.namespaces.len() {
            if self.namespaces[index].dead.is_empty() {
                continue;
            }
            let mut revived = Bitmap::empty();
            for pid in 0..N_PARTITIONS {
                if self.namespaces[index].dead.get(pid)
                    && sources.iter().any(|n| {
                        (*n == self.id || self.in_current_cluster(*n)) && self.holds(*n, index, pid)
                    })
                {
                    revived.set(pid, true);
                }
            }
            if revived.is_empty() {
                continue;
            }
            let ns = &mut self.namespaces[index];
            ns.dead.subtract(&revived);
            self.events.emit(
                "partitions_revived",
                json!({
                    "namespace": ns.config.name,
                    "count": revived.count(),
                    "dead_partitions": ns.dead.count(),
                }),
            );
        }
    }

    fn migrate(&mut self, now: Instant) {
        self.revive();
        let elapsed = now.duration_since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        if !self.migrate_allowed() {
            self.migrate_tokens = 0.0;
            self.update_remaining();
            return;
        }
        let rate = self.settings.migrate_rate;
        // Cap the budget so a stalled tick does not become a burst.
        let cap = (rate * self.interval.as_secs_f64() * 2.0).max(1.0);
        self.migrate_tokens = (self.migrate_tokens + rate * elapsed).min(cap);
        let sources = self.sources();
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let members: Vec<NodeId> = cluster.members.iter().map(|n| NodeId(*n)).collect();
        let quiesced: Vec<NodeId> = cluster.quiesced.iter().map(|n| NodeId(*n)).collect();
        // A copy sent and not acknowledged within the heartbeat timeout is
        // sent again (the server retransmits migration control messages).
        let timeout = self.timeout;
        self.in_flight
            .retain(|_, sent| now.duration_since(*sent) <= timeout);
        for index in 0..self.namespaces.len() {
            for pid in 0..N_PARTITIONS {
                if self.migrate_tokens < 1.0 {
                    break;
                }
                let ns = &self.namespaces[index];
                if !ns.held.get(pid) || ns.dead.get(pid) {
                    continue;
                }
                // This node sends when it is the best-ranked holder (of a
                // current copy, if any).
                let source = self.source_of(index, pid, &members, &quiesced, &sources);
                if source != Some(self.id) {
                    // A stale copy pushes its records to the source once
                    // per cluster, to be merged there.
                    if let Some(source) =
                        source.filter(|_| ns.stale.get(pid) && !ns.pushed.get(pid))
                    {
                        if self.in_current_cluster(source) {
                            let push = self.snapshot_records(&ns.config.name, pid);
                            let namespace = ns.config.name.clone();
                            self.namespaces[index].pushed.set(pid, true);
                            self.outgoing.push(Outgoing {
                                to: source,
                                key: cluster.key,
                                namespace,
                                pid,
                                push: Some(push),
                            });
                        }
                    }
                    continue;
                }
                // A stale source (no current copy anywhere) stays stale: it
                // serves, and sends to the owners, which merge it into
                // what they hold; a current copy that appears later (one
                // of those owners) is sent back to it and merged.
                let lacking: Vec<NodeId> = ns
                    .owners
                    .owners(pid)
                    .filter(|o| {
                        *o != self.id
                            && self.in_current_cluster(*o)
                            && !self.holds_current(*o, index, pid)
                            && !self.in_flight.contains_key(&(*o, index, pid))
                    })
                    .collect();
                for owner in lacking {
                    if self.migrate_tokens < 1.0 {
                        break;
                    }
                    self.in_flight.insert((owner, index, pid), now);
                    self.outgoing.push(Outgoing {
                        to: owner,
                        key: cluster.key,
                        namespace: self.namespaces[index].config.name.clone(),
                        pid,
                        push: None,
                    });
                    self.migrate_tokens -= 1.0;
                }
            }
            // A copy this node does not own goes once every owner has one.
            for pid in 0..N_PARTITIONS {
                let ns = &self.namespaces[index];
                if !ns.held.get(pid) || ns.owners.is_owner(pid, self.id) {
                    continue;
                }
                let all_owners_have_it = ns.owners.owners(pid).all(|owner| {
                    sources.contains(&owner)
                        && self.in_current_cluster(owner)
                        && self.holds_current(owner, index, pid)
                });
                let pushed = !ns.stale.get(pid) || ns.pushed.get(pid);
                if all_owners_have_it && pushed {
                    let ns = &mut self.namespaces[index];
                    ns.held.set(pid, false);
                    ns.stale.set(pid, false);
                    ns.records.remove(&pid);
                }
            }
        }
        self.update_remaining();
        if now.duration_since(self.last_progress) >= Duration::from_secs(1) {
            self.last_progress = now;
            for ns in &self.namespaces {
                if ns.migrating {
                    self.events.emit(
                        "migration_progress",
                        json!({
                            "namespace": ns.config.name,
                            "rx_remaining": ns.rx_remaining,
                            "tx_remaining": ns.tx_remaining,
                            "in_flight": self.in_flight.len(),
                        }),
                    );
                }
            }
        }
        for ns in &mut self.namespaces {
            if ns.migrating && ns.rx_remaining + ns.tx_remaining == 0 {
                ns.migrating = false;
                self.events.emit(
                    "migration_finished",
                    json!({"namespace": ns.config.name, "rx_completed": ns.received}),
                );
            }
        }
    }

    /// Recomputes the remaining migrations: partitions to receive (owned,
    /// missing, not dead) and to send (this node is the best-ranked holder
    /// and some owner lacks the partition).
    fn update_remaining(&mut self) {
        let Some(cluster) = self.cluster.clone() else {
            for ns in &mut self.namespaces {
                ns.rx_remaining = 0;
                ns.tx_remaining = 0;
            }
            return;
        };
        let members: Vec<NodeId> = cluster.members.iter().map(|n| NodeId(*n)).collect();
        let quiesced: Vec<NodeId> = cluster.quiesced.iter().map(|n| NodeId(*n)).collect();
        let sources = self.sources();
        for index in 0..self.namespaces.len() {
            let ns = &self.namespaces[index];
            let mut rx = 0;
            let mut tx = 0;
            for pid in 0..N_PARTITIONS {
                if ns.dead.get(pid) {
                    continue;
                }
                // A stale copy is received again only from a current one.
                let refresh = ns.stale.get(pid)
                    && sources
                        .iter()
                        .any(|n| *n != self.id && self.holds_current(*n, index, pid));
                if ns.owners.is_owner(pid, self.id) && (!ns.held.get(pid) || refresh) {
                    rx += 1;
                }
                if ns.held.get(pid) {
                    let someone_lacks = ns.owners.owners(pid).any(|o| {
                        o != self.id
                            && self.in_current_cluster(o)
                            && !self.holds_current(o, index, pid)
                    });
                    if someone_lacks
                        && self.source_of(index, pid, &members, &quiesced, &sources)
                            == Some(self.id)
                    {
                        tx += 1;
                    }
                }
            }
            let ns = &mut self.namespaces[index];
            ns.rx_remaining = rx;
            ns.tx_remaining = tx;
        }
    }

    // ----- fabric ------------------------------------------------------------

    /// Partition copies decided since the last call, for the fabric to send.
    pub fn take_outgoing(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outgoing)
    }

    /// A copy of `namespace`/`pid` arrived over the fabric from `from`,
    /// decided in cluster `key`. It is kept when this node is in that
    /// cluster and owns the partition; returns whether it was kept. The
    /// copy counts as received only now, on receipt.
    pub fn on_partition(&mut self, from: NodeId, key: u64, namespace: &str, pid: usize) -> bool {
        let current = self.cluster.as_ref().map(|c| c.key);
        if current != Some(key) || !self.migrate_allowed() || pid >= N_PARTITIONS {
            return false;
        }
        let id = self.id;
        let Some(ns) = self
            .namespaces
            .iter_mut()
            .find(|n| n.config.name == namespace)
        else {
            return false;
        };
        if !ns.owners.is_owner(pid, id) {
            return false;
        }
        if ns.dead.get(pid) {
            // The sender holds a copy: the partition is live again.
            ns.dead.set(pid, false);
            self.events.emit(
                "partitions_revived",
                json!({"namespace": ns.config.name, "count": 1, "dead_partitions": ns.dead.count()}),
            );
        }
        if !ns.held.get(pid) || ns.stale.get(pid) {
            ns.held.set(pid, true);
            ns.stale.set(pid, false);
            ns.received += 1;
        }
        let _ = from;
        true
    }

    /// The node `acker` acknowledged a copy this node sent to `to`. Only an
    /// acknowledgement from the node the copy was meant for counts (the
    /// server's `emigration_handle_ctrl_ack` logs "unexpected source"
    /// otherwise); returns whether it counted.
    pub fn on_ack(
        &mut self,
        to: NodeId,
        acker: NodeId,
        key: u64,
        namespace: &str,
        pid: usize,
        kept: bool,
    ) -> bool {
        let Some(index) = self
            .namespaces
            .iter()
            .position(|n| n.config.name == namespace)
        else {
            return false;
        };
        if acker != to {
            self.events.emit(
                "fabric_unexpected_source",
                json!({"expected": to.to_string(), "source": acker.to_string()}),
            );
            return false;
        }
        if self.cluster.as_ref().map(|c| c.key) != Some(key) {
            return false;
        }
        self.in_flight.remove(&(to, index, pid));
        if kept {
            self.acked.insert((to, index, pid));
        }
        kept
    }

    // ----- storage -----------------------------------------------------------

    /// This node's data lineage (`sim_lineage`), once it formed or joined a
    /// cluster or read one back from a device file.
    pub fn lineage(&self) -> Option<Lineage> {
        self.lineage
    }

    /// What namespace `index` persists now: the lineage and the copies
    /// held (see [`crate::storage`]).
    pub fn stored(&self, index: usize) -> crate::storage::Stored {
        let ns = &self.namespaces[index];
        crate::storage::Stored {
            lineage: self.lineage,
            held: ns.held.clone(),
            records: ns
                .records
                .iter()
                .filter(|(pid, records)| ns.held.get(**pid) && !records.is_empty())
                .map(|(pid, records)| (*pid, records.clone()))
                .collect(),
        }
    }

    /// Takes in what a cold start read back, per namespace (`None` for a
    /// namespace without a device): the node's lineage becomes the oldest
    /// one read, and each namespace of that lineage holds its copies
    /// again. Call before the first [`NodeState::tick`].
    pub fn restore(&mut self, stored: &[Option<crate::storage::Stored>]) {
        let lineage = stored.iter().flatten().filter_map(|s| s.lineage).min();
        let Some(lineage) = lineage else {
            return;
        };
        self.lineage = Some(lineage);
        for (ns, stored) in self.namespaces.iter_mut().zip(stored) {
            if let Some(stored) = stored.as_ref().filter(|s| s.lineage == Some(lineage)) {
                ns.held = stored.held.clone();
                ns.stale = stored.held.clone();
                ns.records = stored
                    .records
                    .iter()
                    .filter(|(pid, _)| ns.held.get(**pid))
                    .map(|(pid, records)| (*pid, records.clone()))
                    .collect();
            }
        }
    }

    // ----- data plane --------------------------------------------------------

    fn namespace_index(&self, namespace: &str) -> Option<usize> {
        self.namespaces
            .iter()
            .position(|n| n.config.name == namespace)
    }

    /// The partition's working master: the best-ranked member of the
    /// current cluster (of its lineage) that holds a copy, as the
    /// migration source is chosen. While a new owner still waits for its
    /// copy, the node that has one serves (the server's acting master).
    fn working_master(&self, index: usize, pid: usize) -> Option<NodeId> {
        let cluster = self.cluster.as_ref()?;
        let members: Vec<NodeId> = cluster.members.iter().map(|n| NodeId(*n)).collect();
        let quiesced: Vec<NodeId> = cluster.quiesced.iter().map(|n| NodeId(*n)).collect();
        let sources = self.sources();
        self.source_of(index, pid, &members, &quiesced, &sources)
    }

    /// Where a transaction on `namespace`/`pid` is served. A client's map
    /// may be stale (or name a final master still waiting for its copy):
    /// the transaction is then proxied to the working master. `hops` is
    /// how often it was proxied already: a proxied transaction is served
    /// by the node it reached when that node holds a copy; otherwise (its
    /// sender's picture was a heartbeat old) it is proxied once more, up
    /// to [`MAX_PROXY_HOPS`], then answered "unavailable".
    pub fn route(&self, namespace: &str, pid: usize, hops: u8) -> Route {
        let proxied = hops > 0;
        let Some(index) = self.namespace_index(namespace) else {
            return Route::UnknownNamespace;
        };
        if self.cluster.is_none() || pid >= N_PARTITIONS {
            return Route::Unavailable;
        }
        let ns = &self.namespaces[index];
        // In a cluster formed fresh (empty nodes), every final owner holds
        // its copy from the start: until their heartbeats say so, the
        // final master stands for the working master.
        let fresh = self.cluster.as_ref().is_some_and(|c| c.fresh);
        let working = self
            .working_master(index, pid)
            .or_else(|| ns.owners.owners(pid).next().filter(|_| fresh));
        match working {
            Some(node) if node == self.id && ns.held.get(pid) => Route::Local(index),
            Some(_) if proxied && ns.held.get(pid) => Route::Local(index),
            Some(node) if node != self.id && hops < MAX_PROXY_HOPS => Route::Proxy(node),
            Some(_) => Route::Unavailable,
            None if ns.dead.get(pid) => Route::Dead(index),
            None => Route::Unavailable,
        }
    }

    /// The record `digest` of partition `pid` in namespace `index`, from
    /// this node's copy.
    pub fn read_record(&self, index: usize, pid: usize, digest: &Digest) -> Option<Record> {
        let ns = self.namespaces.get(index)?;
        if !ns.held.get(pid) {
            return None;
        }
        ns.records.get(&pid)?.get(digest).cloned()
    }

    /// Applies a write (or delete) at the working master: the new version
    /// is in this node's copy at once, and must reach every member that
    /// owns the partition or holds a copy of it before the client is
    /// answered (see `node.rs`).
    pub fn write_record(
        &mut self,
        index: usize,
        pid: usize,
        digest: &Digest,
        request: &Request,
        now_ms: u64,
    ) -> Written {
        let failed = |code| Written {
            result: code,
            generation: 0,
            replicas: Vec::new(),
            record: None,
        };
        if index >= self.namespaces.len() || !self.namespaces[index].held.get(pid) {
            return failed(result::PARTITION_UNAVAILABLE);
        }
        let existing = self.namespaces[index]
            .records
            .get(&pid)
            .and_then(|p| p.get(digest));
        let outcome = match request.kind() {
            Ok(Kind::Delete) => msg::apply_delete(existing, request),
            Ok(Kind::Write) => msg::apply_write(existing, request, now_ms),
            Ok(_) => Err(result::PARAMETER),
            Err(code) => Err(code),
        };
        let new = match outcome {
            Ok(new) => new,
            Err(code) => return failed(code),
        };
        let records = self.namespaces[index].records.entry(pid).or_default();
        let generation = new.as_ref().map_or(0, |r| r.generation);
        let wire = new.as_ref().map(|r| WireRecord::from_record(digest, r));
        match new {
            Some(record) => {
                records.insert(*digest, record);
            }
            None => {
                records.remove(digest);
            }
        }
        let sources = self.sources();
        let ns = &self.namespaces[index];
        let replicas = self
            .present()
            .into_iter()
            .filter(|n| {
                ns.owners.is_owner(pid, *n) || (sources.contains(n) && self.holds(*n, index, pid))
            })
            .collect();
        Written {
            result: result::OK,
            generation,
            replicas,
            record: wire,
        }
    }

    /// A replica write from the working master: the record's new version
    /// (or its deletion) replaces this node's. Applied whether or not the
    /// copy is complete yet (a migration may still be on its way: it will
    /// not overwrite the newer version). Returns whether it was applied.
    pub fn on_replica_write(
        &mut self,
        namespace: &str,
        pid: usize,
        digest: &Digest,
        record: Option<Record>,
    ) -> bool {
        let Some(index) = self.namespace_index(namespace) else {
            return false;
        };
        if pid >= N_PARTITIONS || self.cluster.is_none() {
            return false;
        }
        let records = self.namespaces[index].records.entry(pid).or_default();
        match record {
            Some(record) => {
                records.insert(*digest, record);
            }
            None => {
                records.remove(digest);
            }
        }
        true
    }

    /// Records of a partition copy on their way to this node, decided in
    /// cluster `key`: merged when this node is in that cluster and owns
    /// the partition, each record kept only when newer than the one here.
    /// A merge push (`merge`) is merged when this node holds the
    /// partition, whether it owns it or not.
    pub fn on_records(
        &mut self,
        key: u64,
        namespace: &str,
        pid: usize,
        records: &[WireRecord],
        merge: bool,
    ) {
        if self.cluster.as_ref().map(|c| c.key) != Some(key) || pid >= N_PARTITIONS {
            return;
        }
        let id = self.id;
        let Some(index) = self.namespace_index(namespace) else {
            return;
        };
        let ns = &mut self.namespaces[index];
        let wanted = if merge {
            ns.held.get(pid)
        } else {
            ns.owners.is_owner(pid, id)
        };
        if !wanted {
            return;
        }
        let partition = ns.records.entry(pid).or_default();
        for wire in records {
            let Some((digest, record)) = wire.to_record() else {
                continue;
            };
            let newer = partition
                .get(&digest)
                .is_none_or(|old| record.newer_than(old));
            if newer {
                partition.insert(digest, record);
            }
        }
    }

    /// The records of this node's copy of `namespace`/`pid`, to send with
    /// a migration.
    pub fn snapshot_records(&self, namespace: &str, pid: usize) -> Vec<WireRecord> {
        let Some(index) = self.namespace_index(namespace) else {
            return Vec::new();
        };
        let ns = &self.namespaces[index];
        if !ns.held.get(pid) {
            return Vec::new();
        }
        ns.records
            .get(&pid)
            .map(|p| {
                p.iter()
                    .map(|(d, r)| WireRecord::from_record(d, r))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Counts one data-plane transaction of namespace `namespace` under
    /// `counter` (one of [`DATA_COUNTERS`]).
    pub fn count_transaction(&mut self, namespace: &str, counter: &'static str) {
        if let Some(index) = self.namespace_index(namespace) {
            *self.namespaces[index]
                .transactions
                .entry(counter)
                .or_default() += 1;
        }
    }

    /// A data-plane counter of namespace `index` (0 when never counted).
    pub fn transactions(&self, index: usize, counter: &str) -> u64 {
        self.namespaces
            .get(index)
            .and_then(|ns| ns.transactions.get(counter))
            .copied()
            .unwrap_or(0)
    }

    /// Record counts of namespace `index` on this node.
    pub fn objects(&self, index: usize) -> Objects {
        let mut objects = Objects::default();
        let Some(ns) = self.namespaces.get(index) else {
            return objects;
        };
        for (pid, records) in &ns.records {
            if !ns.held.get(*pid) {
                continue;
            }
            objects.total += records.len();
            match ns.owners.replica_index(*pid, self.id) {
                Some(0) => objects.master += records.len(),
                Some(_) => objects.prole += records.len(),
                None => {}
            }
        }
        objects
    }

    // ----- quiesce ---------------------------------------------------------

    /// Whether this node's quiesce took effect at the current cluster.
    pub fn effectively_quiesced(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.quiesced.contains(&self.id.0))
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn build_versions_compare_numerically() {
        let at = |build: &str| Settings {
            build: build.to_string(),
            ..Settings::default()
        };
        assert!(at("7.1.0.0").build_at_least(7, 1));
        assert!(at("10.0.0.1").build_at_least(7, 1));
        assert!(!at("6.4.0.7").build_at_least(7, 1));
        assert!(!at("7.0.0.9").build_at_least(7, 1));
        assert!(at("dev").build_at_least(7, 1));
    }
}

#[cfg(test)]
mod tests {
    //! Whole-cluster scenarios driven in-process: heartbeats are handed from
    //! node to node directly, time is advanced by hand.

    use super::*;
    use crate::config::DEFAULT_CONFIG;

    struct Cluster {
        nodes: Vec<NodeState>,
        up: Vec<bool>,
        now: Instant,
        /// Heartbeats not delivered, as (from, to) node indexes.
        blocked: BTreeSet<(usize, usize)>,
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    impl Cluster {
        fn new(count: usize, edition: Edition, rate: f64) -> Cluster {
            let now = Instant::now();
            let nodes = (0..count)
                .map(|i| {
                    let text = DEFAULT_CONFIG
                        .replace("port 3000", &format!("port {}", 3000 + i * 10))
                        .replace("port 3002", &format!("port {}", 3002 + i * 10))
                        .replace("interval 150", "interval 100");
                    let config = Config::parse(&text).unwrap();
                    let settings = Settings {
                        edition,
                        migrate_rate: rate,
                        ..Settings::default()
                    };
                    let mut node = NodeState::new(
                        NodeId(0x100 + i as u64),
                        config,
                        settings,
                        EventLog::memory().0,
                        now,
                    );
                    node.set_addresses(Addresses::single(LOOPBACK));
                    node
                })
                .collect();
            Cluster {
                nodes,
                up: vec![true; count],
                now,
                blocked: BTreeSet::new(),
            }
        }

        /// One interval: every live node hears every live node it dials.
        fn step(&mut self) {
            self.now += Duration::from_millis(100);
            let beats: Vec<(usize, Heartbeat, BTreeMap<String, Vec<String>>)> = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| self.up[*i])
                .map(|(i, n)| (i, n.heartbeat(), n.dial_targets()))
                .collect();
            for (from, hb, targets) in &beats {
                for (to, node) in self.nodes.iter_mut().enumerate() {
                    if to == *from || !self.up[to] || self.blocked.contains(&(*from, to)) {
                        continue;
                    }
                    let own = node.heartbeat_endpoint().unwrap();
                    if targets.values().any(|eps| eps.contains(&own)) {
                        let envelope = Envelope {
                            to: own,
                            hb: hb.clone(),
                        };
                        node.on_heartbeat(envelope, self.now).unwrap();
                    }
                }
            }
            for (i, node) in self.nodes.iter_mut().enumerate() {
                if self.up[i] {
                    node.tick(self.now);
                }
            }
            // The fabric: each copy reaches its node, which acknowledges it.
            for from in 0..self.nodes.len() {
                if !self.up[from] {
                    continue;
                }
                let sender = self.nodes[from].id;
                for out in self.nodes[from].take_outgoing() {
                    let Some(to) = self.nodes.iter().position(|n| n.id == out.to) else {
                        continue;
                    };
                    if !self.up[to] {
                        continue;
                    }
                    if let Some(records) = &out.push {
                        self.nodes[to].on_records(out.key, &out.namespace, out.pid, records, true);
                        continue;
                    }
                    let records = self.nodes[from].snapshot_records(&out.namespace, out.pid);
                    self.nodes[to].on_records(out.key, &out.namespace, out.pid, &records, false);
                    let kept =
                        self.nodes[to].on_partition(sender, out.key, &out.namespace, out.pid);
                    self.nodes[from].on_ack(out.to, out.to, out.key, &out.namespace, out.pid, kept);
                }
            }
        }

        fn run(&mut self, steps: usize) {
            for _ in 0..steps {
                self.step();
            }
        }

        fn tip_all_to_first(&mut self) {
            self.tip_all_to(0);
        }

        fn tip_all_to(&mut self, target: usize) {
            let seed = self.nodes[target].heartbeat_endpoint().unwrap();
            let (host, port) = seed.rsplit_once(':').unwrap();
            for (i, node) in self.nodes.iter_mut().enumerate() {
                if i != target {
                    assert!(node.tip(host, port.parse().unwrap()));
                }
            }
        }

        fn keys(&self) -> BTreeSet<u64> {
            self.nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| self.up[*i])
                .map(|(_, n)| n.cluster.as_ref().map(|c| c.key).unwrap_or(0))
                .collect()
        }

        fn settled(&mut self, max_steps: usize) -> bool {
            for _ in 0..max_steps {
                self.step();
                let live = self.nodes.iter().enumerate().filter(|(i, _)| self.up[*i]);
                let size = live.clone().count();
                if self.keys().len() == 1
                    && live
                        .clone()
                        .all(|(_, n)| n.cluster.as_ref().is_some_and(|c| c.members.len() == size))
                    && live.clone().all(|(_, n)| n.integrity())
                    && live
                        .clone()
                        .all(|(_, n)| n.migrate_partitions_remaining() == 0)
                {
                    return true;
                }
            }
            false
        }

        fn dead(&self, node: usize) -> usize {
            self.nodes[node].namespaces[0].dead.count()
        }
    }

    #[test]
    fn a_lone_node_forms_a_cluster_of_one_holding_everything() {
        let mut cluster = Cluster::new(1, Edition::Community, 1000.0);
        assert!(!cluster.nodes[0].is_member());
        cluster.run(3);
        let node = &cluster.nodes[0];
        assert!(node.is_member() && node.integrity());
        assert_eq!(node.namespaces[0].held.count(), N_PARTITIONS);
        assert_eq!(node.migrate_partitions_remaining(), 0);
    }

    #[test]
    fn one_tip_joins_three_nodes_and_migrations_drain() {
        let mut cluster = Cluster::new(3, Edition::Community, 2000.0);
        cluster.run(3);
        // Node 2 only tips node 1, node 1 tips node 0: adjacency does the rest.
        let ep0 = cluster.nodes[0].heartbeat_endpoint().unwrap();
        let ep1 = cluster.nodes[1].heartbeat_endpoint().unwrap();
        let split = |ep: &str| {
            let (h, p) = ep.rsplit_once(':').unwrap();
            (h.to_string(), p.parse::<u16>().unwrap())
        };
        let (h0, p0) = split(&ep0);
        let (h1, p1) = split(&ep1);
        assert!(cluster.nodes[1].tip(&h0, p0));
        assert!(cluster.nodes[2].tip(&h1, p1));
        assert!(!cluster.nodes[2].tip(&h1, p1), "a known seed is refused");
        assert!(cluster.settled(100));
        for node in &cluster.nodes {
            assert_eq!(node.cluster.as_ref().unwrap().members.len(), 3);
            assert_eq!(node.cluster.as_ref().unwrap().principal, 0x102);
        }
        // RF 2 over 3 nodes: every partition has exactly two copies.
        for pid in 0..N_PARTITIONS {
            let copies = cluster
                .nodes
                .iter()
                .filter(|n| n.namespaces[0].held.get(pid))
                .count();
            assert_eq!(copies, 2, "partition {pid}");
        }
    }

    #[test]
    fn a_new_node_that_hears_one_member_first_does_not_split_its_cluster() {
        let mut cluster = Cluster::new(3, Edition::Community, 2000.0);
        cluster.run(3);
        // Nodes 0 and 1 form a cluster; node 2 (the highest id) is alone.
        let ep0 = cluster.nodes[0].heartbeat_endpoint().unwrap();
        let (h0, p0) = ep0.rsplit_once(':').unwrap();
        let p0: u16 = p0.parse().unwrap();
        cluster.nodes[1].tip(h0, p0);
        let blocked = [(1usize, 2usize), (2, 1)];
        cluster.blocked.extend(blocked);
        for _ in 0..20 {
            cluster.step();
        }
        let key = |c: &Cluster, i: usize| c.nodes[i].cluster.as_ref().map(|v| v.key);
        assert_eq!(key(&cluster, 0), key(&cluster, 1), "0 and 1 in one cluster");
        // Node 2 is tipped toward node 0, and for a while cannot reach
        // node 1 (its connection is slow to come up): 0 and 1 must stay
        // together meanwhile.
        cluster.nodes[2].tip(h0, p0);
        for step in 0..20 {
            cluster.step();
            assert_eq!(
                key(&cluster, 0),
                key(&cluster, 1),
                "step {step}: node 0 was taken out of its cluster with node 1"
            );
        }
        // Once node 2 reaches node 1 too, all three form one cluster.
        cluster.blocked.clear();
        assert!(cluster.settled(100));
    }

    #[test]
    fn losing_two_nodes_at_once_loses_partitions_one_at_a_time_does_not() {
        // Two at once (before migrations could restore two copies).
        let mut cluster = Cluster::new(3, Edition::Community, 2000.0);
        cluster.tip_all_to_first();
        assert!(cluster.settled(100));
        cluster.up[1] = false;
        cluster.up[2] = false;
        cluster.run(20);
        assert!(
            cluster.dead(0) > 0,
            "partitions held only by nodes 1 and 2 are lost"
        );
        assert!(cluster.dead(0) < N_PARTITIONS);

        // One at a time, waiting for migrations in between.
        let mut cluster = Cluster::new(3, Edition::Community, 2000.0);
        cluster.tip_all_to_first();
        assert!(cluster.settled(100));
        cluster.up[2] = false;
        assert!(cluster.settled(100));
        cluster.up[1] = false;
        assert!(cluster.settled(100));
        assert_eq!(cluster.dead(0), 0);
        assert_eq!(cluster.nodes[0].namespaces[0].held.count(), N_PARTITIONS);
    }

    #[test]
    fn a_restarted_node_comes_back_empty_and_its_copies_do_not_count() {
        let mut cluster = Cluster::new(3, Edition::Community, 100.0);
        // Node 0 is nobody's seed, so after its restart only a tip brings it back.
        cluster.tip_all_to(2);
        assert!(cluster.settled(200));
        // Node 0 "restarts": same endpoint, new id, no data. It forms its own
        // cluster of one first (a new lineage), then is tipped back in.
        cluster.up[0] = false;
        cluster.run(15);
        let config = cluster.nodes[0].config.clone();
        let settings = cluster.nodes[0].settings.clone();
        let mut fresh = NodeState::new(
            NodeId(0x50),
            config,
            settings,
            EventLog::memory().0,
            cluster.now,
        );
        fresh.set_addresses(Addresses::single(LOOPBACK));
        cluster.nodes[0] = fresh;
        cluster.up[0] = true;
        cluster.run(5);
        assert_eq!(cluster.nodes[0].namespaces[0].held.count(), N_PARTITIONS);
        let ep1 = cluster.nodes[1].heartbeat_endpoint().unwrap();
        let (h, p) = ep1.rsplit_once(':').unwrap();
        cluster.nodes[0].tip(h, p.parse().unwrap());
        cluster.run(6);
        assert_eq!(cluster.keys().len(), 1);
        assert!(cluster.nodes[0].migrate_partitions_remaining() > 0);
        // Kill both old nodes before the restarted one received everything.
        cluster.up[1] = false;
        cluster.up[2] = false;
        cluster.run(20);
        assert!(cluster.dead(0) > 0, "empty copies must not mask the loss");
    }

    #[test]
    fn a_node_restarted_with_the_same_id_before_the_timeout_still_reclusters() {
        let mut cluster = Cluster::new(3, Edition::Community, 100.0);
        cluster.tip_all_to(2);
        assert!(cluster.settled(200));
        let key = cluster.nodes[2].cluster.as_ref().unwrap().key;
        // Node 0 restarts at once with `node-id` configured: same id, no data.
        let old = &cluster.nodes[0];
        let mut restarted = NodeState::new(
            old.id,
            old.config.clone(),
            old.settings.clone(),
            EventLog::memory().0,
            cluster.now,
        );
        restarted.started_ms += 1;
        restarted.set_addresses(Addresses::single(LOOPBACK));
        restarted.tip_clear("all").ok();
        let seed = cluster.nodes[2].heartbeat_endpoint().unwrap();
        let (h, p) = seed.rsplit_once(':').unwrap();
        restarted.tip(h, p.parse().unwrap());
        cluster.nodes[0] = restarted;
        cluster.run(6);
        assert_eq!(cluster.keys().len(), 1);
        assert_ne!(cluster.nodes[2].cluster.as_ref().unwrap().key, key);
        assert!(cluster.nodes[0].migrate_partitions_remaining() > 0);
        cluster.up[1] = false;
        cluster.up[2] = false;
        cluster.run(20);
        assert!(
            cluster.dead(0) > 0,
            "the restarted node had nothing to save"
        );
    }

    #[test]
    fn quiesced_node_hands_off_and_can_stop_without_loss() {
        let mut cluster = Cluster::new(3, Edition::Enterprise, 2000.0);
        cluster.tip_all_to_first();
        assert!(cluster.settled(100));
        cluster.nodes[1].quiesce_pending = true;
        let principal = cluster
            .nodes
            .iter()
            .position(|n| n.cluster.as_ref().unwrap().principal == n.id.0)
            .unwrap();
        let other = (principal + 1) % 3;
        assert!(
            !cluster.nodes[other].request_recluster(),
            "only the principal reclusters"
        );
        assert!(cluster.nodes[principal].request_recluster());
        assert!(cluster.settled(100));
        assert!(cluster.nodes[1].effectively_quiesced());
        assert_eq!(cluster.nodes[1].namespaces[0].held.count(), 0);
        cluster.up[1] = false;
        assert!(cluster.settled(100));
        assert_eq!(cluster.dead(0), 0);
    }

    #[test]
    fn community_clusters_stop_at_eight_nodes() {
        let mut cluster = Cluster::new(9, Edition::Community, 5000.0);
        // The ninth node starts last.
        cluster.nodes[8].started_ms += 10_000;
        cluster.tip_all_to_first();
        cluster.run(30);
        let sizes: Vec<usize> = cluster
            .nodes
            .iter()
            .map(|n| n.cluster.as_ref().map_or(0, |c| c.members.len()))
            .collect();
        assert_eq!(&sizes[..8], &[8; 8]);
        assert_eq!(sizes[8], 0, "the ninth node is refused");
        assert!(!cluster.nodes[8].is_member());
    }

    #[test]
    fn a_never_join_node_stays_alone_and_leaves_a_healthy_cluster_alone() {
        let mut cluster = Cluster::new(3, Edition::Community, 5000.0);
        let (events, store) = EventLog::memory();
        cluster.nodes[2].events = events;
        cluster.nodes[2].settings.fault = Some(Fault::NeverJoin);
        // Nodes 0 and 1 form a cluster first.
        assert!(cluster.nodes[1].tip("127.0.0.1", 3002));
        for _ in 0..100 {
            cluster.step();
            if cluster.nodes[..2]
                .iter()
                .all(|n| n.cluster.as_ref().is_some_and(|c| c.members.len() == 2))
                && cluster.nodes[0].migrate_partitions_remaining() == 0
                && cluster.nodes[1].migrate_partitions_remaining() == 0
            {
                break;
            }
        }
        let healthy = cluster.nodes[0].cluster.clone().unwrap();
        assert_eq!(healthy.members.len(), 2);
        let generation = cluster.nodes[0].cluster_generation;
        // Everyone is tipped towards everyone: the never-join node accepts
        // its tips as a real server would, but nothing comes of them.
        cluster.tip_all_to(2);
        assert!(cluster.nodes[2].tip("127.0.0.1", 3002));
        assert!(cluster.nodes[2].tip("127.0.0.1", 3012));
        assert!(cluster.nodes[2].dial_targets().is_empty());
        cluster.run(40);
        for node in &cluster.nodes[..2] {
            assert_eq!(node.cluster.as_ref(), Some(&healthy));
            assert!(!node.is_peer(NodeId(0x102)));
            assert!(!node.alumni.contains_key(&NodeId(0x102)));
            assert!(node.integrity());
        }
        assert_eq!(cluster.nodes[0].cluster_generation, generation);
        let lone = &cluster.nodes[2];
        let view = lone.cluster.as_ref().unwrap();
        assert_eq!(view.members, vec![0x102]);
        assert_ne!(view.key, healthy.key);
        assert!(lone.is_member() && lone.integrity());
        assert!(lone.peers.is_empty());
        assert_eq!(lone.counters.heartbeat_received_foreign, 0);
        assert_eq!(lone.namespaces[0].held.count(), N_PARTITIONS);
        // Each ignored sender is logged once.
        let ignored: Vec<String> = store
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "heartbeat_ignored")
            .map(|e| e["peer"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ignored.len(), 2, "{ignored:?}");
    }

    #[test]
    fn nodes_restored_from_their_devices_keep_the_lineage_and_revive_every_partition() {
        let mut cluster = Cluster::new(3, Edition::Community, 5000.0);
        cluster.tip_all_to_first();
        assert!(cluster.settled(100));
        let lineage = cluster.nodes[0].lineage().unwrap();
        let stored: Vec<crate::storage::Stored> =
            cluster.nodes.iter().map(|n| n.stored(0)).collect();
        // Every node restarts (new ids, as without `node-id`) from its file.
        let (events, store) = EventLog::memory();
        for (i, node) in cluster.nodes.iter_mut().enumerate() {
            let log = if i == 0 {
                events.clone()
            } else {
                EventLog::memory().0
            };
            let mut restarted = NodeState::new(
                NodeId(0x200 + i as u64),
                node.config.clone(),
                node.settings.clone(),
                log,
                cluster.now,
            );
            restarted.set_addresses(Addresses::single(LOOPBACK));
            restarted.restore(&[Some(stored[i].clone())]);
            *node = restarted;
        }
        // Node 0 finishes its cold start first: alone, it keeps the lineage
        // and counts what only the others hold as dead, for now.
        cluster.up = vec![true, false, false];
        cluster.run(5);
        let alone = &cluster.nodes[0];
        let view = alone.cluster.as_ref().unwrap();
        assert_eq!(view.lineage, lineage);
        assert!(!view.fresh);
        assert_eq!(alone.namespaces[0].held, stored[0].held);
        assert_eq!(cluster.dead(0), N_PARTITIONS - stored[0].held.count());
        // The others come back: every partition is live again.
        cluster.up = vec![true; 3];
        cluster.tip_all_to_first();
        assert!(cluster.settled(200));
        for i in 0..3 {
            assert_eq!(cluster.dead(i), 0);
            assert_eq!(cluster.nodes[i].lineage(), Some(lineage));
        }
        for pid in 0..N_PARTITIONS {
            let copies = cluster
                .nodes
                .iter()
                .filter(|n| n.namespaces[0].held.get(pid))
                .count();
            assert_eq!(copies, 2, "partition {pid}");
        }
        let events = store.lock().unwrap();
        let lost: u64 = events
            .iter()
            .filter(|e| e["event"] == "partitions_lost")
            .map(|e| e["count"].as_u64().unwrap())
            .sum();
        let revived: u64 = events
            .iter()
            .filter(|e| e["event"] == "partitions_revived")
            .map(|e| e["count"].as_u64().unwrap())
            .sum();
        assert_eq!(lost, (N_PARTITIONS - stored[0].held.count()) as u64);
        assert_eq!(revived, lost);
        assert!(!events.iter().any(|e| e["event"] == "lineage_discarded"));
    }

    #[test]
    fn transactions_go_to_the_working_master_and_dead_partitions_answer_dead() {
        let mut cluster = Cluster::new(3, Edition::Community, 5000.0);
        cluster.tip_all_to_first();
        assert!(cluster.settled(100));
        // A fresh cluster settles at once; before the next heartbeat tells
        // each node what the others hold, the final master stands in.
        let outsider = (0..3)
            .find(|i| !cluster.nodes[*i].namespaces[0].held.get(77))
            .unwrap();
        let master = cluster.nodes[outsider].namespaces[0]
            .owners
            .owners(77)
            .next()
            .unwrap();
        assert_eq!(
            cluster.nodes[outsider].route("test", 77, 0),
            Route::Proxy(master)
        );
        cluster.run(2);
        let pid = 77;
        let holders: Vec<usize> = (0..3)
            .filter(|i| cluster.nodes[*i].namespaces[0].held.get(pid))
            .collect();
        assert_eq!(holders.len(), 2);
        let outsider = (0..3).find(|i| !holders.contains(i)).unwrap();
        let route = cluster.nodes[outsider].route("test", pid, 0);
        let Route::Proxy(master) = route else {
            panic!("the node without a copy proxies: {route:?}");
        };
        let master = cluster.nodes.iter().position(|n| n.id == master).unwrap();
        assert!(holders.contains(&master));
        assert_eq!(cluster.nodes[master].route("test", pid, 0), Route::Local(0));
        assert_eq!(
            cluster.nodes[master].namespaces[0]
                .owners
                .replica_index(pid, cluster.nodes[master].id),
            Some(0),
            "settled: the working master is the final master"
        );
        // A proxied transaction that reached a node without a copy goes on
        // once, then is refused.
        assert!(matches!(
            cluster.nodes[outsider].route("test", pid, 1),
            Route::Proxy(_)
        ));
        assert_eq!(
            cluster.nodes[outsider].route("test", pid, MAX_PROXY_HOPS),
            Route::Unavailable
        );
        assert_eq!(
            cluster.nodes[outsider].route("nope", pid, 0),
            Route::UnknownNamespace
        );
        // Write at the master: it must reach the other holder.
        let request = crate::msg::Request {
            info1: 0,
            info2: crate::msg::INFO2_WRITE,
            info3: 0,
            generation: 0,
            record_ttl: 0,
            transaction_ttl: 0,
            namespace: Some("test".into()),
            set: None,
            key: None,
            digest: Some([0; 20]),
            ops: vec![crate::msg::Op {
                op: crate::msg::OP_WRITE,
                name: "v".into(),
                particle: crate::record::Particle {
                    kind: 1,
                    value: vec![0; 8],
                },
            }],
        };
        let written = cluster.nodes[master].write_record(0, pid, &[0; 20], &request, 5);
        assert_eq!(written.result, result::OK);
        let other = holders.iter().copied().find(|h| *h != master).unwrap();
        assert_eq!(written.replicas, vec![cluster.nodes[other].id]);
        // The two holders go at once: the partition is dead at the outsider.
        for holder in &holders {
            cluster.up[*holder] = false;
        }
        cluster.run(20);
        assert!(cluster.nodes[outsider].namespaces[0].dead.get(pid));
        assert_eq!(
            cluster.nodes[outsider].route("test", pid, 0),
            Route::Dead(0)
        );
    }

    #[test]
    fn silent_peer_leaves_after_the_timeout() {
        let mut cluster = Cluster::new(2, Edition::Community, 1000.0);
        cluster.tip_all_to_first();
        assert!(cluster.settled(100));
        cluster.up[1] = false;
        // Timeout is 10 intervals: still there after 9, gone after 12.
        cluster.run(9);
        assert_eq!(cluster.nodes[0].services().len(), 1);
        // `services` lists the cluster's members: the departed node stays
        // until the cluster re-forms without it, then it is an alumnus.
        cluster.run(6);
        assert_eq!(cluster.nodes[0].cluster.as_ref().unwrap().members.len(), 1);
        assert!(cluster.nodes[0].services().is_empty());
        assert_eq!(cluster.nodes[0].services_alumni().len(), 1);
        cluster.nodes[0].reset_alumni();
        assert!(cluster.nodes[0].services_alumni().is_empty());
    }
}
