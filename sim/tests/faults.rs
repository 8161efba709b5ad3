//! `AEROSPIKE_SIM_FAULT`: nodes that fail the way a bad new server version
//! fails. The clustering checks run nodes in-process
//! ([`EmbeddedNode`], real sockets on loopback); the exit checks run the
//! binary, as a container would.

mod support;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aerospike_sim::config::Config;
use aerospike_sim::node::{EmbeddedNode, EXIT_ON_START_DELAY, EXIT_ON_START_MESSAGE};
use aerospike_sim::state::{Fault, Settings};
use support::{binary, config_text, field, free_port, info, scratch_dir, wait_until};

/// An in-process node on 127.0.0.1 with the tests' 50 ms x 10 heartbeat.
struct Node {
    service_port: u16,
    heartbeat_port: u16,
    embedded: EmbeddedNode,
}

impl Node {
    fn start(fault: Option<Fault>) -> Node {
        let (service_port, heartbeat_port) = (free_port(), free_port());
        let config = Config::parse(&config_text(service_port, heartbeat_port, 2)).unwrap();
        let settings = Settings {
            build: "7.2.0.0".to_string(),
            migrate_rate: 50_000.0,
            fault,
            ..Settings::default()
        };
        Node {
            service_port,
            heartbeat_port,
            embedded: EmbeddedNode::start(config, settings),
        }
    }

    fn try_info(&self, command: &str) -> Option<String> {
        info(self.service_port, command)
    }

    fn info(&self, command: &str) -> String {
        self.try_info(command)
            .unwrap_or_else(|| panic!("info '{command}' to port {} failed", self.service_port))
    }

    fn stat(&self, key: &str) -> String {
        field(&self.info("statistics"), key)
    }

    fn tip(&self, other: &Node) -> String {
        self.info(&format!("tip:host=127.0.0.1;port={}", other.heartbeat_port))
    }

    fn alone_and_member(&self) -> bool {
        self.try_info("statistics").is_some_and(|s| {
            field(&s, "cluster_is_member") == "true" && field(&s, "cluster_size") == "1"
        })
    }
}

/// Whether `nodes` agree on one cluster of `size` with integrity and no
/// migrations left; returns its key.
fn settled(nodes: &[&Node], size: usize) -> Option<String> {
    let mut keys = Vec::new();
    for node in nodes {
        let stats = node.try_info("statistics")?;
        if field(&stats, "cluster_size") != size.to_string()
            || field(&stats, "cluster_integrity") != "true"
            || field(&stats, "migrate_partitions_remaining") != "0"
        {
            return None;
        }
        keys.push(field(&stats, "cluster_key"));
    }
    keys.windows(2)
        .all(|w| w[0] == w[1])
        .then(|| keys[0].clone())
}

#[test]
fn a_never_join_node_serves_alone_and_a_healthy_cluster_tipped_toward_it_is_unaffected() {
    let a = Node::start(None);
    let b = Node::start(None);
    let n = Node::start(Some(Fault::NeverJoin));
    for node in [&a, &b, &n] {
        assert!(
            wait_until(Duration::from_secs(10), || node.alone_and_member()),
            "node on port {} never formed its cluster of one",
            node.service_port
        );
    }
    assert_eq!(b.tip(&a), "ok");
    let mut key = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            key = settled(&[&a, &b], 2);
            key.is_some()
        }),
        "the healthy pair never settled"
    );
    let key = key.unwrap();
    let generation = a.stat("cluster_generation");

    // Tips both ways, as a meshworker would send them. The never-join node
    // answers as a real server does (`ok`, then `error` for the same seed
    // again), but nothing comes of them.
    assert_eq!(a.tip(&n), "ok");
    assert_eq!(b.tip(&n), "ok");
    assert_eq!(n.tip(&a), "ok");
    assert_eq!(n.tip(&b), "ok");
    assert_eq!(n.tip(&a), "error");

    // Well past the heartbeat timeout (10 x 50 ms) and the two quiet
    // intervals a cluster change needs, the pair never moves.
    let until = Instant::now() + Duration::from_millis(2_000);
    while Instant::now() < until {
        for node in [&a, &b] {
            let stats = node.info("statistics");
            assert_eq!(field(&stats, "cluster_size"), "2", "{stats}");
            assert_eq!(field(&stats, "cluster_key"), key, "{stats}");
            assert_eq!(field(&stats, "cluster_integrity"), "true", "{stats}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.stat("cluster_generation"), generation);
    for node in [&a, &b] {
        // The other healthy node only: the never-join node is neither a
        // present peer nor an alumnus.
        assert_eq!(node.info("services").split(';').count(), 1);
        assert_eq!(node.info("services-alumni").split(';').count(), 1);
        assert_eq!(
            node.info("cluster-stable:size=2;ignore-migrations=false"),
            key
        );
    }

    // The never-join node: heartbeats do reach it (both healthy nodes dial
    // it), yet it stays a cluster of one with a key of its own.
    let stats = n.info("statistics");
    assert_eq!(field(&stats, "cluster_size"), "1", "{stats}");
    assert_eq!(field(&stats, "cluster_is_member"), "true", "{stats}");
    assert_eq!(field(&stats, "cluster_integrity"), "true", "{stats}");
    assert_eq!(
        field(&stats, "cluster_principal"),
        n.info("node"),
        "{stats}"
    );
    assert_eq!(field(&stats, "heartbeat_received_foreign"), "0", "{stats}");
    assert!(
        field(&stats, "heartbeat_connections")
            .parse::<u64>()
            .unwrap()
            >= 2,
        "{stats}"
    );
    let own_key = field(&stats, "cluster_key");
    assert_ne!(own_key, key);
    assert_eq!(
        n.info("cluster-stable:size=1;ignore-migrations=false"),
        own_key
    );
    assert_eq!(
        n.info("cluster-stable:size=3;ignore-migrations=false"),
        "ERROR:7:cluster not specified size"
    );
    assert_eq!(n.info("services"), "");
    assert_eq!(n.info("build"), "7.2.0.0");
    assert_eq!(n.info("status"), "ok");
    drop(n);
    // And its going away changes nothing either.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(settled(&[&a, &b], 2).as_deref(), Some(key.as_str()));
}

#[test]
fn an_exit_on_start_node_never_serves_and_stops_after_about_a_second() {
    let started = Instant::now();
    let node = Node::start(Some(Fault::ExitOnStart));
    while !node.embedded.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the node is still running"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", node.service_port)).is_err(),
            "the service port accepted a connection"
        );
        assert!(TcpStream::connect(("127.0.0.1", node.heartbeat_port)).is_err());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.elapsed() >= EXIT_ON_START_DELAY);
}

/// A config in a scratch directory (removed when the guard drops), its
/// path and its service port.
fn write_config() -> (support::Scratch, std::path::PathBuf, u16) {
    let dir = scratch_dir();
    let path = dir.join("aerospike.conf");
    let service_port = free_port();
    std::fs::write(&path, config_text(service_port, free_port(), 2)).unwrap();
    (dir, path, service_port)
}

#[test]
fn the_binary_with_exit_on_start_logs_a_fatal_line_and_exits_1() {
    let (_dir, path, service_port) = write_config();
    let started = Instant::now();
    let mut child = Command::new(binary())
        .arg("--config-file")
        .arg(&path)
        .env("AEROSPIKE_SIM_FAULT", "exit-on-start")
        .env("AEROSPIKE_SIM_BUILD", "7.2.0.0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still running");
        assert!(TcpStream::connect(("127.0.0.1", service_port)).is_err());
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Some(1));
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(EXIT_ON_START_MESSAGE), "{stderr}");
    assert!(stderr.contains("CRITICAL"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{stdout}");
    assert_eq!(events[0]["event"], "fatal");
    assert_eq!(events[0]["fault"], "exit-on-start");
    assert_eq!(events[0]["build"], "7.2.0.0");
    assert_eq!(events[0]["message"], EXIT_ON_START_MESSAGE);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn the_binary_refuses_an_unknown_fault() {
    let (_dir, path, _) = write_config();
    for value in ["crash", "nojoin", "exit_on_start"] {
        let output = Command::new(binary())
            .arg("--config-file")
            .arg(&path)
            .env("AEROSPIKE_SIM_FAULT", value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        for needle in ["AEROSPIKE_SIM_FAULT", "never-join", "exit-on-start", value] {
            assert!(stderr.contains(needle), "{needle} not in {stderr}");
        }
        let event: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
        assert_eq!(event["event"], "config_error");
    }
    // Empty is no fault: the node starts (and is stopped here).
    let mut child = Command::new(binary())
        .arg("--config-file")
        .arg(&path)
        .env("AEROSPIKE_SIM_FAULT", "")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "an empty AEROSPIKE_SIM_FAULT stopped the node");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
