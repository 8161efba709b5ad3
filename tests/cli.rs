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
    cli_with_env(args, &[])
}

/// [`cli`] with more environment variables set.
fn cli_with_env(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_aerospike-swarm-operator"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .envs(env.iter().copied())
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
fn explain_and_validate_know_the_storage_labels() {
    for name in [
        "spec.storage.volume",
        "aerospike.cluster.storage.volume",
        "storage.volume",
    ] {
        let ran = cli(&["explain", name]);
        assert_eq!(ran.code, Some(0), "{name}: {}", ran.stderr);
        assert!(
            ran.stdout
                .starts_with("aerospike.cluster.storage.volume  (YAML spec.storage.volume)"),
            "{}",
            ran.stdout
        );
        assert!(ran.stdout.contains("node-local"), "{}", ran.stdout);
    }
    let ran = cli(&["explain", "spec.storage.driverOptions"]);
    assert!(ran.stdout.starts_with(
        "aerospike.cluster.storage.driver-options  (YAML spec.storage.driverOptions)"
    ));
    let ran = cli(&["explain"]);
    for label in [
        "aerospike.cluster.storage.volume",
        "aerospike.cluster.storage.path",
        "aerospike.cluster.storage.driver",
        "aerospike.cluster.storage.driver-options",
    ] {
        assert!(ran.stdout.contains(label), "{label} not listed");
    }
    let ran = cli(&[
        "validate",
        "crd-like-specs/examples/cluster-persistent.yaml",
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains("storage volume aerospike-data at /opt/aerospike/data"),
        "{}",
        ran.stdout
    );
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

#[test]
fn run_refuses_a_malformed_cluster_selector_before_reaching_docker() {
    let run = ["run", "--metrics-address", "off"];
    for (args, env) in [
        (&["--cluster-selector", "=a"][..], None),
        (&["--cluster-selector", "te am=a"][..], None),
        (&[][..], Some("te am=a")),
        (&[][..], Some("aerospike.cluster.team=a")),
    ] {
        let args: Vec<&str> = run.iter().chain(args).copied().collect();
        let env: Vec<(&str, &str)> = env
            .map(|v| ("ASW_CLUSTER_SELECTOR", v))
            .into_iter()
            .collect();
        let ran = cli_with_env(&args, &env);
        assert_eq!(ran.code, Some(2), "{args:?} {env:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("--cluster-selector") && ran.stderr.contains("LABEL"),
            "{args:?} {env:?}: {}",
            ran.stderr
        );
        assert!(
            !ran.stderr.contains("cannot reach Docker"),
            "{}",
            ran.stderr
        );
    }
    // Empty (what `${ASW_CLUSTER_SELECTOR:-}` gives) and well-formed ones
    // pass: the operator goes on to Docker, which is not there.
    for (args, env) in [
        (&[][..], Some("")),
        (&["--cluster-selector", ""][..], None),
        (&["--cluster-selector", "team=a"][..], None),
        (&[][..], Some("team")),
    ] {
        let args: Vec<&str> = run.iter().chain(args).copied().collect();
        let env: Vec<(&str, &str)> = env
            .map(|v| ("ASW_CLUSTER_SELECTOR", v))
            .into_iter()
            .collect();
        let ran = cli_with_env(&args, &env);
        assert_eq!(ran.code, Some(1), "{args:?} {env:?}: {}", ran.stderr);
        assert!(ran.stderr.contains("cannot reach Docker"), "{}", ran.stderr);
    }
}

/// The operator's image and its stack run it as a non-root user: the
/// image's operator stage ends with a numeric `USER` other than 0, and
/// `deploy/operator.yml` runs the service as that user with the socket's
/// group (`DOCKER_GID`); `group_add` would be ignored by swarm.
#[test]
fn the_operator_image_and_stack_run_as_a_non_root_user() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dockerfile = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    let stage: Vec<&str> = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("FROM scratch AS operator"))
        .skip(1)
        .take_while(|l| !l.starts_with("FROM "))
        .collect();
    assert!(!stage.is_empty(), "no operator stage");
    let user = stage
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the operator stage sets a USER");
    let (uid, gid) = user.trim().split_once(':').expect("USER uid:gid");
    let uid: u32 = uid.parse().expect("a numeric uid (scratch has no passwd)");
    gid.parse::<u32>().expect("a numeric gid");
    assert_ne!(uid, 0, "the image runs as root");

    let stack = std::fs::read_to_string(format!("{root}/deploy/operator.yml")).unwrap();
    let stack: serde_norway::Value = serde_norway::from_str(&stack).unwrap();
    let service = &stack["services"]["operator"];
    assert_eq!(
        service["user"].as_str(),
        Some(format!("{uid}:${{DOCKER_GID:-0}}").as_str()),
        "{service:?}"
    );
    assert!(
        service.get("group_add").is_none(),
        "swarm ignores group_add"
    );
}

/// A server config in a temporary file, removed on drop.
struct TempConf(std::path::PathBuf);

impl TempConf {
    fn new(name: &str, text: &str) -> TempConf {
        let path = std::env::temp_dir().join(format!("asw-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempConf(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const EXAMPLE_CONF: &str = include_str!("../crd-like-specs/examples/aerospike.conf");

#[test]
fn validate_config_passes_the_example() {
    let ran = cli(&[
        "validate",
        "--config",
        "crd-like-specs/examples/aerospike.conf",
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout
            .starts_with("ok: crd-like-specs/examples/aerospike.conf passes the checks"),
        "{}",
        ran.stdout
    );
    let ran = cli(&[
        "validate",
        "-f",
        "crd-like-specs/examples/cluster.yaml",
        "--config",
        "crd-like-specs/examples/aerospike-device.conf",
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.contains("is a valid AerospikeCluster"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("passes the checks (3 replicas"),
        "{}",
        ran.stdout
    );
}

#[test]
fn validate_config_prints_every_problem_with_its_line_and_fix() {
    let text = EXAMPLE_CONF
        .replacen("\taddress eth0", "\taddress any", 1)
        .replace("mode mesh", "mode multicast")
        .replace(
            "\treplication-factor 2\n",
            "\treplication-factor 2\n\track-id 1\n",
        );
    let conf = TempConf::new("bad.conf", &text);
    let ran = cli(&["validate", "--config", conf.path()]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let problems: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.starts_with(conf.path()))
        .collect();
    assert_eq!(problems.len(), 3, "{}", ran.stderr);
    for problem in &problems {
        assert!(problem.contains(": line "), "{problem}");
        assert!(problem.contains("; fix: "), "{problem}");
    }
    assert!(
        problems[0].contains("`address any` in network.service")
            && problems[0].contains("docker_gwbridge")
    );
    assert!(problems[1].contains("`mode multicast`") && problems[1].contains("fix: `mode mesh`"));
    assert!(problems[2].contains("`rack-id` in namespace is enterprise-only"));
    assert!(ran.stderr.contains("has 3 problems"), "{}", ran.stderr);
    // rack-id is fine on Enterprise.
    let ran = cli(&[
        "validate",
        "--config",
        conf.path(),
        "--edition",
        "enterprise",
    ]);
    assert_eq!(ran.code, Some(1));
    assert!(!ran.stderr.contains("rack-id"), "{}", ran.stderr);
}

#[test]
fn validate_config_takes_replicas_and_ports_from_the_spec() {
    let text = EXAMPLE_CONF
        .replace("replication-factor 2", "replication-factor 4")
        .replace("\t\tport 3001", "\t\tport 4001");
    let conf = TempConf::new("rf.conf", &text);
    let ran = cli(&[
        "validate",
        "crd-like-specs/examples/cluster.yaml",
        "--config",
        conf.path(),
    ]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stdout.contains("is a valid AerospikeCluster"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stderr
            .contains("`port 4001` in network.fabric, but aerospike.cluster.fabric-port is 3001"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("`replication-factor 4` in namespace test exceeds the 3 replicas"),
        "{}",
        ran.stderr
    );
}

#[test]
fn validate_config_names_the_line_of_a_syntax_error_and_exits_2_when_unreadable() {
    let conf = TempConf::new("broken.conf", "service {\n  cluster-name x\n}\n}\n");
    let ran = cli(&["validate", "--config", conf.path()]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains(": line 4: unbalanced `}`"),
        "{}",
        ran.stderr
    );
    let ran = cli(&["validate", "--config", "/nonexistent/aerospike.conf"]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("cannot read /nonexistent/aerospike.conf"),
        "{}",
        ran.stderr
    );
}
