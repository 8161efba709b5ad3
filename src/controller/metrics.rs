//! Prometheus metrics: one registry, its families, and a drop-guard timer
//! for reconcile durations (in the style of controller-rs's `metrics.rs`).
//!
//! Every name starts with [`PREFIX`] (`asw_`). The same seams that feed the
//! [`super::Counters`] log line feed these: [`super::Instrumented`] (Docker
//! calls by endpoint), [`super::CountingInfo`] (info requests, tips, ...)
//! and the runner in [`super`] (reconciles, errors, durations, and the
//! per-cluster gauges a pass hands back in [`super::Outcome::gauges`]).
//! A cluster's series are removed when it is forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::spec::status::Phase;

/// The prefix of every metric name (without its trailing `_`).
pub const PREFIX: &str = "asw";

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a reconcile pass saw of its cluster, for the gauges. Filled where
/// the pass composes the status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterGauges {
    /// Nodes the spec asks for.
    pub desired: u64,
    /// Tasks running.
    pub running: u64,
    /// Nodes that are members of the one cluster (0 when split or unknown).
    pub meshed: u64,
    /// Partition migrations remaining, summed over the nodes.
    pub migrations_remaining: u64,
    /// A rollout in progress: (nodes done, nodes in all).
    pub rollout: Option<(u64, u64)>,
    /// The phase the status shows.
    pub phase: Option<Phase>,
}

/// What started a reconcile (the `trigger` span field and label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger {
    /// A swarm event (service, node, secret, config).
    Event,
    /// The task poll saw the cluster's tasks change.
    Poll,
    /// The periodic full resync (or the one after the event stream broke).
    Resync,
    /// The previous pass asked to look again (converging, watching).
    Requeue,
    /// The previous pass failed; this is the error policy's retry.
    ErrorRetry,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 5] = [
        Trigger::Event,
        Trigger::Poll,
        Trigger::Resync,
        Trigger::Requeue,
        Trigger::ErrorRetry,
    ];

    /// The spelling in logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Event => "event",
            Trigger::Poll => "poll",
            Trigger::Resync => "resync",
            Trigger::Requeue => "requeue",
            Trigger::ErrorRetry => "error-retry",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Docker API call site, for [`super::Instrumented`]: the endpoint
/// (`GET /services/{id}`), the [`crate::swarm::SwarmApi`] method, and
/// whether it writes (for the `docker_reads`/`docker_writes` counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// HTTP method and path template, e.g. `GET /services/{id}`.
    pub endpoint: &'static str,
    /// The trait method, e.g. `inspect_service`.
    pub method: &'static str,
    /// Whether the call changes the swarm.
    pub write: bool,
}

impl Endpoint {
    /// A call that reads.
    pub const fn read(endpoint: &'static str, method: &'static str) -> Endpoint {
        Endpoint {
            endpoint,
            method,
            write: false,
        }
    }

    /// A call that changes the swarm.
    pub const fn write(endpoint: &'static str, method: &'static str) -> Endpoint {
        Endpoint {
            endpoint,
            method,
            write: true,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    cluster: String,
    trigger: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    cluster: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    cluster: String,
    phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointErrorLabels {
    endpoint: &'static str,
    method: &'static str,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 5 ms .. ~41 s: a settled pass takes milliseconds, one that waits
    // for a node to answer or a rollout step can take seconds.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The operator's metrics. Cheap to share behind an `Arc`: every family is
/// internally synchronised.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: HistogramFamily<ClusterLabels>,
    nodes_desired: Family<ClusterLabels, Gauge>,
    tasks_running: Family<ClusterLabels, Gauge>,
    nodes_meshed: Family<ClusterLabels, Gauge>,
    migrations_remaining: Family<ClusterLabels, Gauge>,
    rollout_done: Family<ClusterLabels, Gauge>,
    rollout_total: Family<ClusterLabels, Gauge>,
    phase: Family<PhaseLabels, Gauge>,
    docker_requests: Family<EndpointLabels, Counter>,
    docker_errors: Family<EndpointErrorLabels, Counter>,
    info_requests: Family<CommandLabels, Counter>,
    info_errors: Family<CommandLabels, Counter>,
    tips: Counter,
    tip_clears: Counter,
    alumni_resets: Counter,
    quiesces: Counter,
    /// The phase each cluster last showed, so a change removes the old
    /// series.
    phases: Mutex<HashMap<String, Phase>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every family registered (and no series yet).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let metrics = Metrics {
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(duration_histogram),
            nodes_desired: Family::default(),
            tasks_running: Family::default(),
            nodes_meshed: Family::default(),
            migrations_remaining: Family::default(),
            rollout_done: Family::default(),
            rollout_total: Family::default(),
            phase: Family::default(),
            docker_requests: Family::default(),
            docker_errors: Family::default(),
            info_requests: Family::default(),
            info_errors: Family::default(),
            tips: Counter::default(),
            tip_clears: Counter::default(),
            alumni_resets: Counter::default(),
            quiesces: Counter::default(),
            phases: Mutex::new(HashMap::new()),
        };
        let r = &mut registry;
        r.register(
            "reconciles",
            "Reconciles run, by cluster and by what triggered them",
            metrics.reconciles.clone(),
        );
        r.register(
            "reconcile_errors",
            "Reconciles that failed, by cluster and error kind",
            metrics.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "How long one reconcile pass took",
            metrics.reconcile_duration.clone(),
        );
        r.register(
            "cluster_nodes_desired",
            "Nodes the cluster's spec asks for",
            metrics.nodes_desired.clone(),
        );
        r.register(
            "cluster_tasks_running",
            "The cluster's swarm tasks that are running",
            metrics.tasks_running.clone(),
        );
        r.register(
            "cluster_nodes_meshed",
            "Nodes that are members of the one Aerospike cluster (0 when split)",
            metrics.nodes_meshed.clone(),
        );
        r.register(
            "cluster_migrations_remaining",
            "Partition migrations remaining, summed over the nodes",
            metrics.migrations_remaining.clone(),
        );
        r.register(
            "cluster_rollout_done",
            "Nodes already on the new template in the rollout in progress (0 when none)",
            metrics.rollout_done.clone(),
        );
        r.register(
            "cluster_rollout_total",
            "Nodes the rollout in progress covers (0 when none)",
            metrics.rollout_total.clone(),
        );
        r.register(
            "cluster_phase",
            "1 for the phase the cluster's status shows",
            metrics.phase.clone(),
        );
        r.register(
            "docker_requests",
            "Docker API calls, by endpoint and operator method",
            metrics.docker_requests.clone(),
        );
        r.register(
            "docker_errors",
            "Docker API calls that failed, by endpoint, operator method and error kind",
            metrics.docker_errors.clone(),
        );
        r.register(
            "info_requests",
            "Aerospike info requests sent, by command",
            metrics.info_requests.clone(),
        );
        r.register(
            "info_errors",
            "Aerospike info requests that failed, by command",
            metrics.info_errors.clone(),
        );
        r.register("tips", "tip commands sent", metrics.tips.clone());
        r.register(
            "tip_clears",
            "tip-clear commands sent",
            metrics.tip_clears.clone(),
        );
        r.register(
            "alumni_resets",
            "services-alumni-reset commands sent",
            metrics.alumni_resets.clone(),
        );
        r.register(
            "quiesces",
            "quiesce commands sent (Enterprise scale-down)",
            metrics.quiesces.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The whole registry in the OpenMetrics text format (which Prometheus
    /// scrapes; see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Counts a reconcile of `cluster` and starts its timer; the duration
    /// is recorded when the guard drops.
    pub fn reconcile_started(&self, cluster: &str, trigger: Trigger) -> ReconcileTimer<'_> {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                cluster: cluster.to_string(),
                trigger: trigger.as_str(),
            })
            .inc();
        ReconcileTimer {
            metrics: self,
            cluster: cluster.to_string(),
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile of `cluster`, by error kind.
    pub fn reconcile_failed(&self, cluster: &str, kind: &'static str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                cluster: cluster.to_string(),
                kind,
            })
            .inc();
    }

    /// Sets `cluster`'s gauges to what its last pass saw.
    pub fn observe_cluster(&self, cluster: &str, gauges: &ClusterGauges) {
        let labels = ClusterLabels {
            cluster: cluster.to_string(),
        };
        let set = |family: &Family<ClusterLabels, Gauge>, value: u64| {
            family
                .get_or_create(&labels)
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        set(&self.nodes_desired, gauges.desired);
        set(&self.tasks_running, gauges.running);
        set(&self.nodes_meshed, gauges.meshed);
        set(&self.migrations_remaining, gauges.migrations_remaining);
        let (done, total) = gauges.rollout.unwrap_or((0, 0));
        set(&self.rollout_done, done);
        set(&self.rollout_total, total);
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        let previous = match gauges.phase {
            Some(phase) => phases.insert(cluster.to_string(), phase),
            None => phases.remove(cluster),
        };
        if let Some(previous) = previous.filter(|p| Some(*p) != gauges.phase) {
            self.phase.remove(&PhaseLabels {
                cluster: cluster.to_string(),
                phase: previous.as_str(),
            });
        }
        if let Some(phase) = gauges.phase {
            self.phase
                .get_or_create(&PhaseLabels {
                    cluster: cluster.to_string(),
                    phase: phase.as_str(),
                })
                .set(1);
        }
    }

    /// Removes every series of `cluster` (its service is gone or no longer
    /// managed).
    pub fn forget_cluster(&self, cluster: &str) {
        let labels = ClusterLabels {
            cluster: cluster.to_string(),
        };
        for family in [
            &self.nodes_desired,
            &self.tasks_running,
            &self.nodes_meshed,
            &self.migrations_remaining,
            &self.rollout_done,
            &self.rollout_total,
        ] {
            family.remove(&labels);
        }
        self.reconcile_duration.remove(&labels);
        for trigger in Trigger::ALL {
            self.reconciles.remove(&ReconcileLabels {
                cluster: cluster.to_string(),
                trigger: trigger.as_str(),
            });
        }
        for kind in crate::controller::ReconcileError::KINDS {
            self.reconcile_errors.remove(&ErrorLabels {
                cluster: cluster.to_string(),
                kind,
            });
        }
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        phases.remove(cluster);
        for phase in Phase::ALL {
            self.phase.remove(&PhaseLabels {
                cluster: cluster.to_string(),
                phase: phase.as_str(),
            });
        }
    }

    /// Counts a Docker API call.
    pub fn docker_call(&self, endpoint: Endpoint) {
        self.docker_requests
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.endpoint,
                method: endpoint.method,
            })
            .inc();
    }

    /// Counts a failed Docker API call.
    pub fn docker_error(&self, endpoint: Endpoint, kind: &'static str) {
        self.docker_errors
            .get_or_create(&EndpointErrorLabels {
                endpoint: endpoint.endpoint,
                method: endpoint.method,
                kind,
            })
            .inc();
    }

    /// Counts an info request carrying `command` (`observe` for the
    /// combined read of a pass).
    pub fn info_request(&self, command: &'static str) {
        self.info_requests
            .get_or_create(&CommandLabels { command })
            .inc();
        match command {
            "tip" => self.tips.inc(),
            "tip-clear" => self.tip_clears.inc(),
            "services-alumni-reset" => self.alumni_resets.inc(),
            "quiesce" => self.quiesces.inc(),
            _ => 0,
        };
    }

    /// Counts a failed info request carrying `command`.
    pub fn info_error(&self, command: &'static str) {
        self.info_errors
            .get_or_create(&CommandLabels { command })
            .inc();
    }
}

/// Records a reconcile's duration when dropped, whichever way the pass
/// ends (success, error, panic).
#[derive(Debug)]
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    cluster: String,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .reconcile_duration
            .get_or_create(&ClusterLabels {
                cluster: std::mem::take(&mut self.cluster),
            })
            .observe(self.start.elapsed().as_secs_f64());
    }
}
