//! The triggers: what puts clusters on the scheduler's queue.
//!
//! - the swarm event stream (service, node, secret events) for an
//!   immediate reaction;
//! - one `GET /tasks` for all clusters, since swarm has no task events:
//!   every `poll_fast` while any cluster converges, every `poll_slow` when
//!   all are settled; a cluster is queued when its tasks changed;
//! - a full resync (every service) every `resync_interval`, and whenever
//!   the event stream had to be re-opened (events may have been missed).
//!
//! Events are hints, never the truth: every reconcile reads afresh.
//!
//! With a cluster selector ([`super::selector`]) the resync queues only
//! the services it matches; a service event queues the service whatever
//! its labels, and its reconcile drops an unselected one after one read.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use tracing::{debug, warn};

use crate::swarm::{EventKind, SwarmApi, TaskFilter, TaskInfo};

use super::scheduler::{Scheduler, Trigger};
use super::selector::{managed_spec, ClusterSelector};

/// What the triggers and the runner share about the clusters.
#[derive(Debug, Default)]
pub struct Known {
    /// Managed clusters: service id → name.
    clusters: Mutex<BTreeMap<String, String>>,
    /// Clusters whose last reconcile asked to look again soon.
    converging: Mutex<HashSet<String>>,
}

impl Known {
    fn clusters(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.clusters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn converging(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.converging.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the result of a reconcile of `id`.
    pub fn record(&self, id: &str, managed: Option<&str>, converging: bool) {
        match managed {
            Some(name) => {
                self.clusters().insert(id.to_string(), name.to_string());
            }
            None => {
                self.clusters().remove(id);
            }
        }
        if converging && managed.is_some() {
            self.converging().insert(id.to_string());
        } else {
            self.converging().remove(id);
        }
    }

    /// The name of managed cluster `id`, if known.
    pub fn name(&self, id: &str) -> Option<String> {
        self.clusters().get(id).cloned()
    }

    /// The ids of every managed cluster.
    pub fn ids(&self) -> Vec<String> {
        self.clusters().keys().cloned().collect()
    }

    /// Whether any cluster is converging.
    pub fn any_converging(&self) -> bool {
        !self.converging().is_empty()
    }
}

/// Whether a service is, or is meant to be, managed by this operator: the
/// selector (if any) matches it, and it has a valid spec or labels that try
/// to be one (which then get an Error status). The reconciler decides the
/// same way ([`managed_spec`]).
fn wants_management(
    labels: &BTreeMap<String, String>,
    image: Option<&str>,
    selector: Option<&ClusterSelector>,
) -> bool {
    !matches!(managed_spec(selector, labels, image), Ok(None))
}

/// Queues every managed service (those `selector` matches, when there is
/// one). Returns whether the listing worked.
pub async fn resync<S: SwarmApi>(
    swarm: &S,
    scheduler: &Scheduler<String>,
    known: &Known,
    selector: Option<&ClusterSelector>,
) -> bool {
    match swarm.list_services().await {
        Ok(services) => {
            let mut ids = BTreeSet::new();
            for service in services {
                if wants_management(&service.labels, service.image.as_deref(), selector) {
                    ids.insert(service.id.clone());
                    scheduler.schedule(service.id, Duration::ZERO, Trigger::Resync);
                }
            }
            // Clusters that vanished unseen (events missed), or stopped
            // being selected, are reconciled once more, which finds them
            // gone or unmanaged and forgets them.
            for id in known.ids() {
                if !ids.contains(&id) {
                    scheduler.schedule(id, Duration::ZERO, Trigger::Resync);
                }
            }
            true
        }
        Err(e) => {
            warn!(error = %e, "resync: cannot list services; retrying later");
            false
        }
    }
}

/// Runs the periodic resync forever.
pub async fn resync_loop<S: SwarmApi>(
    swarm: Arc<S>,
    scheduler: Arc<Scheduler<String>>,
    known: Arc<Known>,
    every: Duration,
    selector: Option<ClusterSelector>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        debug!("full resync");
        resync(swarm.as_ref(), &scheduler, &known, selector.as_ref()).await;
    }
}

/// Follows the event stream forever, re-opening it with backoff when it
/// breaks, and resyncing after each break since events were missed.
pub async fn event_loop<S: SwarmApi>(
    swarm: Arc<S>,
    scheduler: Arc<Scheduler<String>>,
    known: Arc<Known>,
    selector: Option<ClusterSelector>,
) {
    let retry = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times();
    let mut backoff = retry.build();
    loop {
        let opened = SystemTime::now();
        let mut events = swarm.events(Some(opened));
        let mut healthy = false;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    warn!(error = %e, "swarm event stream failed; re-opening it");
                    break;
                }
            };
            if !healthy {
                healthy = true;
                backoff = retry.build();
            }
            match event.kind {
                // A service event names the service; reconciling an
                // unmanaged (or unselected) one costs one inspect and is
                // dropped.
                EventKind::Service => {
                    scheduler.schedule(event.actor_id, Duration::ZERO, Trigger::Event)
                }
                // Nodes change what is eligible; secrets may be the config
                // a cluster waits for; a config may be a cluster's pause
                // (`<service>.paused`). All concern every cluster.
                // Other configs (the leader lease, renewed every 2 s)
                // concern no cluster.
                EventKind::Config if !may_be_pause_config(&event) => {}
                EventKind::Node | EventKind::Secret | EventKind::Config => {
                    for id in known.ids() {
                        scheduler.schedule(id, Duration::ZERO, Trigger::Event);
                    }
                }
                EventKind::Network => {}
            }
        }
        let delay = backoff.next().unwrap_or(Duration::from_secs(30));
        tokio::time::sleep(delay).await;
        resync(swarm.as_ref(), &scheduler, &known, selector.as_ref()).await;
    }
}

/// Whether a config event may be about a cluster's pause config
/// (`<service>.paused`): its name says so, or it has none.
fn may_be_pause_config(event: &crate::swarm::SwarmEvent) -> bool {
    event
        .attributes
        .get("name")
        .is_none_or(|name| name.ends_with(".paused"))
}

/// A cluster's tasks as far as the poll cares: id, state and addresses of
/// each task meant to run.
type Fingerprint = Vec<(String, String, Vec<String>)>;

fn fingerprints(tasks: Vec<TaskInfo>) -> HashMap<String, Fingerprint> {
    let mut by_service: HashMap<String, Fingerprint> = HashMap::new();
    for task in tasks {
        let addresses = task
            .addresses
            .iter()
            .map(|(_, ip)| ip.to_string())
            .collect();
        by_service
            .entry(task.service_id)
            .or_default()
            .push((task.id, task.state, addresses));
    }
    for fingerprint in by_service.values_mut() {
        fingerprint.sort();
    }
    by_service
}

/// Polls all tasks forever with one call, queueing each managed cluster
/// whose tasks changed since the last poll.
pub async fn task_poll_loop<S: SwarmApi>(
    swarm: Arc<S>,
    scheduler: Arc<Scheduler<String>>,
    known: Arc<Known>,
    fast: Duration,
    slow: Duration,
) {
    let mut last: HashMap<String, Fingerprint> = HashMap::new();
    loop {
        let delay = if known.any_converging() { fast } else { slow };
        tokio::time::sleep(delay).await;
        let tasks = match swarm.list_tasks(&TaskFilter::all().desired_running()).await {
            Ok(tasks) => tasks,
            Err(e) => {
                warn!(error = %e, "task poll failed; trying again");
                continue;
            }
        };
        let mut now = fingerprints(tasks);
        for id in known.ids() {
            let current = now.remove(&id).unwrap_or_default();
            if last.get(&id) != Some(&current) {
                scheduler.schedule(id.clone(), Duration::ZERO, Trigger::Poll);
                last.insert(id, current);
            }
        }
        let ids: HashSet<String> = known.ids().into_iter().collect();
        last.retain(|id, _| ids.contains(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_order_and_see_state_and_address_changes() {
        let task = |id: &str, state: &str, ip: &str| TaskInfo {
            id: id.into(),
            service_id: "s1".into(),
            state: state.into(),
            desired_state: "running".into(),
            addresses: vec![("net".into(), ip.parse().unwrap())],
            ..TaskInfo::default()
        };
        let a = fingerprints(vec![
            task("t1", "running", "10.0.0.2"),
            task("t2", "starting", "10.0.0.3"),
        ]);
        let b = fingerprints(vec![
            task("t2", "starting", "10.0.0.3"),
            task("t1", "running", "10.0.0.2"),
        ]);
        assert_eq!(a, b);
        let c = fingerprints(vec![
            task("t1", "running", "10.0.0.2"),
            task("t2", "running", "10.0.0.3"),
        ]);
        assert_ne!(a, c);
    }

    #[test]
    fn only_pause_configs_wake_the_clusters() {
        let event = |name: Option<&str>| crate::swarm::SwarmEvent {
            kind: EventKind::Config,
            action: "update".into(),
            actor_id: "c1".into(),
            attributes: name
                .map(|n| BTreeMap::from([("name".to_string(), n.to_string())]))
                .unwrap_or_default(),
        };
        assert!(may_be_pause_config(&event(Some("db.paused"))));
        assert!(may_be_pause_config(&event(None)));
        assert!(!may_be_pause_config(&event(Some(
            "aerospike-swarm-operator.lease"
        ))));
    }

    #[test]
    fn known_tracks_managed_and_converging_clusters() {
        let known = Known::default();
        known.record("s1", Some("db"), true);
        known.record("s2", Some("db2"), false);
        assert_eq!(known.ids(), ["s1", "s2"]);
        assert!(known.any_converging());
        known.record("s1", Some("db"), false);
        assert!(!known.any_converging());
        known.record("s2", None, false);
        assert_eq!(known.ids(), ["s1"]);
    }

    use crate::spec::label_map as labels;

    #[test]
    fn services_meant_to_be_managed() {
        assert!(!wants_management(&labels(&[("other", "x")]), None, None));
        assert!(wants_management(
            &labels(&[
                ("aerospike.cluster.replicas", "3"),
                ("aerospike.cluster.version", "7.1.0.0")
            ]),
            None,
            None
        ));
        // Invalid, but clearly meant: it gets an Error status.
        assert!(wants_management(
            &labels(&[("aerospike.cluster.replicas", "x")]),
            None,
            None
        ));
    }

    #[test]
    fn with_a_selector_only_selected_services_are_meant_to_be_managed() {
        let team_a: ClusterSelector = "team=a".parse().unwrap();
        let cluster = |team: Option<&str>| {
            let mut labels = labels(&[
                ("aerospike.cluster.replicas", "3"),
                ("aerospike.cluster.version", "7.1.0.0"),
            ]);
            if let Some(team) = team {
                labels.insert("team".into(), team.into());
            }
            labels
        };
        assert!(wants_management(&cluster(Some("a")), None, Some(&team_a)));
        assert!(!wants_management(&cluster(Some("b")), None, Some(&team_a)));
        assert!(!wants_management(&cluster(None), None, Some(&team_a)));
        // Not even an invalid one: it is another operator's to report.
        assert!(!wants_management(
            &labels(&[("aerospike.cluster.replicas", "x"), ("team", "b")]),
            None,
            Some(&team_a)
        ));
        // Selected, but no cluster.
        assert!(!wants_management(
            &labels(&[("team", "a")]),
            None,
            Some(&team_a)
        ));
    }

    /// The keys `resync` queued, in the order they come due.
    async fn queued(scheduler: &Scheduler<String>) -> Vec<String> {
        let mut keys = Vec::new();
        while let Ok((key, _)) =
            tokio::time::timeout(Duration::from_millis(50), scheduler.next()).await
        {
            scheduler.finish(&key);
            keys.push(key);
        }
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn resync_queues_only_the_selected_clusters_and_the_known_ones() {
        let fake = crate::swarm::FakeSwarm::new();
        for (id, team) in [("s1", Some("a")), ("s2", Some("b")), ("s3", None)] {
            let mut service = crate::controller::fixtures::paused_cluster();
            service.id = id.into();
            service.name = format!("db-{id}");
            if let Some(team) = team {
                service.labels.insert("team".into(), team.into());
            }
            fake.put_service(service);
        }
        let scheduler = Scheduler::default();
        let known = Known::default();
        let team_a: ClusterSelector = "team=a".parse().unwrap();
        assert!(resync(&fake, &scheduler, &known, Some(&team_a)).await);
        assert_eq!(queued(&scheduler).await, ["s1"]);
        // Without a selector: every cluster.
        assert!(resync(&fake, &scheduler, &known, None).await);
        assert_eq!(queued(&scheduler).await, ["s1", "s2", "s3"]);
        // A cluster managed before that no longer matches is looked at
        // once more, so that its reconcile forgets it.
        known.record("s2", Some("db-s2"), false);
        assert!(resync(&fake, &scheduler, &known, Some(&team_a)).await);
        assert_eq!(queued(&scheduler).await, ["s1", "s2"]);
    }
}
