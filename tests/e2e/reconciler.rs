//! Issue 4 end to end: the operator runs as a swarm service on the
//! manager, and clusters declared in service labels converge — replicas,
//! one node per host, mesh, status — through node loss, node gain, bad
//! input, manual meddling and operator restarts.
//!
//! Every test deploys the operator itself ([`Operator::deploy`]) and
//! removes it, its clusters and any node it added, pass or fail. Timeouts
//! are generous: the machine is small and shared, and swarm only marks a
//! stopped node Down after its heartbeat grace period.

use std::collections::BTreeSet;
use std::time::Duration;

use libtest_mimic::Failed;

use crate::operator::{
    check_log_contract, check_status_key, create_cluster, scale_target, service_replicas,
    service_spec, spec_labels, status, task_ids, wait_meshed, wait_ready, wait_status, Operator,
    CONVERGE,
};
use crate::sandbox::{
    asinfo, docker, node_id_of, ready_node_count, sandbox_script, wait_until, Sandbox, NODES,
};
use crate::TestResult;

/// Node loss and return: swarm's heartbeat grace, then rescheduling.
pub(crate) const NODE_FAULT: Duration = Duration::from_secs(300);

/// `replicas=3` on a service created the plain way (1 replica, no placement
/// limit): the operator adopts it, sets one task per node and 3 replicas,
/// meshes the three nodes and reports Ready 3/3 with their cluster key.
pub fn replicas_3_gives_three_nodes_in_one_cluster_and_ready_status(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rec-three";
    let operator = Operator::deploy()?;
    let _cluster = create_cluster(name, 1, false, &spec_labels("3"))?;

    wait_ready(sandbox, name, 3, CONVERGE)?;
    let spec = service_spec(name)?;
    if spec["TaskTemplate"]["Placement"]["MaxReplicas"] != 1 {
        return Err(format!(
            "the service's placement is not one task per node: {}",
            spec["TaskTemplate"]["Placement"]
        )
        .into());
    }
    if service_replicas(name)? != 3 {
        return Err("the service does not have 3 replicas".into());
    }
    let actions = operator.actions_for(name)?;
    for wanted in ["adopt", "place", "scale", "tip", "status"] {
        if !actions.iter().any(|l| l["action"] == wanted) {
            return Err(format!(
                "no {wanted:?} action logged for {name}; actions: {:?}",
                actions.iter().map(|l| &l["action"]).collect::<Vec<_>>()
            )
            .into());
        }
    }
    // A healthy new cluster never shows phase Error on its way to Ready
    // (tasks that are still starting are not "unreachable").
    if let Some(line) = actions
        .iter()
        .find(|l| l["action"] == "status" && l["phase"] == "Error")
    {
        return Err(format!("a healthy new cluster went through phase Error: {line}").into());
    }
    // The JSON log contract, on the whole log (a counters line comes every
    // 5 s: wait for one).
    let lines = wait_until("a counters line", Duration::from_secs(60), || {
        let lines = operator.logs()?;
        Ok(lines
            .iter()
            .any(|l| l["action"] == "counters")
            .then_some(lines))
    })?;
    check_log_contract(&lines)?;
    Ok(())
}

/// Removes sandbox node `n` when dropped (it was added by the test).
struct NodeGuard(usize);

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Err(e) = sandbox_script(&["remove-node", &self.0.to_string()]) {
            eprintln!("cleanup: {}", e.message().unwrap_or("?"));
        }
    }
}

/// `replicas=5` on three nodes: three tasks, Degraded 3/5 saying how many
/// nodes are eligible; a fourth node joins: four tasks, all meshed, 4/5.
pub fn replicas_5_on_3_nodes_is_degraded_and_grows_when_a_node_joins(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rec-five";
    // A fourth node left over by a crashed run would make this test lie.
    sandbox_script(&["remove-node", "4"])?;
    let operator = Operator::deploy()?;
    let _cluster = create_cluster(name, 1, false, &spec_labels("5"))?;

    let st = wait_status(name, "Degraded", "3/5", CONVERGE)?;
    if !st.message.contains("3 eligible") {
        return Err(format!(
            "Degraded message does not say how many nodes are eligible: {:?}",
            st.message
        )
        .into());
    }
    wait_meshed(sandbox, name, 3, None, CONVERGE)?;
    if service_replicas(name)? != 3 {
        return Err("with 3 eligible nodes the service should have 3 replicas".into());
    }

    let _node = NodeGuard(4);
    sandbox_script(&["up", "--nodes", "4"])?;
    wait_status(name, "Degraded", "4/5", NODE_FAULT)?;
    let meshed = wait_meshed(sandbox, name, 4, None, CONVERGE)?;
    let node4 = node_id_of(4)?;
    if !meshed.tasks.iter().any(|t| t.node_id == node4) {
        return Err("no task of the cluster runs on the new node 4".into());
    }
    let scales: Vec<u64> = operator
        .actions_for(name)?
        .iter()
        .filter(|l| l["action"] == "scale")
        .filter_map(scale_target)
        .collect();
    if !scales.contains(&4) {
        return Err(format!("no scale to 4 logged; scale targets: {scales:?}").into());
    }
    Ok(())
}

/// Starts sandbox node `n` again when dropped and waits until all nodes
/// are Ready, so the next test finds the full swarm.
pub(crate) struct RestartNode(pub(crate) usize);

impl Drop for RestartNode {
    fn drop(&mut self) {
        if let Err(e) = sandbox_script(&["start-node", &self.0.to_string()]) {
            eprintln!("cleanup: {}", e.message().unwrap_or("?"));
        }
        let _ = wait_until("all nodes Ready again", NODE_FAULT, || {
            Ok((ready_node_count() >= NODES).then_some(()))
        });
    }
}

/// The phases of the operator's status lines about `cluster`, in order.
pub(crate) fn status_phases(operator: &Operator, cluster: &str) -> Result<Vec<String>, Failed> {
    Ok(operator
        .actions_for(cluster)?
        .iter()
        .filter(|l| l["action"] == "status")
        .map(|l| l["phase"].as_str().unwrap_or_default().to_string())
        .collect())
}

/// Two clusters at once: both converge, with different keys, and no node
/// of one is in the other.
pub fn two_clusters_converge_side_by_side_without_mixing(sandbox: &Sandbox) -> TestResult {
    let (a, b) = ("e2e-rec-pair-a", "e2e-rec-pair-b");
    let _operator = Operator::deploy()?;
    let _a = create_cluster(a, 1, false, &spec_labels("3"))?;
    let _b = create_cluster(b, 1, false, &spec_labels("2"))?;

    let st_a = wait_status(a, "Ready", "3/3", CONVERGE)?;
    let st_b = wait_status(b, "Ready", "2/2", CONVERGE)?;
    let mesh_a = wait_meshed(sandbox, a, 3, None, CONVERGE)?;
    let mesh_b = wait_meshed(sandbox, b, 2, None, CONVERGE)?;
    check_status_key(a, &st_a, &mesh_a)?;
    check_status_key(b, &st_b, &mesh_b)?;
    if mesh_a.cluster_key == mesh_b.cluster_key {
        return Err(format!("both clusters have key {}", mesh_a.cluster_key).into());
    }
    // Each node's peer list (`services`) names only nodes of its own cluster.
    for (mine, other) in [(&mesh_a, &mesh_b), (&mesh_b, &mesh_a)] {
        let foreign = other.addresses();
        for task in &mine.tasks {
            let services = asinfo(sandbox, task, None, "services")?;
            let peers: BTreeSet<String> = services
                .trim()
                .split(';')
                .filter_map(|s| s.rsplit_once(':').map(|(ip, _)| ip.to_string()))
                .collect();
            if let Some(ip) = peers.intersection(&foreign).next() {
                return Err(format!(
                    "node {:?} lists {ip}, a node of the other cluster, among its peers: {services:?}",
                    task.address
                )
                .into());
            }
        }
    }
    Ok(())
}

/// What a bad label must not touch.
fn untouched_part(name: &str) -> Result<(u64, String, Vec<String>), Failed> {
    let spec = service_spec(name)?;
    Ok((
        spec["Mode"]["Replicated"]["Replicas"].as_u64().unwrap_or(0),
        spec["TaskTemplate"].to_string(),
        task_ids(name)?,
    ))
}

/// A bad label: phase Error naming the label, and nothing else about the
/// service changes (replicas, task template, tasks); fixing the label makes
/// it converge.
pub fn a_bad_label_gives_error_status_and_leaves_the_service_alone(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rec-bad";
    // The service exists, running, before the operator sees it, so that
    // "before" is what the user made.
    let _cluster = create_cluster(name, 1, false, &spec_labels("three"))?;
    wait_until("the bad cluster's task running", CONVERGE, || {
        let tasks = crate::sandbox::running_tasks(name)?;
        Ok((tasks.len() == 1 && tasks[0].state == "running").then_some(()))
    })?;
    let before = untouched_part(name)?;
    let operator = Operator::deploy()?;

    let st = wait_until("status phase Error", CONVERGE, || {
        let st = status(name)?;
        Ok((st.phase == "Error").then_some(st))
    })?;
    if !st.message.contains("aerospike.cluster.replicas") {
        return Err(format!(
            "the Error message does not name aerospike.cluster.replicas: {:?}",
            st.message
        )
        .into());
    }
    // Let the operator look again (its own status write, the task poll
    // or at the latest the 60 s resync run reconciles; the counters line
    // every 5 s counts them) before comparing.
    let reconciles = |op: &Operator| -> Result<u64, Failed> {
        Ok(op
            .logs()?
            .iter()
            .filter(|l| l["action"] == "counters")
            .filter_map(|l| l["reconciles"].as_u64())
            .max()
            .unwrap_or(0))
    };
    let seen = reconciles(&operator)?;
    wait_until(
        "the operator to reconcile again",
        Duration::from_secs(120),
        || Ok((reconciles(&operator)? > seen).then_some(())),
    )?;
    let after = untouched_part(name)?;
    if before.0 != after.0 {
        return Err(format!(
            "replicas changed from {} to {} on an invalid spec",
            before.0, after.0
        )
        .into());
    }
    if before.1 != after.1 {
        return Err(format!(
            "task template changed on an invalid spec:\nbefore {}\nafter  {}",
            before.1, after.1
        )
        .into());
    }
    if before.2 != after.2 {
        return Err(format!(
            "tasks changed on an invalid spec: {:?} → {:?}",
            before.2, after.2
        )
        .into());
    }
    if let Some(line) = operator
        .actions_for(name)?
        .iter()
        .find(|l| matches!(l["action"].as_str(), Some("scale" | "place" | "tip")))
    {
        return Err(format!("the operator acted on an invalid spec: {line}").into());
    }

    docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        "aerospike.cluster.replicas=3",
        name,
    ])?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    Ok(())
}

/// The operator restarted while a cluster scales up: it converges to the
/// right size, and the logs of both operator instances show no conflicting
/// action (one scale, to 3; no tip-clear of a live member).
pub fn an_operator_restart_mid_convergence_converges_without_conflicts(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rec-restart";
    let operator = Operator::deploy()?;
    let _cluster = create_cluster(name, 1, true, &spec_labels("3"))?;
    // Mid-convergence: the operator has scaled, the new tasks are starting
    // and not yet meshed.
    wait_until("the operator's scale action", CONVERGE, || {
        let actions = operator.actions_for(name)?;
        Ok(actions.iter().any(|l| l["action"] == "scale").then_some(()))
    })?;
    let phase = status(name)?.phase;
    operator.restart()?;
    let (_, meshed) = wait_ready(sandbox, name, 3, CONVERGE)?;
    if operator.task_count()? < 2 {
        return Err("the operator service was not restarted (one task)".into());
    }
    if service_replicas(name)? != 3 {
        return Err("the service does not have 3 replicas".into());
    }

    let actions = operator.actions_for(name)?;
    let scales: Vec<&serde_json::Value> =
        actions.iter().filter(|l| l["action"] == "scale").collect();
    if scales.len() != 1 || scale_target(scales[0]) != Some(3) {
        return Err(format!(
            "expected exactly one scale action, to 3 replicas, across the restart \
             (phase when restarted: {phase:?}); got {scales:?}"
        )
        .into());
    }
    let live = meshed.addresses();
    for line in actions.iter().filter(|l| l["action"] == "tip-clear") {
        let reason = line["reason"].as_str().unwrap_or_default();
        // "node A still lists departed nodes (B:p, C:p) ..."
        let departed = reason
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list)
            .unwrap_or(reason);
        if let Some(ip) = live.iter().find(|ip| departed.contains(&format!("{ip}:"))) {
            return Err(format!("tip-clear of live member {ip}: {line}").into());
        }
    }
    Ok(())
}

/// A manual `docker service scale X=1` on a Ready cluster is put back to 3,
/// with a log line that says why.
pub fn a_manual_scale_is_put_back_and_logged(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-rec-manual";
    let operator = Operator::deploy()?;
    let _cluster = create_cluster(name, 3, true, &spec_labels("3"))?;
    wait_status(name, "Ready", "3/3", CONVERGE)?;
    wait_meshed(sandbox, name, 3, None, CONVERGE)?;
    let scales_before = operator
        .actions_for(name)?
        .iter()
        .filter(|l| l["action"] == "scale")
        .count();

    docker(&["service", "scale", "--detach", &format!("{name}=1")])?;
    let line = wait_until("a scale action putting back 3", CONVERGE, || {
        let scales: Vec<serde_json::Value> = operator
            .actions_for(name)?
            .into_iter()
            .filter(|l| l["action"] == "scale")
            .collect();
        Ok(scales.get(scales_before).cloned())
    })?;
    if scale_target(&line) != Some(3) {
        return Err(format!("the operator's answer to the manual scale: {line}").into());
    }
    let reason = line["reason"].as_str().unwrap_or_default();
    if !reason.contains("aerospike.cluster.replicas=3") {
        return Err(format!("the scale line does not say why (the label): {reason:?}").into());
    }
    wait_until("the service back at 3 replicas", CONVERGE, || {
        Ok((service_replicas(name)? == 3).then_some(()))
    })?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    Ok(())
}

/// The operator is away (scaled to 0) while the spec grows from 2 to 3, and
/// comes back (scaled to 1): the new instance makes the one change needed
/// (one scale, to 3), meshes the new node and reports Ready 3/3.
pub fn an_operator_back_from_zero_replicas_acts_once_on_the_missed_change(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-rec-away";
    let operator = Operator::deploy()?;
    let _cluster = create_cluster(name, 2, true, &spec_labels("2"))?;
    wait_status(name, "Ready", "2/2", CONVERGE)?;
    wait_meshed(sandbox, name, 2, None, CONVERGE)?;

    operator.scale(0)?;
    docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        "aerospike.cluster.replicas=3",
        name,
    ])?;
    if service_replicas(name)? != 2 {
        return Err("with no operator running, something else scaled the cluster".into());
    }
    operator.scale(1)?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    let scales: Vec<Option<u64>> = operator
        .actions_for(name)?
        .iter()
        .filter(|l| l["action"] == "scale")
        .map(scale_target)
        .collect();
    if scales != [Some(3)] {
        return Err(format!("expected one scale action, to 3; got targets {scales:?}").into());
    }
    Ok(())
}

/// `UpdateConfig` or `RollbackConfig` of a service's spec, as
/// `(parallelism, delay s, order, failure action, monitor s)`.
fn policy_of(spec: &serde_json::Value, key: &str) -> (u64, u64, String, String, u64) {
    let p = &spec[key];
    let secs = |field: &str| p[field].as_u64().unwrap_or(0) / 1_000_000_000;
    (
        p["Parallelism"].as_u64().unwrap_or(0),
        secs("Delay"),
        p["Order"].as_str().unwrap_or_default().to_string(),
        p["FailureAction"].as_str().unwrap_or_default().to_string(),
        secs("Monitor"),
    )
}

/// A converged cluster whose `aerospike.cluster.*` labels are removed is
/// let go: the operator replaces its valve (a year between tasks) with the
/// plain policy — one task at a time, stop-first, pause on failure, 30 s
/// apart, 30 s monitor — as update and rollback policy, logs
/// `action=release-policy` once, and leaves the status labels.
pub fn a_cluster_let_go_gets_the_plain_update_policy_back(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-rec-letgo";
    let operator = Operator::deploy()?;
    let _cluster = create_cluster(name, 1, false, &spec_labels("1"))?;
    wait_ready(sandbox, name, 1, CONVERGE)?;
    let valve = policy_of(&service_spec(name)?, "UpdateConfig");
    if valve.1 < 24 * 3600 {
        return Err(format!("a managed cluster without the valve: {valve:?}").into());
    }
    let status_before = crate::operator::labels(name)?
        .into_iter()
        .filter(|(k, _)| k.starts_with("aerospike.status."))
        .collect::<Vec<_>>();

    // Every aerospike.cluster.* label (a spec left without its replicas is
    // an invalid one: still managed, with an Error status).
    let spec_keys: Vec<String> = crate::operator::labels(name)?
        .into_keys()
        .filter(|k| k.starts_with("aerospike.cluster."))
        .collect();
    let mut update = vec!["service", "update", "--detach"];
    for key in &spec_keys {
        update.extend(["--label-rm", key.as_str()]);
    }
    update.push(name);
    docker(&update)?;
    let plain = (1, 30, "stop-first".to_string(), "pause".to_string(), 30);
    let released = wait_until(
        "the plain update and rollback policy",
        Duration::from_secs(10),
        || {
            let spec = service_spec(name)?;
            Ok((policy_of(&spec, "UpdateConfig") == plain
                && policy_of(&spec, "RollbackConfig") == plain)
                .then_some(()))
        },
    );
    if let Err(e) = released {
        let spec = service_spec(name)?;
        return Err(format!(
            "{}: update {:?}, rollback {:?}, labels {}; the operator's actions: {:?}",
            e.message().unwrap_or("?"),
            policy_of(&spec, "UpdateConfig"),
            policy_of(&spec, "RollbackConfig"),
            spec["Labels"],
            operator.actions_for(name)?
        )
        .into());
    }
    // The line that explains the release: logged before the write, but
    // read back through the engine's log copier, which may lag behind the
    // spec under a loaded CI (one run saw none 3 s after the write).
    let release_lines = || -> Result<Vec<serde_json::Value>, Failed> {
        Ok(operator
            .actions_for(name)?
            .into_iter()
            .filter(|l| l["action"] == "release-policy")
            .collect())
    };
    let seen = wait_until(
        "the release-policy line in the operator's log",
        Duration::from_secs(15),
        || Ok(Some(release_lines()?).filter(|lines| !lines.is_empty())),
    );
    if let Err(e) = seen {
        let logs = operator.logs()?;
        let about: Vec<_> = logs.iter().filter(|l| l["cluster"] == name).collect();
        return Err(format!(
            "{}: the operator has had {} task(s) and logged {} lines, {} about {name}; the last: {:?}",
            e.message().unwrap_or("?"),
            operator.task_count()?,
            logs.len(),
            about.len(),
            about.iter().rev().take(5).collect::<Vec<_>>()
        )
        .into());
    }
    // The pass the release triggers, and later ones, write nothing more.
    std::thread::sleep(Duration::from_secs(3));
    let releases = release_lines()?;
    if releases.len() != 1 {
        return Err(format!("expected one release-policy line: {releases:?}").into());
    }
    let reason = releases[0]["reason"].as_str().unwrap_or_default();
    if !reason.contains("one task at a time") || !reason.contains("30 s") {
        return Err(format!("the release line does not say the policy: {reason:?}").into());
    }
    let status_after = crate::operator::labels(name)?
        .into_iter()
        .filter(|(k, _)| k.starts_with("aerospike.status."))
        .collect::<Vec<_>>();
    if status_after != status_before {
        return Err(
            format!("the status labels changed: {status_before:?} -> {status_after:?}").into(),
        );
    }
    Ok(())
}
