//! `scripts/load`, the live-traffic tool, against real sim processes on
//! loopback: continuous writes and reads through a rolling restart of a
//! 3-node RF 2 memory cluster. Waiting for migrations between the nodes
//! loses no acknowledged write; not waiting (the control) loses some, and
//! the tool counts them.
//!
//! Fails, saying so, when `python3` cannot import the official client.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{restart_two_of_three, scratch_dir, start_cluster, Options, SimNode};

/// `scripts/load run` in the background, until its stop file exists.
struct Load {
    child: Child,
    until: PathBuf,
    /// Holds the stop file; removed when the load is dropped.
    _dir: support::Scratch,
}

impl Load {
    fn start(seed: &SimNode) -> Load {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/load");
        let dir = scratch_dir();
        let until = dir.join("load-stop");
        let child = Command::new("python3")
            .arg(&script)
            .args(["run", "--host"])
            .arg(format!("{}:{}", seed.host, seed.service_port))
            .args(["--keys", "400", "--rate", "200", "--timeout-ms", "1000"])
            .args(["--verify-s", "20", "--allow-loss", "--until"])
            .arg(&until)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run scripts/load");
        Load {
            child,
            until,
            _dir: dir,
        }
    }

    /// Stops the traffic; the tool's summary.
    fn finish(self) -> serde_json::Value {
        std::fs::write(&self.until, b"").expect("write the stop file");
        let output = self
            .child
            .wait_with_output()
            .expect("wait for scripts/load");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "scripts/load printed no summary\nstdout: {stdout}\nstderr: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        assert!(output.status.success(), "scripts/load failed: {summary}");
        summary
    }
}

fn count(summary: &serde_json::Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing from {summary}"))
}

/// A rolling restart of two of the three nodes under traffic, waiting for
/// migrations in between or not; the load tool's summary.
fn rolling_restart_under_traffic(wait_for_migrations: bool) -> serde_json::Value {
    let options = Options {
        migrate_rate: 1500,
        ..Options::default()
    };
    let mut nodes = start_cluster(3, &options);
    let load = Load::start(&nodes[2]);
    // Traffic first: every key written at least once, mostly.
    std::thread::sleep(Duration::from_secs(3));
    let _replacement = restart_two_of_three(&mut nodes, &options, wait_for_migrations);
    std::thread::sleep(Duration::from_secs(1));
    let summary = load.finish();
    eprintln!(
        "rolling restart under traffic, waiting for migrations: {wait_for_migrations}: {summary}"
    );
    summary
}

#[test]
fn traffic_through_a_rolling_restart_that_waits_loses_no_acknowledged_write() {
    support::require_python_client();
    let summary = rolling_restart_under_traffic(true);
    assert!(
        count(&summary, "acknowledged") > 100,
        "too little traffic: {summary}"
    );
    assert_eq!(count(&summary, "lost"), 0, "{summary}");
    assert_eq!(count(&summary, "unverified"), 0, "{summary}");
    assert_eq!(count(&summary, "stale_reads"), 0, "{summary}");
}

#[test]
fn traffic_through_a_rolling_restart_that_does_not_wait_loses_acknowledged_writes() {
    support::require_python_client();
    let summary = rolling_restart_under_traffic(false);
    assert!(
        count(&summary, "acknowledged") > 100,
        "too little traffic: {summary}"
    );
    assert!(
        count(&summary, "lost") > 0,
        "the control lost nothing: {summary}"
    );
    assert_eq!(count(&summary, "unverified"), 0, "{summary}");
}
