//! What the operator tells people: log setup, and the counters behind the
//! periodic `action="counters"` line.
//!
//! Counting happens in two small wrappers, [`Instrumented`] around the
//! swarm API and [`super::nodes::CountingInfo`] around the info client, so
//! that no call site can forget to count and the figures are what actually
//! went over the wire.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use futures::stream::BoxStream;
use futures::StreamExt;

use super::http::Health;
use super::metrics::{Endpoint, Metrics};

use crate::swarm::{
    ConfigObject, NetworkInfo, NewService, NodeInfo, ServiceChange, ServiceInfo, SwarmApi,
    SwarmError, SwarmEvent, TaskFilter, TaskInfo,
};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, fields at the top level, with an RFC 3339
    /// `timestamp` (microseconds).
    Json,
}

/// Installs the global tracing subscriber: `RUST_LOG` filters (default
/// `info`), output to stderr in `format`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second init (tests) is refused; the first subscriber stays.
    let _ = tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stderr));
}

/// The subscriber [`init_logging`] installs, writing to `writer`.
///
/// JSON lines carry every event field at the top level (`cluster`,
/// `action`, `reason`, ...) next to `timestamp` (RFC 3339, UTC,
/// microseconds), `level`, `message` and `target`, so a log shipper needs
/// no nesting rules.
pub fn subscriber<W>(
    format: LogFormat,
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Cumulative counts since start. Cheap to share: every field is atomic.
#[derive(Debug, Default)]
pub struct Counters {
    /// Read calls to the Docker API.
    pub docker_reads: AtomicU64,
    /// Write calls to the Docker API (updates, creates, removes).
    pub docker_writes: AtomicU64,
    /// Info requests sent to Aerospike nodes (each a round trip).
    pub info_requests: AtomicU64,
    /// `tip` commands sent.
    pub tips: AtomicU64,
    /// `tip-clear` commands sent.
    pub tip_clears: AtomicU64,
    /// `services-alumni-reset` commands sent.
    pub alumni_resets: AtomicU64,
    /// `quiesce:` commands sent (Enterprise scale-down).
    pub quiesces: AtomicU64,
    /// Info commands that change a node: tips, tip-clears, alumni resets,
    /// quiesces and reclusters together. A settled cluster costs none.
    pub info_writes: AtomicU64,
    /// Reconciles run.
    pub reconciles: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// See [`Counters::docker_reads`].
    pub docker_reads: u64,
    /// See [`Counters::docker_writes`].
    pub docker_writes: u64,
    /// See [`Counters::info_requests`].
    pub info_requests: u64,
    /// See [`Counters::tips`].
    pub tips: u64,
    /// See [`Counters::tip_clears`].
    pub tip_clears: u64,
    /// See [`Counters::alumni_resets`].
    pub alumni_resets: u64,
    /// See [`Counters::quiesces`].
    pub quiesces: u64,
    /// See [`Counters::info_writes`].
    pub info_writes: u64,
    /// See [`Counters::reconciles`].
    pub reconciles: u64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            docker_reads: get(&self.docker_reads),
            docker_writes: get(&self.docker_writes),
            info_requests: get(&self.info_requests),
            tips: get(&self.tips),
            tip_clears: get(&self.tip_clears),
            alumni_resets: get(&self.alumni_resets),
            quiesces: get(&self.quiesces),
            info_writes: get(&self.info_writes),
            reconciles: get(&self.reconciles),
        }
    }

    /// Writes the `action="counters"` log line.
    pub fn log(&self) {
        let s = self.snapshot();
        tracing::info!(
            action = "counters",
            docker_reads = s.docker_reads,
            docker_writes = s.docker_writes,
            info_requests = s.info_requests,
            tips = s.tips,
            tip_clears = s.tip_clears,
            alumni_resets = s.alumni_resets,
            quiesces = s.quiesces,
            info_writes = s.info_writes,
            reconciles = s.reconciles,
            "counters"
        );
    }
}

/// A [`SwarmApi`] that counts every call it passes on: into the
/// [`Counters`] (reads, writes) and, when given, into the [`Metrics`] (calls
/// and errors by endpoint) and the [`Health`] (whether Docker answers).
///
/// Every method goes through [`Instrumented::call`] with its [`Endpoint`];
/// a new trait method does the same, e.g.
/// `self.call(Endpoint::read("GET /tasks", "list_tasks"), self.inner.list_tasks(filter)).await`.
#[derive(Debug, Clone)]
pub struct Instrumented<S> {
    inner: S,
    counters: Arc<Counters>,
    metrics: Option<Arc<Metrics>>,
    health: Option<Arc<Health>>,
}

impl<S> Instrumented<S> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: S, counters: Arc<Counters>) -> Instrumented<S> {
        Instrumented {
            inner,
            counters,
            metrics: None,
            health: None,
        }
    }

    /// Also counts calls and errors by endpoint into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Instrumented<S> {
        self.metrics = Some(metrics);
        self
    }

    /// Also records in `health` whether the last call reached Docker.
    pub fn with_health(mut self, health: Arc<Health>) -> Instrumented<S> {
        self.health = Some(health);
        self
    }

    /// Counts a call to `endpoint` (before it is made).
    fn count(&self, endpoint: Endpoint) {
        if endpoint.write {
            Counters::bump(&self.counters.docker_writes);
        } else {
            Counters::bump(&self.counters.docker_reads);
        }
        if let Some(metrics) = &self.metrics {
            metrics.docker_call(endpoint);
        }
    }

    /// Records how a call to `endpoint` ended.
    fn outcome(&self, endpoint: Endpoint, error: Option<&SwarmError>) {
        observe_outcome(
            self.metrics.as_deref(),
            self.health.as_deref(),
            endpoint,
            error,
        );
    }

    /// Counts the call, runs it, and counts its error if any.
    async fn call<T>(
        &self,
        endpoint: Endpoint,
        call: impl Future<Output = Result<T, SwarmError>>,
    ) -> Result<T, SwarmError> {
        self.count(endpoint);
        let result = call.await;
        self.outcome(endpoint, result.as_ref().err());
        result
    }
}

/// Records the end of a call: an error by kind; whether Docker answered
/// (any reply but a transport failure counts as an answer).
fn observe_outcome(
    metrics: Option<&Metrics>,
    health: Option<&Health>,
    endpoint: Endpoint,
    error: Option<&SwarmError>,
) {
    if let (Some(metrics), Some(error)) = (metrics, error) {
        metrics.docker_error(endpoint, error.kind());
    }
    if let Some(health) = health {
        let unreachable = matches!(error, Some(SwarmError::Unreachable { .. }));
        health.set_docker_ok(!unreachable);
    }
}

impl<S: SwarmApi> SwarmApi for Instrumented<S> {
    async fn list_services(&self) -> Result<Vec<ServiceInfo>, SwarmError> {
        let endpoint = Endpoint::read("GET /services", "list_services");
        self.call(endpoint, self.inner.list_services()).await
    }

    async fn inspect_service(&self, id_or_name: &str) -> Result<ServiceInfo, SwarmError> {
        let endpoint = Endpoint::read("GET /services/{id}", "inspect_service");
        self.call(endpoint, self.inner.inspect_service(id_or_name))
            .await
    }

    async fn list_nodes(&self) -> Result<Vec<NodeInfo>, SwarmError> {
        let endpoint = Endpoint::read("GET /nodes", "list_nodes");
        self.call(endpoint, self.inner.list_nodes()).await
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskInfo>, SwarmError> {
        let endpoint = Endpoint::read("GET /tasks", "list_tasks");
        self.call(endpoint, self.inner.list_tasks(filter)).await
    }

    async fn network(&self, id_or_name: &str) -> Result<Option<NetworkInfo>, SwarmError> {
        let endpoint = Endpoint::read("GET /networks/{id}", "network");
        self.call(endpoint, self.inner.network(id_or_name)).await
    }

    async fn secret_exists(&self, name: &str) -> Result<bool, SwarmError> {
        let endpoint = Endpoint::read("GET /secrets", "secret_exists");
        self.call(endpoint, self.inner.secret_exists(name)).await
    }

    async fn config_text(&self, name: &str) -> Result<Option<String>, SwarmError> {
        let endpoint = Endpoint::read("GET /configs/{id}", "config_text");
        self.call(endpoint, self.inner.config_text(name)).await
    }

    async fn config_exists(&self, name: &str) -> Result<bool, SwarmError> {
        let endpoint = Endpoint::read("GET /configs", "config_exists");
        self.call(endpoint, self.inner.config_exists(name)).await
    }

    async fn task_logs(&self, id: &str, tail: usize) -> Result<Vec<String>, SwarmError> {
        let endpoint = Endpoint::read("GET /tasks/{id}/logs", "task_logs");
        self.call(endpoint, self.inner.task_logs(id, tail)).await
    }

    async fn find_config(&self, name: &str) -> Result<Option<ConfigObject>, SwarmError> {
        let endpoint = Endpoint::read("GET /configs/{id}", "find_config");
        self.call(endpoint, self.inner.find_config(name)).await
    }

    async fn create_config_with(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        body: &str,
    ) -> Result<(), SwarmError> {
        let endpoint = Endpoint::write("POST /configs/create", "create_config");
        self.call(endpoint, self.inner.create_config_with(name, labels, body))
            .await
    }

    async fn relabel_config(
        &self,
        id: &str,
        version: u64,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), SwarmError> {
        let endpoint = Endpoint::write("POST /configs/{id}/update", "relabel_config");
        self.call(endpoint, self.inner.relabel_config(id, version, labels))
            .await
    }

    async fn remove_config(&self, name: &str) -> Result<(), SwarmError> {
        let endpoint = Endpoint::write("DELETE /configs/{id}", "remove_config");
        self.call(endpoint, self.inner.remove_config(name)).await
    }

    async fn update_service(
        &self,
        id: &str,
        version: u64,
        change: &ServiceChange,
    ) -> Result<u64, SwarmError> {
        let endpoint = Endpoint::write("POST /services/{id}/update", "update_service");
        self.call(endpoint, self.inner.update_service(id, version, change))
            .await
    }

    async fn create_service(&self, service: &NewService) -> Result<String, SwarmError> {
        let endpoint = Endpoint::write("POST /services/create", "create_service");
        self.call(endpoint, self.inner.create_service(service))
            .await
    }

    async fn remove_service(&self, id_or_name: &str) -> Result<(), SwarmError> {
        let endpoint = Endpoint::write("DELETE /services/{id}", "remove_service");
        self.call(endpoint, self.inner.remove_service(id_or_name))
            .await
    }

    fn events(
        &self,
        since: Option<SystemTime>,
    ) -> BoxStream<'static, Result<SwarmEvent, SwarmError>> {
        // Opening the stream is one request; the events it carries are not
        // calls of ours. An error on the stream is that request failing.
        let endpoint = Endpoint::read("GET /events", "events");
        self.count(endpoint);
        let (metrics, health) = (self.metrics.clone(), self.health.clone());
        self.inner
            .events(since)
            .inspect(move |item| {
                observe_outcome(
                    metrics.as_deref(),
                    health.as_deref(),
                    endpoint,
                    item.as_ref().err(),
                )
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::LogSink;
    use crate::swarm::FakeSwarm;

    #[test]
    fn json_lines_have_the_contract_fields_at_the_top_level() {
        let sink = LogSink::default();
        let filter = tracing_subscriber::EnvFilter::new("info");
        let subscriber = subscriber(LogFormat::Json, filter, sink.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                cluster = %"db",
                action = "scale",
                reason = %"scaling from 1 to 3 replicas",
                "scale"
            );
            let counters = Counters::default();
            Counters::bump(&counters.tips);
            counters.log();
        });
        let text = sink.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let action = &lines[0];
        assert_eq!(action["cluster"], "db");
        assert_eq!(action["action"], "scale");
        assert_eq!(action["reason"], "scaling from 1 to 3 replicas");
        // RFC 3339 with sub-second precision, UTC.
        let timestamp = action["timestamp"].as_str().unwrap();
        assert!(
            timestamp.len() > 20 && timestamp.as_bytes()[10] == b'T' && timestamp.ends_with('Z'),
            "{timestamp}"
        );
        assert!(timestamp[19..].starts_with('.'), "{timestamp}");
        let counters = &lines[1];
        assert_eq!(counters["action"], "counters");
        assert_eq!(counters["tips"], 1);
        for field in [
            "docker_reads",
            "docker_writes",
            "info_requests",
            "tip_clears",
            "alumni_resets",
            "info_writes",
            "reconciles",
        ] {
            assert_eq!(counters[field], 0, "{field}: {counters}");
        }
    }

    #[tokio::test]
    async fn instrumented_counts_reads_and_writes() {
        let fake = FakeSwarm::new();
        fake.put_service(ServiceInfo {
            id: "s1".into(),
            name: "db".into(),
            replicas: Some(1),
            ..ServiceInfo::default()
        });
        let counters = Arc::new(Counters::default());
        let api = Instrumented::new(fake.clone(), counters.clone());
        api.list_nodes().await.unwrap();
        let service = api.inspect_service("db").await.unwrap();
        api.update_service("s1", service.version, &ServiceChange::default())
            .await
            .unwrap();
        let seen = counters.snapshot();
        assert_eq!(seen.docker_reads, 2);
        assert_eq!(seen.docker_writes, 1);
        assert_eq!(fake.writes().len(), 1);
    }
}
