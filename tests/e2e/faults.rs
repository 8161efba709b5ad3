//! Faults between the operator and Docker (issue 16, item 2).
//!
//! The operator reaches Docker only through the test's socket proxy
//! ([`crate::proxy`]), which here also injects faults, drawn from a seeded
//! generator: calls answered 500, service updates answered 409 ("update out
//! of sequence", a stale version), reads of one object answered 404, calls
//! held 2 s, replies cut after their first bytes (so a write takes effect
//! but the operator cannot know it did), and the event stream cut every
//! few seconds. Through an upgrade and a scale-down of an Enterprise
//! cluster under live client traffic, the cluster converges, never two
//! nodes out, no slot is restarted twice by the upgrade (no node released
//! twice), no acknowledged write is lost, and the operator's log and
//! `asw_docker_errors_total` show the retries. Then a failure retrying
//! cannot cure: every update of the service answered 400 (a spec Docker
//! refuses) is reported in the status and not retried in a loop; the fix
//! (the fault gone, a label changed) converges it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aerospike_swarm_operator::controller::metrics::parse_text;
use libtest_mimic::Failed;

use crate::metrics::{http_get, sum};
use crate::operator::{live_status, wait_ready, CONVERGE};
use crate::proxy::{operator_behind_proxy, Faults, Injected};
use crate::rollout::{
    check_safe, enterprise_cluster, label_add, scale_down_safely, wait_rolled, with_log, Expected,
    Sampler, ROLLOUT,
};
use crate::sandbox::{docker, running_tasks, wait_until, Sandbox};
use crate::traffic::Traffic;
use crate::TestResult;

/// The faults of the main part, in per mille of the calls they apply to.
/// `ASW_E2E_FAULT_SEED` replays a run; the seed is printed.
fn faults() -> Faults {
    let seed = std::env::var("ASW_E2E_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    Faults {
        seed,
        error_500: 40,
        conflict_409: 200,
        not_found_404: 20,
        delay_2s: 20,
        cut_reply: 40,
        events_for: Some(Duration::from_secs(10)),
        refuse_updates_of: None,
    }
}

/// See the module docs.
pub fn a_rollout_and_a_scale_down_converge_through_a_docker_api_that_fails(
    sandbox: &Sandbox,
) -> TestResult {
    let faults = faults();
    eprintln!("docker faults: {faults:?}");
    let (proxy, operator) = operator_behind_proxy(faults)?;
    let name = "e2e-faults";
    let _cluster = enterprise_cluster(sandbox, &operator, name)?;

    // 1. An upgrade by label, under faults and traffic.
    let what = "upgrade under Docker faults";
    let traffic = Traffic::start(sandbox, name, what)?;
    let sampler = Sampler::start(sandbox, name, Expected::Nodes(3))?;
    let started = Instant::now();
    label_add(name, &[("aerospike.cluster.version", "7.2.0.0")])?;
    let rolled = wait_rolled(sandbox, name, 3, "7.2.0.0", "7.2.0.0", None, ROLLOUT);
    let took = started.elapsed();
    let report = sampler.finish();
    with_log(&operator, name, rolled)?;
    let load = traffic.finish(3)?;
    eprintln!("{what}: {}", load.line());
    check_safe(sandbox, &operator, name, what, &report, took)?;
    load.check_nothing_lost(what)?;
    with_log(&operator, name, released_once(name, "7.2.0.0"))?;

    // 2. A scale-down 3 -> 2 (Enterprise: quiesce first), the same.
    scale_down_safely(
        sandbox,
        &operator,
        name,
        3,
        2,
        "scale 3 -> 2 under Docker faults",
    )?;

    // 3. The faults happened, and the operator saw and retried them.
    let seen = proxy.seen();
    let mut injected: BTreeMap<String, usize> = BTreeMap::new();
    for s in &seen {
        if let Some(kind) = s.injected {
            *injected.entry(format!("{kind:?}")).or_default() += 1;
        }
    }
    eprintln!(
        "docker faults: {} calls through the proxy, injected {injected:?}",
        seen.len()
    );
    for kind in [
        Injected::Error500,
        Injected::Conflict409,
        Injected::NotFound404,
        Injected::Delay2s,
        Injected::CutReply,
        Injected::EventsCut,
    ] {
        if !injected.contains_key(&format!("{kind:?}")) {
            return Err(format!(
                "the proxy never injected {kind:?} ({} calls): the test proved nothing about it",
                seen.len()
            )
            .into());
        }
    }
    let logs = operator.logs()?;
    let retries = logs
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("retrying"))
        })
        .count();
    if retries == 0 {
        return with_log(
            &operator,
            name,
            Err("the operator's log shows no retry under injected faults".into()),
        );
    }
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    for l in logs.iter().filter(|l| l["level"] == "WARN") {
        *warnings
            .entry(
                l["message"]
                    .as_str()
                    .unwrap_or("?")
                    .chars()
                    .take(80)
                    .collect(),
            )
            .or_default() += 1;
    }
    eprintln!("docker faults: the operator's warnings: {warnings:?}");
    for l in logs.iter().filter(|l| {
        l["reason"]
            .as_str()
            .is_some_and(|r| r.contains("outside the operator"))
    }) {
        eprintln!("docker faults: {l}");
    }
    let errors = docker_errors(sandbox, name)?;
    eprintln!("docker faults: {retries} retry lines in the log; asw_docker_errors_total {errors}");
    if errors < 1.0 {
        return Err("asw_docker_errors_total counted no error under injected faults".into());
    }

    // 4. A refusal retrying cannot cure: every update of the service is
    // answered 400. Scaling back to 3 needs an update.
    let id = docker(&["service", "inspect", "--format", "{{.ID}}", name])?;
    let id = id.trim().to_string();
    proxy.set_faults(Faults {
        refuse_updates_of: Some(id.clone()),
        ..Faults::default()
    });
    label_add(name, &[("aerospike.cluster.replicas", "3")])?;
    let status = with_log(
        &operator,
        name,
        wait_until("the status to report Docker's refusal", CONVERGE, || {
            Ok(live_status(name)?
                .filter(|s| s.phase == "Error" && s.message.contains("refused"))
                .map(|s| s.message))
        }),
    )?;
    eprintln!("docker faults: refused update reported: {status:?}");
    let attempts = |seen: &[crate::proxy::Seen]| {
        seen.iter()
            .filter(|s| s.injected == Some(Injected::Refused400))
            .count()
    };
    let before = attempts(&proxy.seen());
    std::thread::sleep(Duration::from_secs(20));
    let after = attempts(&proxy.seen());
    eprintln!(
        "docker faults: refused updates: {before} until the status said so, {after} 20 s later"
    );
    // The refused write is tried again only when the service changes (or
    // after five minutes), never on a timer: not once in these 20 s,
    // whatever passes other events (the event stream re-opened, a task's
    // state) start meanwhile.
    if after > before {
        return with_log(
            &operator,
            name,
            Err(format!(
                "a refused update was retried {} times in 20 s: retried in a loop",
                after - before
            )
            .into()),
        );
    }
    // The fix: the refusal gone, a change of the service; it converges.
    proxy.set_faults(Faults::default());
    label_add(name, &[("asw.e2e.fixed", "1")])?;
    with_log(
        &operator,
        name,
        wait_ready(sandbox, name, 3, CONVERGE).map(|_| ()),
    )?;
    drop(operator);
    Ok(())
}

/// Each slot of `service` ran the new `version` in one task only: the
/// upgrade restarted no node twice.
fn released_once(service: &str, version: &str) -> TestResult {
    let out = docker(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.Name}}|{{.Image}}|{{.DesiredState}}|{{.CurrentState}}",
        service,
    ])?;
    let mut per_slot: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in out.lines() {
        let mut parts = line.split('|');
        let slot = parts
            .next()
            .unwrap_or_default()
            .trim_start_matches(|c: char| c == '\\' || c == '_' || c.is_whitespace())
            .to_string();
        let image = parts.next().unwrap_or_default();
        if image
            .split('@')
            .next()
            .unwrap_or_default()
            .ends_with(&format!(":{version}"))
        {
            per_slot.entry(slot).or_default().push(line.to_string());
        }
    }
    let twice: Vec<_> = per_slot
        .iter()
        .filter(|(_, tasks)| tasks.len() > 1)
        .collect();
    if per_slot.len() < 3 || !twice.is_empty() {
        return Err(format!(
            "the upgrade should start one task on {version} per slot: {per_slot:?}"
        )
        .into());
    }
    Ok(())
}

/// `asw_docker_errors_total`, summed, read from a node of `cluster` (the
/// operator's metrics listen on the overlay).
fn docker_errors(sandbox: &Sandbox, cluster: &str) -> Result<f64, Failed> {
    let operator = running_tasks(&format!("asw-op-{}", crate::scope::current()?))?
        .into_iter()
        .find(|t| t.state == "running")
        .ok_or("no running operator task")?;
    let address = operator
        .address
        .ok_or("the operator's task has no overlay address")?;
    let node = running_tasks(cluster)?
        .into_iter()
        .find(|t| t.state == "running" && !t.container_id.is_empty())
        .ok_or("no running node to read the metrics from")?;
    let (code, body) = http_get(sandbox, &node, &format!("http://{address}:9090/metrics"))?;
    if code != 200 {
        return Err(format!("/metrics answered {code}").into());
    }
    let samples = parse_text(&body).map_err(|e| format!("/metrics: {e}"))?;
    Ok(sum(&samples, "asw_docker_errors_total", &[]))
}
