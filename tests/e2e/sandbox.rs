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
        // reloads images whose inputs changed, so tests run today's code.
        // `scripts/test` has built them in this run already (its `images`
        // tier) and says so: then not even the binaries are looked at.
        let mut up = vec!["up".to_string(), "--nodes".into(), NODES.to_string()];
        if std::env::var("ASW_IMAGES_BUILT").is_ok_and(|v| v == "1") {
            up.push("--no-images".into());
        }
        let out = output_within(Command::new(script()).args(&up), Duration::from_secs(900))
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

    /// The socket of the dockerd that is swarm node `node_id`. Every
    /// daemon is asked for its node ID once, and again only when a node is
    /// not known (one a test added: a re-created node has a new ID).
    pub fn socket_of(&self, node_id: &str) -> Result<String, Failed> {
        static SOCKETS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
        if let Some(socket) = SOCKETS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node_id)
        {
            return Ok(socket.clone());
        }
        let fresh = self.node_sockets()?;
        let mut cached = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
        *cached = fresh;
        cached
            .get(node_id)
            .cloned()
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
    output_within(Command::new("id").arg("-u"), Duration::from_secs(30))
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

/// How long one Docker CLI call may take before it is killed. No call of
/// the suite's takes a second in a healthy sandbox; `docker service logs`
/// is known to hang when an engine it asks stops answering.
pub const DOCKER_CLI_LIMIT: Duration = Duration::from_secs(120);

/// Runs `command` to its end, its output captured, or kills it (by the
/// PID this call started) once it has run for `limit`: a hung child
/// fails its test with its name instead of hanging the suite.
pub fn output_within(command: &mut Command, limit: Duration) -> std::io::Result<Output> {
    use std::process::Stdio;
    let what = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    wait_within(child, &what, limit)
}

/// Waits for a spawned `child` (named `what` in the error) to exit within
/// `limit`, collecting what it writes to its piped stdout and stderr;
/// kills it (by the PID it was spawned with) when it does not.
pub fn wait_within(
    mut child: std::process::Child,
    what: &str,
    limit: Duration,
) -> std::io::Result<Output> {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let pid = child.id();
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{what} (pid {pid}) had not ended after {limit:?}: killed it"),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Runs the Docker CLI against the manager; stdout on success.
pub fn docker(args: &[&str]) -> Result<String, Failed> {
    docker_at("/var/run/docker.sock", args)
}

/// Runs the Docker CLI against the daemon on `socket`.
pub fn docker_at(socket: &str, args: &[&str]) -> Result<String, Failed> {
    let mut command = Command::new("docker");
    command.arg("-H").arg(format!("unix://{socket}")).args(args);
    check(args, output_within(&mut command, DOCKER_CLI_LIMIT))
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
        // Its status config, should its operator be gone before it.
        let _ = docker(&["config", "rm", &format!("{}.status", self.0)]);
    }
}

/// A named volume on every sandbox node, removed when dropped (after the
/// services that mount it: declare it before them). Each node's engine
/// creates its own when a task first mounts it, so there is nothing to
/// create.
pub struct VolumeGuard {
    name: String,
    sockets: BTreeMap<String, String>,
}

impl VolumeGuard {
    /// A guard for the volume `name` on every node of `sandbox`.
    pub fn new(sandbox: &Sandbox, name: &str) -> Result<VolumeGuard, Failed> {
        Ok(VolumeGuard {
            name: name.to_string(),
            sockets: sandbox.node_sockets()?,
        })
    }
}

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        for socket in self.sockets.values() {
            // The containers of a removed service go a moment later.
            let _ = wait_until(
                &format!("volume {} removed at {socket}", self.name),
                Duration::from_secs(30),
                || {
                    let gone = docker_at(socket, &["volume", "rm", &self.name]).is_ok()
                        || docker_at(socket, &["volume", "inspect", &self.name]).is_err();
                    Ok(gone.then_some(()))
                },
            );
        }
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

impl TaskView {
    /// The view of one task of the tasks API's JSON.
    pub fn from_json(task: &serde_json::Value) -> TaskView {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        TaskView {
            id: text(&task["ID"]),
            node_id: text(&task["NodeID"]),
            state: text(&task["Status"]["State"]),
            container_id: text(&task["Status"]["ContainerStatus"]["ContainerID"]),
            address: overlay_address(task),
        }
    }
}

/// `GET path` on the manager's Engine API (the socket the Docker CLI
/// uses), the JSON body of a 2xx answer; an error with the status and the
/// engine's message otherwise. The tests' wait loops and samplers read the
/// swarm several times a second, several tests at once: a request on the
/// socket costs a fraction of a `docker` CLI process (measured: the CLI's
/// start-up was 40% of the machine's CPU with four tests side by side).
pub fn api_get(path: &str) -> Result<serde_json::Value, Failed> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect("/var/run/docker.sock")
        .map_err(|e| format!("cannot reach the manager's engine: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    // HTTP/1.0: the engine closes the connection after the answer and
    // sends the body without chunked encoding.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| format!("GET {path}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: no HTTP header in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path}: bad status line {head:?}"))?;
    if !(200..300).contains(&code) {
        return Err(format!(
            "GET {path}: {code} {}",
            String::from_utf8_lossy(body).trim()
        )
        .into());
    }
    serde_json::from_slice(body).map_err(|e| format!("GET {path}: bad JSON: {e}").into())
}

/// `text` percent-encoded for a query string.
pub fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The tasks of `service` whose desired state is running, as the tasks
/// API returns them (one request).
pub fn running_task_json(service: &str) -> Result<Vec<serde_json::Value>, Failed> {
    let filters = serde_json::json!({"service": [service], "desired-state": ["running"]});
    let tasks = api_get(&format!(
        "/tasks?filters={}",
        query_escape(&filters.to_string())
    ))?;
    Ok(tasks.as_array().cloned().unwrap_or_default())
}

/// `GET /services/{service}` with defaults filled in, as `docker service
/// inspect` asks for it: its `Spec`, `Version`, `UpdateStatus`, ...
pub fn service_json(service: &str) -> Result<serde_json::Value, Failed> {
    api_get(&format!(
        "/services/{}?insertDefaults=true",
        query_escape(service)
    ))
}

/// The tasks of `service` whose desired state is running, sorted by id.
pub fn running_tasks(service: &str) -> Result<Vec<TaskView>, Failed> {
    let mut tasks: Vec<TaskView> = running_task_json(service)?
        .iter()
        .map(TaskView::from_json)
        .collect();
    tasks.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(tasks)
}

/// Sends the info command `command` to `task`'s node at `host` (default:
/// the task's own address on [`NETWORK`] — a node bound to `address eth0`,
/// as the example config binds it, does not listen on loopback), from
/// inside the task's own network namespace, and returns the reply value
/// with a newline, as `asinfo -v` prints it. See [`overlay_info`].
pub fn asinfo(
    sandbox: &Sandbox,
    task: &TaskView,
    host: Option<&str>,
    command: &str,
) -> Result<String, Failed> {
    let host = host
        .or(task.address.as_deref())
        .ok_or_else(|| format!("task {} has no address yet", task.id))?;
    let value = overlay_info(sandbox, task, host, command, Duration::from_secs(2))?;
    Ok(format!("{value}\n"))
}

/// The host PID of a task's container (every sandbox node shares the
/// host's PID namespace), asked of its node's dockerd (at `socket`) once
/// per container.
pub fn container_pid(socket: &str, task: &TaskView) -> Result<u32, Failed> {
    static PIDS: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());
    if task.container_id.is_empty() {
        return Err(format!("task {} has no container yet", task.id).into());
    }
    if let Some(pid) = PIDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&task.container_id)
    {
        return Ok(*pid);
    }
    let pid: u32 = docker_at(
        socket,
        &["inspect", "--format", "{{.State.Pid}}", &task.container_id],
    )?
    .trim()
    .parse()
    .map_err(|e| format!("container {}: no PID: {e}", task.container_id))?;
    if pid == 0 {
        return Err(format!("container {} is not running", task.container_id).into());
    }
    PIDS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(task.container_id.clone(), pid);
    Ok(pid)
}

/// One info request to `host:3000` from inside `task`'s container's
/// network namespace: what `docker exec TASK asinfo -h HOST -v COMMAND`
/// asks, without starting a process in the container (an exec costs the
/// node's dockerd, containerd and runc tens of milliseconds of CPU; the
/// tests sample several nodes five times a second, several tests at
/// once). A helper thread enters the namespace (`setns`) only to open the
/// connection; the socket stays in that namespace. The reply value,
/// trimmed; an error when the node does not answer within `timeout`.
pub fn overlay_info(
    sandbox: &Sandbox,
    task: &TaskView,
    host: &str,
    command: &str,
    timeout: Duration,
) -> Result<String, Failed> {
    let socket = sandbox.socket_of(&task.node_id)?;
    overlay_info_at(&socket, task, host, command, timeout)
}

/// [`overlay_info`] for a task whose node's dockerd is at `socket`.
pub fn overlay_info_at(
    socket: &str,
    task: &TaskView,
    host: &str,
    command: &str,
    timeout: Duration,
) -> Result<String, Failed> {
    let pid = container_pid(socket, task)?;
    let address: std::net::SocketAddr = format!("{host}:3000")
        .parse()
        .map_err(|e| format!("bad node address {host}: {e}"))?;
    let stream = connect_in_netns(pid, address, timeout)
        .map_err(|e| format!("info {command:?} to {host} (in task {}): {e}", task.id))?;
    info_over(stream, command, timeout)
        .map_err(|e| format!("info {command:?} to {host}: {e}").into())
}

/// Connects to `address` from the network namespace of process `pid`.
fn connect_in_netns(
    pid: u32,
    address: std::net::SocketAddr,
    timeout: Duration,
) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || {
        // SAFETY: setns on this short-lived thread only, with a namespace
        // file descriptor that is open for the whole call.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        std::net::TcpStream::connect_timeout(&address, timeout)
    })
    .join()
    .map_err(|_| std::io::Error::other("the connecting thread panicked"))?
}

/// Sends one info command on `stream` and reads its value (the frame:
/// version 2, type 1, 48-bit big-endian length; the reply's body is
/// `command<TAB>value<LF>`).
fn info_over(
    mut stream: std::net::TcpStream,
    command: &str,
    timeout: Duration,
) -> Result<String, String> {
    use std::io::{Read, Write};
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let body = format!("{command}\n");
    let len = body.len() as u64;
    let mut frame = vec![2u8, 1];
    frame.extend_from_slice(&len.to_be_bytes()[2..]);
    frame.extend_from_slice(body.as_bytes());
    stream.write_all(&frame).map_err(|e| e.to_string())?;
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).map_err(|e| e.to_string())?;
    let mut len_bytes = [0u8; 8];
    len_bytes[2..].copy_from_slice(&header[2..]);
    let len = u64::from_be_bytes(len_bytes);
    if header[0] != 2 || header[1] != 1 || len > 16 * 1024 * 1024 {
        return Err(format!("not an info reply: header {header:?}"));
    }
    let mut reply = vec![0u8; len as usize];
    stream.read_exact(&mut reply).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&reply);
    let line = text.lines().next().unwrap_or_default();
    let value = line.split_once('\t').map(|(_, v)| v).unwrap_or(line);
    Ok(value.trim().to_string())
}

/// Runs `scripts/sandbox ARGS...` (e.g. `stop-node 3`); its stdout.
pub fn sandbox_script(args: &[&str]) -> Result<String, Failed> {
    let out = output_within(Command::new(script()).args(args), Duration::from_secs(300))
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
