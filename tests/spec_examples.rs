//! The files in crd-like-specs/: every example validates as its comments
//! say, the YAML agrees with the checked-in JSON Schema, and the
//! `validate` and `schema` commands behave as documented.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aerospike_swarm_operator::spec::{schema, ClusterDocument, ClusterSpec, SpecErrors};

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crd-like-specs")
}

fn example(name: &str) -> PathBuf {
    specs_dir().join("examples").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The labels an example promises its errors name (`# expect-error: X`).
fn expected_errors(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# expect-error:"))
        .map(|name| name.trim().to_string())
        .collect()
}

fn yaml_examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(specs_dir().join("examples"))
        .expect("crd-like-specs/examples exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_yaml_example_validates_as_its_comments_say() {
    let files = yaml_examples();
    assert!(
        files.len() >= 3,
        "expected the valid and invalid examples, found {files:?}"
    );
    for path in files {
        let text = read(&path);
        let expected = expected_errors(&text);
        match ClusterDocument::from_yaml(&text, None) {
            Ok(document) => assert!(
                expected.is_empty(),
                "{} is valid ({:?}) but should name {expected:?}",
                path.display(),
                document.spec
            ),
            Err(errors) => {
                assert!(
                    !expected.is_empty(),
                    "{} should be valid:\n{errors}",
                    path.display()
                );
                for name in &expected {
                    assert!(
                        errors.names(name),
                        "{}: no error names {name}:\n{errors}",
                        path.display()
                    );
                }
                assert_eq!(
                    errors.errors().len(),
                    expected.len(),
                    "{}: more errors than expected:\n{errors}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn cluster_example_is_the_three_node_recipe() {
    let document = ClusterDocument::from_yaml(&read(&example("cluster.yaml")), None)
        .expect("cluster.yaml is valid");
    assert_eq!(document.metadata.name, "aerospikedb");
    assert_eq!(document.spec.replicas, 3);
    assert_eq!(
        document.spec.image_reference(None),
        "aerospike/aerospike-server:7.1.0.0"
    );
    assert_eq!(
        document.spec.config_secret.as_deref(),
        Some("aerospike.conf")
    );
}

fn stack_service() -> serde_norway::Value {
    let stack: serde_norway::Value =
        serde_norway::from_str(&read(&example("stack.yml"))).expect("stack.yml is YAML");
    stack["services"]["aerospikedb"].clone()
}

#[test]
fn stack_file_declares_a_valid_cluster_in_service_labels() {
    let service = stack_service();
    let labels: std::collections::BTreeMap<String, String> =
        serde_norway::from_value(service["deploy"]["labels"].clone())
            .expect("deploy.labels is a map of strings");
    let image = service["image"].as_str();
    assert_eq!(image, Some("aerospike/aerospike-server:7.1.0.0"));
    let spec: ClusterSpec = ClusterSpec::from_labels(&labels, image)
        .unwrap_or_else(|e: SpecErrors| panic!("stack.yml labels are invalid:\n{e}"))
        .expect("stack.yml's service is managed");

    // The recipe's own settings agree with the labels.
    assert_eq!(
        service["deploy"]["replicas"].as_u64(),
        Some(u64::from(spec.replicas))
    );
    assert_eq!(service["deploy"]["endpoint_mode"].as_str(), Some("dnsrr"));
    let command: Vec<&str> = service["command"]
        .as_sequence()
        .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(command, ["--config-file", spec.config_target()]);
    let secret = spec
        .config_secret
        .as_deref()
        .expect("stack.yml names the config secret");
    let stack: serde_norway::Value =
        serde_norway::from_str(&read(&example("stack.yml"))).expect("YAML");
    assert_eq!(stack["secrets"][secret]["name"].as_str(), Some(secret));
    assert_eq!(
        stack["networks"]["aerospike"]["attachable"].as_bool(),
        Some(true)
    );
    // Container labels would be ignored by the operator: none may hold the spec.
    assert!(
        service.get("labels").is_none(),
        "stack.yml puts the spec in container labels"
    );
}

#[test]
fn example_config_matches_the_spec_defaults() {
    let conf = read(&example("aerospike.conf"));
    let words: Vec<Vec<&str>> = conf
        .lines()
        .map(|line| {
            line.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect()
        })
        .collect();
    let has = |wanted: &[&str]| words.iter().any(|w| w == wanted);
    assert!(has(&["mode", "mesh"]));
    assert!(has(&["port", "3002"]) && has(&["port", "3000"]) && has(&["port", "3001"]));
    assert!(has(&["interval", "150"]) && has(&["timeout", "10"]));
    assert!(has(&["replication-factor", "2"]));
    assert!(
        !words
            .iter()
            .any(|w| w.first() == Some(&"mesh-seed-address-port")),
        "the operator tips nodes; the config has no seeds"
    );
}

/// Each `key value...` line of an aerospike.conf with the contexts it is
/// in, e.g. (`network.heartbeat`, `["address", "eth0"]`).
fn config_lines(conf: &str) -> Vec<(String, Vec<String>)> {
    let mut contexts: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for line in conf.lines() {
        let words: Vec<String> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        match words.last().map(String::as_str) {
            Some("{") => contexts.push(words[0].clone()),
            Some("}") => {
                contexts.pop();
            }
            Some(_) => lines.push((contexts.join("."), words)),
            None => {}
        }
    }
    lines
}

#[test]
fn example_config_starts_a_real_7_1_server_and_binds_the_overlay() {
    let lines = config_lines(&read(&example("aerospike.conf")));
    let value = |context: &str, key: &str| -> Option<String> {
        lines
            .iter()
            .find(|(c, w)| c == context && w[0] == key)
            .map(|(_, w)| w[1..].join(" "))
    };
    // 7.1 refuses to start without a cluster name.
    assert!(value("service", "cluster-name").is_some_and(|n| !n.is_empty()));
    // The official images create /opt/aerospike/smd.
    assert_eq!(
        value("service", "work-directory").as_deref(),
        Some("/opt/aerospike")
    );
    // `address any` publishes docker_gwbridge too, whose subnet every host
    // shares: peers reach the wrong node and migrations stall.
    for context in ["network.service", "network.heartbeat", "network.fabric"] {
        assert_eq!(
            value(context, "address").as_deref(),
            Some("eth0"),
            "{context} must bind the overlay interface"
        );
    }
    assert!(
        !lines.iter().any(|(_, w)| w == &["address", "any"]),
        "no address any anywhere"
    );
}

#[test]
fn device_config_is_the_memory_one_with_its_data_on_the_storage_volume() {
    let memory = config_lines(&read(&example("aerospike.conf")));
    let device = config_lines(&read(&example("aerospike-device.conf")));
    let outside_storage = |lines: &[(String, Vec<String>)]| -> Vec<(String, Vec<String>)> {
        lines
            .iter()
            .filter(|(context, _)| !context.ends_with(".storage-engine"))
            .cloned()
            .collect()
    };
    assert_eq!(outside_storage(&device), outside_storage(&memory));
    let storage: Vec<&Vec<String>> = device
        .iter()
        .filter(|(context, _)| context == "namespace.storage-engine")
        .map(|(_, words)| words)
        .collect();
    let conf = read(&example("aerospike-device.conf"));
    assert!(conf.contains("storage-engine device {"), "{conf}");
    assert!(!conf.contains("storage-engine memory"));
    let file = storage
        .iter()
        .find(|w| w[0] == "file")
        .map(|w| w[1].clone())
        .expect("a data file");
    assert!(storage.iter().any(|w| *w == &["filesize", "1G"]));
    assert!(storage.iter().any(|w| *w == &["flush-max-ms", "1000"]));

    // The cluster that uses it mounts the storage volume where the file is.
    let document = ClusterDocument::from_yaml(&read(&example("cluster-persistent.yaml")), None)
        .expect("cluster-persistent.yaml is valid");
    let storage = document.spec.storage.expect("it declares storage");
    assert_eq!(storage.volume, "aerospike-data");
    assert!(
        file.starts_with(&format!("{}/", storage.path())),
        "{file} is not on the volume at {}",
        storage.path()
    );
    assert_eq!(
        document.spec.config_secret.as_deref(),
        Some("aerospike-device.conf")
    );
}

fn checked_in_schema() -> serde_json::Value {
    serde_json::from_str(&read(&specs_dir().join("aerospikecluster.schema.json")))
        .expect("schema is JSON")
}

#[test]
fn examples_agree_with_the_json_schema() {
    let validator = jsonschema::validator_for(&checked_in_schema()).expect("the schema compiles");
    let as_json = |name: &str| -> serde_json::Value {
        serde_norway::from_str(&read(&example(name))).expect("example is YAML")
    };
    for name in ["cluster.yaml", "cluster-persistent.yaml"] {
        let cluster = as_json(name);
        let problems: Vec<String> = validator
            .iter_errors(&cluster)
            .map(|e| e.to_string())
            .collect();
        assert!(problems.is_empty(), "{name} fails the schema: {problems:?}");
    }
    // The schema has teeth too: it rejects the structural mistakes.
    assert!(!validator.is_valid(&as_json("invalid-replicas.yaml")));
    assert!(!validator.is_valid(&as_json("invalid-typos.yaml")));
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aerospike-swarm-operator"))
        .args(args)
        // Never reach a real daemon from a test.
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/aerospike-swarm-operator-test.sock",
        )
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn cli_validate_accepts_the_valid_example() {
    let out = run(&[
        "validate",
        example("cluster.yaml").to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok: aerospikedb is a valid AerospikeCluster (3 replicas, version 7.1.0.0)\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn cli_validate_lists_every_error_and_exits_1() {
    let out = run(&[
        "validate",
        example("invalid-typos.yaml").to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0]
            .starts_with("spec.configSecrets: is not a known field; did you mean configSecret?"),
        "{stderr}"
    );
    assert!(stderr.contains("spec.image (label aerospike.cluster.image): \"aerospike/aerospike-server:7.1.0.0\" contains a tag"));
    assert!(stderr.contains("aerospike.cluster.heartbeat-port"));
    assert!(lines[3].ends_with("has 3 errors"), "{stderr}");

    let out = run(&[
        "validate",
        example("invalid-replicas.yaml")
            .to_str()
            .expect("UTF-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr)
        .contains("spec.replicas (label aerospike.cluster.replicas): \"0\" must be at least 1"));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn cli_validate_exits_2_when_it_cannot_check() {
    let out = run(&["validate", "/nonexistent/cluster.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: cannot read /nonexistent/cluster.yaml:"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["validate", "--service", "aerospikedb"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: cannot reach Docker at unix:///nonexistent/"),
        "{stderr}"
    );

    // Usage errors: neither or both of FILE and --service.
    assert_eq!(run(&["validate"]).status.code(), Some(2));
    assert_eq!(
        run(&["validate", "x.yaml", "--service", "db"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn cli_schema_prints_the_checked_in_schema() {
    let out = run(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), schema::json_schema_text());
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("schema output is JSON");
    assert_eq!(printed, checked_in_schema());
}
