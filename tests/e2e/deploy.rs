//! Deployment as a new user does it: the operator from `deploy/operator.yml`
//! and a cluster from the example stack file, both by `docker stack
//! deploy`. The example stack puts its cluster on `<stack>_aerospike`, a
//! network the operator's stack knows nothing of: the operator attaches
//! itself to it — or, with `ASW_NO_ATTACH_NETWORKS=true`, says in the
//! cluster's status exactly which command would.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use libtest_mimic::Failed;
use serde_json::Value;

use crate::operator::{read_service_logs, status, task_count, wait_ready, wait_status, CONVERGE};
use crate::sandbox::{docker, wait_until, Sandbox};
use crate::TestResult;

/// The operator's stack; its service is `<stack>_operator`.
const OPERATOR_STACK: &str = "asw-e2e";
/// The example cluster's stack; its service is `<stack>_aerospikedb` on
/// `<stack>_aerospike`.
const CLUSTER_STACK: &str = "st-e2e";

/// The example cluster's service (`crd-like-specs/examples/cluster.yaml`),
/// which the test applies next to the stack's.
const EXAMPLE: &str = "aerospikedb";

/// Removes both stacks and the example cluster when dropped (pass or fail), and before the test (a
/// crashed run's), waiting until their services and networks are gone.
struct Stacks;

impl Stacks {
    fn clean() -> Stacks {
        remove_stacks();
        Stacks
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        remove_stacks();
    }
}

fn remove_stacks() {
    let _ = docker(&["service", "rm", EXAMPLE]);
    let _ = docker(&["stack", "rm", CLUSTER_STACK, OPERATOR_STACK]);
    let _ = wait_until(
        "the test stacks' services and networks gone",
        Duration::from_secs(90),
        || {
            let left = docker(&[
                "service",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={CLUSTER_STACK}"),
            ])? + &docker(&[
                "service",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={OPERATOR_STACK}"),
            ])?;
            let networks = docker(&["network", "ls", "-q", "--filter", "name=st-e2e_"])?;
            let containers = docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={OPERATOR_STACK}"),
            ])?;
            Ok((left.trim().is_empty()
                && networks.trim().is_empty()
                && containers.trim().is_empty())
            .then_some(()))
        },
    );
    // The lease the operator made for itself (not part of the stack), once
    // no replica is left to renew or release it.
    let _ = docker(&["config", "rm", &format!("{OPERATOR_STACK}_operator.lease")]);
}

/// The group id of the manager's Docker socket: what `DOCKER_GID` must be
/// for the operator (user 65532, not root) to open it.
fn socket_gid() -> Result<String, Failed> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/var/run/docker.sock")
        .map_err(|e| format!("/var/run/docker.sock: {e}"))?;
    Ok(meta.gid().to_string())
}

/// `docker stack deploy --resolve-image never -c FILE STACK` with `env`,
/// and `DOCKER_GID` (the socket's group) as a user deploying it sets it.
fn stack_deploy(file: &str, stack: &str, env: &[(&str, &str)]) -> Result<(), Failed> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gid = socket_gid()?;
    let out = crate::sandbox::output_within(
        Command::new("docker")
            .args(["-H", "unix:///var/run/docker.sock", "stack", "deploy"])
            .args(["--resolve-image", "never", "--detach=true", "-c"])
            .arg(repo.join(file))
            .arg(stack)
            .env("DOCKER_GID", &gid)
            .envs(env.iter().copied()),
        crate::sandbox::DOCKER_CLI_LIMIT,
    )
    .map_err(|e| format!("docker stack deploy: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker stack deploy -c {file} {stack} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// The network ids of `service`'s task template.
fn network_ids(service: &str) -> Result<Vec<String>, Failed> {
    let json = docker(&[
        "service",
        "inspect",
        "-f",
        "{{json .Spec.TaskTemplate.Networks}}",
        service,
    ])?;
    let value: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    Ok(value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["Target"].as_str().map(str::to_string))
        .collect())
}

/// Waits until `service` has a running task.
fn wait_running(service: &str) -> Result<(), Failed> {
    wait_until(
        &format!("a running task of {service}"),
        Duration::from_secs(90),
        || {
            let states = docker(&[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.CurrentState}}",
                service,
            ])?;
            Ok(states
                .lines()
                .any(|l| l.starts_with("Running"))
                .then_some(()))
        },
    )
}

/// `deploy/operator.yml` with attaching forbidden, then allowed, and the
/// example stack file (`crd-like-specs/examples/stack.yml`) as is:
///
/// 1. forbidden: the cluster's status is Error and names the exact
///    command (`docker service update --network-add st-e2e_aerospike
///    asw-e2e_operator`); the operator's service is not touched;
/// 2. allowed (the operator stack redeployed without the setting): the
///    operator logs `attach-network`, its service joins the network
///    (restarting its task once), and the cluster converges to Ready 3/3
///    with every node settled;
/// 3. the example cluster (`crd-like-specs/examples/cluster.yaml`) by
///    `apply --wait`, on the network `aerospike`: the operator attaches
///    itself to that one as well, and both clusters are Ready.
pub fn the_operator_stack_attaches_itself_to_the_example_stacks_network_and_converges_it(
    sandbox: &Sandbox,
) -> TestResult {
    let _stacks = Stacks::clean();
    let operator = format!("{OPERATOR_STACK}_operator");
    let cluster = format!("{CLUSTER_STACK}_aerospikedb");
    let network = format!("{CLUSTER_STACK}_aerospike");
    // The operator selects this test's clusters only (the stack file's
    // ASW_CLUSTER_SELECTOR, as a user running several operators sets it),
    // so that it runs beside other tests; each cluster gets the label.
    let selector = crate::scope::selector()?;

    // 1. Attaching forbidden.
    let forbid = [
        ("OPERATOR_REPLICAS", "1"),
        ("ASW_NO_ATTACH_NETWORKS", "true"),
        ("ASW_CLUSTER_SELECTOR", selector.as_str()),
    ];
    stack_deploy("deploy/operator.yml", OPERATOR_STACK, &forbid)?;
    wait_running(&operator)?;
    // Not root: the image's user, with the socket's group.
    let user = docker(&[
        "service",
        "inspect",
        "-f",
        "{{.Spec.TaskTemplate.ContainerSpec.User}}",
        &operator,
    ])?;
    let want = format!("65532:{}", socket_gid()?);
    if user.trim() != want {
        return Err(format!("the operator runs as {:?}, not {want}", user.trim()).into());
    }
    stack_deploy("crd-like-specs/examples/stack.yml", CLUSTER_STACK, &[])?;
    // A service-level label: it restarts no task.
    docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        &selector,
        &cluster,
    ])?;
    let command = format!("docker service update --network-add {network} {operator}");
    wait_until(
        "the Error status naming the command",
        Duration::from_secs(120),
        || {
            let s = status(&cluster)?;
            Ok((s.phase == "Error" && s.message.contains(&command)).then_some(()))
        },
    )?;
    let network_id = docker(&["network", "inspect", "-f", "{{.ID}}", &network])?;
    let network_id = network_id.trim().to_string();
    if network_ids(&operator)?.contains(&network_id) {
        return Err("the operator attached itself although it was forbidden".into());
    }
    if task_count(&operator)? != 1 {
        return Err("the operator's task restarted although nothing was attached".into());
    }

    // 2. Attaching allowed.
    stack_deploy(
        "deploy/operator.yml",
        OPERATOR_STACK,
        &[
            ("OPERATOR_REPLICAS", "1"),
            ("ASW_CLUSTER_SELECTOR", selector.as_str()),
        ],
    )?;
    wait_ready(sandbox, &cluster, 3, CONVERGE)?;
    if !network_ids(&operator)?.contains(&network_id) {
        return Err(format!("the operator's service is not on {network}").into());
    }
    let attach: Vec<Value> = read_service_logs(&operator)?
        .into_iter()
        .filter(|l| l["action"] == "attach-network" && l["cluster"] == cluster.as_str())
        .collect();
    let Some(line) = attach.first() else {
        return Err("no attach-network line in the operator's log".into());
    };
    let reason = line["reason"].as_str().unwrap_or_default();
    if !reason.contains("restarts") || !reason.contains(&network) {
        return Err(format!("the attach line does not say what happens: {reason}").into());
    }
    // Forbidden run, the redeploy, the attach: three tasks, not more.
    let tasks = task_count(&operator)?;
    println!("  operator tasks: {tasks}; attach lines: {}", attach.len());
    if tasks > 3 {
        return Err(format!("the operator restarted {tasks} times; expected 3 tasks").into());
    }
    wait_status(&cluster, "Ready", "3/3", Duration::from_secs(10))?;

    // 3. The example cluster, applied from its YAML spec, on the sandbox's
    // network "aerospike": the operator attaches itself to that one too.
    // It shares the config secret aerospike.conf (the same file) with the
    // stack's cluster. The document is the example's, with the scope label
    // under `metadata.labels`.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(repo.join("crd-like-specs/examples/cluster.yaml"))
        .map_err(|e| format!("cannot read the example cluster.yaml: {e}"))?;
    let (label, scope) = selector.split_once('=').unwrap_or_default();
    let labelled = example.replacen(
        &format!("  name: {EXAMPLE}\n"),
        &format!("  name: {EXAMPLE}\n  labels:\n    {label}: {scope}\n"),
        1,
    );
    if labelled == example {
        return Err("the example cluster.yaml has no `  name: aerospikedb` line to label".into());
    }
    let file = std::env::temp_dir().join("asw-e2e-deploy-cluster.yaml");
    std::fs::write(&file, labelled).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let out = crate::sandbox::output_within(
        Command::new(env!("CARGO_BIN_EXE_aerospike-swarm-operator"))
            .args(["apply", "-f"])
            .arg(&file)
            .args(["--wait", "--timeout", "3m"])
            .env("DOCKER_HOST", "unix:///var/run/docker.sock"),
        Duration::from_secs(240),
    )
    .map_err(|e| format!("cannot run apply: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "apply --wait of the example cluster exited {:?}: {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    wait_ready(sandbox, EXAMPLE, 3, CONVERGE)?;
    // Both clusters stay Ready side by side.
    wait_status(&cluster, "Ready", "3/3", Duration::from_secs(10))?;
    let attached: Vec<String> = read_service_logs(&operator)?
        .into_iter()
        .filter(|l| l["action"] == "attach-network")
        .filter_map(|l| l["cluster"].as_str().map(str::to_string))
        .collect();
    if !attached.iter().any(|c| c == EXAMPLE) {
        return Err(format!("no attach-network for {EXAMPLE}: {attached:?}").into());
    }
    Ok(())
}
