//! [`DockerSwarm`]: [`SwarmApi`] on a real Docker engine.
//!
//! Typed calls go through bollard. Task listing, service inspection and
//! service updates use the raw client ([`super::raw`]) because they need
//! JSON that bollard's models drop (`NetworksAttachments`, `PreviousSpec`)
//! or might rewrite (a spec written back).

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets,
    TaskSpecPlacement,
};
use bollard::query_parameters::{
    EventsOptions, InspectNetworkOptions, ListNodesOptions, ListSecretsOptions,
    ListServicesOptions, LogsOptionsBuilder,
};
use bollard::Docker;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value};

use super::api::{NewService, ServiceChange, SwarmApi};

/// How long a task's logs may take to arrive: the manager fetches them from
/// the task's node, and one that is down would keep the call open.
const TASK_LOGS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
use super::error::SwarmError;
use super::lease::{ConfigObject, LeaseStore};
use super::raw::RawClient;
use super::types::{
    differs_only_in_status_labels, NetworkInfo, NodeInfo, RawTask, ServiceInfo, SwarmEvent,
    TaskFilter, TaskInfo,
};

/// A connection to a swarm manager. Create it with
/// [`connect`](super::connect) or [`connect_from_env`](super::connect_from_env).
#[derive(Clone)]
pub struct DockerSwarm {
    docker: Docker,
    raw: RawClient,
    host: String,
}

impl std::fmt::Debug for DockerSwarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerSwarm")
            .field("host", &self.host)
            .field("api_version", &self.raw.api_version())
            .finish()
    }
}

impl DockerSwarm {
    pub(crate) fn new(docker: Docker, raw: RawClient, host: String) -> DockerSwarm {
        DockerSwarm { docker, raw, host }
    }

    /// The bollard client, for calls this module does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The endpoint, as a `DOCKER_HOST` URL.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The negotiated API version, e.g. `1.41`.
    pub fn api_version(&self) -> &str {
        self.raw.api_version()
    }

    /// The swarm service whose task container `container` (id or name)
    /// is, from its `com.docker.swarm.service.name` label; `None` for a
    /// container of no service, or none by that name on this engine.
    pub async fn container_service(&self, container: &str) -> Result<Option<String>, SwarmError> {
        match self.docker.inspect_container(container, None).await {
            Ok(inspect) => Ok(inspect
                .config
                .and_then(|c| c.labels)
                .and_then(|mut labels| labels.remove("com.docker.swarm.service.name"))),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.err("container inspect")(e)),
        }
    }

    fn err(&self, what: &str) -> impl FnOnce(bollard::errors::Error) -> SwarmError + '_ {
        let what = what.to_string();
        move |e| SwarmError::from_bollard(e, &self.host, &what)
    }

    /// Secret ids by exact name (Docker's name filter matches prefixes).
    async fn secrets_named(&self, name: &str) -> Result<Vec<(String, String)>, SwarmError> {
        let options = ListSecretsOptions {
            filters: Some(HashMap::from([(
                "name".to_string(),
                vec![name.to_string()],
            )])),
        };
        let secrets = self
            .docker
            .list_secrets(Some(options))
            .await
            .map_err(self.err(&format!("secret {name:?}")))?;
        Ok(secrets
            .into_iter()
            .filter_map(|s| {
                let secret_name = s.spec.and_then(|spec| spec.name)?;
                (secret_name == name).then(|| (s.id.unwrap_or_default(), secret_name))
            })
            .collect())
    }

    /// The id of the swarm config named exactly `name`.
    async fn config_id(&self, name: &str) -> Result<String, SwarmError> {
        LeaseStore::read_config(self, name)
            .await?
            .map(|c| c.id)
            .ok_or_else(|| SwarmError::NotFound {
                what: format!("config {name:?}"),
            })
    }
}

impl SwarmApi for DockerSwarm {
    async fn list_services(&self) -> Result<Vec<ServiceInfo>, SwarmError> {
        let services = self
            .docker
            .list_services(None::<ListServicesOptions>)
            .await
            .map_err(self.err("services"))?;
        Ok(services.into_iter().map(ServiceInfo::from).collect())
    }

    async fn inspect_service(&self, id_or_name: &str) -> Result<ServiceInfo, SwarmError> {
        // Raw JSON, because bollard's `Service` model has no `PreviousSpec`,
        // which tells whether the last update was a status write. Without
        // insertDefaults, as the engine stored it.
        let what = format!("service {id_or_name:?}");
        let path = format!("/services/{}", percent_encode(id_or_name));
        let json: Value = self.raw.get_json(&path, &what).await?;
        let status_only_update =
            differs_only_in_status_labels(&json["Spec"], json.get("PreviousSpec"));
        let service: bollard::models::Service =
            serde_json::from_value(json.clone()).map_err(|e| decode(&what, &e.to_string()))?;
        Ok(ServiceInfo {
            status_only_update,
            ..ServiceInfo::from(service).with_raw(&json)
        })
    }

    async fn list_nodes(&self) -> Result<Vec<NodeInfo>, SwarmError> {
        let nodes = self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(self.err("nodes"))?;
        Ok(nodes.into_iter().map(NodeInfo::from).collect())
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<TaskInfo>, SwarmError> {
        let path = match filter.to_query() {
            Some(filters) => format!("/tasks?filters={}", percent_encode(&filters)),
            None => "/tasks".to_string(),
        };
        let tasks: Vec<RawTask> = self.raw.get_json(&path, "tasks").await?;
        Ok(tasks.into_iter().map(TaskInfo::from).collect())
    }

    async fn network(&self, id_or_name: &str) -> Result<Option<NetworkInfo>, SwarmError> {
        let result = self
            .docker
            .inspect_network(id_or_name, None::<InspectNetworkOptions>)
            .await;
        match result.map_err(self.err(&format!("network {id_or_name:?}"))) {
            Ok(net) => Ok(Some(NetworkInfo {
                id: net.id.unwrap_or_default(),
                name: net.name.unwrap_or_default(),
                driver: net.driver.unwrap_or_default(),
                scope: net.scope.unwrap_or_default(),
                attachable: net.attachable.unwrap_or(false),
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn secret_exists(&self, name: &str) -> Result<bool, SwarmError> {
        Ok(!self.secrets_named(name).await?.is_empty())
    }

    async fn config_text(&self, name: &str) -> Result<Option<String>, SwarmError> {
        use base64::Engine as _;
        let what = format!("config {name:?}");
        let config = match self.docker().inspect_config(name).await {
            Ok(config) => config,
            Err(e) => {
                let error = SwarmError::from_bollard(e, self.host(), &what);
                return if error.is_not_found() {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
        };
        let spec = config.spec.unwrap_or_default();
        // Inspect resolves id prefixes too: only the exact name counts.
        if spec.name.as_deref() != Some(name) {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(spec.data.unwrap_or_default())
            .map_err(|e| decode(&what, &format!("its data is not base64: {e}")))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| decode(&what, "its data is not UTF-8 text"))
    }

    async fn config_exists(&self, name: &str) -> Result<bool, SwarmError> {
        // The name filter matches prefixes too: compare exactly.
        let filters = serde_json::json!({ "name": [name] }).to_string();
        let path = format!("/configs?filters={}", percent_encode(&filters));
        let configs: Vec<Value> = self.raw.get_json(&path, "configs").await?;
        Ok(configs
            .iter()
            .any(|c| c.pointer("/Spec/Name").and_then(Value::as_str) == Some(name)))
    }

    async fn task_logs(&self, id: &str, tail: usize) -> Result<Vec<String>, SwarmError> {
        use futures::TryStreamExt;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&tail.to_string())
            .build();
        let what = format!("logs of task {id:?}");
        let read = self
            .docker()
            .task_logs(id, Some(options))
            .map_ok(|chunk| chunk.to_string())
            .try_collect::<Vec<String>>();
        match tokio::time::timeout(TASK_LOGS_TIMEOUT, read).await {
            Err(_) => Err(SwarmError::Api {
                status: 504,
                message: format!(
                    "the {what} did not arrive within {} s (is its node up?)",
                    TASK_LOGS_TIMEOUT.as_secs()
                ),
            }),
            Ok(Err(e)) => Err(SwarmError::from_bollard(e, self.host(), &what)),
            Ok(Ok(chunks)) => Ok(chunks.concat().lines().map(str::to_string).collect()),
        }
    }

    async fn find_config(&self, name: &str) -> Result<Option<ConfigObject>, SwarmError> {
        LeaseStore::read_config(self, name).await
    }

    async fn create_config_with(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        body: &str,
    ) -> Result<(), SwarmError> {
        super::lease::create_config_with_body(self, name, labels, body).await
    }

    async fn relabel_config(
        &self,
        id: &str,
        version: u64,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), SwarmError> {
        LeaseStore::update_config_labels(self, id, version, labels).await
    }

    async fn remove_config(&self, name: &str) -> Result<(), SwarmError> {
        let what = format!("config {name:?}");
        match self.docker().delete_config(name).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let error = SwarmError::from_bollard(e, self.host(), &what);
                if error.is_not_found() {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }

    async fn update_service(
        &self,
        id: &str,
        version: u64,
        change: &ServiceChange,
    ) -> Result<u64, SwarmError> {
        let what = format!("service {id:?}");
        // The stored spec exactly as the engine keeps it: no
        // insertDefaults, whose explicit defaults written back can roll
        // tasks.
        let path = format!("/services/{}", percent_encode(id));
        let current: Value = self.raw.get_json(&path, &what).await?;
        let current_version = current
            .pointer("/Version/Index")
            .and_then(Value::as_u64)
            .ok_or_else(|| decode(&what, "service has no Version.Index"))?;
        if current_version != version {
            // The POST would be refused the same way; say so without
            // sending it.
            return Err(SwarmError::OutOfSequence {
                service: id.to_string(),
            });
        }
        let stored = current
            .get("Spec")
            .ok_or_else(|| decode(&what, "service has no Spec"))?;
        let mut spec = stored.clone();
        let secret = match &change.secret_at_target {
            Some(mount) => {
                let (secret_id, name) = self
                    .secrets_named(&mount.name)
                    .await?
                    .into_iter()
                    .next()
                    .ok_or_else(|| SwarmError::NotFound {
                    what: format!("secret {:?}", mount.name),
                })?;
                Some((secret_id, name, mount.target.clone()))
            }
            None => None,
        };
        let config = match &change.config_at_target {
            Some(mount) => {
                let id = self.config_id(&mount.name).await?;
                Some((id, mount.name.clone(), mount.target.clone()))
            }
            None => None,
        };
        apply_change(&mut spec, change, secret.as_ref(), config.as_ref(), id)?;
        if &spec == stored {
            // Nothing would change: skip the write, which would still bump
            // the version and send an event to every watcher (ourselves
            // included).
            return Ok(version);
        }

        let update = format!("/services/{}/update?version={version}", percent_encode(id));
        let reply = self.raw.post_json(&update, &spec, &what).await?;
        if let Ok(reply) = serde_json::from_slice::<Value>(&reply) {
            for warning in reply["Warnings"].as_array().into_iter().flatten() {
                tracing::warn!(service = id, warning = %warning, "docker warned on service update");
            }
        }
        // The update reply carries no version: read it back.
        let updated: Value = self.raw.get_json(&path, &what).await?;
        updated
            .pointer("/Version/Index")
            .and_then(Value::as_u64)
            .ok_or_else(|| decode(&what, "service has no Version.Index"))
    }

    async fn create_service(&self, service: &NewService) -> Result<String, SwarmError> {
        let mut secrets = Vec::new();
        for mount in &service.secrets {
            let (id, name) = self
                .secrets_named(&mount.name)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| SwarmError::NotFound {
                    what: format!("secret {:?}", mount.name),
                })?;
            secrets.push(TaskSpecContainerSpecSecrets {
                file: Some(TaskSpecContainerSpecFile {
                    name: Some(mount.target.clone()),
                    uid: Some("0".into()),
                    gid: Some("0".into()),
                    mode: Some(0o444),
                }),
                secret_id: Some(id),
                secret_name: Some(name),
            });
        }
        let mut configs = Vec::new();
        for mount in &service.configs {
            configs.push(TaskSpecContainerSpecConfigs {
                file: Some(TaskSpecContainerSpecFile1 {
                    name: Some(mount.target.clone()),
                    uid: Some("0".into()),
                    gid: Some("0".into()),
                    mode: Some(0o444),
                }),
                config_id: Some(self.config_id(&mount.name).await?),
                config_name: Some(mount.name.clone()),
                ..Default::default()
            });
        }
        // Our mount type speaks the engine's JSON too; bollard's model reads it.
        let mounts = service
            .volumes
            .iter()
            .map(|m| {
                serde_json::from_value(m.to_json()).map_err(|e| decode("mount", &e.to_string()))
            })
            .collect::<Result<Vec<bollard::models::Mount>, _>>()?;
        // Our policy type speaks the engine's JSON; bollard's models read it.
        let policy_as = |what: &str| {
            let what = what.to_string();
            move |e: serde_json::Error| decode(&what, &e.to_string())
        };
        let (update_config, rollback_config) = match &service.update_policy {
            Some(policy) => (
                Some(serde_json::from_value(policy.to_json()).map_err(policy_as("update policy"))?),
                Some(
                    serde_json::from_value(policy.to_json())
                        .map_err(policy_as("rollback policy"))?,
                ),
            ),
            None => (None, None),
        };
        let spec = ServiceSpec {
            name: Some(service.name.clone()),
            update_config,
            rollback_config,
            labels: Some(service.labels.clone().into_iter().collect()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(service.image.clone()),
                    args: (!service.args.is_empty()).then(|| service.args.clone()),
                    secrets: (!secrets.is_empty()).then_some(secrets),
                    configs: (!configs.is_empty()).then_some(configs),
                    mounts: (!mounts.is_empty()).then_some(mounts),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: (!service.constraints.is_empty())
                        .then(|| service.constraints.clone()),
                    max_replicas: service
                        .max_replicas_per_node
                        .map(|m| to_i64(m, "max replicas per node"))
                        .transpose()?,
                    ..Default::default()
                }),
                // The engine resolves network names to ids.
                networks: Some(
                    service
                        .networks
                        .iter()
                        .map(|n| NetworkAttachmentConfig {
                            target: Some(n.clone()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(to_i64(service.replicas, "replicas")?),
                }),
                ..Default::default()
            }),
            endpoint_spec: service.endpoint_mode_dnsrr.then(|| EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ..Default::default()
            }),
            ..Default::default()
        };
        let reply = self
            .docker
            .create_service(spec, None)
            .await
            .map_err(self.err(&format!("service {:?}", service.name)))?;
        reply
            .id
            .ok_or_else(|| decode("service create", "reply has no ID"))
    }

    async fn remove_service(&self, id_or_name: &str) -> Result<(), SwarmError> {
        self.docker
            .delete_service(id_or_name)
            .await
            .map_err(self.err(&format!("service {id_or_name:?}")))
    }

    fn events(
        &self,
        since: Option<SystemTime>,
    ) -> BoxStream<'static, Result<SwarmEvent, SwarmError>> {
        let types = ["service", "node", "secret", "config"]
            .map(String::from)
            .to_vec();
        let options = EventsOptions {
            since: since.map(|t| {
                t.duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    .to_string()
            }),
            until: None,
            filters: Some(HashMap::from([("type".to_string(), types)])),
        };
        let host = self.host.clone();
        self.docker
            .events(Some(options))
            .filter_map(move |event| {
                let item = match event {
                    Ok(event) => SwarmEvent::from_bollard(event).map(Ok),
                    Err(e) => Some(Err(SwarmError::from_bollard(e, &host, "event stream"))),
                };
                futures::future::ready(item)
            })
            .boxed()
    }
}

/// Edits a stored service spec (JSON as the engine returned it) in place,
/// touching only what `change` names.
/// `secret` and `config` are the resolved `change.secret_at_target` and
/// `change.config_at_target`: (id, name, target).
fn apply_change(
    spec: &mut Value,
    change: &ServiceChange,
    secret: Option<&(String, String, String)>,
    config: Option<&(String, String, String)>,
    service: &str,
) -> Result<(), SwarmError> {
    let invalid = |reason: &str| SwarmError::InvalidChange {
        service: service.to_string(),
        reason: reason.to_string(),
    };
    let spec_obj = spec
        .as_object_mut()
        .ok_or_else(|| invalid("the stored spec is not an object"))?;

    if let Some(replicas) = change.replicas {
        let replicated = spec_obj
            .get_mut("Mode")
            .and_then(|m| m.get_mut("Replicated"))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| invalid("it is not a replicated service, so it has no replica count"))?;
        replicated.insert("Replicas".into(), json!(replicas));
    }

    if let Some(max) = change.max_replicas_per_node {
        let placement = template_part(spec_obj, "Placement")
            .ok_or_else(|| invalid("its task template is not an object"))?;
        if max == 0 {
            placement.remove("MaxReplicas");
        } else {
            placement.insert("MaxReplicas".into(), json!(max));
        }
    }

    if let Some(constraints) = &change.constraints {
        let placement = template_part(spec_obj, "Placement")
            .ok_or_else(|| invalid("its task template is not an object"))?;
        if constraints.is_empty() {
            placement.remove("Constraints");
        } else {
            placement.insert("Constraints".into(), json!(constraints));
        }
    }

    if let Some(image) = &change.image {
        let container = template_part(spec_obj, "ContainerSpec")
            .ok_or_else(|| invalid("its task template is not an object"))?;
        container.insert("Image".into(), json!(image));
    }

    // A secret or a config mounted at a target replaces whichever of the
    // two is there now: the config file comes from one source.
    for (kind, mount) in [("Secrets", secret), ("Configs", config)] {
        let Some((object_id, name, target)) = mount else {
            continue;
        };
        let container = template_part(spec_obj, "ContainerSpec")
            .ok_or_else(|| invalid("its task template is not an object"))?;
        // A relative `File.Name` is under /run/secrets for a secret, under
        // / for a config.
        let at_target = |list: &str, s: &Value| {
            let under = if list == "Secrets" {
                "/run/secrets/"
            } else {
                "/"
            };
            s.pointer("/File/Name")
                .and_then(Value::as_str)
                .is_some_and(|t| {
                    let full = |t: &str| {
                        if t.starts_with('/') {
                            t.to_string()
                        } else {
                            format!("{under}{t}")
                        }
                    };
                    full(t) == full(target)
                })
        };
        let mut file = None;
        for list in ["Secrets", "Configs"] {
            if let Some(entries) = container.get_mut(list).and_then(Value::as_array_mut) {
                if file.is_none() {
                    file = entries
                        .iter()
                        .find(|s| at_target(list, s))
                        .and_then(|s| s.get("File").cloned())
                        .map(|mut file| {
                            // A relative name means another directory for
                            // the other kind: spell the target out.
                            if list != kind {
                                file["Name"] = json!(target);
                            }
                            file
                        });
                }
                entries.retain(|s| !at_target(list, s));
            }
        }
        let file =
            file.unwrap_or_else(|| json!({"Name": target, "UID": "0", "GID": "0", "Mode": 0o444}));
        let entries = container.entry(kind).or_insert_with(|| json!([]));
        if entries.is_null() {
            *entries = json!([]);
        }
        let entries = entries
            .as_array_mut()
            .ok_or_else(|| invalid("its secrets or configs are not a list"))?;
        entries.push(if kind == "Secrets" {
            json!({"File": file, "SecretID": object_id, "SecretName": name})
        } else {
            json!({"File": file, "ConfigID": object_id, "ConfigName": name})
        });
    }

    let at = |target: &str| {
        let target = target.trim_end_matches('/').to_string();
        move |m: &Value| {
            m.get("Target")
                .and_then(Value::as_str)
                .is_some_and(|t| t.trim_end_matches('/') == target)
        }
    };
    if let Some(path) = &change.mount_remove_at {
        let container = template_part(spec_obj, "ContainerSpec")
            .ok_or_else(|| invalid("its task template is not an object"))?;
        if let Some(mounts) = container.get_mut("Mounts").and_then(Value::as_array_mut) {
            let here = at(path);
            mounts.retain(|m| !here(m));
        }
    }

    if let Some(mount) = &change.volume_at_target {
        let container = template_part(spec_obj, "ContainerSpec")
            .ok_or_else(|| invalid("its task template is not an object"))?;
        let mounts = container.entry("Mounts").or_insert_with(|| json!([]));
        if mounts.is_null() {
            *mounts = json!([]);
        }
        let mounts = mounts
            .as_array_mut()
            .ok_or_else(|| invalid("its mounts are not a list"))?;
        // Whatever is mounted at the target (a volume, a bind, a tmpfs)
        // gives way; mounts elsewhere stay as they are.
        let here = at(&mount.target);
        mounts.retain(|m| !here(m));
        mounts.push(mount.to_json());
    }

    if !change.networks_add.is_empty() {
        // Old clients kept the networks in Spec.Networks (deprecated);
        // add to wherever they are, so the service keeps one list.
        let networks = if spec_obj.get("Networks").is_some_and(Value::is_array) {
            spec_obj.get_mut("Networks")
        } else {
            let template = object_entry(spec_obj, "TaskTemplate")
                .ok_or_else(|| invalid("its task template is not an object"))?;
            let list = template.entry("Networks").or_insert_with(|| json!([]));
            if list.is_null() {
                *list = json!([]);
            }
            Some(list)
        };
        let networks = networks
            .and_then(Value::as_array_mut)
            .ok_or_else(|| invalid("its networks are not a list"))?;
        for id in &change.networks_add {
            let attached = networks
                .iter()
                .any(|n| n.get("Target").and_then(Value::as_str) == Some(id.as_str()));
            if !attached {
                networks.push(json!({ "Target": id }));
            }
        }
    }

    if let Some(policy) = &change.update_policy {
        spec_obj.insert("UpdateConfig".into(), policy.to_json());
        spec_obj.insert("RollbackConfig".into(), policy.to_json());
    }

    if !change.labels_set.is_empty() || !change.labels_remove.is_empty() {
        let labels = object_entry(spec_obj, "Labels")
            .ok_or_else(|| invalid("its labels are not an object"))?;
        for key in &change.labels_remove {
            labels.remove(key);
        }
        for (key, value) in &change.labels_set {
            labels.insert(key.clone(), json!(value));
        }
    }
    Ok(())
}

/// `spec.TaskTemplate[key]` as an object, created empty when absent.
fn template_part<'a>(
    spec: &'a mut serde_json::Map<String, Value>,
    key: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    object_entry(spec, "TaskTemplate").and_then(|t| object_entry(t, key))
}

/// `obj[key]` as an object, created empty when absent (or null).
fn object_entry<'a>(
    obj: &'a mut serde_json::Map<String, Value>,
    key: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let entry = obj.entry(key).or_insert_with(|| json!({}));
    if entry.is_null() {
        *entry = json!({});
    }
    entry.as_object_mut()
}

fn decode(context: &str, message: &str) -> SwarmError {
    SwarmError::Decode {
        context: context.to_string(),
        message: message.to_string(),
    }
}

/// Docker's models use signed integers where counts are never negative.
fn to_i64(value: u64, what: &str) -> Result<i64, SwarmError> {
    i64::try_from(value).map_err(|_| SwarmError::InvalidChange {
        service: "(new)".into(),
        reason: format!("{what} {value} is too large"),
    })
}

/// Percent-encodes everything but unreserved characters, for path segments
/// and query values.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::SecretMount;
    use std::collections::BTreeMap;

    fn stored_spec() -> Value {
        json!({
            "Name": "db",
            "Labels": {"aerospike.cluster.replicas": "3", "old": "x"},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "img", "Unknown": {"kept": true}},
                "ForceUpdate": 0
            },
            "Mode": {"Replicated": {"Replicas": 3}},
            "SomeFieldBollardDoesNotKnow": [1, 2]
        })
    }

    #[test]
    fn a_config_object_takes_the_place_of_the_secret_at_its_target_and_back() {
        let mount = |name: &str| SecretMount {
            name: name.into(),
            target: "/run/secrets/aerospike.conf".into(),
        };
        let mut spec = stored_spec();
        spec["TaskTemplate"]["ContainerSpec"]["Secrets"] = json!([
            {"File": {"Name": "aerospike.conf", "UID": "0", "GID": "0", "Mode": 292},
             "SecretID": "s1", "SecretName": "conf-v1"},
            {"File": {"Name": "other", "UID": "0", "GID": "0", "Mode": 292},
             "SecretID": "s2", "SecretName": "tls"}
        ]);
        let change = ServiceChange {
            config_at_target: Some(mount("conf-v2")),
            ..ServiceChange::default()
        };
        let config = (
            "c2".to_string(),
            "conf-v2".to_string(),
            "/run/secrets/aerospike.conf".to_string(),
        );
        apply_change(&mut spec, &change, None, Some(&config), "db").unwrap();
        let container = &spec["TaskTemplate"]["ContainerSpec"];
        // The secret at the target (a relative name under /run/secrets) is
        // gone, the other stays, and the config's file names the target
        // in full (a config's relative name is under /).
        assert_eq!(
            container["Secrets"],
            json!([{"File": {"Name": "other", "UID": "0", "GID": "0", "Mode": 292}, "SecretID": "s2", "SecretName": "tls"}])
        );
        assert_eq!(
            container["Configs"],
            json!([{"File": {"Name": "/run/secrets/aerospike.conf", "UID": "0", "GID": "0", "Mode": 292},
                    "ConfigID": "c2", "ConfigName": "conf-v2"}])
        );
        // Control: the same file name means /aerospike.conf for a config,
        // so a config there is not at the secret's target.
        let elsewhere = (
            "c3".to_string(),
            "conf-v3".to_string(),
            "/aerospike.conf".to_string(),
        );
        let mut other = spec.clone();
        apply_change(
            &mut other,
            &ServiceChange::default(),
            None,
            Some(&elsewhere),
            "db",
        )
        .unwrap();
        assert_eq!(
            other["TaskTemplate"]["ContainerSpec"]["Configs"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // And back to a secret: the config at the target gives way.
        let back = (
            "s9".to_string(),
            "conf-v1".to_string(),
            "/run/secrets/aerospike.conf".to_string(),
        );
        apply_change(
            &mut spec,
            &ServiceChange::default(),
            Some(&back),
            None,
            "db",
        )
        .unwrap();
        let container = &spec["TaskTemplate"]["ContainerSpec"];
        assert_eq!(container["Configs"], json!([]));
        assert_eq!(container["Secrets"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn the_update_policy_reads_into_bollards_models_unchanged() {
        let policy = crate::swarm::UpdatePolicy {
            parallelism: 1,
            delay_ns: 31_536_000_000_000_000,
            failure_action: "pause".into(),
            monitor_ns: 5_000_000_000,
            order: "stop-first".into(),
        };
        let update: bollard::models::ServiceSpecUpdateConfig =
            serde_json::from_value(policy.to_json()).unwrap();
        let rollback: bollard::models::ServiceSpecRollbackConfig =
            serde_json::from_value(policy.to_json()).unwrap();
        for back in [
            serde_json::to_value(update).unwrap(),
            serde_json::to_value(rollback).unwrap(),
        ] {
            assert_eq!(back["Parallelism"], 1);
            assert_eq!(back["Delay"], policy.to_json()["Delay"]);
            assert_eq!(back["FailureAction"], "pause");
            assert_eq!(back["Monitor"], 5_000_000_000u64);
            assert_eq!(back["Order"], "stop-first");
        }
    }

    #[test]
    fn a_volume_replaces_the_mount_at_its_target_and_leaves_the_others() {
        let mount = crate::swarm::VolumeMount {
            source: "aerospike-data".into(),
            target: "/opt/aerospike/data".into(),
            driver: Some("local".into()),
            driver_options: BTreeMap::from([("type".into(), "tmpfs".into())]),
        };
        let change = ServiceChange {
            volume_at_target: Some(mount.clone()),
            ..ServiceChange::default()
        };
        // Added where there were no mounts.
        let mut spec = stored_spec();
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Mounts"],
            json!([{"Type": "volume", "Source": "aerospike-data", "Target": "/opt/aerospike/data",
                    "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}}])
        );
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Unknown"],
            json!({"kept": true})
        );
        // A bind at the target gives way; a mount elsewhere stays.
        let mut spec = stored_spec();
        spec["TaskTemplate"]["ContainerSpec"]["Mounts"] = json!([
            {"Type": "bind", "Source": "/srv/logs", "Target": "/var/log/aerospike"},
            {"Type": "bind", "Source": "/srv/data", "Target": "/opt/aerospike/data/"}
        ]);
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        let mounts = spec["TaskTemplate"]["ContainerSpec"]["Mounts"]
            .as_array()
            .unwrap();
        assert_eq!(mounts.len(), 2, "{mounts:?}");
        assert_eq!(mounts[0]["Target"], "/var/log/aerospike");
        assert_eq!(
            crate::swarm::VolumeMount::from_json(&mounts[1]),
            Some(mount)
        );
        // Without a driver or options, no VolumeOptions: the engine's default.
        let plain = crate::swarm::VolumeMount {
            source: "d".into(),
            target: "/d".into(),
            ..Default::default()
        };
        assert_eq!(
            plain.to_json(),
            json!({"Type": "volume", "Source": "d", "Target": "/d"})
        );
        assert_eq!(
            crate::swarm::VolumeMount::from_json(&plain.to_json()),
            Some(plain)
        );
        // bollard's model reads it (what create_service sends).
        let model: bollard::models::Mount =
            serde_json::from_value(change.volume_at_target.as_ref().unwrap().to_json()).unwrap();
        assert_eq!(
            serde_json::to_value(model).unwrap()["VolumeOptions"]["DriverConfig"]["Name"],
            "local"
        );
        assert!(change.rolls_tasks());
        // A rollback takes the volume out again, and only it.
        let remove = ServiceChange {
            mount_remove_at: Some("/opt/aerospike/data".into()),
            ..ServiceChange::default()
        };
        apply_change(&mut spec, &remove, None, None, "db").unwrap();
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Mounts"],
            json!([{"Type": "bind", "Source": "/srv/logs", "Target": "/var/log/aerospike"}])
        );
    }

    #[test]
    fn networks_are_added_once_where_the_service_keeps_them() {
        let change = ServiceChange {
            networks_add: vec!["net2".into()],
            ..ServiceChange::default()
        };
        // Modern: TaskTemplate.Networks, aliases of attached ones kept.
        let mut spec = stored_spec();
        spec["TaskTemplate"]["Networks"] = json!([{"Target": "net1", "Aliases": ["a"]}]);
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        assert_eq!(
            spec["TaskTemplate"]["Networks"],
            json!([{"Target": "net1", "Aliases": ["a"]}, {"Target": "net2"}])
        );
        // None yet: the list is made.
        let mut spec = stored_spec();
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        assert_eq!(
            spec["TaskTemplate"]["Networks"],
            json!([{"Target": "net2"}])
        );
        // Deprecated Spec.Networks: added there, not split over two lists.
        let mut spec = stored_spec();
        spec["Networks"] = json!([{"Target": "net1"}]);
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        assert_eq!(
            spec["Networks"],
            json!([{"Target": "net1"}, {"Target": "net2"}])
        );
        assert!(spec["TaskTemplate"].get("Networks").is_none());
    }

    #[test]
    fn label_change_touches_only_labels() {
        let mut spec = stored_spec();
        let change = ServiceChange {
            labels_set: BTreeMap::from([("aerospike.status.phase".into(), "Ready".into())]),
            labels_remove: vec!["old".into(), "absent".into()],
            ..ServiceChange::default()
        };
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        let mut expected = stored_spec();
        expected["Labels"] =
            json!({"aerospike.cluster.replicas": "3", "aerospike.status.phase": "Ready"});
        assert_eq!(spec, expected);
    }

    #[test]
    fn scale_and_placement_edits() {
        let mut spec = stored_spec();
        let change = ServiceChange {
            replicas: Some(5),
            max_replicas_per_node: Some(1),
            ..ServiceChange::default()
        };
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 5);
        assert_eq!(spec["TaskTemplate"]["Placement"]["MaxReplicas"], 1);
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Unknown"]["kept"],
            true
        );
        assert_eq!(spec["SomeFieldBollardDoesNotKnow"], json!([1, 2]));
        let unlimited = ServiceChange {
            max_replicas_per_node: Some(0),
            ..ServiceChange::default()
        };
        apply_change(&mut spec, &unlimited, None, None, "db").unwrap();
        assert_eq!(spec["TaskTemplate"]["Placement"], json!({}));
    }

    #[test]
    fn labels_are_created_when_absent() {
        let mut spec = json!({"Name": "db", "Mode": {"Replicated": {}}});
        let change = ServiceChange {
            labels_set: BTreeMap::from([("a".into(), "b".into())]),
            ..ServiceChange::default()
        };
        apply_change(&mut spec, &change, None, None, "db").unwrap();
        assert_eq!(spec["Labels"], json!({"a": "b"}));
    }

    #[test]
    fn replicas_on_a_global_service_is_refused() {
        let mut spec = json!({"Name": "g", "Mode": {"Global": {}}});
        let change = ServiceChange {
            replicas: Some(3),
            ..ServiceChange::default()
        };
        let err = apply_change(&mut spec, &change, None, None, "g").unwrap_err();
        assert!(matches!(err, SwarmError::InvalidChange { .. }), "{err:?}");
        assert!(
            err.to_string().contains("not a replicated service"),
            "{err}"
        );
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(
            percent_encode(r#"{"a":["b"]}"#),
            "%7B%22a%22%3A%5B%22b%22%5D%7D"
        );
    }
}
