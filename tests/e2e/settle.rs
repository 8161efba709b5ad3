//! Issue 7 end to end: with the config the README ships, a cluster that
//! the status calls Ready is settled on every node, and a settled cluster
//! costs the operator nothing — after a resize through the label, after a
//! resize back, after a node's return. A config bound to `address any`
//! (every interface, docker_gwbridge included) is named in the status
//! with the fix, reported stalled, never Ready, and not fought with
//! orders.
//!
//! "Settled" is read the way a user would: every node's `statistics` and
//! `cluster-stable` right after Ready (`check_every_node_settled`, inside
//! `wait_ready`), and the operator's own cumulative counters over a quiet
//! window (`check_quiet_for`) in which every kind of pass runs several
//! times (`QUIET_FLAGS`).

use std::time::Duration;

use serde_json::Value;

use crate::operator::{
    check_quiet_for, create_cluster, create_cluster_with_config, example_config, spec_labels,
    status, wait_ready, Operator, CONVERGE, QUIET, QUIET_FLAGS,
};
use crate::sandbox::{asinfo, docker, docker_at, running_tasks, wait_until, Sandbox};
use crate::TestResult;

/// How long the `address any` cluster is watched for orders: two of its
/// operator's migration stall periods (30 s), so that a write repeated
/// once per stall period would show twice.
const QUIET_STALLED: Duration = Duration::from_secs(60);

/// The operator's `status` lines about `cluster`, in order.
fn status_lines(operator: &Operator, cluster: &str) -> Result<Vec<Value>, libtest_mimic::Failed> {
    Ok(operator
        .actions_for(cluster)?
        .into_iter()
        .filter(|l| l["action"] == "status")
        .collect())
}

/// Resizes `cluster` through its label, as a user would.
fn set_replicas(cluster: &str, replicas: usize) -> TestResult {
    docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        &format!("aerospike.cluster.replicas={replicas}"),
        cluster,
    ])?;
    Ok(())
}

/// Waits until no node of `cluster` lists a node among its alumni that is
/// not one of its peers: the departed ones were reset away.
fn wait_alumni_clean(sandbox: &Sandbox, cluster: &str) -> TestResult {
    wait_until(
        &format!("{cluster}: every node's alumni are its peers only"),
        CONVERGE,
        || {
            for task in running_tasks(cluster)? {
                let peers = asinfo(sandbox, &task, None, "peers-clear-std")?;
                let alumni = asinfo(sandbox, &task, None, "alumni-clear-std")?;
                // `<gen>,<port>,[...]`: the lists after the generation.
                let list = |v: &str| v.trim().splitn(3, ',').nth(2).unwrap_or("").to_string();
                if list(&peers) != list(&alumni) {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
}

/// The shipped example config: Ready 3/3 and quiet; resized to 2 through
/// the label (logged as a resize, not as a manual scale): Ready 2/2, the
/// departed node cleaned from the survivors' alumni, quiet; back to 3:
/// Ready 3/3, quiet. Every Ready is checked on every node at once.
pub fn the_example_config_resizes_3_2_3_and_each_end_is_settled_and_quiet(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-settle-resize";
    let operator = Operator::deploy_with(&QUIET_FLAGS)?;
    let _cluster = create_cluster(name, 1, false, &spec_labels("3"))?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    check_quiet_for(&operator, QUIET, "Ready 3/3")?;

    set_replicas(name, 2)?;
    wait_ready(sandbox, name, 2, CONVERGE)?;
    let scales: Vec<Value> = operator
        .actions_for(name)?
        .into_iter()
        .filter(|l| l["action"] == "scale")
        .collect();
    let resize = scales
        .iter()
        .find(|l| l["reason"].as_str().unwrap_or("").contains("from 3 to 2"))
        .ok_or_else(|| format!("no scale from 3 to 2 logged: {scales:?}"))?;
    let reason = resize["reason"].as_str().unwrap_or_default();
    if !reason.starts_with("resizing from 3 to 2 replicas: the label changed")
        || reason.contains("outside the operator")
    {
        return Err(format!("a label resize is logged as {reason:?}").into());
    }
    wait_alumni_clean(sandbox, name)?;
    check_quiet_for(&operator, QUIET, "Ready 2/2 after 3 -> 2")?;

    set_replicas(name, 3)?;
    wait_ready(sandbox, name, 3, CONVERGE)?;
    check_quiet_for(&operator, QUIET, "Ready 3/3 after 2 -> 3")?;
    Ok(())
}

/// The example config with every `address eth0` turned into `address any`,
/// as many published configs have it.
fn address_any_config() -> Result<String, libtest_mimic::Failed> {
    let config = example_config()?;
    let any = config.replace("address eth0", "address any");
    if any == config {
        return Err("the example config binds no `address eth0` to replace".into());
    }
    Ok(any)
}

/// Name prefix of the containers [`align_gwbridge`] starts.
const PAD: &str = "asw-e2e-gwpad";

/// Throwaway containers on workers' docker_gwbridge, removed by name when
/// dropped.
struct Pads(Vec<(String, String)>);

impl Drop for Pads {
    fn drop(&mut self) {
        for (socket, name) in &self.0 {
            let _ = docker_at(socket, &["rm", "-f", name]);
        }
    }
}

/// The lowest free address of the daemon's docker_gwbridge (Docker hands
/// out the lowest free one): its last octet.
fn next_gwbridge_octet(socket: &str) -> Result<u8, libtest_mimic::Failed> {
    let used = docker_at(
        socket,
        &[
            "network",
            "inspect",
            "docker_gwbridge",
            "--format",
            "{{range .Containers}}{{.IPv4Address}} {{end}}",
        ],
    )?;
    let used: Vec<u8> = used
        .split_whitespace()
        .filter_map(|a| a.split('/').next()?.rsplit('.').next()?.parse().ok())
        .collect();
    (2..=254)
        .find(|o| !used.contains(o))
        .ok_or_else(|| "docker_gwbridge is full".into())
}

/// Makes every worker's docker_gwbridge hand out the same next address,
/// as on hosts that run the same containers: a worker that was restarted
/// may have its gateway endpoint elsewhere, so the next address differs.
/// Pads the worker with the lower next address with a throwaway container
/// until they agree. Leftover pads of a crashed run are removed first.
fn align_gwbridge(sandbox: &Sandbox) -> Result<Pads, libtest_mimic::Failed> {
    let workers: Vec<String> = sandbox
        .node_sockets()?
        .into_values()
        .filter(|s| s != "/var/run/docker.sock")
        .collect();
    for socket in &workers {
        let old = docker_at(socket, &["ps", "-aq", "--filter", &format!("name={PAD}")])?;
        for id in old.split_whitespace() {
            let _ = docker_at(socket, &["rm", "-f", id]);
        }
    }
    let mut pads = Pads(Vec::new());
    for round in 0..16 {
        let next: Vec<u8> = workers
            .iter()
            .map(|s| next_gwbridge_octet(s))
            .collect::<Result<_, _>>()?;
        let (low, high) = (next.iter().min(), next.iter().max());
        if low == high {
            return Ok(pads);
        }
        let lowest = next.iter().position(|n| Some(n) == low).unwrap_or(0);
        let name = format!("{PAD}-{round}");
        docker_at(
            &workers[lowest],
            &[
                "run",
                "--detach",
                "--name",
                &name,
                "--network",
                "docker_gwbridge",
                crate::operator::SERVER_IMAGE,
            ],
        )?;
        pads.0.push((workers[lowest].clone(), name));
    }
    Err("could not line up the workers' docker_gwbridge addresses".into())
}

/// The operator's status lines about `name`, one short line each.
fn status_history(operator: &Operator, name: &str) -> Vec<String> {
    status_lines(operator, name)
        .unwrap_or_default()
        .iter()
        .map(|l| format!("{} {} {}", l["timestamp"], l["phase"], l["reason"]))
        .collect()
}

/// `address any` on swarm: every node also publishes its docker_gwbridge
/// address, and two nodes on different hosts share it (the sandbox's
/// workers have the same gwbridge subnet, as hosts have in production; the
/// test places its two nodes on the two workers and checks that they
/// collide). Within a minute the status names a node, the stray address
/// and the fix; migrations are reported stalled; the status never says
/// Ready; and the operator does not keep sending orders about the
/// phantom addresses, nor rewriting the status.
pub fn address_any_is_named_reported_stalled_and_left_alone(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-settle-any";
    let flags = [&["--migration-stall-timeout", "30s"][..], &QUIET_FLAGS[..]].concat();
    let operator = Operator::deploy_with(&flags)?;
    let _pads = align_gwbridge(sandbox)?;
    let _cluster = create_cluster_with_config(
        name,
        1,
        false,
        &spec_labels("2"),
        &address_any_config()?,
        &["--constraint", "node.role==worker"],
    )?;
    let named = wait_until(
        "the status naming a stray address and the fix",
        Duration::from_secs(60) + CONVERGE,
        || {
            let st = status(name)?;
            let named = st.phase == "Degraded"
                && st.ready == "2/2"
                && st.message.contains("publishes")
                && st.message.contains("not its address on network")
                && st.message.contains("address eth0");
            Ok(named.then_some(st))
        },
    )?;
    // The stray addresses are ones the nodes really publish, and the two
    // nodes share one: the production failure.
    let published: Vec<Vec<String>> = running_tasks(name)?
        .iter()
        .map(|t| {
            Ok(asinfo(sandbox, t, None, "service-clear-std")?
                .trim()
                .split(',')
                .filter_map(|e| e.rsplit_once(':').map(|(ip, _)| ip.to_string()))
                .collect())
        })
        .collect::<Result<_, libtest_mimic::Failed>>()?;
    let shared = published
        .first()
        .into_iter()
        .flatten()
        .find(|ip| published.iter().skip(1).all(|p| p.contains(ip)));
    let Some(shared) = shared else {
        return Err(format!(
            "the two nodes publish no common address ({published:?}): the sandbox's workers \
             should share their docker_gwbridge subnet; the status said {:?}",
            named.message
        )
        .into());
    };
    if !named.message.contains(shared.as_str()) {
        return Err(format!(
            "the status does not name the shared address {shared}: {:?}",
            named.message
        )
        .into());
    }
    // The tasks run on the lined-up addresses; what is left (the stall
    // timeout, then a quiet minute) no other test's tasks can shift.
    crate::share_the_swarm("settle::address_any_is_named_reported_stalled_and_left_alone");
    let mut last = None;
    let stalled = wait_until(
        "the migrations reported stalled",
        Duration::from_secs(180),
        || {
            let st = status(name)?;
            last = Some(st.clone());
            Ok((st.phase == "Degraded" && st.message.contains("stalled")).then_some(st))
        },
    )
    .map_err(|e| {
        let history = status_history(&operator, name);
        format!(
            "{} (last status {last:?}; status history: {history:#?})",
            e.message().unwrap_or("?")
        )
    })?;
    check_quiet_for(&operator, QUIET_STALLED, "a cluster with stray addresses").map_err(|e| {
        let history = status_history(&operator, name);
        format!(
            "{} (status history: {history:#?})",
            e.message().unwrap_or("?")
        )
    })?;
    if let Some(ready) = status_lines(&operator, name)?
        .iter()
        .find(|l| l["phase"] == "Ready")
    {
        return Err(format!("an `address any` cluster was called Ready: {ready}").into());
    }
    if !stalled.message.contains("address eth0") {
        return Err(format!("the stalled status lost the fix: {:?}", stalled.message).into());
    }
    Ok(())
}
