//! High availability: two operator replicas, one leader on the lease.
//!
//! One scenario, to stay within the e2e time budget, covering both ways a
//! leader goes: two replicas, exactly one logs `action="leader"`; a 3-node
//! cluster converges; the leader is **paused** (SIGSTOP) and the standby
//! takes over; the upgrade 7.1.0.0 → 7.2.0.0 is started, which only the
//! new leader can act on; the old leader is resumed after its lease
//! expired: it steps down and exits without a single write (its counters
//! and its log say so); the new leader is then **killed** mid-rollout and
//! a standby takes over within 15 s; the rollout finishes with nothing
//! lost and never two nodes out ([`crate::rollout`]'s sampler and loss
//! oracle). Across every container's log, the intervals in which replicas
//! acted never overlap.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libtest_mimic::Failed;
use serde_json::Value;

use crate::operator::{status, Operator};
use crate::sandbox::{docker, wait_until, Sandbox};
use crate::TestResult;

/// The takeover bound the issue sets.
const TAKEOVER: Duration = Duration::from_secs(15);

/// The containers of operator service `service` on the manager (short
/// ids), running ones only.
fn containers(service: &str) -> Result<Vec<String>, Failed> {
    let out = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ])?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

/// Every JSON line one container logged (stopped containers too).
fn container_logs(id: &str) -> Result<Vec<Value>, Failed> {
    let out = crate::sandbox::output_within(
        Command::new("docker").args(["-H", "unix:///var/run/docker.sock", "logs", id]),
        crate::sandbox::DOCKER_CLI_LIMIT,
    )
    .map_err(|e| format!("cannot run docker logs: {e}"))?;
    Ok(crate::operator::json_lines(&out))
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp
/// (`2026-12-01T15:20:01.123456Z`).
pub(crate) fn epoch(ts: &str) -> Option<f64> {
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm) = (num(11..13)?, num(14..16)?);
    let ss: f64 = ts.get(17..)?.trim_end_matches('Z').parse().ok()?;
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + hh * 3600 + mm * 60) as f64 + ss)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn ts(line: &Value) -> f64 {
    line["timestamp"].as_str().and_then(epoch).unwrap_or(0.0)
}

/// The time of the container's `action="leader"` line, if it logged one.
fn leader_at(lines: &[Value]) -> Option<f64> {
    lines.iter().find(|l| l["action"] == "leader").map(ts)
}

/// Waits until one of the running containers other than `not` has logged
/// `action="leader"`; returns it and the time of that line.
fn wait_leader(service: &str, not: &[&str], timeout: Duration) -> Result<(String, f64), Failed> {
    wait_until("an operator replica logs action=leader", timeout, || {
        for id in containers(service)? {
            if not.contains(&id.as_str()) {
                continue;
            }
            if let Some(at) = leader_at(&container_logs(&id)?) {
                return Ok(Some((id, at)));
            }
        }
        Ok(None)
    })
    .map_err(|e| {
        let tails: Vec<String> = containers(service)
            .unwrap_or_default()
            .iter()
            .map(|id| {
                let lines = container_logs(id).unwrap_or_default();
                let tail: Vec<String> = lines.iter().rev().take(8).map(|l| l.to_string()).collect();
                format!("{id}: {tail:?}")
            })
            .collect();
        format!("{} ({})", e.message().unwrap_or("?"), tails.join("; ")).into()
    })
}

/// The counters (`docker_writes`, `info_writes`) of a counters line.
fn writes(line: &Value) -> (u64, u64) {
    (
        line["docker_writes"].as_u64().unwrap_or(0),
        line["info_writes"].as_u64().unwrap_or(0),
    )
}

/// Action lines about clusters (what a replica did), not counters.
fn cluster_actions(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["action"].is_string() && l["cluster"].is_string())
        .filter(|l| l["action"] != "counters")
        .collect()
}

/// Two replicas; pause the leader, upgrade under the new one, resume the
/// old one (it writes nothing and steps down), kill the new one
/// mid-rollout; it finishes safely. See the module doc.
pub fn a_paused_leader_never_writes_again_and_a_killed_one_is_replaced_mid_rollout(
    sandbox: &Sandbox,
) -> TestResult {
    let name = "e2e-ha";
    let started = std::time::Instant::now();
    let operator = Operator::deploy()?;
    let service = operator.name().to_string();
    let service = service.as_str();
    operator.scale(2)?;
    let mut figures: BTreeMap<&str, String> = BTreeMap::new();
    figures.insert(
        "t: two replicas running",
        format!("{:.1} s", started.elapsed().as_secs_f64()),
    );
    let mut seen: Vec<String> = Vec::new();
    // Replicas whose writes were all refused from this time on (checked
    // above from their counters and refusals).
    let mut fenced_from: Vec<(String, f64)> = Vec::new();
    let operator = crate::rollout::upgrade_safely_under(
        sandbox,
        name,
        "upgrade under a paused, then killed, leader",
        operator,
        || {
            figures.insert(
                "t: cluster Ready",
                format!("{:.1} s", started.elapsed().as_secs_f64()),
            );
            // Exactly one leader of the two.
            let (a, _) = wait_leader(service, &[], Duration::from_secs(30))?;
            let all = containers(service)?;
            if all.len() != 2 {
                return Err(format!("expected 2 operator containers, found {all:?}").into());
            }
            let b = all.iter().find(|id| **id != a).unwrap().clone();
            if leader_at(&container_logs(&b)?).is_some() {
                return Err(format!("two replicas logged action=leader: {a} and {b}").into());
            }
            seen.extend([a.clone(), b.clone()]);
            // A's writes so far, from a counters line logged after now
            // (the cluster is Ready: a settled cluster writes nothing).
            let since = now();
            let before = wait_until(
                "a counters line of the leader",
                Duration::from_secs(15),
                || {
                    Ok(container_logs(&a)?
                        .into_iter()
                        .rev()
                        .find(|l| l["action"] == "counters" && ts(l) > since))
                },
            )?;

            // Pause the leader; the standby takes over.
            docker(&["kill", "--signal", "SIGSTOP", &a])?;
            let paused = now();
            let (b2, b_at) = wait_leader(service, &[a.as_str()], Duration::from_secs(30))?;
            if b2 != b {
                return Err(format!("{b2} took over, not the standby {b}").into());
            }
            figures.insert("takeover after SIGSTOP", format!("{:.1} s", b_at - paused));
            if b_at - paused > TAKEOVER.as_secs_f64() {
                return Err(format!(
                    "the standby took over {:.1} s after the leader was paused",
                    b_at - paused
                )
                .into());
            }
            // The upgrade, which only the new leader can act on.
            crate::failures::upgrade(name)?;
            wait_until(
                "the new leader starts the rollout",
                Duration::from_secs(30),
                || {
                    Ok(cluster_actions(&container_logs(&b)?)
                        .iter()
                        .any(|l| l["action"] == "rollout-start" || l["action"] == "rollout-next")
                        .then_some(()))
                },
            )?;
            // Resume the old leader: it must step down without a write.
            let resumed = now();
            docker(&["kill", "--signal", "SIGCONT", &a])?;
            wait_until("the resumed leader exits", Duration::from_secs(30), || {
                Ok((!containers(service)?.contains(&a)).then_some(()))
            })?;
            let lines = container_logs(&a)?;
            let stepped = lines
                .iter()
                .find(|l| l["action"] == "step-down" && ts(l) >= resumed)
                .ok_or_else(|| {
                    format!(
                        "the resumed leader logged no step-down: {:?}",
                        lines.iter().rev().take(10).collect::<Vec<_>>()
                    )
                })?;
            figures.insert(
                "resumed leader stepped down after",
                format!("{:.3} s", ts(stepped) - resumed),
            );
            let after = lines
                .iter()
                .rev()
                .find(|l| l["action"] == "counters")
                .ok_or("the resumed leader logged no counters")?;
            if writes(after) != writes(&before) {
                return Err(format!(
                    "the resumed leader wrote: (docker_writes, info_writes) {:?} before the \
                     pause, {:?} at exit",
                    writes(&before),
                    writes(after)
                )
                .into());
            }
            // An action line is logged just before its write: after the
            // pause, every one must have been refused by the fence.
            let acted = cluster_actions(&lines)
                .into_iter()
                .filter(|l| ts(l) >= paused)
                .count();
            let refused = lines
                .iter()
                .filter(|l| ts(l) >= paused)
                .filter(|l| {
                    l["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("refused by the leader fence"))
                })
                .count();
            if acted > refused {
                return Err(format!(
                    "the resumed leader logged {acted} actions but only {refused} writes \
                     refused: {:?}",
                    lines.iter().filter(|l| ts(l) >= paused).collect::<Vec<_>>()
                )
                .into());
            }
            figures.insert("writes refused by the fence", refused.to_string());
            fenced_from.push((a.clone(), paused));

            // The replacement of the old leader follows the lease; then
            // kill the new leader mid-rollout.
            let c = wait_until("a replacement standby", Duration::from_secs(30), || {
                Ok(containers(service)?.into_iter().find(|id| *id != b))
            })?;
            seen.push(c.clone());
            wait_until(
                "the replacement standing by",
                Duration::from_secs(20),
                || {
                    Ok(container_logs(&c)?
                        .iter()
                        .any(|l| {
                            l["message"]
                                .as_str()
                                .is_some_and(|m| m.starts_with("leader election: standing by"))
                        })
                        .then_some(()))
                },
            )?;
            // One renew period so that it has read the lease.
            std::thread::sleep(Duration::from_secs(3));
            let phase = status(name)?.phase;
            docker(&["kill", &b])?;
            let killed = now();
            let (d, d_at) = wait_leader(service, &[b.as_str()], Duration::from_secs(30))?;
            figures.insert(
                "takeover after kill",
                format!("{:.1} s (phase {phase} at the kill)", d_at - killed),
            );
            if !seen.contains(&d) {
                seen.push(d.clone());
            }
            if d_at - killed > TAKEOVER.as_secs_f64() {
                return Err(format!(
                    "the standby took over {:.1} s after the leader was killed",
                    d_at - killed
                )
                .into());
            }
            Ok(())
        },
    )?;
    figures.insert(
        "t: rollout done",
        format!("{:.1} s", started.elapsed().as_secs_f64()),
    );
    eprintln!("ha: {figures:#?}");

    // Never two acting at once: each replica's acting interval, from its
    // leader line to its last cluster action, ends before the next begins.
    let mut intervals: Vec<(f64, f64, String)> = Vec::new();
    for id in containers(service)?.into_iter().chain(seen.iter().cloned()) {
        if intervals.iter().any(|(_, _, i)| *i == id) {
            continue;
        }
        let lines = container_logs(&id)?;
        let fenced = fenced_from
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(f64::MAX, |(_, at)| *at);
        let actions: Vec<&Value> = cluster_actions(&lines)
            .into_iter()
            .filter(|l| ts(l) < fenced)
            .collect();
        match leader_at(&lines) {
            Some(start) => {
                let end = actions.iter().map(|l| ts(l)).fold(start, f64::max);
                if let Some(early) = actions.iter().find(|l| ts(l) < start) {
                    return Err(format!("{id} acted before it led: {early}").into());
                }
                intervals.push((start, end, id));
            }
            None => {
                if let Some(first) = actions.first() {
                    return Err(format!("{id} acted without leading: {first}").into());
                }
            }
        }
    }
    intervals.sort_by(|x, y| x.0.total_cmp(&y.0));
    for pair in intervals.windows(2) {
        if pair[0].1 >= pair[1].0 {
            return Err(format!(
                "two replicas acted at once: {} until {:.3}, {} from {:.3}",
                pair[0].2, pair[0].1, pair[1].2, pair[1].0
            )
            .into());
        }
    }
    eprintln!(
        "ha: acting intervals {:?}",
        intervals
            .iter()
            .map(|(s, e, id)| format!("{id} {:.1}..{:.1}", s - intervals[0].0, e - intervals[0].0))
            .collect::<Vec<_>>()
    );
    drop(operator);
    Ok(())
}
