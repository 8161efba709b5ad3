//! Issue 15 end to end: failures the operator did not make.
//!
//! A node's container killed (`POST /containers/{id}/kill` on its own
//! engine, as `docker kill` sends it), on every node in turn, the
//! manager's included: swarm reports no such death through its API (no
//! task events; the manager's engine reports its own containers only
//! locally), so only the operator's membership watch can see it before
//! the next slow task poll.

use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use crate::operator::{
    check_quiet_for, create_cluster, spec_labels, status, wait_meshed, wait_ready, wait_status,
    Operator, CONVERGE, QUIET, QUIET_FLAGS,
};
use crate::reconciler::{status_phases, RestartNode, NODE_FAULT};
use crate::records;
use crate::sandbox::{node_id_of, running_tasks, sandbox_script, wait_until, Sandbox, VolumeGuard};
use crate::traffic::Traffic;
use crate::TestResult;

/// How soon the status must leave Ready after a kill (issue 15).
pub(crate) const SEEN_WITHIN: Duration = Duration::from_secs(2);
/// How long a node stays stopped while a rollout holds another.
pub(crate) const HOLD: Duration = Duration::from_secs(12);
/// How many records each failure test writes through the official client
/// before the failure and reads back after it.
pub(crate) const RECORDS: usize = 2_000;

/// `POST path` on the engine at `socket`; the status code.
fn api_post_at(socket: &str, path: &str) -> Result<u16, Failed> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach the engine at {socket}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(|e| format!("POST {path}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("POST {path}: {e}"))?;
    let head = String::from_utf8_lossy(&raw);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("POST {path}: bad answer {head:?}").into())
}

/// kill -9 of `task`'s container, sent to its own node's engine as
/// `docker kill` sends it.
pub(crate) fn kill(sandbox: &Sandbox, task: &crate::sandbox::TaskView) -> Result<(), Failed> {
    let socket = sandbox.socket_of(&task.node_id)?;
    let code = api_post_at(
        &socket,
        &format!("/containers/{}/kill?signal=KILL", task.container_id),
    )?;
    if code != 204 {
        return Err(format!("kill of {} answered {code}", task.container_id).into());
    }
    Ok(())
}

/// How long after `task`'s node started listening (its `started` event) it
/// accepted its first tip (`tip`, `accepted: true`), from its own log on its
/// node's engine.
fn tipped_after_listening(
    sandbox: &Sandbox,
    task: &crate::sandbox::TaskView,
) -> Result<Duration, Failed> {
    let socket = sandbox.socket_of(&task.node_id)?;
    let log = crate::sandbox::docker_at(&socket, &["logs", &task.container_id])?;
    let at = |event: &str| {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == event && (event != "tip" || v["accepted"] == true))
            .and_then(|v| v["ts"].as_str().and_then(crate::ha::epoch))
    };
    match (at("started"), at("tip")) {
        (Some(started), Some(tip)) if tip >= started => Ok(Duration::from_secs_f64(tip - started)),
        other => Err(format!("task {}: started/tip at {other:?} in its log", task.id).into()),
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// kill -9 of one node's container, five times, each time on the next
/// node (node 1, the manager, among them): the status leaves Ready within
/// 2 s every time, and is Ready again only once every node is back and
/// settled ([`wait_ready`] checks every node's `cluster-stable` right
/// after it reads Ready). The operator runs with its default polls
/// (`--poll-slow 10s`): without the watch a death on the manager was seen
/// 3.6–10.1 s later (FIELD-NOTES §2).
pub fn a_killed_container_leaves_ready_within_2_s_on_any_node(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-fail-kill";
    let _operator = Operator::deploy()?;
    let _cluster = create_cluster(name, 3, true, &spec_labels("3"))?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    let traffic = Traffic::start(sandbox, name, "node crash (kill -9), 5 times")?;
    let manager = crate::sandbox::api_get("/info")?["Swarm"]["NodeID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut seen = Vec::new();
    let mut healed = Vec::new();
    let mut tipped = Vec::new();
    let mut nodes_killed = Vec::new();
    for round in 0..5 {
        let mut tasks = running_tasks(name)?;
        // The manager's task first, then the others in turn.
        tasks.sort_by_key(|t| (t.node_id != manager, t.node_id.clone()));
        let task = tasks[round % tasks.len()].clone();
        if task.container_id.is_empty() {
            return Err(format!("task {} has no container yet", task.id).into());
        }
        let killed = Instant::now();
        kill(sandbox, &task)?;
        loop {
            let now = status(name)?;
            if now.phase != "Ready" {
                let after = killed.elapsed();
                eprintln!(
                    "round {round}: killed the task on {}{}; status {} {} after {after:?}: {}",
                    task.node_id,
                    if task.node_id == manager {
                        " (the manager)"
                    } else {
                        ""
                    },
                    now.phase,
                    now.ready,
                    now.message
                );
                seen.push(after);
                break;
            }
            if killed.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "round {round}: the status still reads Ready {} 30 s after the kill of the \
                     task on {}",
                    now.ready, task.node_id
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        nodes_killed.push(task.node_id.clone());
        let (_, meshed) = wait_ready(sandbox, name, 3, CONVERGE)?;
        healed.push(killed.elapsed());
        // The task swarm started in its place: how long after it listened
        // it was tipped (its own log: `started`, then `tip`).
        if let Some(new) = meshed
            .tasks
            .iter()
            .find(|t| t.node_id == task.node_id && t.id != task.id)
        {
            match tipped_after_listening(sandbox, new) {
                Ok(after) => tipped.push(after),
                Err(e) => eprintln!("round {round}: {}", e.message().unwrap_or("?")),
            }
        }
    }
    let late: Vec<String> = seen
        .iter()
        .zip(&nodes_killed)
        .filter(|(d, _)| **d > SEEN_WITHIN)
        .map(|(d, n)| format!("{d:?} on {n}"))
        .collect();
    if !tipped.is_empty() {
        eprintln!(
            "kill -9 ×5: the restarted task was tipped {tipped:?} after it listened (median \
             {:?})",
            median(&mut tipped.clone())
        );
    }
    let (m_seen, m_healed) = (median(&mut seen.clone()), median(&mut healed.clone()));
    let load = traffic.finish(nodes_killed.len())?;
    eprintln!(
        "kill -9 ×5: status left Ready after {seen:?} (median {m_seen:?}); Ready and settled \
         again after {healed:?} (median {m_healed:?}); {}",
        load.line()
    );
    load.check_nothing_lost("kill -9 ×5")?;
    if !late.is_empty() {
        return Err(format!(
            "the status left Ready later than {SEEN_WITHIN:?}: {}",
            late.join(", ")
        )
        .into());
    }
    Ok(())
}

/// The example's device config (namespace `test` in a file on the storage
/// volume, `flush-max-ms 1000`).
pub(crate) fn device_config() -> Result<String, Failed> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crd-like-specs/examples/aerospike-device.conf"
    );
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}").into())
}

/// Kills every running container of `name` at once (kill -9 on each
/// node's engine); how many.
fn kill_all(sandbox: &Sandbox, name: &str) -> Result<usize, Failed> {
    let tasks = running_tasks(name)?;
    for task in &tasks {
        kill(sandbox, task)?;
    }
    Ok(tasks.len())
}

/// A whole-cluster kill: every container killed at once, 3 s after
/// [`RECORDS`] records were written through the official Python client
/// (the device files flushed, `flush-max-ms 1000`). With `persistent`, the
/// cluster declares the storage volume and runs the device config: it
/// comes back by itself, Ready 3/3, with the same lineage, no partition
/// lost and every record read back. Without (the control, the example's
/// memory config), it comes back too, but as a new lineage with every
/// record gone. Returns how long it took to be Ready again.
fn whole_cluster_kill(sandbox: &Sandbox, name: &str, persistent: bool) -> Result<Duration, Failed> {
    let volume = format!("{name}-data");
    // One left by a crashed run goes first; this one goes after the
    // cluster (declared before it), pass or fail.
    drop(VolumeGuard::new(sandbox, &volume)?);
    let _volume = VolumeGuard::new(sandbox, &volume)?;
    let _operator = Operator::deploy()?;
    let mut labels = spec_labels("3");
    let mount = format!("type=volume,source={volume},target=/opt/aerospike/data");
    let (config, extra): (String, Vec<&str>) = if persistent {
        labels.push(("aerospike.cluster.storage.volume", volume.as_str()));
        (device_config()?, vec!["--mount", mount.as_str()])
    } else {
        (crate::operator::example_config()?, vec![])
    };
    let _cluster =
        crate::operator::create_cluster_with_config(name, 3, true, &labels, &config, &extra)?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    // Records through the official client, then 3 s (more than the 2 s
    // the issue allows: `flush-max-ms 1000` has flushed them).
    records::write(sandbox, name, "test", RECORDS, "whole")?;
    std::thread::sleep(Duration::from_secs(3));
    let (before, dead_before) = namespace_loss(sandbox, name, "test")?;
    let lineage = before[0].clone();
    if lineage.is_empty() || before.iter().any(|l| *l != lineage) || dead_before != 0 {
        return Err(format!(
            "before the kill the nodes disagree or lost data: lineages {before:?}, dead \
             {dead_before}"
        )
        .into());
    }
    let killed = Instant::now();
    let n = kill_all(sandbox, name)?;
    // Every task is replaced by swarm; the status leaves Ready, then the
    // cluster must come back by itself.
    crate::sandbox::wait_until("the status to leave Ready", Duration::from_secs(10), || {
        Ok((status(name)?.phase != "Ready").then_some(()))
    })?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    let back = killed.elapsed();
    let (after, dead) = namespace_loss(sandbox, name, "test")?;
    let tally = records::check(sandbox, name, "test", RECORDS, "whole")?;
    eprintln!(
        "{name}: killed {n} containers at once; Ready 3/3 again after {back:?}; lineage before \
         {lineage}, after {after:?}, {dead} dead partitions; records (Python client): {tally:?}"
    );
    let same = after.iter().all(|l| *l == lineage);
    let all_found = tally.found == RECORDS as u64;
    let all_lost = tally.missing == RECORDS as u64;
    match (
        persistent,
        same && dead == 0 && all_found,
        !same && all_lost,
    ) {
        (true, true, _) => Ok(back),
        (true, false, _) => Err(format!(
            "with persistent storage the restart lost data: lineage {lineage} before, {after:?} \
             after, {dead} dead partitions; records {tally:?} of {RECORDS}"
        )
        .into()),
        (false, _, true) => Ok(back),
        (false, _, false) => Err(format!(
            "the memory control did not lose everything through a whole-cluster kill: lineage \
             {lineage} before, {after:?} after; records {tally:?} of {RECORDS} (the oracle \
             cannot see a loss)"
        )
        .into()),
    }
}

/// Issue 15 item 4: every node killed at once, with persistent storage —
/// the cluster meshes itself back without a person and loses nothing.
pub fn a_whole_cluster_kill_with_persistent_storage_loses_nothing(sandbox: &Sandbox) -> TestResult {
    whole_cluster_kill(sandbox, "e2e-fail-wholedev", true).map(|_| ())
}

/// The control: the same kill with memory storage loses everything (a new
/// lineage), which shows the test above can fail.
pub fn a_whole_cluster_kill_with_memory_storage_loses_everything(sandbox: &Sandbox) -> TestResult {
    whole_cluster_kill(sandbox, "e2e-fail-wholemem", false).map(|_| ())
}

/// [`device_config`] with a second namespace, `mem`, in memory: one
/// cluster, one rollout and one lost node for both kinds of storage, so
/// that the memory namespace is the control under the very same event.
pub(crate) fn device_and_memory_config() -> Result<String, Failed> {
    Ok(format!(
        "{}\nnamespace mem {{\n\treplication-factor 2\n\tdefault-ttl 0\n\n\tstorage-engine memory \
         {{\n\t\tdata-size 1G\n\t}}\n}}\n",
        device_config()?
    ))
}

/// The sim's loss oracle for namespace `ns` over the running nodes:
/// (lineages seen, largest `dead_partitions`).
pub(crate) fn namespace_loss(
    sandbox: &Sandbox,
    name: &str,
    ns: &str,
) -> Result<(Vec<String>, u64), Failed> {
    let mut lineages = Vec::new();
    let mut dead = 0;
    for task in running_tasks(name)? {
        let reply = crate::sandbox::asinfo(sandbox, &task, None, &format!("namespace/{ns}"))?;
        let get = |key: &str| {
            reply
                .trim()
                .split(';')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .unwrap_or_default()
                .to_string()
        };
        lineages.push(get("sim_lineage"));
        dead = dead.max(get("dead_partitions").parse().unwrap_or(0));
    }
    Ok((lineages, dead))
}

/// A 3-node cluster whose tasks mount the storage volume `<name>-data` at
/// the data path (`aerospike.cluster.storage.volume`), on `config`, with
/// `env` (`KEY=VALUE`) in its tasks; Ready, 2 s settled (its device files
/// flushed), and with one lineage and nothing dead in namespace `test`,
/// which it returns. The cluster goes before its volume, pass or fail.
pub(crate) struct OnVolume {
    _cluster: crate::operator::ClusterGuard,
    _volume: VolumeGuard,
    pub(crate) lineage: String,
}

impl OnVolume {
    pub(crate) fn create(
        sandbox: &Sandbox,
        name: &str,
        config: &str,
        env: &str,
    ) -> Result<OnVolume, Failed> {
        let volume = format!("{name}-data");
        // One left by a crashed run goes first.
        drop(VolumeGuard::new(sandbox, &volume)?);
        let volume_guard = VolumeGuard::new(sandbox, &volume)?;
        let mut labels = spec_labels("3");
        labels.push(("aerospike.cluster.storage.volume", volume.as_str()));
        let mount = format!("type=volume,source={volume},target=/opt/aerospike/data");
        let cluster = crate::operator::create_cluster_with_config(
            name,
            3,
            true,
            &labels,
            config,
            &["--mount", &mount, "--env", env],
        )?;
        wait_ready(sandbox, name, 3, CONVERGE)?;
        std::thread::sleep(Duration::from_secs(2));
        let (lineages, dead) = namespace_loss(sandbox, name, "test")?;
        if lineages.iter().any(|l| l.is_empty() || *l != lineages[0]) || dead != 0 {
            return Err(
                format!("{name} before the change: lineages {lineages:?}, dead {dead}").into(),
            );
        }
        Ok(OnVolume {
            _cluster: cluster,
            _volume: volume_guard,
            lineage: lineages[0].clone(),
        })
    }
}

/// `aerospike.cluster.version=7.2.0.0` on `name`: the upgrade a user types.
pub(crate) fn upgrade(name: &str) -> TestResult {
    crate::sandbox::docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        "aerospike.cluster.version=7.2.0.0",
        name,
    ])?;
    Ok(())
}

/// The running tasks of `name` on image tag `tag`: (task id, node id).
pub(crate) fn tasks_on(name: &str, tag: &str) -> Result<Vec<(String, String)>, Failed> {
    Ok(crate::sandbox::running_task_json(name)?
        .iter()
        .filter(|t| {
            t["Status"]["State"] == "running"
                && t["Spec"]["ContainerSpec"]["Image"]
                    .as_str()
                    .is_some_and(|i| {
                        i.split('@')
                            .next()
                            .unwrap_or(i)
                            .ends_with(&format!(":{tag}"))
                    })
        })
        .map(|t| {
            (
                t["ID"].as_str().unwrap_or_default().to_string(),
                t["NodeID"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// How many action lines `action` the operator logged about `cluster`.
pub(crate) fn actions(operator: &Operator, cluster: &str, action: &str) -> Result<usize, Failed> {
    Ok(operator
        .logs()?
        .iter()
        .filter(|l| l["action"] == action && l["cluster"] == cluster)
        .count())
}

/// A worker's engine stopped, felt by two clusters at once (one engine
/// stop serves both, the suite's serial time being the scarce thing):
///
/// - **settled** (`e2e-fail-stop`): the two survivors form a cluster of two
///   and the status is Degraded; the node comes back: the status is
///   Migrating, never Ready, until every node's migrations are done, then
///   Ready 3/3, and the operator stays quiet ([`QUIET`], every kind of pass
///   run several times in it).
/// - **rolling** (`e2e-fail-hold`, issue 15 item 5): stopped while the
///   rollout is changing another node (the first one replaced, migrations
///   refilling it). Within 2 s the live status (the status config, whose
///   write releases nothing) names the lost node; while it is away nothing
///   more is released, nothing is rolled back and the service is not
///   written; once it returns the rollout finishes by itself. The device
///   namespace (on the storage volume) loses nothing; the memory namespace
///   beside it, under the same event, loses the partitions whose two copies
///   were on the replaced node and the stopped one (the control) — counted
///   by the sim's oracle and by the official client reading back the
///   [`RECORDS`] records written into each namespace before.
pub fn an_engine_stopped_degrades_a_settled_cluster_and_holds_a_rollout_without_loss(
    sandbox: &Sandbox,
) -> TestResult {
    let (settled, name) = ("e2e-fail-stop", "e2e-fail-hold");
    let operator = Operator::deploy_with(&QUIET_FLAGS)?;
    let _settled = create_cluster(settled, 3, true, &spec_labels("3"))?;
    let cluster = OnVolume::create(
        sandbox,
        name,
        &device_and_memory_config()?,
        "AEROSPIKE_SIM_MIGRATE_RATE=200",
    )?;
    // Records in both namespaces, 2 s before anything happens (flushed).
    records::write(sandbox, name, "test", RECORDS, "hold")?;
    records::write(sandbox, name, "mem", RECORDS, "hold")?;
    std::thread::sleep(Duration::from_secs(2));
    wait_status(settled, "Ready", "3/3", CONVERGE)?;
    wait_meshed(sandbox, settled, 3, None, CONVERGE)?;
    let workers = [(2, node_id_of(2)?), (3, node_id_of(3)?)];

    // The rollout; the first node replaced and just running (its
    // migrations take about 7 s at this rate): stop a worker that is not
    // that node.
    upgrade(name)?;
    let (first, (n, node)) =
        wait_until("the first node on 7.2.0.0", Duration::from_secs(60), || {
            let new = tasks_on(name, "7.2.0.0")?;
            Ok(match new.as_slice() {
                [(task, on)] => workers
                    .iter()
                    .find(|(_, id)| id != on)
                    .map(|w| (task.clone(), w.clone())),
                _ => None,
            })
        })?;
    let lost_ip = running_tasks(name)?
        .into_iter()
        .find(|t| t.node_id == node)
        .and_then(|t| t.address)
        .ok_or_else(|| format!("no task address on node {n}"))?;
    let released = actions(&operator, name, "rollout-next")?;
    let settled_statuses = status_phases(&operator, settled)?.len();
    let labels_then = crate::operator::labels(name)?;
    let _restart = RestartNode(n);
    sandbox_script(&["stop-node", &n.to_string()])?;
    let stopped = Instant::now();

    // Rolling: said live, within 2 s.
    let mut last = String::new();
    let said = wait_until(
        "the live status to name the stopped node",
        Duration::from_secs(15),
        || {
            let live = crate::operator::live_status(name)?.unwrap_or_default();
            last = format!("{} {}: {}", live.phase, live.ready, live.message);
            Ok(live.message.contains(&lost_ip).then(|| stopped.elapsed()))
        },
    )?;
    eprintln!(
        "{name}: node {n} stopped while task {first} changed; the live status said so after \
         {said:?}: {last}"
    );
    // Settled: Degraded 2/3, the stopped node out.
    wait_meshed(sandbox, settled, 2, Some(&node), NODE_FAULT)?;
    let st = wait_status(settled, "Degraded", "2/3", NODE_FAULT)?;
    if st.message.is_empty() {
        return Err("Degraded status without a message".into());
    }
    // Rolling, for 12 s in all: nothing more released (the first node's
    // task is the only one on the new version off the stopped node),
    // nothing rolled back, and the service labels not written at all.
    while stopped.elapsed() < HOLD {
        let moved: Vec<(String, String)> = tasks_on(name, "7.2.0.0")?
            .into_iter()
            .filter(|(task, on)| *on != node && *task != first)
            .collect();
        if !moved.is_empty() {
            return Err(format!(
                "a node was replaced while node {n} was away: {moved:?} (status {last})"
            )
            .into());
        }
        let live = crate::operator::live_status(name)?.unwrap_or_default();
        if live.phase == "Ready" || live.phase == "Error" {
            return Err(format!(
                "live status {} while node {n} was away: {}",
                live.phase, live.message
            )
            .into());
        }
        last = format!("{} {}: {}", live.phase, live.ready, live.message);
        std::thread::sleep(Duration::from_millis(250));
    }
    if crate::operator::labels(name)? != labels_then {
        return Err("the service's labels were written while a node was changing".into());
    }
    eprintln!("{name}: {HOLD:?} with node {n} away, nothing released; live status {last}");
    sandbox_script(&["start-node", &n.to_string()])?;

    // Settled: back to Ready through Migrating, with a task on the node.
    let (_, meshed) = wait_ready(sandbox, settled, 3, NODE_FAULT)?;
    if !meshed.tasks.iter().any(|t| t.node_id == node) {
        return Err(format!("after node {n} returned, no task of {settled} runs on it").into());
    }
    // The returning node started empty: its copies had to migrate in, and
    // the status said so before it said Ready.
    let phases = status_phases(&operator, settled)?;
    let after = &phases[settled_statuses.min(phases.len())..];
    let first_ready = after.iter().position(|p| p == "Ready");
    if !after[..first_ready.unwrap_or(after.len())]
        .iter()
        .any(|p| p == "Migrating")
    {
        return Err(format!(
            "after the node's return {settled} went {after:?}: no Migrating before Ready"
        )
        .into());
    }

    // Rolling: the rollout finishes by itself.
    wait_until("every node on 7.2.0.0", Duration::from_secs(240), || {
        Ok((tasks_on(name, "7.2.0.0")?.len() == 3).then_some(()))
    })?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    let took = stopped.elapsed();
    if actions(&operator, name, "rollout-next")? < released {
        return Err("the operator's log lost lines".into());
    }
    let rollbacks = actions(&operator, name, "rollback")?;
    let (device, device_dead) = namespace_loss(sandbox, name, "test")?;
    let (_, memory_dead) = namespace_loss(sandbox, name, "mem")?;
    let device_records = records::check(sandbox, name, "test", RECORDS, "hold")?;
    let memory_records = records::check(sandbox, name, "mem", RECORDS, "hold")?;
    eprintln!(
        "{name}: Ready on 7.2.0.0 {took:?} after the stop; device namespace: lineages {device:?} \
         (before {}), {device_dead} dead partitions, records {device_records:?}; memory \
         namespace: {memory_dead} dead partitions, records {memory_records:?}; rollbacks \
         {rollbacks}",
        cluster.lineage
    );
    if rollbacks > 0 {
        return Err("a lost node was taken for a failed rollout: rolled back".into());
    }
    if device_dead != 0
        || device.iter().any(|l| *l != cluster.lineage)
        || device_records.found != RECORDS as u64
    {
        return Err(format!("the device namespace lost data: records {device_records:?}").into());
    }
    if memory_dead == 0 || memory_records.missing == 0 {
        return Err(format!(
            "the memory control lost nothing ({memory_dead} dead partitions, records \
             {memory_records:?}): the test cannot see a loss"
        )
        .into());
    }
    if said > SEEN_WITHIN {
        return Err(format!("the live status named the lost node after {said:?}").into());
    }
    check_quiet_for(
        &operator,
        QUIET,
        "both clusters Ready after a node's return",
    )?;
    Ok(())
}

/// Issue 15 item 3: an upgrade of a cluster on the storage volume whose
/// nodes each cold-start for about 18 s (`AEROSPIKE_SIM_COLD_START_RATE`
/// 150 copies/s), under `--node-join-timeout 12s`: each cold start is
/// longer than the join timeout, but it makes progress (the server's
/// ticker line every 5 s, read from the task's log), so nothing is rolled
/// back; the live status says a node is cold-starting on the way; the
/// upgrade completes and the device namespace loses nothing (lineage,
/// dead partitions, and every record the client wrote before). (A node that
/// truly never joins is still rolled back:
/// `rollout::a_version_that_never_joins_is_rolled_back_after_the_join_timeout`.)
pub fn an_upgrade_whose_cold_starts_outlast_the_join_timeout_completes_without_loss(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-fail-cold";
    let operator = Operator::deploy_with(&["--node-join-timeout", "12s"])?;
    let cluster = OnVolume::create(
        sandbox,
        name,
        &device_config()?,
        "AEROSPIKE_SIM_COLD_START_RATE=150",
    )?;
    records::write(sandbox, name, "test", RECORDS, "cold")?;
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    upgrade(name)?;
    let (mut cold_seen, mut error_seen) = (None, None);
    let mut last = String::new();
    wait_until(
        "every node on 7.2.0.0, Ready",
        Duration::from_secs(240),
        || {
            let live = crate::operator::live_status(name)?.unwrap_or_default();
            if live.message.contains("is cold-starting") && cold_seen.is_none() {
                cold_seen = Some(live.message.clone());
            }
            if live.phase == "Error" && error_seen.is_none() {
                error_seen = Some(live.message.clone());
            }
            last = format!("{} {}: {}", live.phase, live.ready, live.message);
            let rolled = tasks_on(name, "7.2.0.0")?.len() == 3;
            Ok((rolled && live.phase == "Ready").then_some(()))
        },
    )
    .map_err(|e| format!("{} (last status {last})", e.message().unwrap_or("?")))?;
    let took = started.elapsed();
    wait_ready(sandbox, name, 3, CONVERGE)?;
    let rollbacks = actions(&operator, name, "rollback")?;
    let (after, dead) = namespace_loss(sandbox, name, "test")?;
    let tally = records::check(sandbox, name, "test", RECORDS, "cold")?;
    eprintln!(
        "{name}: upgraded in {took:?} with each node cold-starting longer than the 12 s join \
         timeout; rollbacks {rollbacks}; status on the way: {cold_seen:?}; lineages {after:?} \
         (before {}), {dead} dead partitions; records {tally:?}",
        cluster.lineage
    );
    if rollbacks > 0 || error_seen.is_some() {
        return Err(format!(
            "a cold start was taken for a failed join: {rollbacks} rollbacks, status Error \
             {error_seen:?}"
        )
        .into());
    }
    if cold_seen.is_none() {
        return Err("the status never said a node was cold-starting".into());
    }
    if dead != 0 || after.iter().any(|l| *l != cluster.lineage) || tally.found != RECORDS as u64 {
        return Err(format!("the upgrade lost data: records {tally:?} of {RECORDS}").into());
    }
    Ok(())
}
