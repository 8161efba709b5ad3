//! One reconcile of one cluster, in three steps: [`super::observe`] reads
//! everything afresh into one value, [`super::decide`] decides from it
//! alone, and [`Reconciler::apply`] here carries the decision out.
//!
//! What a pass looks at and does, each skipped when there is nothing to do:
//!
//! 1. read the service; a service the cluster selector does not match is
//!    unmanaged ([`super::selector::managed_spec`]); parse its spec
//!    (invalid → status Error naming the label, nothing else changes);
//! 2. `paused` → status Paused, nothing else changes;
//! 3. check what the spec refers to: replicated mode, placement
//!    constraints, the network, the config secret;
//! 4. placement and replicas: `MaxReplicas 1`, `replicas = min(spec,
//!    eligible nodes)`;
//! 5. read the cluster's tasks and their addresses on the cluster network;
//! 6. mesh: observe every node (statistics, what it publishes, its peers
//!    and alumni, its `cluster-stable` verdict), tip outsiders toward the
//!    main cluster, tip-clear departed nodes and reset alumni on the
//!    survivors (decisions in [`super::mesh`]);
//! 7. write the status labels when they differ (decisions in
//!    [`super::plan`]): Ready only when the whole safe-restart gate passes
//!    on every node.
//!
//! Problems the user must fix (bad labels, a missing secret) are not
//! errors of the reconcile: they become an Error status. Errors are what
//! retrying may cure (Docker unreachable), and go to the error policy.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use tracing::{debug, info, warn};

use crate::aerospike::commands::SetConfigOutcome;
use crate::aerospike::{NodeId, TipOutcome};
use crate::spec::{status_config_name, ClusterStatus, STATUS_OF, STATUS_PREFIX};
use crate::swarm::{update_service_retrying, ServiceChange, ServiceInfo, SwarmApi, SwarmError};

use super::attach::OperatorService;
use super::decide::{decide, Act, Decision, Next, NodeOrder, Settings, TipOrder, Write};
use super::liveconfig::LiveOrder;
use super::membership::WatchSet;
use super::mesh;
use super::metrics::ClusterGauges;
use super::nodes::NodeApi;
use super::observe::{ColdWatch, Observed};
use super::plan;
use super::rollout;
use super::selector::{managed_spec, ClusterSelector};

/// What to do with a cluster after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Still converging: look again after this delay.
    Requeue(Duration),
    /// Settled: nothing to do until something changes (an event, a task
    /// change seen by the poll, or the periodic resync).
    AwaitChange,
}

/// The result of a successful reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// When to look again.
    pub action: Action,
    /// The service name when the service exists and is managed; `None` for
    /// a service that is gone, carries no `aerospike.cluster.*` labels, or
    /// is not matched by the cluster selector.
    pub managed: Option<String>,
    /// What the pass saw, for the metrics' gauges.
    pub gauges: Option<ClusterGauges>,
    /// The main cluster's members and key, for the membership watch
    /// ([`super::membership`]); `None` when the pass saw no cluster.
    pub watch: Option<WatchSet>,
}

#[cfg(test)]
impl Outcome {
    /// What a pass over a service that is gone or not managed returns.
    pub(crate) fn unmanaged() -> Outcome {
        Outcome {
            action: Action::AwaitChange,
            managed: None,
            gauges: None,
            watch: None,
        }
    }
}

/// A reconcile that failed in a way retrying may cure.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A Docker call failed (after in-place retries of stale versions).
    #[error(transparent)]
    Swarm(#[from] SwarmError),
}

impl ReconcileError {
    /// Every value [`ReconcileError::kind`] returns.
    pub const KINDS: [&'static str; 8] = SwarmError::KINDS;

    /// A short name of the error, for the `kind` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Swarm(e) => e.kind(),
        }
    }
}

/// How long to wait before looking again at a cluster whose nodes cannot
/// be reached at all: long enough not to hammer a network the operator is
/// not on, short enough to notice soon after it is attached.
pub(super) const UNREACHABLE_RECHECK: Duration = Duration::from_secs(10);

/// How soon a cluster whose tasks are starting is looked at again: while
/// it scales, and while a node that has just started does not answer yet.
/// The reads this costs stop when the tasks run and answer.
pub(super) const STARTING_RECHECK: Duration = Duration::from_millis(200);

/// How long no node of a cluster may go unanswered before the status calls
/// it an error ("is the operator attached to the network?"). A task that
/// has just started is not listening yet; before this grace the status
/// says it is waiting for the nodes, which is what is happening.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(10);

/// How long a tip just sent is given to take effect before the same tip is
/// sent again. A tip joins a node within a few heartbeat intervals (about
/// 2 s on a real 7.1 server); re-sending it before then (say, on the pass
/// our own status write triggers) would only repeat it.
const ORDER_GRACE: Duration = Duration::from_secs(3);

/// How soon a cluster that needs watching (stalled migrations, stray
/// addresses) is looked at again: nothing in the swarm changes when the
/// nodes do.
pub(super) const WATCH_RECHECK: Duration = Duration::from_secs(10);

/// How long a pass keeps trying a node that cannot be reached (see
/// [`Reconciler::observe_patiently`]); a node that is really gone costs a
/// pass this much. On the sandbox the overlay path from the operator to a
/// new task was wired 0.4 to 0.7 s after its container started.
const NODE_PATIENCE: Duration = Duration::from_millis(1500);

/// The pause between two tries of a node that cannot be reached.
pub(super) const RETRY_GAP: Duration = Duration::from_millis(25);

/// The default of `--migration-stall-timeout`.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs reconciles against a swarm and the Aerospike nodes.
#[derive(Debug)]
pub struct Reconciler<S, N> {
    pub(super) swarm: S,
    pub(super) nodes: N,
    pub(super) poll_fast: Duration,
    /// Tips sent recently: (node, order) → when. In memory only: after a
    /// restart a tip may be sent once more, which is harmless.
    pub(super) recent: Mutex<HashMap<(SocketAddr, String), Instant>>,
    /// The replica count this operator last set, per service id, so that a
    /// count changed by hand can be told apart in the log (see
    /// [`plan::plan_placement`]).
    pub(super) last_set: Mutex<HashMap<String, u64>>,
    /// Per service id, since when each of its nodes that did not answer
    /// has been silent.
    pub(super) silent_since: Mutex<HashMap<String, HashMap<SocketAddr, Instant>>>,
    /// Per service id, the nodes that answered its last pass. Only a node
    /// not among them is observed patiently (a task that has just
    /// started); one that answered before and does not now has most likely
    /// died, and the pass reports that at once rather than after
    /// [`NODE_PATIENCE`].
    pub(super) answering: Mutex<HashMap<String, BTreeSet<SocketAddr>>>,
    /// See [`UNREACHABLE_GRACE`].
    pub(super) unreachable_grace: Duration,
    /// See [`NODE_PATIENCE`].
    pub(super) patience: Duration,
    /// Per service id, the `(node, heartbeat endpoint)` tip-clears a node
    /// has answered: final, never sent again. In memory: after a restart
    /// one may be sent once more (and answered "not found"), which is
    /// harmless.
    pub(super) answered: Mutex<HashMap<String, BTreeSet<(SocketAddr, SocketAddr)>>>,
    /// Per service id, each node's migration count across passes.
    pub(super) progress: Mutex<HashMap<String, plan::MigrationProgress>>,
    /// How long a node's migration count may stay unchanged before the
    /// status calls the migrations stalled.
    pub(super) stall_timeout: Duration,
    /// How long a task of a new template may take to start and join before
    /// the rollout is rolled back.
    pub(super) join_timeout: Duration,
    /// The operator's own service, attached to the clusters' networks.
    pub(super) operator: Option<OperatorService>,
    /// The networks the operator's service was last seen on. A network in
    /// it needs no read: networks are attached, not detached, while this
    /// process lives (a stack redeploy that drops one restarts it).
    pub(super) operator_networks: Mutex<Vec<String>>,
    /// Which services this operator manages (`--cluster-selector`);
    /// `None`: every one that declares a cluster.
    pub(super) selector: Option<ClusterSelector>,
    /// Per service id, what its status config carries as this reconciler
    /// last wrote or read it: a status that did not change costs no call.
    pub(super) status_homes: Mutex<HashMap<String, StatusHome>>,
    /// Per service id, its cold-starting nodes' progress by task id (see
    /// [`super::observe`]).
    pub(super) cold_starts: Mutex<HashMap<String, HashMap<String, ColdWatch>>>,
    /// Per service id, the service write Docker last refused for good (see
    /// [`Reconciler::refused`]): not tried again until the service changes
    /// or [`REFUSAL_RETRY`] has passed.
    pub(super) refusals: Mutex<HashMap<String, Refusal>>,
    /// Per service id, when this reconciler first observed it (see
    /// [`super::observe::ClusterObservation::watched_since`]).
    pub(super) watched_since: Mutex<HashMap<String, std::time::SystemTime>>,
    /// Per service id, a config object a node refused to take live
    /// (`set-config` answered `error`), with the node's words: that config
    /// rolls with a restart instead (see [`super::liveconfig`]).
    pub(super) live_refused: Mutex<HashMap<String, (String, String)>>,
    /// Per service id, which node held each node id as of its last pass
    /// (see [`super::suspect`]). In memory: after a restart, two nodes
    /// reporting one id are both untrusted until one of them stops.
    pub(super) node_ids: Mutex<HashMap<String, BTreeMap<NodeId, SocketAddr>>>,
}

/// A service write Docker refused as a bad request.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    /// The service's version when it was refused: a change of the service
    /// (the user's fix) ends the refusal.
    version: u64,
    /// When.
    at: Instant,
    /// The status message that says so.
    message: String,
}

/// How long a refused service write waits, when nothing about the service
/// changes, before it is tried once more (the cause may have been outside
/// the service, e.g. a network or secret it names).
const REFUSAL_RETRY: Duration = Duration::from_secs(300);

/// A cluster's status config (`<service>.status`) as last written or read.
#[derive(Debug, Clone)]
pub(super) struct StatusHome {
    /// The config's name.
    name: String,
    /// Its id and the version it was read at; `None` after a write of ours
    /// (the next write reads it first).
    at: Option<(String, u64)>,
    /// Its labels.
    labels: BTreeMap<String, String>,
}

/// The longest name swarm gives a config (as a secret: 64 characters).
const CONFIG_NAME_MAX: usize = 64;

/// The data of a status config; swarm requires some, nothing reads it.
const STATUS_CONFIG_BODY: &str =
    "aerospike-swarm-operator: the live status of the service this config is named after is \
     in its labels (aerospike.status.*)\n";

/// Locks `mutex`, also after a panic elsewhere (the maps it guards are
/// always consistent between statements).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One action log line: `cluster`, `action` and `reason` as fields.
macro_rules! act {
    ($cluster:expr, $action:expr, $reason:expr) => {
        info!(cluster = %$cluster, action = $action, reason = %$reason, "{}", $action)
    };
}

impl<S: SwarmApi, N: NodeApi> Reconciler<S, N> {
    /// A reconciler over `swarm` and `nodes`; converging clusters are looked
    /// at again after `poll_fast`.
    pub fn new(swarm: S, nodes: N, poll_fast: Duration) -> Self {
        Reconciler {
            swarm,
            nodes,
            poll_fast,
            recent: Mutex::new(HashMap::new()),
            last_set: Mutex::new(HashMap::new()),
            silent_since: Mutex::new(HashMap::new()),
            answering: Mutex::new(HashMap::new()),
            unreachable_grace: UNREACHABLE_GRACE,
            patience: NODE_PATIENCE,
            answered: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            join_timeout: rollout::DEFAULT_JOIN_TIMEOUT,
            operator: None,
            operator_networks: Mutex::new(Vec::new()),
            selector: None,
            status_homes: Mutex::new(HashMap::new()),
            cold_starts: Mutex::new(HashMap::new()),
            refusals: Mutex::new(HashMap::new()),
            watched_since: Mutex::new(HashMap::new()),
            live_refused: Mutex::new(HashMap::new()),
            node_ids: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the operator's own service, which the reconciler attaches to a
    /// cluster's network it is not on (see [`attach`]).
    pub fn with_operator(mut self, operator: Option<OperatorService>) -> Self {
        self.operator = operator;
        self
    }

    /// Manages only the services `selector` matches (default `None`:
    /// every one); the others are unmanaged (see [`super::selector`]).
    pub fn with_selector(mut self, selector: Option<ClusterSelector>) -> Self {
        self.selector = selector;
        self
    }

    /// Sets how long a task of a new template may take to start and join
    /// the cluster before the rollout is rolled back (default
    /// [`rollout::DEFAULT_JOIN_TIMEOUT`]).
    pub fn with_join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = timeout;
        self
    }

    /// Sets how long a node's migration count may stay unchanged before
    /// the status calls the migrations stalled (default
    /// [`DEFAULT_STALL_TIMEOUT`]).
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    pub(super) fn last_set(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        lock(&self.last_set)
    }

    pub(super) fn answered(
        &self,
    ) -> MutexGuard<'_, HashMap<String, BTreeSet<(SocketAddr, SocketAddr)>>> {
        lock(&self.answered)
    }

    /// Forgets what this reconciler remembers of service `id`: it is gone,
    /// or no longer managed.
    fn forget(&self, id: &str) {
        self.last_set().remove(id);
        lock(&self.silent_since).remove(id);
        lock(&self.answering).remove(id);
        self.answered().remove(id);
        self.progress().remove(id);
        lock(&self.status_homes).remove(id);
        lock(&self.cold_starts).remove(id);
        lock(&self.refusals).remove(id);
        lock(&self.watched_since).remove(id);
        lock(&self.live_refused).remove(id);
        lock(&self.node_ids).remove(id);
    }

    pub(super) fn progress(&self) -> MutexGuard<'_, HashMap<String, plan::MigrationProgress>> {
        lock(&self.progress)
    }

    /// Whether `order` may be sent to `node` now (not sent within
    /// [`ORDER_GRACE`]); if so, records it as sent.
    fn may_send(&self, node: SocketAddr, order: String) -> bool {
        let mut recent = lock(&self.recent);
        let now = Instant::now();
        recent.retain(|_, at| now.duration_since(*at) < ORDER_GRACE);
        match recent.entry((node, order)) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(now);
                true
            }
        }
    }

    /// Whether `service` declares a cluster at all, whichever operator's
    /// selector matches it.
    pub(super) fn declares_cluster(&self, service: &ServiceInfo) -> bool {
        !matches!(
            managed_spec(None, &service.labels, service.image.as_deref()),
            Ok(None)
        )
    }

    /// Whether the valve on unmanaged `service` is ours to release.
    ///
    /// - It still declares a cluster (this operator's selector dropped
    ///   it): only if this reconciler has run a full pass on it since it
    ///   last forgot it. Another operator may select it — a cluster moved
    ///   from `team=a` to `team=b`, or one that was never ours — and that
    ///   operator keeps the valve on it: releasing it on every pass would
    ///   be a fight over the policy. (After a restart, or a change of
    ///   leader, a cluster dropped meanwhile keeps the valve: remove its
    ///   replicas label to have it released.)
    /// - It declares none (no operator manages it): if it carries status
    ///   labels, which only an operator writes, or this reconciler
    ///   remembers it. A stranger that happens to hold swarm for a day is
    ///   left alone.
    pub(super) fn was_managed(&self, service: &ServiceInfo) -> bool {
        let remembered = self.progress().contains_key(&service.id);
        if self.declares_cluster(service) {
            remembered
        } else {
            remembered || service.labels.keys().any(|k| k.starts_with(STATUS_PREFIX))
        }
    }

    /// Reconciles service `id` (an id or a name): [`Reconciler::observe`]
    /// reads everything, [`decide`] decides from that alone, and
    /// [`Reconciler::apply`] carries the decision out — node orders, then
    /// at most one service write. While a node of a rollout is changing
    /// the service is not written at all: any write would let swarm
    /// replace the next node (see [`rollout`]).
    pub async fn reconcile(&self, id: &str) -> Result<Outcome, ReconcileError> {
        let observed = self.observe(id).await?;
        let decision = decide(
            &observed,
            &Settings {
                poll_fast: self.poll_fast,
                join_timeout: self.join_timeout,
            },
        );
        self.apply(&observed, decision).await
    }

    /// Carries out `decision`, made from `observed`: the action lines, the
    /// node orders (each tip only if not sent within [`ORDER_GRACE`]), the
    /// one write, and what the reconciler remembers.
    async fn apply(
        &self,
        observed: &Observed,
        decision: Decision,
    ) -> Result<Outcome, ReconcileError> {
        let cluster = match observed.service() {
            Some(service) => service.name.clone(),
            None => String::new(),
        };
        if let (Write::Service { .. }, Some(service)) = (&decision.write, observed.service()) {
            if let Some(message) = self.still_refused(service) {
                debug!(cluster = %cluster, "the service write Docker refused is not tried again until the service changes");
                return Ok(self
                    .hold_refused(observed, service, &decision, message)
                    .await);
            }
        }
        for Act { action, reason } in &decision.acts {
            act!(cluster, *action, reason);
        }
        let sent = match observed.service() {
            Some(service) => {
                self.mesh(
                    &service.id,
                    &cluster,
                    &decision.tips,
                    &decision.cleanups,
                    decision.heartbeat_port,
                )
                .await
            }
            None => MeshDone::default(),
        };
        if let Some(service) = observed.service() {
            self.set_live(&service.id, &cluster, &decision.live_sets)
                .await;
        }
        match &decision.node_order {
            Some(NodeOrder::Quiesce { node, members }) => {
                if let Err(e) = self.nodes.quiesce(*node, members).await {
                    warn!(cluster = %cluster, error = %e, "quiesce failed; retrying on the next pass");
                }
            }
            Some(NodeOrder::Recluster { node, members })
                if self.may_send(*node, "recluster".into()) =>
            {
                debug!(cluster = %cluster, node = %node, "quiesce pending: recluster again");
                if let Err(e) = self.nodes.recluster(members).await {
                    warn!(cluster = %cluster, error = %e, "recluster failed; retrying on the next pass");
                }
            }
            Some(NodeOrder::Recluster { .. }) | None => {}
        }
        if let (Some(status), Some(service)) = (&decision.shown, observed.service()) {
            let wrote = self.show(service, status).await;
            if wrote && decision.write == Write::Nothing {
                log_status(
                    &cluster,
                    status,
                    "its status config only: a node is changing",
                );
            }
        }
        match (&decision.write, observed.service()) {
            (Write::Nothing, _) | (_, None) => {}
            (Write::Service { status, change }, Some(service)) => {
                match self
                    .write_status(service, status.as_ref(), change.clone())
                    .await
                {
                    Err(e) if is_refusal(&e) => {
                        return Ok(self.refused(observed, service, &decision, &e).await)
                    }
                    written => written?,
                }
                lock(&self.refusals).remove(&service.id);
                if let Some(replicas) = change.replicas {
                    self.last_set().insert(service.id.clone(), replicas);
                }
            }
            (Write::Operator { service, change }, Some(_)) => {
                update_service_retrying(&self.swarm, service, change).await?;
            }
        }
        if let (Some(ids), Some(service)) = (&decision.node_ids, observed.service()) {
            lock(&self.node_ids).insert(service.id.clone(), ids.clone());
        }
        if decision.remove_status_config {
            self.remove_status_config(observed).await;
        }
        if decision.forget {
            match observed {
                Observed::Gone { id } => self.forget(id),
                other => {
                    if let Some(service) = other.service() {
                        self.forget(&service.id)
                    }
                }
            }
        }
        let action = match decision.next {
            Next::Fixed(action) => action,
            Next::SoonerIfOrdered(_) if sent.orders > 0 || sent.failures > 0 => {
                Action::Requeue(self.poll_fast)
            }
            Next::SoonerIfOrdered(action) => action,
        };
        Ok(Outcome {
            action,
            managed: decision.managed,
            gauges: decision.gauges,
            watch: decision.watch,
        })
    }

    /// Sends the `set-config`s decided for this pass. A node that refuses
    /// one makes the config roll with a restart instead (remembered for
    /// the next pass); a node that cannot be reached is asked again then.
    async fn set_live(&self, id: &str, cluster: &str, orders: &[LiveOrder]) {
        for LiveOrder {
            node,
            param,
            config,
        } in orders
        {
            let line = format!("{}={}", param.name, param.value);
            act!(
                cluster,
                "config-live",
                format!(
                    "node {node} does not run {line} of config object {config} (line {}): setting \
                     it live with set-config, no restart",
                    param.line
                )
            );
            match self.nodes.set_config(*node, param).await {
                Ok(SetConfigOutcome::Applied) => {}
                Ok(SetConfigOutcome::Refused(words)) => {
                    let reason = format!("node {node} refused set-config {line}: {words}");
                    warn!(cluster = %cluster, node = %node, config = %config, reason = %reason, "a node refused a live config change: config object {config} rolls with a rolling restart instead");
                    lock(&self.live_refused).insert(id.to_string(), (config.clone(), reason));
                    return;
                }
                Err(e) => {
                    warn!(cluster = %cluster, node = %node, error = %e, "set-config failed; asking again on the next pass");
                }
            }
        }
    }

    /// Sends the tips and clean-ups decided for this pass, checking every
    /// reply.
    async fn mesh(
        &self,
        id: &str,
        cluster: &str,
        tips: &[TipOrder],
        cleanups: &[mesh::Cleanup],
        heartbeat_port: u16,
    ) -> MeshDone {
        let mut done = MeshDone::default();
        for TipOrder {
            node,
            target,
            reason,
        } in tips
        {
            if !self.may_send(*node, format!("tip {target}")) {
                continue;
            }
            act!(cluster, "tip", reason);
            done.orders += 1;
            match self.nodes.tip(*node, *target, heartbeat_port).await {
                Ok(TipOutcome::Added) => {}
                // A seed it has already (7.1 says `error`): harmless, and
                // whether it joins is read back on the next pass.
                Ok(TipOutcome::Refused { reply }) => {
                    debug!(cluster = %cluster, node = %node, reply = %reply, "tip refused: already a seed")
                }
                Err(e) => {
                    warn!(cluster = %cluster, error = %e, "tip failed; retrying on the next pass");
                    done.failures += 1;
                }
            }
        }
        for cleanup in cleanups {
            let node = cleanup.node;
            let departed: Vec<String> = cleanup.departed.iter().map(|id| id.to_string()).collect();
            if !cleanup.tip_clear.is_empty() {
                let list: Vec<String> = cleanup
                    .tip_clear
                    .iter()
                    .map(SocketAddr::to_string)
                    .collect();
                act!(
                    cluster,
                    "tip-clear",
                    format!(
                        "node {node} still lists departed node {} that no task has any more; \
                         it stops dialing {}",
                        departed.join(", "),
                        list.join(", ")
                    )
                );
                done.orders += 1;
                match self.nodes.tip_clear(node, &cleanup.tip_clear).await {
                    // Cleared or "not found": final either way.
                    Ok(outcome) => {
                        debug!(cluster = %cluster, node = %node, cleared = outcome.cleared, not_found = outcome.not_found, "tip-clear answered");
                        self.answered()
                            .entry(id.to_string())
                            .or_default()
                            .extend(cleanup.tip_clear.iter().map(|hb| (node, *hb)));
                    }
                    Err(e) => {
                        warn!(cluster = %cluster, error = %e, "tip-clear failed; retrying on the next pass");
                        done.failures += 1;
                        continue;
                    }
                }
            }
            act!(
                cluster,
                "alumni-reset",
                format!(
                    "node {node} forgets departed node {} (services-alumni-reset)",
                    departed.join(", ")
                )
            );
            done.orders += 1;
            if let Err(e) = self.nodes.alumni_reset(node).await {
                warn!(cluster = %cluster, error = %e, "services-alumni-reset failed; retrying on the next pass");
                done.failures += 1;
            }
        }
        done
    }

    /// Writes `status` onto the service's labels if they differ; only the
    /// `aerospike.status.*` labels that change are sent.
    async fn write_status(
        &self,
        service: &ServiceInfo,
        status: Option<&ClusterStatus>,
        mut change: ServiceChange,
    ) -> Result<(), SwarmError> {
        let labels: HashMap<String, String> = service
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let Some(status) = status.filter(|s| s.would_change(&labels)) else {
            if !change.is_empty() {
                update_service_retrying(&self.swarm, &service.id, &change).await?;
            }
            return Ok(());
        };
        let wanted = status.to_labels();
        change.labels_remove.extend(
            labels
                .keys()
                .filter(|k| k.starts_with(STATUS_PREFIX) && !wanted.contains_key(*k))
                .cloned(),
        );
        change
            .labels_set
            .extend(wanted.into_iter().filter(|(k, v)| labels.get(k) != Some(v)));
        update_service_retrying(&self.swarm, &service.id, &change).await?;
        log_status(&service.name, status, "the service's labels");
        Ok(())
    }

    /// The status message of a refusal of `service`'s write that still
    /// holds: the service has not changed since, and [`REFUSAL_RETRY`] has
    /// not passed.
    fn still_refused(&self, service: &ServiceInfo) -> Option<String> {
        lock(&self.refusals)
            .get(&service.id)
            .filter(|r| r.version == service.version && r.at.elapsed() < REFUSAL_RETRY)
            .map(|r| r.message.clone())
    }

    /// Docker refused the pass's service write as a request it will refuse
    /// again (a 4xx other than a stale version or a missing object: a bad
    /// spec). Retrying cannot cure it, so the pass does not fail into the
    /// backoff loop: the status config says Error with Docker's words, and
    /// the write is tried again when the service changes (the user's fix)
    /// or after [`REFUSAL_RETRY`], not before; passes in between keep the
    /// Error status.
    async fn refused(
        &self,
        observed: &Observed,
        service: &ServiceInfo,
        decision: &Decision,
        error: &SwarmError,
    ) -> Outcome {
        let message = format!(
            "Docker refused the operator's update of this service ({error}); retrying cannot \
             help: fix the labels or the service, and the next change is tried again"
        );
        warn!(cluster = %service.name, action = "refused", error = %error, "refused: {message}");
        lock(&self.refusals).insert(
            service.id.clone(),
            Refusal {
                version: service.version,
                at: Instant::now(),
                message: message.clone(),
            },
        );
        self.hold_refused(observed, service, decision, message)
            .await
    }

    /// The pass over a service whose write Docker refused: its status
    /// config says Error with `message`, and nothing more happens until the
    /// service changes.
    async fn hold_refused(
        &self,
        observed: &Observed,
        service: &ServiceInfo,
        decision: &Decision,
        message: String,
    ) -> Outcome {
        let status = plan::error_status(&observed.previous(), message);
        self.show(service, &status).await;
        Outcome {
            action: Action::AwaitChange,
            managed: decision.managed.clone(),
            gauges: decision.gauges.clone(),
            watch: decision.watch.clone(),
        }
    }

    /// Writes `status` to the status config of `service` when it differs
    /// from what the config carries; whether it wrote. A failure is logged
    /// and tried again on the next pass: the service's labels still carry
    /// the status at each safe point.
    async fn show(&self, service: &ServiceInfo, status: &ClusterStatus) -> bool {
        let mut wanted = status.to_labels();
        wanted.insert(STATUS_OF.to_string(), service.name.clone());
        let known = lock(&self.status_homes).get(&service.id).cloned();
        if known.as_ref().is_some_and(|home| home.labels == wanted) {
            return false;
        }
        let name = status_config_name(&service.name);
        if name.len() > CONFIG_NAME_MAX {
            // Swarm refuses such a name; the service's labels carry the
            // status at each safe point as before.
            debug!(cluster = %service.name, config = %name, "no status config: the name is longer than swarm allows");
            return false;
        }
        // Where the config stands: as remembered, else as read now.
        let at = match known.and_then(|home| home.at) {
            Some(at) => Ok(Some(at)),
            None => match self.swarm.find_config(&name).await {
                Ok(Some(config)) if config.labels == wanted => {
                    let home = StatusHome {
                        name,
                        at: Some((config.id, config.version)),
                        labels: wanted,
                    };
                    lock(&self.status_homes).insert(service.id.clone(), home);
                    return false;
                }
                Ok(found) => Ok(found.map(|config| (config.id, config.version))),
                Err(e) => Err(e),
            },
        };
        let written = match at {
            Ok(Some((id, version))) => self.swarm.relabel_config(&id, version, &wanted).await,
            Ok(None) => {
                self.swarm
                    .create_config_with(&name, &wanted, STATUS_CONFIG_BODY)
                    .await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                let home = StatusHome {
                    name,
                    at: None,
                    labels: wanted,
                };
                lock(&self.status_homes).insert(service.id.clone(), home);
                true
            }
            Err(e) => {
                warn!(cluster = %service.name, config = %name, error = %e, "cannot write the status config; trying again on the next pass");
                lock(&self.status_homes).remove(&service.id);
                false
            }
        }
    }

    /// Removes the status config this reconciler wrote for the service of
    /// `observed`, if it remembers one.
    async fn remove_status_config(&self, observed: &Observed) {
        let id = match observed {
            Observed::Gone { id } => id.clone(),
            other => match other.service() {
                Some(service) => service.id.clone(),
                None => return,
            },
        };
        let Some(home) = lock(&self.status_homes).remove(&id) else {
            return;
        };
        match self.swarm.remove_config(&home.name).await {
            Ok(()) => {
                info!(config = %home.name, action = "remove-status-config", reason = "its service is gone or declares no cluster any more", "remove-status-config")
            }
            Err(e) => {
                warn!(config = %home.name, error = %e, "cannot remove the status config; remove it with docker config rm")
            }
        }
    }
}

/// Whether Docker refused a write for good: the request itself is wrong
/// (HTTP 4xx), as opposed to a stale version, a missing object, or trouble
/// that retrying may cure.
fn is_refusal(error: &SwarmError) -> bool {
    matches!(error, SwarmError::Api { status, .. } if (400..500).contains(status))
}

/// The `action=status` line of a status written to `home`.
fn log_status(cluster: &str, status: &ClusterStatus, home: &str) {
    let phase = status.phase.map(|p| p.to_string()).unwrap_or_default();
    let ready = status.ready.map(|r| r.to_string()).unwrap_or_default();
    let message = status.message.clone().unwrap_or_default();
    info!(
        cluster = %cluster,
        action = "status",
        reason = %format!("{phase} {ready}: {message}"),
        phase = %phase,
        ready = %ready,
        written_to = %home,
        "status"
    );
}

/// What [`Reconciler::mesh`] managed.
#[derive(Debug, Default)]
struct MeshDone {
    /// Orders sent.
    orders: usize,
    /// Orders that failed; they are retried on the next pass.
    failures: usize,
}

#[cfg(test)]
mod tests {
    //! Reconcile against the in-memory swarm and scripted nodes: which
    //! calls each situation causes, and which it must not.

    use super::*;
    use crate::aerospike::ClusterStable;
    use crate::aerospike::{InfoError, NodeId, NodeReport, PeerEntry, TipClearOutcome};
    use crate::controller::mesh::tests::report;
    use crate::controller::plan::tests::node;
    use crate::serverconf::LiveParam;
    use crate::spec::status::{MESSAGE, PHASE, READY};
    use crate::spec::ClusterSpec;
    use crate::swarm::{ready_worker, FakeSwarm, NetworkInfo, TaskInfo, WriteCall};
    use std::collections::BTreeMap;
    use std::net::IpAddr;
    use std::sync::{Arc, Mutex};

    /// What a scripted node answers, by address.
    #[derive(Default)]
    struct Script {
        nodes: BTreeMap<SocketAddr, NodeReport>,
        sent: Vec<String>,
        /// What tip-clear answers.
        clear_reply: Option<TipClearOutcome>,
        /// How many more times a node refuses connections.
        refuse: BTreeMap<SocketAddr, usize>,
        /// Each node's quiesce.
        quiesced: BTreeMap<SocketAddr, crate::controller::nodes::QuiesceState>,
        /// Each node's live parameters, by get-config command: name → value.
        live: BTreeMap<SocketAddr, BTreeMap<String, BTreeMap<String, String>>>,
        /// Parameters every node answers `error` to.
        refuse_live: BTreeSet<String>,
    }

    #[derive(Clone, Default)]
    struct ScriptedNodes(Arc<Mutex<Script>>);

    impl ScriptedNodes {
        fn set(&self, report: NodeReport) {
            let mut script = self.0.lock().unwrap();
            script.nodes.insert(report.observation.addr, report);
        }
        fn edit(&self, addr: SocketAddr, change: impl FnOnce(&mut NodeReport)) {
            change(self.0.lock().unwrap().nodes.get_mut(&addr).unwrap());
        }
        fn sent(&self) -> Vec<String> {
            self.0.lock().unwrap().sent.clone()
        }
        fn orders(&self) -> Vec<String> {
            self.sent()
                .into_iter()
                .filter(|c| !c.starts_with("observe"))
                .collect()
        }
    }

    fn refused(addr: SocketAddr) -> InfoError {
        InfoError::Connect {
            addr,
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        }
    }

    impl NodeApi for ScriptedNodes {
        async fn observe(&self, addr: SocketAddr, expected: u32) -> Result<NodeReport, InfoError> {
            let mut script = self.0.lock().unwrap();
            script.sent.push(format!("observe {addr} size={expected}"));
            if let Some(left) = script.refuse.get_mut(&addr).filter(|n| **n > 0) {
                *left -= 1;
                return Err(refused(addr));
            }
            script
                .nodes
                .get(&addr)
                .cloned()
                .ok_or_else(|| refused(addr))
        }
        async fn tip(
            &self,
            addr: SocketAddr,
            host: IpAddr,
            port: u16,
        ) -> Result<TipOutcome, InfoError> {
            let mut script = self.0.lock().unwrap();
            script.sent.push(format!("tip {addr} {host}:{port}"));
            Ok(TipOutcome::Added)
        }
        async fn tip_clear(
            &self,
            addr: SocketAddr,
            list: &[SocketAddr],
        ) -> Result<TipClearOutcome, InfoError> {
            let mut script = self.0.lock().unwrap();
            let list: Vec<String> = list.iter().map(|a| a.to_string()).collect();
            script
                .sent
                .push(format!("tip-clear {addr} {}", list.join(",")));
            Ok(script.clear_reply.unwrap_or(TipClearOutcome {
                cleared: 1,
                not_found: 0,
            }))
        }
        async fn alumni_reset(&self, addr: SocketAddr) -> Result<(), InfoError> {
            self.0
                .lock()
                .unwrap()
                .sent
                .push(format!("alumni-reset {addr}"));
            Ok(())
        }
        async fn quiesce_state(
            &self,
            addr: SocketAddr,
        ) -> Result<crate::controller::nodes::QuiesceState, InfoError> {
            let mut script = self.0.lock().unwrap();
            script.sent.push(format!("observe-quiesce {addr}"));
            Ok(script.quiesced.get(&addr).copied().unwrap_or_default())
        }
        async fn set_config(
            &self,
            addr: SocketAddr,
            param: &LiveParam,
        ) -> Result<SetConfigOutcome, InfoError> {
            let mut script = self.0.lock().unwrap();
            script
                .sent
                .push(format!("set-config {addr} {}={}", param.name, param.value));
            if script.refuse_live.contains(&param.name) {
                return Ok(SetConfigOutcome::Refused("error".into()));
            }
            script
                .live
                .entry(addr)
                .or_default()
                .entry(param.get_command())
                .or_default()
                .insert(param.name.clone(), param.value.clone());
            Ok(SetConfigOutcome::Applied)
        }
        async fn get_config(
            &self,
            addr: SocketAddr,
            param: &LiveParam,
        ) -> Result<String, InfoError> {
            let script = self.0.lock().unwrap();
            let values = script
                .live
                .get(&addr)
                .and_then(|l| l.get(&param.get_command()))
                .cloned()
                .unwrap_or_default();
            let pairs: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Ok(pairs.join(";"))
        }
        async fn recluster(&self, members: &[SocketAddr]) -> Result<(), InfoError> {
            let mut script = self.0.lock().unwrap();
            script.sent.push(format!("recluster x{}", members.len()));
            Ok(())
        }
        async fn quiesce(&self, addr: SocketAddr, members: &[SocketAddr]) -> Result<(), InfoError> {
            let mut script = self.0.lock().unwrap();
            script
                .sent
                .push(format!("quiesce {addr} recluster x{}", members.len()));
            script.quiesced.insert(
                addr,
                crate::controller::nodes::QuiesceState {
                    pending: true,
                    effective: false,
                },
            );
            Ok(())
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn task(last: u8, state: &str) -> TaskInfo {
        TaskInfo {
            id: format!("t{last}"),
            service_id: "s1".into(),
            node_id: format!("n{last}"),
            desired_state: "running".into(),
            state: state.into(),
            addresses: vec![("net1".into(), ip(last))],
            ..TaskInfo::default()
        }
    }

    use crate::spec::label_map as labels;

    /// A swarm of `nodes` nodes with network `aerospike` (net1) and service
    /// `db` (s1) carrying `spec_labels`, already placed one per node.
    fn scene(nodes: usize, replicas: u64, spec_labels: &[(&str, &str)]) -> FakeSwarm {
        let fake = FakeSwarm::new();
        fake.set_nodes((0..nodes).map(|i| ready_worker(&format!("n{i}"))).collect());
        fake.add_network(NetworkInfo::overlay("net1", "aerospike"));
        fake.put_service(ServiceInfo {
            id: "s1".into(),
            name: "db".into(),
            labels: labels(spec_labels),
            image: Some("aerospike/aerospike-server:7.1.0.0".into()),
            replicas: Some(replicas),
            max_replicas_per_node: Some(1),
            network_ids: vec!["net1".into()],
            ..ServiceInfo::default()
        });
        fake
    }

    const SPEC3: &[(&str, &str)] = &[
        ("aerospike.cluster.replicas", "3"),
        ("aerospike.cluster.version", "7.1.0.0"),
    ];

    /// A reconciler that does not wait for unreachable nodes within a
    /// pass (the tests of that set it themselves).
    fn reconciler(fake: &FakeSwarm, nodes: &ScriptedNodes) -> Reconciler<FakeSwarm, ScriptedNodes> {
        let mut r = Reconciler::new(fake.clone(), nodes.clone(), Duration::from_millis(100));
        r.patience = Duration::ZERO;
        r
    }

    /// Three running tasks whose nodes form one cluster of 3.
    fn meshed_cluster(fake: &FakeSwarm, nodes: &ScriptedNodes) {
        fake.set_tasks(vec![
            task(2, "running"),
            task(3, "running"),
            task(4, "running"),
        ]);
        for last in [2u8, 3, 4] {
            let peers: Vec<u8> = [2, 3, 4].into_iter().filter(|l| *l != last).collect();
            nodes.set(report(node(last, "AA", 3), &peers));
        }
    }

    fn label_writes(fake: &FakeSwarm) -> Vec<ServiceChange> {
        fake.writes()
            .into_iter()
            .filter_map(|w| match w {
                WriteCall::Update { change, .. } => Some(change),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_settled_cluster_causes_no_writes_and_no_tips() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let r = reconciler(&fake, &nodes);
        let first = r.reconcile("s1").await.unwrap();
        assert_eq!(first.action, Action::AwaitChange);
        assert_eq!(first.managed.as_deref(), Some("db"));
        let writes = label_writes(&fake);
        assert_eq!(writes.len(), 1, "one status write: {writes:?}");
        assert_eq!(writes[0].labels_set[PHASE], "Ready");
        assert_eq!(writes[0].labels_set[READY], "3/3");
        assert!(writes[0].replicas.is_none() && writes[0].max_replicas_per_node.is_none());

        // The status write bumped the version; that must not cause another.
        fake.clear_writes();
        for _ in 0..3 {
            let again = r.reconcile("s1").await.unwrap();
            assert_eq!(again.action, Action::AwaitChange);
        }
        assert_eq!(fake.writes(), vec![], "a settled cluster is left alone");
        assert_eq!(nodes.orders(), Vec::<String>::new(), "no tips, no clears");
    }

    #[tokio::test]
    async fn the_status_config_carries_the_live_status_and_goes_with_its_service() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        let live = fake.config_labels("db.status").expect("the status config");
        let labels = fake.service("s1").unwrap().labels;
        for key in [PHASE, READY, MESSAGE] {
            assert_eq!(live[key], labels[key], "{key}");
        }
        assert_eq!(live[STATUS_OF], "db");

        // Settled: neither this reconciler (it remembers) nor a fresh one
        // (a new leader: it reads the config once) writes it again.
        fake.clear_writes();
        r.reconcile("s1").await.unwrap();
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        assert_eq!(fake.writes(), vec![]);

        // A service whose config name would be too long for swarm gets
        // none, and no call is made for it.
        let long = "d".repeat(58);
        fake.edit_service("s1", |s| s.name = long.clone());
        fake.clear_writes();
        r.reconcile("s1").await.unwrap();
        assert!(
            !fake
                .writes()
                .iter()
                .any(|w| matches!(w, WriteCall::Config { .. })),
            "{:?}",
            fake.writes()
        );
        fake.edit_service("s1", |s| s.name = "db".into());

        // The service removed: its status config goes too.
        fake.remove_service("s1").await.unwrap();
        fake.clear_writes();
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.config_labels("db.status"), None);
        assert_eq!(
            fake.writes(),
            vec![WriteCall::RemoveConfig("db.status".into())]
        );
    }

    /// The operator's own service `ops` (o1), on no network yet.
    fn with_operator_service(fake: &FakeSwarm) {
        fake.put_service(ServiceInfo {
            id: "o1".into(),
            name: "ops".into(),
            replicas: Some(1),
            ..ServiceInfo::default()
        });
    }

    #[tokio::test]
    async fn the_operator_attaches_itself_once_then_reads_its_service_no_more() {
        use crate::controller::{Counters, Instrumented};
        let fake = scene(3, 3, SPEC3);
        with_operator_service(&fake);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let counters = Arc::new(Counters::default());
        let operator = Some(OperatorService {
            name: "ops".into(),
            attach: true,
        });
        let make = || {
            let mut r = Reconciler::new(
                Instrumented::new(fake.clone(), counters.clone()),
                nodes.clone(),
                Duration::from_millis(100),
            )
            .with_operator(operator.clone());
            r.patience = Duration::ZERO;
            r
        };
        let r = make();
        // Pass 1: the operator's service joins net1; the cluster's service
        // is not written (no status, no release), and it looks again.
        let first = r.reconcile("s1").await.unwrap();
        assert!(matches!(first.action, Action::Requeue(_)));
        let writes = fake.writes();
        assert_eq!(writes.len(), 1, "{writes:?}");
        let WriteCall::Update { id, change, .. } = &writes[0] else {
            panic!("expected an update: {writes:?}")
        };
        assert_eq!(id, "o1");
        assert_eq!(change.networks_add, ["net1"]);
        assert!(change.labels_set.is_empty() && change.replicas.is_none());
        assert_eq!(fake.service("o1").unwrap().network_ids, ["net1"]);
        // Pass 2: attached; the cluster is Ready.
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Ready");
        // Pass 3 skips the read of the operator's service that a fresh
        // reconciler (the control) makes; the fresh one also reads the
        // status config once, which the first remembers.
        let mut reads = Vec::new();
        for r in [r, make()] {
            let before = counters.snapshot().docker_reads;
            r.reconcile("s1").await.unwrap();
            reads.push(counters.snapshot().docker_reads - before);
        }
        let (cached, fresh) = (reads[0], reads[1]);
        assert_eq!(fresh, cached + 2, "cached {cached}, fresh {fresh}");
    }

    #[tokio::test]
    async fn with_attaching_forbidden_the_status_gives_the_command_and_nothing_else_changes() {
        let fake = scene(3, 3, SPEC3);
        with_operator_service(&fake);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let r = reconciler(&fake, &nodes).with_operator(Some(OperatorService {
            name: "ops".into(),
            attach: false,
        }));
        r.reconcile("s1").await.unwrap();
        let writes = label_writes(&fake);
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(writes[0].labels_set[PHASE], "Error");
        assert!(writes[0].labels_set[MESSAGE]
            .ends_with("run: docker service update --network-add aerospike ops"));
        assert!(fake.service("o1").unwrap().network_ids.is_empty());
        assert_eq!(nodes.orders(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_scaling_cluster_is_looked_at_again_sooner_than_the_poll() {
        let fake = scene(3, 1, SPEC3);
        let nodes = ScriptedNodes::default();
        let r = Reconciler::new(fake.clone(), nodes.clone(), Duration::from_secs(1));
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Scaling");
        assert_eq!(outcome.action, Action::Requeue(STARTING_RECHECK));
    }

    #[tokio::test]
    async fn adoption_sets_placement_and_scale_in_one_update() {
        let fake = scene(5, 1, SPEC3);
        fake.edit_service("s1", |s| s.max_replicas_per_node = None);
        let nodes = ScriptedNodes::default();
        let outcome = reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        assert!(matches!(outcome.action, Action::Requeue(_)));
        let writes = label_writes(&fake);
        assert_eq!(
            writes.len(),
            1,
            "placement, scale, policy and status in one write"
        );
        assert_eq!(writes[0].replicas, Some(3));
        assert_eq!(writes[0].max_replicas_per_node, Some(1));
        assert_eq!(writes[0].update_policy, Some(rollout::valve_policy()));
        assert_eq!(writes[0].labels_set[PHASE], "Scaling");
        let service = fake.service("s1").unwrap();
        assert_eq!(
            (service.replicas, service.max_replicas_per_node),
            (Some(3), Some(1))
        );
    }

    #[tokio::test]
    async fn too_few_nodes_is_degraded_and_grows_back_when_nodes_join() {
        let fake = scene(
            3,
            3,
            &[
                ("aerospike.cluster.replicas", "5"),
                ("aerospike.cluster.version", "7.1.0.0"),
            ],
        );
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        let service = fake.service("s1").unwrap();
        assert_eq!(service.replicas, Some(3));
        assert_eq!(service.labels[PHASE], "Degraded");
        assert_eq!(service.labels[READY], "3/5");
        assert!(service.labels[MESSAGE].contains("only 3 eligible nodes"));

        // A fourth node joins the swarm.
        fake.set_nodes((0..4).map(|i| ready_worker(&format!("n{i}"))).collect());
        let outcome = r.reconcile("s1").await.unwrap();
        assert!(matches!(outcome.action, Action::Requeue(_)));
        assert_eq!(fake.service("s1").unwrap().replicas, Some(4));
    }

    #[tokio::test]
    async fn a_manual_scale_is_put_back() {
        let fake = scene(5, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        fake.edit_service("s1", |s| s.replicas = Some(5));
        fake.clear_writes();
        r.reconcile("s1").await.unwrap();
        assert_eq!(label_writes(&fake)[0].replicas, Some(3));
        assert_eq!(fake.service("s1").unwrap().replicas, Some(3));
    }

    #[tokio::test]
    async fn an_out_of_sequence_update_is_retried_silently() {
        let fake = scene(3, 1, SPEC3);
        let nodes = ScriptedNodes::default();
        fake.fail_next_update_out_of_sequence();
        let outcome = reconciler(&fake, &nodes).reconcile("s1").await;
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(fake.service("s1").unwrap().replicas, Some(3));
    }

    #[tokio::test]
    async fn a_write_docker_refuses_as_a_bad_request_is_an_error_status_not_a_retry_loop() {
        // Scaling 1 -> 3 needs a service write; Docker refuses it (400).
        let fake = scene(3, 1, SPEC3);
        let nodes = ScriptedNodes::default();
        fake.refuse_updates(Some("invalid mount config for type \"volume\""));
        let r = reconciler(&fake, &nodes);
        let outcome = r
            .reconcile("s1")
            .await
            .expect("a refusal is not a pass error");
        assert_eq!(
            outcome.action,
            Action::AwaitChange,
            "not retried on a timer"
        );
        let status = fake.config_labels("db.status").expect("the status config");
        assert_eq!(status[PHASE], "Error");
        assert!(
            status[MESSAGE].contains("invalid mount config") && status[MESSAGE].contains("400"),
            "{}",
            status[MESSAGE]
        );
        assert_eq!(fake.service("s1").unwrap().replicas, Some(1));

        // Another pass over the unchanged service (an unrelated event)
        // does not try the refused write again, and keeps the Error.
        let refused_writes = || label_writes(&fake).len();
        let tried = refused_writes();
        let again = r.reconcile("s1").await.unwrap();
        assert_eq!(again.action, Action::AwaitChange);
        assert_eq!(refused_writes(), tried, "the refused write was tried again");
        assert_eq!(fake.config_labels("db.status").unwrap()[PHASE], "Error");

        // The control: a transient failure (Docker unreachable) is a pass
        // error, which the loop retries with backoff.
        fake.refuse_updates(None);
        fake.set_unreachable(true);
        assert!(r.reconcile("s1").await.is_err());
        fake.set_unreachable(false);

        // The user's fix changes the service: the next pass writes and
        // the status leaves Error.
        fake.edit_service("s1", |s| {
            s.labels.insert("fixed".into(), "1".into());
        });
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.service("s1").unwrap().replicas, Some(3));
        let status = fake.config_labels("db.status").unwrap();
        assert_ne!(status[PHASE], "Error", "{status:?}");
    }

    #[tokio::test]
    async fn invalid_labels_only_write_an_error_status_and_fixing_them_recovers() {
        let fake = scene(
            3,
            3,
            &[
                ("aerospike.cluster.replicas", "three"),
                ("aerospike.cluster.version", "7.1.0.0"),
            ],
        );
        fake.edit_service("s1", |s| s.max_replicas_per_node = None);
        let nodes = ScriptedNodes::default();
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        let writes = label_writes(&fake);
        assert_eq!(writes.len(), 1);
        assert!(writes[0].replicas.is_none() && writes[0].max_replicas_per_node.is_none());
        assert!(writes[0]
            .labels_set
            .keys()
            .all(|k| k.starts_with(STATUS_PREFIX)));
        let service = fake.service("s1").unwrap();
        assert_eq!(service.labels[PHASE], "Error");
        assert!(
            service.labels[MESSAGE].contains("aerospike.cluster.replicas"),
            "{}",
            service.labels[MESSAGE]
        );
        assert_eq!(service.max_replicas_per_node, None, "nothing else changed");
        assert!(nodes.sent().is_empty(), "no node was asked anything");

        // Again: no new write.
        fake.clear_writes();
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.writes(), vec![]);

        // Fixed: acted on.
        fake.edit_service("s1", |s| {
            s.labels
                .insert("aerospike.cluster.replicas".into(), "3".into());
        });
        r.reconcile("s1").await.unwrap();
        let service = fake.service("s1").unwrap();
        assert_eq!(service.max_replicas_per_node, Some(1));
        assert_ne!(service.labels[PHASE], "Error");
    }

    async fn error_message_for(fake: &FakeSwarm) -> String {
        let nodes = ScriptedNodes::default();
        reconciler(fake, &nodes).reconcile("s1").await.unwrap();
        let writes = label_writes(fake);
        assert_eq!(writes.len(), 1, "only the status: {writes:?}");
        assert!(writes[0].replicas.is_none() && writes[0].max_replicas_per_node.is_none());
        let service = fake.service("s1").unwrap();
        assert_eq!(service.labels[PHASE], "Error");
        service.labels[MESSAGE].clone()
    }

    #[tokio::test]
    async fn missing_secret_unknown_network_and_global_mode_are_errors() {
        let fake = scene(
            3,
            3,
            &[
                ("aerospike.cluster.replicas", "3"),
                ("aerospike.cluster.version", "7.1.0.0"),
                ("aerospike.cluster.config-secret", "aerospike.conf"),
            ],
        );
        let message = error_message_for(&fake).await;
        assert!(
            message.contains(
                "config secret \"aerospike.conf\" (aerospike.cluster.config-secret) does not exist"
            ),
            "{message}"
        );

        let fake = scene(
            3,
            3,
            &[
                ("aerospike.cluster.replicas", "3"),
                ("aerospike.cluster.version", "7.1.0.0"),
                ("aerospike.cluster.network", "nope"),
            ],
        );
        let message = error_message_for(&fake).await;
        assert!(
            message.contains("network \"nope\" (aerospike.cluster.network) does not exist"),
            "{message}"
        );

        let fake = scene(3, 3, SPEC3);
        fake.edit_service("s1", |s| s.replicas = None);
        let message = error_message_for(&fake).await;
        assert!(message.contains("global mode"), "{message}");
    }

    #[tokio::test]
    async fn a_missing_image_is_an_error_naming_it() {
        let fake = scene(3, 3, SPEC3);
        let mut rejected = task(2, "rejected");
        rejected.desired_state = "shutdown".into();
        rejected.error = Some("No such image: aerospike/aerospike-server:9.9.9".into());
        fake.set_tasks(vec![rejected, task(3, "pending")]);
        let nodes = ScriptedNodes::default();
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        let service = fake.service("s1").unwrap();
        assert_eq!(service.labels[PHASE], "Error");
        assert!(service.labels[MESSAGE].contains("aerospike/aerospike-server:9.9.9"));
    }

    #[tokio::test]
    async fn outsiders_are_tipped_and_the_cluster_is_verified_next_pass() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        fake.set_tasks(vec![
            task(2, "running"),
            task(3, "running"),
            task(4, "starting"),
        ]);
        nodes.set(report(node(2, "AA", 2), &[3]));
        nodes.set(report(node(3, "AA", 2), &[2]));
        nodes.set(report(node(4, "BB", 1), &[]));
        let r = reconciler(&fake, &nodes);
        let outcome = r.reconcile("s1").await.unwrap();
        assert!(matches!(outcome.action, Action::Requeue(_)));
        assert_eq!(nodes.orders(), vec!["tip 10.0.0.4:3000 10.0.0.2:3002"]);

        // Looked at again at once (our status write fired an event): the
        // tip just sent is given time, not repeated.
        let outcome = r.reconcile("s1").await.unwrap();
        assert!(matches!(outcome.action, Action::Requeue(_)));
        assert_eq!(nodes.orders().len(), 1, "{:?}", nodes.orders());

        // The tip worked: next pass sees one cluster and reports Ready.
        fake.set_tasks(vec![
            task(2, "running"),
            task(3, "running"),
            task(4, "running"),
        ]);
        meshed_cluster(&fake, &nodes);
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(outcome.action, Action::AwaitChange);
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Ready");
    }

    /// Survivors 10.0.0.2 and 10.0.0.3 of a cluster that 10.0.0.4 left:
    /// re-formed without it, but still listing it among their alumni.
    fn survivors_listing_a_departed_node(fake: &FakeSwarm, nodes: &ScriptedNodes) -> SocketAddr {
        fake.set_tasks(vec![task(2, "running"), task(3, "running")]);
        let departed = PeerEntry {
            node_id: NodeId(4),
            addrs: vec![ip(4)],
        };
        for (last, other) in [(2, 3), (3, 2)] {
            let mut survivor = report(node(last, "AA", 2), &[other]);
            survivor.alumni.as_mut().unwrap().push(departed.clone());
            nodes.set(survivor);
        }
        SocketAddr::new(ip(4), 3002)
    }

    #[tokio::test]
    async fn departed_nodes_are_tip_cleared_and_alumni_reset_once_per_survivor() {
        let fake = scene(
            3,
            2,
            &[
                ("aerospike.cluster.replicas", "2"),
                ("aerospike.cluster.version", "7.1.0.0"),
            ],
        );
        let nodes = ScriptedNodes::default();
        survivors_listing_a_departed_node(&fake, &nodes);
        // The real 7.1 answer when the address was a seed of neither.
        nodes.0.lock().unwrap().clear_reply = Some(TipClearOutcome {
            cleared: 0,
            not_found: 1,
        });
        let r = reconciler(&fake, &nodes);
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(
            nodes.orders(),
            vec![
                "tip-clear 10.0.0.2:3000 10.0.0.4:3002",
                "alumni-reset 10.0.0.2:3000",
                "tip-clear 10.0.0.3:3000 10.0.0.4:3002",
                "alumni-reset 10.0.0.3:3000",
            ]
        );
        assert!(matches!(outcome.action, Action::Requeue(_)));
        assert_eq!(fake.service("s1").unwrap().labels[READY], "2/2");

        // The resets worked: the survivors list their peers only. Nothing
        // more is sent, however often the cluster is looked at.
        for (last, other) in [(2, 3), (3, 2)] {
            nodes.set(report(node(last, "AA", 2), &[other]));
        }
        let before = nodes.orders().len();
        for _ in 0..3 {
            r.reconcile("s1").await.unwrap();
        }
        assert_eq!(nodes.orders().len(), before, "{:?}", nodes.orders());
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Ready");
    }

    #[tokio::test]
    async fn a_reset_that_did_not_take_is_sent_again_but_the_answered_tip_clear_is_not() {
        let fake = scene(
            3,
            2,
            &[
                ("aerospike.cluster.replicas", "2"),
                ("aerospike.cluster.version", "7.1.0.0"),
            ],
        );
        let nodes = ScriptedNodes::default();
        survivors_listing_a_departed_node(&fake, &nodes);
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        let first = nodes.orders();
        r.reconcile("s1").await.unwrap();
        let again: Vec<String> = nodes.orders()[first.len()..].to_vec();
        assert_eq!(
            again,
            vec!["alumni-reset 10.0.0.2:3000", "alumni-reset 10.0.0.3:3000"]
        );
    }

    #[tokio::test]
    async fn another_clusters_pass_does_not_make_a_tip_clear_go_out_again() {
        let fake = scene(
            3,
            2,
            &[
                ("aerospike.cluster.replicas", "2"),
                ("aerospike.cluster.version", "7.1.0.0"),
            ],
        );
        let nodes = ScriptedNodes::default();
        survivors_listing_a_departed_node(&fake, &nodes);
        // A second cluster, settled, on other addresses.
        let mut other = fake.service("s1").unwrap();
        other.id = "s2".into();
        other.name = "db2".into();
        other.labels.retain(|k, _| !k.starts_with(STATUS_PREFIX));
        fake.put_service(other);
        let mut tasks = vec![task(2, "running"), task(3, "running")];
        for last in [7u8, 8] {
            let mut t = task(last, "running");
            t.id = format!("u{last}");
            t.service_id = "s2".into();
            tasks.push(t);
        }
        fake.set_tasks(tasks);
        nodes.set(report(node(7, "CC", 2), &[8]));
        nodes.set(report(node(8, "CC", 2), &[7]));
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        let first = nodes.orders().len();
        r.reconcile("s2").await.unwrap();
        r.reconcile("s1").await.unwrap();
        let again: Vec<String> = nodes.orders()[first..].to_vec();
        assert!(
            again.iter().all(|o| o.starts_with("alumni-reset")),
            "only the resets that did not take are sent again: {again:?}"
        );
    }

    #[tokio::test]
    async fn a_restarted_operator_learns_the_clean_up_from_the_nodes() {
        let fake = scene(
            3,
            2,
            &[
                ("aerospike.cluster.replicas", "2"),
                ("aerospike.cluster.version", "7.1.0.0"),
            ],
        );
        let nodes = ScriptedNodes::default();
        // The survivors were reset before the restart: they list no
        // departed node, so a new operator sends nothing.
        fake.set_tasks(vec![task(2, "running"), task(3, "running")]);
        nodes.set(report(node(2, "AA", 2), &[3]));
        nodes.set(report(node(3, "AA", 2), &[2]));
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        assert_eq!(nodes.orders(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_node_publishing_a_gwbridge_address_is_degraded_and_named_without_orders() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let gw = IpAddr::from([10, 215, 0, 3]);
        // address any: every node publishes its gwbridge address too, and
        // two of them collide; alumni list them as the peers' addresses.
        for last in [2u8, 3, 4] {
            let addr = SocketAddr::new(ip(last), 3000);
            let gw_of = |l: u8| {
                if l == 4 {
                    IpAddr::from([10, 215, 0, 4])
                } else {
                    gw
                }
            };
            nodes.edit(addr, |r| {
                r.advertised = Some(vec![ip(last), gw_of(last)]);
                for p in r.peers.iter_mut().chain(r.alumni.iter_mut()).flatten() {
                    let l = p.node_id.0 as u8;
                    p.addrs.push(gw_of(l));
                }
            });
        }
        let r = reconciler(&fake, &nodes);
        let outcome = r.reconcile("s1").await.unwrap();
        let labels = fake.service("s1").unwrap().labels;
        assert_eq!(labels[PHASE], "Degraded");
        let message = &labels[MESSAGE];
        assert!(
            message.starts_with(
                "node 10.0.0.2:3000 publishes address 10.215.0.3, not its address on network aerospike"
            ),
            "{message}"
        );
        assert!(message.contains("address eth0"), "{message}");
        assert_eq!(outcome.action, Action::Requeue(WATCH_RECHECK));
        assert_eq!(
            nodes.orders(),
            Vec::<String>::new(),
            "no orders about phantoms"
        );
        fake.clear_writes();
        r.reconcile("s1").await.unwrap();
        assert_eq!(
            fake.writes(),
            vec![],
            "the same finding is not written again"
        );
    }

    #[tokio::test]
    async fn migrating_until_every_node_passes_the_gate_with_coarse_progress_writes() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let set_remaining = |nodes: &ScriptedNodes, remaining: [u64; 3]| {
            for (last, n) in [2u8, 3, 4].into_iter().zip(remaining) {
                nodes.edit(SocketAddr::new(ip(last), 3000), |r| {
                    r.observation.stats.migrate_partitions_remaining = n;
                    r.stable = Some(if n > 0 {
                        ClusterStable::Unstable {
                            reply: "unstable-cluster".into(),
                        }
                    } else {
                        ClusterStable::Stable {
                            cluster_key: "AA".into(),
                        }
                    });
                });
            }
        };
        set_remaining(&nodes, [1000, 1000, 730]);
        let r = reconciler(&fake, &nodes);
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(outcome.action, Action::Requeue(Duration::from_millis(100)));
        let labels = fake.service("s1").unwrap().labels;
        assert_eq!(labels[PHASE], "Migrating");
        assert_eq!(
            labels[MESSAGE],
            "waiting for migrations: 2730 partitions remaining on 3 nodes"
        );
        assert_eq!(labels["aerospike.status.migrations-remaining"], "2730");
        // Progress short of a halving: no write.
        fake.clear_writes();
        set_remaining(&nodes, [900, 800, 700]);
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.writes(), vec![]);
        // Halved: written.
        set_remaining(&nodes, [600, 500, 200]);
        r.reconcile("s1").await.unwrap();
        assert_eq!(
            fake.service("s1").unwrap().labels["aerospike.status.migrations-remaining"],
            "1300"
        );
        // Nothing left to move, but one node's cluster-stable still says
        // no: not Ready.
        set_remaining(&nodes, [0, 0, 0]);
        nodes.edit(SocketAddr::new(ip(3), 3000), |r| {
            r.stable = Some(ClusterStable::Unstable {
                reply: "unstable cluster".into(),
            })
        });
        r.reconcile("s1").await.unwrap();
        let labels = fake.service("s1").unwrap().labels;
        assert_eq!(labels[PHASE], "Migrating");
        assert!(
            labels[MESSAGE]
                .contains("10.0.0.3:3000 answers cluster-stable with \"unstable cluster\""),
            "{}",
            labels[MESSAGE]
        );
        assert!(!labels.contains_key("aerospike.status.migrations-remaining"));
        // Every node stable: Ready, settled.
        set_remaining(&nodes, [0, 0, 0]);
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Ready");
        assert_eq!(outcome.action, Action::AwaitChange);
        // The cluster-stable asked for the number of nodes that should be
        // members.
        assert!(nodes
            .sent()
            .iter()
            .all(|c| !c.starts_with("observe") || c.ends_with("size=3")));
    }

    #[tokio::test]
    async fn migrations_that_do_not_move_are_reported_stalled() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        nodes.edit(SocketAddr::new(ip(3), 3000), |r| {
            r.observation.stats.migrate_partitions_remaining = 1383;
        });
        let r = reconciler(&fake, &nodes).with_stall_timeout(Duration::from_millis(150));
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Migrating");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let outcome = r.reconcile("s1").await.unwrap();
        let labels = fake.service("s1").unwrap().labels;
        assert_eq!(labels[PHASE], "Degraded");
        assert!(
            labels[MESSAGE].starts_with(
                "migrations stalled on 10.0.0.3:3000: 1383 partitions remaining for 0.15 s"
            ),
            "{}",
            labels[MESSAGE]
        );
        assert_eq!(outcome.action, Action::Requeue(WATCH_RECHECK));
        // It moves again: Migrating.
        nodes.edit(SocketAddr::new(ip(3), 3000), |r| {
            r.observation.stats.migrate_partitions_remaining = 1000;
        });
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Migrating");
    }

    #[tokio::test]
    async fn a_label_resize_is_logged_as_one() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        fake.edit_service("s1", |s| {
            s.labels
                .insert("aerospike.cluster.replicas".into(), "2".into());
        });
        let service = fake.service("s1").unwrap();
        let previous = ClusterStatus::from_labels(&service.labels);
        let spec = ClusterSpec::from_labels(&service.labels, None)
            .unwrap()
            .unwrap();
        let plan = plan::plan_placement(&spec, &service, 3, &previous, Some(3));
        let (to, reason) = plan.set_replicas.unwrap();
        assert_eq!(to, 2);
        assert!(
            reason.starts_with("resizing from 3 to 2 replicas: the label changed from aerospike.cluster.replicas=3 to aerospike.cluster.replicas=2"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn unreachable_nodes_say_so_in_the_status() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        fake.set_tasks(vec![
            task(2, "running"),
            task(3, "running"),
            task(4, "running"),
        ]);
        let mut r = reconciler(&fake, &nodes);
        r.unreachable_grace = Duration::from_millis(200);
        // Nodes that have never answered may just be starting: wait.
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(outcome.action, Action::Requeue(Duration::from_millis(100)));
        let labels = fake.service("s1").unwrap().labels;
        assert_eq!(labels[PHASE], "Meshing");
        assert!(
            labels[MESSAGE].starts_with("waiting for 3 nodes to answer on network aerospike"),
            "{}",
            labels[MESSAGE]
        );
        // Still nothing after the grace: say why it is probably so.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(outcome.action, Action::Requeue(UNREACHABLE_RECHECK));
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Error");
        let message = fake.service("s1").unwrap().labels[MESSAGE].clone();
        assert!(
            message.starts_with(
                "cannot reach 3 nodes on network aerospike: is the operator attached to it?"
            ),
            "{message}"
        );
    }

    #[tokio::test]
    async fn nodes_reading_their_storage_back_are_cold_starting_not_unreachable() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        fake.set_tasks(vec![
            task(2, "running"),
            task(3, "running"),
            task(4, "running"),
        ]);
        for id in ["t2", "t3", "t4"] {
            fake.set_task_logs(
                id,
                &[
                    "Dec 02 2026 13:31:26 GMT: INFO (namespace): (namespace_ce.c:97) {test} beginning cold start",
                    "Dec 02 2026 13:31:31 GMT: INFO (drv_ssd): (drv_ssd.c:2932) {test} loaded: objects 500 device-pcts (12)",
                ],
            );
        }
        let mut r = reconciler(&fake, &nodes);
        r.unreachable_grace = Duration::from_millis(200);
        r.reconcile("s1").await.unwrap();
        // Past the grace in which silent nodes become an Error (the
        // control: unreachable_nodes_say_so_in_the_status), they are still
        // cold-starting, and the status says how far.
        tokio::time::sleep(Duration::from_millis(250)).await;
        r.reconcile("s1").await.unwrap();
        let labels = fake.service("s1").unwrap().labels;
        assert_eq!(labels[PHASE], "Meshing", "{labels:?}");
        assert!(
            labels[MESSAGE].contains(
                "10.0.0.2:3000 is cold-starting namespace test: 500 objects loaded, device 12%"
            ),
            "{}",
            labels[MESSAGE]
        );
        // Once a node listens its log says so, and it is asked as any other.
        fake.set_task_logs(
            "t2",
            &[
                "{test} beginning cold start",
                "Started client endpoint 10.0.0.2:3000",
            ],
        );
        let again = reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        assert!(matches!(again.action, Action::Requeue(_)));
        let message = fake.service("s1").unwrap().labels[MESSAGE].clone();
        assert!(
            !message.contains("10.0.0.2:3000 is cold-starting"),
            "{message}"
        );
    }

    /// The one way a secret's contents could reach the operator: a node's
    /// console (`GET /tasks/{id}/logs`, read for cold starts), where a
    /// server may echo the config file it was given as a secret. Through
    /// passes that read those logs (TRACE logging on), the contents appear
    /// in no log line, no status label (service or status config) and no
    /// write. The control: text of the one form the operator does report
    /// (a cold-starting namespace's name) goes through the same path and
    /// is found by the same search.
    #[tokio::test]
    async fn a_secrets_contents_in_a_nodes_console_reach_no_log_and_no_status() {
        use crate::controller::fixtures::LogSink;
        const SECRET: &str = "hunter2-6f1c0a";
        const SHOWN: &str = "ns4e9b";
        let sink = LogSink::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let _logs = tracing::subscriber::set_default(subscriber);

        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        fake.set_tasks(vec![
            task(2, "running"),
            task(3, "running"),
            task(4, "running"),
        ]);
        let echoed = [
            "Dec 02 2026 13:31:20 GMT: INFO (config): (cfg.c:4094) security {",
            &format!("Dec 02 2026 13:31:20 GMT: INFO (config): (cfg.c:4094)     password {SECRET}"),
            &format!("Dec 02 2026 13:31:20 GMT: WARNING (config): (cfg.c:312) unknown value {SECRET} beginning"),
            "Dec 02 2026 13:31:26 GMT: INFO (namespace): (namespace_ce.c:97) {test} beginning cold start",
            "Dec 02 2026 13:31:31 GMT: INFO (drv_ssd): (drv_ssd.c:2932) {test} loaded: objects 500 device-pcts (12)",
        ];
        for id in ["t2", "t3"] {
            fake.set_task_logs(id, &echoed);
        }
        // The control's node: its console names a namespace.
        fake.set_task_logs(
            "t4",
            &[&format!(
                "INFO (namespace): (namespace_ce.c:97) {{{SHOWN}}} beginning cold start"
            )],
        );
        let mut r = reconciler(&fake, &nodes);
        r.unreachable_grace = Duration::from_millis(100);
        r.reconcile("s1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        r.reconcile("s1").await.unwrap();

        let labels = fake.service("s1").unwrap().labels;
        let live = fake.config_labels("db.status").unwrap_or_default();
        let writes = format!("{:?}", fake.writes());
        let logs = sink.text();
        assert!(
            labels[MESSAGE].contains("cold-starting namespace test"),
            "the consoles were read: {}",
            labels[MESSAGE]
        );
        assert!(
            logs.contains("task_logs") || logs.contains("status"),
            "logging is captured: {logs}"
        );
        for (what, text) in [
            ("the service's labels", format!("{labels:?}")),
            ("the status config", format!("{live:?}")),
            ("the writes", writes),
            ("the log", logs),
        ] {
            assert!(!text.contains(SECRET), "{what} carry the secret: {text}");
            if what != "the log" {
                assert!(text.contains(SHOWN), "control: {what} show {SHOWN}: {text}");
            }
        }
    }

    /// A node's console is the node's to write: a namespace name of 100 KB,
    /// with escape sequences and newlines, still makes a status whose every
    /// label is within [`crate::spec::status::STATUS_VALUE_MAX`] and prints
    /// on one line.
    #[tokio::test]
    async fn a_hostile_console_cannot_make_a_status_label_exceed_its_bound() {
        use crate::spec::status::STATUS_VALUE_MAX;
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        fake.set_tasks(vec![
            task(2, "running"),
            task(3, "running"),
            task(4, "running"),
        ]);
        let huge = format!("\u{1b}[31m{}\u{7}", "x\u{1b}]0;pwned\u{7}é".repeat(10_000));
        for id in ["t2", "t3", "t4"] {
            fake.set_task_logs(id, &[&format!("{{{huge}}} beginning cold start")]);
        }
        let mut r = reconciler(&fake, &nodes);
        r.unreachable_grace = Duration::from_millis(100);
        r.reconcile("s1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        r.reconcile("s1").await.unwrap();
        let labels = fake.service("s1").unwrap().labels;
        let live = fake.config_labels("db.status").unwrap();
        assert!(
            labels[MESSAGE].contains("cold-starting namespace"),
            "{}",
            labels[MESSAGE]
        );
        for (key, value) in labels.iter().chain(live.iter()) {
            if key.starts_with(STATUS_PREFIX) {
                assert!(
                    value.len() <= STATUS_VALUE_MAX,
                    "{key}: {} bytes",
                    value.len()
                );
                assert!(!value.chars().any(char::is_control), "{key}: {value:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_new_task_that_does_not_answer_yet_is_asked_again_soon() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        // A fourth task has just started: running, not listening yet.
        fake.edit_service("s1", |s| s.replicas = Some(3));
        fake.set_tasks(vec![
            task(2, "running"),
            task(3, "running"),
            task(5, "running"),
        ]);
        nodes
            .0
            .lock()
            .unwrap()
            .nodes
            .remove(&SocketAddr::new(ip(4), 3000));
        let mut r = Reconciler::new(fake.clone(), nodes.clone(), Duration::from_secs(1));
        r.unreachable_grace = Duration::from_millis(300);
        r.patience = Duration::ZERO;
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Meshing");
        assert_eq!(outcome.action, Action::Requeue(STARTING_RECHECK));
        // Still silent after the grace: the ordinary converging pace.
        tokio::time::sleep(Duration::from_millis(350)).await;
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(outcome.action, Action::Requeue(Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn a_node_that_starts_listening_within_the_pass_is_tipped_in_that_pass() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        // 10.0.0.4 has just started: alone, and refusing connections for
        // its first two tries.
        let newcomer = SocketAddr::new(ip(4), 3000);
        nodes.set(report(node(4, "BB", 1), &[]));
        nodes.0.lock().unwrap().refuse.insert(newcomer, 2);
        let r = Reconciler::new(fake.clone(), nodes.clone(), Duration::from_secs(1));
        r.reconcile("s1").await.unwrap();
        assert_eq!(nodes.orders(), vec!["tip 10.0.0.4:3000 10.0.0.2:3002"]);
        let tries = nodes
            .sent()
            .iter()
            .filter(|c| c.starts_with("observe 10.0.0.4"))
            .count();
        assert_eq!(tries, 3, "{:?}", nodes.sent());
    }

    #[tokio::test]
    async fn gone_and_unmanaged_services_are_dropped_and_docker_errors_are_errors() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        let r = reconciler(&fake, &nodes);
        assert_eq!(r.reconcile("nope").await.unwrap().managed, None);
        fake.put_service(ServiceInfo {
            id: "s2".into(),
            name: "web".into(),
            replicas: Some(2),
            ..ServiceInfo::default()
        });
        assert_eq!(r.reconcile("s2").await.unwrap().managed, None);
        assert_eq!(fake.writes(), vec![]);
        fake.set_unreachable(true);
        assert!(r.reconcile("s1").await.is_err());
    }

    /// [`scene`] plus, beside `db` (s1), copies of it on no task: `db-b`
    /// (s2) and `db-none` (s3) with the same valid spec, `db-bad` (s4) with
    /// an invalid one. s1 is `team=a`, s2 and s4 `team=b`, s3 has no team.
    fn teams_scene(nodes: &ScriptedNodes) -> FakeSwarm {
        let fake = scene(3, 3, SPEC3);
        meshed_cluster(&fake, nodes);
        fake.edit_service("s1", |s| {
            s.labels.insert("team".into(), "a".into());
        });
        let db = fake.service("s1").unwrap();
        let bad = [("aerospike.cluster.replicas", "three"), ("team", "b")];
        for (id, name, pairs) in [
            ("s2", "db-b", &[SPEC3[0], SPEC3[1], ("team", "b")][..]),
            ("s3", "db-none", SPEC3),
            ("s4", "db-bad", &bad[..]),
        ] {
            fake.put_service(ServiceInfo {
                id: id.into(),
                name: name.into(),
                labels: labels(pairs),
                ..db.clone()
            });
        }
        fake.clear_writes();
        fake
    }

    fn team_a() -> Option<ClusterSelector> {
        Some("team=a".parse().unwrap())
    }

    #[tokio::test]
    async fn with_a_selector_only_the_selected_cluster_is_managed_and_others_get_no_write() {
        let nodes = ScriptedNodes::default();
        let fake = teams_scene(&nodes);
        let r = reconciler(&fake, &nodes).with_selector(team_a());

        // team=a: converged as ever.
        let outcome = r.reconcile("s1").await.unwrap();
        assert_eq!(outcome.managed.as_deref(), Some("db"));
        let writes: Vec<WriteCall> = fake
            .writes()
            .into_iter()
            .filter(|w| !matches!(w, WriteCall::Config { name, .. } if name == "db.status"))
            .collect();
        assert_eq!(writes.len(), 1, "one status write: {writes:?}");
        assert!(matches!(&writes[0], WriteCall::Update { id, .. } if id == "s1"));
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Ready");

        // team=b, no team, and an invalid spec with team=b: one read each,
        // no write, no node asked anything, no status (not even Error).
        fake.clear_writes();
        let (reads, sent) = (fake.reads(), nodes.sent().len());
        for id in ["s2", "s3", "s4"] {
            let outcome = r.reconcile(id).await.unwrap();
            assert_eq!(outcome, Outcome::unmanaged(), "{id}");
            let service = fake.service(id).unwrap();
            assert!(
                !service.labels.keys().any(|k| k.starts_with(STATUS_PREFIX)),
                "{id}: {:?}",
                service.labels
            );
        }
        assert_eq!(fake.writes(), vec![]);
        assert_eq!(fake.reads() - reads, 3, "one inspect each");
        assert_eq!(nodes.sent().len(), sent);
    }

    #[tokio::test]
    async fn without_a_selector_the_other_teams_clusters_are_managed() {
        let nodes = ScriptedNodes::default();
        let fake = teams_scene(&nodes);
        let r = reconciler(&fake, &nodes);
        for (id, name) in [
            ("s1", "db"),
            ("s2", "db-b"),
            ("s3", "db-none"),
            ("s4", "db-bad"),
        ] {
            let outcome = r.reconcile(id).await.unwrap();
            assert_eq!(outcome.managed.as_deref(), Some(name));
            assert!(fake.service(id).unwrap().labels.contains_key(PHASE), "{id}");
        }
        assert_eq!(fake.service("s4").unwrap().labels[PHASE], "Error");
        for id in ["s2", "s3", "s4"] {
            assert!(
                fake.writes()
                    .iter()
                    .any(|w| matches!(w, WriteCall::Update { id: written, .. } if written == id)),
                "{id} written"
            );
        }
    }

    #[tokio::test]
    async fn a_cluster_that_stops_matching_is_forgotten_as_if_its_replicas_label_went() {
        // What a removed aerospike.cluster.replicas label does: the valve
        // released (one write, the policy only), forgotten, the last status
        // labels left as they were.
        let removed = |edit: fn(&mut ServiceInfo), selector: Option<ClusterSelector>| async move {
            let nodes = ScriptedNodes::default();
            let fake = teams_scene(&nodes);
            let r = reconciler(&fake, &nodes).with_selector(selector);
            assert_eq!(
                r.reconcile("s1").await.unwrap().managed.as_deref(),
                Some("db")
            );
            let status = fake.service("s1").unwrap().labels;
            fake.clear_writes();
            fake.edit_service("s1", edit);
            let outcome = r.reconcile("s1").await.unwrap();
            let labels = fake.service("s1").unwrap().labels;
            let kept: Vec<_> = labels
                .iter()
                .filter(|(k, _)| k.starts_with(STATUS_PREFIX))
                .collect();
            let before: Vec<_> = status
                .iter()
                .filter(|(k, _)| k.starts_with(STATUS_PREFIX))
                .collect();
            assert_eq!(kept, before, "the status labels stay");
            assert!(!kept.is_empty());
            let remembered = r.last_set().contains_key("s1")
                || r.progress().contains_key("s1")
                || lock(&r.silent_since).contains_key("s1")
                || r.answered().contains_key("s1");
            (outcome, label_writes(&fake), remembered)
        };
        let by_label = removed(
            |s| {
                s.labels.remove("aerospike.cluster.replicas");
                s.labels.remove("aerospike.cluster.version");
            },
            team_a(),
        )
        .await;
        let by_selector = removed(
            |s| {
                s.labels.insert("team".into(), "b".into());
            },
            team_a(),
        )
        .await;
        let by_team_removed = removed(
            |s| {
                s.labels.remove("team");
            },
            team_a(),
        )
        .await;
        assert_eq!(by_label, (Outcome::unmanaged(), vec![released()], false));
        assert_eq!(by_selector, by_label);
        assert_eq!(by_team_removed, by_label);
    }

    #[tokio::test]
    async fn paused_clusters_only_get_a_status() {
        let fake = scene(
            3,
            1,
            &[
                ("aerospike.cluster.replicas", "3"),
                ("aerospike.cluster.version", "7.1.0.0"),
                ("aerospike.cluster.paused", "true"),
            ],
        );
        let nodes = ScriptedNodes::default();
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        let service = fake.service("s1").unwrap();
        assert_eq!(service.replicas, Some(1));
        assert_eq!(service.labels[PHASE], "Paused");
        assert!(nodes.sent().is_empty());
    }

    // --- the rollout at the reconcile seam: which passes write the service
    // (each write lets swarm replace the next node) and which must not.

    use crate::spec::status::ROLLOUT;
    use crate::swarm::fake_fingerprint;

    const SPEC_72: &[(&str, &str)] = &[
        ("aerospike.cluster.replicas", "3"),
        ("aerospike.cluster.version", "7.2.0.0"),
        ("aerospike.cluster.config-secret", "conf"),
    ];

    /// Three meshed tasks on the service's current template, the valve
    /// set, the status remembering 7.1.0.0.
    fn rolled_scene() -> (FakeSwarm, ScriptedNodes) {
        let fake = scene(3, 3, SPEC_72);
        fake.add_secret("conf");
        fake.edit_service("s1", |s| {
            s.update_policy = Some(rollout::valve_policy());
            s.rollback_policy = Some(rollout::valve_policy());
            s.labels.insert(
                crate::spec::status::IMAGE.into(),
                "aerospike/aerospike-server:7.1.0.0".into(),
            );
        });
        let fp = fake.service("s1").unwrap().template_fingerprint;
        (fake.clone(), on_template(&fake, &fp))
    }

    /// Three tasks (slots 2–4) running template `fp`, their nodes meshed
    /// in one cluster of 3.
    fn on_template(fake: &FakeSwarm, fp: &str) -> ScriptedNodes {
        fake.set_tasks(
            [2u8, 3, 4]
                .into_iter()
                .map(|l| TaskInfo {
                    template_fingerprint: fp.to_string(),
                    slot: Some(u64::from(l)),
                    created_at: Some("2026-12-01T12:00:00Z".into()),
                    ..task(l, "running")
                })
                .collect(),
        );
        let nodes = ScriptedNodes::default();
        for last in [2u8, 3, 4] {
            let peers: Vec<u8> = [2, 3, 4].into_iter().filter(|l| *l != last).collect();
            nodes.set(report(node(last, "AA", 3), &peers));
        }
        nodes
    }

    #[tokio::test]
    async fn a_version_change_writes_the_image_once_then_nothing_while_the_node_changes() {
        let (fake, nodes) = rolled_scene();
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        let writes = label_writes(&fake);
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(
            writes[0].image.as_deref(),
            Some("aerospike/aerospike-server:7.2.0.0")
        );
        assert_eq!(writes[0].labels_set[PHASE], "Upgrading");
        assert_eq!(writes[0].labels_set[ROLLOUT], "0/3");

        // Swarm replaced .2: its new task runs the new template, alone.
        let service = fake.service("s1").unwrap();
        let mut tasks: Vec<TaskInfo> = fake.tasks();
        tasks.retain(|t| t.id != "t2");
        tasks.push(TaskInfo {
            id: "t2b".into(),
            template_fingerprint: fake_fingerprint(&service),
            slot: Some(2),
            created_at: Some("2026-12-01T12:05:00Z".into()),
            ..task(2, "running")
        });
        fake.set_tasks(tasks);
        nodes.set(report(node(2, "B2", 1), &[]));
        // A problem found meanwhile (the config secret is gone) must not be
        // written either: any write would release the next node.
        fake.remove_secret("conf");
        fake.clear_writes();
        for _ in 0..3 {
            r.reconcile("s1").await.unwrap();
        }
        assert_eq!(
            label_writes(&fake),
            vec![],
            "no service write while a node changes"
        );
        // The problem is shown live in the status config, which releases
        // nothing.
        let live = fake.config_labels("db.status").expect("a status config");
        assert_eq!(live[PHASE], "Error", "{live:?}");
        assert!(live[MESSAGE].contains("\"conf\""), "{live:?}");
        // The control: with no node changing, the same problem is written.
        let (fresh, fresh_nodes) = rolled_scene();
        fresh.edit_service("s1", |s| {
            s.image = Some("aerospike/aerospike-server:7.2.0.0".into())
        });
        let fp = fresh.service("s1").unwrap().template_fingerprint;
        fresh.set_tasks(
            fresh
                .tasks()
                .into_iter()
                .map(|t| TaskInfo {
                    template_fingerprint: fp.clone(),
                    ..t
                })
                .collect(),
        );
        fresh.remove_secret("conf");
        reconciler(&fresh, &fresh_nodes)
            .reconcile("s1")
            .await
            .unwrap();
        assert_eq!(fresh.service("s1").unwrap().labels[PHASE], "Error");
    }

    // --- a config object: checked before it rolls, dynamic parameters set
    // live with set-config, a refusal falls back to the rolling restart.

    use crate::spec::status::{CONFIG, CONFIG_LIVE};
    use crate::swarm::SecretMount;

    const EXAMPLE_CONF: &str = include_str!("../../crd-like-specs/examples/aerospike.conf");

    /// Three meshed nodes on a template mounting config object `conf-a`
    /// (the example config), the spec naming `to` (whose text is `text`).
    fn config_scene(to: &str, text: &str, extra: &[(&str, &str)]) -> (FakeSwarm, ScriptedNodes) {
        let mut spec = vec![
            ("aerospike.cluster.replicas", "3"),
            ("aerospike.cluster.version", "7.1.0.0"),
            ("aerospike.cluster.config-object", to),
        ];
        spec.extend_from_slice(extra);
        let fake = scene(3, 3, &spec);
        fake.add_config_text("conf-a", EXAMPLE_CONF);
        if to != "conf-a" {
            fake.add_config_text(to, text);
        }
        let service = fake.edit_service("s1", |s| {
            s.update_policy = Some(rollout::valve_policy());
            s.rollback_policy = Some(rollout::valve_policy());
            s.config_mounts = vec![SecretMount {
                name: "conf-a".into(),
                target: "/run/secrets/aerospike.conf".into(),
            }];
            s.labels.insert(
                crate::spec::status::IMAGE.into(),
                "aerospike/aerospike-server:7.1.0.0".into(),
            );
            s.labels
                .insert(crate::spec::status::CONFIG_OBJECT.into(), "conf-a".into());
        });
        let nodes = on_template(&fake, &service.template_fingerprint);
        (fake, nodes)
    }

    fn set_configs(nodes: &ScriptedNodes) -> Vec<String> {
        nodes
            .sent()
            .into_iter()
            .filter(|c| c.starts_with("set-config"))
            .collect()
    }

    /// The template writes (a rollout's start).
    fn template_writes(fake: &FakeSwarm) -> Vec<ServiceChange> {
        label_writes(fake)
            .into_iter()
            .filter(|c| c.rolls_tasks())
            .collect()
    }

    /// The status the service shows now: its labels with the status
    /// config's on top.
    fn shown(fake: &FakeSwarm) -> BTreeMap<String, String> {
        let mut labels = fake.service("s1").unwrap().labels;
        if let Some(live) = fake.config_labels("db.status") {
            labels.extend(live);
        }
        labels
    }

    #[tokio::test]
    async fn a_dynamic_change_is_set_live_on_every_node_and_again_on_one_that_restarts() {
        let raised = EXAMPLE_CONF.replace("proto-fd-max 15000", "proto-fd-max 16000");
        let (fake, nodes) = config_scene("conf-b", &raised, &[]);
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        let mut sent = set_configs(&nodes);
        sent.sort();
        assert_eq!(
            sent,
            [2, 3, 4]
                .map(|l| format!("set-config {}:3000 proto-fd-max=16000", ip(l)))
                .to_vec()
        );
        assert_eq!(template_writes(&fake), vec![], "no task restarts");
        // Not Ready until every node shows it.
        assert_ne!(shown(&fake)[PHASE], "Ready", "{:?}", shown(&fake));

        // The next pass reads every node's get-config back.
        r.reconcile("s1").await.unwrap();
        assert_eq!(set_configs(&nodes).len(), 3, "nothing sent twice");
        let status = shown(&fake);
        assert_eq!(status[PHASE], "Ready", "{status:?}");
        assert_eq!(status[CONFIG], "applied live (proto-fd-max)");
        assert_eq!(status[CONFIG_LIVE], "conf-b");
        assert_eq!(template_writes(&fake), vec![]);

        // Node .3 restarts (a crash): it runs the template's config again.
        nodes
            .0
            .lock()
            .unwrap()
            .live
            .remove(&SocketAddr::new(ip(3), 3000));
        r.reconcile("s1").await.unwrap();
        assert_eq!(
            set_configs(&nodes)[3..],
            [format!("set-config {}:3000 proto-fd-max=16000", ip(3))]
        );
        assert_ne!(
            shown(&fake)[PHASE],
            "Ready",
            "not Ready while a node lacks it"
        );
        r.reconcile("s1").await.unwrap();
        assert_eq!(shown(&fake)[PHASE], "Ready");
        assert_eq!(template_writes(&fake), vec![]);
    }

    #[tokio::test]
    async fn moving_from_a_secret_to_a_config_object_rolls_it_in_once() {
        let (fake, nodes) = config_scene("conf-a", EXAMPLE_CONF, &[]);
        // The template mounts the secret there, not a config object.
        let service = fake.edit_service("s1", |s| {
            s.config_mounts.clear();
            s.secret_mounts = vec![SecretMount {
                name: "aerospike.conf".into(),
                target: "aerospike.conf".into(),
            }];
            s.labels.remove(crate::spec::status::CONFIG_OBJECT);
        });
        fake.add_secret("aerospike.conf");
        let nodes = {
            drop(nodes);
            on_template(&fake, &service.template_fingerprint)
        };
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        let writes = template_writes(&fake);
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(
            writes[0].config_at_target,
            Some(SecretMount {
                name: "conf-a".into(),
                target: "/run/secrets/aerospike.conf".into(),
            })
        );
        assert!(set_configs(&nodes).is_empty());
        let after = fake.service("s1").unwrap();
        assert!(after.secret_mounts.is_empty(), "{:?}", after.secret_mounts);
        let status = shown(&fake);
        assert!(
            status[CONFIG].contains("mounts no config object yet"),
            "{status:?}"
        );
    }

    #[tokio::test]
    async fn the_next_rolling_restart_mounts_the_config_that_runs_live() {
        let raised = EXAMPLE_CONF.replace("proto-fd-max 15000", "proto-fd-max 16000");
        let (fake, nodes) = config_scene("conf-b", &raised, &[]);
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        r.reconcile("s1").await.unwrap();
        assert_eq!(shown(&fake)[CONFIG_LIVE], "conf-b");
        // A new version: the rollout mounts conf-b with the new image.
        fake.edit_service("s1", |s| {
            s.labels
                .insert("aerospike.cluster.version".into(), "7.2.0.0".into());
        });
        fake.clear_writes();
        r.reconcile("s1").await.unwrap();
        let writes = template_writes(&fake);
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(
            writes[0].image.as_deref(),
            Some("aerospike/aerospike-server:7.2.0.0")
        );
        assert_eq!(
            writes[0].config_at_target.as_ref().map(|m| m.name.as_str()),
            Some("conf-b")
        );
        // Once every task mounts it, nothing runs live any more.
        let service = fake.service("s1").unwrap();
        fake.set_tasks(
            fake.tasks()
                .into_iter()
                .map(|t| TaskInfo {
                    template_fingerprint: service.template_fingerprint.clone(),
                    ..t
                })
                .collect(),
        );
        r.reconcile("s1").await.unwrap();
        let status = shown(&fake);
        assert_eq!(status.get(CONFIG_LIVE), None, "{status:?}");
        assert_eq!(status[PHASE], "Ready", "{status:?}");
    }

    #[tokio::test]
    async fn a_static_change_rolls_and_a_refused_live_one_falls_back_to_rolling() {
        // The control: a line the server takes only at start rolls at once.
        let sprigs = EXAMPLE_CONF.replace(
            "replication-factor 2",
            "replication-factor 2\n\tpartition-tree-sprigs 512",
        );
        let (fake, nodes) = config_scene("conf-b", &sprigs, &[]);
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        let writes = template_writes(&fake);
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(
            writes[0].config_at_target.as_ref().map(|m| m.name.as_str()),
            Some("conf-b")
        );
        assert!(set_configs(&nodes).is_empty());
        let status = shown(&fake);
        assert!(
            status[CONFIG].starts_with("rolling restart (")
                && status[CONFIG].contains("partition-tree-sprigs"),
            "{status:?}"
        );

        // A dynamic parameter the nodes refuse: set-config once, then the
        // rolling restart, with the node's words.
        let raised = EXAMPLE_CONF.replace("proto-fd-max 15000", "proto-fd-max 16000");
        let (fake, nodes) = config_scene("conf-b", &raised, &[]);
        nodes
            .0
            .lock()
            .unwrap()
            .refuse_live
            .insert("proto-fd-max".into());
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        assert_eq!(set_configs(&nodes).len(), 1, "stops at the first refusal");
        assert_eq!(template_writes(&fake), vec![]);
        r.reconcile("s1").await.unwrap();
        let writes = template_writes(&fake);
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert!(writes[0].config_at_target.is_some());
        let status = shown(&fake);
        assert!(
            status[CONFIG].contains("refused set-config proto-fd-max=16000: error"),
            "{status:?}"
        );
    }

    #[tokio::test]
    async fn rack_id_on_community_is_refused_before_anything_rolls() {
        let racked =
            EXAMPLE_CONF.replace("replication-factor 2", "replication-factor 2\n\track-id 1");
        let (fake, nodes) = config_scene("conf-b", &racked, &[]);
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        let status = shown(&fake);
        assert_eq!(status[PHASE], "Error", "{status:?}");
        assert!(status[MESSAGE].contains("rack-id"), "{status:?}");
        assert!(
            status[MESSAGE].contains("nothing was restarted"),
            "{status:?}"
        );
        assert_eq!(template_writes(&fake), vec![]);
        assert!(set_configs(&nodes).is_empty());
        // The control: on an Enterprise image the same config may go on.
        let (fake, nodes) = config_scene(
            "conf-b",
            &racked,
            &[("aerospike.cluster.edition", "enterprise")],
        );
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        let status = shown(&fake);
        assert_ne!(status[PHASE], "Error", "{status:?}");
    }

    // --- letting go: the valve comes off a service the operator stops
    // managing, and off no other.

    use crate::swarm::UpdatePolicy;

    /// The one write that releases the valve.
    fn released() -> ServiceChange {
        ServiceChange {
            update_policy: Some(rollout::released_policy()),
            ..ServiceChange::default()
        }
    }

    #[tokio::test]
    async fn a_cluster_whose_replicas_label_goes_gets_the_plain_policy_once_and_nothing_else() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        meshed_cluster(&fake, &nodes);
        let r = reconciler(&fake, &nodes);
        r.reconcile("s1").await.unwrap();
        let managed = fake.service("s1").unwrap();
        assert!(rollout::is_valve(managed.update_policy.as_ref()));
        assert!(rollout::is_valve(managed.rollback_policy.as_ref()));
        fake.clear_writes();
        let sent = nodes.sent().len();

        fake.edit_service("s1", |s| {
            s.labels
                .retain(|k, _| !k.starts_with(crate::spec::CLUSTER_PREFIX));
        });
        assert_eq!(r.reconcile("s1").await.unwrap(), Outcome::unmanaged());
        assert_eq!(label_writes(&fake), vec![released()]);
        let let_go = fake.service("s1").unwrap();
        assert_eq!(let_go.update_policy, Some(rollout::released_policy()));
        assert_eq!(let_go.rollback_policy, Some(rollout::released_policy()));
        assert!(!rollout::is_valve(let_go.update_policy.as_ref()));
        assert_eq!(let_go.labels[PHASE], "Ready", "the status labels stay");
        assert_eq!(let_go.replicas, managed.replicas);
        assert_eq!(nodes.sent().len(), sent, "no node asked anything");

        // The pass our own write triggers, and any later one: nothing.
        fake.clear_writes();
        for _ in 0..2 {
            assert_eq!(r.reconcile("s1").await.unwrap(), Outcome::unmanaged());
        }
        assert_eq!(fake.writes(), vec![]);

        // A restarted operator (nothing remembered) finds nothing to do.
        let restarted = reconciler(&fake, &nodes);
        restarted.reconcile("s1").await.unwrap();
        assert_eq!(fake.writes(), vec![]);
    }

    #[tokio::test]
    async fn a_cluster_let_go_while_nobody_remembers_it_is_released_by_its_status_labels() {
        // The label removed while the operator was down: the status labels
        // say an operator managed it.
        let (fake, nodes) = rolled_scene();
        fake.edit_service("s1", |s| {
            s.labels
                .retain(|k, _| !k.starts_with(crate::spec::CLUSTER_PREFIX));
        });
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        assert_eq!(label_writes(&fake), vec![released()]);
    }

    #[tokio::test]
    async fn a_cluster_let_go_mid_rollout_is_released_and_swarm_carries_on() {
        // Tasks still on the old template: the release hands them to
        // swarm's updater (one at a time, RELEASED_DELAY apart).
        let (fake, nodes) = rolled_scene();
        fake.edit_service("s1", |s| {
            s.image = Some("aerospike/aerospike-server:7.2.0.0".into());
            s.labels
                .retain(|k, _| !k.starts_with(crate::spec::CLUSTER_PREFIX));
        });
        let service = fake.service("s1").unwrap();
        assert!(fake.tasks().iter().all(|t| rollout::is_stale(t, &service)));
        reconciler(&fake, &nodes).reconcile("s1").await.unwrap();
        assert_eq!(label_writes(&fake), vec![released()]);
        assert_eq!(
            fake.service("s1").unwrap().image,
            service.image,
            "the template is left as it is"
        );
    }

    #[tokio::test]
    async fn a_service_never_managed_keeps_its_own_policy() {
        let fake = scene(3, 3, SPEC3);
        let nodes = ScriptedNodes::default();
        let r = reconciler(&fake, &nodes);
        let own = UpdatePolicy {
            parallelism: 2,
            delay_ns: Duration::from_secs(10).as_nanos() as u64,
            failure_action: "rollback".into(),
            monitor_ns: 0,
            order: "start-first".into(),
        };
        // A stranger with a policy of its own, and one that holds swarm
        // for days as the valve does but was never a cluster (no status
        // labels, never seen managed).
        let held = UpdatePolicy {
            delay_ns: Duration::from_secs(7 * 24 * 3600).as_nanos() as u64,
            ..rollout::valve_policy()
        };
        for (id, policy) in [("s2", own), ("s3", held)] {
            fake.put_service(ServiceInfo {
                id: id.into(),
                name: format!("web-{id}"),
                replicas: Some(2),
                labels: labels(&[("team", "web")]),
                update_policy: Some(policy.clone()),
                rollback_policy: Some(policy),
                ..ServiceInfo::default()
            });
            assert_eq!(r.reconcile(id).await.unwrap(), Outcome::unmanaged());
        }
        assert_eq!(fake.writes(), vec![]);
    }

    #[tokio::test]
    async fn a_cluster_dropped_by_the_selector_is_released_and_another_operators_is_not() {
        let nodes = ScriptedNodes::default();
        let fake = teams_scene(&nodes);
        let r = reconciler(&fake, &nodes).with_selector(team_a());
        r.reconcile("s1").await.unwrap();
        assert!(rollout::is_valve(
            fake.service("s1").unwrap().update_policy.as_ref()
        ));
        fake.clear_writes();

        // team=a dropped: released once.
        fake.edit_service("s1", |s| {
            s.labels.remove("team");
        });
        assert_eq!(r.reconcile("s1").await.unwrap(), Outcome::unmanaged());
        assert_eq!(label_writes(&fake), vec![released()]);
        fake.clear_writes();
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.writes(), vec![]);

        // Moved to team=b, whose operator puts the valve back: not released
        // again (no fight over the policy).
        fake.edit_service("s1", |s| {
            s.labels.insert("team".into(), "b".into());
            s.update_policy = Some(rollout::valve_policy());
            s.rollback_policy = Some(rollout::valve_policy());
        });
        r.reconcile("s1").await.unwrap();
        assert_eq!(fake.writes(), vec![]);

        // team=b's own cluster, with its valve and status: never ours.
        let theirs = fake.service("s1").unwrap();
        fake.edit_service("s2", |s| {
            s.update_policy = theirs.update_policy.clone();
            s.rollback_policy = theirs.rollback_policy.clone();
            s.labels.extend(
                theirs
                    .labels
                    .iter()
                    .filter(|(k, _)| k.starts_with(STATUS_PREFIX))
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        });
        r.reconcile("s2").await.unwrap();
        assert_eq!(fake.writes(), vec![]);
    }
}
