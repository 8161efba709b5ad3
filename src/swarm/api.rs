//! [`SwarmApi`]: the few swarm operations the operator uses, as a trait so
//! the controller runs against the real engine ([`super::DockerSwarm`]) or
//! an in-memory fake ([`super::FakeSwarm`]) alike.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::SystemTime;

use futures::stream::BoxStream;

use super::error::SwarmError;
use super::lease::ConfigObject;
use super::types::{
    NetworkInfo, NodeInfo, SecretMount, ServiceInfo, SwarmEvent, TaskFilter, TaskInfo,
    UpdatePolicy, VolumeMount,
};

/// An edit of an existing service: every field left empty is left alone.
///
/// Only what scaling, placement and status writes need. `labels_*` touch
/// service-level labels only, which never restart tasks;
/// `max_replicas_per_node` is part of the task template and rolls every
/// task when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceChange {
    /// New replica count (replicated services only).
    pub replicas: Option<u64>,
    /// New `Placement.MaxReplicas` (0 means unlimited).
    pub max_replicas_per_node: Option<u64>,
    /// Service labels to add or overwrite.
    pub labels_set: BTreeMap<String, String>,
    /// Service labels to delete (absent ones are ignored).
    pub labels_remove: Vec<String>,
    /// New `TaskTemplate.ContainerSpec.Image` (rolls every task).
    pub image: Option<String>,
    /// Mounts this secret at its target instead of whatever secret is
    /// mounted there now (rolls every task). The engine resolves the name.
    pub secret_at_target: Option<SecretMount>,
    /// Mounts this swarm config at its target instead of whatever secret or
    /// config is mounted there now (rolls every task). The engine resolves
    /// the name. (Likewise `secret_at_target` takes out a config mounted at
    /// its target.)
    pub config_at_target: Option<SecretMount>,
    /// Mounts this named volume at its target in place of whatever is
    /// mounted there now; other mounts are left alone (rolls every task).
    pub volume_at_target: Option<VolumeMount>,
    /// Removes whatever is mounted at this path (rolls every task): how a
    /// rollback takes out a volume the failed template added.
    pub mount_remove_at: Option<String>,
    /// Sets `UpdateConfig` and `RollbackConfig` (service-level: restarts no
    /// task by itself).
    pub update_policy: Option<UpdatePolicy>,
    /// Replaces `TaskTemplate.Placement.Constraints`. Swarm replaces only
    /// the tasks whose node no longer satisfies them.
    pub constraints: Option<Vec<String>>,
    /// Networks (ids) to attach when not attached yet (rolls every task:
    /// each new task joins them).
    pub networks_add: Vec<String>,
}

impl ServiceChange {
    /// True when the change would edit nothing.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_none()
            && self.max_replicas_per_node.is_none()
            && self.labels_set.is_empty()
            && self.labels_remove.is_empty()
            && self.image.is_none()
            && self.secret_at_target.is_none()
            && self.config_at_target.is_none()
            && self.volume_at_target.is_none()
            && self.mount_remove_at.is_none()
            && self.update_policy.is_none()
            && self.constraints.is_none()
            && self.networks_add.is_empty()
    }

    /// True when the change touches the task template, so applying it (with
    /// a value that differs from the current one) restarts every task.
    pub fn rolls_tasks(&self) -> bool {
        self.max_replicas_per_node.is_some()
            || self.image.is_some()
            || self.secret_at_target.is_some()
            || self.config_at_target.is_some()
            || self.volume_at_target.is_some()
            || self.mount_remove_at.is_some()
            || !self.networks_add.is_empty()
    }
}

/// A new replicated service, for `apply` and tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewService {
    /// Service name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Replica count.
    pub replicas: u64,
    /// Service-level labels (the cluster spec).
    pub labels: BTreeMap<String, String>,
    /// Networks to attach, by name or id.
    pub networks: Vec<String>,
    /// Secrets to mount.
    pub secrets: Vec<SecretMount>,
    /// Swarm configs to mount (name and absolute target).
    pub configs: Vec<SecretMount>,
    /// Named volumes to mount.
    pub volumes: Vec<VolumeMount>,
    /// Arguments passed to the image's entrypoint.
    pub args: Vec<String>,
    /// DNS round robin instead of a virtual IP: clients need the real node
    /// addresses.
    pub endpoint_mode_dnsrr: bool,
    /// `Placement.MaxReplicas`.
    pub max_replicas_per_node: Option<u64>,
    /// Placement constraints.
    pub constraints: Vec<String>,
    /// `UpdateConfig` and `RollbackConfig` from the start (the operator's
    /// valve), so that even the first update is gated.
    pub update_policy: Option<UpdatePolicy>,
}

/// The swarm operations the operator needs.
///
/// Methods return `Send` futures so a controller can run them on any tokio
/// worker; implementations may simply write `async fn`.
pub trait SwarmApi: Send + Sync + 'static {
    /// Every service.
    fn list_services(&self) -> impl Future<Output = Result<Vec<ServiceInfo>, SwarmError>> + Send;

    /// One service by id or name; [`SwarmError::NotFound`] if absent.
    fn inspect_service(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<ServiceInfo, SwarmError>> + Send;

    /// Every node of the swarm.
    fn list_nodes(&self) -> impl Future<Output = Result<Vec<NodeInfo>, SwarmError>> + Send;

    /// Tasks passing `filter`, with their network addresses.
    fn list_tasks(
        &self,
        filter: &TaskFilter,
    ) -> impl Future<Output = Result<Vec<TaskInfo>, SwarmError>> + Send;

    /// A network by id or name; `None` if there is none.
    fn network(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<NetworkInfo>, SwarmError>> + Send;

    /// Whether a secret named `name` exists.
    fn secret_exists(&self, name: &str) -> impl Future<Output = Result<bool, SwarmError>> + Send;

    /// The last `tail` lines task `id` wrote (stdout and stderr), oldest
    /// first: what its container logged, fetched by the manager from the
    /// task's node. Bounded in time: a node that is down gives an error
    /// soon rather than never.
    fn task_logs(
        &self,
        id: &str,
        tail: usize,
    ) -> impl Future<Output = Result<Vec<String>, SwarmError>> + Send;

    /// The data of the swarm config named exactly `name`, as text, or
    /// `None` when there is no such config. Docker returns a config's data
    /// (never a secret's): how the operator reads a cluster's config
    /// object. Data that is not UTF-8 is [`SwarmError::Decode`].
    fn config_text(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, SwarmError>> + Send;

    /// Whether a swarm config named `name` exists.
    fn config_exists(&self, name: &str) -> impl Future<Output = Result<bool, SwarmError>> + Send;

    /// The swarm config named exactly `name` (its id, version and
    /// labels), or `None`.
    fn find_config(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConfigObject>, SwarmError>> + Send;

    /// Creates config `name` with `labels` and `body` as its data. A name
    /// that is taken gives [`SwarmError::Api`] with status 409.
    fn create_config_with(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        body: &str,
    ) -> impl Future<Output = Result<(), SwarmError>> + Send;

    /// Replaces the labels of config `id`, which the caller read at
    /// `version` (only a config's labels may change). A stale version
    /// gives [`SwarmError::OutOfSequence`] and changes nothing.
    fn relabel_config(
        &self,
        id: &str,
        version: u64,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), SwarmError>> + Send;

    /// Removes config `name`; one that does not exist is not an error.
    fn remove_config(&self, name: &str) -> impl Future<Output = Result<(), SwarmError>> + Send;

    /// Applies `change` to service `id`, which the caller read at `version`.
    /// Returns the service's new version; when the change would leave the
    /// spec as it is, nothing is written and `version` is returned. A stale
    /// `version` gives
    /// [`SwarmError::OutOfSequence`]: re-read and retry, or use
    /// [`update_service_retrying`].
    fn update_service(
        &self,
        id: &str,
        version: u64,
        change: &ServiceChange,
    ) -> impl Future<Output = Result<u64, SwarmError>> + Send;

    /// Creates a service; returns its id.
    fn create_service(
        &self,
        service: &NewService,
    ) -> impl Future<Output = Result<String, SwarmError>> + Send;

    /// Removes a service by id or name.
    fn remove_service(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<(), SwarmError>> + Send;

    /// Service, node and secret events from `since` on (or from now). The
    /// stream ends or yields an error when the connection drops; the caller
    /// re-subscribes (with backoff) and does a full re-read, since events
    /// may have been missed meanwhile.
    fn events(
        &self,
        since: Option<SystemTime>,
    ) -> BoxStream<'static, Result<SwarmEvent, SwarmError>>;
}

/// `service` with the live status of its status config
/// ([`crate::spec::status_config_name`]) in place of the status labels on
/// the service itself, when that config exists and carries one: the
/// operator writes the config on every pass, the service's labels only at
/// the safe points of a change.
pub async fn with_live_status<A: SwarmApi>(
    api: &A,
    mut service: ServiceInfo,
) -> Result<ServiceInfo, SwarmError> {
    let name = crate::spec::status_config_name(&service.name);
    if let Some(config) = api.find_config(&name).await? {
        crate::spec::overlay_live_status(&mut service.labels, &config.labels);
    }
    Ok(service)
}

/// How often [`update_service_retrying`] re-reads and retries before giving
/// up. Each conflict means someone else's update got in first; several in a
/// row means a busy writer, and the error then goes to the caller's backoff.
pub const UPDATE_ATTEMPTS: usize = 5;

/// Re-reads service `id` and applies `change`, retrying when someone else
/// updated the service in between ("update out of sequence"). Returns the
/// new version.
pub async fn update_service_retrying<A: SwarmApi>(
    api: &A,
    id: &str,
    change: &ServiceChange,
) -> Result<u64, SwarmError> {
    let mut attempt = 1;
    loop {
        let current = api.inspect_service(id).await?;
        match api
            .update_service(&current.id, current.version, change)
            .await
        {
            Err(err) if err.is_out_of_sequence() && attempt < UPDATE_ATTEMPTS => {
                tracing::debug!(
                    service = id,
                    attempt,
                    "service changed meanwhile; re-reading"
                );
                attempt += 1;
            }
            result => return result,
        }
    }
}
