//! The data plane with the official Python client (through
//! `scripts/records`) against real sim processes on loopback: records
//! written to a 3-node RF 2 cluster are read back from one seed, survive
//! one node leaving (stopped or killed), and are lost exactly where the
//! sim's own oracle (`dead_partitions`) says partitions died. Also:
//! malformed AS_MSG frames close the connection without harming the node.
//!
//! The Python tests skip, with a message, when `python3` or the
//! `aerospike` package is missing (`pip install aerospike`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aerospike_sim::msg::{self, Op, Request};
use aerospike_sim::record::Particle;
use support::{
    formed, migrations_done, records, records_args, replica_partitions, restart_two_of_three,
    start_cluster, wait_until, Options, SimNode,
};

fn host(node: &SimNode) -> String {
    format!("{}:{}", node.host, node.service_port)
}

fn settle(nodes: &[&SimNode], size: usize, what: &str) {
    assert!(
        wait_until(Duration::from_secs(30), || formed(nodes, size)
            && migrations_done(nodes)),
        "{what}: the cluster of {size} never settled; log:\n{}",
        nodes[0].log()
    );
}

fn count(summary: &serde_json::Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing from {summary}"))
}

fn write(hosts: &[String], n: usize, prefix: &str) {
    let (status, summary) = records(&records_args("write", hosts, n, prefix));
    assert_eq!(status, 0, "{summary}");
    assert_eq!(count(&summary, "written"), n as u64, "{summary}");
}

fn check(hosts: &[String], n: usize, prefix: &str) -> serde_json::Value {
    let mut args = records_args("check", hosts, n, prefix);
    args.push("--allow-missing".into());
    let (status, summary) = records(&args);
    assert_eq!(status, 0, "{summary}");
    assert_eq!(
        count(&summary, "errors"),
        0,
        "every key must be answered: {summary}"
    );
    assert_eq!(count(&summary, "wrong"), 0, "{summary}");
    summary
}

fn ns_count(nodes: &[&SimNode], key: &str) -> u64 {
    nodes
        .iter()
        .map(|n| n.ns_stat(key).parse::<u64>().unwrap())
        .sum()
}

#[test]
fn the_python_client_puts_and_gets_two_thousand_records_from_one_seed() {
    support::require_python_client();
    let nodes = start_cluster(3, &Options::default());
    let refs: Vec<&SimNode> = nodes.iter().collect();
    let seed = vec![host(&nodes[0])];
    write(&seed, 2000, "k");
    let summary = check(&[host(&nodes[2])], 2000, "k");
    assert_eq!(count(&summary, "found"), 2000, "{summary}");
    // Two copies of each record, one of them the master's.
    assert!(wait_until(Duration::from_secs(2), || ns_count(
        &refs, "objects"
    ) == 4000));
    assert_eq!(ns_count(&refs, "master_objects"), 2000);
    assert_eq!(ns_count(&refs, "prole_objects"), 2000);
    assert_eq!(ns_count(&refs, "client_write_success"), 2000);
    assert_eq!(ns_count(&refs, "client_read_success"), 2000);
    // A second run with another tag overwrites (generation 2).
    let mut args = records_args("write", &seed, 50, "k");
    args.extend(["--value-tag".to_string(), "two".to_string()]);
    assert_eq!(records(&args).0, 0);
    let mut args = records_args("check", &seed, 50, "k");
    args.extend(["--value-tag".to_string(), "two".to_string()]);
    let (status, summary) = records(&args);
    assert_eq!((status, count(&summary, "found")), (0, 50), "{summary}");
    // The old tag is now "wrong", and check says so with its exit status.
    let (status, summary) = records(&records_args("check", &seed, 50, "k"));
    assert_eq!((status, count(&summary, "wrong")), (1, 50), "{summary}");
    assert_eq!(ns_count(&refs, "objects"), 4000);
}

#[test]
fn one_node_stopped_then_one_killed_loses_no_record() {
    support::require_python_client();
    let mut nodes = start_cluster(3, &Options::default());
    let seed = vec![host(&nodes[0])];
    write(&seed, 2000, "k");
    // A clean stop (SIGTERM) of one node.
    assert!(nodes[2].terminate().success());
    let survivors: Vec<&SimNode> = nodes[..2].iter().collect();
    settle(&survivors, 2, "after the stop");
    let summary = check(&seed, 2000, "k");
    assert_eq!(count(&summary, "found"), 2000, "{summary}");
    assert_eq!(ns_count(&survivors[..1], "objects"), 2000);
    // A new node joins and receives its share of the records; then an old
    // one is killed.
    let fresh = SimNode::start(&Options::default());
    assert_eq!(fresh.tip(&nodes[0]), "ok");
    let three: Vec<&SimNode> = vec![&nodes[0], &nodes[1], &fresh];
    settle(&three, 3, "with the new node");
    assert!(fresh.ns_stat("objects").parse::<u64>().unwrap() > 0);
    // Copies no longer owned go a heartbeat after their owners have them.
    assert!(
        wait_until(Duration::from_secs(2), || ns_count(&three, "objects")
            == 4000),
        "objects: {}",
        ns_count(&three, "objects")
    );
    nodes[1].kill();
    let two: Vec<&SimNode> = vec![&nodes[0], &fresh];
    settle(&two, 2, "after the kill");
    let summary = check(&[host(&fresh)], 2000, "k");
    assert_eq!(count(&summary, "found"), 2000, "{summary}");
    assert_eq!(nodes[0].ns_stat("dead_partitions"), "0");
}

#[test]
fn two_nodes_killed_at_once_lose_the_records_of_the_partitions_both_held() {
    support::require_python_client();
    let mut nodes = start_cluster(3, &Options::default());
    let seed = vec![host(&nodes[0])];
    write(&seed, 2000, "k");
    // Before the kill: the partitions nodes 1 and 2 are the only replicas of.
    let held_by_1 = replica_partitions(&nodes[1].info("replicas"));
    let held_by_2 = replica_partitions(&nodes[2].info("replicas"));
    let held_by_0 = replica_partitions(&nodes[0].info("replicas"));
    let doomed: BTreeSet<usize> = held_by_1
        .intersection(&held_by_2)
        .copied()
        .filter(|pid| !held_by_0.contains(pid))
        .collect();
    assert!(doomed.len() > 100, "{}", doomed.len());
    nodes[1].kill();
    nodes[2].kill();
    settle(&[&nodes[0]], 1, "alone");
    // The oracle: exactly those partitions died.
    assert_eq!(
        nodes[0].ns_stat("dead_partitions"),
        doomed.len().to_string()
    );
    let (_, per_partition) = records(&[
        "partitions".to_string(),
        "--count".into(),
        "2000".into(),
        "--prefix".into(),
        "k".into(),
    ]);
    let per_partition: BTreeMap<usize, u64> = per_partition
        .as_object()
        .unwrap()
        .iter()
        .map(|(pid, n)| (pid.parse().unwrap(), n.as_u64().unwrap()))
        .collect();
    let expected: u64 = doomed
        .iter()
        .map(|pid| per_partition.get(pid).copied().unwrap_or(0))
        .sum();
    let summary = check(&seed, 2000, "k");
    let missing = count(&summary, "missing");
    eprintln!(
        "two of three killed: {missing} of 2000 records lost, in {} of the {} dead partitions",
        summary["missing_partitions"].as_array().unwrap().len(),
        doomed.len()
    );
    assert!(missing > 0);
    assert_eq!(missing, expected, "{summary}");
    assert_eq!(count(&summary, "found"), 2000 - expected);
    for pid in summary["missing_partitions"].as_array().unwrap() {
        assert!(doomed.contains(&(pid.as_u64().unwrap() as usize)));
    }
    assert_eq!(nodes[0].ns_stat("objects"), (2000 - expected).to_string());
}

#[test]
fn a_memory_cluster_killed_and_restarted_loses_every_record() {
    support::require_python_client();
    let mut nodes = start_cluster(3, &Options::default());
    write(&[host(&nodes[0])], 500, "k");
    for node in &mut nodes {
        node.kill();
    }
    let nodes = start_cluster(3, &Options::default());
    let summary = check(&[host(&nodes[1])], 500, "k");
    assert_eq!(count(&summary, "missing"), 500, "{summary}");
    assert_eq!(nodes[0].ns_stat("dead_partitions"), "0", "a new lineage");
}

/// Sends `frame` on a fresh connection; returns what came back before the
/// node closed the connection (`None`: still open after 3 s).
fn exchange(node: &SimNode, frame: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect((node.host.as_str(), node.service_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    stream.write_all(frame).unwrap();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => Some(received),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(received),
        Err(_) => None,
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = vec![2u8, 3];
    out.extend_from_slice(&(body.len() as u64).to_be_bytes()[2..]);
    out.extend_from_slice(body);
    out
}

#[test]
fn malformed_as_msg_frames_close_the_connection_and_the_node_serves_on() {
    let node = SimNode::start(&Options::default());
    let put = Request {
        info1: 0,
        info2: msg::INFO2_WRITE,
        info3: 0,
        generation: 0,
        record_ttl: 0,
        transaction_ttl: 1000,
        namespace: Some("test".into()),
        set: Some("s".into()),
        key: None,
        digest: Some([1; 20]),
        ops: vec![Op {
            op: msg::OP_WRITE,
            name: "v".into(),
            particle: Particle {
                kind: 1,
                value: 7i64.to_be_bytes().to_vec(),
            },
        }],
    };
    let good = msg::build_request(&put);
    // A well-formed put works (the node is a cluster of one).
    let reply = exchange_one(&node, &frame(&good));
    assert_eq!(reply[13], 0, "result code of a good put: {reply:?}");
    // 2^47 announced: refused before any allocation.
    let huge = [2u8, 3, 0x80, 0, 0, 0, 0, 0];
    assert_eq!(exchange(&node, &huge), Some(vec![]));
    // Truncated: the body ends inside the first field.
    assert_eq!(exchange(&node, &frame(&good[..30])), Some(vec![]));
    // A field whose size runs past the end of the message.
    let mut overrun = good.clone();
    overrun[22..26].copy_from_slice(&1_000_000u32.to_be_bytes());
    assert_eq!(exchange(&node, &frame(&overrun)), Some(vec![]));
    // A header size other than 22.
    let mut header = good.clone();
    header[0] = 23;
    assert_eq!(exchange(&node, &frame(&header)), Some(vec![]));
    // An unknown op: a parameter error (result code 4), then closed.
    let mut unknown = put.clone();
    unknown.ops[0].op = 200;
    let reply = exchange(&node, &frame(&msg::build_request(&unknown))).unwrap();
    assert_eq!(reply.len(), 30, "{reply:?}");
    assert_eq!(reply[13], msg::result::PARAMETER);
    let errors = node.events("protocol_error");
    assert_eq!(errors.len(), 5, "{errors:?}");
    assert!(errors
        .iter()
        .any(|e| e["reason"].as_str().unwrap().contains("invalid proto size")));
    assert!(errors
        .iter()
        .any(|e| e["reason"].as_str().unwrap().contains("runs past the end")));
    assert!(errors
        .iter()
        .any(|e| e["reason"].as_str().unwrap().contains("op 200")));
    // The node serves on: the record written first is there.
    let mut get = put;
    get.info1 = msg::INFO1_READ | msg::INFO1_GET_ALL;
    get.info2 = 0;
    get.ops.clear();
    let reply = exchange_one(&node, &frame(&msg::build_request(&get)));
    assert_eq!(reply[13], 0);
    assert_eq!(&reply[14..18], &1u32.to_be_bytes(), "generation 1");
    assert!(reply.ends_with(&7i64.to_be_bytes()));
    assert_eq!(node.info("status"), "ok");
}

/// Sends one request and reads one reply frame, leaving the connection open.
fn exchange_one(node: &SimNode, frame: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect((node.host.as_str(), node.service_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    stream.write_all(frame).unwrap();
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    let mut len = [0u8; 8];
    len[2..].copy_from_slice(&header[2..]);
    let mut body = vec![0u8; u64::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    let mut out = header.to_vec();
    out.extend_from_slice(&body);
    out
}

#[test]
fn reads_and_writes_during_migrations_reach_the_copy_that_has_the_data() {
    support::require_python_client();
    // Slow migrations: a joining node waits seconds for its copies, while
    // the client's map already names it master of a third of them.
    let options = Options {
        migrate_rate: 300,
        ..Options::default()
    };
    let nodes = start_cluster(2, &options);
    let seed = vec![host(&nodes[0])];
    write(&seed, 1000, "k");
    let fresh = SimNode::start(&options);
    assert_eq!(fresh.tip(&nodes[1]), "ok");
    let three: Vec<&SimNode> = vec![&nodes[0], &nodes[1], &fresh];
    assert!(wait_until(Duration::from_secs(10), || formed(&three, 3)));
    let summary = check(&[host(&fresh)], 1000, "k");
    assert_eq!(count(&summary, "found"), 1000, "{summary}");
    // Overwrite everything while the copies are on their way.
    let mut args = records_args("write", &seed, 1000, "k");
    args.extend(["--value-tag".to_string(), "during".to_string()]);
    let (status, summary) = records(&args);
    assert_eq!(status, 0, "{summary}");
    let remaining: u64 = fresh.stat("migrate_partitions_remaining").parse().unwrap();
    assert!(remaining > 0, "the test must run during the migrations");
    settle(&three, 3, "after the migrations");
    // The new node, master in the client's map before it had the data,
    // proxied to the old holders.
    let proxied: u64 = fresh.ns_stat("client_proxy_complete").parse().unwrap();
    assert!(proxied > 0, "no transaction was proxied");
    assert_eq!(ns_count(&three, "client_proxy_timeout"), 0);
    // Every copy has the new values: the old holders can leave one by one.
    let mut args = records_args("check", &[host(&fresh)], 1000, "k");
    args.extend(["--value-tag".to_string(), "during".to_string()]);
    let (status, summary) = records(&args);
    assert_eq!((status, count(&summary, "found")), (0, 1000), "{summary}");
    assert!(
        wait_until(Duration::from_secs(2), || ns_count(&three, "objects")
            == 2000),
        "objects: {}",
        ns_count(&three, "objects")
    );
}

const API_SCRIPT: &str = r#"
import sys
import aerospike
from aerospike import exception as ex

port = int(sys.argv[1])
client = aerospike.client({"hosts": [("127.0.0.1", port)]}).connect()
key = ("test", "s", "api")
bins = {"s": "text", "n": 41, "f": 1.5, "b": b"\x00\x01", "l": [1, "two", {"3": 4}], "m": {"a": 1}}
client.put(key, bins, policy={"key": aerospike.POLICY_KEY_SEND})
_, meta, got = client.get(key)
assert got == bins, got
assert meta["gen"] == 1, meta
client.increment(key, "n", 1)
client.append(key, "s", "!")
client.prepend(key, "s", ">")
_, meta, got = client.get(key)
assert got["n"] == 42 and got["s"] == ">text!" and meta["gen"] == 4, (meta, got)
_, meta, got = client.select(key, ["n", "f"])
assert got == {"n": 42, "f": 1.5}, got
client.touch(key)
_, meta = client.exists(key)
assert meta["gen"] == 5, meta
try:
    client.put(key, {"n": 1}, policy={"exists": aerospike.POLICY_EXISTS_CREATE})
    raise AssertionError("create-only accepted")
except ex.RecordExistsError:
    pass
try:
    client.put(key, {"n": 1}, meta={"gen": 1}, policy={"gen": aerospike.POLICY_GEN_EQ})
    raise AssertionError("stale generation accepted")
except ex.RecordGenerationError:
    pass
client.put(key, {"only": 1}, policy={"exists": aerospike.POLICY_EXISTS_REPLACE})
_, meta, got = client.get(key)
assert got == {"only": 1}, got
try:
    client.increment(key, "s2", 1) or client.append(key, "only", "x")
    raise AssertionError("append to an integer accepted")
except ex.BinIncompatibleType:
    pass
client.remove(key)
_, meta = client.exists(key)
assert meta is None
try:
    client.get(key)
    raise AssertionError("removed record found")
except ex.RecordNotFound:
    pass
try:
    client.remove(key)
    raise AssertionError("removed twice")
except ex.RecordNotFound:
    pass
client.close()
print("api ok")
"#;

#[test]
fn the_python_client_api_for_single_records_works_across_two_nodes() {
    support::require_python_client();
    let nodes = start_cluster(2, &Options::default());
    for node in &nodes {
        let output = std::process::Command::new("python3")
            .args(["-c", API_SCRIPT])
            .arg(node.service_port.to_string())
            .output()
            .expect("run python3");
        assert!(
            output.status.success() && String::from_utf8_lossy(&output.stdout).contains("api ok"),
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A rolling restart of a memory cluster: node 0 is replaced by an empty
/// node, then node 1 goes. Waiting for the migrations in between loses
/// nothing; not waiting loses records, in partitions the oracle counts.
fn rolling_restart(wait_for_migrations: bool) -> (u64, u64) {
    // Fast enough to keep the test short, slow enough (about a second per
    // step) that the second node dies mid-migration when nobody waits.
    let options = Options {
        migrate_rate: 1500,
        ..Options::default()
    };
    let mut nodes = start_cluster(3, &options);
    let seed = vec![host(&nodes[2])];
    write(&seed, 1000, "k");
    let _replacement = restart_two_of_three(&mut nodes, &options, wait_for_migrations);
    let summary = check(&seed, 1000, "k");
    let dead: u64 = nodes[2].ns_stat("dead_partitions").parse().unwrap();
    let missing = count(&summary, "missing");
    let missing_partitions = summary["missing_partitions"].as_array().unwrap().len() as u64;
    assert!(missing_partitions <= dead, "{summary} vs {dead} dead");
    eprintln!(
        "rolling restart, waiting for migrations: {wait_for_migrations}: {missing} of 1000 \
         records lost, in {missing_partitions} of {dead} dead partitions"
    );
    (missing, dead)
}

#[test]
fn a_rolling_restart_that_waits_for_migrations_loses_nothing() {
    support::require_python_client();
    assert_eq!(rolling_restart(true), (0, 0));
}

#[test]
fn a_rolling_restart_that_does_not_wait_loses_records_where_partitions_died() {
    support::require_python_client();
    let (missing, dead) = rolling_restart(false);
    assert!(dead > 0 && missing > 0, "{missing} lost, {dead} dead");
}
