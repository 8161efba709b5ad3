//! [`FakeSwarm`]: an in-memory [`SwarmApi`] for controller tests.
//!
//! Tests set services, nodes, tasks, networks and secrets, run the code
//! under test, then look at [`FakeSwarm::writes`] — e.g. "a settled cluster
//! causes no write calls". Updates bump versions as swarm does and refuse
//! stale ones; an out-of-sequence conflict can be injected once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::broadcast;

use super::api::{NewService, ServiceChange, SwarmApi};
use super::error::SwarmError;
use super::lease::ConfigObject;
use super::types::{
    Availability, NetworkInfo, NodeInfo, NodeRole, NodeState, ServiceInfo, SwarmEvent, TaskFilter,
    TaskInfo,
};

/// A write call the fake received, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCall {
    /// `update_service(id, version, change)`, whether it succeeded or not.
    Update {
        /// Service id as passed.
        id: String,
        /// Version as passed.
        version: u64,
        /// The change.
        change: ServiceChange,
    },
    /// `create_service`.
    Create(NewService),
    /// `remove_service`.
    Remove(String),
    /// A config created or relabelled: its name and the labels written.
    Config {
        /// The config's name.
        name: String,
        /// Its labels after the write.
        labels: BTreeMap<String, String>,
    },
    /// `remove_config`.
    RemoveConfig(String),
}

#[derive(Default)]
struct State {
    /// Swarm versions come from one store-wide counter, so they grow
    /// across objects, not by one per service.
    next_index: u64,
    services: BTreeMap<String, ServiceInfo>,
    nodes: Vec<NodeInfo>,
    tasks: Vec<TaskInfo>,
    networks: Vec<NetworkInfo>,
    secrets: BTreeSet<String>,
    configs: BTreeMap<String, ConfigObject>,
    /// The data of the configs that have some (`add_config_text`).
    config_data: BTreeMap<String, String>,
    task_logs: BTreeMap<String, Vec<String>>,
    writes: Vec<WriteCall>,
    reads: u64,
    out_of_sequence_once: bool,
    /// While set, every `update_service` is refused with HTTP 400 and
    /// this message, as Docker refuses a bad spec.
    refuse_updates: Option<String>,
    unreachable: bool,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.next_index += 1;
        self.next_index
    }

    /// Stores config `name` (id `cfg-<name>`) with `labels`, at a new
    /// version.
    fn put_config(&mut self, name: &str, labels: &BTreeMap<String, String>) {
        let version = self.bump();
        self.configs.insert(
            name.to_string(),
            ConfigObject {
                id: format!("cfg-{name}"),
                version,
                labels: labels.clone(),
            },
        );
    }

    fn service_id(&self, id_or_name: &str) -> Option<String> {
        if self.services.contains_key(id_or_name) {
            return Some(id_or_name.to_string());
        }
        self.services
            .values()
            .find(|s| s.name == id_or_name)
            .map(|s| s.id.clone())
    }

    fn check_reachable(&self) -> Result<(), SwarmError> {
        if self.unreachable {
            return Err(SwarmError::Unreachable {
                host: "fake://swarm".into(),
                source: "the fake swarm was set unreachable".into(),
            });
        }
        Ok(())
    }
}

/// An in-memory swarm. Cloning shares the state.
#[derive(Clone)]
pub struct FakeSwarm {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<SwarmEvent>,
}

impl Default for FakeSwarm {
    fn default() -> Self {
        FakeSwarm::new()
    }
}

/// The template fingerprint the fake gives a service: its image,
/// secrets and volume mounts, the parts of the task template the operator changes that make
/// swarm replace tasks (placement does not: see
/// [`crate::swarm::template_fingerprint`]). Tests give a task the same
/// value to say it runs that template.
pub fn fake_fingerprint(service: &ServiceInfo) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        service.image, service.secret_mounts, service.config_mounts, service.volume_mounts
    )
}

/// A Ready, Active worker node with no labels: the node most tests need.
pub fn ready_worker(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        hostname: id.into(),
        role: NodeRole::Worker,
        availability: Availability::Active,
        state: NodeState::Ready,
        labels: BTreeMap::new(),
        engine_labels: BTreeMap::new(),
        addr: None,
        platform: Default::default(),
    }
}

impl FakeSwarm {
    /// An empty swarm.
    pub fn new() -> FakeSwarm {
        FakeSwarm {
            state: Arc::new(Mutex::new(State {
                next_index: 10,
                ..State::default()
            })),
            events: broadcast::channel(256).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed; keep
        // the state readable for its report.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces a service (by id). Its version is set to a fresh
    /// index; the stored copy is returned.
    pub fn put_service(&self, mut service: ServiceInfo) -> ServiceInfo {
        let mut state = self.lock();
        service.version = state.bump();
        service.template_fingerprint = fake_fingerprint(&service);
        state.services.insert(service.id.clone(), service.clone());
        service
    }

    /// Edits a stored service as someone else would (e.g. `docker service
    /// scale`), bumping its version. Panics if absent: a test bug.
    pub fn edit_service(&self, id: &str, edit: impl FnOnce(&mut ServiceInfo)) -> ServiceInfo {
        let mut state = self.lock();
        let version = state.bump();
        let service = state
            .services
            .get_mut(id)
            .expect("edit_service: no such service");
        edit(service);
        service.version = version;
        service.template_fingerprint = fake_fingerprint(service);
        // Someone else's edit: not a status write of ours.
        service.status_only_update = false;
        service.clone()
    }

    /// The current copy of a service.
    pub fn service(&self, id_or_name: &str) -> Option<ServiceInfo> {
        let state = self.lock();
        let id = state.service_id(id_or_name)?;
        state.services.get(&id).cloned()
    }

    /// Replaces the node list.
    pub fn set_nodes(&self, nodes: Vec<NodeInfo>) {
        self.lock().nodes = nodes;
    }

    /// The current task list.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.lock().tasks.clone()
    }

    /// Adds a swarm config by name (`docker config create`).
    pub fn add_config(&self, name: &str) {
        self.lock().put_config(name, &BTreeMap::new());
    }

    /// Adds a swarm config `name` whose data is `text` (`docker config
    /// create name file`).
    pub fn add_config_text(&self, name: &str, text: &str) {
        let mut state = self.lock();
        state.put_config(name, &BTreeMap::new());
        state.config_data.insert(name.to_string(), text.to_string());
    }

    /// Sets what task `id` has logged (its console lines), oldest first.
    pub fn set_task_logs(&self, id: &str, lines: &[&str]) {
        self.lock().task_logs.insert(
            id.to_string(),
            lines.iter().map(|l| l.to_string()).collect(),
        );
    }

    /// The labels of config `name`, if it exists.
    pub fn config_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.lock().configs.get(name).map(|c| c.labels.clone())
    }

    /// Removes a secret by name (`docker secret rm`).
    pub fn remove_secret(&self, name: &str) {
        self.lock().secrets.remove(name);
    }

    /// Replaces every task.
    pub fn set_tasks(&self, tasks: Vec<TaskInfo>) {
        self.lock().tasks = tasks;
    }

    /// Adds a network.
    pub fn add_network(&self, network: NetworkInfo) {
        self.lock().networks.push(network);
    }

    /// Adds a secret by name.
    pub fn add_secret(&self, name: &str) {
        self.lock().secrets.insert(name.to_string());
    }

    /// Makes the next `update_service` fail with `OutOfSequence` (and bump
    /// the service's version, as the concurrent writer would have).
    pub fn fail_next_update_out_of_sequence(&self) {
        self.lock().out_of_sequence_once = true;
    }

    /// While `Some`, every `update_service` is refused with HTTP 400 and
    /// this message (as Docker refuses a spec it cannot take); `None` ends
    /// it.
    pub fn refuse_updates(&self, message: Option<&str>) {
        self.lock().refuse_updates = message.map(str::to_string);
    }

    /// While set, every call fails with `Unreachable`.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    /// Every write call so far, in order.
    pub fn writes(&self) -> Vec<WriteCall> {
        self.lock().writes.clone()
    }

    /// Forgets recorded writes (e.g. after setting a scene up).
    pub fn clear_writes(&self) {
        self.lock().writes.clear();
    }

    /// Number of read calls so far.
    pub fn reads(&self) -> u64 {
        self.lock().reads
    }

    /// Sends an event to every open [`SwarmApi::events`] stream.
    pub fn emit(&self, event: SwarmEvent) {
        // No subscriber is fine: events are hints.
        let _ = self.events.send(event);
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> Result<T, SwarmError>) -> Result<T, SwarmError> {
        let mut state = self.lock();
        state.reads += 1;
        state.check_reachable()?;
        f(&state)
    }
}

impl SwarmApi for FakeSwarm {
    async fn list_services(&self) -> Result<Vec<ServiceInfo>, SwarmError> {
        self.read(|s| Ok(s.services.values().cloned().collect()))
    }

    async fn inspect_service(&self, id_or_name: &str) -> Result<ServiceInfo, SwarmError> {
        self.read(|s| {
            s.service_id(id_or_name)
                .and_then(|id| s.services.get(&id).cloned())
                .ok_or_else(|| SwarmError::NotFound {
                    what: format!("service {id_or_name:?}"),
                })
        })
    }

    async fn list_nodes(&self) -> Result<Vec<NodeInfo>, SwarmError> {
        self.read(|s| Ok(s.nodes.clone()))
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskInfo>, SwarmError> {
        self.read(|s| {
            // Docker accepts service names in the filter too.
            let mut filter = filter.clone();
            for id in &mut filter.service_ids {
                if let Some(resolved) = s.service_id(id) {
                    *id = resolved;
                }
            }
            Ok(s.tasks
                .iter()
                .filter(|t| filter.matches(t))
                .cloned()
                .collect())
        })
    }

    async fn network(&self, id_or_name: &str) -> Result<Option<NetworkInfo>, SwarmError> {
        self.read(|s| {
            Ok(s.networks
                .iter()
                .find(|n| n.id == id_or_name || n.name == id_or_name)
                .cloned())
        })
    }

    async fn secret_exists(&self, name: &str) -> Result<bool, SwarmError> {
        self.read(|s| Ok(s.secrets.contains(name)))
    }

    async fn config_text(&self, name: &str) -> Result<Option<String>, SwarmError> {
        self.read(|s| {
            Ok(s.configs
                .contains_key(name)
                .then(|| s.config_data.get(name).cloned().unwrap_or_default()))
        })
    }

    async fn config_exists(&self, name: &str) -> Result<bool, SwarmError> {
        self.read(|s| Ok(s.configs.contains_key(name)))
    }

    async fn find_config(&self, name: &str) -> Result<Option<ConfigObject>, SwarmError> {
        self.read(|s| Ok(s.configs.get(name).cloned()))
    }

    async fn task_logs(&self, id: &str, tail: usize) -> Result<Vec<String>, SwarmError> {
        self.read(|s| {
            let lines = s.task_logs.get(id).cloned().unwrap_or_default();
            Ok(lines[lines.len().saturating_sub(tail)..].to_vec())
        })
    }

    async fn create_config_with(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        _body: &str,
    ) -> Result<(), SwarmError> {
        let mut state = self.lock();
        state.check_reachable()?;
        if state.configs.contains_key(name) {
            return Err(SwarmError::Api {
                status: 409,
                message: format!("config {name:?} exists"),
            });
        }
        state.put_config(name, labels);
        state.writes.push(WriteCall::Config {
            name: name.to_string(),
            labels: labels.clone(),
        });
        Ok(())
    }

    async fn relabel_config(
        &self,
        id: &str,
        version: u64,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), SwarmError> {
        let mut state = self.lock();
        state.check_reachable()?;
        let next = state.bump();
        let Some((name, config)) = state.configs.iter_mut().find(|(_, c)| c.id == id) else {
            return Err(SwarmError::NotFound {
                what: format!("config {id:?}"),
            });
        };
        if config.version != version {
            return Err(SwarmError::OutOfSequence {
                service: format!("config {id}"),
            });
        }
        config.version = next;
        config.labels = labels.clone();
        let name = name.clone();
        state.writes.push(WriteCall::Config {
            name,
            labels: labels.clone(),
        });
        Ok(())
    }

    async fn remove_config(&self, name: &str) -> Result<(), SwarmError> {
        let mut state = self.lock();
        state.check_reachable()?;
        state.configs.remove(name);
        state.writes.push(WriteCall::RemoveConfig(name.to_string()));
        Ok(())
    }

    async fn update_service(
        &self,
        id: &str,
        version: u64,
        change: &ServiceChange,
    ) -> Result<u64, SwarmError> {
        let mut state = self.lock();
        state.writes.push(WriteCall::Update {
            id: id.to_string(),
            version,
            change: change.clone(),
        });
        state.check_reachable()?;
        let key = state.service_id(id).ok_or_else(|| SwarmError::NotFound {
            what: format!("service {id:?}"),
        })?;
        let out_of_sequence = SwarmError::OutOfSequence {
            service: id.to_string(),
        };
        if let Some(message) = state.refuse_updates.clone() {
            return Err(SwarmError::Api {
                status: 400,
                message,
            });
        }
        if std::mem::take(&mut state.out_of_sequence_once) {
            let bumped = state.bump();
            if let Some(service) = state.services.get_mut(&key) {
                service.version = bumped;
            }
            return Err(out_of_sequence);
        }
        if state.services[&key].version != version {
            return Err(out_of_sequence);
        }
        if change.replicas.is_some() && state.services[&key].replicas.is_none() {
            return Err(SwarmError::InvalidChange {
                service: id.to_string(),
                reason: "it is not a replicated service, so it has no replica count".into(),
            });
        }
        let before = state.services[&key].clone();
        let mut service = before.clone();
        if let Some(replicas) = change.replicas {
            service.replicas = Some(replicas);
        }
        if let Some(max) = change.max_replicas_per_node {
            service.max_replicas_per_node = (max > 0).then_some(max);
        }
        if let Some(image) = &change.image {
            service.image = Some(image.clone());
        }
        if let Some(constraints) = &change.constraints {
            service.constraints = constraints.clone();
        }
        if let Some(mount) = &change.secret_at_target {
            if !state.secrets.contains(&mount.name) {
                return Err(SwarmError::NotFound {
                    what: format!("secret {:?}", mount.name),
                });
            }
            service.secret_mounts.retain(|m| !m.is_at(&mount.target));
            service.config_mounts.retain(|m| !m.is_at(&mount.target));
            service.secret_mounts.push(mount.clone());
            service.secret_names = service
                .secret_mounts
                .iter()
                .map(|m| m.name.clone())
                .collect();
        }
        if let Some(mount) = &change.config_at_target {
            if !state.configs.contains_key(&mount.name) {
                return Err(SwarmError::NotFound {
                    what: format!("config {:?}", mount.name),
                });
            }
            service.secret_mounts.retain(|m| !m.is_at(&mount.target));
            service.secret_names = service
                .secret_mounts
                .iter()
                .map(|m| m.name.clone())
                .collect();
            service.config_mounts.retain(|m| !m.is_at(&mount.target));
            service.config_mounts.push(mount.clone());
        }
        if let Some(path) = &change.mount_remove_at {
            service.volume_mounts.retain(|m| &m.target != path);
        }
        if let Some(mount) = &change.volume_at_target {
            service.volume_mounts.retain(|m| m.target != mount.target);
            service.volume_mounts.push(mount.clone());
        }
        for network in &change.networks_add {
            if !service.network_ids.contains(network) {
                service.network_ids.push(network.clone());
            }
        }
        if let Some(policy) = &change.update_policy {
            service.update_policy = Some(policy.clone());
            service.rollback_policy = Some(policy.clone());
        }
        service.template_fingerprint = fake_fingerprint(&service);
        for key in &change.labels_remove {
            service.labels.remove(key);
        }
        service.labels.extend(
            change
                .labels_set
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        if service == before {
            // As the real engine client: an edit that changes nothing is
            // not written (the call is still recorded above).
            return Ok(version);
        }
        let new_version = state.bump();
        service.version = new_version;
        // What the engine's PreviousSpec comparison would say.
        let strip = |s: &ServiceInfo| {
            let mut s = s.clone();
            s.labels
                .retain(|k, _| !k.starts_with(crate::spec::STATUS_PREFIX));
            (s.labels, s.replicas, s.max_replicas_per_node)
        };
        let changed = before.labels != service.labels
            || before.replicas != service.replicas
            || before.max_replicas_per_node != service.max_replicas_per_node;
        service.status_only_update = changed && strip(&before) == strip(&service);
        state.services.insert(key, service);
        Ok(new_version)
    }

    async fn create_service(&self, new: &NewService) -> Result<String, SwarmError> {
        let mut state = self.lock();
        state.writes.push(WriteCall::Create(new.clone()));
        state.check_reachable()?;
        if state.service_id(&new.name).is_some() {
            return Err(SwarmError::Api {
                status: 409,
                message: format!("service {} already exists", new.name),
            });
        }
        let mut network_ids = Vec::new();
        for name in &new.networks {
            let network = state
                .networks
                .iter()
                .find(|n| &n.id == name || &n.name == name)
                .ok_or_else(|| SwarmError::NotFound {
                    what: format!("network {name:?}"),
                })?;
            network_ids.push(network.id.clone());
        }
        if let Some(missing) = new
            .secrets
            .iter()
            .find(|m| !state.secrets.contains(&m.name))
        {
            return Err(SwarmError::NotFound {
                what: format!("secret {:?}", missing.name),
            });
        }
        let version = state.bump();
        let id = format!("fake-service-{version}");
        let service = ServiceInfo {
            id: id.clone(),
            name: new.name.clone(),
            version,
            labels: new.labels.clone(),
            image: Some(new.image.clone()),
            replicas: Some(new.replicas),
            max_replicas_per_node: new.max_replicas_per_node.filter(|&m| m > 0),
            constraints: new.constraints.clone(),
            network_ids,
            secret_names: new.secrets.iter().map(|m| m.name.clone()).collect(),
            update_status: None,
            status_only_update: false,
            secret_mounts: new.secrets.clone(),
            config_mounts: new.configs.clone(),
            volume_mounts: new.volumes.clone(),
            update_policy: new.update_policy.clone(),
            rollback_policy: new.update_policy.clone(),
            ..ServiceInfo::default()
        };
        let service = ServiceInfo {
            template_fingerprint: fake_fingerprint(&service),
            ..service
        };
        state.services.insert(id.clone(), service);
        Ok(id)
    }

    async fn remove_service(&self, id_or_name: &str) -> Result<(), SwarmError> {
        let mut state = self.lock();
        state.writes.push(WriteCall::Remove(id_or_name.to_string()));
        state.check_reachable()?;
        let id = state
            .service_id(id_or_name)
            .ok_or_else(|| SwarmError::NotFound {
                what: format!("service {id_or_name:?}"),
            })?;
        state.services.remove(&id);
        state.tasks.retain(|t| t.service_id != id);
        Ok(())
    }

    fn events(
        &self,
        _since: Option<SystemTime>,
    ) -> BoxStream<'static, Result<SwarmEvent, SwarmError>> {
        // Past events are not kept: tests emit after subscribing.
        let receiver = self.events.subscribe();
        futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((Ok(event), receiver)),
                    // A slow test consumer missed some; events are hints,
                    // so carry on with the next.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::api::update_service_retrying;
    use crate::swarm::types::EventKind;

    fn db() -> ServiceInfo {
        ServiceInfo {
            id: "s1".into(),
            name: "db".into(),
            replicas: Some(3),
            ..ServiceInfo::default()
        }
    }

    fn label(key: &str, value: &str) -> ServiceChange {
        ServiceChange {
            labels_set: BTreeMap::from([(key.to_string(), value.to_string())]),
            ..ServiceChange::default()
        }
    }

    #[tokio::test]
    async fn updates_bump_the_version_and_refuse_stale_ones() {
        let fake = FakeSwarm::new();
        let v1 = fake.put_service(db()).version;
        let v2 = fake
            .update_service("db", v1, &label("a", "1"))
            .await
            .unwrap();
        assert!(v2 > v1);
        let err = fake
            .update_service("s1", v1, &label("a", "2"))
            .await
            .unwrap_err();
        assert!(err.is_out_of_sequence());
        let service = fake.inspect_service("db").await.unwrap();
        assert_eq!(service.version, v2);
        assert_eq!(service.labels["a"], "1");
        assert_eq!(fake.writes().len(), 2);
    }

    #[tokio::test]
    async fn an_update_that_changes_nothing_keeps_the_version() {
        let fake = FakeSwarm::new();
        let v1 = fake.put_service(db()).version;
        let v2 = fake
            .update_service("db", v1, &label("a", "1"))
            .await
            .unwrap();
        let v3 = fake
            .update_service("db", v2, &label("a", "1"))
            .await
            .unwrap();
        assert_eq!(v3, v2);
        assert_eq!(fake.writes().len(), 2, "both calls are recorded");
    }

    #[tokio::test]
    async fn retrying_update_recovers_from_one_conflict() {
        let fake = FakeSwarm::new();
        fake.put_service(db());
        fake.fail_next_update_out_of_sequence();
        let change = ServiceChange {
            replicas: Some(5),
            ..ServiceChange::default()
        };
        update_service_retrying(&fake, "db", &change).await.unwrap();
        assert_eq!(fake.service("db").unwrap().replicas, Some(5));
        assert_eq!(fake.writes().len(), 2, "one refused, one applied");
    }

    #[tokio::test]
    async fn retrying_gives_up_after_a_few_conflicts() {
        let fake = FakeSwarm::new();
        fake.put_service(db());
        // A writer that always gets in first: stale version on every try.
        struct Racing(FakeSwarm);
        impl SwarmApi for Racing {
            async fn list_services(&self) -> Result<Vec<ServiceInfo>, SwarmError> {
                self.0.list_services().await
            }
            async fn inspect_service(&self, id: &str) -> Result<ServiceInfo, SwarmError> {
                let seen = self.0.inspect_service(id).await;
                self.0.edit_service("s1", |_| {});
                seen
            }
            async fn list_nodes(&self) -> Result<Vec<NodeInfo>, SwarmError> {
                self.0.list_nodes().await
            }
            async fn list_tasks(&self, f: &TaskFilter) -> Result<Vec<TaskInfo>, SwarmError> {
                self.0.list_tasks(f).await
            }
            async fn network(&self, n: &str) -> Result<Option<NetworkInfo>, SwarmError> {
                self.0.network(n).await
            }
            async fn secret_exists(&self, n: &str) -> Result<bool, SwarmError> {
                self.0.secret_exists(n).await
            }
            async fn config_exists(&self, n: &str) -> Result<bool, SwarmError> {
                self.0.config_exists(n).await
            }
            async fn config_text(&self, n: &str) -> Result<Option<String>, SwarmError> {
                self.0.config_text(n).await
            }
            async fn find_config(&self, n: &str) -> Result<Option<ConfigObject>, SwarmError> {
                self.0.find_config(n).await
            }
            async fn task_logs(&self, i: &str, t: usize) -> Result<Vec<String>, SwarmError> {
                self.0.task_logs(i, t).await
            }
            async fn create_config_with(
                &self,
                n: &str,
                l: &BTreeMap<String, String>,
                b: &str,
            ) -> Result<(), SwarmError> {
                self.0.create_config_with(n, l, b).await
            }
            async fn relabel_config(
                &self,
                i: &str,
                v: u64,
                l: &BTreeMap<String, String>,
            ) -> Result<(), SwarmError> {
                self.0.relabel_config(i, v, l).await
            }
            async fn remove_config(&self, n: &str) -> Result<(), SwarmError> {
                self.0.remove_config(n).await
            }
            async fn update_service(
                &self,
                i: &str,
                v: u64,
                c: &ServiceChange,
            ) -> Result<u64, SwarmError> {
                self.0.update_service(i, v, c).await
            }
            async fn create_service(&self, s: &NewService) -> Result<String, SwarmError> {
                self.0.create_service(s).await
            }
            async fn remove_service(&self, i: &str) -> Result<(), SwarmError> {
                self.0.remove_service(i).await
            }
            fn events(
                &self,
                s: Option<SystemTime>,
            ) -> BoxStream<'static, Result<SwarmEvent, SwarmError>> {
                self.0.events(s)
            }
        }
        let racing = Racing(fake.clone());
        let err = update_service_retrying(&racing, "db", &label("a", "1"))
            .await
            .unwrap_err();
        assert!(err.is_out_of_sequence());
        assert_eq!(fake.writes().len(), crate::swarm::api::UPDATE_ATTEMPTS);
    }

    #[tokio::test]
    async fn tasks_filter_by_service_name_or_id() {
        let fake = FakeSwarm::new();
        fake.put_service(db());
        let task = |id: &str, service: &str, desired: &str| TaskInfo {
            id: id.into(),
            service_id: service.into(),
            desired_state: desired.into(),
            ..TaskInfo::default()
        };
        fake.set_tasks(vec![
            task("t1", "s1", "running"),
            task("t2", "s1", "shutdown"),
            task("t3", "s2", "running"),
        ]);
        let all = fake
            .list_tasks(&TaskFilter::services(["db"]))
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        let running = fake
            .list_tasks(&TaskFilter::all().desired_running())
            .await
            .unwrap();
        assert_eq!(
            running.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["t1", "t3"]
        );
    }

    #[tokio::test]
    async fn create_checks_networks_and_secrets_and_remove_works() {
        let fake = FakeSwarm::new();
        let new = NewService {
            name: "db".into(),
            image: "img".into(),
            replicas: 3,
            networks: vec!["aerospike".into()],
            ..NewService::default()
        };
        assert!(fake.create_service(&new).await.unwrap_err().is_not_found());
        fake.add_network(NetworkInfo::overlay("net1", "aerospike"));
        let id = fake.create_service(&new).await.unwrap();
        assert_eq!(fake.service(&id).unwrap().network_ids, ["net1"]);
        assert_eq!(fake.network("aerospike").await.unwrap().unwrap().id, "net1");
        fake.remove_service("db").await.unwrap();
        assert!(fake.inspect_service(&id).await.unwrap_err().is_not_found());
        assert_eq!(fake.writes().len(), 3);
    }

    #[tokio::test]
    async fn unreachable_fails_every_call() {
        let fake = FakeSwarm::new();
        fake.set_unreachable(true);
        assert!(matches!(
            fake.list_nodes().await,
            Err(SwarmError::Unreachable { .. })
        ));
        fake.set_unreachable(false);
        assert!(fake.list_nodes().await.unwrap().is_empty());
        assert_eq!(fake.reads(), 2);
    }

    #[tokio::test]
    async fn events_reach_subscribers() {
        let fake = FakeSwarm::new();
        let mut events = fake.events(None);
        fake.emit(SwarmEvent {
            kind: EventKind::Service,
            action: "update".into(),
            actor_id: "s1".into(),
            attributes: BTreeMap::new(),
        });
        let event = events.next().await.unwrap().unwrap();
        assert_eq!(event.actor_id, "s1");
    }
}
