//! Live client traffic through a change, as an application sees it:
//! `scripts/load` (the official Python client) writes and reads a fixed
//! key space of a cluster while a test changes it, remembers every
//! acknowledged write, and at the end reads every key back.
//!
//! The client runs in the network namespace of a container of its own on
//! the overlay (`<service>-client`, `aerospike-sim idle` on the manager's
//! node), as an application container would: the cluster's tasks can all
//! be replaced under it. It is seeded with the nodes running when it
//! starts and finds the rest through the cluster's peer lists.
//!
//! With `ASW_E2E_TRAFFIC=FILE`, each run appends one JSON line (scenario,
//! nodes changed, the tool's summary) for `scripts/bench-reliability`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use crate::records::python_summary;
use crate::sandbox::{
    container_pid, docker, running_tasks, wait_until, wait_within, Sandbox, ServiceGuard, NETWORK,
};

/// Keys in the key space. A key is touched about every `KEYS / RATE`
/// seconds: the precision of the failure windows.
const KEYS: usize = 300;
/// Operations per second (half reads, half writes): enough to see every
/// window, little enough that several tests can run side by side on two
/// cores.
const RATE: usize = 150;

/// What the traffic saw (the fields of `scripts/load`'s summary that the
/// tests judge; the whole summary is kept for the report).
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Writes acknowledged by the cluster.
    pub acknowledged: u64,
    /// Acknowledged writes lost: the key's final value is older.
    pub lost: u64,
    /// Writes whose outcome the client could not know.
    pub in_doubt: u64,
    /// Keys the read-back could not read.
    pub unverified: u64,
    /// Failed operations (writes, in-doubt writes, reads) as a share.
    pub failed_share: f64,
    /// The longest time some partition's operations failed, seconds.
    pub longest_failure_window_s: f64,
    /// The whole summary.
    pub summary: serde_json::Value,
}

impl LoadReport {
    /// One line for the test's output.
    pub fn line(&self) -> String {
        format!(
            "traffic: {} acknowledged writes, {} lost, {} in doubt, {} unverified; \
             {:.2}% of operations failed; longest failure window {:.1} s; windows {}",
            self.acknowledged,
            self.lost,
            self.in_doubt,
            self.unverified,
            self.failed_share * 100.0,
            self.longest_failure_window_s,
            self.summary["failure_windows"]
        )
    }

    /// Err unless no acknowledged write was lost and every key was read
    /// back (the check of every safe change).
    pub fn check_nothing_lost(&self, what: &str) -> Result<(), Failed> {
        if self.acknowledged == 0 {
            return Err(format!("{what}: no write was acknowledged: {}", self.summary).into());
        }
        if self.lost > 0 || self.unverified > 0 {
            return Err(format!(
                "{what}: {} acknowledged writes lost, {} keys unverified ({})",
                self.lost,
                self.unverified,
                self.line()
            )
            .into());
        }
        Ok(())
    }
}

/// Traffic running against one cluster; [`Traffic::finish`] stops it.
pub struct Traffic {
    scenario: String,
    service: String,
    child: Option<Child>,
    until: PathBuf,
    started: Instant,
    _host: ServiceGuard,
}

impl Traffic {
    /// Starts traffic against `service`'s running nodes, for the report's
    /// `scenario`. Every node should be running and meshed.
    pub fn start(sandbox: &Sandbox, service: &str, scenario: &str) -> Result<Traffic, Failed> {
        let host_name = format!("{service}-client");
        let _ = docker(&["service", "rm", &host_name]);
        docker(&[
            "service",
            "create",
            "--detach",
            "--name",
            &host_name,
            "--network",
            NETWORK,
            "--constraint",
            "node.role==manager",
            "--stop-grace-period",
            "2s",
            "aerospike/aerospike-server:7.1.0.0",
            "idle",
        ])?;
        let host = ServiceGuard(host_name.clone());
        let client = wait_until("the client host running", Duration::from_secs(60), || {
            Ok(running_tasks(&host_name)?
                .into_iter()
                .find(|t| t.address.is_some() && !t.container_id.is_empty()))
        })?;
        let pid = container_pid(&sandbox.socket_of(&client.node_id)?, &client)?;
        let seeds: Vec<String> = running_tasks(service)?
            .into_iter()
            .filter_map(|t| t.address)
            .map(|a| format!("{a}:3000"))
            .collect();
        if seeds.is_empty() {
            return Err(format!("{service}: no running node to send traffic to").into());
        }
        let until =
            std::env::temp_dir().join(format!("asw-e2e-traffic-{}-{service}", std::process::id()));
        let ready = until.with_extension("ready");
        let _ = std::fs::remove_file(&until);
        let _ = std::fs::remove_file(&ready);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/load");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["python3", script, "run"]);
        for seed in &seeds {
            cmd.args(["--host", seed]);
        }
        cmd.args(["--keys", &KEYS.to_string(), "--rate", &RATE.to_string()])
            .args(["--timeout-ms", "1000", "--verify-s", "60", "--allow-loss"])
            .arg("--until")
            .arg(&until)
            .arg("--ready")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run scripts/load: {e}"))?;
        let mut traffic = Traffic {
            scenario: scenario.to_string(),
            service: service.to_string(),
            child: Some(child),
            until,
            started: Instant::now(),
            _host: host,
        };
        // The change starts only once the traffic runs: the tool has
        // connected (it retries for 30 s while the client host's overlay
        // wiring settles) and created its ready file.
        let waited = wait_until("the traffic running", Duration::from_secs(45), || {
            if ready.exists() {
                return Ok(Some(None));
            }
            let child = traffic.child.as_mut().ok_or("no child")?;
            Ok(child.try_wait()?.map(Some))
        })
        .and_then(|exited| match exited {
            None => Ok(()),
            Some(status) => Err(format!("scripts/load exited early ({status})").into()),
        });
        let _ = std::fs::remove_file(&ready);
        if let Err(e) = waited {
            // Its own words (the summary with the connect error) first.
            let child = traffic.child.take();
            let said = child
                .and_then(|c| wait_within(c, "scripts/load", Duration::from_secs(5)).ok())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            return Err(format!("{service}: {} {said}", e.message().unwrap_or("?")).into());
        }
        traffic.started = Instant::now();
        Ok(traffic)
    }

    /// Stops the traffic, reads every key back and reports; `changed`
    /// (nodes restarted or removed by the change) goes into the
    /// `ASW_E2E_TRAFFIC` row.
    pub fn finish(mut self, changed: usize) -> Result<LoadReport, Failed> {
        std::fs::write(&self.until, b"").map_err(|e| format!("cannot stop the traffic: {e}"))?;
        let child = self.child.take().ok_or("traffic already finished")?;
        let out = wait_within(child, "scripts/load", Duration::from_secs(180))
            .map_err(|e| format!("traffic on {}: {e}", self.service))?;
        let summary = python_summary(&format!("scripts/load on {}", self.service), &out)?;
        let count = |k: &str| {
            summary[k]
                .as_u64()
                .ok_or_else(|| Failed::from(format!("scripts/load: no {k} in {summary}")))
        };
        let report = LoadReport {
            acknowledged: count("acknowledged")?,
            lost: count("lost")?,
            in_doubt: count("in_doubt")?,
            unverified: count("unverified")?,
            failed_share: summary["failed_share"].as_f64().unwrap_or(0.0),
            longest_failure_window_s: summary["longest_failure_window_s"].as_f64().unwrap_or(0.0),
            summary: summary.clone(),
        };
        if let Ok(path) = std::env::var("ASW_E2E_TRAFFIC") {
            let row = serde_json::json!({
                "scenario": self.scenario,
                "changed": changed,
                "seconds": self.started.elapsed().as_secs_f64(),
                "load": summary,
            });
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{row}"));
            if let Err(e) = appended {
                eprintln!("ASW_E2E_TRAFFIC={path}: cannot append: {e}");
            }
        }
        Ok(report)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.until);
    }
}
