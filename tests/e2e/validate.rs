//! `aerospike-swarm-operator validate --service` against a live service:
//! the labels as the swarm stores them, read through the Engine API.

use std::process::Command;

use crate::sandbox::{docker, Sandbox, ServiceGuard};
use crate::TestResult;

fn validate(service: &str) -> Result<(i32, String), libtest_mimic::Failed> {
    let out = crate::sandbox::output_within(
        Command::new(env!("CARGO_BIN_EXE_aerospike-swarm-operator"))
            .args(["validate", "--service", service])
            .env("DOCKER_HOST", "unix:///var/run/docker.sock"),
        std::time::Duration::from_secs(60),
    )
    .map_err(|e| format!("cannot run the operator binary: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

/// A bad label on a live service is reported by name with exit code 1;
/// after `docker service update --label-add` fixes it, exit code 0. A
/// service that does not exist is exit code 2.
pub fn validate_service_names_the_bad_label_and_accepts_the_fix(_: &Sandbox) -> TestResult {
    let name = "e2e-validate";
    let _ = docker(&["service", "rm", name]);
    // No task needs to run to check labels.
    docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        name,
        "--replicas",
        "0",
        "--label",
        "aerospike.cluster.replicas=three",
        "--label",
        "aerospike.cluster.version=7.1.0.0",
        "aerospike/aerospike-server:7.1.0.0",
    ])?;
    let _guard = ServiceGuard(name.to_string());

    let (code, text) = validate(name)?;
    if code != 1 || !text.contains("aerospike.cluster.replicas") || !text.contains("three") {
        return Err(format!(
            "expected exit 1 naming aerospike.cluster.replicas, got {code}: {text}"
        )
        .into());
    }
    docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        "aerospike.cluster.replicas=3",
        name,
    ])?;
    let (code, text) = validate(name)?;
    if code != 0 || !text.contains("3 replicas") {
        return Err(format!("expected exit 0 after the fix, got {code}: {text}").into());
    }
    let (code, text) = validate("e2e-no-such-service")?;
    if code != 2 || !text.contains("no swarm service named") {
        return Err(format!("expected exit 2 for a missing service, got {code}: {text}").into());
    }
    Ok(())
}
