//! The ground everything else stands on: a multi-node swarm whose
//! placement and overlay network behave as the operator needs.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::sandbox::{
    asinfo, docker, running_tasks, wait_until, Sandbox, ServiceGuard, NETWORK, NODES,
};
use crate::TestResult;

/// A replicated service with `MaxReplicas 1` puts one task on each node,
/// and every task reaches every other over TCP across nodes on the overlay.
pub fn max_one_per_node_spreads_tasks_and_overlay_carries_tcp(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-spread";
    let _ = docker(&["service", "rm", name]); // left over from a crashed run
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
    let _guard = ServiceGuard(name.to_string());

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

    let nodes: BTreeSet<&str> = tasks.iter().map(|t| t.node_id.as_str()).collect();
    if nodes.len() != NODES {
        return Err(
            format!("expected {NODES} tasks on {NODES} distinct nodes, got {tasks:?}").into(),
        );
    }

    // Each task asks every other task, over TCP on the overlay, for its
    // node id; the answers must be those nodes' own ids.
    let mut node_ids = Vec::new();
    for task in &tasks {
        node_ids.push(asinfo(sandbox, task, None, "node")?.trim().to_string());
    }
    for (i, from) in tasks.iter().enumerate() {
        for (j, to) in tasks.iter().enumerate() {
            if i == j {
                continue;
            }
            let address = to.address.as_deref().unwrap();
            let answer = asinfo(sandbox, from, Some(address), "node").map_err(|e| {
                format!(
                    "task on node {} cannot reach {address} on node {}: {}",
                    from.node_id,
                    to.node_id,
                    e.message().unwrap_or("?")
                )
            })?;
            if answer.trim() != node_ids[j] {
                return Err(format!(
                    "{address} answered node id {:?}, expected {:?}",
                    answer.trim(),
                    node_ids[j]
                )
                .into());
            }
        }
    }
    Ok(())
}
