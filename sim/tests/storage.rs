//! `storage-engine device`: what survives a restart, a kill and a
//! whole-cluster restart, and the cold start that reads it back. Nodes run
//! in-process ([`EmbeddedNode`], real sockets on loopback); a node's ports
//! and device file stay the same across its restarts, as a container's
//! volume does.

mod support;

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aerospike_sim::config::Config;
use aerospike_sim::events::EventLog;
use aerospike_sim::node::EmbeddedNode;
use aerospike_sim::state::Settings;
use serde_json::Value;
use support::{field, free_port, info, scratch_dir, wait_until, INTERVAL_MS, TIMEOUT};

/// What stays the same across a node's restarts: its ports and its volume.
#[derive(Clone)]
struct Spec {
    service: u16,
    heartbeat: u16,
    fabric: u16,
    /// Shared by the clones: removed when the last one drops.
    dir: std::sync::Arc<support::Scratch>,
    /// `Some(flush-max-ms)` for a device namespace, `None` for memory.
    flush_ms: Option<u64>,
}

impl Spec {
    fn new(flush_ms: Option<u64>) -> Spec {
        Spec {
            service: free_port(),
            heartbeat: free_port(),
            fabric: free_port(),
            dir: std::sync::Arc::new(scratch_dir()),
            flush_ms,
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("data/test.dat")
    }

    fn config(&self) -> Config {
        let storage = match self.flush_ms {
            Some(flush) => format!(
                "storage-engine device {{\n    file {}\n    filesize 4G\n    flush-max-ms {flush}\n  }}",
                self.file().display()
            ),
            None => "storage-engine memory".to_string(),
        };
        let text = format!(
            "service {{\n  cluster-name sim-test\n}}\n\
             network {{\n\
               service {{\n    address 127.0.0.1\n    port {}\n  }}\n\
               heartbeat {{\n    mode mesh\n    address 127.0.0.1\n    port {}\n    \
                 interval {INTERVAL_MS}\n    timeout {TIMEOUT}\n  }}\n\
               fabric {{\n    address 127.0.0.1\n    port {}\n  }}\n\
             }}\n\
             namespace test {{\n  replication-factor 2\n  {storage}\n}}\n",
            self.service, self.heartbeat, self.fabric
        );
        Config::parse(&text).unwrap()
    }
}

struct Node {
    spec: Spec,
    log: EventLog,
    store: Arc<Mutex<Vec<Value>>>,
    embedded: EmbeddedNode,
}

impl Node {
    fn start(spec: &Spec, cold_start_rate: f64) -> Node {
        let settings = Settings {
            migrate_rate: 50_000.0,
            cold_start_rate,
            ..Settings::default()
        };
        let (log, store) = EventLog::memory();
        Node {
            spec: spec.clone(),
            store,
            embedded: EmbeddedNode::start_with_log(spec.config(), settings, log.clone()),
            log,
        }
    }

    fn try_info(&self, command: &str) -> Option<String> {
        info(self.spec.service, command)
    }

    fn info(&self, command: &str) -> String {
        self.try_info(command)
            .unwrap_or_else(|| panic!("info '{command}' to port {} failed", self.spec.service))
    }

    fn ns(&self, key: &str) -> String {
        field(&self.info("namespace/test"), key)
    }

    fn tip(&self, other: &Node) {
        let reply = self.info(&format!("tip:host=127.0.0.1;port={}", other.spec.heartbeat));
        assert_eq!(reply, "ok");
    }

    fn console(&self) -> Vec<String> {
        self.log.console_lines()
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        let events = self.store.lock().unwrap();
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    }
}

/// Starts every spec, waits until each answers, and tips each node toward
/// the previous one.
fn start_all(specs: &[Spec], rate: f64) -> Vec<Node> {
    let nodes: Vec<Node> = specs.iter().map(|s| Node::start(s, rate)).collect();
    for node in &nodes {
        assert!(
            wait_until(Duration::from_secs(10), || node
                .try_info("statistics")
                .is_some_and(|s| field(&s, "cluster_is_member") == "true")),
            "node on port {} never formed its cluster",
            node.spec.service
        );
    }
    for pair in nodes.windows(2) {
        pair[1].tip(&pair[0]);
    }
    nodes
}

/// One cluster of all `nodes`, integrity, no migrations left, and the
/// same `sim_lineage` everywhere; returns the lineage.
fn settled(nodes: &[Node]) -> Option<String> {
    let mut keys = Vec::new();
    let mut lineages = Vec::new();
    for node in nodes {
        let stats = node.try_info("statistics")?;
        if field(&stats, "cluster_size") != nodes.len().to_string()
            || field(&stats, "cluster_integrity") != "true"
            || field(&stats, "migrate_partitions_remaining") != "0"
        {
            return None;
        }
        keys.push(field(&stats, "cluster_key"));
        lineages.push(node.ns("sim_lineage"));
    }
    let same = |list: &[String]| list.windows(2).all(|w| w[0] == w[1]);
    (same(&keys) && same(&lineages)).then(|| lineages[0].clone())
}

fn wait_settled(nodes: &[Node], what: &str) -> String {
    let mut lineage = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            lineage = settled(nodes);
            lineage.is_some()
        }),
        "{what}: the cluster never settled"
    );
    lineage.unwrap()
}

/// Waits for `dead_partitions` to reach its final value on every node
/// (a partition revives at the first tick after its copy comes back).
fn dead(nodes: &[Node]) -> Vec<u64> {
    std::thread::sleep(Duration::from_millis(3 * INTERVAL_MS));
    nodes
        .iter()
        .map(|n| n.ns("dead_partitions").parse().unwrap())
        .collect()
}

fn specs(count: usize, flush_ms: Option<u64>) -> Vec<Spec> {
    (0..count).map(|_| Spec::new(flush_ms)).collect()
}

#[test]
fn a_clean_whole_cluster_restart_keeps_every_partition() {
    let specs = specs(3, Some(1000));
    let nodes = start_all(&specs, 100_000.0);
    let lineage = wait_settled(&nodes, "first start");
    assert!(!lineage.is_empty());
    for node in nodes {
        let console = node.log.clone();
        node.embedded.stop();
        assert!(
            console
                .console_lines()
                .iter()
                .any(|l| l
                    .ends_with(" GMT: INFO (as): (as.c:445) finished clean shutdown - exiting")),
            "{:?}",
            console.console_lines()
        );
    }
    let nodes = start_all(&specs, 100_000.0);
    assert_eq!(
        wait_settled(&nodes, "restart"),
        lineage,
        "the data lineage survives"
    );
    assert_eq!(dead(&nodes), vec![0, 0, 0]);
    // The restarted nodes read their files back, in the server's words.
    let console = nodes[0].console();
    let line = |needle: &str| {
        console
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no '{needle}' in {console:?}"))
    };
    let begin = line("INFO (namespace): (namespace_ce.c:97) {test} beginning cold start");
    let reading = line(&format!(
        "INFO (drv_ssd): (drv_ssd.c:3347) device {}: reading device to load index",
        specs[0].file().display()
    ));
    let complete = line(&format!(
        "INFO (drv_ssd): (drv_ssd.c:3311) device {}: read complete: UNIQUE ",
        specs[0].file().display()
    ));
    let endpoint = line(&format!(
        "INFO (socket): (socket.c:839) Started client endpoint 127.0.0.1:{}",
        specs[0].service
    ));
    assert!(begin < reading && reading < complete && complete < endpoint);
    assert!(console[complete]
        .ends_with("(REPLACED 0) (OLDER 0) (EXPIRED 0) (EVICTED 0) (UNPARSABLE 0) records"));
    let begin = nodes[0].events("cold_start_begin");
    let done = nodes[0].events("cold_start_done");
    assert_eq!(begin.len(), 1);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["partitions"], begin[0]["partitions"]);
    assert_eq!(done[0]["lineage"], lineage.as_str());
    let copies = done[0]["partitions"].as_u64().unwrap();
    assert!(
        (2000..3500).contains(&copies),
        "RF 2 over 3 nodes: {copies}"
    );
}

#[test]
fn killing_every_node_after_a_flush_loses_nothing() {
    let specs = specs(3, Some(100));
    let nodes = start_all(&specs, 100_000.0);
    let lineage = wait_settled(&nodes, "first start");
    // Longer than flush-max-ms since the migrations ended.
    std::thread::sleep(Duration::from_millis(300));
    for node in nodes {
        node.embedded.kill();
    }
    let nodes = start_all(&specs, 100_000.0);
    assert_eq!(wait_settled(&nodes, "restart"), lineage);
    assert_eq!(dead(&nodes), vec![0, 0, 0]);
}

#[test]
fn killing_every_node_before_a_flush_loses_the_copies_received_since() {
    // A, B and C settle and stop cleanly: their files hold everything.
    let mut specs = specs(3, Some(50));
    let nodes = start_all(&specs, 100_000.0);
    let lineage = wait_settled(&nodes, "first start");
    for node in nodes {
        node.embedded.stop();
    }
    // They come back, C now with a long flush-max-ms, and a fourth node D
    // (also 30 s) joins: it receives copies, and the nodes that no longer
    // own a partition drop theirs once its owners have it. A's and B's
    // drops reach their files within 50 ms (given 500 ms here: a drop
    // follows the owners' heartbeats); C's and D's receipts do not (their
    // first flush is 30 s after they start, beyond any settling time on a
    // busy machine: at 5 s a run beside seven other tests flushed them).
    specs[2].flush_ms = Some(30_000);
    specs.push(Spec::new(Some(30_000)));
    let nodes = start_all(&specs, 100_000.0);
    assert_eq!(wait_settled(&nodes, "with D"), lineage);
    std::thread::sleep(Duration::from_millis(500));
    for node in nodes {
        node.embedded.kill();
    }
    // Partitions that moved from {A, B} to {C, D} are on no disk.
    let nodes = start_all(&specs, 100_000.0);
    assert_eq!(wait_settled(&nodes, "restart"), lineage);
    let lost = dead(&nodes);
    assert!(lost.iter().all(|d| *d == lost[0]), "{lost:?}");
    assert!(
        (50..1000).contains(&lost[0]),
        "about 1/18 of the partitions: {lost:?}"
    );
}

#[test]
fn a_whole_memory_cluster_restart_starts_a_new_lineage() {
    let specs = specs(3, None);
    let nodes = start_all(&specs, 100_000.0);
    let lineage = wait_settled(&nodes, "first start");
    for node in nodes {
        node.embedded.stop();
    }
    let nodes = start_all(&specs, 100_000.0);
    let after = wait_settled(&nodes, "restart");
    assert_ne!(
        after, lineage,
        "everything was lost, and no counter says so"
    );
    assert_eq!(dead(&nodes), vec![0, 0, 0]);
    assert!(nodes[0].console().iter().all(|l| !l.contains("cold start")));
}

#[test]
fn a_cold_start_keeps_every_port_closed_until_it_is_done() {
    let spec = Spec::new(Some(50));
    let node = Node::start(&spec, 100_000.0);
    assert!(wait_until(Duration::from_secs(10), || node
        .try_info("namespace/test")
        .is_some_and(|s| !field(&s, "sim_lineage").is_empty())));
    std::thread::sleep(Duration::from_millis(150));
    node.embedded.stop();

    // 4096 copies at 3,000 a second: about 1.4 s.
    let started = Instant::now();
    let node = Node::start(&spec, 3_000.0);
    let closed = |port: u16| TcpStream::connect(("127.0.0.1", port)).is_err();
    for at in [200, 700, 1200] {
        while started.elapsed() < Duration::from_millis(at) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for port in [spec.service, spec.heartbeat, spec.fabric] {
            assert!(
                closed(port),
                "port {port} listens {at} ms into the cold start"
            );
        }
    }
    assert!(wait_until(Duration::from_secs(5), || node
        .try_info("status")
        .is_some()));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1300), "{took:?}");
    assert!(!closed(spec.heartbeat) && !closed(spec.fabric));
    assert!(wait_until(Duration::from_secs(5), || node
        .try_info("namespace/test")
        .is_some_and(|s| !field(&s, "sim_lineage").is_empty())));
    let console = node.console();
    assert!(
        console.iter().any(|l| l.ends_with(&format!(
            "device {}: read complete: UNIQUE 4096 (REPLACED 0) (OLDER 0) (EXPIRED 0) (EVICTED 0) (UNPARSABLE 0) records",
            spec.file().display()
        ))),
        "{console:?}"
    );
}

#[test]
fn the_binary_flushes_on_sigterm_and_says_so_as_the_server_does() {
    let spec = Spec::new(Some(60_000));
    let config_path = spec.dir.join("aerospike.conf");
    // The node's config as text: the Spec builds it for in-process nodes.
    let text = format!(
        "service {{\n  cluster-name sim-test\n}}\n\
         network {{\n\
           service {{\n    address 127.0.0.1\n    port {}\n  }}\n\
           heartbeat {{\n    mode mesh\n    address 127.0.0.1\n    port {}\n    \
             interval {INTERVAL_MS}\n    timeout {TIMEOUT}\n  }}\n\
           fabric {{\n    address 127.0.0.1\n    port {}\n  }}\n\
         }}\n\
         namespace test {{\n  replication-factor 2\n  storage-engine device {{\n    \
           file {}\n    filesize 1G\n    flush-max-ms 60000\n  }}\n}}\n",
        spec.service,
        spec.heartbeat,
        spec.fabric,
        spec.file().display()
    );
    std::fs::write(&config_path, text).unwrap();
    let stderr_path = spec.dir.join("stderr.log");
    let mut child = std::process::Command::new(support::binary())
        .arg("--config-file")
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || info(
        spec.service,
        "namespace/test"
    )
    .is_some_and(|s| !field(&s, "sim_lineage").is_empty())));
    // Not flushed yet (flush-max-ms is a minute): the file holds no lineage.
    let before = std::fs::read_to_string(spec.file()).unwrap();
    assert!(before.contains("lineage none"), "{before}");
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let after = std::fs::read_to_string(spec.file()).unwrap();
    assert!(!after.contains("lineage none"), "{after}");
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        stderr.contains(&format!(
            " GMT: INFO (socket): (socket.c:839) Started client endpoint 127.0.0.1:{}\n",
            spec.service
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(" GMT: INFO (as): (as.c:445) finished clean shutdown - exiting\n"),
        "{stderr}"
    );
}

fn hosts(nodes: &[Node]) -> Vec<String> {
    vec![format!("127.0.0.1:{}", nodes[0].spec.service)]
}

/// `scripts/records check`: (found, missing); every key must be answered.
fn check_records(nodes: &[Node], count: usize) -> (u64, u64) {
    let mut args = support::records_args("check", &hosts(nodes), count, "k");
    args.push("--allow-missing".into());
    let (status, summary) = support::records(&args);
    assert_eq!(status, 0, "{summary}");
    assert_eq!(
        summary["errors"], 0,
        "every key must be answered: {summary}"
    );
    assert_eq!(summary["wrong"], 0, "{summary}");
    (
        summary["found"].as_u64().unwrap(),
        summary["missing"].as_u64().unwrap(),
    )
}

fn write_records(nodes: &[Node], count: usize) {
    let (status, summary) =
        support::records(&support::records_args("write", &hosts(nodes), count, "k"));
    assert_eq!(status, 0, "{summary}");
}

#[test]
fn device_records_survive_a_whole_cluster_kill_after_a_flush() {
    support::require_python_client();
    let specs = specs(3, Some(1000));
    let nodes = start_all(&specs, 100_000.0);
    let lineage = wait_settled(&nodes, "first start");
    write_records(&nodes, 2000);
    // Two flush periods after the last write.
    std::thread::sleep(Duration::from_millis(2000));
    for node in nodes {
        node.embedded.kill();
    }
    // New node ids: ownership moves, so the records read back from the
    // files migrate too.
    let nodes = start_all(&specs, 100_000.0);
    assert_eq!(wait_settled(&nodes, "restart"), lineage);
    assert_eq!(dead(&nodes), vec![0, 0, 0]);
    let (found, missing) = check_records(&nodes, 2000);
    eprintln!("device, killed 2 s after the last write: {found} found, {missing} lost");
    assert_eq!((found, missing), (2000, 0));
    let objects: u64 = nodes
        .iter()
        .map(|n| n.ns("objects").parse::<u64>().unwrap())
        .sum();
    assert_eq!(objects, 4000);
}

#[test]
fn device_records_written_since_the_last_flush_die_with_a_kill() {
    support::require_python_client();
    let specs = specs(3, Some(5000));
    let nodes = start_all(&specs, 100_000.0);
    let lineage = wait_settled(&nodes, "first start");
    // Every node has flushed its settled copies (not its records yet).
    std::thread::sleep(Duration::from_millis(5500));
    write_records(&nodes, 500);
    for node in nodes {
        node.embedded.kill();
    }
    let nodes = start_all(&specs, 100_000.0);
    assert_eq!(
        wait_settled(&nodes, "restart"),
        lineage,
        "the copies survive"
    );
    assert_eq!(dead(&nodes), vec![0, 0, 0], "no partition is counted lost");
    let (found, missing) = check_records(&nodes, 500);
    eprintln!(
        "device, killed right after the writes (flush-max-ms 5000): {found} found, {missing} lost"
    );
    assert!(missing > 0, "found {found}");
}

#[test]
fn a_device_node_that_comes_back_with_old_records_catches_up_before_it_serves() {
    support::require_python_client();
    let specs = specs(3, Some(100));
    let mut nodes = start_all(&specs, 100_000.0);
    let lineage = wait_settled(&nodes, "first start");
    write_records(&nodes, 1000);
    // Node 2 leaves cleanly with tag-0 values on its disk.
    let away = nodes.pop().unwrap();
    away.embedded.stop();
    wait_settled(&nodes, "without node 2");
    // Meanwhile every record is overwritten, and new ones are written.
    let overwrite = |tag: &str, count: usize, prefix: &str| {
        let mut args = support::records_args("write", &hosts(&nodes), count, prefix);
        args.extend(["--value-tag".to_string(), tag.to_string()]);
        let (status, summary) = support::records(&args);
        assert_eq!(status, 0, "{summary}");
    };
    overwrite("new", 1000, "k");
    overwrite("new", 300, "n");
    // Node 2 comes back from its file (new node id: new ranking).
    let back = Node::start(&specs[2], 100_000.0);
    assert!(wait_until(Duration::from_secs(10), || back
        .try_info("statistics")
        .is_some_and(|s| field(&s, "cluster_is_member") == "true")));
    back.tip(&nodes[0]);
    nodes.push(back);
    assert_eq!(wait_settled(&nodes, "node 2 back"), lineage);
    // The first node leaves: what node 2 now serves must be the new values.
    nodes.remove(0).embedded.stop();
    wait_settled(&nodes, "without node 0");
    assert_eq!(dead(&nodes), vec![0, 0]);
    for (count, prefix) in [(1000, "k"), (300, "n")] {
        let mut args = support::records_args("check", &hosts(&nodes), count, prefix);
        args.extend(["--value-tag".to_string(), "new".to_string()]);
        let (status, summary) = support::records(&args);
        assert_eq!(status, 0, "{prefix}: {summary}");
        assert_eq!(summary["found"], count, "{summary}");
    }
}
