//! Our own plain views of swarm objects: only what the controller needs,
//! with no `Option` where Docker always sends a value.
//!
//! Keeping bollard's models out of the controller means it can be tested
//! with hand-written values (see [`super::fake`]) and does not change when
//! bollard does. The conversions from Docker's replies live here too.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

/// A swarm service, as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceInfo {
    /// Service id.
    pub id: String,
    /// Service name.
    pub name: String,
    /// `Version.Index`: must accompany every update of this service.
    pub version: u64,
    /// Service-level labels (`Spec.Labels`): the cluster spec and status.
    pub labels: BTreeMap<String, String>,
    /// `TaskTemplate.ContainerSpec.Image`.
    pub image: Option<String>,
    /// Replica count; `None` for a global-mode (or job) service.
    pub replicas: Option<u64>,
    /// `TaskTemplate.Placement.MaxReplicas`; `None` when unlimited.
    pub max_replicas_per_node: Option<u64>,
    /// `TaskTemplate.Placement.Constraints`, e.g. `node.role==worker`.
    pub constraints: Vec<String>,
    /// Networks the tasks attach to, as network ids (Docker resolves names
    /// to ids when the service is created).
    pub network_ids: Vec<String>,
    /// Secrets mounted into tasks, by name.
    pub secret_names: Vec<String>,
    /// `UpdateStatus.State` of the last rolling update, e.g. `updating`,
    /// `completed`, `paused`; `None` if the service was never updated.
    pub update_status: Option<String>,
    /// True when the service's last update changed nothing but
    /// `aerospike.status.*` labels (its `Spec` and `PreviousSpec` differ only
    /// there): an update the operator made to report status. The controller
    /// uses it to keep `observed-version` from chasing the version bump of
    /// its own status write, which would otherwise cause another write, and
    /// so on forever. Read from the engine on every inspect, so it survives
    /// an operator restart. `false` when unknown (e.g. from a service list).
    pub status_only_update: bool,
    /// A fingerprint of the task template: a task whose own spec has
    /// another fingerprint is one swarm's updater will replace (see
    /// [`template_fingerprint`]). Empty when unknown (service lists).
    pub template_fingerprint: String,
    /// Secrets mounted into tasks, with their targets.
    pub secret_mounts: Vec<SecretMount>,
    /// Swarm configs (config objects) mounted into tasks, with their
    /// targets (the same shape as a secret's mount).
    pub config_mounts: Vec<SecretMount>,
    /// Named volumes mounted into tasks (`ContainerSpec.Mounts` of type
    /// `volume`). Empty when unknown (service lists).
    pub volume_mounts: Vec<VolumeMount>,
    /// `Spec.UpdateConfig`, if set.
    pub update_policy: Option<UpdatePolicy>,
    /// `Spec.RollbackConfig`, if set.
    pub rollback_policy: Option<UpdatePolicy>,
    /// `UpdateStatus.Message`, e.g. `update paused due to failure or early
    /// termination of task ...`.
    pub update_message: Option<String>,
}

/// A secret mounted into a service's tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    /// Secret name.
    pub name: String,
    /// `File.Name`: a file name under `/run/secrets`, or an absolute path.
    pub target: String,
}

impl SecretMount {
    /// Whether this secret appears at `path` in the container
    /// (`aerospike.conf` is `/run/secrets/aerospike.conf`).
    pub fn is_at(&self, path: &str) -> bool {
        let full = |t: &str| {
            if t.starts_with('/') {
                t.to_string()
            } else {
                format!("/run/secrets/{t}")
            }
        };
        full(&self.target) == full(path)
    }
}

/// A named volume mounted into a service's tasks: a
/// `TaskTemplate.ContainerSpec.Mounts` entry of type `volume`. Each node's
/// engine has its own volume of that name (created, with the driver and
/// options, when a task first mounts it there).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeMount {
    /// `Source`: the volume's name.
    pub source: String,
    /// `Target`: the path in the container.
    pub target: String,
    /// `VolumeOptions.DriverConfig.Name`; `None` for the engine's default
    /// (`local`).
    pub driver: Option<String>,
    /// `VolumeOptions.DriverConfig.Options`.
    pub driver_options: BTreeMap<String, String>,
}

impl VolumeMount {
    /// The mount as the engine's JSON. `VolumeOptions` only when a driver
    /// or options are given: an engine-stored mount without them reads
    /// back the same.
    pub fn to_json(&self) -> serde_json::Value {
        let mut mount = serde_json::json!({
            "Type": "volume",
            "Source": self.source,
            "Target": self.target,
        });
        if self.driver.is_some() || !self.driver_options.is_empty() {
            let mut config = serde_json::Map::new();
            if let Some(driver) = &self.driver {
                config.insert("Name".into(), driver.clone().into());
            }
            if !self.driver_options.is_empty() {
                config.insert("Options".into(), serde_json::json!(self.driver_options));
            }
            mount["VolumeOptions"] = serde_json::json!({ "DriverConfig": config });
        }
        mount
    }

    /// A `Mounts` entry of type `volume`; `None` for other types.
    pub fn from_json(mount: &serde_json::Value) -> Option<VolumeMount> {
        if mount.get("Type")?.as_str()? != "volume" {
            return None;
        }
        let config = mount.pointer("/VolumeOptions/DriverConfig");
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        Some(VolumeMount {
            source: mount.get("Source").and_then(text).unwrap_or_default(),
            target: mount.get("Target").and_then(text)?,
            driver: config
                .and_then(|c| c.get("Name"))
                .and_then(text)
                .filter(|d| !d.is_empty()),
            driver_options: config
                .and_then(|c| c.get("Options"))
                .and_then(serde_json::Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// `aerospike-data at /opt/aerospike/data (driver local, type=tmpfs)`.
    pub fn describe(&self) -> String {
        let mut out = format!("{} at {}", self.source, self.target);
        let mut extra = Vec::new();
        if let Some(driver) = &self.driver {
            extra.push(format!("driver {driver}"));
        }
        extra.extend(self.driver_options.iter().map(|(k, v)| format!("{k}={v}")));
        if !extra.is_empty() {
            out.push_str(&format!(" ({})", extra.join(", ")));
        }
        out
    }
}

/// The volume mounts of a task spec (`ContainerSpec.Mounts`).
fn volume_mounts(spec: &serde_json::Value) -> Vec<VolumeMount> {
    spec.pointer("/ContainerSpec/Mounts")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(VolumeMount::from_json)
        .collect()
}

/// How swarm rolls a task-template change (`UpdateConfig`, and the same
/// shape for `RollbackConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdatePolicy {
    /// Tasks replaced at once; 0 means all.
    pub parallelism: u64,
    /// Wait after each replaced task, in nanoseconds.
    pub delay_ns: u64,
    /// `pause`, `continue` or `rollback`.
    pub failure_action: String,
    /// How long after a replacement a task failure counts, in nanoseconds.
    pub monitor_ns: u64,
    /// `stop-first` or `start-first`.
    pub order: String,
}

impl UpdatePolicy {
    /// Reads an `UpdateConfig`/`RollbackConfig` object as the engine sends
    /// it (absent fields are swarm's defaults: 0, `pause`, `stop-first`).
    pub fn from_json(value: &serde_json::Value) -> Option<UpdatePolicy> {
        let obj = value.as_object()?;
        let number = |key: &str| {
            obj.get(key)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        let text = |key: &str, default: &str| {
            obj.get(key)
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(default)
                .to_string()
        };
        Some(UpdatePolicy {
            parallelism: number("Parallelism"),
            delay_ns: number("Delay"),
            failure_action: text("FailureAction", "pause"),
            monitor_ns: number("Monitor"),
            order: text("Order", "stop-first"),
        })
    }

    /// The object the engine expects.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "Parallelism": self.parallelism,
            "Delay": self.delay_ns,
            "FailureAction": self.failure_action,
            "Monitor": self.monitor_ns,
            "MaxFailureRatio": 0,
            "Order": self.order,
        })
    }
}

/// A fingerprint of a task spec (`TaskTemplate` of a service, `Spec` of a
/// task), equal for a task and the template it was made from.
///
/// Swarm's updater replaces a task when its spec differs from the
/// service's template, except when only the placement differs (and the
/// node still satisfies the constraints): so placement is left out, and so
/// is `Runtime`, which the engine adds to the service's copy only.
pub fn template_fingerprint(spec: &serde_json::Value) -> String {
    use std::hash::{Hash, Hasher};
    if spec.is_null() {
        return String::new();
    }
    let mut spec = spec.clone();
    if let Some(spec) = spec.as_object_mut() {
        // Swarm does not replace a task whose spec differs only in
        // placement (constraints, MaxReplicas, preferences) while its node
        // still satisfies the constraints (seen on 20.10: a MaxReplicas
        // change restarted nothing).
        spec.remove("Placement");
        // The engine shows a service's template with `Runtime: container`
        // filled in, and its tasks' specs without it (seen on 20.10).
        spec.remove("Runtime");
    }
    // serde_json's maps are sorted, so this text is canonical.
    let text = spec.to_string();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Whether a service `spec` differs from its `previous` spec (both as the
/// engine's JSON) only in `aerospike.status.*` labels. `false` when there is
/// no previous spec: a service never updated was written by its creator.
pub fn differs_only_in_status_labels(
    spec: &serde_json::Value,
    previous: Option<&serde_json::Value>,
) -> bool {
    let Some(previous) = previous.filter(|p| !p.is_null()) else {
        return false;
    };
    let strip = |spec: &serde_json::Value| {
        let mut spec = spec.clone();
        if let Some(labels) = spec.get_mut("Labels").and_then(|l| l.as_object_mut()) {
            labels.retain(|key, _| !key.starts_with(crate::spec::STATUS_PREFIX));
        }
        spec
    };
    spec != previous && strip(spec) == strip(previous)
}

/// A swarm node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRole {
    /// Runs the swarm control plane (and tasks, unless drained).
    Manager,
    /// Runs tasks only.
    Worker,
}

/// Whether the scheduler may place tasks on a node (`docker node update
/// --availability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Availability {
    /// New tasks may be placed.
    Active,
    /// No new tasks; running ones stay.
    Pause,
    /// No tasks; running ones are moved away.
    Drain,
}

/// A node's health as the managers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Reachable and working.
    Ready,
    /// Not reachable (daemon stopped, network cut).
    Down,
    /// Left the swarm.
    Disconnected,
    /// Anything else Docker may report.
    Unknown,
}

/// A node's operating system and architecture (`node.platform.*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `x86_64`.
    pub arch: String,
}

/// A swarm node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub id: String,
    /// Host name the node reports.
    pub hostname: String,
    /// Manager or worker.
    pub role: NodeRole,
    /// Scheduling availability.
    pub availability: Availability,
    /// Health.
    pub state: NodeState,
    /// Node labels set by operators (`node.labels.*`).
    pub labels: BTreeMap<String, String>,
    /// Labels from the engine's own config (`engine.labels.*`).
    pub engine_labels: BTreeMap<String, String>,
    /// The node's address as the swarm sees it.
    pub addr: Option<String>,
    /// OS and architecture.
    pub platform: Platform,
}

impl NodeInfo {
    /// True when the scheduler would place new tasks here: Ready and Active.
    pub fn is_schedulable(&self) -> bool {
        self.state == NodeState::Ready && self.availability == Availability::Active
    }
}

/// One task (one replica's attempt) of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskInfo {
    /// Task id.
    pub id: String,
    /// The service it belongs to.
    pub service_id: String,
    /// Node it was assigned to; empty while not yet scheduled.
    pub node_id: String,
    /// Replica slot (replicated services); `None` for global services.
    pub slot: Option<u64>,
    /// What the orchestrator wants: `running`, `shutdown`, ...
    pub desired_state: String,
    /// What the task is: `new`, `pending`, `assigned`, `accepted`,
    /// `preparing`, `starting`, `running`, `complete`, `shutdown`,
    /// `failed`, `rejected`, `remove`, `orphaned`, as swarm spells them.
    pub state: String,
    /// Swarm's short status message, e.g. `started`.
    pub message: String,
    /// Error text for failed or rejected tasks, e.g. `No such image: ...`,
    /// or why a task stays pending.
    pub error: Option<String>,
    /// Container id once one was created.
    pub container_id: Option<String>,
    /// When the status last changed (RFC 3339, as Docker sends it).
    pub status_timestamp: Option<String>,
    /// The task's address on each network it is attached to, as
    /// `(network id, address)` without the prefix length.
    pub addresses: Vec<(String, IpAddr)>,
    /// [`template_fingerprint`] of the task's own spec.
    pub template_fingerprint: String,
    /// The image of the task's own spec.
    pub image: Option<String>,
    /// The secrets of the task's own spec.
    pub secret_mounts: Vec<SecretMount>,
    /// The named volumes of the task's own spec.
    pub volume_mounts: Vec<VolumeMount>,
    /// When the task was created (RFC 3339, as Docker sends it).
    pub created_at: Option<String>,
}

impl TaskInfo {
    /// The task's address on `network_id`, if attached there.
    pub fn address_on(&self, network_id: &str) -> Option<IpAddr> {
        self.addresses
            .iter()
            .find(|(net, _)| net == network_id)
            .map(|(_, ip)| *ip)
    }

    /// True when the task is running and meant to be.
    pub fn is_running(&self) -> bool {
        self.state == "running" && self.desired_state == "running"
    }
}

/// A swarm-scoped network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Network id.
    pub id: String,
    /// Network name.
    pub name: String,
    /// Driver, e.g. `overlay`.
    pub driver: String,
    /// `swarm` for networks services can use.
    pub scope: String,
    /// Whether standalone containers may attach.
    pub attachable: bool,
}

impl NetworkInfo {
    /// An attachable swarm overlay network, as `docker network create
    /// --driver overlay --attachable NAME` makes it.
    pub fn overlay(id: &str, name: &str) -> NetworkInfo {
        NetworkInfo {
            id: id.into(),
            name: name.into(),
            driver: "overlay".into(),
            scope: "swarm".into(),
            attachable: true,
        }
    }
}

/// The kind of object a swarm event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A service was created, updated or removed.
    Service,
    /// A node joined, left, or changed state or availability.
    Node,
    /// A secret was created, updated or removed.
    Secret,
    /// A network changed.
    Network,
    /// A config changed.
    Config,
}

/// One event from the swarm event stream. A wake-up hint only: the
/// controller re-reads the objects it cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmEvent {
    /// What kind of object.
    pub kind: EventKind,
    /// `create`, `update`, `remove`, ...
    pub action: String,
    /// The object's id.
    pub actor_id: String,
    /// Event attributes, e.g. `name`, `replicas.old`, `replicas.new`.
    pub attributes: BTreeMap<String, String>,
}

/// Which tasks to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskFilter {
    /// Only tasks of these services (ids or names); empty means all.
    pub service_ids: Vec<String>,
    /// Only tasks whose desired state is `running` (leaves out the
    /// history of replaced, failed and rejected tasks).
    pub desired_running_only: bool,
}

impl TaskFilter {
    /// Every task of every service, history included.
    pub fn all() -> TaskFilter {
        TaskFilter::default()
    }

    /// Every task (history included) of the given services.
    pub fn services<I, S>(ids: I) -> TaskFilter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        TaskFilter {
            service_ids: ids.into_iter().map(Into::into).collect(),
            desired_running_only: false,
        }
    }

    /// Narrows to tasks meant to be running.
    pub fn desired_running(mut self) -> TaskFilter {
        self.desired_running_only = true;
        self
    }

    /// Whether `task` passes this filter (used by the fake; the real API
    /// filters server-side). Service names are not resolved here.
    pub fn matches(&self, task: &TaskInfo) -> bool {
        (self.service_ids.is_empty() || self.service_ids.contains(&task.service_id))
            && (!self.desired_running_only || task.desired_state == "running")
    }

    /// The `filters` query value Docker expects.
    pub(crate) fn to_query(&self) -> Option<String> {
        let mut filters = serde_json::Map::new();
        if !self.service_ids.is_empty() {
            filters.insert("service".into(), self.service_ids.clone().into());
        }
        if self.desired_running_only {
            filters.insert("desired-state".into(), vec!["running".to_string()].into());
        }
        (!filters.is_empty()).then(|| serde_json::Value::Object(filters).to_string())
    }
}

// --- conversions from Docker's replies ------------------------------------

impl From<bollard::models::Service> for ServiceInfo {
    fn from(service: bollard::models::Service) -> ServiceInfo {
        let spec = service.spec.unwrap_or_default();
        let template = spec.task_template.unwrap_or_default();
        let container = template.container_spec.unwrap_or_default();
        let placement = template.placement.unwrap_or_default();
        let replicas = spec
            .mode
            .and_then(|m| m.replicated)
            .map(|r| r.replicas.unwrap_or(1).max(0) as u64);
        // Services created with the deprecated top-level Spec.Networks keep
        // them there; newer clients use TaskTemplate.Networks.
        let networks = template
            .networks
            .or(spec.networks)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.target);
        ServiceInfo {
            id: service.id.unwrap_or_default(),
            name: spec.name.unwrap_or_default(),
            version: service.version.and_then(|v| v.index).unwrap_or(0),
            labels: spec.labels.unwrap_or_default().into_iter().collect(),
            image: container.image,
            replicas,
            max_replicas_per_node: placement.max_replicas.filter(|&m| m > 0).map(|m| m as u64),
            constraints: placement.constraints.unwrap_or_default(),
            network_ids: networks.collect(),
            secret_names: container
                .secrets
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| s.secret_name)
                .collect(),
            update_status: service
                .update_status
                .and_then(|u| u.state)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty()),
            status_only_update: false,
            template_fingerprint: String::new(),
            secret_mounts: Vec::new(),
            config_mounts: Vec::new(),
            volume_mounts: Vec::new(),
            update_policy: None,
            rollback_policy: None,
            update_message: None,
        }
    }
}

impl ServiceInfo {
    /// Fills in what only the engine's raw JSON of the service has: the
    /// template fingerprint, secret targets, the update and rollback
    /// policies and the update message.
    pub fn with_raw(mut self, json: &serde_json::Value) -> ServiceInfo {
        let spec = &json["Spec"];
        self.template_fingerprint = template_fingerprint(&spec["TaskTemplate"]);
        self.secret_mounts = secret_mounts(&spec["TaskTemplate"]);
        self.config_mounts = config_mounts(&spec["TaskTemplate"]);
        self.volume_mounts = volume_mounts(&spec["TaskTemplate"]);
        self.update_policy = UpdatePolicy::from_json(&spec["UpdateConfig"]);
        self.rollback_policy = UpdatePolicy::from_json(&spec["RollbackConfig"]);
        self.update_message = json
            .pointer("/UpdateStatus/Message")
            .and_then(serde_json::Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        self
    }
}

/// The secrets of a task spec (`ContainerSpec.Secrets`), by name and target.
fn secret_mounts(spec: &serde_json::Value) -> Vec<SecretMount> {
    spec.pointer("/ContainerSpec/Secrets")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some(SecretMount {
                name: s.get("SecretName")?.as_str()?.to_string(),
                target: s.pointer("/File/Name")?.as_str()?.to_string(),
            })
        })
        .collect()
}

/// The swarm configs of a task spec (`ContainerSpec.Configs`) that are
/// files, by name and target (a relative target is under `/`).
fn config_mounts(spec: &serde_json::Value) -> Vec<SecretMount> {
    spec.pointer("/ContainerSpec/Configs")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let target = c.pointer("/File/Name")?.as_str()?;
            Some(SecretMount {
                name: c.get("ConfigName")?.as_str()?.to_string(),
                target: if target.starts_with('/') {
                    target.to_string()
                } else {
                    format!("/{target}")
                },
            })
        })
        .collect()
}

impl From<bollard::models::Node> for NodeInfo {
    fn from(node: bollard::models::Node) -> NodeInfo {
        use bollard::models::{NodeSpecAvailabilityEnum as A, NodeSpecRoleEnum as R};
        let spec = node.spec.unwrap_or_default();
        let description = node.description.unwrap_or_default();
        let status = node.status.unwrap_or_default();
        let platform = description.platform.unwrap_or_default();
        NodeInfo {
            id: node.id.unwrap_or_default(),
            hostname: description.hostname.unwrap_or_default(),
            role: match spec.role {
                Some(R::MANAGER) => NodeRole::Manager,
                _ => NodeRole::Worker,
            },
            availability: match spec.availability {
                Some(A::ACTIVE) => Availability::Active,
                Some(A::DRAIN) => Availability::Drain,
                _ => Availability::Pause,
            },
            state: match status.state.map(|s| s.to_string()).as_deref() {
                Some("ready") => NodeState::Ready,
                Some("down") => NodeState::Down,
                Some("disconnected") => NodeState::Disconnected,
                _ => NodeState::Unknown,
            },
            labels: spec.labels.unwrap_or_default().into_iter().collect(),
            engine_labels: description
                .engine
                .and_then(|e| e.labels)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            addr: status.addr.filter(|a| !a.is_empty()),
            platform: Platform {
                os: platform.os.unwrap_or_default(),
                arch: platform.architecture.unwrap_or_default(),
            },
        }
    }
}

impl SwarmEvent {
    /// Converts a bollard event; `None` for kinds we do not watch.
    pub(crate) fn from_bollard(event: bollard::models::EventMessage) -> Option<SwarmEvent> {
        let kind = match event.typ?.to_string().as_str() {
            "service" => EventKind::Service,
            "node" => EventKind::Node,
            "secret" => EventKind::Secret,
            "network" => EventKind::Network,
            "config" => EventKind::Config,
            _ => return None,
        };
        let actor = event.actor.unwrap_or_default();
        Some(SwarmEvent {
            kind,
            action: event.action.unwrap_or_default(),
            actor_id: actor.id.unwrap_or_default(),
            attributes: actor.attributes.unwrap_or_default().into_iter().collect(),
        })
    }
}

/// The part of `GET /tasks` we read, including `NetworksAttachments`,
/// which bollard's `Task` model lacks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RawTask {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "ServiceID", default)]
    service_id: String,
    #[serde(rename = "NodeID", default)]
    node_id: String,
    #[serde(default)]
    slot: Option<u64>,
    #[serde(default)]
    desired_state: String,
    #[serde(default)]
    status: RawTaskStatus,
    #[serde(default)]
    networks_attachments: Vec<RawAttachment>,
    #[serde(default)]
    spec: serde_json::Value,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawTaskStatus {
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    err: Option<String>,
    #[serde(default)]
    container_status: Option<RawContainerStatus>,
}

#[derive(Debug, Default, Deserialize)]
struct RawContainerStatus {
    #[serde(rename = "ContainerID", default)]
    container_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawAttachment {
    network: RawNetworkRef,
    #[serde(default)]
    addresses: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawNetworkRef {
    #[serde(rename = "ID")]
    id: String,
}

impl From<RawTask> for TaskInfo {
    fn from(task: RawTask) -> TaskInfo {
        let addresses = task
            .networks_attachments
            .into_iter()
            .flat_map(|a| {
                let network = a.network.id;
                a.addresses
                    .into_iter()
                    .filter_map(|cidr| parse_cidr_address(&cidr))
                    .map(move |ip| (network.clone(), ip))
            })
            .collect();
        TaskInfo {
            id: task.id,
            service_id: task.service_id,
            node_id: task.node_id,
            slot: task.slot.filter(|&s| s > 0),
            desired_state: task.desired_state,
            state: task.status.state,
            message: task.status.message,
            error: task.status.err.filter(|e| !e.is_empty()),
            container_id: task
                .status
                .container_status
                .and_then(|c| c.container_id)
                .filter(|c| !c.is_empty()),
            status_timestamp: task.status.timestamp,
            addresses,
            template_fingerprint: template_fingerprint(&task.spec),
            image: task
                .spec
                .pointer("/ContainerSpec/Image")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            secret_mounts: secret_mounts(&task.spec),
            volume_mounts: volume_mounts(&task.spec),
            created_at: task.created_at,
        }
    }
}

/// `10.0.1.5/24` → `10.0.1.5` (a bare address is accepted too).
fn parse_cidr_address(cidr: &str) -> Option<IpAddr> {
    let addr = cidr.split_once('/').map_or(cidr, |(addr, _)| addr);
    addr.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trimmed task as engine 20.10 returns it from `GET /tasks`.
    const TASK_JSON: &str = r#"[{
        "ID": "t1", "Version": {"Index": 30}, "ServiceID": "s1", "Slot": 2,
        "NodeID": "n1", "DesiredState": "running",
        "Status": {"Timestamp": "2026-11-25T13:00:00.1Z", "State": "running",
                   "Message": "started",
                   "ContainerStatus": {"ContainerID": "c1", "PID": 10, "ExitCode": 0}},
        "NetworksAttachments": [
            {"Network": {"ID": "ingressid", "Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.7/24"]},
            {"Network": {"ID": "netid", "Spec": {"Name": "aerospike"}}, "Addresses": ["10.0.1.5/24"]}
        ]
    }, {
        "ID": "t2", "ServiceID": "s1", "NodeID": "", "DesiredState": "shutdown",
        "Status": {"State": "rejected", "Message": "preparing", "Err": "No such image: nope:1"}
    }]"#;

    #[test]
    fn tasks_keep_their_addresses_without_prefix_length() {
        let raw: Vec<RawTask> = serde_json::from_str(TASK_JSON).unwrap();
        let tasks: Vec<TaskInfo> = raw.into_iter().map(TaskInfo::from).collect();
        let t1 = &tasks[0];
        assert_eq!(t1.slot, Some(2));
        assert!(t1.is_running());
        assert_eq!(t1.container_id.as_deref(), Some("c1"));
        assert_eq!(t1.address_on("netid"), Some("10.0.1.5".parse().unwrap()));
        assert_eq!(t1.addresses.len(), 2);
        assert_eq!(t1.address_on("other"), None);
        let t2 = &tasks[1];
        assert_eq!(t2.state, "rejected");
        assert_eq!(t2.error.as_deref(), Some("No such image: nope:1"));
        assert!(t2.addresses.is_empty());
        assert!(!t2.is_running());
        assert_eq!(t2.container_id, None);
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr_address("10.0.1.5/24"),
            Some("10.0.1.5".parse().unwrap())
        );
        assert_eq!(
            parse_cidr_address("fd00::5/64"),
            Some("fd00::5".parse().unwrap())
        );
        assert_eq!(
            parse_cidr_address("10.0.1.5"),
            Some("10.0.1.5".parse().unwrap())
        );
        assert_eq!(parse_cidr_address("garbage/24"), None);
    }

    #[test]
    fn volume_mounts_are_read_from_the_service_and_task_specs() {
        let template = serde_json::json!({
            "ContainerSpec": {"Image": "img", "Mounts": [
                {"Type": "bind", "Source": "/srv/logs", "Target": "/var/log"},
                {"Type": "volume", "Source": "aerospike-data", "Target": "/opt/aerospike/data",
                 "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}},
                {"Type": "volume", "Source": "other", "Target": "/other"}
            ]}
        });
        let wanted = vec![
            VolumeMount {
                source: "aerospike-data".into(),
                target: "/opt/aerospike/data".into(),
                driver: Some("local".into()),
                driver_options: BTreeMap::from([("type".into(), "tmpfs".into())]),
            },
            VolumeMount {
                source: "other".into(),
                target: "/other".into(),
                ..VolumeMount::default()
            },
        ];
        let service = ServiceInfo::default()
            .with_raw(&serde_json::json!({"Spec": {"TaskTemplate": template}}));
        assert_eq!(service.volume_mounts, wanted);
        assert_eq!(volume_mounts(&template), wanted);
        assert_eq!(
            wanted[0].describe(),
            "aerospike-data at /opt/aerospike/data (driver local, type=tmpfs)"
        );
        assert!(volume_mounts(&serde_json::json!({"ContainerSpec": {}})).is_empty());
    }

    #[test]
    fn service_conversion_reads_mode_placement_networks_secrets() {
        let json = r#"{
            "ID": "s1", "Version": {"Index": 42},
            "Spec": {
                "Name": "db", "Labels": {"aerospike.cluster.replicas": "3"},
                "TaskTemplate": {
                    "ContainerSpec": {"Image": "aerospike/aerospike-server:7.1.0.0",
                        "Secrets": [{"File": {"Name": "aerospike.conf", "UID": "0", "GID": "0", "Mode": 292},
                                     "SecretID": "sec1", "SecretName": "db-conf"}]},
                    "Placement": {"Constraints": ["node.role==worker"], "MaxReplicas": 1},
                    "Networks": [{"Target": "netid"}]
                },
                "Mode": {"Replicated": {"Replicas": 3}}
            },
            "UpdateStatus": {"State": "completed", "Message": "update completed"}
        }"#;
        let service: bollard::models::Service = serde_json::from_str(json).unwrap();
        let info = ServiceInfo::from(service);
        assert_eq!(info.id, "s1");
        assert_eq!(info.name, "db");
        assert_eq!(info.version, 42);
        assert_eq!(info.labels["aerospike.cluster.replicas"], "3");
        assert_eq!(
            info.image.as_deref(),
            Some("aerospike/aerospike-server:7.1.0.0")
        );
        assert_eq!(info.replicas, Some(3));
        assert_eq!(info.max_replicas_per_node, Some(1));
        assert_eq!(info.constraints, vec!["node.role==worker"]);
        assert_eq!(info.network_ids, vec!["netid"]);
        assert_eq!(info.secret_names, vec!["db-conf"]);
        assert_eq!(info.update_status.as_deref(), Some("completed"));
    }

    #[test]
    fn status_only_updates_are_recognised() {
        let spec = |labels: serde_json::Value, replicas: u64| {
            serde_json::json!({"Name": "db", "Labels": labels,
                "Mode": {"Replicated": {"Replicas": replicas}}})
        };
        let base = spec(serde_json::json!({"aerospike.cluster.replicas": "3"}), 3);
        let with_status = spec(
            serde_json::json!({"aerospike.cluster.replicas": "3", "aerospike.status.phase": "Ready"}),
            3,
        );
        assert!(differs_only_in_status_labels(&with_status, Some(&base)));
        // The same spec written twice is no status write.
        assert!(!differs_only_in_status_labels(&base, Some(&base)));
        // A spec label, or anything else, changing too is not status only.
        let scaled = spec(serde_json::json!({"aerospike.cluster.replicas": "3"}), 4);
        assert!(!differs_only_in_status_labels(&scaled, Some(&base)));
        let relabelled = spec(serde_json::json!({"aerospike.cluster.replicas": "4"}), 3);
        assert!(!differs_only_in_status_labels(&relabelled, Some(&base)));
        assert!(!differs_only_in_status_labels(&base, None));
        assert!(!differs_only_in_status_labels(
            &base,
            Some(&serde_json::Value::Null)
        ));
    }

    #[test]
    fn global_services_have_no_replica_count() {
        let json = r#"{"ID": "g", "Version": {"Index": 1},
            "Spec": {"Name": "g", "TaskTemplate": {}, "Mode": {"Global": {}}}}"#;
        let info =
            ServiceInfo::from(serde_json::from_str::<bollard::models::Service>(json).unwrap());
        assert_eq!(info.replicas, None);
        assert_eq!(info.max_replicas_per_node, None);
        assert_eq!(info.update_status, None);
    }

    #[test]
    fn node_conversion() {
        let json = r#"{"ID": "n1", "Version": {"Index": 9},
            "Spec": {"Labels": {"rack": "a"}, "Role": "manager", "Availability": "drain"},
            "Description": {"Hostname": "vm", "Platform": {"Architecture": "x86_64", "OS": "linux"},
                            "Engine": {"EngineVersion": "20.10.24", "Labels": {"ssd": "yes"}}},
            "Status": {"State": "ready", "Addr": "10.99.0.1"}}"#;
        let node = NodeInfo::from(serde_json::from_str::<bollard::models::Node>(json).unwrap());
        assert_eq!(node.hostname, "vm");
        assert_eq!(node.role, NodeRole::Manager);
        assert_eq!(node.availability, Availability::Drain);
        assert_eq!(node.state, NodeState::Ready);
        assert_eq!(node.labels["rack"], "a");
        assert_eq!(node.engine_labels["ssd"], "yes");
        assert_eq!(node.addr.as_deref(), Some("10.99.0.1"));
        assert_eq!(
            node.platform,
            Platform {
                os: "linux".into(),
                arch: "x86_64".into()
            }
        );
        assert!(!node.is_schedulable());
    }

    #[test]
    fn event_conversion_keeps_scale_attributes() {
        let json = r#"{"Type": "service", "Action": "update",
            "Actor": {"ID": "s1", "Attributes": {"name": "db", "replicas.old": "3", "replicas.new": "4"}},
            "scope": "swarm", "time": 1, "timeNano": 1}"#;
        let event = SwarmEvent::from_bollard(serde_json::from_str(json).unwrap()).unwrap();
        assert_eq!(event.kind, EventKind::Service);
        assert_eq!(event.action, "update");
        assert_eq!(event.actor_id, "s1");
        assert_eq!(event.attributes["replicas.new"], "4");
        let container = r#"{"Type": "container", "Action": "start", "Actor": {"ID": "c"}}"#;
        assert_eq!(
            SwarmEvent::from_bollard(serde_json::from_str(container).unwrap()),
            None
        );
    }

    #[test]
    fn task_filter_query_and_matching() {
        assert_eq!(TaskFilter::all().to_query(), None);
        let filter = TaskFilter::services(["s1", "s2"]).desired_running();
        let query: serde_json::Value = serde_json::from_str(&filter.to_query().unwrap()).unwrap();
        assert_eq!(query["service"], serde_json::json!(["s1", "s2"]));
        assert_eq!(query["desired-state"], serde_json::json!(["running"]));
        let mut task = TaskInfo {
            service_id: "s1".into(),
            desired_state: "running".into(),
            ..TaskInfo::default()
        };
        assert!(filter.matches(&task));
        task.desired_state = "shutdown".into();
        assert!(!filter.matches(&task));
        assert!(TaskFilter::services(["s1"]).matches(&task));
        assert!(!TaskFilter::services(["s3"]).matches(&task));
    }
}
