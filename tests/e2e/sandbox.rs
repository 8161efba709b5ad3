//! The harness around `scripts/sandbox`: bring the swarm up (or reuse it),
//! run Docker CLI commands against any node, and clean up what a test made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

/// Number of swarm nodes the end-to-end tests run on.
pub const NODES: usize = 3;
/// The sandbox's attachable overlay network.
pub const NETWORK: &str = "aerospike";

/// A sandbox swarm that is up.
pub struct Sandbox {
    state_dir: PathBuf,
    /// Whether this run brought it up (and so must take it down).
    started_here: bool,
}

static SHARED: OnceLock<Result<Sandbox, String>> = OnceLock::new();
/// Set once a test asked for the sandbox, so `finish` knows whether to act.
static USED: Mutex<bool> = Mutex::new(false);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo().join("scripts/sandbox")
}

impl Sandbox {
    /// The sandbox for this test run, brought up by the first test that
    /// needs it.
    pub fn shared() -> Result<&'static Sandbox, Failed> {
        *USED.lock().unwrap() = true;
        SHARED
            .get_or_init(Sandbox::bring_up)
            .as_ref()
            .map_err(|e| Failed::from(e.as_str()))
    }

    fn bring_up() -> Result<Sandbox, String> {
        if !is_root() {
            return Err("the end-to-end tests need root to run the sandbox swarm: run scripts/test as root, or set ASW_E2E=skip".into());
        }
        let state_dir = PathBuf::from(
            std::env::var("ASW_SANDBOX_DIR").unwrap_or_else(|_| "/var/lib/asw-sandbox".into()),
        );
        let was_up = state_dir.join("swarm-initialised-by-sandbox").exists()
            && ready_nodes().is_some_and(|n| n >= NODES);
        eprintln!(
            "e2e: {} the sandbox swarm ({NODES} nodes)",
            if was_up { "reusing" } else { "bringing up" }
        );
        // `up` is idempotent; on a sandbox that is up it only rebuilds and
        // reloads images whose binaries changed, so tests run today's code.
        let out = Command::new(script())
            .args(["up", "--nodes", &NODES.to_string()])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/sandbox up failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Sandbox {
            state_dir,
            started_here: !was_up,
        })
    }

    /// Takes the sandbox down if this run started it.
    pub fn finish() {
        if !*USED.lock().unwrap() {
            return;
        }
        let Some(Ok(sandbox)) = SHARED.get() else {
            return;
        };
        if !sandbox.started_here {
            return;
        }
        if std::env::var("ASW_KEEP_SANDBOX").is_ok_and(|v| v == "1") {
            eprintln!("e2e: ASW_KEEP_SANDBOX=1: leaving the sandbox up");
            return;
        }
        eprintln!("e2e: taking down the sandbox this run started");
        let status = Command::new(script()).arg("down").status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("e2e: scripts/sandbox down failed; run it by hand");
        }
    }

    /// The socket of the dockerd that is swarm node `node_id`.
    pub fn socket_of(&self, node_id: &str) -> Result<String, Failed> {
        self.node_sockets()?
            .remove(node_id)
            .ok_or_else(|| format!("no sandbox daemon is swarm node {node_id}").into())
    }

    /// Swarm node ID → the unix socket of that node's dockerd.
    pub fn node_sockets(&self) -> Result<BTreeMap<String, String>, Failed> {
        let mut sockets = vec!["/var/run/docker.sock".to_string()];
        for n in 2..=NODES + 8 {
            let sock = self.state_dir.join(format!("n{n}/docker.sock"));
            if sock.exists() {
                sockets.push(sock.display().to_string());
            }
        }
        let mut map = BTreeMap::new();
        for sock in sockets {
            if let Ok(id) = docker_at(&sock, &["info", "--format", "{{.Swarm.NodeID}}"]) {
                map.insert(id.trim().to_string(), sock);
            }
        }
        Ok(map)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn ready_nodes() -> Option<usize> {
    let out = docker(&["node", "ls", "--format", "{{.Status}}"]).ok()?;
    Some(out.lines().filter(|l| *l == "Ready").count())
}

fn check(args: &[&str], out: std::io::Result<Output>) -> Result<String, Failed> {
    let out = out.map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into())
    }
}

/// Runs the Docker CLI against the manager; stdout on success.
pub fn docker(args: &[&str]) -> Result<String, Failed> {
    docker_at("/var/run/docker.sock", args)
}

/// Runs the Docker CLI against the daemon on `socket`.
pub fn docker_at(socket: &str, args: &[&str]) -> Result<String, Failed> {
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{socket}"))
        .args(args)
        .output();
    check(args, out)
}

/// Polls `probe` until it returns `Some`, or fails after `timeout` with
/// the last thing it saw.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>, Failed>,
) -> Result<T, Failed> {
    let deadline = Instant::now() + timeout;
    let mut last_error = String::new();
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = format!(" (last error: {})", e.message().unwrap_or("?")),
        }
        if Instant::now() > deadline {
            return Err(
                format!("timed out after {timeout:?} waiting for {what}{last_error}").into(),
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A swarm service a test created; removed when dropped, pass or fail.
pub struct ServiceGuard(pub String);

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.0]);
    }
}

/// One task of a service as the tasks API reports it.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub id: String,
    pub node_id: String,
    pub state: String,
    pub container_id: String,
    /// Address on [`NETWORK`], without the prefix length.
    pub address: Option<String>,
}

/// The tasks of `service` whose desired state is running.
pub fn running_tasks(service: &str) -> Result<Vec<TaskView>, Failed> {
    let ids = docker(&[
        "service",
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "desired-state=running",
        service,
    ])?;
    let mut tasks = Vec::new();
    for id in ids.split_whitespace() {
        let json = docker(&["inspect", "--type", "task", id])?;
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("task {id}: bad JSON: {e}"))?;
        let task = &value[0];
        let address = overlay_address(task);
        tasks.push(TaskView {
            id: id.to_string(),
            node_id: task["NodeID"].as_str().unwrap_or_default().to_string(),
            state: task["Status"]["State"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            container_id: task["Status"]["ContainerStatus"]["ContainerID"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            address,
        });
    }
    Ok(tasks)
}

/// Runs `asinfo -v COMMAND` inside `task`'s container (aerospike-sim's
/// client mode), against `host` (default: the task's own address on
/// [`NETWORK`] — a node bound to `address eth0`, as the example config
/// binds it, does not listen on loopback); the reply value.
pub fn asinfo(
    sandbox: &Sandbox,
    task: &TaskView,
    host: Option<&str>,
    command: &str,
) -> Result<String, Failed> {
    let socket = sandbox.socket_of(&task.node_id)?;
    let mut args = vec!["exec", &task.container_id, "/aerospike-sim", "asinfo"];
    if let Some(host) = host.or(task.address.as_deref()) {
        args.extend(["-h", host]);
    }
    args.extend(["-v", command]);
    docker_at(&socket, &args)
}

/// Runs `scripts/sandbox ARGS...` (e.g. `stop-node 3`); its stdout.
pub fn sandbox_script(args: &[&str]) -> Result<String, Failed> {
    let out = Command::new(script())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/sandbox {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The swarm node ID of sandbox node `n` (2, 3, ...), asked of its dockerd.
pub fn node_id_of(n: usize) -> Result<String, Failed> {
    let state = std::env::var("ASW_SANDBOX_DIR").unwrap_or_else(|_| "/var/lib/asw-sandbox".into());
    let sock = format!("{state}/n{n}/docker.sock");
    Ok(
        docker_at(&sock, &["info", "--format", "{{.Swarm.NodeID}}"])?
            .trim()
            .to_string(),
    )
}

/// The number of swarm nodes in state Ready.
pub fn ready_node_count() -> usize {
    ready_nodes().unwrap_or(0)
}

/// Creates `name`: a plain (unmanaged) service of [`NODES`] aerospike-sim
/// tasks, at most one per node, on [`NETWORK`] with DNS round robin, as the
/// published recipe runs it. Waits until every task runs with an overlay
/// address and checks they sit on distinct nodes. A leftover of the same
/// name from a crashed run is removed first; the guard removes the service.
pub fn spread_sim_service(name: &str) -> Result<(ServiceGuard, Vec<TaskView>), Failed> {
    let _ = docker(&["service", "rm", name]);
    let replicas = NODES.to_string();
    docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        name,
        "--replicas",
        &replicas,
        "--replicas-max-per-node",
        "1",
        "--network",
        NETWORK,
        "--endpoint-mode",
        "dnsrr",
        "aerospike/aerospike-server:7.1.0.0",
    ])?;
    let guard = ServiceGuard(name.to_string());
    let tasks = wait_until(
        "every task running with an overlay address",
        Duration::from_secs(90),
        || {
            let tasks = running_tasks(name)?;
            let ready = tasks.len() == NODES
                && tasks
                    .iter()
                    .all(|t| t.state == "running" && t.address.is_some());
            Ok(ready.then_some(tasks))
        },
    )?;
    let nodes: std::collections::BTreeSet<&str> =
        tasks.iter().map(|t| t.node_id.as_str()).collect();
    if nodes.len() != NODES {
        return Err(
            format!("expected {NODES} tasks on {NODES} distinct nodes, got {tasks:?}").into(),
        );
    }
    Ok((guard, tasks))
}

/// A task's address (no prefix length) on the sandbox network, from its
/// `docker inspect --type task` JSON; for a task not on it (a stack's
/// `<stack>_aerospike`), on its first network other than `ingress`.
pub fn overlay_address(task: &serde_json::Value) -> Option<String> {
    let attachments: Vec<&serde_json::Value> = task["NetworksAttachments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["Network"]["Spec"]["Name"] != "ingress")
        .collect();
    let on_sandbox = attachments
        .iter()
        .copied()
        .filter(|a| a["Network"]["Spec"]["Name"] == NETWORK)
        .collect::<Vec<_>>();
    let chosen = if on_sandbox.is_empty() {
        attachments.into_iter().take(1).collect()
    } else {
        on_sandbox
    };
    chosen
        .into_iter()
        .flat_map(|a| a["Addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| {
            a.as_str()
                .map(|s| s.split('/').next().unwrap_or(s).to_string())
        })
        .next()
}
