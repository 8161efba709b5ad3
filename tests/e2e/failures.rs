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

use crate::operator::{create_cluster, spec_labels, status, wait_ready, Operator, CONVERGE};
use crate::sandbox::{running_tasks, Sandbox};
use crate::TestResult;

/// How soon the status must leave Ready after a kill (issue 15).
const SEEN_WITHIN: Duration = Duration::from_secs(2);

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
    let manager = crate::sandbox::api_get("/info")?["Swarm"]["NodeID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut seen = Vec::new();
    let mut healed = Vec::new();
    let mut nodes_killed = Vec::new();
    for round in 0..5 {
        let mut tasks = running_tasks(name)?;
        // The manager's task first, then the others in turn.
        tasks.sort_by_key(|t| (t.node_id != manager, t.node_id.clone()));
        let task = tasks[round % tasks.len()].clone();
        if task.container_id.is_empty() {
            return Err(format!("task {} has no container yet", task.id).into());
        }
        let socket = sandbox.socket_of(&task.node_id)?;
        let killed = Instant::now();
        let code = api_post_at(
            &socket,
            &format!("/containers/{}/kill?signal=KILL", task.container_id),
        )?;
        if code != 204 {
            return Err(format!("kill of {} answered {code}", task.container_id).into());
        }
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
        wait_ready(sandbox, name, 3, CONVERGE)?;
        healed.push(killed.elapsed());
    }
    let late: Vec<String> = seen
        .iter()
        .zip(&nodes_killed)
        .filter(|(d, _)| **d > SEEN_WITHIN)
        .map(|(d, n)| format!("{d:?} on {n}"))
        .collect();
    let (m_seen, m_healed) = (median(&mut seen.clone()), median(&mut healed.clone()));
    eprintln!(
        "kill -9 ×5: status left Ready after {seen:?} (median {m_seen:?}); Ready and settled \
         again after {healed:?} (median {m_healed:?})"
    );
    if !late.is_empty() {
        return Err(format!(
            "the status left Ready later than {SEEN_WITHIN:?}: {}",
            late.join(", ")
        )
        .into());
    }
    Ok(())
}
