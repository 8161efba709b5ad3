//! Helpers for tests that run real `aerospike-sim` processes on loopback.
//!
//! Every node gets its own free ports and its own config file and event log
//! in a temporary directory. A [`SimNode`] kills its process when dropped, so
//! a failing test leaves nothing running; the directory is removed unless
//! the test failed.

#![allow(dead_code)] // each test file uses a different subset

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Heartbeat interval used by the tests: 50 ms x timeout 10 = 0.5 s drop-out.
pub const INTERVAL_MS: u64 = 50;
pub const TIMEOUT: u64 = 10;

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_aerospike-sim")
}

/// A port nothing listens on right now, and that no other test process
/// holds.
///
/// Ports come from 20000-29999, below Linux's ephemeral range (32768 and
/// up), so the source port of some outgoing connection cannot take one
/// between this check and the node's bind. A free bind alone is not enough
/// when tests run side by side: another process may have picked the same
/// port and not bound it yet. So each port is claimed by creating a file
/// named after it (create-new is atomic) holding the claimer's pid; a claim
/// whose process is gone is taken over.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let claims = std::env::temp_dir().join("aerospike-sim-test-ports");
    fs::create_dir_all(&claims).expect("create port claims dir");
    let base = (std::process::id() as usize % 500) * 20;
    loop {
        let offset = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 10_000;
        let port = 20_000 + offset as u16;
        if claim(&claims.join(port.to_string())) && TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// Claims one port's file for this process: true if it is now ours.
fn claim(path: &std::path::Path) -> bool {
    use std::io::Write;
    for _ in 0..2 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut file) => {
                let _ = write!(file, "{}", std::process::id());
                return true;
            }
            Err(_) => {
                let owner = fs::read_to_string(path).unwrap_or_default();
                let alive = owner.trim().parse::<u32>().is_ok_and(process_alive);
                // Empty: a claimer between create and write; leave it be.
                if alive || owner.is_empty() {
                    return false;
                }
                let _ = fs::remove_file(path);
            }
        }
    }
    false
}

/// A fresh directory for one node's (or one test's) files, removed when
/// the returned guard drops, unless the test is failing: a failed test's
/// config and event log stay for a post-mortem. The first call of a test
/// process also removes the directories of earlier test processes that are
/// gone (a crashed or killed run), by the pid in their names.
pub fn scratch_dir() -> Scratch {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_dead_scratch_dirs);
    let dir = std::env::temp_dir().join(format!(
        "{SCRATCH_PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).expect("create scratch dir");
    Scratch(dir)
}

/// What every scratch directory's name starts with, before `<pid>-<n>`.
const SCRATCH_PREFIX: &str = "aerospike-sim-test-";

/// A directory [`scratch_dir`] made; a `Path` by deref.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Removes `aerospike-sim-test-<pid>-<n>` directories whose process is
/// gone. Only names of exactly that form: the port claims directory and
/// anything else in the temp dir are left alone.
fn remove_dead_scratch_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = scratch_dir_pid(&name.to_string_lossy()) else {
            continue;
        };
        if !process_alive(pid) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` exists (a port claim's or a scratch directory's
/// owner).
fn process_alive(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

/// The pid in a scratch directory's name, `None` for any other name.
pub fn scratch_dir_pid(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(SCRATCH_PREFIX)?.split_once('-')?;
    n.parse::<usize>().ok()?;
    pid.parse().ok()
}

/// A mesh config on 127.0.0.1, with no seeds. Tests never let a node
/// advertise the machine's real interfaces: every address is explicit.
pub fn config_text(service_port: u16, heartbeat_port: u16, rf: u32) -> String {
    let fabric_port = free_port();
    addressed_config(
        &Addressing {
            service: "127.0.0.1".into(),
            heartbeat: "127.0.0.1".into(),
            fabric: "127.0.0.1".into(),
        },
        (service_port, heartbeat_port, fabric_port),
        rf,
    )
}

/// The `address` line of each listener.
#[derive(Clone, Debug)]
pub struct Addressing {
    pub service: String,
    pub heartbeat: String,
    pub fabric: String,
}

/// A mesh config with the given addresses and (service, heartbeat, fabric)
/// ports.
pub fn addressed_config(addressing: &Addressing, ports: (u16, u16, u16), rf: u32) -> String {
    let (service_port, heartbeat_port, fabric_port) = ports;
    let Addressing {
        service,
        heartbeat,
        fabric,
    } = addressing;
    format!(
        "service {{\n  cluster-name sim-test\n}}\n\
         network {{\n\
           service {{\n    address {service}\n    port {service_port}\n  }}\n\
           heartbeat {{\n    mode mesh\n    address {heartbeat}\n    port {heartbeat_port}\n    \
             interval {INTERVAL_MS}\n    timeout {TIMEOUT}\n  }}\n\
           fabric {{\n    address {fabric}\n    port {fabric_port}\n  }}\n\
         }}\n\
         namespace test {{\n  replication-factor {rf}\n  storage-engine memory\n}}\n"
    )
}

/// How to start a node.
#[derive(Clone)]
pub struct Options {
    pub edition: &'static str,
    pub migrate_rate: u32,
    pub rf: u32,
    pub build: Option<&'static str>,
    /// `AEROSPIKE_SIM_INTERFACES` (the test seam).
    pub interfaces: Option<&'static str>,
    /// Address lines and the IP the test reaches the node on; default:
    /// everything on 127.0.0.1.
    pub addressing: Option<(Addressing, &'static str)>,
    /// Fabric port; default: a free one.
    pub fabric_port: Option<u16>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            edition: "community",
            migrate_rate: 5000,
            rf: 2,
            build: None,
            interfaces: None,
            addressing: None,
            fabric_port: None,
        }
    }
}

/// A running sim process.
pub struct SimNode {
    child: Child,
    pub service_port: u16,
    pub heartbeat_port: u16,
    /// The address tests reach the node on.
    pub host: String,
    pub log_path: PathBuf,
    /// Its config and event log; removed after the process is killed.
    _dir: Scratch,
}

impl SimNode {
    /// Starts a node and waits until it has formed its own cluster of one,
    /// as a real node does when nobody else is around: its partitions then
    /// form a data lineage of their own, and joining others means
    /// migrations.
    pub fn start(options: &Options) -> SimNode {
        let service_port = free_port();
        let heartbeat_port = free_port();
        let dir = scratch_dir();
        let config_path = dir.join("aerospike.conf");
        let (addressing, host) = options.addressing.clone().unwrap_or((
            Addressing {
                service: "127.0.0.1".into(),
                heartbeat: "127.0.0.1".into(),
                fabric: "127.0.0.1".into(),
            },
            "127.0.0.1",
        ));
        let fabric_port = options.fabric_port.unwrap_or_else(free_port);
        fs::write(
            &config_path,
            addressed_config(
                &addressing,
                (service_port, heartbeat_port, fabric_port),
                options.rf,
            ),
        )
        .expect("write config");
        let log_path = dir.join("events.jsonl");
        let log = fs::File::create(&log_path).expect("create log");
        let mut command = Command::new(binary());
        command
            .arg("--config-file")
            .arg(&config_path)
            .arg("--foreground")
            .env("AEROSPIKE_SIM_EDITION", options.edition)
            .env(
                "AEROSPIKE_SIM_MIGRATE_RATE",
                options.migrate_rate.to_string(),
            )
            .stdout(log)
            .stderr(Stdio::null());
        if let Some(build) = options.build {
            command.env("AEROSPIKE_SIM_BUILD", build);
        }
        if let Some(interfaces) = options.interfaces {
            command.env("AEROSPIKE_SIM_INTERFACES", interfaces);
        }
        let child = command.spawn().expect("spawn aerospike-sim");
        let node = SimNode {
            child,
            service_port,
            heartbeat_port,
            host: host.to_string(),
            log_path,
            _dir: dir,
        };
        assert!(
            wait_until(Duration::from_secs(10), || node
                .try_info("statistics")
                .is_some_and(|s| field(&s, "cluster_is_member") == "true")),
            "node on port {service_port} never formed its cluster; log:\n{}",
            node.log()
        );
        node
    }

    /// Sends one command; `None` on any connection error.
    pub fn try_info(&self, command: &str) -> Option<String> {
        info_at(&self.host, self.service_port, command)
    }

    /// Sends one command; panics with the node's log on error.
    pub fn info(&self, command: &str) -> String {
        self.try_info(command).unwrap_or_else(|| {
            panic!(
                "info '{command}' to port {} failed; log:\n{}",
                self.service_port,
                self.log()
            )
        })
    }

    /// One field of `statistics`.
    pub fn stat(&self, key: &str) -> String {
        field(&self.info("statistics"), key)
    }

    /// One field of `namespace/test`.
    pub fn ns_stat(&self, key: &str) -> String {
        field(&self.info("namespace/test"), key)
    }

    /// `tip` this node towards `other`.
    pub fn tip(&self, other: &SimNode) -> String {
        self.info(&format!(
            "tip:host={};port={}",
            other.host, other.heartbeat_port
        ))
    }

    /// The event log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Events of one kind, parsed.
    pub fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["event"] == kind)
            .collect()
    }

    /// Kills the process at once (SIGKILL), as a crashed host would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "node ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the process, in kB, from /proc.
    pub fn rss_kb(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Then `_dir` drops: removed unless the test failed.
    }
}

/// One info request over loopback with the crate's client.
pub fn info(port: u16, command: &str) -> Option<String> {
    info_at("127.0.0.1", port, command)
}

/// One info request to `host` (a loopback address) with the crate's client.
pub fn info_at(host: &str, port: u16, command: &str) -> Option<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime
        .block_on(aerospike_sim::client::request_one(
            host,
            port,
            command,
            Duration::from_secs(2),
        ))
        .ok()
}

/// The value of `key` in a `k=v;k=v` reply.
pub fn field(reply: &str, key: &str) -> String {
    reply
        .split(';')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("{key} missing from {reply}"))
        .to_string()
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether every node reports `size` members, integrity, and one cluster key.
pub fn formed(nodes: &[&SimNode], size: usize) -> bool {
    let mut keys = Vec::new();
    for node in nodes {
        let Some(stats) = node.try_info("statistics") else {
            return false;
        };
        if field(&stats, "cluster_size") != size.to_string()
            || field(&stats, "cluster_integrity") != "true"
        {
            return false;
        }
        keys.push(field(&stats, "cluster_key"));
    }
    keys.windows(2).all(|w| w[0] == w[1])
}

/// Whether every node reports no remaining migrations.
pub fn migrations_done(nodes: &[&SimNode]) -> bool {
    nodes.iter().all(|n| {
        n.try_info("statistics")
            .is_some_and(|s| field(&s, "migrate_partitions_remaining") == "0")
    })
}

/// Starts `count` nodes and joins them with tips (each tips the previous
/// one: adjacency lists must do the rest), waiting for one cluster with no
/// migrations left.
pub fn start_cluster(count: usize, options: &Options) -> Vec<SimNode> {
    let nodes: Vec<SimNode> = (0..count).map(|_| SimNode::start(options)).collect();
    for pair in nodes.windows(2) {
        assert_eq!(pair[1].tip(&pair[0]), "ok");
    }
    let refs: Vec<&SimNode> = nodes.iter().collect();
    assert!(
        wait_until(Duration::from_secs(20), || formed(&refs, count)
            && migrations_done(&refs)),
        "cluster of {count} never settled; first log:\n{}",
        nodes[0].log()
    );
    nodes
}

/// A rolling restart of the first two nodes of a 3-node cluster, done
/// carefully or not: node 0 killed and replaced by an empty node (tipped
/// toward node 2); then node 1 killed, after the migrations that refill
/// the replacement (`wait_for_migrations`) or at once. Returns the
/// replacement once it and node 2 are one cluster of two with no
/// migrations left.
pub fn restart_two_of_three(
    nodes: &mut [SimNode],
    options: &Options,
    wait_for_migrations: bool,
) -> SimNode {
    nodes[0].kill();
    let replacement = SimNode::start(options);
    assert_eq!(replacement.tip(&nodes[2]), "ok");
    let three: Vec<&SimNode> = vec![&replacement, &nodes[1], &nodes[2]];
    assert!(
        wait_until(Duration::from_secs(10), || formed(&three, 3)),
        "the replacement never joined; its log:\n{}",
        replacement.log()
    );
    if wait_for_migrations {
        assert!(
            wait_until(Duration::from_secs(30), || migrations_done(&three)),
            "the migrations to the replacement never finished; its log:\n{}",
            replacement.log()
        );
    }
    nodes[1].kill();
    let two: Vec<&SimNode> = vec![&replacement, &nodes[2]];
    assert!(
        wait_until(Duration::from_secs(30), || formed(&two, 2)
            && migrations_done(&two)),
        "the two survivors never settled; the replacement's log:\n{}",
        replacement.log()
    );
    replacement
}

/// Fails the test, saying how to fix it, when `python3` cannot import the
/// official client (`pip install aerospike`; `scripts/test` installs it).
/// A test that needs the client never passes without it.
pub fn require_python_client() {
    let available = Command::new("python3")
        .args(["-c", "import aerospike"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        available,
        "python3 cannot import the official Aerospike client: pip install aerospike \
         (scripts/test installs it)"
    );
}

/// Runs `scripts/records` with `args`; returns its exit status and the
/// JSON summary it printed.
pub fn records(args: &[String]) -> (i32, serde_json::Value) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/records");
    let output = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("run scripts/records");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "scripts/records {args:?} printed no JSON\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), summary)
}

/// Arguments of `scripts/records <command>` for `count` keys `prefix0..`
/// in namespace `test`, set `s`, seeded with `hosts` (`ip:port`), with
/// 3 s timeouts (the machine running the tests may be busy).
pub fn records_args(command: &str, hosts: &[String], count: usize, prefix: &str) -> Vec<String> {
    let mut args = vec![command.to_string()];
    for host in hosts {
        args.push("--host".into());
        args.push(host.clone());
    }
    args.extend([
        "--count".to_string(),
        count.to_string(),
        "--prefix".into(),
        prefix.into(),
        "--timeout-ms".into(),
        "3000".into(),
    ]);
    args
}

/// Decodes standard base64 (as in `replicas`); `None` when malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let take = chunk.len().saturating_sub(1);
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// The partitions a node is a replica (master or prole) of in namespace
/// `test`, from its `replicas` reply.
pub fn replica_partitions(replicas: &str) -> std::collections::BTreeSet<usize> {
    let entry = replicas
        .split(';')
        .find_map(|e| e.strip_prefix("test:"))
        .unwrap_or_else(|| panic!("no namespace test in {replicas}"));
    let mut pids = std::collections::BTreeSet::new();
    for map in entry.split(',').skip(2) {
        let bytes = base64_decode(map).expect("base64 replicas map");
        for pid in 0..4096 {
            if bytes
                .get(pid / 8)
                .is_some_and(|b| b & (0x80 >> (pid % 8)) != 0)
            {
                pids.insert(pid);
            }
        }
    }
    pids
}
