//! Records, the loss a user counts: written and read back with the
//! official Aerospike Python client (`scripts/records`, PyPI `aerospike`),
//! beside the sim's own oracle (`sim_lineage`, `dead_partitions`).
//!
//! The client runs on the host inside a running task's network namespace
//! (`nsenter --net`, as the harness's info reads do), seeded with every
//! running node's overlay address; it finds the partition map itself.
//! `scripts/test` installs the client; without it these checks fail with
//! that reason (they never pass unchecked).

use std::process::{Command, Output};
use std::time::Duration;

use libtest_mimic::Failed;

use crate::sandbox::{container_pid, output_within, running_tasks, Sandbox};

/// How long one run of `scripts/records` may take (a few thousand
/// transactions, each with a 1 s timeout and three retries).
const RECORDS_LIMIT: Duration = Duration::from_secs(180);

/// What `scripts/records check` found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Keys read back with the value written.
    pub found: u64,
    /// Keys the cluster answered "not found" for: lost.
    pub missing: u64,
    /// Keys found with another value.
    pub wrong: u64,
    /// Keys that still failed after the retries (neither found nor lost).
    pub errors: u64,
}

/// Runs `scripts/records COMMAND` against the running nodes of `service`,
/// for `count` keys `<prefix>N` of namespace `ns`; its JSON summary.
fn records(
    sandbox: &Sandbox,
    service: &str,
    command: &str,
    ns: &str,
    count: usize,
    prefix: &str,
) -> Result<serde_json::Value, Failed> {
    let tasks: Vec<_> = running_tasks(service)?
        .into_iter()
        .filter(|t| t.address.is_some() && !t.container_id.is_empty())
        .collect();
    let from = tasks
        .first()
        .ok_or_else(|| format!("{service}: no running task to reach the cluster from"))?;
    let pid = container_pid(&sandbox.socket_of(&from.node_id)?, from)?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/records");
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["python3", script, command]);
    for task in &tasks {
        cmd.args([
            "--host",
            &format!("{}:3000", task.address.as_deref().unwrap_or_default()),
        ]);
    }
    cmd.args([
        "--namespace",
        ns,
        "--count",
        &count.to_string(),
        "--prefix",
        prefix,
    ]);
    if command == "check" {
        cmd.arg("--allow-missing");
    }
    let out = output_within(&mut cmd, RECORDS_LIMIT)
        .map_err(|e| format!("scripts/records {command}: {e}"))?;
    python_summary(&format!("scripts/records {command} on {service}"), &out)
}

/// The JSON summary a Python tool of ours (`scripts/records`,
/// `scripts/load`) printed as its last line of stdout. Err, naming `what`,
/// when the official client is missing, no summary came, or the tool
/// exited with failure.
pub fn python_summary(what: &str, out: &Output) -> Result<serde_json::Value, Failed> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'aerospike'") {
        return Err(
            "the official Python client is missing (pip install aerospike; \
             scripts/test installs it)"
                .into(),
        );
    }
    let summary: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("{what}: no summary (stdout {stdout:?}, stderr {stderr:?})"))?;
    if !out.status.success() {
        return Err(format!("{what} failed: {summary}").into());
    }
    Ok(summary)
}

/// Writes `count` records `<prefix>0..` into namespace `ns` of `service`;
/// every write must be acknowledged.
pub fn write(
    sandbox: &Sandbox,
    service: &str,
    ns: &str,
    count: usize,
    prefix: &str,
) -> Result<(), Failed> {
    let summary = records(sandbox, service, "write", ns, count, prefix)?;
    if summary["written"].as_u64() != Some(count as u64) {
        return Err(format!("{service}: wrote {summary}, not {count} records").into());
    }
    Ok(())
}

/// Reads back the records [`write`] wrote: how many were found, lost,
/// changed, or could not be read.
pub fn check(
    sandbox: &Sandbox,
    service: &str,
    ns: &str,
    count: usize,
    prefix: &str,
) -> Result<Tally, Failed> {
    let summary = records(sandbox, service, "check", ns, count, prefix)?;
    let get = |k: &str| {
        summary[k]
            .as_u64()
            .ok_or_else(|| Failed::from(format!("{service}: check answered {summary}")))
    };
    let tally = Tally {
        found: get("found")?,
        missing: get("missing")?,
        wrong: get("wrong")?,
        errors: get("errors")?,
    };
    if tally.found + tally.missing + tally.wrong + tally.errors != count as u64 {
        return Err(format!("{service}: check of {count} records answered {summary}").into());
    }
    Ok(tally)
}
