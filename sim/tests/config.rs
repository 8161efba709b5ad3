//! Live configuration (`set-config` / `get-config`) and the edition's
//! config checks, with in-process nodes ([`EmbeddedNode`], real sockets on
//! loopback) and the binary: a live change lasts until the node restarts,
//! and a Community build refuses Enterprise-only lines at start.

mod support;

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use aerospike_sim::config::Config;
use aerospike_sim::events::EventLog;
use aerospike_sim::node::EmbeddedNode;
use aerospike_sim::state::{Edition, Settings};
use support::{binary, config_text, field, free_port, info, scratch_dir, wait_until};

fn settings(edition: Edition) -> Settings {
    Settings {
        edition,
        build: "7.1.0.23".to_string(),
        ..Settings::default()
    }
}

fn wait_for_service(port: u16) {
    assert!(
        wait_until(Duration::from_secs(10), || info(port, "status").is_some()),
        "the node on {port} never answered"
    );
}

fn ask(port: u16, command: &str) -> String {
    info(port, command).unwrap_or_else(|| panic!("info '{command}' to {port} failed"))
}

#[test]
fn live_changes_last_until_the_node_restarts() {
    let (service_port, heartbeat_port) = (free_port(), free_port());
    let text = config_text(service_port, heartbeat_port, 2);
    let config = Config::parse(&text).unwrap();
    let node = EmbeddedNode::start(config.clone(), settings(Edition::Community));
    wait_for_service(service_port);
    let service = ask(service_port, "get-config:context=service");
    assert_eq!(field(&service, "proto-fd-max"), "15000");
    let cases = [
        ("set-config:context=service;proto-fd-max=16000", "ok"),
        (
            "set-config:context=namespace;id=test;replication-factor=3",
            "ok",
        ),
        (
            "set-config:context=namespace;id=test;default-ttl=100",
            "error",
        ),
        ("set-config:context=namespace;id=test;rack-id=2", "error"),
        ("set-config:context=namespace;id=test;nsup-period=60", "ok"),
        ("set-config:context=namespace;id=test;default-ttl=100", "ok"),
    ];
    for (command, reply) in cases {
        assert_eq!(ask(service_port, command), reply, "{command}");
    }
    let service = ask(service_port, "get-config:context=service");
    assert_eq!(field(&service, "proto-fd-max"), "16000");
    let ns = ask(service_port, "get-config:context=namespace;id=test");
    assert_eq!(field(&ns, "replication-factor"), "3");
    assert_eq!(field(&ns, "default-ttl"), "100");
    assert_eq!(field(&ns, "nsup-period"), "60");
    assert_eq!(
        ask(service_port, "get-config:context=namespace;id=nosuch"),
        "ERROR::namespace not found"
    );

    // A restart (clean, then a kill) reads the config file again.
    node.stop();
    let node = EmbeddedNode::start(config.clone(), settings(Edition::Community));
    wait_for_service(service_port);
    let service = ask(service_port, "get-config:context=service");
    assert_eq!(field(&service, "proto-fd-max"), "15000");
    let ns = ask(service_port, "get-config:context=namespace;id=test");
    assert_eq!(field(&ns, "replication-factor"), "2");
    assert_eq!(field(&ns, "default-ttl"), "0");
    assert_eq!(field(&ns, "nsup-period"), "0");
    assert_eq!(
        ask(
            service_port,
            "set-config:context=service;proto-fd-max=20000"
        ),
        "ok"
    );
    node.kill();
    let node = EmbeddedNode::start(config, settings(Edition::Community));
    wait_for_service(service_port);
    let service = ask(service_port, "get-config:context=service");
    assert_eq!(field(&service, "proto-fd-max"), "15000");
    node.stop();
}

/// The tests' config with `rack-id 1` as line 23, after the namespace's
/// `replication-factor` (line 22).
fn rack_id_config(service_port: u16, heartbeat_port: u16) -> String {
    let text = config_text(service_port, heartbeat_port, 2);
    let text = text.replace(
        "  replication-factor 2\n",
        "  replication-factor 2\n  rack-id 1\n",
    );
    assert_eq!(text.lines().nth(22), Some("  rack-id 1"), "{text}");
    text
}

#[test]
fn community_refuses_rack_id_at_start_and_enterprise_takes_it() {
    let (service_port, heartbeat_port) = (free_port(), free_port());
    let config = Config::parse(&rack_id_config(service_port, heartbeat_port)).unwrap();
    let (log, events) = EventLog::memory();
    let started = Instant::now();
    let node =
        EmbeddedNode::start_with_log(config.clone(), settings(Edition::Community), log.clone());
    while !node.is_finished() {
        assert!(started.elapsed() < Duration::from_secs(5), "still running");
        assert!(TcpStream::connect(("127.0.0.1", service_port)).is_err());
        std::thread::sleep(Duration::from_millis(10));
    }
    let lines = log.console_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with(
            " GMT: CRITICAL (config): (cfg_ce.c:73) line 23 :: 'rack-id' is enterprise-only"
        ),
        "{lines:?}"
    );
    let events = events.lock().unwrap().clone();
    let refused = events
        .iter()
        .find(|e| e["event"] == "config_error")
        .expect("a config_error event");
    assert_eq!(refused["line"], 23);
    assert_eq!(refused["message"], "'rack-id' is enterprise-only");
    assert!(
        !events.iter().any(|e| e["event"] == "started"),
        "{events:?}"
    );
    drop(node);

    let node = EmbeddedNode::start(config, settings(Edition::Enterprise));
    wait_for_service(service_port);
    let ns = ask(service_port, "get-config:context=namespace;id=test");
    assert_eq!(field(&ns, "rack-id"), "1");
    assert_eq!(
        ask(
            service_port,
            "set-config:context=namespace;id=test;rack-id=2"
        ),
        "ok"
    );
    node.stop();
}

#[test]
fn the_community_binary_exits_1_on_rack_id_with_the_critical_line() {
    let dir = scratch_dir();
    let path = dir.join("aerospike.conf");
    let service_port = free_port();
    std::fs::write(&path, rack_id_config(service_port, free_port())).unwrap();
    let output = Command::new(binary())
        .arg("--config-file")
        .arg(&path)
        .env("AEROSPIKE_SIM_BUILD", "7.1.0.23")
        .env("AEROSPIKE_SIM_EDITION", "community")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let critical = stderr
        .lines()
        .find(|l| l.contains("CRITICAL"))
        .unwrap_or_else(|| panic!("no CRITICAL line in {stderr}"));
    assert!(
        critical.ends_with(
            " GMT: CRITICAL (config): (cfg_ce.c:73) line 23 :: 'rack-id' is enterprise-only"
        ),
        "{critical}"
    );
    let event: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(event["event"], "config_error");
    assert_eq!(event["line"], 23);
}
