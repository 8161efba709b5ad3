//! A running node: the service port, the heartbeat port, the dialers that
//! keep heartbeat connections to seeds and peers, and the ticker that drives
//! the state machine.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::config::{Address, Config};
use crate::events::EventLog;
use crate::fabric;
use crate::frame::{encode_info, read_frame, TYPE_INFO};
use crate::heartbeat::{decode_line, encode_line, Heartbeat, MAX_LINE};
use crate::ids::{random_u64, NodeId};
use crate::info::handle_request;
use crate::msg::{self, result, Kind, Request};
use crate::netif;
use crate::record::{from_hex, partition_id, to_hex, Particle};
use crate::state::{Addresses, Fault, NodeState, Outgoing, Route, Settings};
use crate::storage::{self, Stored};

/// Service connections idle this long are closed, like the server's
/// `proto-fd-idle-ms` default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a node under `AEROSPIKE_SIM_FAULT=exit-on-start` lives: about
/// the time a real server takes to read its config and die.
pub const EXIT_ON_START_DELAY: Duration = Duration::from_secs(1);

/// The fatal line of `AEROSPIKE_SIM_FAULT=exit-on-start` (the `fatal`
/// event's `message`, and what [`run_until`] fails with).
pub const EXIT_ON_START_MESSAGE: &str = "CRITICAL (config): this build refuses to start \
     (fault injected by AEROSPIKE_SIM_FAULT=exit-on-start); exiting with status 1";

/// Writes the server's console line for a config error it words itself,
/// e.g. `... GMT: CRITICAL (config): (cfg_ce.c:73) line 25 :: 'rack-id' is
/// enterprise-only` (`cf_crash_nostack`); nothing for the sim's own
/// wording.
pub fn log_config_refusal(events: &EventLog, error: &crate::config::ConfigError) {
    if let (Some(text), Some(source)) = (error.server_text(), error.source) {
        events.console_at("CRITICAL", "config", source, &text);
    }
}

/// The server's cold-start ticker: `as_storage_load` waits this long for
/// the devices before each `{ns} loaded: ...` line (`TICKER_INTERVAL`,
/// as/src/storage/storage.c).
pub const COLD_START_TICKER: Duration = Duration::from_secs(5);

/// Where the console lines come from in the server's source, as
/// `(context, file:line)`. The files and contexts are the server's; the
/// line numbers are the sim's stand-ins, not read from a given build.
mod source {
    pub const BEGIN: (&str, &str) = ("namespace", "namespace_ce.c:97");
    pub const READING: (&str, &str) = ("drv_ssd", "drv_ssd.c:3347");
    pub const TICKER: (&str, &str) = ("drv_ssd", "drv_ssd.c:2932");
    pub const READ_COMPLETE: (&str, &str) = ("drv_ssd", "drv_ssd.c:3311");
    pub const ENDPOINT: (&str, &str) = ("socket", "socket.c:839");
    pub const CLEAN_SHUTDOWN: (&str, &str) = ("as", "as.c:445");
}

type Shared = Arc<Mutex<NodeState>>;

/// How long the working master waits for a replica's acknowledgement
/// before it answers the client with a timeout (the write stays applied
/// where it reached: "in doubt", as on the server).
pub const REPLICA_TIMEOUT: Duration = Duration::from_millis(1000);

/// How long a node waits for the answer to a transaction it proxied.
pub const PROXY_TIMEOUT: Duration = Duration::from_millis(1500);

/// What a fabric link is handed to send.
enum LinkMsg {
    /// A partition copy (a migration): its records, then the copy itself.
    Copy(Outgoing),
    /// A request that is answered (replica write, proxy): the message, its
    /// id, and where the answer goes. Dropping the sender (the link broke)
    /// fails the request.
    Request(
        fabric::Message,
        u64,
        tokio::sync::oneshot::Sender<fabric::Message>,
    ),
}

type LinkMap = HashMap<NodeId, (mpsc::UnboundedSender<LinkMsg>, AbortOnDrop)>;

/// The node's fabric links, one per peer, shared by the ticker
/// (migrations) and the transactions (replica writes, proxies).
#[derive(Clone)]
struct Links {
    map: Arc<Mutex<LinkMap>>,
    state: Shared,
    interval: Duration,
}

impl Links {
    fn new(state: Shared, interval: Duration) -> Links {
        Links {
            map: Arc::new(Mutex::new(HashMap::new())),
            state,
            interval,
        }
    }

    fn map(&self) -> MutexGuard<'_, LinkMap> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `message` to the link to `to`, starting the link if needed.
    /// Never locks the state while holding the map.
    fn send(&self, to: NodeId, message: LinkMsg) {
        let mut map = self.map();
        if map.get(&to).is_some_and(|(_, link)| link.0.is_finished()) {
            map.remove(&to);
        }
        let (tx, _) = map.entry(to).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(fabric_link(to, self.state.clone(), rx, self.interval));
            (tx, AbortOnDrop(task))
        });
        let _ = tx.send(message);
    }

    /// Stops the links to nodes that are no longer peers.
    fn retain_peers(&self) {
        let peers: Vec<NodeId> = {
            let map = self.map();
            map.keys().copied().collect()
        };
        let gone: Vec<NodeId> = {
            let st = lock(&self.state);
            peers.into_iter().filter(|n| !st.is_peer(*n)).collect()
        };
        let mut map = self.map();
        map.retain(|node, (_, link)| !gone.contains(node) && !link.0.is_finished());
    }

    /// Sends a request to `to` and waits for its answer; `None` when the
    /// link broke or `timeout` passed.
    async fn request(
        &self,
        to: NodeId,
        message: fabric::Message,
        id: u64,
        timeout: Duration,
    ) -> Option<fabric::Message> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(to, LinkMsg::Request(message, id, tx));
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

/// A fresh id for a fabric request.
fn next_request_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Locks the state. A panic while holding the lock cannot leave the state
/// half-updated in a way that matters more than stopping would, so a
/// poisoned lock is used as is.
fn lock(state: &Shared) -> MutexGuard<'_, NodeState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts one open connection in a [`crate::state::Counters`] field for as
/// long as it lives, so a task that is aborted still gives its count back.
struct Counted {
    state: Shared,
    field: fn(&mut NodeState) -> &mut u64,
}

impl Counted {
    fn new(state: &Shared, field: fn(&mut NodeState) -> &mut u64) -> Counted {
        *field(&mut lock(state)) += 1;
        Counted {
            state: state.clone(),
            field,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        let count = (self.field)(&mut st);
        *count = count.saturating_sub(1);
    }
}

/// Aborts its task when dropped, so that stopping a node (returning from,
/// or dropping, [`run_until`]) stops every task it started.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn heartbeat_connections(st: &mut NodeState) -> &mut u64 {
    &mut st.counters.heartbeat_connections
}

fn client_connections(st: &mut NodeState) -> &mut u64 {
    &mut st.counters.client_connections
}

/// Starts a node and runs it until SIGTERM or SIGINT; returns the signal's
/// name. Fails only when a port cannot be bound.
pub async fn run(
    config: Config,
    settings: Settings,
    events: EventLog,
    config_source: &str,
) -> Result<&'static str, String> {
    run_until(config, settings, events, config_source, wait_for_signal()).await
}

/// Starts a node and runs it until `shutdown` completes, returning what it
/// returned; for embedding nodes in a test process without taking over its
/// signals. Fails only when a port cannot be bound, or under
/// `AEROSPIKE_SIM_FAULT=exit-on-start`: then it binds nothing and fails with
/// [`EXIT_ON_START_MESSAGE`] after [`EXIT_ON_START_DELAY`] (unless `shutdown`
/// comes first).
pub async fn run_until(
    config: Config,
    settings: Settings,
    events: EventLog,
    config_source: &str,
    shutdown: impl std::future::Future<Output = &'static str>,
) -> Result<&'static str, String> {
    let id = config
        .node_id
        .unwrap_or_else(|| NodeId::generate(config.service_port));
    let events = events.for_node(id.to_string());
    tokio::pin!(shutdown);
    // A Community build refuses Enterprise-only lines while reading its
    // config, before anything else (the binary refuses them earlier, in
    // `Config::parse_for`; this covers configs parsed edition-neutrally).
    if let Err(e) = config.check_edition(settings.enterprise()) {
        log_config_refusal(&events, &e);
        events.emit(
            "config_error",
            json!({"path": config_source, "line": e.line, "message": e.message}),
        );
        return Err(format!("{config_source}: {e}"));
    }
    if settings.fault == Some(Fault::ExitOnStart) {
        tokio::select! {
            reason = &mut shutdown => {
                events.emit("shutdown", json!({"signal": reason}));
                return Ok(reason);
            }
            _ = tokio::time::sleep(EXIT_ON_START_DELAY) => {}
        }
        events.emit(
            "fatal",
            json!({
                "message": EXIT_ON_START_MESSAGE,
                "fault": Fault::ExitOnStart.name(),
                "build": settings.build,
                "edition": settings.edition.long_name(),
                "config": config_source,
            }),
        );
        return Err(EXIT_ON_START_MESSAGE.to_string());
    }
    // Cold start: device namespaces read their files back before any port
    // is bound, as the server does (FIELD-NOTES section 3).
    let stored = tokio::select! {
        stored = cold_start(&config, &settings, &events) => stored?,
        reason = &mut shutdown => {
            events.emit("shutdown", json!({"signal": reason}));
            return Ok(reason);
        }
    };
    // Writing what was read back checks the files can be written (and
    // creates missing ones) before the node starts.
    for (ns, stored) in config.namespaces.iter().zip(&stored) {
        if let (Some(device), Some(stored)) = (&ns.device, stored) {
            storage::write_device(device, &ns.name, stored)?;
        }
    }
    let (interfaces, seam) = match &settings.interfaces {
        Some(list) => (list.clone(), true),
        None => (netif::enumerate()?, false),
    };
    let resolve = |address: &Address, what: &str| {
        netif::resolve(address, &interfaces, seam).map_err(|e| format!("{what} address: {e}"))
    };
    let addresses = Addresses {
        service: resolve(&config.service_address, "service")?,
        heartbeat: resolve(&config.heartbeat.address, "heartbeat")?,
        fabric: resolve(&config.fabric_address, "fabric")?,
    };
    let service = bind_all(
        &config.service_address,
        &addresses.service,
        config.service_port,
        seam,
        "service",
        &events,
    )
    .await?;
    let heartbeat = bind_all(
        &config.heartbeat.address,
        &addresses.heartbeat,
        config.heartbeat.port,
        seam,
        "heartbeat",
        &events,
    )
    .await?;
    let fabric = bind_all(
        &config.fabric_address,
        &addresses.fabric,
        config.fabric_port,
        seam,
        "fabric",
        &events,
    )
    .await?;
    for listener in &service {
        if let Ok(addr) = listener.local_addr() {
            let (context, at) = source::ENDPOINT;
            events.console(context, at, &format!("Started client endpoint {addr}"));
        }
    }
    let bound = |listeners: &[TcpListener]| {
        listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
    };
    let ips = |list: &[IpAddr]| list.iter().map(|ip| ip.to_string()).collect::<Vec<_>>();

    events.emit(
        "started",
        json!({
            "build": settings.build,
            "edition": settings.edition.long_name(),
            "config": config_source,
            "service": bound(&service),
            "heartbeat": bound(&heartbeat),
            "fabric": bound(&fabric),
            "addresses": {
                "service": ips(&addresses.service),
                "heartbeat": ips(&addresses.heartbeat),
                "fabric": ips(&addresses.fabric),
            },
            "heartbeat_interval_ms": config.heartbeat.interval_ms,
            "heartbeat_timeout": config.heartbeat.timeout,
            "seeds": config.heartbeat.seeds.iter().map(|(h, p)| format!("{h}:{p}")).collect::<Vec<_>>(),
            "namespaces": config.namespaces.iter().map(|n| json!({
                "name": n.name, "replication_factor": n.replication_factor,
            })).collect::<Vec<_>>(),
            "migrate_rate": settings.migrate_rate,
            "fault": settings.fault.map(Fault::name),
        }),
    );
    let devices: Vec<(usize, String, crate::config::DeviceConfig, Stored)> = config
        .namespaces
        .iter()
        .enumerate()
        .zip(&stored)
        .filter_map(|((index, ns), stored)| {
            Some((index, ns.name.clone(), ns.device.clone()?, stored.clone()?))
        })
        .collect();
    let mut node_state = NodeState::new(id, config, settings, events.clone(), Instant::now());
    node_state.set_addresses(addresses);
    node_state.restore(&stored);
    let state: Shared = Arc::new(Mutex::new(node_state));
    let (heartbeat_tx, heartbeat_rx) = watch::channel(Arc::new(lock(&state).heartbeat()));
    let links = Links::new(state.clone(), lock(&state).interval());

    let mut tasks = Vec::new();
    for listener in service {
        let links = links.clone();
        tasks.push(AbortOnDrop(tokio::spawn(serve(
            listener,
            state.clone(),
            move |stream, peer, state| serve_client(stream, peer, state, links.clone()),
        ))));
    }
    for listener in heartbeat {
        tasks.push(AbortOnDrop(tokio::spawn(serve(
            listener,
            state.clone(),
            read_heartbeats,
        ))));
    }
    for listener in fabric {
        let links = links.clone();
        tasks.push(AbortOnDrop(tokio::spawn(serve(
            listener,
            state.clone(),
            move |stream, peer, state| fabric_accepted(stream, peer, state, links.clone()),
        ))));
    }
    tasks.push(AbortOnDrop(tokio::spawn(drive(
        state.clone(),
        heartbeat_tx,
        heartbeat_rx,
        links.clone(),
    ))));
    for (index, name, device, written) in &devices {
        tasks.push(AbortOnDrop(tokio::spawn(flush_device(
            state.clone(),
            *index,
            name.clone(),
            device.clone(),
            written.clone(),
        ))));
    }

    let reason = shutdown.await;
    // Returning aborts every task: heartbeats stop at once, which is what a
    // stopped container looks like to its peers. (Dropping this future
    // instead is a kill: nothing is flushed.)
    events.emit("shutdown", json!({"signal": reason}));
    drop(tasks);
    drop(links);
    // A clean shutdown flushes the write buffers.
    for (index, name, device, _) in &devices {
        let stored = lock(&state).stored(*index);
        if let Err(message) = storage::write_device(device, name, &stored) {
            events.emit(
                "storage_error",
                json!({"namespace": name, "message": message}),
            );
        }
    }
    let (context, at) = source::CLEAN_SHUTDOWN;
    events.console(context, at, "finished clean shutdown - exiting");
    Ok(reason)
}

/// Reads every device namespace's files back (see [`crate::storage`]),
/// taking as long as the data takes at `cold_start_rate` copies per second,
/// with the server's console lines and the `cold_start_*` events. All
/// namespaces load at once, as the server's per-device threads do.
/// Returns what was read, per namespace (`None` without a device).
async fn cold_start(
    config: &Config,
    settings: &Settings,
    events: &EventLog,
) -> Result<Vec<Option<Stored>>, String> {
    let mut stored = Vec::with_capacity(config.namespaces.len());
    for ns in &config.namespaces {
        stored.push(match &ns.device {
            Some(device) => Some(storage::read_device(device, &ns.name)?),
            None => None,
        });
    }
    let rate = settings.cold_start_rate;
    let start = tokio::time::Instant::now();
    // (namespace index, copies, time it takes)
    let mut loading: Vec<(usize, usize, Duration)> = Vec::new();
    for (index, ns) in config.namespaces.iter().enumerate() {
        let (Some(device), Some(data)) = (&ns.device, &stored[index]) else {
            continue;
        };
        if !data.has_data() {
            continue;
        }
        let total = data.held.count();
        let (context, at) = source::BEGIN;
        events.console(
            context,
            at,
            &format!("{{{}}} beginning cold start", ns.name),
        );
        events.emit(
            "cold_start_begin",
            json!({
                "namespace": ns.name,
                "partitions": total,
                "files": device.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "rate": rate,
            }),
        );
        for file in &device.files {
            let (context, at) = source::READING;
            events.console(
                context,
                at,
                &format!("device {}: reading device to load index", file.display()),
            );
        }
        loading.push((index, total, Duration::from_secs_f64(total as f64 / rate)));
    }
    let mut next_tick = COLD_START_TICKER;
    while let Some(next_done) = loading.iter().map(|l| l.2).min() {
        if next_done <= next_tick {
            tokio::time::sleep_until(start + next_done).await;
            loading.retain(|(index, total, took)| {
                if *took > next_done {
                    return true;
                }
                let ns = &config.namespaces[*index];
                let data = stored[*index].as_ref();
                finish_cold_start(ns, data, *total, *took, events);
                false
            });
        } else {
            tokio::time::sleep_until(start + next_tick).await;
            for (index, total, _) in &loading {
                let ns = &config.namespaces[*index];
                let loaded = ((next_tick.as_secs_f64() * rate) as usize).min(*total);
                let pct = (loaded * 100).checked_div(*total).unwrap_or(100);
                let files = ns.device.as_ref().map_or(1, |d| d.files.len());
                let pcts = vec![pct.to_string(); files].join(",");
                let (context, at) = source::TICKER;
                events.console(
                    context,
                    at,
                    &format!(
                        "{{{}}} loaded: objects {loaded} device-pcts ({pcts})",
                        ns.name
                    ),
                );
                events.emit(
                    "cold_start_progress",
                    json!({"namespace": ns.name, "loaded": loaded, "partitions": total}),
                );
            }
            next_tick += COLD_START_TICKER;
        }
    }
    Ok(stored)
}

/// The end of one namespace's cold start: a `read complete` line per file
/// and the `cold_start_done` event.
fn finish_cold_start(
    ns: &crate::config::NamespaceConfig,
    data: Option<&Stored>,
    total: usize,
    took: Duration,
    events: &EventLog,
) {
    let files = ns
        .device
        .as_ref()
        .map(|d| d.files.clone())
        .unwrap_or_default();
    let count = files.len().max(1);
    for (stripe, file) in files.iter().enumerate() {
        let unique = data.map_or(0, |d| {
            (stripe..crate::partitions::N_PARTITIONS)
                .step_by(count)
                .filter(|pid| d.held.get(*pid))
                .count()
        });
        let (context, at) = source::READ_COMPLETE;
        events.console(
            context,
            at,
            &format!(
                "device {}: read complete: UNIQUE {unique} (REPLACED 0) (OLDER 0) (EXPIRED 0) \
                 (EVICTED 0) (UNPARSABLE 0) records",
                file.display()
            ),
        );
    }
    events.emit(
        "cold_start_done",
        json!({
            "namespace": ns.name,
            "partitions": total,
            "lineage": data.and_then(|d| d.lineage).map(|l| format!("{:x}", l.id)),
            "seconds": took.as_secs_f64(),
        }),
    );
}

/// Writes one device namespace's state to its files every `flush-max-ms`
/// when it changed: the server's write buffer, flushed on a timer. What
/// changed since the last write is lost if the node is killed.
async fn flush_device(
    state: Shared,
    index: usize,
    name: String,
    device: crate::config::DeviceConfig,
    mut written: Stored,
) {
    let period = Duration::from_millis(device.flush_max_ms.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        let now = lock(&state).stored(index);
        if now == written {
            continue;
        }
        match storage::write_device(&device, &name, &now) {
            Ok(()) => {
                written = now;
                failing = false;
            }
            Err(message) => {
                if !failing {
                    failing = true;
                    lock(&state).events().emit(
                        "storage_error",
                        json!({"namespace": name, "message": message}),
                    );
                }
            }
        }
    }
}

/// Binds the listeners of one `address` line: `any` (without the test
/// seam) is one socket on the unspecified address, as the server binds;
/// otherwise one socket per address. Under the `AEROSPIKE_SIM_INTERFACES`
/// seam an address another process holds already is skipped with a
/// `bind_skipped` event and still published: in a test it stands for
/// another host's interface with the same address (so under the seam a
/// listener may end up with no socket at all).
async fn bind_all(
    address: &Address,
    ips: &[IpAddr],
    port: u16,
    seam: bool,
    what: &str,
    events: &EventLog,
) -> Result<Vec<TcpListener>, String> {
    let addrs: Vec<SocketAddr> = if *address == Address::Any && !seam {
        vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)]
    } else {
        ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
    };
    let mut listeners = Vec::new();
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(listener) => listeners.push(listener),
            Err(e) if seam => {
                events.emit(
                    "bind_skipped",
                    json!({"listener": what, "address": addr.to_string(), "reason": e.to_string()}),
                );
            }
            Err(e) => return Err(format!("cannot listen on {what} port {addr}: {e}")),
        }
    }
    if listeners.is_empty() && !seam {
        return Err(format!(
            "cannot listen on {what} port {port}: no address could be bound"
        ));
    }
    Ok(listeners)
}

/// Waits for SIGTERM or SIGINT; the signal's name.
pub async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process can still be killed; wait forever.
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Ticks the state once per heartbeat interval, publishes the heartbeat,
/// keeps one heartbeat dialer per wanted target and one fabric link per
/// peer that copies are sent to.
async fn drive(
    state: Shared,
    heartbeat_tx: watch::Sender<Arc<Heartbeat>>,
    heartbeat_rx: watch::Receiver<Arc<Heartbeat>>,
    links: Links,
) {
    let interval = lock(&state).interval();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut dialers: HashMap<String, (Vec<String>, AbortOnDrop)> = HashMap::new();
    loop {
        ticker.tick().await;
        let (heartbeat, targets, outgoing) = {
            let mut st = lock(&state);
            st.tick(Instant::now());
            (st.heartbeat(), st.dial_targets(), st.take_outgoing())
        };
        heartbeat_tx.send_replace(Arc::new(heartbeat));
        // Dropping a dialer aborts it; a target whose endpoints changed (one
        // turned out to be this node) gets a new dialer.
        dialers.retain(|key, (endpoints, dialer)| {
            targets.get(key) == Some(endpoints) && !dialer.0.is_finished()
        });
        for (key, endpoints) in targets {
            dialers.entry(key).or_insert_with(|| {
                let task = tokio::spawn(dial(
                    endpoints.clone(),
                    state.clone(),
                    heartbeat_rx.clone(),
                    interval,
                ));
                (endpoints, AbortOnDrop(task))
            });
        }
        links.retain_peers();
        for out in outgoing {
            links.send(out.to, LinkMsg::Copy(out));
        }
    }
}

/// Keeps a heartbeat connection to one of `endpoints` (tried in a random
/// order, the first that accepts is used), reconnecting every interval.
async fn dial(
    endpoints: Vec<String>,
    state: Shared,
    heartbeats: watch::Receiver<Arc<Heartbeat>>,
    interval: Duration,
) {
    let connect_timeout = interval.max(Duration::from_millis(500));
    loop {
        for target in fabric::connect_order(&endpoints, random_u64()) {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(connect_timeout, TcpStream::connect(target.as_str())).await
            {
                let _counted = Counted::new(&state, heartbeat_connections);
                send_heartbeats(stream, &target, &heartbeats, interval).await;
                break;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn send_heartbeats(
    mut stream: TcpStream,
    target: &str,
    heartbeats: &watch::Receiver<Arc<Heartbeat>>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let heartbeat = heartbeats.borrow().clone();
        let line = encode_line(target, &heartbeat);
        if stream.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Accepts connections on `listener` and runs `handle` for each; owning
/// the connection tasks means aborting this task ends them too.
async fn serve<F, Fut>(listener: TcpListener, state: Shared, handle: F)
where
    F: Fn(TcpStream, SocketAddr, Shared) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors, most likely: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(handle(stream, peer, state.clone()));
    }
}

async fn read_heartbeats(stream: TcpStream, peer: SocketAddr, state: Shared) {
    let counted = Counted::new(&state, heartbeat_connections);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let reason = loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) => break None,
            Err(e) => break Some(e.to_string()),
            Ok(_) if line.len() > MAX_LINE => break Some("heartbeat line too long".into()),
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let result = decode_line(text.trim_end())
            .and_then(|envelope| lock(&state).on_heartbeat(envelope, Instant::now()));
        if let Err(e) = result {
            break Some(e);
        }
    };
    drop(counted);
    if let Some(reason) = reason {
        lock(&state).events().emit(
            "heartbeat_error",
            json!({"peer": peer.to_string(), "reason": reason}),
        );
    }
}

/// Reads one fabric message. Cancel-safe (it runs in `select!`): a line
/// read in part stays in `line`, and the next call goes on with it.
async fn read_message(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> Result<Option<fabric::Message>, String> {
    let limit = (fabric::MAX_LINE + 1).saturating_sub(line.len()) as u64;
    let read = reader
        .take(limit)
        .read_until(b'\n', line)
        .await
        .map_err(|e| e.to_string())?;
    if line.len() > fabric::MAX_LINE {
        return Err("fabric line too long".to_string());
    }
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        // The peer closed in the middle of a line.
        return Ok(None);
    }
    let message = fabric::decode(&String::from_utf8_lossy(line));
    line.clear();
    message.map(Some)
}

/// The accepting side of a fabric connection: answers `hello` with this
/// node's id, keeps the copies (and records) it owns, acknowledges each,
/// applies replica writes, and serves proxied transactions. Answers go
/// through one writer task, in the order they are ready.
async fn fabric_accepted(stream: TcpStream, peer: SocketAddr, state: Shared, links: Links) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let self_id = lock(&state).id;
    let from = match read_message(&mut reader, &mut line).await {
        Ok(Some(fabric::Message::Hello { node, .. })) => NodeId(node),
        _ => return,
    };
    let hello = fabric::Message::Hello {
        node: self_id.0,
        to: None,
    };
    if write
        .write_all(fabric::encode(&hello).as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
    // Owned here: returning aborts the writer and any proxied transaction.
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        while let Some(line) = out_rx.recv().await {
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    loop {
        while tasks.try_join_next().is_some() {}
        match read_message(&mut reader, &mut line).await {
            Ok(Some(fabric::Message::Part { key, ns, pid })) => {
                let kept = lock(&state).on_partition(from, key, &ns, pid);
                let ack = fabric::Message::Ack {
                    node: self_id.0,
                    key,
                    ns,
                    pid,
                    kept,
                };
                let _ = out.send(fabric::encode(&ack));
            }
            Ok(Some(fabric::Message::Records {
                key,
                ns,
                pid,
                records,
                merge,
            })) => {
                lock(&state).on_records(key, &ns, pid, &records, merge);
            }
            Ok(Some(fabric::Message::Write {
                id,
                ns,
                pid,
                digest,
                record,
            })) => {
                let digest: Option<crate::record::Digest> =
                    from_hex(&digest).and_then(|d| d.try_into().ok());
                let record = match record {
                    Some(wire) => wire.to_record().map(|(_, r)| Some(r)),
                    None => Some(None),
                };
                let ok = match (digest, record) {
                    (Some(digest), Some(record)) => {
                        lock(&state).on_replica_write(&ns, pid, &digest, record)
                    }
                    _ => false,
                };
                let ack = fabric::Message::WriteAck {
                    id,
                    node: self_id.0,
                    ok,
                };
                let _ = out.send(fabric::encode(&ack));
            }
            Ok(Some(fabric::Message::Proxy { id, hops, body })) => {
                let (state, links, out) = (state.clone(), links.clone(), out.clone());
                tasks.spawn(async move {
                    let frame = match from_hex(&body) {
                        Some(body) => execute(&state, &links, &body, hops.max(1)).await,
                        None => msg::reply(result::PARAMETER, 0, &[]),
                    };
                    let reply = fabric::Message::ProxyReply {
                        id,
                        frame: to_hex(&frame),
                    };
                    let _ = out.send(fabric::encode(&reply));
                });
            }
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(reason) => {
                lock(&state).events().emit(
                    "fabric_error",
                    json!({"peer": peer.to_string(), "reason": reason}),
                );
                return;
            }
        }
    }
}

/// Fabric connections a node opens to each peer: the server's default
/// `channel-ctrl-fds 1`, `channel-rw-fds 8`, `channel-bulk-fds 2` and
/// `channel-meta-fds 1` (as/src/fabric/fabric.c). Each picks an endpoint
/// on its own (see [`fabric::connect_order`]).
pub const FABRIC_FDS_PER_PEER: usize = 12;

/// One verified fabric connection of a link.
struct FabricConnection {
    endpoint: String,
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    reached: NodeId,
}

/// Opens one fabric connection toward `dest`: the first of its published
/// endpoints, in [`fabric::connect_order`], that accepts, then the `hello`
/// exchange that tells which node answered. `None` when no endpoint
/// accepts or the answer does not come.
async fn fabric_connect(
    dest: NodeId,
    self_id: NodeId,
    endpoints: &[String],
    connect_timeout: Duration,
) -> Option<FabricConnection> {
    let mut connected = None;
    for endpoint in fabric::connect_order(endpoints, random_u64()) {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(connect_timeout, TcpStream::connect(endpoint.as_str())).await
        {
            connected = Some((endpoint, stream));
            break;
        }
    }
    let (endpoint, stream) = connected?;
    let _ = stream.set_nodelay(true);
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    let hello = fabric::Message::Hello {
        node: self_id.0,
        to: Some(dest.0),
    };
    writer
        .write_all(fabric::encode(&hello).as_bytes())
        .await
        .ok()?;
    let mut line = Vec::new();
    match tokio::time::timeout(connect_timeout * 4, read_message(&mut reader, &mut line)).await {
        Ok(Ok(Some(fabric::Message::Hello { node, .. }))) => Some(FabricConnection {
            endpoint,
            reader,
            writer,
            reached: NodeId(node),
        }),
        _ => None,
    }
}

/// This node's fabric link to `dest`: [`FABRIC_FDS_PER_PEER`]
/// connections, each to one of the peer's published fabric endpoints,
/// each checked for which node answered; then it sends the copies it is
/// handed. The server spreads a channel's messages over its connections
/// and drops answers that come from another node than the one it meant
/// ("ctrl ack: unexpected source"), so one connection that reached the
/// wrong node is enough to keep migrations to that peer from ever
/// finishing: the sim then keeps every connection open and moves nothing.
async fn fabric_link(
    dest: NodeId,
    state: Shared,
    mut copies: mpsc::UnboundedReceiver<LinkMsg>,
    interval: Duration,
) {
    let connect_timeout = interval.max(Duration::from_millis(500));
    let self_id = lock(&state).id;
    let mut failing = false;
    loop {
        let endpoints = lock(&state).peer_fabric_endpoints(dest);
        let mut connections = Vec::with_capacity(FABRIC_FDS_PER_PEER);
        for _ in 0..FABRIC_FDS_PER_PEER {
            match fabric_connect(dest, self_id, &endpoints, connect_timeout).await {
                Some(connection) => connections.push(connection),
                None => break,
            }
        }
        if connections.len() < FABRIC_FDS_PER_PEER {
            if !failing {
                failing = true;
                lock(&state).events().emit(
                    "fabric_connect_failed",
                    json!({"peer": dest.to_string(), "endpoints": endpoints}),
                );
            }
            // Copies meant for an unreachable peer are lost; they are
            // sent again after the retransmit time.
            while copies.try_recv().is_ok() {}
            tokio::time::sleep(interval).await;
            continue;
        }
        failing = false;
        let wrong: Vec<&FabricConnection> =
            connections.iter().filter(|c| c.reached != dest).collect();
        for connection in &wrong {
            lock(&state).events().emit(
                "fabric_wrong_node",
                json!({"peer": dest.to_string(), "endpoint": connection.endpoint,
                       "reached": connection.reached.to_string()}),
            );
        }
        let right = wrong.is_empty();
        if right {
            let endpoints: Vec<&str> = connections.iter().map(|c| c.endpoint.as_str()).collect();
            lock(&state).events().emit(
                "fabric_connected",
                json!({"peer": dest.to_string(), "endpoint": connections[0].endpoint,
                       "connections": endpoints.len()}),
            );
        }
        // Copies and their acks travel on the first connection; the others
        // are held open, as the server holds its channels.
        let (first, _held) = connections.split_at_mut(1);
        let first = &mut first[0];
        let mut line = Vec::new();
        // Requests waiting for their answer; dropped (failed) when the
        // connection breaks.
        let mut pending: HashMap<u64, tokio::sync::oneshot::Sender<fabric::Message>> =
            HashMap::new();
        loop {
            tokio::select! {
                message = copies.recv() => {
                    let Some(message) = message else { return };
                    if !right {
                        // The server would send it to the wrong node and drop
                        // that node's answer ("unexpected source").
                        continue;
                    }
                    let lines = match message {
                        LinkMsg::Copy(copy) => copy_lines(&state, copy),
                        LinkMsg::Request(message, id, reply) => {
                            pending.insert(id, reply);
                            vec![fabric::encode(&message)]
                        }
                    };
                    let mut failed = false;
                    for text in lines {
                        if first.writer.write_all(text.as_bytes()).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed {
                        break;
                    }
                }
                message = read_message(&mut first.reader, &mut line) => match message {
                    Ok(Some(fabric::Message::Ack { node, key, ns, pid, kept })) => {
                        lock(&state).on_ack(dest, NodeId(node), key, &ns, pid, kept);
                    }
                    Ok(Some(answer @ fabric::Message::WriteAck { .. }))
                    | Ok(Some(answer @ fabric::Message::ProxyReply { .. })) => {
                        let id = match &answer {
                            fabric::Message::WriteAck { id, .. }
                            | fabric::Message::ProxyReply { id, .. } => *id,
                            _ => 0,
                        };
                        if let Some(reply) = pending.remove(&id) {
                            let _ = reply.send(answer);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                },
            }
        }
        drop(pending);
        lock(&state).events().emit(
            "fabric_closed",
            json!({"peer": dest.to_string(), "endpoint": first.endpoint}),
        );
        tokio::time::sleep(interval).await;
    }
}

/// The lines of one migrated copy: its records in chunks of
/// [`fabric::RECORDS_PER_CHUNK`], as they are now, then the copy itself.
/// Splits a copy's records into `records` messages of at most
/// [`fabric::RECORDS_PER_CHUNK`] records and about a quarter of a fabric
/// line each (a single record, at most a 1 MiB request in hex, always
/// fits in a line).
fn chunk_records(records: Vec<crate::record::WireRecord>) -> Vec<Vec<crate::record::WireRecord>> {
    let mut chunks: Vec<Vec<crate::record::WireRecord>> = Vec::new();
    let mut size = 0;
    for record in records {
        let bytes = record.d.len()
            + record
                .b
                .iter()
                .map(|b| b.0.len() + b.2.len() + 16)
                .sum::<usize>();
        let full = chunks.last().is_none_or(|c| {
            c.len() >= fabric::RECORDS_PER_CHUNK || size + bytes > fabric::MAX_LINE / 4
        });
        if full {
            chunks.push(Vec::new());
            size = 0;
        }
        size += bytes;
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(record);
        }
    }
    chunks
}

/// A merge push is only its records.
fn copy_lines(state: &Shared, copy: Outgoing) -> Vec<String> {
    let merge = copy.push.is_some();
    let records = match copy.push {
        Some(records) => records,
        None => lock(state).snapshot_records(&copy.namespace, copy.pid),
    };
    let chunks = chunk_records(records);
    let mut lines: Vec<String> = chunks
        .into_iter()
        .map(|records| {
            fabric::encode(&fabric::Message::Records {
                key: copy.key,
                ns: copy.namespace.clone(),
                pid: copy.pid,
                records,
                merge,
            })
        })
        .collect();
    if merge {
        return lines;
    }
    lines.push(fabric::encode(&fabric::Message::Part {
        key: copy.key,
        ns: copy.namespace,
        pid: copy.pid,
    }));
    lines
}

async fn serve_client(mut stream: TcpStream, peer: SocketAddr, state: Shared, links: Links) {
    let _counted = Counted::new(&state, client_connections);
    // Replies are single writes answered at once, as the server's.
    let _ = stream.set_nodelay(true);
    let protocol_error = |reason: String| {
        lock(&state).events().emit(
            "protocol_error",
            json!({"peer": peer.to_string(), "reason": reason}),
        );
    };
    loop {
        let (kind, body) = match tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut stream)).await {
            Err(_) | Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                protocol_error(e.to_string());
                break;
            }
            Ok(Ok(Some(frame))) => frame,
        };
        let reply = if kind == TYPE_INFO {
            encode_info(&handle_request(
                &mut lock(&state),
                &body,
                peer,
                Instant::now(),
            ))
        } else {
            let request = match msg::parse(&body) {
                Ok(request) => request,
                Err(e) => {
                    protocol_error(e.to_string());
                    break;
                }
            };
            if let Some((op, reason)) = request.unsupported_op() {
                // A clear answer (parameter error), then the connection
                // is closed.
                protocol_error(format!("AS_MSG op {op}: {reason}"));
                let _ = stream
                    .write_all(&msg::reply(result::PARAMETER, 0, &[]))
                    .await;
                break;
            }
            execute_request(&state, &links, request, &body, 0).await
        };
        if stream.write_all(&reply).await.is_err() {
            break;
        }
    }
}

/// Serves one AS_MSG body (a proxied one, from the fabric, `hops` times
/// already): the complete reply frame.
async fn execute(state: &Shared, links: &Links, body: &[u8], hops: u8) -> Vec<u8> {
    match msg::parse(body) {
        Ok(request) if request.unsupported_op().is_none() => {
            execute_request(state, links, request, body, hops).await
        }
        _ => msg::reply(result::PARAMETER, 0, &[]),
    }
}

/// Serves one transaction: here when this node is the partition's
/// working master, else proxied to it over the fabric. A write is
/// answered once every replica acknowledged it (commit level `all`).
async fn execute_request(
    state: &Shared,
    links: &Links,
    request: Request,
    body: &[u8],
    hops: u8,
) -> Vec<u8> {
    let fail = |code| msg::reply(code, 0, &[]);
    let kind = match request.kind() {
        Ok(kind) => kind,
        Err(code) => return fail(code),
    };
    let (Some(namespace), Some(digest)) = (request.namespace.as_deref(), request.digest) else {
        return fail(result::PARAMETER);
    };
    let pid = partition_id(&digest);
    let route = lock(state).route(namespace, pid, hops);
    let index = match route {
        Route::UnknownNamespace => return fail(result::NAMESPACE),
        Route::Unavailable => return fail(result::PARTITION_UNAVAILABLE),
        Route::Dead(_) => {
            return match kind {
                Kind::Read | Kind::Exists | Kind::Delete => fail(result::KEY_NOT_FOUND),
                Kind::Write => fail(result::PARTITION_UNAVAILABLE),
            }
        }
        Route::Proxy(node) => {
            let id = next_request_id();
            let message = fabric::Message::Proxy {
                id,
                hops: hops + 1,
                body: to_hex(body),
            };
            return match links.request(node, message, id, PROXY_TIMEOUT).await {
                Some(fabric::Message::ProxyReply { frame, .. }) => {
                    lock(state).count_transaction(namespace, "client_proxy_complete");
                    from_hex(&frame).unwrap_or_else(|| fail(result::SERVER_ERROR))
                }
                _ => {
                    lock(state).count_transaction(namespace, "client_proxy_timeout");
                    fail(result::TIMEOUT)
                }
            };
        }
        Route::Local(index) => index,
    };
    match kind {
        Kind::Read | Kind::Exists => {
            let found = {
                let mut st = lock(state);
                let found = st.read_record(index, pid, &digest);
                let counter = if found.is_some() {
                    "client_read_success"
                } else {
                    "client_read_not_found"
                };
                st.count_transaction(namespace, counter);
                found
            };
            let Some(record) = found else {
                return fail(result::KEY_NOT_FOUND);
            };
            if kind == Kind::Exists {
                return msg::reply(result::OK, record.generation, &[]);
            }
            let all = request.info1 & msg::INFO1_GET_ALL != 0 || request.ops.is_empty();
            let bins: Vec<(&str, &Particle)> = if all {
                record
                    .bins
                    .iter()
                    .map(|(name, p)| (name.as_str(), p))
                    .collect()
            } else {
                request
                    .ops
                    .iter()
                    .filter_map(|op| {
                        record
                            .bins
                            .get_key_value(&op.name)
                            .map(|(name, p)| (name.as_str(), p))
                    })
                    .collect()
            };
            msg::reply(result::OK, record.generation, &bins)
        }
        Kind::Write | Kind::Delete => {
            let delete = kind == Kind::Delete;
            let written = lock(state).write_record(index, pid, &digest, &request, epoch_ms());
            if written.result != result::OK {
                let counter = match (delete, written.result) {
                    (true, result::KEY_NOT_FOUND) => "client_delete_not_found",
                    _ => "client_write_error",
                };
                lock(state).count_transaction(namespace, counter);
                return fail(written.result);
            }
            for node in &written.replicas {
                let id = next_request_id();
                let message = fabric::Message::Write {
                    id,
                    ns: namespace.to_string(),
                    pid,
                    digest: to_hex(&digest),
                    record: written.record.clone(),
                };
                let acked = matches!(
                    links.request(*node, message, id, REPLICA_TIMEOUT).await,
                    Some(fabric::Message::WriteAck { ok: true, .. })
                );
                if !acked {
                    // Applied here, not everywhere: the client is told it
                    // timed out (in doubt), never that it succeeded.
                    lock(state).count_transaction(namespace, "client_write_timeout");
                    return fail(result::TIMEOUT);
                }
            }
            let counter = if delete {
                "client_delete_success"
            } else {
                "client_write_success"
            };
            lock(state).count_transaction(namespace, counter);
            msg::reply(result::OK, written.generation, &[])
        }
    }
}

/// A node embedded in another program (tests of the operator): it runs on
/// a thread of its own with its own single-threaded runtime, through
/// [`run_until`], so it installs no signal handlers. [`EmbeddedNode::stop`]
/// is a clean shutdown (SIGTERM: device namespaces are flushed);
/// [`EmbeddedNode::kill`], and dropping it, stop the node at once without
/// flushing (SIGKILL). Either way its sockets close: to its peers that
/// looks like a stopped container.
pub struct EmbeddedNode {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedNode {
    /// Whether the node has stopped by itself: it could not bind its ports,
    /// or it runs with `AEROSPIKE_SIM_FAULT=exit-on-start`.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Starts a node with `config` and `settings`; its events go to an
    /// in-memory log. A node that cannot bind its ports says so on stderr.
    pub fn start(config: Config, settings: Settings) -> EmbeddedNode {
        EmbeddedNode::start_with_log(config, settings, EventLog::memory().0)
    }

    /// [`EmbeddedNode::start`] with the caller's event log (a clone of an
    /// [`EventLog::memory`] log lets a test read the events and the
    /// console lines).
    pub fn start_with_log(config: Config, settings: Settings, events: EventLog) -> EmbeddedNode {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let service_port = config.service_port;
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async {
                let shutdown = async {
                    let _ = stopped.await;
                    "stopped by its owner"
                };
                let node = run_until(config, settings, events, "embedded", shutdown);
                tokio::select! {
                    result = node => {
                        if let Err(message) = result {
                            eprintln!("embedded sim node on port {service_port} failed: {message}");
                        }
                    }
                    // Dropping the node's future is a kill: nothing is flushed.
                    _ = killed => {}
                }
            });
            // Drops every task of the node without waiting for stragglers.
            runtime.shutdown_background();
        });
        EmbeddedNode {
            stop: Some(stop),
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// Clean shutdown, as SIGTERM: flushes device namespaces, logs
    /// `finished clean shutdown - exiting`, and returns once the node has
    /// stopped.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The kill sender stays alive (dropping it would count as a kill)
        // until the node has finished its clean shutdown.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the node at once, as SIGKILL: what device namespaces had not
    /// flushed yet is lost. Returns once the node has stopped.
    pub fn kill(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EmbeddedNode {
    fn drop(&mut self) {
        self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::request_one;
    use crate::config::DEFAULT_CONFIG;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap()
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("aerospike-sim-node-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn device_config(file: &std::path::Path) -> Config {
        let text = DEFAULT_CONFIG.replace(
            "storage-engine memory",
            &format!(
                "storage-engine device {{\n  file {}\n  filesize 1G\n}}",
                file.display()
            ),
        );
        Config::parse(&text).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_cold_start_takes_the_time_its_data_takes_with_the_server_ticker() {
        let dir = scratch("ticker");
        let file = dir.join("test.dat");
        let config = device_config(&file);
        let lineage = crate::heartbeat::Lineage {
            created_ms: 1,
            id: 0xABC,
        };
        let stored = Stored {
            lineage: Some(lineage),
            held: crate::partitions::Bitmap::full(),
            records: Default::default(),
        };
        let device = config.namespaces[0].device.clone().unwrap();
        storage::write_device(&device, "test", &stored).unwrap();
        let settings = Settings {
            cold_start_rate: 100.0,
            ..Settings::default()
        };
        let (events, store) = EventLog::memory();
        let started = tokio::time::Instant::now();
        let read = cold_start(&config, &settings, &events).await.unwrap();
        // 4096 copies at 100 a second.
        assert_eq!(started.elapsed(), Duration::from_millis(40_960));
        assert_eq!(read, vec![Some(stored)]);
        let lines = events.console_lines();
        let path = file.display();
        let expected = [
            "INFO (namespace): (namespace_ce.c:97) {test} beginning cold start".to_string(),
            format!("INFO (drv_ssd): (drv_ssd.c:3347) device {path}: reading device to load index"),
            "INFO (drv_ssd): (drv_ssd.c:2932) {test} loaded: objects 500 device-pcts (12)"
                .to_string(),
        ];
        for (line, want) in lines.iter().zip(&expected) {
            assert!(line.ends_with(want.as_str()), "{line} / {want}");
            assert!(line.contains(" GMT: INFO ("), "{line}");
        }
        // One ticker line every 5 s, the last at 40 s.
        let tickers: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("loaded: objects"))
            .collect();
        assert_eq!(tickers.len(), 8);
        assert!(tickers[7].ends_with("{test} loaded: objects 4000 device-pcts (97)"));
        assert!(lines.last().unwrap().ends_with(&format!(
            "INFO (drv_ssd): (drv_ssd.c:3311) device {path}: read complete: UNIQUE 4096 \
             (REPLACED 0) (OLDER 0) (EXPIRED 0) (EVICTED 0) (UNPARSABLE 0) records"
        )));
        let events = store.lock().unwrap();
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.first(), Some(&"cold_start_begin"));
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "cold_start_progress")
                .count(),
            8
        );
        let done = events
            .iter()
            .find(|e| e["event"] == "cold_start_done")
            .unwrap();
        assert_eq!(done["partitions"], 4096);
        assert_eq!(done["lineage"], "abc");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_travel_in_chunks_that_fit_a_fabric_line() {
        let record = |i: usize, value_len: usize| crate::record::WireRecord {
            d: format!("{i:040x}"),
            g: 1,
            l: 1,
            b: vec![("v".to_string(), 4, "ab".repeat(value_len))],
            k: None,
        };
        let small: Vec<_> = (0..600).map(|i| record(i, 10)).collect();
        let sizes: Vec<usize> = chunk_records(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![256, 256, 88]);
        // Ten records of 512 KiB: a line holds at most about 1 MiB of them.
        let big: Vec<_> = (0..10).map(|i| record(i, 512 * 1024)).collect();
        let chunks = chunk_records(big);
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 10);
        for chunk in &chunks {
            let line = fabric::encode(&fabric::Message::Records {
                key: 1,
                ns: "test".into(),
                pid: 0,
                records: chunk.clone(),
                merge: false,
            });
            assert!(line.len() <= fabric::MAX_LINE, "{}", line.len());
        }
        assert!(chunk_records(Vec::new()).is_empty());
    }

    #[tokio::test]
    async fn a_device_file_that_cannot_be_written_stops_the_start_naming_it() {
        let dir = scratch("blocked");
        std::fs::write(dir.join("blocker"), "a file, not a directory").unwrap();
        let file = dir.join("blocker/test.dat");
        let (events, _) = EventLog::memory();
        let shutdown = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "timeout"
        };
        let result = run_until(
            device_config(&file),
            Settings::default(),
            events,
            "test",
            shutdown,
        )
        .await;
        let message = result.unwrap_err();
        assert!(message.contains("blocker/test.dat"), "{message}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn stopping_a_node_closes_its_ports_while_the_runtime_lives_on() {
        let (service, heartbeat, fabric) = (free_port(), free_port(), free_port());
        let text = DEFAULT_CONFIG
            .replace("address any", "address 127.0.0.1")
            .replace("port 3000", &format!("port {service}"))
            .replace("port 3002", &format!("port {heartbeat}"))
            .replace(
                "port 3001",
                &format!("address 127.0.0.1\n        port {fabric}"),
            );
        let config = Config::parse(&text).unwrap();
        let (events, store) = EventLog::memory();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let node = tokio::spawn(async move {
            run_until(config, Settings::default(), events, "test", async move {
                let _ = stopped.await;
                "test-stop"
            })
            .await
        });
        let timeout = Duration::from_secs(2);
        let mut build = None;
        for _ in 0..100 {
            build = request_one("127.0.0.1", service, "build", timeout)
                .await
                .ok();
            if build.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(build.as_deref(), Some("7.1.0.0"));
        stop.send(()).unwrap();
        assert_eq!(node.await.unwrap(), Ok("test-stop"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(request_one("127.0.0.1", service, "build", timeout)
            .await
            .is_err());
        assert!(TcpStream::connect(("127.0.0.1", heartbeat)).await.is_err());
        assert!(TcpStream::connect(("127.0.0.1", fabric)).await.is_err());
        let events = store.lock().unwrap();
        assert!(events
            .iter()
            .any(|e| e["event"] == "shutdown" && e["signal"] == "test-stop"));
    }
}
