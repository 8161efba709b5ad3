//! Issue 16 item 5: nodes and network, as the world breaks them.
//!
//! - A worker drained (`docker node update --availability drain`) while the
//!   cluster is settled: swarm stops its task and has nowhere to put it
//!   (one per node); the status leaves Ready and says a task waits for a
//!   node; the node made active again, the cluster is Ready 3/3 and every
//!   record written before is there, in both namespaces (one node out,
//!   replication factor 2: replication allows it).
//! - A worker cut off its veth (a network partition: its engine and tasks
//!   run on, unreachable) while a rollout holds another node: the live
//!   status names the lost node within [`SEEN_WITHIN`]; nothing more is
//!   released while it is away ([`HOLD`]); healed, the rollout completes by
//!   itself, nothing is rolled back, and the device namespace loses
//!   nothing. The memory namespace beside it is reported, not judged: two
//!   nodes were out at once, and whether swarm restarted the partitioned
//!   node's task on its return decides what it kept.
//! - The same worker drained while a rollout holds another node, and made
//!   active again: the same, nothing released, nothing rolled back,
//!   nothing lost on the device namespace.

use std::process::Command;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use crate::failures::{
    actions, device_and_memory_config, namespace_loss, tasks_on, OnVolume, HOLD, RECORDS,
    SEEN_WITHIN,
};
use crate::operator::{live_status, wait_ready, Operator, CONVERGE, QUIET_FLAGS};
use crate::reconciler::NODE_FAULT;
use crate::records;
use crate::sandbox::{docker, node_id_of, running_tasks, wait_until, Sandbox};
use crate::TestResult;

/// Puts a drained node back to active when dropped (also on failure).
struct Undrain(String);

impl Drop for Undrain {
    fn drop(&mut self) {
        let _ = docker(&["node", "update", "--availability", "active", &self.0]);
    }
}

/// Sets sandbox node `n`'s veth (host side) up again when dropped.
struct Heal(usize);

impl Drop for Heal {
    fn drop(&mut self) {
        let _ = link(self.0, "up");
    }
}

/// `ip link set asw-v<n> up|down`: sandbox node `n`'s only link
/// (scripts/sandbox, `ensure_netns`).
fn link(n: usize, state: &str) -> TestResult {
    let veth = format!("asw-v{n}");
    let out = Command::new("ip")
        .args(["link", "set", &veth, state])
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip link set {veth} {state}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

fn availability(node: &str, to: &str) -> TestResult {
    docker(&["node", "update", "--availability", to, node])?;
    Ok(())
}

/// The live status as one line.
fn live_line(name: &str) -> Result<(String, String), Failed> {
    let live = live_status(name)?.unwrap_or_default();
    Ok((
        live.phase.clone(),
        format!("{} {}: {}", live.phase, live.ready, live.message),
    ))
}

/// See the module docs.
pub fn a_drain_and_a_partition_hold_a_rollout_and_lose_nothing(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-net";
    let operator = Operator::deploy_with(&QUIET_FLAGS)?;
    let cluster = OnVolume::create(
        sandbox,
        name,
        &device_and_memory_config()?,
        "AEROSPIKE_SIM_MIGRATE_RATE=200",
    )?;
    records::write(sandbox, name, "test", RECORDS, "net")?;
    records::write(sandbox, name, "mem", RECORDS, "net")?;
    std::thread::sleep(Duration::from_secs(2));
    let workers = [(2, node_id_of(2)?), (3, node_id_of(3)?)];

    // 1. A worker drained while settled.
    let (_, drained_node) = workers[1].clone();
    let undrain = Undrain(drained_node.clone());
    let drained = Instant::now();
    availability(&drained_node, "drain")?;
    let mut last = String::new();
    let left = wait_until(
        "the status to leave Ready after the drain",
        Duration::from_secs(30),
        || {
            let (phase, line) = live_line(name)?;
            last = line;
            Ok((phase != "Ready" && !phase.is_empty()).then(|| drained.elapsed()))
        },
    )?;
    eprintln!("{name}: drained a worker; the status left Ready after {left:?}: {last}");
    std::thread::sleep(Duration::from_secs(5));
    let (phase, line) = live_line(name)?;
    if phase == "Ready" || phase == "Error" {
        return Err(format!("with a worker drained the status read {line}").into());
    }
    eprintln!("{name}: 5 s later: {line}");
    availability(&drained_node, "active")?;
    drop(undrain);
    wait_ready(sandbox, name, 3, NODE_FAULT)?;
    let back = drained.elapsed();
    for ns in ["test", "mem"] {
        let tally = records::check(sandbox, name, ns, RECORDS, "net")?;
        if tally.found != RECORDS as u64 {
            return Err(format!(
                "after a drain of one worker, namespace {ns} lost records: {tally:?}"
            )
            .into());
        }
    }
    eprintln!("{name}: Ready 3/3 {back:?} after the drain, every record in both namespaces");

    // 2. A worker partitioned while a rollout holds another node.
    let rolled_back = actions(&operator, name, "rollback")?;
    crate::failures::upgrade(name)?;
    let (first, (n, node)) = first_replaced(name, &workers)?;
    let lost_ip = address_on(name, &node)?;
    let heal = Heal(n);
    link(n, "down")?;
    let cut = Instant::now();
    let said = wait_until(
        "the live status to name the partitioned node",
        Duration::from_secs(15),
        || {
            let (_, line) = live_line(name)?;
            let named = line.contains(&lost_ip);
            last = line;
            Ok(named.then(|| cut.elapsed()))
        },
    )?;
    eprintln!(
        "{name}: node {n} partitioned while task {first} changed; named after {said:?}: {last}"
    );
    hold_nothing_released(name, &first, &node, cut, &mut last)?;
    link(n, "up")?;
    drop(heal);
    let (device_records, memory_records) = finish(sandbox, name, "7.2.0.0", &cluster)?;
    eprintln!(
        "{name}: healed; Ready on 7.2.0.0 {:?} after the cut; device records {device_records:?}; \
         memory records {memory_records:?} (reported, not judged)",
        cut.elapsed()
    );
    if said > SEEN_WITHIN {
        return Err(format!("the live status named the partitioned node after {said:?}").into());
    }

    // 3. The other worker drained while a rollout (back to 7.1.0.0) holds
    // a node.
    docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        "aerospike.cluster.version=7.1.0.0",
        name,
    ])?;
    let (first, (_, node)) = {
        let mut picked = None;
        wait_until("the first node on 7.1.0.0", Duration::from_secs(60), || {
            let new = tasks_on(name, "7.1.0.0")?;
            if let [(task, on)] = new.as_slice() {
                picked = workers
                    .iter()
                    .find(|(_, id)| id != on)
                    .map(|w| (task.clone(), w.clone()));
            }
            Ok(picked.clone())
        })?
    };
    let undrain = Undrain(node.clone());
    availability(&node, "drain")?;
    let drained = Instant::now();
    hold_nothing_released(name, &first, &node, drained, &mut last)?;
    availability(&node, "active")?;
    drop(undrain);
    let (device_records, memory_records) = finish(sandbox, name, "7.1.0.0", &cluster)?;
    eprintln!(
        "{name}: undrained; Ready on 7.1.0.0 {:?} after the drain; device records \
         {device_records:?}; memory records {memory_records:?} (reported, not judged)",
        drained.elapsed()
    );
    if actions(&operator, name, "rollback")? > rolled_back {
        return Err("a lost or drained node was taken for a failed rollout: rolled back".into());
    }
    Ok(())
}

/// Waits until the rollout has replaced exactly one node; that task and a
/// worker (number, node id) that does not run it.
fn first_replaced(
    name: &str,
    workers: &[(usize, String)],
) -> Result<(String, (usize, String)), Failed> {
    wait_until("the first node on 7.2.0.0", Duration::from_secs(60), || {
        let new = tasks_on(name, "7.2.0.0")?;
        Ok(match new.as_slice() {
            [(task, on)] => workers
                .iter()
                .find(|(_, id)| id != on)
                .map(|w| (task.clone(), w.clone())),
            _ => None,
        })
    })
}

/// The overlay address of `name`'s task on `node`.
fn address_on(name: &str, node: &str) -> Result<String, Failed> {
    running_tasks(name)?
        .into_iter()
        .find(|t| t.node_id == node)
        .and_then(|t| t.address)
        .ok_or_else(|| format!("no task address of {name} on node {node}").into())
}

/// For [`HOLD`] from `since`: no task but `first` (and whatever runs on the
/// lost `node`) moved to a new version, and the live status never read
/// Ready or Error.
fn hold_nothing_released(
    name: &str,
    first: &str,
    node: &str,
    since: Instant,
    last: &mut String,
) -> TestResult {
    let before: Vec<String> = running_tasks(name)?.into_iter().map(|t| t.id).collect();
    while since.elapsed() < HOLD {
        let moved: Vec<String> = running_tasks(name)?
            .into_iter()
            .filter(|t| t.state == "running")
            .filter(|t| t.node_id != node && t.id != first && !before.contains(&t.id))
            .map(|t| t.id)
            .collect();
        if !moved.is_empty() {
            return Err(format!(
                "a node was replaced while another was away: new tasks {moved:?} (status {last})"
            )
            .into());
        }
        let (phase, line) = live_line(name)?;
        if phase == "Ready" || phase == "Error" {
            return Err(format!("live status {line} while a node was away").into());
        }
        *last = line;
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("{name}: {HOLD:?} with a node away, nothing released; live status {last}");
    Ok(())
}

/// Waits for every node on `tag` and Ready; checks the device namespace
/// kept its lineage and every record; the device and memory tallies.
fn finish(
    sandbox: &Sandbox,
    name: &str,
    tag: &str,
    cluster: &OnVolume,
) -> Result<(records::Tally, records::Tally), Failed> {
    wait_until(
        &format!("every node on {tag}"),
        Duration::from_secs(240),
        || Ok((tasks_on(name, tag)?.len() == 3).then_some(())),
    )?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    let (lineages, dead) = namespace_loss(sandbox, name, "test")?;
    let device = records::check(sandbox, name, "test", RECORDS, "net")?;
    let memory = records::check(sandbox, name, "mem", RECORDS, "net")?;
    if dead != 0 || lineages.iter().any(|l| *l != cluster.lineage) || device.found != RECORDS as u64
    {
        return Err(format!(
            "the device namespace lost data: lineages {lineages:?} (before {}), {dead} dead \
             partitions, records {device:?}",
            cluster.lineage
        )
        .into());
    }
    Ok((device, memory))
}
