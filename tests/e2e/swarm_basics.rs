//! The ground everything else stands on: a multi-node swarm whose
//! placement and overlay network behave as the operator needs.

use crate::sandbox::{asinfo, spread_sim_service, Sandbox};
use crate::TestResult;

/// A replicated service with `MaxReplicas 1` puts one task on each node,
/// and every task reaches every other over TCP across nodes on the overlay.
pub fn max_one_per_node_spreads_tasks_and_overlay_carries_tcp(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-spread";
    let (_guard, tasks) = spread_sim_service(name)?;

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
