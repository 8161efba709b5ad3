//! The official Aerospike Python client (PyPI `aerospike`, a wrapper of the
//! C client) against sim nodes: it must connect, discover the whole cluster
//! from one seed (`peers-clear-std`, `replicas`, `partition-generation`)
//! and run info calls on every node.
//!
//! Fails, saying so, when `python3` cannot import the `aerospike` package
//! (`pip install aerospike`; `scripts/test` installs it): it never passes
//! unchecked.

mod support;

use std::process::Command;

use support::{start_cluster, Options};

const SCRIPT: &str = r#"
import sys
import aerospike

port = int(sys.argv[1])
client = aerospike.client({"hosts": [("127.0.0.1", port)]}).connect()
nodes = client.get_nodes()
assert len(nodes) == 2, nodes
builds = client.info_all("build")
assert len(builds) == 2, builds
assert all(err is None and value == "7.1.0.0\n" for err, value in builds.values()), builds
keys = client.info_all("cluster-stable:size=2;ignore-migrations=false")
values = {value.strip() for err, value in keys.values()}
assert len(values) == 1 and not values.pop().startswith("ERROR"), keys
# 7.1+ servers answer an unknown command with an "invalid request" error.
name = client.get_node_names()[0]["node_name"]
try:
    client.info_single_node("no-such-command", name)
    raise AssertionError("unknown command accepted")
except aerospike.exception.InvalidRequest:
    pass
client.close()
print("python client ok")
"#;

#[test]
fn official_python_client_discovers_the_cluster_and_runs_info_calls() {
    support::require_python_client();
    let nodes = start_cluster(2, &Options::default());
    let output = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(nodes[0].service_port.to_string())
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}\nlog:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        nodes[0].log()
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("python client ok"));
    // The client found node 1 through node 0 alone and spoke to it.
    assert!(!nodes[1].events("info").is_empty());
}
