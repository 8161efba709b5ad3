//! Helpers for the reconciler's end-to-end tests: the operator deployed as
//! a swarm service (as users run it), managed clusters, their status
//! labels, the Aerospike view of their nodes, and the operator's JSON logs.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use libtest_mimic::Failed;
use serde_json::Value;

use crate::sandbox::{asinfo, docker, running_tasks, wait_until, Sandbox, TaskView, NETWORK};

/// The image every test cluster runs (aerospike-sim).
pub const SERVER_IMAGE: &str = "aerospike/aerospike-server:7.1.0.0";
/// The operator's image (built and loaded by `scripts/sandbox up`).
pub const OPERATOR_IMAGE: &str = "aerospike-swarm-operator:dev";
/// The sysctls `deploy/operator.yml` gives the operator's container (the
/// kernel asks again for an unresolved neighbour every 100 ms, not every
/// second, so a restarted node the operator asked too early is tipped
/// sooner); every test operator runs with them, as a deployed one does.
const ARP_SYSCTLS: [&str; 2] = [
    "net.ipv4.neigh.eth0.retrans_time_ms=100",
    "net.ipv4.neigh.eth1.retrans_time_ms=100",
];

/// How long a cluster may take to converge on a slow, shared machine.
pub const CONVERGE: Duration = Duration::from_secs(180);

/// A test's operator: the swarm service `asw-op-<scope>` on the manager,
/// attached to the clusters' overlay network and selecting the clusters
/// of its test (see [`crate::scope`]); removed when dropped, pass or fail,
/// with its lease config.
pub struct Operator {
    name: String,
}

impl Operator {
    /// (Re)creates the test's operator service (removing one left over by
    /// a crashed run) and waits until its task runs.
    pub fn deploy() -> Result<Operator, Failed> {
        Operator::deploy_with(&[])
    }

    /// [`Operator::deploy`] with more `run` flags.
    pub fn deploy_with(flags: &[&str]) -> Result<Operator, Failed> {
        let create = Operator::socket_and_network()?;
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        Operator::deploy_custom(&create, flags)
    }

    /// The socket mounted, with its group as a supplementary group (the
    /// image runs as user 65532, not root: `--group` is how a service
    /// opens a socket of mode 660), and [`NETWORK`].
    fn socket_and_network() -> Result<Vec<String>, Failed> {
        use std::os::unix::fs::MetadataExt;
        let gid = std::fs::metadata("/var/run/docker.sock")
            .map_err(|e| format!("/var/run/docker.sock: {e}"))?
            .gid();
        Ok([
            "--mount",
            "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock",
            "--group",
            &gid.to_string(),
            "--network",
            NETWORK,
        ]
        .map(str::to_string)
        .to_vec())
    }

    /// [`Operator::deploy`] with `create` as the `docker service create`
    /// flags that give it Docker and a network (instead of the socket mount
    /// and [`NETWORK`]), and `flags` as more `run` flags.
    pub fn deploy_custom(create: &[&str], flags: &[&str]) -> Result<Operator, Failed> {
        let name = format!("asw-op-{}", crate::scope::current()?);
        remove_operator(&name);
        let selector = crate::scope::selector()?;
        let scope_flags = ["--cluster-selector", selector.as_str()];
        // ASW_E2E_OPERATOR_LOG: a RUST_LOG filter for the operators under
        // test (e.g. `aerospike_swarm_operator=debug`), to trace a run.
        let log_env = std::env::var("ASW_E2E_OPERATOR_LOG")
            .ok()
            .filter(|filter| !filter.is_empty())
            .map(|filter| format!("RUST_LOG={filter}"));
        let log_flags: Vec<&str> = log_env
            .iter()
            .flat_map(|env| ["--env", env.as_str()])
            .collect();
        let args: Vec<&str> = [
            "service",
            "create",
            "--detach",
            "--name",
            &name,
            "--constraint",
            "node.role==manager",
        ]
        .into_iter()
        .chain(ARP_SYSCTLS.iter().flat_map(|s| ["--sysctl", s]))
        .chain(log_flags.iter().copied())
        .chain(create.iter().copied())
        .chain([
            OPERATOR_IMAGE,
            "run",
            "--log-format",
            "json",
            "--counters-interval",
            "5s",
        ])
        .chain(scope_flags.iter().copied())
        .chain(flags.iter().copied())
        .collect();
        docker(&args)?;
        let operator = Operator { name };
        wait_until(
            "the operator's task running",
            Duration::from_secs(60),
            || {
                let tasks = running_tasks(&operator.name)?;
                Ok(tasks.iter().any(|t| t.state == "running").then_some(()))
            },
        )?;
        Ok(operator)
    }

    /// The operator's service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Restarts the operator's task (a new container; the old one gets
    /// SIGTERM), without waiting.
    pub fn restart(&self) -> Result<(), Failed> {
        docker(&["service", "update", "--detach", "--force", &self.name])?;
        Ok(())
    }

    /// Scales the operator service to `n` tasks and waits until that many
    /// operator containers run (0: all stopped).
    pub fn scale(&self, n: usize) -> Result<(), Failed> {
        scale_operator(&self.name, n)
    }

    /// Every JSON log line of every task the operator service has had
    /// (restarts included), sorted by `timestamp`.
    pub fn logs(&self) -> Result<Vec<Value>, Failed> {
        // Swarm's log broker sometimes answers with nothing, or with only
        // some tasks' lines, for a moment: read until two reads agree.
        let mut best = Vec::new();
        let mut previous = None;
        for _ in 0..10 {
            let lines = read_service_logs(&self.name)?;
            if !lines.is_empty() && previous == Some(lines.len()) {
                return Ok(lines);
            }
            previous = Some(lines.len());
            if lines.len() > best.len() {
                best = lines;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(best)
    }

    /// The action lines (`action` other than `counters`) about `cluster`.
    pub fn actions_for(&self, cluster: &str) -> Result<Vec<Value>, Failed> {
        Ok(self
            .logs()?
            .into_iter()
            .filter(|l| l["cluster"] == cluster)
            .filter(|l| l["action"].is_string())
            .collect())
    }

    /// The number of tasks the operator service has had (restarts included).
    pub fn task_count(&self) -> Result<usize, Failed> {
        task_count(&self.name)
    }
}

/// The number of tasks `service` has had (restarts included).
pub fn task_count(service: &str) -> Result<usize, Failed> {
    Ok(docker(&["service", "ps", "-q", service])?
        .split_whitespace()
        .count())
}

impl Drop for Operator {
    fn drop(&mut self) {
        // ASW_E2E_KEEP_LOGS=DIR: the operator's whole log, kept as
        // DIR/<service>.log before the service goes (with
        // ASW_E2E_OPERATOR_LOG, to trace a run afterwards).
        if let Some(dir) = std::env::var_os("ASW_E2E_KEEP_LOGS").filter(|d| !d.is_empty()) {
            if let Ok(lines) = self.logs() {
                let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
                let file = std::path::Path::new(&dir).join(format!("{}.log", self.name));
                if let Err(e) = std::fs::write(&file, text) {
                    eprintln!("cannot keep the operator's log in {}: {e}", file.display());
                }
            }
        }
        remove_operator(&self.name);
    }
}

/// One read of the JSON log lines of `service` (an operator service by
/// any name, e.g. one a stack deployed), sorted by time: from its tasks'
/// containers on the manager's engine (every operator task runs there),
/// else through swarm's log broker, which now and then answers with part
/// of the lines or hangs.
pub fn read_service_logs(service: &str) -> Result<Vec<Value>, Failed> {
    match read_container_logs(service) {
        Ok(Some(lines)) => Ok(lines),
        _ => read_brokered_logs(service),
    }
}

/// The JSON lines of every task `service` has had, read container by
/// container from the manager's engine; `None` when a task has no
/// container there (it ran on another node, or is gone).
fn read_container_logs(service: &str) -> Result<Option<Vec<Value>>, Failed> {
    let ids = docker(&["service", "ps", "-q", "--no-trunc", service])?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(None);
    }
    let mut args = vec!["inspect", "--type", "task"];
    args.extend(ids.iter().copied());
    let tasks: Value = serde_json::from_str(&docker(&args)?)
        .map_err(|e| format!("tasks of {service}: bad JSON: {e}"))?;
    let mut lines = Vec::new();
    for task in tasks.as_array().into_iter().flatten() {
        let container = task["Status"]["ContainerStatus"]["ContainerID"]
            .as_str()
            .unwrap_or_default();
        if container.is_empty() {
            // Never started (e.g. pending): nothing it could have logged.
            continue;
        }
        let out = crate::sandbox::output_within(
            Command::new("docker").args(["-H", "unix:///var/run/docker.sock", "logs", container]),
            crate::sandbox::DOCKER_CLI_LIMIT,
        );
        let Ok(out) = out.map_err(|e| e.to_string()) else {
            return Ok(None);
        };
        if !out.status.success() {
            return Ok(None);
        }
        lines.extend(json_lines(&out));
    }
    by_time(&mut lines);
    Ok(Some(lines))
}

/// The JSON object lines a `docker logs`-like command printed. The
/// operator logs to stderr, which the CLI passes on as its own: both are
/// read.
pub(crate) fn json_lines(out: &std::process::Output) -> Vec<Value> {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(Value::is_object)
        .collect()
}

/// Sorts log lines by `timestamp` (RFC 3339 in one zone and format sorts
/// as text).
fn by_time(lines: &mut [Value]) {
    lines.sort_by(|a, b| {
        a["timestamp"]
            .as_str()
            .unwrap_or_default()
            .cmp(b["timestamp"].as_str().unwrap_or_default())
    });
}

/// [`read_service_logs`] through `docker service logs`.
fn read_brokered_logs(service: &str) -> Result<Vec<Value>, Failed> {
    // The operator logs to stderr, which `docker service logs` passes
    // through on its own stderr: read both.
    let out = crate::sandbox::output_within(
        Command::new("docker").args([
            "-H",
            "unix:///var/run/docker.sock",
            "service",
            "logs",
            "--raw",
            service,
        ]),
        crate::sandbox::DOCKER_CLI_LIMIT,
    )
    .map_err(|e| format!("cannot run docker service logs: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker service logs {service} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let mut lines = json_lines(&out);
    by_time(&mut lines);
    Ok(lines)
}

/// Removes operator service `name` and waits (bounded) until its
/// containers are gone, so that no old operator acts on the next test's
/// clusters, then its lease config (`<name>.lease`), which no replica is
/// left to renew. Only this one service: others' tests are running.
fn remove_operator(name: &str) {
    let _ = docker(&["service", "rm", name]);
    let _ = wait_until(
        "the operator's containers gone",
        Duration::from_secs(60),
        || Ok((operator_containers(name)? == 0).then_some(())),
    );
    let _ = docker(&["config", "rm", &format!("{name}.lease")]);
}

/// Before any test runs: removes every service that runs the operator's
/// image (a crashed run's test operators, the demo's `asw_operator`), since
/// an operator without a selector would act on every test's clusters, and
/// the lease configs of the tests' operators. Never called while tests run.
pub fn remove_stale_operators() {
    let Ok(list) = docker(&["service", "ls", "--format", "{{.Name}} {{.Image}}"]) else {
        return;
    };
    for line in list.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(image)) = (words.next(), words.next()) else {
            continue;
        };
        if image.starts_with("aerospike-swarm-operator:") {
            eprintln!("e2e: removing the operator service {name} left over from an earlier run");
            remove_operator(name);
        }
    }
    if let Ok(configs) = docker(&["config", "ls", "--format", "{{.Name}}"]) {
        for config in configs.lines() {
            if config.starts_with("asw-op-") && config.ends_with(".lease") {
                let _ = docker(&["config", "rm", config]);
            }
        }
    }
}

/// The replicas a `scale` log line sets, read from its reason
/// ("scaling from A to B replicas", "resizing from A to B replicas" when
/// the label changed, or "putting back B" after a manual scale).
pub fn scale_target(line: &Value) -> Option<u64> {
    let reason = line["reason"].as_str()?;
    let number_after = |marker: &str| -> Option<u64> {
        let i = reason.find(marker)?;
        reason[i + marker.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    for verb in ["scaling from ", "resizing from "] {
        if let Some(i) = reason.find(verb) {
            let rest = &reason[i..];
            let to = rest.find(" to ")?;
            return rest[to + 4..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok();
        }
    }
    number_after("putting back ")
}

/// The server config every test cluster runs unless a test says
/// otherwise: the one the README ships, `crd-like-specs/examples/aerospike.conf`.
pub fn example_config() -> Result<String, Failed> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crd-like-specs/examples/aerospike.conf");
    std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// A cluster service and its config secret (`<name>-conf`), both removed
/// when dropped, pass or fail.
pub struct ClusterGuard(pub String);

impl ClusterGuard {
    fn secret(&self) -> String {
        format!("{}-conf", self.0)
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.0]);
        let _ = remove_secret(&self.secret());
    }
}

/// Removes swarm secret `secret`, waiting (bounded) until no removed
/// service refers to it any more; a secret that does not exist is gone.
fn remove_secret(secret: &str) -> Result<(), Failed> {
    wait_until(
        &format!("secret {secret} removed"),
        Duration::from_secs(30),
        || {
            let gone = docker(&["secret", "rm", secret]).is_ok()
                || docker(&["secret", "inspect", secret]).is_err();
            Ok(gone.then_some(()))
        },
    )
}

/// Creates a cluster service running [`example_config`]: see
/// [`create_cluster_with_config`].
pub fn create_cluster(
    name: &str,
    replicas: u64,
    max_one_per_node: bool,
    labels: &[(&str, &str)],
) -> Result<ClusterGuard, Failed> {
    create_cluster_with_config(
        name,
        replicas,
        max_one_per_node,
        labels,
        &example_config()?,
        &[],
    )
}

/// Creates a cluster service as the recipe does: `config` as the swarm
/// secret `<name>-conf` mounted at `/run/secrets/aerospike.conf` and named
/// in `aerospike.cluster.config-secret`, the server started with
/// `--config-file` on it. `labels` are its service labels (the spec),
/// `replicas` the service's own replica count (what a user might have
/// typed; the operator sets the real one); `extra` more `docker service
/// create` flags. It carries the test's scope label ([`crate::scope`]),
/// so that only the test's own operator manages it. Removes a leftover of
/// the same name (and its secret) first.
pub fn create_cluster_with_config(
    name: &str,
    replicas: u64,
    max_one_per_node: bool,
    labels: &[(&str, &str)],
    config: &str,
    extra: &[&str],
) -> Result<ClusterGuard, Failed> {
    create_cluster_on(
        SERVER_IMAGE,
        name,
        replicas,
        max_one_per_node,
        labels,
        config,
        extra,
    )
}

/// [`create_cluster_with_config`] on another server image.
pub fn create_cluster_on(
    image: &str,
    name: &str,
    replicas: u64,
    max_one_per_node: bool,
    labels: &[(&str, &str)],
    config: &str,
    extra: &[&str],
) -> Result<ClusterGuard, Failed> {
    let guard = ClusterGuard(name.to_string());
    let secret = guard.secret();
    let _ = docker(&["service", "rm", name]);
    let _ = remove_secret(&secret);
    let file = std::env::temp_dir().join(format!("asw-e2e-{secret}"));
    std::fs::write(&file, config).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let created = docker(&["secret", "create", &secret, &file.to_string_lossy()]);
    let _ = std::fs::remove_file(&file);
    created?;
    create_service(
        image,
        name,
        replicas,
        max_one_per_node,
        labels,
        ConfigSource::Secret(&secret),
        extra,
    )?;
    Ok(guard)
}

/// Where a test cluster's server config comes from, mounted at
/// /run/secrets/aerospike.conf and named in its spec label.
pub enum ConfigSource<'a> {
    /// A swarm secret (`aerospike.cluster.config-secret`).
    Secret(&'a str),
    /// A swarm config object (`aerospike.cluster.config-object`).
    Object(&'a str),
}

/// `docker service create` of a managed cluster `name` as users create
/// one: on the sandbox's network, DNS round robin, its config from
/// `source`, the scope's selector, `labels` and `extra` arguments.
pub fn create_service(
    image: &str,
    name: &str,
    replicas: u64,
    max_one_per_node: bool,
    labels: &[(&str, &str)],
    source: ConfigSource<'_>,
    extra: &[&str],
) -> Result<(), Failed> {
    let (flag, mount, label) = match source {
        ConfigSource::Secret(secret) => (
            "--secret",
            format!("source={secret},target=aerospike.conf"),
            format!("aerospike.cluster.config-secret={secret}"),
        ),
        ConfigSource::Object(config) => (
            "--config",
            format!("source={config},target=/run/secrets/aerospike.conf"),
            format!("aerospike.cluster.config-object={config}"),
        ),
    };
    let replicas = replicas.to_string();
    let mut args: Vec<String> = [
        "service",
        "create",
        "--detach",
        "--name",
        name,
        "--replicas",
        &replicas,
        "--network",
        NETWORK,
        "--endpoint-mode",
        "dnsrr",
        flag,
        &mount,
        "--label",
        &label,
        "--label",
        &crate::scope::selector()?,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if max_one_per_node {
        args.extend(["--replicas-max-per-node".into(), "1".into()]);
    }
    for (k, v) in labels {
        args.extend(["--label".into(), format!("{k}={v}")]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        image.into(),
        "--config-file".into(),
        "/run/secrets/aerospike.conf".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args)?;
    Ok(())
}

/// The spec labels of a plain community cluster of `replicas` nodes.
pub fn spec_labels(replicas: &str) -> Vec<(&str, &str)> {
    vec![
        ("aerospike.cluster.replicas", replicas),
        ("aerospike.cluster.version", "7.1.0.0"),
    ]
}

/// The service's labels.
pub fn labels(service: &str) -> Result<BTreeMap<String, String>, Failed> {
    let spec = service_spec(service)?;
    Ok(spec["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect())
}

/// The service's spec as JSON (`Spec` of `docker service inspect`).
pub fn service_spec(service: &str) -> Result<Value, Failed> {
    Ok(crate::sandbox::service_json(service)?["Spec"].clone())
}

/// The service's replica count (`Spec.Mode.Replicated.Replicas`).
pub fn service_replicas(service: &str) -> Result<u64, Failed> {
    service_spec(service)?["Mode"]["Replicated"]["Replicas"]
        .as_u64()
        .ok_or_else(|| format!("{service} is not a replicated service").into())
}

/// The status the operator wrote: phase, ready, message.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub phase: String,
    pub ready: String,
    pub message: String,
    pub cluster_key: String,
}

/// The status the service's labels carry (written at each safe point).
pub fn status(service: &str) -> Result<Status, Failed> {
    Ok(status_from(&labels(service)?))
}

/// The live status: the labels of the status config `<service>.status`,
/// which the operator writes on every pass that changes the status, also
/// while a node of a rollout is changing; `None` when there is none.
pub fn live_status(service: &str) -> Result<Option<Status>, Failed> {
    let name = format!("{service}.status");
    let Ok(out) = docker(&[
        "config",
        "inspect",
        "--format",
        "{{json .Spec.Labels}}",
        &name,
    ]) else {
        return Ok(None);
    };
    let labels: BTreeMap<String, String> = serde_json::from_str(out.trim())
        .map_err(|e| format!("config {name} labels {out:?}: {e}"))?;
    Ok(Some(status_from(&labels)))
}

fn status_from(labels: &BTreeMap<String, String>) -> Status {
    let get = |k: &str| {
        labels
            .get(&format!("aerospike.status.{k}"))
            .cloned()
            .unwrap_or_default()
    };
    Status {
        phase: get("phase"),
        ready: get("ready"),
        message: get("message"),
        cluster_key: get("cluster-key"),
    }
}

/// Waits until the service's status is `phase` with `ready`; the status.
pub fn wait_status(
    service: &str,
    phase: &str,
    ready: &str,
    timeout: Duration,
) -> Result<Status, Failed> {
    let mut last = Status::default();
    wait_until(
        &format!("{service} status {phase} {ready}"),
        timeout,
        || {
            last = status(service)?;
            Ok((last.phase == phase && last.ready == ready).then(|| last.clone()))
        },
    )
    .map_err(|e| {
        format!(
            "{} (last status: phase {:?}, ready {:?}, message {:?})",
            e.message().unwrap_or("?"),
            last.phase,
            last.ready,
            last.message
        )
        .into()
    })
}

/// `statistics` of one node as a map.
pub fn statistics(sandbox: &Sandbox, task: &TaskView) -> Result<BTreeMap<String, String>, Failed> {
    let reply = asinfo(sandbox, task, None, "statistics")?;
    Ok(reply
        .trim()
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A cluster as its nodes see it: the running tasks and the one key.
#[derive(Debug, Clone)]
pub struct Meshed {
    pub tasks: Vec<TaskView>,
    pub cluster_key: String,
}

impl Meshed {
    pub fn addresses(&self) -> BTreeSet<String> {
        self.tasks
            .iter()
            .filter_map(|t| t.address.clone())
            .collect()
    }
}

/// Waits until `service` has exactly `size` running tasks (ignoring any on
/// `skip_node`), on distinct nodes, each reporting `cluster_size=size` and
/// one shared `cluster_key`.
pub fn wait_meshed(
    sandbox: &Sandbox,
    service: &str,
    size: usize,
    skip_node: Option<&str>,
    timeout: Duration,
) -> Result<Meshed, Failed> {
    let mut seen = String::new();
    wait_until(
        &format!("{service}: {size} running tasks on distinct nodes in one cluster of {size}"),
        timeout,
        || {
            let tasks: Vec<TaskView> = running_tasks(service)?
                .into_iter()
                .filter(|t| Some(t.node_id.as_str()) != skip_node)
                .collect();
            let nodes: BTreeSet<&str> = tasks.iter().map(|t| t.node_id.as_str()).collect();
            if tasks.len() != size
                || nodes.len() != size
                || tasks
                    .iter()
                    .any(|t| t.state != "running" || t.address.is_none())
            {
                seen = format!(
                    "tasks {:?}",
                    tasks
                        .iter()
                        .map(|t| (&t.node_id, &t.state, &t.address))
                        .collect::<Vec<_>>()
                );
                return Ok(None);
            }
            let mut keys = BTreeSet::new();
            let mut sizes = Vec::new();
            for task in &tasks {
                let stats = statistics(sandbox, task)?;
                sizes.push(stats.get("cluster_size").cloned().unwrap_or_default());
                keys.insert(stats.get("cluster_key").cloned().unwrap_or_default());
            }
            seen = format!("cluster_size {sizes:?}, cluster_key {keys:?}");
            let size_text = size.to_string();
            if sizes.iter().all(|s| *s == size_text) && keys.len() == 1 {
                let cluster_key = keys.into_iter().next().unwrap();
                if !cluster_key.is_empty() {
                    return Ok(Some(Meshed {
                        tasks: tasks.clone(),
                        cluster_key,
                    }));
                }
            }
            Ok(None)
        },
    )
    .map_err(|e| format!("{} (last seen: {seen})", e.message().unwrap_or("?")).into())
}

/// Checks that the status's cluster key is the one the nodes report.
/// Waits until `service` is Ready `size/size` in its status and every one
/// of its `size` nodes reports that size and one cluster key, the key the
/// status names: what a user checks to call a cluster converged. The status
/// wait gets `timeout`; the nodes, which follow it within a pass, get
/// [`CONVERGE`].
pub fn wait_ready(
    sandbox: &Sandbox,
    service: &str,
    size: usize,
    timeout: Duration,
) -> Result<(Status, Meshed), Failed> {
    let status = wait_status(service, "Ready", &format!("{size}/{size}"), timeout)?;
    // What anyone who trusts Ready (a script, the rollout gate) does next.
    check_every_node_settled(sandbox, service, size)?;
    let meshed = wait_meshed(sandbox, service, size, None, CONVERGE)?;
    check_status_key(service, &status, &meshed)?;
    Ok((status, meshed))
}

/// How many times [`check_every_node_settled`] reads a node whose read
/// failed (not one whose answer was wrong).
const SETTLED_READS: usize = 3;

/// Reads every running node of `service` at once, as a script would right
/// after the status said Ready: each must report `cluster_size=size`,
/// `migrate_allowed=true`, `migrate_partitions_remaining=0`, and answer
/// `cluster-stable:size=<size>;ignore-migrations=false` with the cluster
/// key (not an error).
pub fn check_every_node_settled(
    sandbox: &Sandbox,
    service: &str,
    size: usize,
) -> Result<(), Failed> {
    let tasks: Vec<TaskView> = running_tasks(service)?
        .into_iter()
        .filter(|t| t.state == "running")
        .collect();
    let stable_command = format!("cluster-stable:size={size};ignore-migrations=false");
    type Answer = Result<(BTreeMap<String, String>, String), Failed>;
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let handles: Vec<_> = tasks
            .iter()
            .map(|task| {
                let stable_command = &stable_command;
                scope.spawn(move || {
                    // A read that fails (a 2 s timeout on a loaded machine)
                    // is asked again, as a script would; an answer that
                    // says "not settled" is not.
                    let read = || -> Answer {
                        let stats = statistics(sandbox, task)?;
                        let stable = asinfo(sandbox, task, None, stable_command)?;
                        Ok((stats, stable.trim().to_string()))
                    };
                    let mut answer = read();
                    for _ in 1..SETTLED_READS {
                        if answer.is_ok() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(300));
                        answer = read();
                    }
                    answer
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("reader panicked".into())))
            .collect()
    });
    let mut problems = Vec::new();
    for (task, answer) in tasks.iter().zip(answers) {
        let (stats, stable) = answer?;
        let get = |k: &str| stats.get(k).map(String::as_str).unwrap_or("?");
        let key = get("cluster_key");
        if get("cluster_size") != size.to_string()
            || get("migrate_allowed") != "true"
            || get("migrate_partitions_remaining") != "0"
            || !stable.eq_ignore_ascii_case(key)
        {
            problems.push(format!(
                "{:?}: cluster_size={} migrate_allowed={} migrate_partitions_remaining={} \
                 cluster-stable={stable:?} (key {key})",
                task.address,
                get("cluster_size"),
                get("migrate_allowed"),
                get("migrate_partitions_remaining"),
            ));
        }
    }
    if tasks.len() != size {
        problems.push(format!("{} running tasks, expected {size}", tasks.len()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{service} is Ready but not every node is settled: {}",
            problems.join("; ")
        )
        .into())
    }
}

/// `run` flags for a test that watches a settled cluster for writes
/// ([`check_quiet_for`]): a full resync every 10 s and a slow task poll
/// every 5 s, so that every kind of pass an idle operator makes (event,
/// poll, resync) runs several times inside [`QUIET`] instead of once a
/// minute (the defaults, 60 s and 10 s).
pub const QUIET_FLAGS: [&str; 4] = ["--resync-interval", "10s", "--poll-slow", "5s"];
/// How long a settled cluster is watched for writes under [`QUIET_FLAGS`]:
/// two full resyncs and five slow polls, with a counters line (every 5 s)
/// at each end.
pub const QUIET: Duration = Duration::from_secs(25);

/// The operator's latest `action="counters"` line.
pub fn latest_counters(operator: &Operator) -> Result<Value, Failed> {
    operator
        .logs()?
        .into_iter()
        .rev()
        .find(|l| l["action"] == "counters")
        .ok_or_else(|| "no counters line in the operator's log".into())
}

/// Checks that the operator sends no info write (tip, tip-clear, alumni
/// reset) and no Docker write for `period`, from its cumulative counters:
/// the latest counters line now, and the first one at least `period`
/// later. `what` names the situation in the failure.
pub fn check_quiet_for(operator: &Operator, period: Duration, what: &str) -> Result<(), Failed> {
    // Counters come every few seconds; the window runs from the first line
    // written after this call began to the first one written after the
    // period, so that it holds neither less nor what came before.
    let count = |lines: &[Value]| lines.iter().filter(|l| l["action"] == "counters").count();
    let next_counters = |what: &str| -> Result<Value, Failed> {
        let seen = count(&operator.logs()?);
        wait_until(what, Duration::from_secs(60), || {
            let lines = operator.logs()?;
            (count(&lines) > seen)
                .then(|| latest_counters(operator))
                .transpose()
        })
    };
    let before = next_counters("a counters line to start the quiet period")?;
    std::thread::sleep(period);
    let after = next_counters("a counters line after the quiet period")?;
    let delta = |k: &str| {
        after[k]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[k].as_u64().unwrap_or(0))
    };
    if delta("info_writes") != 0 || delta("docker_writes") != 0 {
        // Say what was done in the window, for the one who reads this.
        let from = before["timestamp"].as_str().unwrap_or_default();
        let to = after["timestamp"].as_str().unwrap_or_default();
        let done: Vec<String> = operator
            .logs()?
            .iter()
            .filter(|l| l["action"].is_string() && l["action"] != "counters")
            .filter(|l| {
                let ts = l["timestamp"].as_str().unwrap_or_default();
                ts > from && ts <= to
            })
            .map(|l| format!("{} {}: {}", l["action"], l["cluster"], l["reason"]))
            .collect();
        return Err(format!(
            "{what}: over {period:?} the operator sent {} info writes ({} tips, {} tip-clears, \
             {} alumni resets) and {} Docker writes; a settled cluster costs none. Actions: \
             {done:?}",
            delta("info_writes"),
            delta("tips"),
            delta("tip_clears"),
            delta("alumni_resets"),
            delta("docker_writes")
        )
        .into());
    }
    Ok(())
}

pub fn check_status_key(service: &str, status: &Status, meshed: &Meshed) -> Result<(), Failed> {
    if !status
        .cluster_key
        .eq_ignore_ascii_case(meshed.cluster_key.trim_start_matches("0x"))
        && !status.cluster_key.eq_ignore_ascii_case(&meshed.cluster_key)
    {
        return Err(format!(
            "{service}: status cluster-key {:?} is not the nodes' cluster_key {:?}",
            status.cluster_key, meshed.cluster_key
        )
        .into());
    }
    Ok(())
}

/// The sorted IDs of the service's tasks whose desired state is running.
pub fn task_ids(service: &str) -> Result<Vec<String>, Failed> {
    let mut ids: Vec<String> = running_tasks(service)?.into_iter().map(|t| t.id).collect();
    ids.sort();
    Ok(ids)
}

/// The actions an action log line may name.
pub const ACTIONS: &[&str] = &[
    "adopt",
    "scale",
    "place",
    "tip",
    "tip-clear",
    "alumni-reset",
    "status",
    "update-policy",
    "rollout-start",
    "rollout-next",
    "rollback",
    "adopt-template",
    "quiesce",
    "exclude",
    "unexclude",
    "attach-network",
    "config-live",
];
/// The actions of leader election (high availability), about the replica
/// that logs them (`holder`), not about a cluster.
pub const OPERATOR_ACTIONS: [&str; 3] = ["leader", "step-down", "release"];
/// The cumulative counters every `action="counters"` line carries.
pub const COUNTERS: [&str; 8] = [
    "docker_reads",
    "docker_writes",
    "info_requests",
    "tips",
    "tip_clears",
    "alumni_resets",
    "info_writes",
    "reconciles",
];

/// Whether `ts` is RFC 3339 with a fractional second and a zone.
fn rfc3339_subsecond(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 22
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
        || b[19] != b'.'
    {
        return false;
    }
    let rest = &ts[20..];
    let frac = rest.chars().take_while(char::is_ascii_digit).count();
    let zone = &rest[frac..];
    frac > 0
        && (zone == "Z"
            || (zone.len() == 6
                && (zone.starts_with('+') || zone.starts_with('-'))
                && zone.as_bytes()[3] == b':'))
}

/// Checks the JSON log contract on every line that has an `action`: a
/// sub-second RFC 3339 `timestamp`; action lines name a known action, the
/// cluster and a reason; counters lines carry the six cumulative integers.
pub fn check_log_contract(lines: &[Value]) -> Result<(), Failed> {
    for line in lines.iter().filter(|l| l.get("action").is_some()) {
        let ts = line["timestamp"].as_str().unwrap_or_default();
        if !rfc3339_subsecond(ts) {
            return Err(format!("timestamp is not RFC 3339 with sub-seconds: {line}").into());
        }
        let action = line["action"].as_str().unwrap_or_default();
        if action == "counters" {
            if let Some(k) = COUNTERS.iter().find(|k| !line[**k].is_u64()) {
                return Err(format!("counters line without integer {k}: {line}").into());
            }
            continue;
        }
        // Leader election's own lines concern the replica, not a cluster.
        if OPERATOR_ACTIONS.contains(&action) {
            if line["holder"].as_str().is_none_or(str::is_empty)
                || line["reason"].as_str().is_none_or(str::is_empty)
            {
                return Err(format!("{action} line without holder or reason: {line}").into());
            }
            continue;
        }
        if !ACTIONS.contains(&action) {
            return Err(format!("unknown action {action:?}: {line}").into());
        }
        if line["cluster"].as_str().is_none_or(str::is_empty)
            || line["reason"].as_str().is_none_or(str::is_empty)
        {
            return Err(format!("action line without cluster or reason: {line}").into());
        }
    }
    if !lines.iter().any(|l| l["action"] == "counters") {
        return Err("no counters line in the log".into());
    }
    Ok(())
}

/// Scales the operator service `name` to `n` tasks and waits until that many
/// operator containers run (0: all stopped).
pub fn scale_operator(name: &str, n: usize) -> Result<(), Failed> {
    docker(&["service", "scale", "--detach", &format!("{}={n}", name)])?;
    wait_until(
        &format!("{n} operator containers"),
        Duration::from_secs(60),
        || Ok((operator_containers(name)? == n).then_some(())),
    )
}

/// How many containers of operator service `name` run on the manager's
/// engine (where every operator task runs).
fn operator_containers(name: &str) -> Result<usize, Failed> {
    let ids = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={name}"),
    ])?;
    Ok(ids.split_whitespace().count())
}
