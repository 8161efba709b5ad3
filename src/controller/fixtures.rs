//! Test fixtures shared by the controller's unit tests (as controller-rs's
//! `fixtures.rs`): a cluster service, quiet run options, a controller run
//! in the background, a log sink — one copy each instead of one per test
//! module — and [`Scene`], the observed cluster the decision tests start
//! from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::aerospike::{ClusterView, NodeReport};
use crate::spec::{ClusterSpec, STATUS_PREFIX};
use crate::swarm::{EventKind, NetworkInfo, ServiceInfo, SwarmEvent, TaskInfo};

use super::decide::{decide, Decision, Settings, Write};
use super::mesh::tests::report;
use super::observe::{ClusterObservation, ColdStarting, Observed, Silence};
use super::plan::tests::node;
use super::plan::{self, TaskSummary};
use super::rollout;
use super::RunOptions;

/// A replicated service `s1` named `db` (1 replica), with `labels`.
pub fn service(labels: &[(&str, &str)]) -> ServiceInfo {
    ServiceInfo {
        id: "s1".into(),
        name: "db".into(),
        replicas: Some(1),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ServiceInfo::default()
    }
}

/// [`service`] declaring a paused 3-node cluster: a pass needs nothing but
/// the service and writes its status (Paused), so no node is asked
/// anything.
pub fn paused_cluster() -> ServiceInfo {
    service(&[
        ("aerospike.cluster.replicas", "3"),
        ("aerospike.cluster.version", "7.1.0.0"),
        ("aerospike.cluster.paused", "true"),
    ])
}

/// An `update` event of service `id`.
pub fn service_event(id: &str) -> SwarmEvent {
    SwarmEvent {
        kind: EventKind::Service,
        action: "update".into(),
        actor_id: id.into(),
        attributes: BTreeMap::new(),
    }
}

/// Run options whose periodic triggers (resync, slow poll, counters line)
/// never fire during a test, so only events, requeues and the error policy
/// explain what happens; a fast poll of 100 ms.
pub fn quiet_options() -> RunOptions {
    RunOptions {
        resync_interval: Duration::from_secs(3600),
        poll_fast: Duration::from_millis(100),
        poll_slow: Duration::from_secs(3600),
        counters_interval: Duration::from_secs(3600),
        ..RunOptions::default()
    }
}

/// Runs `run` (a controller's `run(shutdown)`) in the background until the
/// returned sender is used or dropped.
pub fn spawn_until_stopped<F, Fut>(run: F) -> (oneshot::Sender<()>, JoinHandle<()>)
where
    F: FnOnce(futures::future::BoxFuture<'static, ()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = Box::pin(async {
        let _ = stopped.await;
    });
    (stop, tokio::spawn(run(shutdown)))
}

/// A log sink a test can read back.
#[derive(Clone, Default)]
pub struct LogSink(Arc<Mutex<Vec<u8>>>);

impl LogSink {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LogSink {
    type Writer = LogSink;
    fn make_writer(&'w self) -> LogSink {
        self.clone()
    }
}

/// A scene for [`super::decide::decide`]: one managed cluster as a pass
/// observed it, built by chained steps so that a decision test reads like
/// the situation it describes:
///
/// ```ignore
/// let scene = Scene::cluster(3).after_a_pass().silent(4);
/// ```
///
/// Nodes are named by the last byte of their address (10.0.0.2 …, tasks
/// `t2` … on swarm nodes `n2` …); the service `s1` (`db`) runs
/// 7.1.0.0 with the operator's valve policy on network `net1`.
#[derive(Debug, Clone)]
pub struct Scene {
    /// The observation the scene stands for.
    pub cluster: ClusterObservation,
}

/// The addresses of a scene's nodes: `10.0.0.<last>`.
pub fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

/// The service endpoint of a scene's node.
pub fn addr(last: u8) -> SocketAddr {
    SocketAddr::new(ip(last), 3000)
}

impl Scene {
    /// `n` nodes that run and answer, meshed in one cluster (key `AA`) with
    /// 0 migrations, on a service whose labels ask for `n` replicas; the
    /// service carries no status yet (the operator has not written one).
    pub fn cluster(n: u8) -> Scene {
        let lasts: Vec<u8> = (2..2 + n).collect();
        let tasks: Vec<TaskInfo> = lasts
            .iter()
            .map(|last| TaskInfo {
                id: format!("t{last}"),
                service_id: "s1".into(),
                node_id: format!("n{last}"),
                desired_state: "running".into(),
                state: "running".into(),
                addresses: vec![("net1".into(), ip(*last))],
                template_fingerprint: "v1".into(),
                image: Some("aerospike/aerospike-server:7.1.0.0".into()),
                ..TaskInfo::default()
            })
            .collect();
        let service = ServiceInfo {
            id: "s1".into(),
            name: "db".into(),
            version: 10,
            labels: [
                ("aerospike.cluster.replicas".to_string(), n.to_string()),
                ("aerospike.cluster.version".into(), "7.1.0.0".into()),
            ]
            .into_iter()
            .collect(),
            image: Some("aerospike/aerospike-server:7.1.0.0".into()),
            replicas: Some(u64::from(n)),
            max_replicas_per_node: Some(1),
            network_ids: vec!["net1".into()],
            template_fingerprint: "v1".into(),
            update_policy: Some(rollout::valve_policy()),
            rollback_policy: Some(rollout::valve_policy()),
            ..ServiceInfo::default()
        };
        let mut scene = Scene {
            cluster: ClusterObservation {
                spec: spec_of(&service),
                service,
                all_tasks: tasks,
                changing: false,
                pause_config: false,
                network: NetworkInfo::overlay("net1", "aerospike"),
                eligible: usize::from(n),
                last_set: None,
                tasks: TaskSummary::default(),
                addrs: Vec::new(),
                reports: Vec::new(),
                unreachable: Vec::new(),
                misbehaving: Vec::new(),
                id_holders: BTreeMap::new(),
                cold_starting: Vec::new(),
                cold_progress: BTreeMap::new(),
                silence: Silence::default(),
                view: ClusterView::default(),
                answered: BTreeSet::new(),
                stalled: None,
                quiesce: None,
                now: SystemTime::now(),
                watched_since: std::time::UNIX_EPOCH,
                config: Default::default(),
            },
        };
        for last in &lasts {
            let peers: Vec<u8> = lasts.iter().copied().filter(|l| l != last).collect();
            scene = scene.answering(report(node(*last, "AA", u32::from(n)), &peers));
        }
        scene.derive()
    }

    /// The same cluster after the operator's earlier pass wrote the status
    /// that pass decided (as the labels carry it now).
    pub fn after_a_pass(mut self) -> Scene {
        let decision = self.decide();
        if let Some(ids) = decision.node_ids {
            self.cluster.id_holders = ids;
        }
        if let Write::Service {
            status: Some(status),
            ..
        } = decision.write
        {
            let labels = &mut self.cluster.service.labels;
            labels.retain(|k, _| !k.starts_with(STATUS_PREFIX));
            labels.extend(status.to_labels());
            self.cluster.service.status_only_update = true;
        }
        self
    }

    /// Sets label `key` to `value` on the service (a user's
    /// `docker service update --label-add`).
    pub fn label(mut self, key: &str, value: &str) -> Scene {
        self.cluster
            .service
            .labels
            .insert(key.to_string(), value.to_string());
        self.cluster.service.status_only_update = false;
        self.cluster.service.version += 1;
        self.derive()
    }

    /// Node `last` does not answer: its report is gone and the pass could
    /// not reach it (it answered the pass before: a crash, not a start).
    pub fn silent(mut self, last: u8) -> Scene {
        self.cluster
            .reports
            .retain(|r| r.observation.addr != addr(last));
        self.cluster
            .unreachable
            .push((addr(last), "connection refused".into()));
        self.derive()
    }

    /// Node `last` does not answer because it is cold-starting: its task
    /// runs and its console reported `objects` loaded a moment ago.
    pub fn cold_starting(mut self, last: u8, objects: u64) -> Scene {
        self.cluster
            .reports
            .retain(|r| r.observation.addr != addr(last));
        let lines = [
            "{test} beginning cold start".to_string(),
            format!("{{test}} loaded: objects {objects} device-pcts (40)"),
        ];
        let cold = crate::aerospike::coldstart::read(lines.iter().map(String::as_str))
            .expect("a cold start");
        let task = format!("t{last}");
        self.cluster
            .cold_progress
            .insert(task.clone(), SystemTime::now());
        self.cluster.cold_starting.push(ColdStarting {
            addr: addr(last),
            task,
            cold,
        });
        self.derive()
    }

    /// Node `last` answers from a cluster of its own (key `key`, size 1).
    pub fn outsider(mut self, last: u8, key: &str) -> Scene {
        self.cluster
            .reports
            .retain(|r| r.observation.addr != addr(last));
        self.answering(report(node(last, key, 1), &[])).derive()
    }

    /// Node `last` answers something the operator cannot use: `error`, as
    /// the client says it (e.g. `10.0.0.4:3000: no reply within 2s`).
    pub fn misbehaving(mut self, last: u8, error: &str) -> Scene {
        self.cluster
            .reports
            .retain(|r| r.observation.addr != addr(last));
        self.cluster
            .misbehaving
            .push((addr(last), error.to_string()));
        self.derive()
    }

    /// Node `last` reports node `other`'s id (each node's id is its last
    /// address byte).
    pub fn claims_id_of(mut self, last: u8, other: u8) -> Scene {
        for r in &mut self.cluster.reports {
            if r.observation.addr == addr(last) {
                r.observation.node_id = crate::aerospike::NodeId(u64::from(other));
            }
        }
        self.derive()
    }

    /// Node `last` lists node `departed` (id and address `10.0.0.<departed>`)
    /// among its alumni: a node it knew that is gone.
    pub fn remembers_departed(mut self, last: u8, departed: u8) -> Scene {
        for r in &mut self.cluster.reports {
            if r.observation.addr == addr(last) {
                r.alumni
                    .get_or_insert_with(Vec::new)
                    .push(crate::aerospike::PeerEntry {
                        node_id: crate::aerospike::NodeId(u64::from(departed)),
                        addrs: vec![ip(departed)],
                    });
            }
        }
        self.derive()
    }

    /// The service's template changes to version `version` (label and
    /// image, as the operator's rollout-start writes them); the tasks keep
    /// running the old one.
    pub fn template_changed(mut self, version: &str) -> Scene {
        let image = format!("aerospike/aerospike-server:{version}");
        let labels = &mut self.cluster.service.labels;
        labels.insert("aerospike.cluster.version".into(), version.into());
        self.cluster.service.image = Some(image);
        self.cluster.service.template_fingerprint = "v2".into();
        self.cluster.service.status_only_update = false;
        self.cluster.service.version += 1;
        self.derive()
    }

    /// Swarm replaced node `last`'s task with one of the current template,
    /// at the same address; it answers as before.
    pub fn replaced(mut self, last: u8) -> Scene {
        let template = self.cluster.service.template_fingerprint.clone();
        let image = self.cluster.service.image.clone();
        for task in &mut self.cluster.all_tasks {
            if task.id == format!("t{last}") {
                task.template_fingerprint = template.clone();
                task.image = image.clone();
            }
        }
        self.derive()
    }

    /// Node `last` has `remaining` partitions left to migrate.
    pub fn migrating(mut self, last: u8, remaining: u64) -> Scene {
        for r in &mut self.cluster.reports {
            if r.observation.addr == addr(last) {
                r.observation.stats.migrate_partitions_remaining = remaining;
            }
        }
        self.derive()
    }

    /// The node that leaves next in an Enterprise scale-down reads as
    /// neither quiesced nor pending (what observe reads before a quiesce).
    pub fn leaving_not_quiesced(mut self) -> Scene {
        self.cluster.quiesce = Some(super::nodes::QuiesceState {
            pending: false,
            effective: false,
        });
        self
    }

    /// Only `n` swarm nodes may run the service's tasks.
    pub fn eligible(mut self, n: usize) -> Scene {
        self.cluster.eligible = n;
        self
    }

    /// The observation, as [`super::observe`] returns it.
    pub fn observed(&self) -> Observed {
        Observed::Cluster(Box::new(self.cluster.clone()))
    }

    /// What [`super::decide::decide`] makes of the scene, with a fast poll
    /// of 1 s and the default join timeout.
    pub fn decide(&self) -> Decision {
        decide(&self.observed(), &scene_settings())
    }

    /// The labels the service carries, as the status code reads them.
    pub fn labels(&self) -> HashMap<String, String> {
        self.cluster
            .service
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn answering(mut self, report: NodeReport) -> Scene {
        self.cluster.reports.push(report);
        self
    }

    /// Recomputes what follows from the parts a step changed: the spec
    /// from the labels, the task summary, the addresses, the view.
    fn derive(mut self) -> Scene {
        let c = &mut self.cluster;
        c.spec = spec_of(&c.service);
        c.tasks = plan::summarise_tasks(&c.all_tasks, &c.network.id, &BTreeSet::new());
        c.addrs = c
            .tasks
            .up
            .iter()
            .map(|ip| SocketAddr::new(*ip, 3000))
            .collect();
        c.view = ClusterView::from(
            c.reports
                .iter()
                .map(|r| r.observation.clone())
                .collect::<Vec<_>>(),
        );
        self
    }
}

/// The spec `service`'s labels declare (a scene's labels always parse).
fn spec_of(service: &ServiceInfo) -> ClusterSpec {
    ClusterSpec::from_labels(&service.labels, service.image.as_deref())
        .expect("a scene's labels parse")
        .expect("a scene's service declares a cluster")
}

/// The settings [`Scene::decide`] decides with.
pub fn scene_settings() -> Settings {
    Settings {
        poll_fast: Duration::from_secs(1),
        join_timeout: rollout::DEFAULT_JOIN_TIMEOUT,
    }
}
