//! One reconcile of one cluster: read everything afresh, decide with
//! [`super::plan`], act, report.
//!
//! The steps, each skipped when there is nothing to do:
//!
//! 1. read the service; parse its spec (invalid → status Error naming the
//!    label, nothing else changes);
//! 2. `paused` → status Paused, nothing else changes;
//! 3. check what the spec refers to: replicated mode, placement
//!    constraints, the network, the config secret;
//! 4. placement and replicas: `MaxReplicas 1`, `replicas = min(spec,
//!    eligible nodes)`;
//! 5. read the cluster's tasks and their addresses on the cluster network;
//! 6. mesh: observe every node, tip outsiders toward the main cluster,
//!    tip-clear departed nodes and reset alumni;
//! 7. write the status labels when they differ.
//!
//! Problems the user must fix (bad labels, a missing secret) are not
//! errors of the reconcile: they become an Error status. Errors are what
//! retrying may cure (Docker unreachable), and go to the error policy.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use tracing::{info, warn};

use crate::aerospike::ClusterView;
use crate::spec::{ClusterSpec, ClusterStatus, Phase, STATUS_PREFIX};
use crate::swarm::{
    eligible_nodes, update_service_retrying, NetworkInfo, ServiceChange, ServiceInfo, SwarmApi,
    SwarmError, TaskFilter,
};

use super::nodes::NodeApi;
use super::plan::{self, StatusFacts};

/// What to do with a cluster after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Still converging: look again after this delay.
    Requeue(Duration),
    /// Settled: nothing to do until something changes (an event, a task
    /// change seen by the poll, or the periodic resync).
    AwaitChange,
}

/// The result of a successful reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// When to look again.
    pub action: Action,
    /// The service name when the service exists and is managed; `None` for
    /// a service that is gone or carries no `aerospike.cluster.*` labels.
    pub managed: Option<String>,
}

impl Outcome {
    fn unmanaged() -> Outcome {
        Outcome {
            action: Action::AwaitChange,
            managed: None,
        }
    }
}

/// A reconcile that failed in a way retrying may cure.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A Docker call failed (after in-place retries of stale versions).
    #[error(transparent)]
    Swarm(#[from] SwarmError),
}

/// How long to wait before looking again at a cluster whose nodes cannot
/// be reached at all: long enough not to hammer a network the operator is
/// not on, short enough to notice soon after it is attached.
const UNREACHABLE_RECHECK: Duration = Duration::from_secs(10);

/// Runs reconciles against a swarm and the Aerospike nodes.
#[derive(Debug, Clone)]
pub struct Reconciler<S, N> {
    /// The swarm.
    pub swarm: S,
    /// The nodes' info protocol.
    pub nodes: N,
    /// Delay before looking again at a converging cluster.
    pub poll_fast: Duration,
}

/// One action log line: `cluster`, `action` and `reason` as fields.
macro_rules! act {
    ($cluster:expr, $action:expr, $reason:expr) => {
        info!(cluster = %$cluster, action = $action, reason = %$reason, "{}", $action)
    };
}

impl<S: SwarmApi, N: NodeApi> Reconciler<S, N> {
    /// Reconciles service `id` (an id or a name).
    pub async fn reconcile(&self, id: &str) -> Result<Outcome, ReconcileError> {
        // 1. The service and its spec.
        let service = match self.swarm.inspect_service(id).await {
            Err(e) if e.is_not_found() => return Ok(Outcome::unmanaged()),
            result => result?,
        };
        let name = service.name.clone();
        let previous = ClusterStatus::from_labels(&service.labels);
        let settled = Outcome {
            action: Action::AwaitChange,
            managed: Some(name.clone()),
        };
        let spec = match ClusterSpec::from_labels(&service.labels, service.image.as_deref()) {
            Ok(None) => return Ok(Outcome::unmanaged()),
            Ok(Some(spec)) => spec,
            Err(errors) => {
                let problems: Vec<String> = errors.errors().iter().map(|e| e.to_string()).collect();
                let message = format!("invalid spec: {}", problems.join("; "));
                let status = plan::error_status(&previous, message);
                self.write_status(&service, &status).await?;
                return Ok(settled);
            }
        };
        if previous.phase.is_none() {
            act!(
                name,
                "adopt",
                format!(
                    "managing this service as an Aerospike cluster: {}",
                    spec.summary()
                )
            );
        }

        // 2. Paused.
        if spec.paused() {
            self.write_status(&service, &plan::paused_status(&previous))
                .await?;
            return Ok(settled);
        }

        // 3. What the spec refers to.
        let network = match self.check_inputs(&service, &spec).await? {
            Ok(network) => network,
            Err(message) => {
                self.write_status(&service, &plan::error_status(&previous, message))
                    .await?;
                return Ok(settled);
            }
        };

        // 4. Placement and replicas.
        let nodes = self.swarm.list_nodes().await?;
        let eligible = match eligible_nodes(&nodes, &service.constraints) {
            Ok(eligible) => eligible.len(),
            Err(e) => {
                let message = format!(
                    "{e}; fix it with docker service update --constraint-rm/--constraint-add"
                );
                self.write_status(&service, &plan::error_status(&previous, message))
                    .await?;
                return Ok(settled);
            }
        };
        let placement = plan::plan_placement(&spec, &service, eligible, &previous);
        let mut change = ServiceChange::default();
        if let Some(reason) = &placement.set_max_replicas {
            act!(name, "place", reason);
            change.max_replicas_per_node = Some(1);
        }
        if let Some((replicas, reason)) = &placement.set_replicas {
            act!(name, "scale", reason);
            change.replicas = Some(*replicas);
        }
        let scaled = !change.is_empty();
        if scaled {
            update_service_retrying(&self.swarm, &service.id, &change).await?;
        }

        // 5. Tasks.
        let tasks = self
            .swarm
            .list_tasks(&TaskFilter::services([service.id.clone()]))
            .await?;
        let tasks = plan::summarise_tasks(&tasks, &network.id);

        // 6. Mesh.
        let port = spec.service_port();
        let addrs: Vec<SocketAddr> = tasks
            .up
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();
        let replies = join_all(addrs.iter().map(|addr| self.nodes.observe(*addr))).await;
        let mut observations = Vec::new();
        let mut alumni = BTreeMap::new();
        let mut unreachable = Vec::new();
        for (addr, reply) in addrs.iter().zip(replies) {
            match reply {
                Ok((observation, seen)) => {
                    alumni.insert(*addr, seen);
                    observations.push(observation);
                }
                Err(e) => unreachable.push((*addr, e.to_string())),
            }
        }
        let view = ClusterView::from(observations);
        let mesh = plan::plan_mesh(&view, &alumni, &tasks.present, spec.heartbeat_port());
        let mesh_done = self.mesh(&name, &view, &mesh, spec.heartbeat_port()).await;

        // 7. Status.
        let observed = plan::observed_version(&service, &previous);
        let facts = StatusFacts {
            spec: &spec,
            placement: &placement,
            scaled,
            tasks: &tasks,
            view: &view,
            unreachable: &unreachable,
            network: &network.name,
            tips_sent: mesh_done.tips,
        };
        let (status, converged) = plan::compute_status(&facts, Some(observed));
        self.write_status(&service, &status).await?;

        let action = if status.phase == Some(Phase::Error) && !unreachable.is_empty() {
            Action::Requeue(UNREACHABLE_RECHECK)
        } else if converged && !scaled && mesh.is_empty() && mesh_done.failures == 0 {
            Action::AwaitChange
        } else {
            // Tips take effect within a few heartbeats: verify cluster_size
            // and cluster_key on the next pass.
            Action::Requeue(self.poll_fast)
        };
        Ok(Outcome {
            action,
            managed: Some(name),
        })
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

    /// Sends the tips and tip-clears of `plan`, checking every reply.
    async fn mesh(
        &self,
        cluster: &str,
        view: &ClusterView,
        plan: &plan::MeshPlan,
        heartbeat_port: u16,
    ) -> MeshDone {
        let mut done = MeshDone::default();
        let main = view.main_cluster();
        for (node, target) in &plan.tips {
            let reason = match main {
                Some(main) => format!(
                    "node {node} is not in the main cluster ({} nodes, key {}); tipping it toward \
                     member {target}",
                    main.members.len(),
                    main.cluster_key
                ),
                None => format!("no node is in a cluster yet; tipping {node} toward {target}"),
            };
            act!(cluster, "tip", reason);
            match self.nodes.tip(*node, *target, heartbeat_port).await {
                // AlreadyKnown: the node already has that seed; harmless.
                Ok(_) => done.tips += 1,
                Err(e) => {
                    warn!(cluster = %cluster, error = %e, "tip failed; retrying on the next pass");
                    done.failures += 1;
                }
            }
        }
        for (node, gone) in &plan.clears {
            let list: Vec<String> = gone.iter().map(SocketAddr::to_string).collect();
            let reason = format!(
                "node {node} still lists departed nodes ({}) that no task has any more",
                list.join(", ")
            );
            act!(cluster, "tip-clear", reason);
            if let Err(e) = self.nodes.tip_clear(*node, gone).await {
                warn!(cluster = %cluster, error = %e, "tip-clear failed; retrying on the next pass");
                done.failures += 1;
                continue;
            }
            act!(
                cluster,
                "alumni-reset",
                format!("node {node} forgets departed nodes in services-alumni")
            );
            if let Err(e) = self.nodes.alumni_reset(*node).await {
                warn!(cluster = %cluster, error = %e, "services-alumni-reset failed; retrying on the next pass");
                done.failures += 1;
            }
        }
        done
    }

    /// Writes `status` onto the service's labels if they differ; only the
    /// `aerospike.status.*` labels that change are sent.
    async fn write_status(
        &self,
        service: &ServiceInfo,
        status: &ClusterStatus,
    ) -> Result<(), SwarmError> {
        let labels: HashMap<String, String> = service
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !status.would_change(&labels) {
            return Ok(());
        }
        let wanted = status.to_labels();
        let change = ServiceChange {
            labels_remove: labels
                .keys()
                .filter(|k| k.starts_with(STATUS_PREFIX) && !wanted.contains_key(*k))
                .cloned()
                .collect(),
            labels_set: wanted
                .into_iter()
                .filter(|(k, v)| labels.get(k) != Some(v))
                .collect(),
            ..ServiceChange::default()
        };
        let phase = status.phase.map(|p| p.to_string()).unwrap_or_default();
        let ready = status.ready.map(|r| r.to_string()).unwrap_or_default();
        let message = status.message.clone().unwrap_or_default();
        info!(
            cluster = %service.name,
            action = "status",
            reason = %format!("{phase} {ready}: {message}"),
            phase = %phase,
            ready = %ready,
            "status"
        );
        update_service_retrying(&self.swarm, &service.id, &change).await?;
        Ok(())
    }
}

/// What [`Reconciler::mesh`] managed.
#[derive(Debug, Default)]
struct MeshDone {
    /// Tips the nodes accepted (or already had).
    tips: usize,
    /// Commands that failed; they are retried on the next pass.
    failures: usize,
}
