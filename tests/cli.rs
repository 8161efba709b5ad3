//! The command line as a script sees it: exit codes and messages of the
//! binary, for what needs no Docker (explain, validate -f) or fails before
//! reaching it (apply of an invalid document), and for a Docker that is
//! not there.

use std::process::Command;

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with DOCKER_HOST at a socket that does not exist.
fn cli(args: &[&str]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_aerospike-swarm-operator"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("run the binary");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn every_command_has_help() {
    for command in ["run", "validate", "schema", "explain", "apply", "status"] {
        let ran = cli(&[command, "--help"]);
        assert_eq!(ran.code, Some(0), "{command} --help: {}", ran.stderr);
        assert!(
            ran.stdout.contains("Usage: aerospike-swarm-operator"),
            "{command}"
        );
    }
}

#[test]
fn explain_shows_one_label_or_exits_1_with_the_closest() {
    let ran = cli(&["explain", "spec.replicas"]);
    assert_eq!(ran.code, Some(0));
    assert!(ran
        .stdout
        .starts_with("aerospike.cluster.replicas  (YAML spec.replicas)"));
    let ran = cli(&["explain", "replica"]);
    assert_eq!(ran.code, Some(1));
    assert!(ran
        .stderr
        .contains("did you mean aerospike.cluster.replicas?"));
    assert!(ran.stderr.contains("aerospike.status.phase"), "the list");
}

#[test]
fn validate_f_reads_a_file_as_the_positional_form_does() {
    let ran = cli(&["validate", "-f", "crd-like-specs/examples/cluster.yaml"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran
        .stdout
        .starts_with("ok: aerospikedb is a valid AerospikeCluster"));
    let ran = cli(&[
        "validate",
        "-f",
        "crd-like-specs/examples/invalid-typos.yaml",
    ]);
    assert_eq!(ran.code, Some(1));
}

#[test]
fn apply_of_an_invalid_document_names_the_field_and_touches_nothing() {
    // Docker is not there: the document is refused before it is needed.
    let ran = cli(&["apply", "-f", "crd-like-specs/examples/invalid-typos.yaml"]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran
        .stderr
        .contains("spec.configSecrets: is not a known field"));
    assert!(ran.stderr.contains("nothing was changed"));
    assert!(!ran.stderr.contains("cannot reach Docker"));
}

#[test]
fn no_docker_is_exit_2_with_the_endpoint_and_a_way_out() {
    for args in [
        &[
            "apply",
            "-f",
            "crd-like-specs/examples/cluster.yaml",
            "--dry-run",
        ][..],
        &["status"][..],
        &["validate", "--service", "aerospikedb"][..],
    ] {
        let ran = cli(args);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr
                .contains("cannot reach Docker at unix:///nonexistent/docker.sock")
                && ran.stderr.contains("set DOCKER_HOST or --docker-host"),
            "{args:?}: {}",
            ran.stderr
        );
    }
    // The flag wins over the environment.
    let ran = cli(&["status", "--docker-host", "unix:///elsewhere/docker.sock"]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr.contains("unix:///elsewhere/docker.sock"),
        "{}",
        ran.stderr
    );
}
