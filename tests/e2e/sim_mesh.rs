//! aerospike-sim in real containers: three tasks of one service, on three
//! swarm nodes, form one cluster over the overlay once tipped through the
//! info protocol — the same tips the operator sends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::sandbox::{asinfo, spread_sim_service, wait_until, Sandbox};
use crate::TestResult;

/// Statistics of one node as `k=v;k=v`.
fn statistics(
    sandbox: &Sandbox,
    task: &crate::sandbox::TaskView,
) -> Result<BTreeMap<String, String>, libtest_mimic::Failed> {
    let reply = asinfo(sandbox, task, None, "statistics")?;
    Ok(reply
        .trim()
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

pub fn sim_tasks_on_three_nodes_mesh_over_the_overlay_when_tipped(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-sim-mesh";
    let (_guard, tasks) = spread_sim_service(name)?;

    // Unmeshed: no seeds in the default config, so each node is alone. A
    // node that has just started reports cluster_size 0 until its first
    // (one-node) cluster forms, ~2 s, as a real server does (field notes
    // §3): wait for that, then it must be a cluster of one.
    for task in &tasks {
        let stats = wait_until(
            "the node's first cluster formed",
            Duration::from_secs(30),
            || {
                let stats = statistics(sandbox, task)?;
                let formed = stats.get("cluster_size").is_some_and(|s| s != "0");
                Ok(formed.then_some(stats))
            },
        )?;
        if stats.get("cluster_size").map(String::as_str) != Some("1") {
            return Err(format!(
                "before any tip, {:?} reports cluster_size {:?}",
                task.address,
                stats.get("cluster_size")
            )
            .into());
        }
    }

    // One tip per newcomer, sent to the first node: heartbeats carry the
    // rest (adjacency lists), as in a real cluster.
    let first = &tasks[0];
    for other in &tasks[1..] {
        let reply = asinfo(
            sandbox,
            first,
            None,
            &format!("tip:host={};port=3002", other.address.as_deref().unwrap()),
        )?;
        if reply.trim() != "ok" {
            return Err(format!("tip answered {reply:?}, expected ok").into());
        }
    }

    let key = wait_until(
        "all three nodes in one cluster",
        Duration::from_secs(30),
        || {
            let mut keys = BTreeSet::new();
            for task in &tasks {
                let stats = statistics(sandbox, task)?;
                if stats.get("cluster_size").map(String::as_str) != Some("3") {
                    return Ok(None);
                }
                keys.insert(stats.get("cluster_key").cloned().unwrap_or_default());
            }
            Ok((keys.len() == 1).then(|| keys.into_iter().next().unwrap()))
        },
    )?;

    // The mesh runs between nodes, not through the first one: every node
    // lists the other two among its services.
    for task in &tasks {
        let services = asinfo(sandbox, task, None, "services")?;
        for other in tasks.iter().filter(|o| o.id != task.id) {
            let addr = other.address.as_deref().unwrap();
            if !services
                .split(';')
                .any(|s| s.starts_with(&format!("{addr}:")))
            {
                return Err(format!(
                    "{:?} does not list {addr} in services: {services:?}",
                    task.address
                )
                .into());
            }
        }
    }
    if key.is_empty() {
        return Err("cluster_key is empty".into());
    }
    Ok(())
}
