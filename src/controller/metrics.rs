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
    /// The phase the status shows.
    pub phase: Option<Phase>,
    /// What the pass saw of the tasks and nodes; `None` when it did not
    /// look (a paused cluster, an invalid spec): those gauges keep their
    /// values.
    pub nodes: Option<NodeGauges>,
}

impl ClusterGauges {
    /// Only the phase (a pass that stopped before looking at the nodes).
    pub fn phase(phase: Option<Phase>) -> ClusterGauges {
        ClusterGauges { phase, nodes: None }
    }
}

/// The tasks and nodes of a cluster, as one pass saw them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeGauges {
    /// Nodes the spec asks for.
    pub desired: u64,
    /// Tasks running.
    pub running: u64,
    /// Members of the main Aerospike cluster among the nodes (the largest
    /// group that agrees on a cluster key).
    pub meshed: u64,
    /// Partition migrations remaining, summed over the nodes.
    pub migrations_remaining: u64,
    /// A rollout in progress: (nodes on the new template, nodes in all).
    pub rollout: Option<(u64, u64)>,
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
    /// The membership watch saw a node leave, close its connection or go
    /// silent (see [`super::membership`]).
    Membership,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 6] = [
        Trigger::Event,
        Trigger::Poll,
        Trigger::Resync,
        Trigger::Requeue,
        Trigger::ErrorRetry,
        Trigger::Membership,
    ];

    /// The spelling in logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Event => "event",
            Trigger::Poll => "poll",
            Trigger::Resync => "resync",
            Trigger::Requeue => "requeue",
            Trigger::ErrorRetry => "error-retry",
            Trigger::Membership => "membership",
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
            "Members of the main Aerospike cluster (the largest group agreeing on a cluster key) among the nodes",
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

    /// Starts a reconcile's timer. Once told the cluster
    /// ([`ReconcileTimer::cluster`]) it counts the reconcile and records
    /// its duration when dropped; a pass over a service that is no cluster
    /// records nothing.
    pub fn reconcile_started(&self, trigger: Trigger) -> ReconcileTimer<'_> {
        ReconcileTimer {
            metrics: self,
            trigger,
            cluster: None,
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
        if let Some(nodes) = &gauges.nodes {
            set(&self.nodes_desired, nodes.desired);
            set(&self.tasks_running, nodes.running);
            set(&self.nodes_meshed, nodes.meshed);
            set(&self.migrations_remaining, nodes.migrations_remaining);
            let (done, total) = nodes.rollout.unwrap_or((0, 0));
            set(&self.rollout_done, done);
            set(&self.rollout_total, total);
        }
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

/// Counts a reconcile and records its duration when dropped, whichever
/// way the pass ends (success, error, panic), once it knows the cluster.
#[derive(Debug)]
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    trigger: Trigger,
    cluster: Option<String>,
    start: Instant,
}

impl ReconcileTimer<'_> {
    /// The pass was over `cluster`.
    pub fn cluster(&mut self, cluster: &str) {
        self.cluster = Some(cluster.to_string());
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        let Some(cluster) = self.cluster.take() else {
            return;
        };
        self.metrics
            .reconciles
            .get_or_create(&ReconcileLabels {
                cluster: cluster.clone(),
                trigger: self.trigger.as_str(),
            })
            .inc();
        self.metrics
            .reconcile_duration
            .get_or_create(&ClusterLabels { cluster })
            .observe(self.start.elapsed().as_secs_f64());
    }
}

/// One sample of a text exposition: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name, e.g. `asw_reconciles_total`.
    pub name: String,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A minimal reader of the Prometheus/OpenMetrics text format, for tests
/// and tools: every sample, in order (comments skipped). Errors name the
/// line that is not a sample.
pub fn parse_text(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {line}", number + 1);
        let name_end = line.find(['{', ' ']).ok_or_else(|| bad("no value"))?;
        let name = &line[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            return Err(bad("bad metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = std::collections::BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let mut end = None;
            loop {
                // name="value", ... }
                let start = match chars.peek() {
                    Some((_, '}')) => {
                        end = chars.next().map(|(i, _)| i);
                        break;
                    }
                    Some((i, _)) => *i,
                    None => break,
                };
                let eq = inner[start..]
                    .find('=')
                    .ok_or_else(|| bad("label without ="))?
                    + start;
                let key = inner[start..eq].trim().to_string();
                while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(bad("unquoted label value"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err(bad("unterminated escape")),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => return Err(bad("unterminated label value")),
                    }
                }
                labels.insert(key, value);
                if chars.peek().is_some_and(|(_, c)| *c == ',') {
                    chars.next();
                }
            }
            let end = end.ok_or_else(|| bad("unterminated labels"))?;
            rest = &inner[end + 1..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| bad("bad value"))?,
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The sample names a text exposition can carry, from its `# TYPE` lines:
/// a counter `x` gives `x_total` (and `x_created`), a histogram `x_bucket`,
/// `x_sum`, `x_count` (and `x_created`), a gauge `x`.
pub fn exported_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#") || words.next() != Some("TYPE") {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "summary" => &["", "_sum", "_count", "_created"],
            _ => &[""],
        };
        for suffix in suffixes {
            names.insert(format!("{name}{suffix}"));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    fn gauges(phase: Phase, meshed: u64) -> ClusterGauges {
        ClusterGauges {
            phase: Some(phase),
            nodes: Some(NodeGauges {
                desired: 3,
                running: 3,
                meshed,
                migrations_remaining: 12,
                rollout: Some((1, 3)),
            }),
        }
    }

    #[test]
    fn the_registry_encodes_and_parses_back() {
        let metrics = Metrics::new();
        {
            let mut timer = metrics.reconcile_started(Trigger::Poll);
            timer.cluster("db");
        }
        // A pass over a service that is no cluster records nothing.
        drop(metrics.reconcile_started(Trigger::Event));
        metrics.reconcile_failed("db", "docker_unreachable");
        metrics.observe_cluster("db", &gauges(Phase::Meshing, 2));
        metrics.docker_call(Endpoint::read("GET /services/{id}", "inspect_service"));
        metrics.docker_error(
            Endpoint::read("GET /services/{id}", "inspect_service"),
            "not_found",
        );
        metrics.info_request("tip");
        metrics.info_request("observe");
        metrics.info_error("observe");

        let text = metrics.encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# HELP asw_reconciles "), "{text}");
        let samples = parse_text(&text).unwrap();
        let db = [("cluster", "db")];
        assert_eq!(
            value(
                &samples,
                "asw_reconciles_total",
                &[("cluster", "db"), ("trigger", "poll")]
            ),
            Some(1.0)
        );
        assert_eq!(
            samples
                .iter()
                .filter(|s| s.name == "asw_reconciles_total")
                .count(),
            1
        );
        assert_eq!(
            value(&samples, "asw_reconcile_duration_seconds_count", &db),
            Some(1.0)
        );
        assert_eq!(
            value(
                &samples,
                "asw_reconcile_errors_total",
                &[("cluster", "db"), ("kind", "docker_unreachable")]
            ),
            Some(1.0)
        );
        assert_eq!(value(&samples, "asw_cluster_nodes_meshed", &db), Some(2.0));
        assert_eq!(
            value(&samples, "asw_cluster_migrations_remaining", &db),
            Some(12.0)
        );
        assert_eq!(value(&samples, "asw_cluster_rollout_done", &db), Some(1.0));
        assert_eq!(value(&samples, "asw_cluster_rollout_total", &db), Some(3.0));
        assert_eq!(
            value(
                &samples,
                "asw_cluster_phase",
                &[("cluster", "db"), ("phase", "Meshing")]
            ),
            Some(1.0)
        );
        let inspect = [
            ("endpoint", "GET /services/{id}"),
            ("method", "inspect_service"),
        ];
        assert_eq!(
            value(&samples, "asw_docker_requests_total", &inspect),
            Some(1.0)
        );
        assert_eq!(
            value(&samples, "asw_docker_errors_total", &inspect),
            Some(1.0)
        );
        assert_eq!(value(&samples, "asw_tips_total", &[]), Some(1.0));
        assert_eq!(value(&samples, "asw_tip_clears_total", &[]), Some(0.0));
        assert_eq!(
            value(
                &samples,
                "asw_info_requests_total",
                &[("command", "observe")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&samples, "asw_info_errors_total", &[("command", "observe")]),
            Some(1.0)
        );
        // Every sample's name is one the TYPE lines announce.
        let names = exported_names(&text);
        for sample in &samples {
            assert!(names.contains(&sample.name), "{}", sample.name);
        }
    }

    #[test]
    fn a_phase_change_moves_the_series_and_forgetting_removes_the_cluster() {
        let metrics = Metrics::new();
        metrics.observe_cluster("db", &gauges(Phase::Meshing, 2));
        metrics.observe_cluster("db", &gauges(Phase::Ready, 3));
        metrics.observe_cluster("other", &gauges(Phase::Ready, 3));
        // A pass that did not look at the nodes changes only the phase.
        metrics.observe_cluster("other", &ClusterGauges::phase(Some(Phase::Paused)));
        {
            let mut timer = metrics.reconcile_started(Trigger::Requeue);
            timer.cluster("db");
        }
        let samples = parse_text(&metrics.encode()).unwrap();
        let phases: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "asw_cluster_phase")
            .map(|s| (s.labels["cluster"].clone(), s.labels["phase"].clone()))
            .collect();
        assert_eq!(phases.len(), 2, "{phases:?}");
        assert!(phases.contains(&("db".into(), "Ready".into())));
        assert!(phases.contains(&("other".into(), "Paused".into())));
        assert_eq!(
            value(
                &samples,
                "asw_cluster_nodes_meshed",
                &[("cluster", "other")]
            ),
            Some(3.0)
        );

        metrics.forget_cluster("db");
        let samples = parse_text(&metrics.encode()).unwrap();
        assert!(
            samples
                .iter()
                .all(|s| s.labels.get("cluster").map(String::as_str) != Some("db")),
            "{samples:?}"
        );
        assert!(samples
            .iter()
            .any(|s| s.labels.get("cluster").map(String::as_str) == Some("other")));
    }

    /// The loop over the in-memory swarm: each pass runs in a `reconcile`
    /// span naming its trigger, and is counted under it; errors by kind;
    /// the gauges follow the status; a removed service's series go.
    #[tokio::test]
    async fn the_loop_counts_passes_by_trigger_in_a_span_and_forgets_removed_clusters() {
        use crate::aerospike::InfoClient;
        use crate::controller::fixtures::{self, LogSink};
        use crate::controller::{Controller, Counters, CountingInfo, Instrumented};
        use crate::swarm::{FakeSwarm, SwarmApi};
        use std::sync::Arc;
        use std::time::Duration;

        let sink = LogSink::default();
        let subscriber = crate::controller::telemetry::subscriber(
            crate::controller::LogFormat::Text,
            tracing_subscriber::EnvFilter::new("info"),
            sink.clone(),
        );
        let _logs = tracing::subscriber::set_default(subscriber);

        let fake = FakeSwarm::new();
        fake.put_service(fixtures::paused_cluster());
        let metrics = Arc::new(Metrics::new());
        let counters = Arc::new(Counters::default());
        let controller = Controller::new(
            Instrumented::new(fake.clone(), counters.clone()).with_metrics(metrics.clone()),
            CountingInfo::new(InfoClient::new(), counters.clone()).with_metrics(metrics.clone()),
            counters.clone(),
            fixtures::quiet_options(),
        )
        .with_metrics(metrics.clone());
        let (stop, run) =
            fixtures::spawn_until_stopped(|shutdown| async move { controller.run(shutdown).await });
        let count = |trigger: &str| {
            let samples = parse_text(&metrics.encode()).unwrap();
            value(
                &samples,
                "asw_reconciles_total",
                &[("cluster", "db"), ("trigger", trigger)],
            )
            .unwrap_or(0.0)
        };
        async fn until(what: &str, check: impl Fn() -> bool) {
            let start = tokio::time::Instant::now();
            while !check() {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "timed out: {what}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let event = fixtures::service_event("s1");

        // The initial resync.
        until("a resync pass", || count("resync") >= 1.0).await;
        let samples = parse_text(&metrics.encode()).unwrap();
        assert_eq!(
            value(
                &samples,
                "asw_cluster_phase",
                &[("cluster", "db"), ("phase", "Paused")]
            ),
            Some(1.0)
        );
        // An event, while Docker is unreachable: the event's pass fails,
        // and the retries are error retries until Docker answers.
        fake.set_unreachable(true);
        fake.emit(event.clone());
        until("an error retry", || count("error-retry") >= 1.0).await;
        fake.set_unreachable(false);
        until("an event pass", || count("event") >= 1.0).await;
        let samples = parse_text(&metrics.encode()).unwrap();
        assert!(
            value(
                &samples,
                "asw_reconcile_errors_total",
                &[("cluster", "db"), ("kind", "docker_unreachable")]
            )
            .unwrap_or(0.0)
                >= 1.0
        );
        let logs = sink.text();
        // Without the colours.
        let mut plain = String::new();
        let mut rest = logs.as_str();
        while let Some(at) = rest.find('\x1b') {
            plain.push_str(&rest[..at]);
            rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
        }
        plain.push_str(rest);
        let logs = plain;
        assert!(
            logs.lines().any(|l| l.contains("reconcile failed")
                && l.contains("reconcile{cluster=db service=s1 trigger=event}")),
            "{logs}"
        );
        assert!(
            logs.contains("reconcile{cluster=db service=s1 trigger=error-retry}"),
            "{logs}"
        );

        // The service goes: its next pass forgets it, and its series.
        fake.remove_service("s1").await.unwrap();
        fake.emit(event);
        until("db's series removed", || {
            !metrics.encode().contains("cluster=\"db\"")
        })
        .await;

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the loop stops")
            .unwrap();
    }

    #[test]
    fn the_reader_handles_escapes_and_rejects_garbage() {
        let samples = parse_text(
            "# TYPE x counter\nx_total{a=\"q\\\"uo,te\",b=\"\"} 3\ny 1.5e3\nz{le=\"+Inf\"} +Inf\n# EOF\n",
        )
        .unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].labels["a"], "q\"uo,te");
        assert_eq!(samples[0].labels["b"], "");
        assert_eq!(samples[1].value, 1500.0);
        assert_eq!(samples[2].value, f64::INFINITY);
        assert!(parse_text("x{a=1} 2\n").is_err());
        assert!(parse_text("x\n").is_err());
        assert!(parse_text("x{a=\"1\" 2\n").is_err());
    }

    #[test]
    fn the_dashboard_uses_only_exported_metrics() {
        let dashboard: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana-dashboard.json"
        )))
        .expect("the dashboard is JSON");
        // A family with no series prints no TYPE line: give each one.
        let metrics = Metrics::new();
        metrics.reconcile_started(Trigger::Poll).cluster("db");
        metrics.reconcile_failed("db", "conflict");
        metrics.observe_cluster("db", &gauges(Phase::Ready, 3));
        let endpoint = Endpoint::read("GET /tasks", "list_tasks");
        metrics.docker_call(endpoint);
        metrics.docker_error(endpoint, "docker_unreachable");
        metrics.info_request("observe");
        metrics.info_error("observe");
        let names = exported_names(&metrics.encode());
        let mut expressions = Vec::new();
        fn collect(value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        match (key.as_str(), value) {
                            ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                            _ => collect(value, out),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
                _ => {}
            }
        }
        collect(&dashboard, &mut expressions);
        assert!(expressions.len() >= 10, "{expressions:?}");
        let prefix = format!("{PREFIX}_");
        let mut used = std::collections::BTreeSet::new();
        for expr in &expressions {
            let mut rest = expr.as_str();
            while let Some(at) = rest.find(&prefix) {
                let before = rest[..at].chars().next_back();
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(tail.len());
                if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    used.insert(tail[..end].to_string());
                }
                rest = &tail[end..];
            }
        }
        for name in &used {
            assert!(
                names.contains(name),
                "the dashboard uses {name}, which the registry does not export ({names:?})"
            );
        }
        // And every family is on the dashboard somewhere.
        let families = [
            "asw_reconciles_total",
            "asw_reconcile_errors_total",
            "asw_reconcile_duration_seconds_bucket",
            "asw_cluster_nodes_desired",
            "asw_cluster_tasks_running",
            "asw_cluster_nodes_meshed",
            "asw_cluster_migrations_remaining",
            "asw_cluster_rollout_done",
            "asw_cluster_rollout_total",
            "asw_tips_total",
            "asw_tip_clears_total",
            "asw_docker_requests_total",
            "asw_docker_errors_total",
            "asw_info_requests_total",
            "asw_info_errors_total",
        ];
        for family in families {
            assert!(used.contains(family), "{family} is on no panel");
        }
        assert!(dashboard["__inputs"]
            .as_array()
            .is_some_and(|inputs| inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS")));
    }
}
