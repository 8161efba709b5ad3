//! Observe: every read of one pass over one cluster, into one value.
//!
//! [`Reconciler::observe`] reads the service, its tasks, the swarm's
//! nodes, what the spec refers to (network, config secret, the operator's
//! own service) and every Aerospike node, and returns an [`Observed`]. It
//! reads no further than the facts allow: a service whose labels do not
//! parse is not asked for its nodes, and a paused one is not either. It
//! writes nothing to Docker or to a node; it updates only the reconciler's
//! memory of what it saw (which nodes answered, since when a node is
//! silent, each node's migration count), which is itself an observation
//! across passes.
//!
//! [`super::decide`] turns the value into a decision; nothing there reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use tokio::time::Instant;
use tracing::warn;

use crate::aerospike::coldstart::{self, ColdStart};
use crate::aerospike::{ClusterView, InfoError, NodeId, NodeReport};
use crate::serverconf::LiveParam;
use crate::spec::{ClusterSpec, ClusterStatus, Edition};
use crate::swarm::{
    eligible_nodes, NetworkInfo, NodeState, ServiceInfo, SwarmApi, SwarmError, TaskFilter, TaskInfo,
};

use super::attach;
use super::liveconfig::{self, ConfigObservation, ConfigText};
use super::nodes::{NodeApi, QuiesceState};
use super::plan::{self, Stall, TaskSummary};
use super::reconcile::{lock, ReconcileError, Reconciler, RETRY_GAP};
use super::rollout;
use super::scaledown;
use super::selector::managed_spec;

/// What one pass saw of one service, as far as it could read.
#[derive(Debug, Clone)]
pub enum Observed {
    /// The service does not exist (any more).
    Gone {
        /// The id the pass was asked about.
        id: String,
    },
    /// It exists but this operator does not manage it: it declares no
    /// cluster, or the selector does not match it.
    Unmanaged {
        /// The service.
        service: ServiceInfo,
        /// It still carries the operator's valve and this operator managed
        /// it (see [`Reconciler::was_managed`]): the release is due. Then
        /// how many of its tasks still run an older template.
        release: Option<usize>,
        /// It declares a cluster (another operator's selector may match it).
        declares_cluster: bool,
    },
    /// Its `aerospike.cluster.*` labels do not parse.
    Invalid {
        /// The service.
        service: ServiceInfo,
        /// One line per bad label.
        problems: Vec<String>,
        /// Whether a task still runs an older template (a rollout's node is
        /// changing).
        changing: bool,
    },
    /// The spec parsed, but the pass could read no further: paused, a
    /// problem the user must fix, or the operator not on the network.
    Stopped {
        /// The service.
        service: ServiceInfo,
        /// Its spec.
        spec: Box<ClusterSpec>,
        /// Whether a task still runs an older template.
        changing: bool,
        /// Why the pass stopped there.
        why: Stop,
    },
    /// Everything was read.
    Cluster(Box<ClusterObservation>),
}

/// Why a pass read no further than the spec.
#[derive(Debug, Clone)]
pub enum Stop {
    /// `aerospike.cluster.paused=true` and no rollout under way.
    Paused,
    /// What the spec refers to is wrong (no such network, secret, global
    /// mode, constraints that parse to nothing): the message for the
    /// status.
    Problem(String),
    /// The operator's own service is not on the cluster's network:
    /// [`attach::Reach::Attach`] or [`attach::Reach::Forbidden`].
    Unreached(attach::Reach),
}

/// Every fact of a full pass over one managed cluster.
#[derive(Debug, Clone)]
pub struct ClusterObservation {
    /// The service.
    pub service: ServiceInfo,
    /// Its parsed spec.
    pub spec: ClusterSpec,
    /// Every task of the service, old ones included.
    pub all_tasks: Vec<TaskInfo>,
    /// Whether a task still runs an older template.
    pub changing: bool,
    /// Whether the pause config (`<service>.pause`) exists.
    pub pause_config: bool,
    /// The cluster network.
    pub network: NetworkInfo,
    /// Swarm nodes the service's tasks may run on.
    pub eligible: usize,
    /// The replica count this operator last set, if it remembers one.
    pub last_set: Option<u64>,
    /// The tasks, summarised (running, up with an address, on lost nodes).
    pub tasks: TaskSummary,
    /// The service endpoints asked: one per task that is up.
    pub addrs: Vec<SocketAddr>,
    /// What each node that answered said.
    pub reports: Vec<NodeReport>,
    /// The nodes that did not answer, with the error (cold-starting ones
    /// not among them).
    pub unreachable: Vec<(SocketAddr, String)>,
    /// The nodes that answered something unusable, or too slowly, with the
    /// error ([`InfoError::is_misbehaviour`]): up, and not to be trusted
    /// (see [`super::suspect`]).
    pub misbehaving: Vec<(SocketAddr, String)>,
    /// Which node held each node id as of the last pass
    /// ([`super::suspect::remember`]): a node that reports an id another
    /// node holds is not trusted.
    pub id_holders: BTreeMap<NodeId, SocketAddr>,
    /// The nodes that did not answer because they are cold-starting: their
    /// task runs and its console says it is reading its storage back.
    pub cold_starting: Vec<ColdStarting>,
    /// Every task whose cold start this reconciler followed (under way or
    /// over, while the task is meant to run), with when it last made
    /// progress: a rollout's join clock runs from then.
    pub cold_progress: BTreeMap<String, SystemTime>,
    /// How long those have been silent.
    pub silence: Silence,
    /// The answers grouped into clusters.
    pub view: ClusterView,
    /// The tip-clears nodes have answered before (never sent again).
    pub answered: BTreeSet<(SocketAddr, SocketAddr)>,
    /// Migrations that have not moved for the stall timeout.
    pub stalled: Option<Stall>,
    /// The quiesce state of the node that leaves next in an Enterprise
    /// scale-down, when one is due.
    pub quiesce: Option<QuiesceState>,
    /// When the pass read the tasks (wall clock, for the join timeout).
    pub now: SystemTime,
    /// Since when this reconciler has watched the cluster (its first pass
    /// over it in this process): a rollout's join clock never runs from
    /// before it, so a new leader does not roll back a node that no
    /// operator was there to tip.
    pub watched_since: SystemTime,
    /// What the cluster's config object asks of the nodes (see
    /// [`super::liveconfig`]).
    pub config: ConfigObservation,
}

/// The config objects a pass read: the spec's, and, while it is not what
/// every node runs, the one the template mounts and the one applied live.
#[derive(Debug, Clone)]
struct ConfigInputs {
    to: ConfigText,
    mounted: Option<ConfigText>,
    live: Option<ConfigText>,
}

/// A node reading its storage back (see [`crate::aerospike::coldstart`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdStarting {
    /// Its service endpoint.
    pub addr: SocketAddr,
    /// Its task.
    pub task: String,
    /// Where its cold start stands, as last read (when it last grew is in
    /// [`ClusterObservation::cold_progress`]).
    pub cold: ColdStart,
}

/// A cold start as the reconciler follows it across passes.
#[derive(Debug, Clone)]
pub(crate) struct ColdWatch {
    cold: ColdStart,
    read_at: Instant,
    progressed_at: SystemTime,
    /// The node answers: its cold start is over (`progressed_at` is when
    /// that was seen).
    over: bool,
}

/// How often a cold-starting node's log is read again: the server writes
/// its progress line every 5 s.
const COLD_START_REREAD: Duration = Duration::from_secs(5);

/// How many of a task's last log lines are read for its cold start.
const COLD_START_TAIL: usize = 200;

/// How long the nodes that did not answer have been silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Silence {
    /// Every silent node has been so for the whole grace (and there is
    /// one).
    pub all_past_grace: bool,
    /// Some silent node went silent within the grace: most likely a task
    /// that has just started and is not listening yet.
    pub some_new: bool,
}

impl Observed {
    /// The service, when it exists.
    pub fn service(&self) -> Option<&ServiceInfo> {
        match self {
            Observed::Gone { .. } => None,
            Observed::Unmanaged { service, .. }
            | Observed::Invalid { service, .. }
            | Observed::Stopped { service, .. } => Some(service),
            Observed::Cluster(cluster) => Some(&cluster.service),
        }
    }

    /// The status the service's labels carry now.
    pub fn previous(&self) -> ClusterStatus {
        self.service()
            .map(|s| ClusterStatus::from_labels(&s.labels))
            .unwrap_or_default()
    }
}

impl<S: SwarmApi, N: NodeApi> Reconciler<S, N> {
    /// Reads everything one pass over service `id` needs. See the module
    /// docs.
    pub(crate) async fn observe(&self, id: &str) -> Result<Observed, ReconcileError> {
        let service = match self.swarm.inspect_service(id).await {
            Err(e) if e.is_not_found() => return Ok(Observed::Gone { id: id.to_string() }),
            result => result?,
        };
        let spec = match managed_spec(
            self.selector.as_ref(),
            &service.labels,
            service.image.as_deref(),
        ) {
            Ok(None) => return self.observe_unmanaged(service).await,
            Ok(Some(spec)) => spec,
            Err(errors) => {
                let problems = errors.errors().iter().map(|e| e.to_string()).collect();
                let changing = self.stale_tasks(&service).await? > 0;
                return Ok(Observed::Invalid {
                    service,
                    problems,
                    changing,
                });
            }
        };
        let all_tasks = self
            .swarm
            .list_tasks(&TaskFilter::services([service.id.clone()]))
            .await?;
        let changing = rollout::stale_running(&all_tasks, &service) > 0;
        let pause_config = self
            .swarm
            .config_exists(&rollout::pause_config_name(&service.name))
            .await?;
        let stopped = |service, spec, why| {
            Ok(Observed::Stopped {
                service,
                spec: Box::new(spec),
                changing,
                why,
            })
        };

        // Paused, with no rollout under way: nothing more is needed. (During
        // a rollout the pass goes on: the node that is changing is meshed
        // in, and the next one is not released.)
        if spec.paused() && !changing {
            return stopped(service, spec, Stop::Paused);
        }
        let network = match self.check_inputs(&service, &spec).await? {
            Ok(network) => network,
            Err(message) => return stopped(service, spec, Stop::Problem(message)),
        };
        match self.operator_reach(&network).await? {
            attach::Reach::Attached => {}
            reach => return stopped(service, spec, Stop::Unreached(reach)),
        }
        let nodes = self.swarm.list_nodes().await?;
        let eligible = match eligible_nodes(&nodes, &service.constraints) {
            Ok(eligible) => eligible.len(),
            Err(e) => {
                let message = format!(
                    "{e}; fix it with docker service update --constraint-rm/--constraint-add"
                );
                return stopped(service, spec, Stop::Problem(message));
            }
        };
        let config_inputs = match self.config_inputs(&service, &spec, eligible).await? {
            Ok(inputs) => inputs,
            Err(message) => return stopped(service, spec, Stop::Problem(message)),
        };
        let now = SystemTime::now();
        let watched_since = *lock(&self.watched_since)
            .entry(service.id.clone())
            .or_insert(now);
        let last_set = self.last_set().get(&service.id).copied();
        let lost: BTreeSet<&str> = nodes
            .iter()
            .filter(|n| n.state != NodeState::Ready)
            .map(|n| n.id.as_str())
            .collect();
        let tasks = plan::summarise_tasks(&all_tasks, &network.id, &lost);

        // Every node, one request each, all at once.
        let port = spec.service_port();
        let expected = tasks.up.len() as u32;
        let addrs: Vec<SocketAddr> = tasks
            .up
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();
        let answered_before = lock(&self.answering)
            .get(&service.id)
            .cloned()
            .unwrap_or_default();
        let replies =
            join_all(addrs.iter().map(|addr| {
                self.observe_patiently(*addr, expected, !answered_before.contains(addr))
            }))
            .await;
        let mut reports = Vec::new();
        let mut unreachable = Vec::new();
        let mut misbehaving = Vec::new();
        for (addr, reply) in addrs.iter().zip(replies) {
            match reply {
                Ok(report) => reports.push(report),
                Err(e) if e.is_misbehaviour() => {
                    warn!(cluster = %service.name, node = %addr, error = %e, "a node answered unusably: not trusting it this pass");
                    misbehaving.push((*addr, e.to_string()))
                }
                Err(e) => unreachable.push((*addr, e.to_string())),
            }
        }
        let id_holders = lock(&self.node_ids)
            .get(&service.id)
            .cloned()
            .unwrap_or_default();
        lock(&self.answering).insert(
            service.id.clone(),
            reports.iter().map(|r| r.observation.addr).collect(),
        );
        let (cold_starting, cold_progress) = self
            .cold_starts(
                &service.id,
                &all_tasks,
                &network.id,
                &answered_before,
                &mut unreachable,
            )
            .await;
        let silence = self.silence(&service.id, &unreachable);
        let view = ClusterView::from(
            reports
                .iter()
                .map(|r| r.observation.clone())
                .collect::<Vec<_>>(),
        );
        let answered = {
            let mut all = self.answered();
            let answered = all.entry(service.id.clone()).or_default();
            answered.retain(|(node, _)| addrs.contains(node));
            answered.clone()
        };
        let stalled = self
            .progress()
            .entry(service.id.clone())
            .or_default()
            .observe(&reports, Instant::now(), self.stall_timeout);

        // An Enterprise scale-down hands the leaving node's partitions off
        // first (quiesce): read where that stands when a node is due to
        // leave.
        let previous = ClusterStatus::from_labels(&service.labels);
        let target = plan::plan_placement(&spec, &service, eligible, &previous, last_set).target;
        let current = service.replicas.unwrap_or(0);
        let enterprise = spec.edition(service.image.as_deref()) == Edition::Enterprise;
        let quiesce =
            if !changing && enterprise && target < current && tasks.running as u64 == current {
                self.leaving_quiesce(&service.name, &all_tasks, &network.id, port)
                    .await
            } else {
                None
            };

        let config = match config_inputs {
            None => ConfigObservation::Settled,
            Some(inputs) => self.config_state(&service, &spec, inputs, &reports).await,
        };

        Ok(Observed::Cluster(Box::new(ClusterObservation {
            service,
            spec,
            all_tasks,
            changing,
            pause_config,
            network,
            eligible,
            last_set,
            tasks,
            addrs,
            reports,
            unreachable,
            misbehaving,
            id_holders,
            cold_starting,
            cold_progress,
            silence,
            view,
            answered,
            stalled,
            quiesce,
            now,
            watched_since,
            config,
        })))
    }

    /// A service this operator does not manage: whether its valve is ours
    /// to release, and if so how many tasks a rollout left on the old
    /// template.
    async fn observe_unmanaged(&self, service: ServiceInfo) -> Result<Observed, ReconcileError> {
        let valve = rollout::is_valve(service.update_policy.as_ref())
            || rollout::is_valve(service.rollback_policy.as_ref());
        let release = if valve && self.was_managed(&service) {
            Some(self.stale_tasks(&service).await?)
        } else {
            None
        };
        let declares_cluster = self.declares_cluster(&service);
        Ok(Observed::Unmanaged {
            service,
            release,
            declares_cluster,
        })
    }

    /// Which of the `unreachable` nodes are cold-starting: their task runs,
    /// it has not answered since it started (a node that answered the last
    /// pass and does not now has died: no log is read for it, so that a
    /// crash is reported at once), and its console log (read at most every
    /// [`COLD_START_REREAD`], all at once, each bounded in time) shows a
    /// cold start under way. Those are taken out of `unreachable`. A log
    /// that cannot be read leaves the node unreachable (logged at debug:
    /// the pass goes on). Also every followed task's last progress.
    async fn cold_starts(
        &self,
        service_id: &str,
        tasks: &[TaskInfo],
        network_id: &str,
        answered_before: &BTreeSet<SocketAddr>,
        unreachable: &mut Vec<(SocketAddr, String)>,
    ) -> (Vec<ColdStarting>, BTreeMap<String, SystemTime>) {
        let before = lock(&self.cold_starts)
            .get(service_id)
            .cloned()
            .unwrap_or_default();
        // The silent nodes that may be cold-starting, and their tasks.
        let candidates: Vec<(SocketAddr, &TaskInfo)> = unreachable
            .iter()
            .filter(|(addr, _)| !answered_before.contains(addr))
            .filter_map(|(addr, _)| {
                tasks
                    .iter()
                    .find(|t| {
                        t.desired_state == "running"
                            && t.state == "running"
                            && t.address_on(network_id) == Some(addr.ip())
                    })
                    .map(|t| (*addr, t))
            })
            .collect();
        let due = |task: &TaskInfo| {
            before
                .get(&task.id)
                .is_none_or(|w| w.read_at.elapsed() >= COLD_START_REREAD)
        };
        let logs = join_all(
            candidates
                .iter()
                .filter(|(_, t)| due(t))
                .map(|(_, t)| async {
                    (
                        t.id.clone(),
                        self.swarm.task_logs(&t.id, COLD_START_TAIL).await,
                    )
                }),
        )
        .await;
        let mut read: HashMap<String, Option<ColdStart>> = HashMap::new();
        for (id, result) in logs {
            match result {
                Ok(lines) => {
                    let cold = coldstart::read(lines.iter().map(String::as_str))
                        .filter(ColdStart::in_progress);
                    read.insert(id, cold);
                }
                Err(e) => {
                    tracing::debug!(task = %id, error = %e, "cannot read the task's log for a cold start");
                }
            }
        }
        let mut now_watched = HashMap::new();
        let mut found = Vec::new();
        for (addr, task) in &candidates {
            let earlier = before.get(&task.id);
            let watch = match read.remove(&task.id) {
                // Read now: in progress or not.
                Some(cold) => cold.map(|cold| {
                    let progressed_at = match earlier {
                        Some(w) if w.cold.progress_mark() >= cold.progress_mark() => {
                            w.progressed_at
                        }
                        _ => SystemTime::now(),
                    };
                    ColdWatch {
                        cold,
                        read_at: Instant::now(),
                        progressed_at,
                        over: false,
                    }
                }),
                // Not due, or unreadable: as last read.
                None => earlier.filter(|w| !w.over).cloned(),
            };
            if let Some(w) = watch {
                found.push(ColdStarting {
                    addr: *addr,
                    task: task.id.clone(),
                    cold: w.cold.clone(),
                });
                now_watched.insert(task.id.clone(), w);
            }
        }
        unreachable.retain(|(addr, _)| !found.iter().any(|c| c.addr == *addr));
        // A node whose cold start ended answers now but may not have joined
        // yet: its join clock runs from the end of the cold start (progress
        // too), for as long as its task is meant to run.
        for (id, mut watch) in before {
            let running = tasks
                .iter()
                .any(|t| t.id == id && t.desired_state == "running");
            if running && !now_watched.contains_key(&id) {
                if !watch.over {
                    watch.over = true;
                    watch.progressed_at = SystemTime::now();
                }
                now_watched.insert(id, watch);
            }
        }
        let progress = now_watched
            .iter()
            .map(|(id, w)| (id.clone(), w.progressed_at))
            .collect();
        let mut all = lock(&self.cold_starts);
        if now_watched.is_empty() {
            all.remove(service_id);
        } else {
            all.insert(service_id.to_string(), now_watched);
        }
        (found, progress)
    }

    /// How many of `service`'s running tasks still run an older template
    /// (a rollout's nodes not replaced yet), read afresh.
    async fn stale_tasks(&self, service: &ServiceInfo) -> Result<usize, SwarmError> {
        let tasks = self
            .swarm
            .list_tasks(&TaskFilter::services([service.id.clone()]))
            .await?;
        Ok(rollout::stale_running(&tasks, service))
    }

    /// The quiesce state of the task that leaves next, if it has an
    /// address; a failed read is logged and counts as unknown.
    async fn leaving_quiesce(
        &self,
        cluster: &str,
        all_tasks: &[TaskInfo],
        network_id: &str,
        port: u16,
    ) -> Option<QuiesceState> {
        let running: Vec<TaskInfo> = all_tasks
            .iter()
            .filter(|t| t.desired_state == "running")
            .cloned()
            .collect();
        let ip = scaledown::leaving(&running, network_id)?.address_on(network_id)?;
        self.nodes
            .quiesce_state(SocketAddr::new(ip, port))
            .await
            .map_err(|e| warn!(cluster = %cluster, error = %e, "cannot read the quiesce state"))
            .ok()
    }

    /// Observes the node at `addr`; one that cannot be reached is tried
    /// again every [`RETRY_GAP`] for up to the reconciler's patience: a
    /// task that has just started cannot be reached until its overlay
    /// endpoint is wired, usually for a few hundred milliseconds, and
    /// waiting within the pass tips it the moment it can be reached rather
    /// than a pass later. Not `patient` (it answered the last pass): asked
    /// once.
    async fn observe_patiently(
        &self,
        addr: SocketAddr,
        expected: u32,
        patient: bool,
    ) -> Result<NodeReport, InfoError> {
        if !patient {
            return self.nodes.observe(addr, expected).await;
        }
        let started = Instant::now();
        let deadline = started + self.patience;
        let mut attempts = 0u32;
        let mut last_error = None;
        loop {
            attempts += 1;
            match self.nodes.observe(addr, expected).await {
                Err(e) if e.is_unreachable() && Instant::now() + RETRY_GAP < deadline => {
                    last_error = Some(e.to_string());
                    tokio::time::sleep(RETRY_GAP).await
                }
                other => {
                    if let Some(last_error) = last_error {
                        tracing::debug!(
                            node = %addr,
                            attempts,
                            waited_ms = started.elapsed().as_millis() as u64,
                            answered = other.is_ok(),
                            %last_error,
                            "a node asked patiently"
                        );
                    }
                    return other;
                }
            }
        }
    }

    /// Records which of cluster `id`'s nodes did not answer this pass, and
    /// for how long each has been silent.
    fn silence(&self, id: &str, unreachable: &[(SocketAddr, String)]) -> Silence {
        let mut all = lock(&self.silent_since);
        let since = all.entry(id.to_string()).or_default();
        let now = Instant::now();
        since.retain(|addr, _| unreachable.iter().any(|(a, _)| a == addr));
        let mut silence = Silence {
            all_past_grace: !unreachable.is_empty(),
            some_new: false,
        };
        for (addr, _) in unreachable {
            let first = *since.entry(*addr).or_insert(now);
            let past = now.duration_since(first) >= self.unreachable_grace;
            silence.all_past_grace &= past;
            silence.some_new |= !past;
        }
        silence
    }

    /// Whether the operator's own service is on `network` (see [`attach`]).
    /// Outside swarm, or when its service cannot be read, the operator
    /// was connected some other way: nothing to do. Reads the operator's
    /// service only while the network is not among those it was last seen
    /// on, so a settled cluster's pass costs no extra read.
    async fn operator_reach(&self, network: &NetworkInfo) -> Result<attach::Reach, SwarmError> {
        let Some(operator) = &self.operator else {
            return Ok(attach::Reach::Attached);
        };
        if lock(&self.operator_networks).contains(&network.id) {
            return Ok(attach::Reach::Attached);
        }
        let own = match self.swarm.inspect_service(&operator.name).await {
            Err(e) if e.is_not_found() => {
                tracing::debug!(service = %operator.name, "the operator's own service is gone");
                return Ok(attach::Reach::Attached);
            }
            result => result?,
        };
        lock(&self.operator_networks).clone_from(&own.network_ids);
        Ok(attach::decide(
            operator,
            &own.network_ids,
            &network.id,
            &network.name,
        ))
    }

    /// The spec's config object (a missing one is a problem for the
    /// status) and, while it is not what every node runs, the template's
    /// and the live one; a new config that does not parse or fails a
    /// check stops the pass here, before anything rolls. `Ok(Ok(None))`:
    /// no config object, or nothing to change.
    async fn config_inputs(
        &self,
        service: &ServiceInfo,
        spec: &ClusterSpec,
        eligible: usize,
    ) -> Result<Result<Option<ConfigInputs>, String>, SwarmError> {
        let Some(name) = &spec.config_object else {
            return Ok(Ok(None));
        };
        let Some(text) = self.swarm.config_text(name).await? else {
            return Ok(Err(format!(
                "config object {name:?} ({}) does not exist; create it with docker config \
                 create {name} aerospike.conf",
                crate::spec::CONFIG_OBJECT
            )));
        };
        let to = ConfigText {
            name: name.clone(),
            text,
        };
        let status = ClusterStatus::from_labels(&service.labels);
        let mounted = rollout::Target::of_template(spec, service).config_object;
        let live = status.config_live.filter(|l| l != name);
        if mounted.as_deref() == Some(name.as_str()) && live.is_none() {
            return Ok(Ok(None));
        }
        if let Some(problem) = liveconfig::refusal(&to, spec, service, eligible) {
            return Ok(Err(problem));
        }
        let mounted = liveconfig::read_config(&self.swarm, mounted).await?;
        let live = liveconfig::read_config(&self.swarm, live).await?;
        Ok(Ok(Some(ConfigInputs { to, mounted, live })))
    }

    /// How the config change happens: live (with what each node that
    /// answered still lacks, read with `get-config`) or by a rolling
    /// restart.
    async fn config_state(
        &self,
        service: &ServiceInfo,
        spec: &ClusterSpec,
        inputs: ConfigInputs,
        reports: &[NodeReport],
    ) -> ConfigObservation {
        let refused = lock(&self.live_refused)
            .get(&service.id)
            .filter(|(config, _)| *config == inputs.to.name)
            .map(|(_, words)| words.clone());
        let plan = liveconfig::plan(
            spec,
            service,
            &inputs.to,
            inputs.mounted.as_ref(),
            inputs.live.as_ref(),
            refused.as_deref(),
        );
        let params = match plan {
            Err(reasons) => {
                return ConfigObservation::Restart {
                    to: inputs.to.name,
                    reasons,
                }
            }
            Ok(params) => params,
        };
        // One parameter per distinct `get-config` command (a context's
        // reply holds all of its parameters); the nodes are read at once,
        // as the node observation reads them, each node's commands in turn.
        let mut by_command: BTreeMap<String, &LiveParam> = BTreeMap::new();
        for param in &params {
            by_command.entry(param.get_command()).or_insert(param);
        }
        let read_node = |addr: SocketAddr| {
            let by_command = &by_command;
            let params = &params;
            async move {
                let mut replies = BTreeMap::new();
                for (command, param) in by_command {
                    match self.nodes.get_config(addr, param).await {
                        Ok(reply) => {
                            replies.insert(command.clone(), reply);
                        }
                        Err(e) => {
                            warn!(cluster = %service.name, node = %addr, error = %e, "cannot read get-config; setting the live parameters again")
                        }
                    }
                }
                (addr, liveconfig::unverified(params, &replies))
            }
        };
        let pending: BTreeMap<_, _> = join_all(
            reports
                .iter()
                .map(|report| read_node(report.observation.addr)),
        )
        .await
        .into_iter()
        .collect();
        ConfigObservation::Live {
            to: inputs.to.name,
            // `plan` refuses a live change when the template mounts no
            // config object.
            mounted: inputs.mounted.map(|m| m.name).unwrap_or_default(),
            params,
            pending,
        }
    }

    /// Checks what the spec refers to. `Ok(Err(message))` is a problem for
    /// the user; `Ok(Ok(network))` the cluster network.
    async fn check_inputs(
        &self,
        service: &ServiceInfo,
        spec: &ClusterSpec,
    ) -> Result<Result<NetworkInfo, String>, SwarmError> {
        if service.replicas.is_none() {
            return Ok(Err(
                "the service runs in global mode (one task on every node); the operator manages \
                 replicated services only: recreate it with --mode replicated"
                    .into(),
            ));
        }
        let network = match &spec.network {
            Some(wanted) => match self.swarm.network(wanted).await? {
                None => {
                    return Ok(Err(format!(
                        "network {wanted:?} (aerospike.cluster.network) does not exist; create \
                         it with docker network create --driver overlay --attachable {wanted}"
                    )))
                }
                Some(network) if !service.network_ids.contains(&network.id) => {
                    return Ok(Err(format!(
                        "network {wanted:?} (aerospike.cluster.network) is not attached to the \
                         service; attach it with docker service update --network-add {wanted}"
                    )))
                }
                Some(network) => network,
            },
            None => {
                let Some(first) = service.network_ids.first() else {
                    return Ok(Err(
                        "the service is attached to no network, so its nodes cannot reach each \
                         other; attach an overlay network (docker service update --network-add \
                         NAME) and name it in aerospike.cluster.network"
                            .into(),
                    ));
                };
                match self.swarm.network(first).await? {
                    Some(network) => network,
                    None => {
                        return Ok(Err(format!(
                            "the service's network {first} does not exist any more; attach an \
                             overlay network and name it in aerospike.cluster.network"
                        )))
                    }
                }
            }
        };
        if let Some(secret) = &spec.config_secret {
            if !self.swarm.secret_exists(secret).await? {
                return Ok(Err(format!(
                    "config secret {secret:?} (aerospike.cluster.config-secret) does not exist; \
                     create it with docker secret create {secret} aerospike.conf"
                )));
            }
        }
        Ok(Ok(network))
    }
}
