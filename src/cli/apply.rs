//! `apply -f cluster.yaml [--wait [--timeout D]] [--dry-run]`: make the
//! swarm service what an AerospikeCluster document says, as `kubectl
//! apply` does for a resource.
//!
//! A service that does not exist is created as the published recipe runs
//! it (image `<image>:<version>`, the overlay network, the config secret
//! and `--config-file`, the storage volume mounted at its path, DNS round
//! robin, one task per node) with the
//! operator's update policy already in place, so its first update is gated.
//! A service that exists has only its labels changed: its
//! `aerospike.cluster.*` labels become exactly the document's `spec`, and
//! the labels under `metadata.labels` are added or changed (a label left
//! out of `metadata.labels` stays: apply cannot tell it from a label that
//! someone else put there). Never its image or mounts, which the operator
//! rolls one node at a time from the version and storage labels. The diff
//! is printed first;
//! `--dry-run` stops there.
//!
//! A config object (`spec.configObject`) is read and checked first, as
//! the operator checks it before it rolls: a config that does not parse
//! or cannot work (see [`aerospike_swarm_operator::serverconf::check`])
//! is refused before anything is written. For a change of config object
//! the diff says whether the operator will set it live (which
//! parameters) or roll it with a restart (and why).
//!
//! The logic is written against [`SwarmApi`] so the tests run it on
//! [`aerospike_swarm_operator::swarm::FakeSwarm`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use aerospike_swarm_operator::controller::liveconfig::{self, ConfigText};
use aerospike_swarm_operator::controller::rollout::{valve_policy, Target};
use aerospike_swarm_operator::spec::{
    ClusterDocument, ClusterSpec, ClusterStatus, Field, Phase, SpecErrors, CLUSTER_PREFIX,
};
use aerospike_swarm_operator::swarm::{
    update_service_retrying, with_live_status, NewService, SecretMount, ServiceChange, ServiceInfo,
    SwarmApi, SwarmError, VolumeMount,
};

use super::{connect, exit, no_such_service, parse_duration, swarm_error_hint};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The AerospikeCluster YAML document to apply (metadata.name is the
    /// service name).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Then follow the status labels until the cluster is Ready with this
    /// change (exit 0), reports Error (exit 1) or --timeout passes (exit 3).
    #[arg(long, conflicts_with = "dry_run")]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration, requires = "wait")]
    pub timeout: Duration,
    /// Print what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One label that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelDiff {
    /// A label the service does not have yet.
    Add { key: String, value: String },
    /// A label whose value changes.
    Change {
        key: String,
        old: String,
        new: String,
    },
    /// A spec label the document no longer has.
    Remove { key: String, old: String },
}

impl fmt::Display for LabelDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelDiff::Add { key, value } => write!(f, "+ {key}: {value:?}"),
            LabelDiff::Change { key, old, new } => write!(f, "~ {key}: {old:?} -> {new:?}"),
            LabelDiff::Remove { key, old } => write!(f, "- {key}: {old:?}"),
        }
    }
}

/// The differences between the labels a service has and the labels a
/// document gives it ([`ClusterDocument::to_labels`]), in label order.
///
/// The `aerospike.cluster.*` labels are the document's alone: one the
/// service has and `wanted` has not is removed. Any other label in
/// `wanted` is added or changed, and the service's other labels are left
/// out: they may be anyone's (`com.docker.stack.namespace`), so a label
/// that is not in `wanted` is never removed.
pub fn label_diff(
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Vec<LabelDiff> {
    let current_spec = current.keys().filter(|k| k.starts_with(CLUSTER_PREFIX));
    let mut keys: Vec<&String> = current_spec.chain(wanted.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| match (current.get(key), wanted.get(key)) {
            (None, Some(value)) => Some(LabelDiff::Add {
                key: key.clone(),
                value: value.clone(),
            }),
            (Some(old), Some(new)) if old != new => Some(LabelDiff::Change {
                key: key.clone(),
                old: old.clone(),
                new: new.clone(),
            }),
            (Some(old), None) => Some(LabelDiff::Remove {
                key: key.clone(),
                old: old.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// What applying a document does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The service does not exist: create it.
    Create(NewService),
    /// The service exists with other spec labels, or without some of the
    /// document's `metadata.labels`: change them.
    Update {
        /// Service id.
        id: String,
        /// The version the diff was made against.
        version: u64,
        /// The labels to set and remove (boxed: the largest part).
        change: Box<ServiceChange>,
        /// What changes, for the user.
        diff: Vec<LabelDiff>,
        /// The image the operator will roll the nodes to, when the new
        /// spec asks for another one than the service runs.
        rolls_to: Option<String>,
        /// The storage volume the operator will roll into the nodes'
        /// template, when the new spec asks for another mount at its path.
        rolls_storage: Option<VolumeMount>,
        /// What a change of config object will do: the parameters set
        /// live, or why it needs a rolling restart.
        config_change: Option<String>,
    },
    /// The service already has exactly these spec labels, and the
    /// document's `metadata.labels`.
    Unchanged {
        /// Its current version.
        version: u64,
    },
}

/// Why a document cannot be applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The document, or the service's labels it leads to, is invalid.
    Invalid(SpecErrors),
    /// A new service needs `spec.network`.
    NoNetwork { service: String },
    /// `spec.network` names no network.
    NoSuchNetwork { network: String },
    /// `spec.configSecret` names no secret (for a new service).
    NoSuchSecret { secret: String },
    /// `spec.configObject` names no swarm config.
    NoSuchConfig { config: String },
    /// The config object does not parse or fails a check.
    Config(String),
    /// Docker failed.
    Swarm(SwarmError),
}

impl ApplyError {
    /// 1 when the document is at fault, 2 when Docker is.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApplyError::Swarm(_) => exit::CANNOT_CHECK,
            _ => exit::FAILURE,
        }
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Invalid(errors) => {
                let lines: Vec<String> = errors.errors().iter().map(|e| e.to_string()).collect();
                write!(f, "the spec is invalid: {}", lines.join("; "))
            }
            ApplyError::NoNetwork { service } => write!(
                f,
                "spec.network (label {}) is required to create service {service}: name the \
                 overlay network its nodes reach each other on (create one with docker network \
                 create --driver overlay --attachable NAME)",
                Field::Network.label()
            ),
            ApplyError::NoSuchNetwork { network } => write!(
                f,
                "network {network:?} (spec.network) does not exist; create it with docker \
                 network create --driver overlay --attachable {network}"
            ),
            ApplyError::NoSuchSecret { secret } => write!(
                f,
                "config secret {secret:?} (spec.configSecret) does not exist; create it with \
                 docker secret create {secret} aerospike.conf"
            ),
            ApplyError::NoSuchConfig { config } => write!(
                f,
                "config object {config:?} (spec.configObject) does not exist; create it with \
                 docker config create {config} aerospike.conf"
            ),
            ApplyError::Config(problem) => f.write_str(problem),
            ApplyError::Swarm(error) => f.write_str(&swarm_error_hint(error)),
        }
    }
}

impl From<SwarmError> for ApplyError {
    fn from(error: SwarmError) -> Self {
        ApplyError::Swarm(error)
    }
}

/// The service the recipe runs for `document`: see the module docs.
pub fn new_service(document: &ClusterDocument, network: &str) -> NewService {
    let spec = &document.spec;
    let mut service = NewService {
        name: document.metadata.name.clone(),
        image: spec.image_reference(None),
        replicas: u64::from(spec.replicas),
        labels: document.to_labels(),
        networks: vec![network.to_string()],
        endpoint_mode_dnsrr: true,
        // One Aerospike node per host, as the operator would set it.
        max_replicas_per_node: Some(1),
        // The operator's policy from the first write: one task at a time,
        // each released by the operator.
        update_policy: Some(valve_policy()),
        ..NewService::default()
    };
    if let Some(secret) = &spec.config_secret {
        service.secrets.push(SecretMount {
            name: secret.clone(),
            target: spec.config_target().to_string(),
        });
        service.args = vec!["--config-file".into(), spec.config_target().to_string()];
    }
    if let Some(config) = &spec.config_object {
        service.configs.push(SecretMount {
            name: config.clone(),
            target: spec.config_target().to_string(),
        });
        service.args = vec!["--config-file".into(), spec.config_target().to_string()];
    }
    // The storage volume as the operator would roll it in: each node's
    // engine creates its own volume when the first task mounts it.
    let template = ServiceInfo::default();
    service
        .volumes
        .extend(Target::desired(spec, &template).storage);
    service
}

/// Works out what applying `document` does, reading the swarm only.
pub async fn plan<A: SwarmApi>(api: &A, document: &ClusterDocument) -> Result<Plan, ApplyError> {
    let name = &document.metadata.name;
    let current = match api.inspect_service(name).await {
        Ok(current) => current,
        Err(e) if e.is_not_found() => return plan_create(api, document).await,
        Err(e) => return Err(e.into()),
    };
    let wanted = document.to_labels();
    let diff = label_diff(&current.labels, &wanted);
    if diff.is_empty() {
        return Ok(Plan::Unchanged {
            version: current.version,
        });
    }
    // The labels the service will have, checked as the operator reads them
    // (the current image supplies the default repository and edition).
    let mut after: BTreeMap<String, String> = current
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with(CLUSTER_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    after.extend(wanted.clone());
    let spec = match ClusterSpec::from_labels(&after, current.image.as_deref()) {
        Ok(Some(spec)) => spec,
        Ok(None) => unreachable!("the document has aerospike.cluster.replicas"),
        Err(errors) => return Err(ApplyError::Invalid(errors)),
    };
    let change = ServiceChange {
        labels_set: diff
            .iter()
            .filter_map(|d| match d {
                LabelDiff::Add { key, value } => Some((key.clone(), value.clone())),
                LabelDiff::Change { key, new, .. } => Some((key.clone(), new.clone())),
                LabelDiff::Remove { .. } => None,
            })
            .collect(),
        labels_remove: diff
            .iter()
            .filter_map(|d| match d {
                LabelDiff::Remove { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect(),
        ..ServiceChange::default()
    };
    let target = spec.image_reference(current.image.as_deref());
    let running = current.image.as_deref().map(without_digest);
    let rolls_to = (running != Some(target.as_str())).then_some(target);
    let rolls_storage = Target::desired(&spec, &current)
        .storage
        .filter(|wanted| Target::of_template(&spec, &current).storage.as_ref() != Some(wanted));
    let config_change = config_change(api, &spec, &current).await?;
    Ok(Plan::Update {
        id: current.id,
        version: current.version,
        change: Box::new(change),
        diff,
        rolls_to,
        rolls_storage,
        config_change,
    })
}

async fn plan_create<A: SwarmApi>(api: &A, document: &ClusterDocument) -> Result<Plan, ApplyError> {
    let spec = &document.spec;
    let Some(network) = &spec.network else {
        return Err(ApplyError::NoNetwork {
            service: document.metadata.name.clone(),
        });
    };
    if api.network(network).await?.is_none() {
        return Err(ApplyError::NoSuchNetwork {
            network: network.clone(),
        });
    }
    if let Some(secret) = &spec.config_secret {
        if !api.secret_exists(secret).await? {
            return Err(ApplyError::NoSuchSecret {
                secret: secret.clone(),
            });
        }
    }
    if let Some(config) = &spec.config_object {
        let to = read_config(api, config).await?;
        let eligible = api.list_nodes().await?.len();
        let probe = ServiceInfo::default();
        if let Some(problem) = liveconfig::refusal(&to, spec, &probe, eligible) {
            return Err(ApplyError::Config(problem));
        }
    }
    Ok(Plan::Create(new_service(document, network)))
}

/// Config object `name`, read from the swarm.
async fn read_config<A: SwarmApi>(api: &A, name: &str) -> Result<ConfigText, ApplyError> {
    liveconfig::read_config(api, Some(name.to_string()))
        .await?
        .ok_or_else(|| ApplyError::NoSuchConfig {
            config: name.to_string(),
        })
}

/// For a spec whose config object is not what the service's nodes run:
/// checks it as the operator will (a refusal is an error: nothing is
/// written), and says how the operator will change the nodes.
async fn config_change<A: SwarmApi>(
    api: &A,
    spec: &ClusterSpec,
    current: &ServiceInfo,
) -> Result<Option<String>, ApplyError> {
    let Some(name) = &spec.config_object else {
        return Ok(None);
    };
    let to = read_config(api, name).await?;
    let mounted = Target::of_template(spec, current).config_object;
    let live = ClusterStatus::from_labels(&current.labels)
        .config_live
        .filter(|l| l != name);
    if mounted.as_deref() == Some(name.as_str()) && live.is_none() {
        return Ok(None);
    }
    let eligible = api.list_nodes().await?.len();
    if let Some(problem) = liveconfig::refusal(&to, spec, current, eligible) {
        return Err(ApplyError::Config(problem));
    }
    let mounted = liveconfig::read_config(api, mounted).await?;
    let live = liveconfig::read_config(api, live).await?;
    Ok(Some(
        match liveconfig::plan(spec, current, &to, mounted.as_ref(), live.as_ref(), None) {
            Ok(params) if params.is_empty() => format!(
                "config object {name}: no parameter changes (comments or layout only); no node \
                 restarts"
            ),
            Ok(params) => {
                let lines: Vec<String> = params
                    .iter()
                    .map(|p| format!("{}={} (line {})", p.name, p.value, p.line))
                    .collect();
                format!(
                    "config object {name}: set live on every node with set-config, no restart: \
                     {} (dynamic on {}; a parameter a node refuses falls back to a rolling \
                     restart)",
                    lines.join(", "),
                    spec.version
                )
            }
            Err(reasons) => format!(
                "config object {name}: rolling restart, one node at a time, because {}",
                reasons.join("; ")
            ),
        },
    ))
}

/// `image@sha256:...` as swarm stores a pinned image, without the digest.
fn without_digest(image: &str) -> &str {
    image.split('@').next().unwrap_or(image)
}

/// The lines `apply` prints for `plan` before (or instead of) doing it.
pub fn render_plan(name: &str, plan: &Plan) -> Vec<String> {
    match plan {
        Plan::Create(service) => {
            let mut lines = vec![format!(
                "+ service {name}: image {}, {} replicas (at most one per node), network {}, \
                 endpoint mode dnsrr",
                service.image,
                service.replicas,
                service.networks.join(", ")
            )];
            for mount in &service.secrets {
                lines.push(format!(
                    "+ secret {} at {} (--config-file {})",
                    mount.name, mount.target, mount.target
                ));
            }
            for mount in &service.configs {
                lines.push(format!(
                    "+ config object {} at {} (--config-file {}), checked",
                    mount.name, mount.target, mount.target
                ));
            }
            for volume in &service.volumes {
                lines.push(format!(
                    "+ volume {} (node-local: each node's engine creates its own)",
                    volume.describe()
                ));
            }
            for (key, value) in &service.labels {
                lines.push(format!("+ {key}: {value:?}"));
            }
            lines
        }
        Plan::Update {
            diff,
            rolls_to,
            rolls_storage,
            config_change,
            ..
        } => {
            let mut lines: Vec<String> = diff.iter().map(|d| d.to_string()).collect();
            if let Some(config) = config_change {
                lines.push(format!("  (the operator then applies {config})"));
            }
            if let Some(image) = rolls_to {
                lines.push(format!(
                    "  (the operator then rolls the nodes to {image}, one at a time)"
                ));
            }
            if let Some(volume) = rolls_storage {
                lines.push(format!(
                    "  (the operator then rolls the volume {} into the nodes, one at a time; \
                     each starts on an empty volume and migrations refill it)",
                    volume.describe()
                ));
            }
            lines
        }
        Plan::Unchanged { .. } => Vec::new(),
    }
}

/// Carries `plan` out; returns the version of the service the status must
/// have observed for a wait to count it (0 when nothing changed: the
/// current status then counts as it is).
pub async fn execute<A: SwarmApi>(api: &A, plan: &Plan) -> Result<u64, ApplyError> {
    match plan {
        Plan::Create(service) => {
            // One write, the valve included (see `new_service`).
            let id = api.create_service(service).await?;
            Ok(api.inspect_service(&id).await?.version)
        }
        Plan::Update { id, change, .. } => Ok(update_service_retrying(api, id, change).await?),
        Plan::Unchanged { .. } => Ok(0),
    }
}

/// What a wait ended on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitEnd {
    /// Ready with the change.
    Ready(ClusterStatus),
    /// The operator reports Error.
    Error(ClusterStatus),
    /// The timeout passed; the last status seen.
    Timeout(ClusterStatus),
    /// The service was removed meanwhile.
    Gone,
}

/// Where a wait stands, from the service the status is read from.
pub fn judge(service: &ServiceInfo, min_version: u64) -> Option<WaitEnd> {
    let status = ClusterStatus::from_labels(&service.labels);
    let observed = status.observed_version.unwrap_or(0);
    match status.phase {
        Some(Phase::Ready)
            if observed >= min_version && status.ready.is_some_and(|r| r.ready == r.desired) =>
        {
            Some(WaitEnd::Ready(status))
        }
        // An Error keeps the observed version it had; one written after the
        // change (the service moved past it) is about the change.
        Some(Phase::Error) if observed >= min_version || service.version > min_version => {
            Some(WaitEnd::Error(status))
        }
        _ => None,
    }
}

/// Polls service `name` every `poll` until [`judge`] decides or `timeout`
/// passes; `progress` sees every status read.
pub async fn wait<A: SwarmApi>(
    api: &A,
    name: &str,
    min_version: u64,
    timeout: Duration,
    poll: Duration,
    mut progress: impl FnMut(&ClusterStatus),
) -> Result<WaitEnd, SwarmError> {
    let deadline = Instant::now() + timeout;
    loop {
        let service = match api.inspect_service(name).await {
            Ok(service) => with_live_status(api, service).await?,
            Err(e) if e.is_not_found() => return Ok(WaitEnd::Gone),
            Err(e) => return Err(e),
        };
        let status = ClusterStatus::from_labels(&service.labels);
        progress(&status);
        if let Some(end) = judge(&service, min_version) {
            return Ok(end);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(WaitEnd::Timeout(status));
        }
        tokio::time::sleep(poll.min(deadline - now)).await;
    }
}

/// `[=====>    ] 2/3 Upgrading rollout 1/3`: the terminal progress line.
pub fn progress_bar(status: &ClusterStatus, desired: u16) -> String {
    const WIDTH: usize = 20;
    let (done, total) = match (status.phase, status.rollout, status.ready) {
        (Some(Phase::Upgrading), Some(rollout), _) => (rollout.ready, rollout.desired),
        (_, _, Some(ready)) => (ready.ready, ready.desired),
        _ => (0, u32::from(desired)),
    };
    let filled = if total == 0 {
        0
    } else {
        (done.min(total) as usize * WIDTH) / total as usize
    };
    let bar = if filled >= WIDTH {
        "=".repeat(WIDTH)
    } else {
        format!("{}>{}", "=".repeat(filled), " ".repeat(WIDTH - filled - 1))
    };
    let ready = status
        .ready
        .map(|r| r.to_string())
        .unwrap_or_else(|| format!("0/{desired}"));
    let phase = status.phase.map(|p| p.as_str()).unwrap_or("Pending");
    let mut line = format!("[{bar}] {ready} {phase}");
    if let Some(rollout) = status.rollout {
        line.push_str(&format!(" rollout {rollout}"));
    }
    if let Some(left) = status.migrations_remaining {
        line.push_str(&format!(" migrations {left}"));
    }
    line
}

/// The line printed (off a terminal) whenever the status changes.
pub fn progress_text(status: &ClusterStatus) -> String {
    let mut line = status
        .phase
        .map(|p| p.as_str())
        .unwrap_or("Pending (no status yet)")
        .to_string();
    if let Some(ready) = status.ready {
        line.push_str(&format!(" ready {ready}"));
    }
    if let Some(rollout) = status.rollout {
        line.push_str(&format!(" rollout {rollout}"));
    }
    if let Some(left) = status.migrations_remaining {
        line.push_str(&format!(" migrations-remaining {left}"));
    }
    if let Some(message) = &status.message {
        line.push_str(&format!(": {message}"));
    }
    line
}

/// The final line of a wait and its exit code.
pub fn wait_outcome(name: &str, end: &WaitEnd, timeout: Duration) -> (String, u8) {
    let message = |s: &ClusterStatus| s.message.clone().unwrap_or_default();
    match end {
        WaitEnd::Ready(status) => (
            format!(
                "{name} is Ready ({})",
                status.ready.map(|r| r.to_string()).unwrap_or_default()
            ),
            exit::OK,
        ),
        WaitEnd::Error(status) => (
            format!("{name} reports Error: {}", message(status)),
            exit::FAILURE,
        ),
        WaitEnd::Timeout(status) => (
            format!(
                "timed out after {} waiting for {name} to be Ready; it is {}",
                show_duration(timeout),
                progress_text(status)
            ),
            exit::TIMEOUT,
        ),
        WaitEnd::Gone => (
            format!("service {name} was removed while waiting for it"),
            exit::FAILURE,
        ),
    }
}

/// `10m`, `3m30s`, `5s`, `500ms`.
fn show_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

pub async fn run(args: ApplyArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", args.file.display());
            return ExitCode::from(exit::CANNOT_CHECK);
        }
    };
    let document = match ClusterDocument::from_yaml(&text, None) {
        Ok(document) => document,
        Err(errors) => {
            for error in errors.errors() {
                eprintln!("{error}");
            }
            eprintln!(
                "invalid: {} has {} error(s); nothing was changed",
                args.file.display(),
                errors.errors().len()
            );
            return ExitCode::from(exit::FAILURE);
        }
    };
    let docker = match connect().await {
        Ok(docker) => docker,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(exit::CANNOT_CHECK);
        }
    };
    let name = document.metadata.name.clone();
    let plan = match plan(&docker, &document).await {
        Ok(plan) => plan,
        Err(error) => {
            if let ApplyError::Invalid(errors) = &error {
                for e in errors.errors() {
                    eprintln!("{e}");
                }
                eprintln!(
                    "invalid: service {name} would have an invalid spec; nothing was changed"
                );
            } else {
                eprintln!("error: {error}");
            }
            return ExitCode::from(error.exit_code());
        }
    };
    for line in render_plan(&name, &plan) {
        println!("{line}");
    }
    let verb = match &plan {
        Plan::Create(_) => "created",
        Plan::Update { .. } => "updated",
        Plan::Unchanged { .. } => {
            println!("service {name}: no change");
            ""
        }
    };
    if args.dry_run {
        if !verb.is_empty() {
            println!("service {name} would be {verb} (dry run: nothing was changed)");
        }
        return ExitCode::from(exit::OK);
    }
    let min_version = match execute(&docker, &plan).await {
        Ok(version) => version,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    if !verb.is_empty() {
        println!("service {name} {verb}");
    }
    if !args.wait {
        return ExitCode::from(exit::OK);
    }
    let terminal = std::io::stdout().is_terminal();
    let mut last = String::new();
    let desired = document.spec.replicas;
    let waited = wait(
        &docker,
        &name,
        min_version,
        args.timeout,
        Duration::from_secs(1),
        |status| {
            let mut out = std::io::stdout();
            if terminal {
                let _ = write!(out, "\r\x1b[K{}", progress_bar(status, desired));
                let _ = out.flush();
            } else {
                let line = progress_text(status);
                if line != last {
                    let _ = writeln!(out, "{line}");
                    last = line;
                }
            }
        },
    )
    .await;
    if terminal {
        println!();
    }
    match waited {
        Ok(end) => {
            let (line, code) = wait_outcome(&name, &end, args.timeout);
            if code == exit::OK {
                println!("{line}");
            } else {
                eprintln!("{line}");
            }
            ExitCode::from(code)
        }
        Err(error) if error.is_not_found() => {
            eprintln!("error: {}", no_such_service(&name));
            ExitCode::from(exit::FAILURE)
        }
        Err(error) => {
            eprintln!("error: {}", swarm_error_hint(&error));
            ExitCode::from(exit::CANNOT_CHECK)
        }
    }
}

#[cfg(test)]
mod tests {
    use aerospike_swarm_operator::spec::status::{MESSAGE, OBSERVED_VERSION, PHASE, READY};
    use aerospike_swarm_operator::swarm::{ready_worker, FakeSwarm, NetworkInfo, WriteCall};

    use super::*;

    fn doc(yaml_spec: &str) -> ClusterDocument {
        doc_labelled("", yaml_spec)
    }

    /// A document with `metadata.labels` (`yaml_labels`: its lines, empty
    /// for none).
    fn doc_labelled(yaml_labels: &str, yaml_spec: &str) -> ClusterDocument {
        let labels = if yaml_labels.is_empty() {
            String::new()
        } else {
            format!("  labels:\n{yaml_labels}")
        };
        let text = format!(
            "apiVersion: aerospike-swarm-operator/v1alpha1\nkind: AerospikeCluster\n\
             metadata:\n  name: aerospikedb\n{labels}spec:\n{yaml_spec}"
        );
        ClusterDocument::from_yaml(&text, None).unwrap()
    }

    fn full_doc() -> ClusterDocument {
        doc("  replicas: 3\n  version: \"7.1.0.0\"\n  configSecret: aerospike.conf\n  network: aerospike\n")
    }

    fn swarm() -> FakeSwarm {
        let fake = FakeSwarm::new();
        fake.add_network(NetworkInfo::overlay("net1", "aerospike"));
        fake.add_secret("aerospike.conf");
        fake
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn apply_flags_parse() {
        use super::super::{Cli, Command};
        use clap::Parser;
        let parse = |args: &[&str]| {
            let mut argv = vec!["x", "apply"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Apply(args) => args,
                other => panic!("expected apply, got {other:?}"),
            })
        };
        let args = parse(&["-f", "c.yaml"]).unwrap();
        assert!(!args.wait && !args.dry_run);
        assert_eq!(args.timeout, Duration::from_secs(600));
        let args = parse(&["-f", "c.yaml", "--wait", "--timeout", "3m"]).unwrap();
        assert!(args.wait);
        assert_eq!(args.timeout, Duration::from_secs(180));
        assert!(parse(&["-f", "c.yaml", "--dry-run"]).unwrap().dry_run);
        assert!(parse(&[]).is_err(), "-f is required");
        assert!(
            parse(&["-f", "c.yaml", "--timeout", "3m"]).is_err(),
            "--timeout needs --wait"
        );
        assert!(parse(&["-f", "c.yaml", "--wait", "--dry-run"]).is_err());
    }

    #[test]
    fn the_diff_reads_as_kubectl_diff() {
        let current = labels(&[
            ("aerospike.cluster.replicas", "3"),
            ("aerospike.cluster.version", "7.1.0.0"),
            ("aerospike.cluster.image", "aerospike/aerospike-server"),
            ("aerospike.status.phase", "Ready"),
            ("com.example.team", "db"),
        ]);
        let wanted = labels(&[
            ("aerospike.cluster.replicas", "3"),
            ("aerospike.cluster.version", "7.2.0.0"),
            ("aerospike.cluster.paused", "true"),
        ]);
        let shown: Vec<String> = label_diff(&current, &wanted)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "- aerospike.cluster.image: \"aerospike/aerospike-server\"",
                "+ aerospike.cluster.paused: \"true\"",
                "~ aerospike.cluster.version: \"7.1.0.0\" -> \"7.2.0.0\"",
            ]
        );
        assert!(label_diff(&current, &current).is_empty());

        // Other labels the document gives are added or changed; those it
        // does not give are never removed, whoever put them there.
        let mut wanted_more = wanted.clone();
        wanted_more.extend(labels(&[("com.example.team", "web"), ("team", "a")]));
        let shown: Vec<String> = label_diff(&current, &wanted_more)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "- aerospike.cluster.image: \"aerospike/aerospike-server\"",
                "+ aerospike.cluster.paused: \"true\"",
                "~ aerospike.cluster.version: \"7.1.0.0\" -> \"7.2.0.0\"",
                "~ com.example.team: \"db\" -> \"web\"",
                "+ team: \"a\"",
            ]
        );
    }

    #[tokio::test]
    async fn a_new_cluster_is_created_as_the_recipe_runs_it_with_the_valve() {
        let fake = swarm();
        let document = full_doc();
        let planned = plan(&fake, &document).await.unwrap();
        let Plan::Create(service) = &planned else {
            panic!("expected create, got {planned:?}")
        };
        assert_eq!(service.image, "aerospike/aerospike-server:7.1.0.0");
        assert_eq!(service.replicas, 3);
        assert_eq!(service.networks, ["aerospike"]);
        assert!(service.endpoint_mode_dnsrr);
        assert_eq!(
            service.secrets,
            [SecretMount {
                name: "aerospike.conf".into(),
                target: "/run/secrets/aerospike.conf".into()
            }]
        );
        assert_eq!(
            service.args,
            ["--config-file", "/run/secrets/aerospike.conf"]
        );
        assert_eq!(service.labels, document.to_labels());
        let shown = render_plan("aerospikedb", &planned);
        assert_eq!(
            shown[0],
            "+ service aerospikedb: image aerospike/aerospike-server:7.1.0.0, 3 replicas (at \
             most one per node), network aerospike, endpoint mode dnsrr"
        );
        assert!(shown.contains(&"+ aerospike.cluster.replicas: \"3\"".to_string()));
        // Planning wrote nothing: that is --dry-run.
        assert!(fake.writes().is_empty());

        let version = execute(&fake, &planned).await.unwrap();
        let created = fake.service("aerospikedb").unwrap();
        assert_eq!(created.version, version);
        assert_eq!(created.update_policy, Some(valve_policy()));
        assert_eq!(created.rollback_policy, Some(valve_policy()));
        assert_eq!(created.max_replicas_per_node, Some(1));
        // Applying the same document again changes nothing.
        assert_eq!(
            plan(&fake, &document).await.unwrap(),
            Plan::Unchanged { version }
        );
    }

    #[tokio::test]
    async fn storage_is_mounted_on_create_and_rolled_in_on_update() {
        let fake = swarm();
        let storage = "  storage:\n    volume: aerospike-data\n";
        let persistent = doc(&format!(
            "  replicas: 3\n  version: \"7.1.0.0\"\n  configSecret: aerospike.conf\n  network: aerospike\n{storage}"
        ));
        let planned = plan(&fake, &persistent).await.unwrap();
        let Plan::Create(service) = &planned else {
            panic!("expected create, got {planned:?}")
        };
        let volume = VolumeMount {
            source: "aerospike-data".into(),
            target: "/opt/aerospike/data".into(),
            ..VolumeMount::default()
        };
        assert_eq!(service.volumes, std::slice::from_ref(&volume));
        let shown = render_plan("aerospikedb", &planned);
        assert!(
            shown.contains(
                &"+ volume aerospike-data at /opt/aerospike/data (node-local: each node's \
                  engine creates its own)"
                    .to_string()
            ),
            "{shown:?}"
        );
        assert!(
            shown.contains(&"+ aerospike.cluster.storage.volume: \"aerospike-data\"".to_string())
        );
        execute(&fake, &planned).await.unwrap();
        assert_eq!(
            fake.service("aerospikedb").unwrap().volume_mounts,
            std::slice::from_ref(&volume)
        );
        assert!(matches!(
            plan(&fake, &persistent).await.unwrap(),
            Plan::Unchanged { .. }
        ));

        // A memory cluster given storage: only labels change; the diff says
        // the operator rolls the volume in.
        let fake = swarm();
        execute(&fake, &plan(&fake, &full_doc()).await.unwrap())
            .await
            .unwrap();
        fake.clear_writes();
        let planned = plan(&fake, &persistent).await.unwrap();
        let Plan::Update {
            change,
            rolls_storage,
            rolls_to,
            ..
        } = &planned
        else {
            panic!("expected update, got {planned:?}")
        };
        assert_eq!(rolls_storage.as_ref(), Some(&volume));
        assert_eq!(rolls_to, &None);
        assert!(
            !change.rolls_tasks(),
            "apply never writes the template itself"
        );
        assert_eq!(
            render_plan("aerospikedb", &planned),
            [
                "+ aerospike.cluster.storage.volume: \"aerospike-data\"",
                "  (the operator then rolls the volume aerospike-data at /opt/aerospike/data \
                 into the nodes, one at a time; each starts on an empty volume and migrations \
                 refill it)",
            ]
        );
        // Planning wrote nothing.
        assert!(fake.writes().is_empty());
    }

    #[tokio::test]
    async fn an_existing_service_gets_only_its_spec_labels_changed() {
        let fake = swarm();
        execute(&fake, &plan(&fake, &full_doc()).await.unwrap())
            .await
            .unwrap();
        let id = fake.service("aerospikedb").unwrap().id;
        fake.edit_service(&id, |s| {
            s.labels
                .insert("aerospike.status.phase".into(), "Ready".into());
            s.labels.insert("com.example.team".into(), "db".into());
        });
        fake.clear_writes();
        let upgrade = doc("  replicas: 3\n  version: \"7.2.0.0\"\n  network: aerospike\n");
        let planned = plan(&fake, &upgrade).await.unwrap();
        let shown = render_plan("aerospikedb", &planned);
        assert_eq!(
            shown,
            [
                "- aerospike.cluster.config-secret: \"aerospike.conf\"",
                "~ aerospike.cluster.version: \"7.1.0.0\" -> \"7.2.0.0\"",
                "  (the operator then rolls the nodes to aerospike/aerospike-server:7.2.0.0, \
                 one at a time)",
            ]
        );
        assert!(fake.writes().is_empty());
        execute(&fake, &planned).await.unwrap();
        let after = fake.service("aerospikedb").unwrap();
        // The image is the operator's to roll; other labels stay.
        assert_eq!(
            after.image.as_deref(),
            Some("aerospike/aerospike-server:7.1.0.0")
        );
        assert_eq!(after.labels["aerospike.cluster.version"], "7.2.0.0");
        assert!(!after.labels.contains_key("aerospike.cluster.config-secret"));
        assert_eq!(after.labels["aerospike.status.phase"], "Ready");
        assert_eq!(after.labels["com.example.team"], "db");
        let writes = fake.writes();
        assert_eq!(writes.len(), 1);
        let WriteCall::Update { change, .. } = &writes[0] else {
            panic!("expected one update, got {writes:?}")
        };
        assert!(!change.rolls_tasks());
    }

    #[tokio::test]
    async fn create_needs_a_network_that_exists_and_the_secret() {
        let fake = swarm();
        let no_network = doc("  replicas: 3\n  version: \"7.1.0.0\"\n");
        let err = plan(&fake, &no_network).await.unwrap_err();
        assert!(matches!(err, ApplyError::NoNetwork { .. }));
        assert!(err.to_string().starts_with(
            "spec.network (label aerospike.cluster.network) is required to create service \
             aerospikedb"
        ));
        let err = plan(
            &fake,
            &doc("  replicas: 3\n  version: \"7.1.0.0\"\n  network: nope\n"),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "network \"nope\" (spec.network) does not exist; create it with docker network \
             create --driver overlay --attachable nope"
        );
        let err = plan(
            &fake,
            &doc("  replicas: 3\n  version: \"7.1.0.0\"\n  network: aerospike\n  configSecret: missing\n"),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "config secret \"missing\" (spec.configSecret) does not exist; create it with \
             docker secret create missing aerospike.conf"
        );
        assert_eq!(err.exit_code(), exit::FAILURE);
        assert!(fake.writes().is_empty());
        fake.set_unreachable(true);
        let err = plan(&fake, &full_doc()).await.unwrap_err();
        assert_eq!(err.exit_code(), exit::CANNOT_CHECK);
    }

    #[tokio::test]
    async fn a_config_object_is_checked_before_anything_is_written_and_its_change_previewed() {
        const EXAMPLE: &str = include_str!("../../crd-like-specs/examples/aerospike.conf");
        let fake = swarm();
        fake.set_nodes(vec![
            ready_worker("n1"),
            ready_worker("n2"),
            ready_worker("n3"),
        ]);
        let with = |extra: &str| {
            EXAMPLE.replace(
                "replication-factor 2",
                &format!("replication-factor 2\n\t{extra}"),
            )
        };
        fake.add_config_text("conf-a", EXAMPLE);
        fake.add_config_text("conf-rack", &with("rack-id 1"));
        fake.add_config_text(
            "conf-b",
            &EXAMPLE.replace("proto-fd-max 15000", "proto-fd-max 16000"),
        );
        fake.add_config_text("conf-c", &with("partition-tree-sprigs 512"));
        let spec = |config: &str| {
            doc(&format!(
                "  replicas: 3\n  version: \"7.1.0.0\"\n  network: aerospike\n  configObject: {config}\n"
            ))
        };
        // Refused, naming the line and the fix, before anything is written.
        let err = plan(&fake, &spec("conf-rack")).await.unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("line 65: `rack-id`"), "{shown}");
        assert!(shown.contains("fix:"), "{shown}");
        assert_eq!(err.exit_code(), exit::FAILURE);
        let err = plan(&fake, &spec("nope")).await.unwrap_err();
        assert!(
            err.to_string().contains("docker config create nope"),
            "{err}"
        );
        assert!(fake.writes().is_empty());

        // Created with the config object mounted and passed to the server.
        let planned = plan(&fake, &spec("conf-a")).await.unwrap();
        let Plan::Create(service) = &planned else {
            panic!("expected create, got {planned:?}")
        };
        let at = |name: &str| SecretMount {
            name: name.into(),
            target: "/run/secrets/aerospike.conf".into(),
        };
        assert_eq!(service.configs, [at("conf-a")]);
        assert!(service.secrets.is_empty());
        assert_eq!(
            service.args,
            ["--config-file", "/run/secrets/aerospike.conf"]
        );
        execute(&fake, &planned).await.unwrap();
        assert_eq!(
            fake.service("aerospikedb").unwrap().config_mounts,
            [at("conf-a")]
        );

        // The preview of a change: live, or a rolling restart and why.
        let preview = |config: &'static str| {
            let fake = &fake;
            async move {
                let planned = plan(fake, &spec(config)).await.unwrap();
                render_plan("aerospikedb", &planned).join("\n")
            }
        };
        let live = preview("conf-b").await;
        assert!(
            live.contains(
                "set live on every node with set-config, no restart: proto-fd-max=16000 (line 34)"
            ),
            "{live}"
        );
        let rolls = preview("conf-c").await;
        assert!(
            rolls.contains("rolling restart, one node at a time, because"),
            "{rolls}"
        );
        assert!(rolls.contains("partition-tree-sprigs"), "{rolls}");
        let err = plan(&fake, &spec("conf-rack")).await.unwrap_err();
        assert!(matches!(err, ApplyError::Config(_)));
        assert_eq!(
            fake.writes().len(),
            1,
            "only the create: {:?}",
            fake.writes()
        );
    }

    fn service_with(version: u64, pairs: &[(&str, &str)]) -> ServiceInfo {
        ServiceInfo {
            name: "aerospikedb".into(),
            version,
            labels: labels(pairs),
            ..ServiceInfo::default()
        }
    }

    #[test]
    fn only_a_ready_that_observed_the_change_ends_the_wait() {
        let old_ready = service_with(
            12,
            &[(PHASE, "Ready"), (READY, "3/3"), (OBSERVED_VERSION, "9")],
        );
        assert_eq!(judge(&old_ready, 10), None);
        assert!(matches!(judge(&old_ready, 0), Some(WaitEnd::Ready(_))));
        let new_ready = service_with(
            13,
            &[(PHASE, "Ready"), (READY, "3/3"), (OBSERVED_VERSION, "10")],
        );
        assert!(matches!(judge(&new_ready, 10), Some(WaitEnd::Ready(_))));
        let upgrading = service_with(
            13,
            &[
                (PHASE, "Upgrading"),
                (READY, "3/3"),
                (OBSERVED_VERSION, "10"),
            ],
        );
        assert_eq!(judge(&upgrading, 10), None);
        // An Error status keeps its observed version; written after the
        // change, it is about the change.
        let error = service_with(
            11,
            &[
                (PHASE, "Error"),
                (MESSAGE, "config secret \"x\" does not exist"),
                (OBSERVED_VERSION, "7"),
            ],
        );
        assert!(matches!(judge(&error, 10), Some(WaitEnd::Error(_))));
        assert_eq!(judge(&error, 11), None);
    }

    #[tokio::test]
    async fn wait_ends_on_ready_error_timeout_or_removal() {
        let fake = swarm();
        let put = |pairs: &[(&str, &str)]| {
            fake.put_service(service_with(5, pairs));
        };
        put(&[(PHASE, "Meshing"), (READY, "2/3")]);
        let mut seen = Vec::new();
        let end = wait(
            &fake,
            "aerospikedb",
            5,
            Duration::from_millis(30),
            Duration::from_millis(10),
            |s| seen.push(progress_text(s)),
        )
        .await
        .unwrap();
        assert!(matches!(end, WaitEnd::Timeout(_)), "{end:?}");
        assert_eq!(seen[0], "Meshing ready 2/3");
        let (line, code) = wait_outcome("aerospikedb", &end, Duration::from_secs(5));
        assert_eq!(code, exit::TIMEOUT);
        assert_eq!(
            line,
            "timed out after 5s waiting for aerospikedb to be Ready; it is Meshing ready 2/3"
        );

        put(&[(PHASE, "Error"), (MESSAGE, "boom"), (OBSERVED_VERSION, "5")]);
        let end = wait(
            &fake,
            "aerospikedb",
            5,
            Duration::from_secs(5),
            Duration::from_millis(10),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(
            wait_outcome("aerospikedb", &end, Duration::from_secs(5)),
            ("aerospikedb reports Error: boom".to_string(), exit::FAILURE)
        );

        let end = wait(
            &fake,
            "nope",
            0,
            Duration::from_secs(5),
            Duration::from_millis(10),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(end, WaitEnd::Gone);
    }

    #[test]
    fn the_progress_bar_fills_with_ready_nodes_or_the_rollout() {
        let status = |pairs: &[(&str, &str)]| ClusterStatus::from_labels(&labels(pairs));
        assert_eq!(
            progress_bar(&status(&[(PHASE, "Meshing"), (READY, "2/3")]), 3),
            "[=============>      ] 2/3 Meshing"
        );
        assert_eq!(
            progress_bar(
                &status(&[
                    (PHASE, "Upgrading"),
                    (READY, "3/3"),
                    ("aerospike.status.rollout", "1/3")
                ]),
                3
            ),
            "[======>             ] 3/3 Upgrading rollout 1/3"
        );
        assert_eq!(
            progress_bar(&status(&[(PHASE, "Ready"), (READY, "3/3")]), 3),
            "[====================] 3/3 Ready"
        );
        assert_eq!(
            progress_bar(&status(&[]), 3),
            "[>                   ] 0/3 Pending"
        );
        assert_eq!(show_duration(Duration::from_secs(210)), "3m30s");
        assert_eq!(show_duration(Duration::from_secs(600)), "10m");
    }

    #[tokio::test]
    async fn a_new_cluster_carries_its_metadata_labels() {
        let fake = swarm();
        let document = doc_labelled(
            "    team: a\n    com.example.owner: db\n",
            "  replicas: 3\n  version: \"7.1.0.0\"\n  network: aerospike\n",
        );
        let planned = plan(&fake, &document).await.unwrap();
        let Plan::Create(service) = &planned else {
            panic!("expected create, got {planned:?}")
        };
        assert_eq!(service.labels["team"], "a");
        assert_eq!(service.labels["com.example.owner"], "db");
        assert_eq!(service.labels["aerospike.cluster.replicas"], "3");
        let shown = render_plan("aerospikedb", &planned);
        assert_eq!(
            shown[1..],
            [
                "+ aerospike.cluster.network: \"aerospike\"",
                "+ aerospike.cluster.replicas: \"3\"",
                "+ aerospike.cluster.version: \"7.1.0.0\"",
                "+ com.example.owner: \"db\"",
                "+ team: \"a\"",
            ]
        );
        assert!(fake.writes().is_empty(), "planning is --dry-run");

        let version = execute(&fake, &planned).await.unwrap();
        let created = fake.service("aerospikedb").unwrap();
        assert_eq!(created.labels, document.to_labels());
        assert_eq!(created.labels["team"], "a");
        assert_eq!(
            plan(&fake, &document).await.unwrap(),
            Plan::Unchanged { version }
        );
    }

    #[tokio::test]
    async fn an_update_adds_and_changes_only_the_listed_metadata_labels() {
        let fake = swarm();
        let spec = "  replicas: 3\n  version: \"7.1.0.0\"\n  network: aerospike\n";
        let first = doc_labelled("    team: a\n    tier: gold\n", spec);
        execute(&fake, &plan(&fake, &first).await.unwrap())
            .await
            .unwrap();
        let id = fake.service("aerospikedb").unwrap().id;
        fake.edit_service(&id, |s| {
            s.labels
                .insert("aerospike.status.phase".into(), "Ready".into());
            s.labels
                .insert("com.docker.stack.namespace".into(), "db".into());
        });
        fake.clear_writes();

        // team changes, owner is new, tier is left out: it stays, as do
        // the labels apply never set.
        let second = doc_labelled("    team: b\n    owner: ops\n", spec);
        let planned = plan(&fake, &second).await.unwrap();
        assert_eq!(
            render_plan("aerospikedb", &planned),
            ["+ owner: \"ops\"", "~ team: \"a\" -> \"b\""]
        );
        let Plan::Update { change, .. } = &planned else {
            panic!("expected update, got {planned:?}")
        };
        assert_eq!(
            change.labels_set,
            labels(&[("owner", "ops"), ("team", "b")])
        );
        assert!(change.labels_remove.is_empty());
        assert!(fake.writes().is_empty(), "planning is --dry-run");

        execute(&fake, &planned).await.unwrap();
        let after = fake.service("aerospikedb").unwrap();
        assert_eq!(after.labels["team"], "b");
        assert_eq!(after.labels["owner"], "ops");
        assert_eq!(after.labels["tier"], "gold");
        assert_eq!(after.labels["com.docker.stack.namespace"], "db");
        assert_eq!(after.labels["aerospike.status.phase"], "Ready");
        assert_eq!(after.labels["aerospike.cluster.version"], "7.1.0.0");
        let writes = fake.writes();
        assert_eq!(writes.len(), 1, "{writes:?}");
        let WriteCall::Update { change, .. } = &writes[0] else {
            panic!("expected one update, got {writes:?}")
        };
        assert!(!change.rolls_tasks());

        // Listing what the service already has changes nothing, even
        // without the labels left out before; the spec is diffed as ever.
        let version = after.version;
        assert_eq!(
            plan(&fake, &second).await.unwrap(),
            Plan::Unchanged { version }
        );
        assert_eq!(
            plan(&fake, &doc(spec)).await.unwrap(),
            Plan::Unchanged { version }
        );
        let upgrade = doc_labelled(
            "    team: b\n",
            "  replicas: 3\n  version: \"7.2.0.0\"\n  network: aerospike\n",
        );
        assert_eq!(
            render_plan("aerospikedb", &plan(&fake, &upgrade).await.unwrap()),
            [
                "~ aerospike.cluster.version: \"7.1.0.0\" -> \"7.2.0.0\"",
                "  (the operator then rolls the nodes to aerospike/aerospike-server:7.2.0.0, \
                 one at a time)",
            ]
        );
    }
}
