//! The server config as data (issue 17): a cluster whose config comes
//! from a swarm config object (`aerospike.cluster.config-object`), which
//! the operator reads, checks before it rolls, and applies live where the
//! server takes a parameter live.
//!
//! - A `proto-fd-max` change is set with `set-config` on every node: no
//!   task restarts, every node's `get-config` shows the new value, and the
//!   status says `applied live (proto-fd-max)`. A node killed afterwards
//!   comes back with the template's (old) config and gets the value again
//!   before the cluster is Ready.
//! - A config with `rack-id` on a Community image is refused before it
//!   rolls: status Error naming the line, and no task restarts (the
//!   control: the same cluster does restart for the static change next).
//! - A static change (a line the server takes only at start) rolls, one
//!   node at a time, and every task mounts the new config.

use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use crate::operator::{
    create_service, example_config, labels, spec_labels, task_ids, wait_ready, ClusterGuard,
    ConfigSource, Operator, CONVERGE,
};
use crate::rollout::{check_safe, label_add, with_log, ObjectGuard};
use crate::sandbox::{docker, overlay_info, running_tasks, wait_until, Sandbox};
use crate::TestResult;

/// How long a refused config is watched for a restart that must not come.
const REFUSED_WINDOW: Duration = Duration::from_secs(15);

/// A managed Community 7.1 cluster of 3 nodes whose config is the config
/// object `config`, mounted at /run/secrets/aerospike.conf (one task per
/// node from the start).
fn config_object_cluster(name: &str, config: &str) -> Result<ClusterGuard, Failed> {
    let guard = ClusterGuard(name.to_string());
    let _ = docker(&["service", "rm", name]);
    create_service(
        "aerospike/aerospike-server:7.1.0.0",
        name,
        1,
        true,
        &spec_labels("3"),
        ConfigSource::Object(config),
        &[],
    )?;
    Ok(guard)
}

/// An operator and a Ready [`config_object_cluster`] it manages.
fn ready_cluster(
    sandbox: &Sandbox,
    name: &str,
    config: &str,
) -> Result<(Operator, ClusterGuard), Failed> {
    let operator = Operator::deploy()?;
    let cluster = config_object_cluster(name, config)?;
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;
    Ok((operator, cluster))
}

/// `aerospike.status.KEY` of the service's labels ("" when absent).
fn status_label(service: &str, key: &str) -> Result<String, Failed> {
    Ok(labels(service)?
        .get(&format!("aerospike.status.{key}"))
        .cloned()
        .unwrap_or_default())
}

/// Each running node's `proto-fd-max`, from its own `get-config`.
fn proto_fd_max(sandbox: &Sandbox, service: &str) -> Result<Vec<(String, String)>, Failed> {
    let mut values = Vec::new();
    for task in running_tasks(service)?
        .into_iter()
        .filter(|t| t.state == "running")
    {
        let host = task.address.clone().unwrap_or_default();
        let reply = overlay_info(
            sandbox,
            &task,
            &host,
            "get-config:context=service",
            Duration::from_secs(3),
        )?;
        let value = reply
            .split(';')
            .find_map(|kv| kv.strip_prefix("proto-fd-max="))
            .unwrap_or("(absent)")
            .to_string();
        values.push((task.id.chars().take(10).collect(), value));
    }
    Ok(values)
}

/// Waits until the cluster is Ready with `config` as its status's config
/// line and every node's `get-config` shows `proto-fd-max=value`.
fn wait_live(
    sandbox: &Sandbox,
    operator: &Operator,
    name: &str,
    config: &str,
    value: &str,
) -> Result<(), Failed> {
    let mut last = (String::new(), Vec::new());
    let done = wait_until(
        &format!("{name}: Ready, `{config}`, proto-fd-max={value} on every node"),
        CONVERGE,
        || {
            let shown = status_label(name, "config")?;
            let phase = status_label(name, "phase")?;
            let values = proto_fd_max(sandbox, name).unwrap_or_default();
            let all = values.len() == 3 && values.iter().all(|(_, v)| v == value);
            last = (format!("{phase} {shown:?}"), values);
            Ok((phase == "Ready" && shown == config && all).then_some(()))
        },
    )
    .map_err(|e| {
        Failed::from(format!(
            "{} (last: status {}, nodes {:?})",
            e.message().unwrap_or("?"),
            last.0,
            last.1
        ))
    });
    with_log(operator, name, done)
}

/// A live `proto-fd-max` change restarts no task; a node killed after it
/// comes back with the value set again before the cluster is Ready.
pub fn a_live_change_restarts_nothing_and_a_crashed_node_gets_it_again(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-live-config";
    let base = example_config()?;
    let raised = base.replace("proto-fd-max 15000", "proto-fd-max 16000");
    if raised == base {
        return Err("the example config has no `proto-fd-max 15000` to change".into());
    }
    let first = format!("{name}-a");
    let second = format!("{name}-b");
    // Declared before the cluster: dropped after it.
    let _first = ObjectGuard::config(&first, &base)?;
    let _second = ObjectGuard::config(&second, &raised)?;
    let (operator, _cluster) = ready_cluster(sandbox, name, &first)?;
    let before = task_ids(name)?;
    let started = Instant::now();
    label_add(name, &[("aerospike.cluster.config-object", &second)])?;
    wait_live(
        sandbox,
        &operator,
        name,
        "applied live (proto-fd-max)",
        "16000",
    )?;
    eprintln!(
        "live config: proto-fd-max 16000 on every node {:.1}s after the label",
        started.elapsed().as_secs_f64()
    );
    let after = task_ids(name)?;
    if after != before {
        return Err(format!("a live change restarted tasks: {before:?} became {after:?}").into());
    }
    let live = status_label(name, "config-live")?;
    if live != second {
        return Err(format!("status config-live is {live:?}, not {second:?}").into());
    }

    // A crash: the node restarts with the template's config (15000).
    let victim = running_tasks(name)?
        .into_iter()
        .find(|t| t.state == "running")
        .ok_or("no running task to kill")?;
    crate::failures::kill(sandbox, &victim)?;
    let killed = Instant::now();
    wait_until(
        &format!("{name}: a new task in place of {}", victim.id),
        CONVERGE,
        || {
            let ids = task_ids(name)?;
            Ok((ids.len() == 3 && !ids.contains(&victim.id)).then_some(()))
        },
    )?;
    wait_live(
        sandbox,
        &operator,
        name,
        "applied live (proto-fd-max)",
        "16000",
    )?;
    eprintln!(
        "live config: the killed node's replacement runs proto-fd-max 16000 again {:.1}s after \
         the kill",
        killed.elapsed().as_secs_f64()
    );
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )
}

/// `rack-id` on a Community image is refused before anything restarts; a
/// static change rolls one node at a time and every task mounts it.
pub fn rack_id_on_community_is_refused_and_a_static_change_rolls(sandbox: &Sandbox) -> TestResult {
    let name = "e2e-static-config";
    let base = example_config()?;
    let with_rack = base.replace("replication-factor 2", "replication-factor 2\n\track-id 1");
    let with_sprigs = base.replace(
        "replication-factor 2",
        "replication-factor 2\n\tpartition-tree-sprigs 512",
    );
    if with_rack == base || with_sprigs == base {
        return Err("the example config has no `replication-factor 2` to add to".into());
    }
    let first = format!("{name}-a");
    let racked = format!("{name}-rack");
    let sprigs = format!("{name}-sprigs");
    let _first = ObjectGuard::config(&first, &base)?;
    let _racked = ObjectGuard::config(&racked, &with_rack)?;
    let _sprigs = ObjectGuard::config(&sprigs, &with_sprigs)?;
    let (operator, _cluster) = ready_cluster(sandbox, name, &first)?;

    // rack-id on Community: refused, nothing restarts.
    let before = task_ids(name)?;
    label_add(name, &[("aerospike.cluster.config-object", &racked)])?;
    let refused = wait_until(
        &format!("{name}: status Error naming rack-id"),
        Duration::from_secs(60),
        || {
            let phase = status_label(name, "phase")?;
            let message = status_label(name, "message")?;
            Ok((phase == "Error" && message.contains("rack-id")).then_some(message))
        },
    );
    let message = with_log(&operator, name, refused)?;
    eprintln!("rack-id on Community: {message}");
    let watch = Instant::now();
    while watch.elapsed() < REFUSED_WINDOW {
        let now = task_ids(name)?;
        if now != before {
            return Err(format!(
                "a refused config restarted tasks: {before:?} became {now:?} after {:.1}s",
                watch.elapsed().as_secs_f64()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // A static change: a rolling restart, one node at a time.
    let sampler =
        crate::rollout::Sampler::start(sandbox, name, crate::rollout::Expected::Nodes(3))?;
    let started = Instant::now();
    label_add(name, &[("aerospike.cluster.config-object", &sprigs)])?;
    let rolled = wait_until(
        &format!("{name}: every task mounts {sprigs}, Ready"),
        crate::rollout::ROLLOUT,
        || {
            let mounts = config_mounts(name)?;
            let phase = status_label(name, "phase")?;
            let all = mounts.len() == 3 && mounts.iter().all(|m| m == &sprigs);
            Ok((all && phase == "Ready").then_some(()))
        },
    );
    let took = started.elapsed();
    let report = sampler.finish();
    with_log(&operator, name, rolled)?;
    check_safe(
        sandbox,
        &operator,
        name,
        "static config change",
        &report,
        took,
    )?;
    let shown = status_label(name, "config")?;
    if !shown.starts_with("rolling restart (") || !shown.contains("partition-tree-sprigs") {
        return Err(format!("status config {shown:?} does not say why it restarted").into());
    }
    let after = task_ids(name)?;
    if after.iter().any(|id| before.contains(id)) {
        return Err(
            format!("tasks not restarted by the static change: {before:?} -> {after:?}").into(),
        );
    }
    eprintln!(
        "static config change: rolled in {:.1}s; status `{shown}`",
        took.as_secs_f64()
    );
    Ok(())
}

/// The config object each running task mounts at the config path.
fn config_mounts(service: &str) -> Result<Vec<String>, Failed> {
    let out = docker(&[
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.ID}}",
        "--no-trunc",
        service,
    ])?;
    let mut mounts = Vec::new();
    for id in out.lines().filter(|l| !l.is_empty()) {
        let config = docker(&[
            "inspect",
            "--format",
            "{{range .Spec.ContainerSpec.Configs}}{{.ConfigName}}{{end}}",
            id,
        ])?;
        mounts.push(config.trim().to_string());
    }
    Ok(mounts)
}
