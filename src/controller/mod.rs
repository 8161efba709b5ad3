//! The control loop: `aerospike-swarm-operator run`.
//!
//! Modelled on kube-runtime's `Controller`, without Kubernetes:
//!
//! - [`watch`]: triggers — the swarm event stream, one task poll for all
//!   clusters (fast while any converges, slow when settled), a periodic
//!   full resync;
//! - [`membership`]: the trigger swarm does not give: a held connection to
//!   every member and one small probe per cluster every 0.5 s, which wake
//!   a cluster's reconcile when a node dies, goes silent or leaves;
//! - [`scheduler`]: a queue keyed by service id that de-duplicates
//!   triggers, runs one reconcile per cluster at a time and many clusters
//!   in parallel; and the error policy (per-cluster exponential backoff
//!   with jitter, from `backon`);
//! - [`reconcile`]: one pass over one cluster, returning an [`Action`]:
//!   [`observe`] reads everything into one value, [`decide`] decides from
//!   it alone, and the reconciler applies the decision;
//! - [`plan`] and [`mesh`]: the pure decisions a pass makes (replicas,
//!   placement, status; tips, clean-up of departed nodes, stray
//!   addresses);
//! - [`nodes`] and [`telemetry`]: the info calls, logs and counters;
//! - [`selector`]: which clusters this operator manages
//!   (`--cluster-selector`), so that several can share one swarm.
//!
//! [`run`] wires these to the real Docker engine; [`Controller`] is the
//! same loop over any [`SwarmApi`] and [`NodeApi`], which is how the tests
//! drive it against an in-memory swarm and in-process Aerospike nodes.

pub mod attach;
pub mod decide;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod http;
pub mod leader;
pub mod liveconfig;
pub mod membership;
pub mod mesh;
pub mod metrics;
pub mod nodes;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod rollout;
pub mod scaledown;
pub mod scheduler;
pub mod selector;
pub mod suspect;
pub mod telemetry;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;
use tracing::{debug, info, warn};

use crate::aerospike::InfoClient;
use crate::swarm::{self, SwarmApi, SwarmError};

pub use attach::OperatorService;
pub use http::{Health, Role};
pub use membership::{MembershipWatch, WatchSet};
pub use metrics::{ClusterGauges, Metrics, Trigger};
pub use nodes::{CountingInfo, NodeApi};
pub use reconcile::{Action, Outcome, ReconcileError, Reconciler};
pub use scheduler::{ErrorPolicy, Queue, Scheduler};
pub use selector::{ClusterSelector, SelectorError};
pub use telemetry::{init_logging, CounterSnapshot, Counters, Instrumented, LogFormat};

/// How long the operator waits for a node's service port to accept a
/// connection. On an overlay network a connection is made in well under a
/// millisecond, or never: a task that is still starting drops the first
/// packets until its endpoint is wired up. A short wait lets the pass try
/// such a node again 25 ms later (for up to 1.5 s), so that it is tipped
/// the moment it can be reached.
pub const NODE_CONNECT_TIMEOUT: Duration = Duration::from_millis(100);

/// The timings of the loop (the `run` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Full resync period (`--resync-interval`).
    pub resync_interval: Duration,
    /// Task poll period while any cluster converges (`--poll-fast`); also
    /// the delay before a converging cluster is looked at again.
    pub poll_fast: Duration,
    /// Task poll period when every cluster is settled (`--poll-slow`).
    pub poll_slow: Duration,
    /// Period of the `action="counters"` log line (`--counters-interval`).
    pub counters_interval: Duration,
    /// Most reconciles running at once (different clusters).
    pub max_parallel: usize,
    /// How long a node's migration count may stay unchanged before the
    /// status calls the migrations stalled (`--migration-stall-timeout`).
    pub migration_stall_timeout: Duration,
    /// How long a task of a new template may take to start and join during
    /// a rollout before it is rolled back (`--node-join-timeout`).
    pub node_join_timeout: Duration,
    /// Where `/metrics`, `/healthz` and `/readyz` are served
    /// (`--metrics-address`); `None`: nowhere.
    pub metrics_address: Option<SocketAddr>,
    /// High availability: the lease replicas elect a leader on
    /// (`--leader-election`, `--lease-*`; see [`leader`]).
    pub leader_election: leader::LeaderElection,
    /// The operator's own swarm service (`--operator-service`; [`run`]
    /// finds it from the container it runs in when not given; `None`
    /// outside swarm).
    pub operator_service: Option<String>,
    /// Whether the operator attaches its service to a cluster's network it
    /// is not on (`--no-attach-networks` turns it off; see [`attach`]).
    pub attach_networks: bool,
    /// Which clusters this operator manages (`--cluster-selector`):
    /// `None`, every one; otherwise only the services whose labels match
    /// (see [`selector`]). The others are left alone as unmanaged ones are.
    pub cluster_selector: Option<ClusterSelector>,
    /// Whether the membership watch runs (`--no-membership-watch` turns it
    /// off; see [`membership`]).
    pub membership_watch: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            resync_interval: Duration::from_secs(60),
            poll_fast: Duration::from_secs(1),
            poll_slow: Duration::from_secs(10),
            counters_interval: Duration::from_secs(30),
            max_parallel: 16,
            migration_stall_timeout: reconcile::DEFAULT_STALL_TIMEOUT,
            node_join_timeout: rollout::DEFAULT_JOIN_TIMEOUT,
            metrics_address: None,
            leader_election: leader::LeaderElection::default(),
            operator_service: None,
            attach_networks: true,
            cluster_selector: None,
            membership_watch: true,
        }
    }
}

/// Connects to Docker as the CLI does, refuses an engine that is not a
/// swarm manager, and runs the loop until SIGTERM or Ctrl-C; in-flight
/// reconciles finish before it returns.
pub async fn run(mut options: RunOptions) -> Result<(), SwarmError> {
    let docker = swarm::connect_from_env().await?;
    let engine = swarm::preflight(&docker).await?;
    if options.operator_service.is_none() {
        options.operator_service = own_service(&docker).await;
    }
    match &options.operator_service {
        Some(service) => info!(
            service = %service,
            attach_networks = options.attach_networks,
            "running as a swarm service"
        ),
        None => info!(
            "not running as a swarm service (no --operator-service, and this container is no \
             swarm task): the operator must be able to reach the clusters' networks by itself"
        ),
    }
    info!(
        host = docker.host(),
        node = %engine.node_id,
        engine_version = %engine.server_version,
        api_version = %engine.api_version,
        cluster_selector = %options
            .cluster_selector
            .as_ref()
            .map_or_else(|| "(none: every cluster)".to_string(), ToString::to_string),
        "connected to a swarm manager"
    );
    if options.cluster_selector.is_some()
        && options.leader_election.enabled
        && options.leader_election.lease_name.is_none()
        && options.operator_service.is_none()
    {
        warn!(
            lease = leader::DEFAULT_LEASE_NAME,
            "a cluster selector is set, but this operator has no service of its own and no \
             --lease-name: it shares the default lease with every other such operator, and only \
             one of them acts; give each operator its own --lease-name (or --operator-service)"
        );
    }
    let metrics = Arc::new(Metrics::default());
    // Preflight has just reached Docker.
    let health = Arc::new(Health::default());
    health.set_docker_ok(true);
    if let Some(addr) = options.metrics_address {
        serve_http(addr, metrics.clone(), health.clone()).await;
    }
    // Every write passes the leader fence; without leader election the
    // fence is always open.
    let lease = options
        .leader_election
        .lease(options.operator_service.as_deref());
    let leadership = match &lease {
        Some(lease) => leader::Leadership::elected(&leader::holder_id(), lease),
        None => leader::Leadership::unconditional(),
    };
    if lease.is_some() {
        // /readyz: ready when leading or following the lease.
        tokio::spawn(leader::report_role(leadership.clone(), health.clone()));
    }
    let counters = Arc::new(Counters::default());
    let controller = Controller::new(
        leader::Fenced::new(
            Instrumented::new(docker.clone(), counters.clone())
                .with_metrics(metrics.clone())
                .with_health(health.clone()),
            leadership.clone(),
        ),
        leader::FencedNodes::new(
            CountingInfo::new(
                InfoClient::new().with_connect_timeout(NODE_CONNECT_TIMEOUT),
                counters.clone(),
            )
            .with_metrics(metrics.clone()),
            leadership.clone(),
        ),
        counters,
        options,
    )
    .with_metrics(metrics)
    .with_health(health);
    match lease {
        None => controller.run(shutdown_signal()).await,
        Some(lease) => {
            leader::run_elected(docker, lease, leadership, &controller, shutdown_signal()).await
        }
    }
    Ok(())
}

/// The swarm service of the container this process runs in, when it runs
/// in one on the engine it talks to: a task's hostname is its container id
/// unless the service sets another. One `GET /containers/{id}/json`; any
/// failure means "not a swarm task".
async fn own_service(docker: &swarm::DockerSwarm) -> Option<String> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let hostname = hostname.trim();
    if hostname.is_empty() {
        return None;
    }
    match docker.container_service(hostname).await {
        Ok(service) => service,
        Err(error) => {
            debug!(%error, hostname, "cannot tell whether this is a swarm task");
            None
        }
    }
}

/// Starts the HTTP endpoints (see [`http`]) on `addr`, and the heartbeat
/// behind `/healthz`. A port that cannot be bound is logged, and the
/// operator runs on without them.
async fn serve_http(addr: SocketAddr, metrics: Arc<Metrics>, health: Arc<Health>) {
    let listener = match http::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(
                address = %addr,
                error = %error,
                "cannot serve /metrics, /healthz and /readyz (--metrics-address); running without"
            );
            return;
        }
    };
    info!(
        address = %listener.local_addr().unwrap_or(addr),
        "serving /metrics, /healthz and /readyz"
    );
    tokio::spawn(http::serve(listener, metrics, health.clone()));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(http::HEARTBEAT);
        loop {
            ticks.tick().await;
            health.beat();
        }
    });
}

/// Completes on SIGTERM (what `docker service rm/update` sends) or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The control loop over a swarm `S` and nodes `N`.
pub struct Controller<S, N> {
    reconciler: Arc<Reconciler<S, N>>,
    swarm: Arc<S>,
    counters: Arc<Counters>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    options: RunOptions,
    scheduler: Arc<Scheduler<String>>,
    policy: Arc<ErrorPolicy<String>>,
    known: Arc<watch::Known>,
    membership: Arc<MembershipWatch>,
}

impl<S: SwarmApi + Clone, N: NodeApi> Controller<S, N> {
    /// A controller; nothing runs until [`Controller::run`].
    pub fn new(swarm: S, nodes: N, counters: Arc<Counters>, options: RunOptions) -> Self {
        let scheduler = Arc::new(Scheduler::default());
        Controller {
            reconciler: Arc::new(
                Reconciler::new(swarm.clone(), nodes, options.poll_fast)
                    .with_stall_timeout(options.migration_stall_timeout)
                    .with_join_timeout(options.node_join_timeout)
                    .with_operator(
                        options
                            .operator_service
                            .clone()
                            .map(|name| OperatorService {
                                name,
                                attach: options.attach_networks,
                            }),
                    )
                    .with_selector(options.cluster_selector.clone()),
            ),
            swarm: Arc::new(swarm),
            metrics: Arc::new(Metrics::default()),
            health: Arc::new(Health::default()),
            membership: Arc::new(MembershipWatch::new(scheduler.clone(), counters.clone())),
            counters,
            options,
            scheduler,
            policy: Arc::new(ErrorPolicy::default()),
            known: Arc::new(watch::Known::default()),
        }
    }

    /// The counters this controller updates.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Records reconciles and cluster gauges into `metrics` (by default a
    /// registry of its own; give the one the swarm and node wrappers feed).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Shares `health` (the one the swarm wrapper and the HTTP server use).
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = health;
        self
    }

    /// The metrics this controller updates.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The liveness and readiness state: the leader election sets the
    /// [`Role`] here.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Runs until `shutdown` completes, then lets in-flight reconciles
    /// finish and returns.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut background = JoinSet::new();
        let (swarm, scheduler, known) = (&self.swarm, &self.scheduler, &self.known);
        let selector = &self.options.cluster_selector;
        background.spawn(watch::event_loop(
            swarm.clone(),
            scheduler.clone(),
            known.clone(),
            selector.clone(),
        ));
        background.spawn(watch::task_poll_loop(
            swarm.clone(),
            scheduler.clone(),
            known.clone(),
            self.options.poll_fast,
            self.options.poll_slow,
        ));
        // The first tick of the resync loop is immediate: the initial list.
        background.spawn(watch::resync_loop(
            swarm.clone(),
            scheduler.clone(),
            known.clone(),
            self.options.resync_interval,
            selector.clone(),
        ));
        let counters = self.counters.clone();
        let every = self.options.counters_interval;
        background.spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                counters.log();
            }
        });

        let slots = Arc::new(Semaphore::new(self.options.max_parallel.max(1)));
        let mut running = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let (key, trigger) = tokio::select! {
                _ = &mut shutdown => break,
                next = self.scheduler.next() => next,
            };
            let job = Job {
                reconciler: self.reconciler.clone(),
                scheduler: self.scheduler.clone(),
                policy: self.policy.clone(),
                known: self.known.clone(),
                counters: self.counters.clone(),
                metrics: self.metrics.clone(),
                membership: self.membership.clone(),
                watch_members: self.options.membership_watch,
            };
            running.spawn(async move {
                job.run(key, trigger).await;
                drop(permit);
            });
            // Reap finished ones so the set does not grow.
            while running.try_join_next().is_some() {}
        }
        info!(
            in_flight = running.len(),
            "shutting down: finishing in-flight reconciles"
        );
        background.abort_all();
        self.membership.stop();
        while running.join_next().await.is_some() {}
        self.counters.log();
        info!("stopped");
    }
}

/// Everything one reconcile run needs, moved into its task.
struct Job<S, N> {
    reconciler: Arc<Reconciler<S, N>>,
    scheduler: Arc<Scheduler<String>>,
    policy: Arc<ErrorPolicy<String>>,
    known: Arc<watch::Known>,
    counters: Arc<Counters>,
    metrics: Arc<Metrics>,
    membership: Arc<MembershipWatch>,
    watch_members: bool,
}

impl<S: SwarmApi, N: NodeApi> Job<S, N> {
    /// Reconciles `key` in a `reconcile` span (cluster, service id,
    /// trigger), applies the returned action or the error policy, records
    /// the metrics, and releases the key.
    async fn run(self, key: String, trigger: Trigger) {
        // The name is known once a pass has seen the service; the first
        // pass of a new one shows its id.
        let known_name = self.known.name(&key);
        let span = tracing::info_span!(
            "reconcile",
            cluster = %known_name.as_deref().unwrap_or(&key),
            service = %key,
            trigger = %trigger,
        );
        self.reconcile(key, known_name, trigger)
            .instrument(span)
            .await
    }

    async fn reconcile(self, key: String, known_name: Option<String>, trigger: Trigger) {
        Counters::bump(&self.counters.reconciles);
        // Counted under the cluster's name once the pass tells it; a
        // service that is no cluster gets no series.
        let mut timer = self.metrics.reconcile_started(trigger);
        match self.reconciler.reconcile(&key).await {
            Ok(outcome) => {
                self.policy.on_success(&key);
                let converging = matches!(outcome.action, Action::Requeue(_));
                self.known
                    .record(&key, outcome.managed.as_deref(), converging);
                if self.watch_members {
                    self.membership.arm(&key, outcome.watch.clone());
                }
                if let Some(old) = known_name.filter(|n| outcome.managed.as_ref() != Some(n)) {
                    // Gone, unmanaged or renamed: its series go.
                    self.metrics.forget_cluster(&old);
                }
                if let Some(name) = &outcome.managed {
                    timer.cluster(name);
                    if let Some(gauges) = &outcome.gauges {
                        self.metrics.observe_cluster(name, gauges);
                    }
                }
                drop(timer);
                self.scheduler.finish(&key);
                if let Action::Requeue(delay) = outcome.action {
                    self.scheduler.schedule(key, delay, Trigger::Requeue);
                }
            }
            Err(e) => {
                let delay = self.policy.on_error(&key);
                let cluster = known_name.unwrap_or_else(|| key.clone());
                timer.cluster(&cluster);
                drop(timer);
                self.metrics.reconcile_failed(&cluster, e.kind());
                warn!(
                    cluster = %cluster,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "reconcile failed; retrying with backoff"
                );
                self.scheduler.finish(&key);
                self.scheduler.schedule(key, delay, Trigger::ErrorRetry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The loop as a whole over the in-memory swarm: triggers reach the
    //! reconcile, errors back off and recover, shutdown returns.

    use super::*;
    use crate::spec::status::{MESSAGE, PHASE};
    use crate::swarm::FakeSwarm;
    use tokio::time::Instant;

    async fn wait_for(what: &str, limit: Duration, check: impl Fn() -> bool) -> Duration {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    }

    #[tokio::test]
    async fn errors_back_off_and_recover_and_events_wake_the_loop_at_once() {
        let fake = FakeSwarm::new();
        fake.put_service(fixtures::paused_cluster());
        fake.set_unreachable(true);
        let counters = Arc::new(Counters::default());
        let controller = Controller::new(
            Instrumented::new(fake.clone(), counters.clone()),
            CountingInfo::new(InfoClient::new(), counters.clone()),
            counters.clone(),
            RunOptions {
                max_parallel: 4,
                ..fixtures::quiet_options()
            },
        );
        let (stop, run) =
            fixtures::spawn_until_stopped(|shutdown| async move { controller.run(shutdown).await });

        // Docker is unreachable: the initial resync fails. A service event
        // queues the cluster; its reconcile fails and is retried with
        // backoff until Docker answers again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let event = fixtures::service_event("s1");
        fake.emit(event.clone());
        wait_for("a failing reconcile", Duration::from_secs(5), || {
            counters.snapshot().reconciles >= 2
        })
        .await;
        let failures = counters.snapshot().reconciles;
        fake.set_unreachable(false);
        wait_for("the status after recovery", Duration::from_secs(10), || {
            fake.service("s1")
                .is_some_and(|s| s.labels.get(PHASE).map(String::as_str) == Some("Paused"))
        })
        .await;
        assert!(failures >= 2, "retried: {failures}");

        // A label edit, announced by its event, is acted on at once.
        fake.edit_service("s1", |s| {
            s.labels
                .insert("aerospike.cluster.replicas".into(), "x".into());
        });
        fake.emit(event);
        let took = wait_for("the Error status", Duration::from_secs(5), || {
            fake.service("s1")
                .is_some_and(|s| s.labels.get(PHASE).map(String::as_str) == Some("Error"))
        })
        .await;
        assert!(took < Duration::from_secs(1), "took {took:?}");
        assert!(fake.service("s1").unwrap().labels[MESSAGE].contains("aerospike.cluster.replicas"));

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the loop stops")
            .unwrap();
        assert!(counters.snapshot().docker_writes >= 2);
    }

    /// Paused clusters s1 (`team=a`), s2 (`team=b`), s3 (no team) and s4
    /// (`team=b`, invalid spec); a pass writes at most their status.
    fn teams() -> FakeSwarm {
        let fake = FakeSwarm::new();
        for (id, team) in [("s1", Some("a")), ("s2", Some("b")), ("s3", None)] {
            let mut service = fixtures::paused_cluster();
            service.id = id.into();
            service.name = format!("db-{id}");
            if let Some(team) = team {
                service.labels.insert("team".into(), team.into());
            }
            fake.put_service(service);
        }
        let mut bad = fixtures::service(&[("aerospike.cluster.replicas", "x"), ("team", "b")]);
        bad.id = "s4".into();
        bad.name = "db-s4".into();
        fake.put_service(bad);
        fake
    }

    /// Runs a controller over [`teams`] with `selector`; once the initial
    /// resync's `initial` passes have started and every service has had a
    /// pass after its event, returns the swarm.
    async fn run_teams(selector: Option<ClusterSelector>, initial: u64) -> FakeSwarm {
        let fake = teams();
        let counters = Arc::new(Counters::default());
        let controller = Controller::new(
            fake.clone(),
            CountingInfo::new(InfoClient::new(), counters.clone()),
            counters.clone(),
            RunOptions {
                cluster_selector: selector,
                ..fixtures::quiet_options()
            },
        );
        let (stop, run) =
            fixtures::spawn_until_stopped(|shutdown| async move { controller.run(shutdown).await });
        // The initial resync, then an event for each service (as their
        // creation or a label edit would send).
        wait_for("the resync's passes", Duration::from_secs(5), || {
            counters.snapshot().reconciles >= initial
        })
        .await;
        let before = counters.snapshot().reconciles;
        for id in ["s1", "s2", "s3", "s4"] {
            fake.emit(fixtures::service_event(id));
        }
        wait_for("a pass after each event", Duration::from_secs(5), || {
            counters.snapshot().reconciles >= before + 4
        })
        .await;
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the loop stops")
            .unwrap();
        fake
    }

    fn written(fake: &FakeSwarm) -> std::collections::BTreeSet<String> {
        fake.writes()
            .into_iter()
            .filter_map(|w| match w {
                crate::swarm::WriteCall::Update { id, .. } => Some(id),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn with_a_cluster_selector_the_loop_writes_to_the_selected_cluster_only() {
        let fake = run_teams(Some("team=a".parse().unwrap()), 1).await;
        assert_eq!(fake.service("s1").unwrap().labels[PHASE], "Paused");
        assert_eq!(written(&fake), ["s1".to_string()].into());
        for id in ["s2", "s3", "s4"] {
            let labels = fake.service(id).unwrap().labels;
            assert!(!labels.contains_key(PHASE), "{id}: {labels:?}");
        }
    }

    #[tokio::test]
    async fn without_a_cluster_selector_the_loop_manages_every_cluster() {
        let fake = run_teams(None, 4).await;
        for id in ["s1", "s2", "s3"] {
            assert_eq!(fake.service(id).unwrap().labels[PHASE], "Paused", "{id}");
        }
        assert_eq!(fake.service("s4").unwrap().labels[PHASE], "Error");
        assert_eq!(written(&fake).len(), 4);
    }
}
