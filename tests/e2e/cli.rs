//! The command line against the sandbox swarm and a deployed operator:
//! `apply` (dry run, create, `--wait` to Ready, to Error and to the
//! timeout) and `status` (checked against what the nodes report), on one
//! cluster to keep the run short.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use libtest_mimic::Failed;

use crate::operator::{example_config, wait_meshed, ClusterGuard, Operator, CONVERGE};
use crate::sandbox::{docker, Sandbox, NETWORK};
use crate::TestResult;

const NAME: &str = "e2e-cli";

/// What one run of the binary gave.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn expect(&self, code: i32, what: &str) -> Result<(), Failed> {
        if self.code == code {
            return Ok(());
        }
        Err(format!(
            "{what}: expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
        .into())
    }
}

/// Runs the operator binary. DOCKER_HOST points nowhere, so every command
/// works only because `--docker-host` wins over it.
fn cli(args: &[&str]) -> Result<Ran, Failed> {
    let out = crate::sandbox::output_within(
        Command::new(env!("CARGO_BIN_EXE_aerospike-swarm-operator"))
            .args(args)
            .args(["--docker-host", "unix:///var/run/docker.sock"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        std::time::Duration::from_secs(300),
    )
    .map_err(|e| format!("cannot run the operator binary: {e}"))?;
    Ok(Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The test's cluster as a YAML document. `metadata.labels` carries the
/// test's scope label, as a user labels a cluster for an operator started
/// with `--cluster-selector`: only this test's operator manages it.
fn document(extra: &str, secret: &str) -> Result<String, Failed> {
    let scope = crate::scope::current()?;
    Ok(format!(
        "apiVersion: aerospike-swarm-operator/v1alpha1\nkind: AerospikeCluster\n\
         metadata:\n  name: {NAME}\n  labels:\n    {}: {scope}\n\
         spec:\n  replicas: 3\n  version: \"7.1.0.0\"\n  \
         configSecret: {secret}\n  network: {NETWORK}\n{extra}",
        crate::scope::LABEL
    ))
}

fn write(file: &str, text: &str) -> Result<PathBuf, Failed> {
    let path = std::env::temp_dir().join(format!("asw-e2e-cli-{file}.yaml"));
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// (a) `apply --dry-run` of a new cluster prints what it would create and
/// creates nothing; (b) `apply -f` creates it, and `apply --wait` exits 3
/// after `--timeout 5s` while it is paused and 0 once the unpaused spec is
/// Ready; (c) `status -o json` names the cluster key and size the nodes
/// report over the info protocol; (d) `apply --wait` of a config secret
/// that does not exist exits 1 with the operator's Error message.
pub fn apply_and_status_drive_a_cluster_to_ready_and_report_what_the_nodes_say(
    sandbox: &Sandbox,
) -> TestResult {
    let started = Instant::now();
    let guard = ClusterGuard(NAME.to_string());
    let secret = format!("{NAME}-conf");
    let _ = docker(&["service", "rm", NAME]);
    let _ = docker(&["secret", "rm", &secret]);
    let conf = write("conf", &example_config()?)?;
    docker(&["secret", "create", &secret, &conf.to_string_lossy()])?;
    let _operator = Operator::deploy()?;

    let paused = write("paused", &document("  paused: true\n", &secret)?)?;
    let paused = paused.to_string_lossy().into_owned();
    let running = write("running", &document("", &secret)?)?;
    let running = running.to_string_lossy().into_owned();
    let missing = write("missing", &document("", "e2e-cli-no-such-secret")?)?;
    let missing = missing.to_string_lossy().into_owned();

    // (a) A dry run shows the service and its labels, and changes nothing.
    let ran = cli(&["apply", "-f", &paused, "--dry-run"])?;
    ran.expect(0, "apply --dry-run")?;
    for wanted in [
        format!("+ service {NAME}: image aerospike/aerospike-server:7.1.0.0, 3 replicas"),
        "+ aerospike.cluster.paused: \"true\"".to_string(),
        format!("service {NAME} would be created (dry run"),
    ] {
        if !ran.stdout.contains(&wanted) {
            return Err(format!("apply --dry-run printed no {wanted:?}:\n{}", ran.stdout).into());
        }
    }
    if docker(&["service", "inspect", NAME]).is_ok() {
        return Err("apply --dry-run created the service".into());
    }

    // (b) Create it paused: the operator changes nothing, so it cannot be
    // Ready, and a short wait ends on the timeout code.
    let ran = cli(&["apply", "-f", &paused])?;
    ran.expect(0, "apply -f (create)")?;
    if !ran.stdout.contains(&format!("service {NAME} created")) {
        return Err(format!("apply -f printed:\n{}", ran.stdout).into());
    }
    // Created with the operator's valve already set (paused: the operator
    // has written nothing), so even the first update is gated.
    let policy = docker(&[
        "service",
        "inspect",
        "-f",
        "{{.Spec.UpdateConfig.Parallelism}} {{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.FailureAction}} {{.Spec.RollbackConfig.Parallelism}} {{.Spec.UpdateConfig.Delay}}",
        NAME,
    ])?;
    if !policy.trim().starts_with("1 stop-first pause 1 8760h") {
        return Err(format!("the created service's update policy: {policy}").into());
    }
    let ran = cli(&["apply", "-f", &paused, "--wait", "--timeout", "5s"])?;
    ran.expect(3, "apply --wait --timeout 5s of a paused cluster")?;
    if !ran.stdout.contains("no change") || !ran.stderr.contains("timed out after 5s") {
        return Err(format!(
            "apply --wait --timeout 5s: stdout:\n{}\nstderr:\n{}",
            ran.stdout, ran.stderr
        )
        .into());
    }
    // Unpausing is a label change, shown as one, and --wait sees it Ready.
    let ran = cli(&["apply", "-f", &running, "--wait", "--timeout", "3m"])?;
    ran.expect(0, "apply --wait --timeout 3m")?;
    for wanted in [
        "- aerospike.cluster.paused: \"true\"".to_string(),
        format!("service {NAME} updated"),
        format!("{NAME} is Ready (3/3)"),
    ] {
        if !ran.stdout.contains(&wanted) {
            return Err(format!("apply --wait printed no {wanted:?}:\n{}", ran.stdout).into());
        }
    }

    // (c) status -o json says what the nodes say.
    let meshed = wait_meshed(sandbox, NAME, 3, None, CONVERGE)?;
    let ran = cli(&["status", NAME, "-o", "json"])?;
    ran.expect(0, "status -o json")?;
    let json: serde_json::Value = serde_json::from_str(&ran.stdout)
        .map_err(|e| format!("status -o json is not JSON ({e}):\n{}", ran.stdout))?;
    let key = json["clusterKey"].as_str().unwrap_or_default();
    let nodes_key = meshed.cluster_key.trim_start_matches("0x");
    if !key.eq_ignore_ascii_case(nodes_key)
        || json["phase"] != "Ready"
        || json["ready"] != 3
        || json["desired"] != 3
        || json["version"] != "7.1.0.0"
        || json["configSecret"] != secret.as_str()
    {
        return Err(format!(
            "status -o json {json} does not match the nodes (cluster_key {}, size 3)",
            meshed.cluster_key
        )
        .into());
    }
    let ran = cli(&["status"])?;
    ran.expect(0, "status")?;
    let line = ran
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{NAME} ")))
        .ok_or_else(|| format!("status lists no {NAME}:\n{}", ran.stdout))?;
    if !line.contains("Ready") || !line.contains("3/3") || !line.contains(key) {
        return Err(format!("status line for {NAME}: {line:?}").into());
    }
    let ran = cli(&["status", "e2e-cli-no-such-service"])?;
    ran.expect(1, "status of a missing service")?;
    if !ran.stderr.contains("no such service") {
        return Err(format!("status of a missing service said: {}", ran.stderr).into());
    }

    // (d) A config secret that does not exist: the operator reports Error,
    // and the wait ends on it with exit 1 and the operator's message.
    let ran = cli(&["apply", "-f", &missing, "--wait", "--timeout", "60s"])?;
    ran.expect(1, "apply --wait of a missing config secret")?;
    if !ran.stderr.contains(&format!("{NAME} reports Error"))
        || !ran.stderr.contains("does not exist")
    {
        return Err(format!("apply --wait to Error said: {}", ran.stderr).into());
    }

    // Docker unreachable: the message names the endpoint and the way out.
    let out = crate::sandbox::output_within(
        Command::new(env!("CARGO_BIN_EXE_aerospike-swarm-operator")).args([
            "status",
            "--docker-host",
            "unix:///nonexistent/docker.sock",
        ]),
        std::time::Duration::from_secs(60),
    )
    .map_err(|e| format!("cannot run the operator binary: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2)
        || !stderr.contains("cannot reach Docker at unix:///nonexistent/docker.sock")
        || !stderr.contains("set DOCKER_HOST or --docker-host")
    {
        return Err(format!("status with no Docker: {:?} {stderr}", out.status.code()).into());
    }

    for file in [&paused, &running, &missing] {
        let _ = std::fs::remove_file(file);
    }
    let _ = std::fs::remove_file(&conf);
    drop(guard);
    eprintln!(
        "e2e cli: (a)-(d) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
