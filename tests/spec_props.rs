//! Property tests of the spec contract: arbitrary label maps and documents
//! never make the parser panic, and every spec it accepts round-trips
//! through labels and through YAML unchanged.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;

use aerospike_swarm_operator::spec::{
    schema, ClusterDocument, ClusterSpec, Edition, Field, SpecErrors, StorageSpec, CLUSTER_PREFIX,
};

/// Keys a label map may hold: ours, near misses of ours, other
/// `aerospike.cluster.*` keys, status keys, and anything at all.
fn label_key() -> impl Strategy<Value = String> {
    let ours = prop::sample::select(Field::ALL.map(Field::label).to_vec()).prop_map(str::to_string);
    let near_miss = (
        prop::sample::select(Field::ALL.map(Field::label).to_vec()),
        any::<prop::sample::Index>(),
        any::<char>(),
    )
        .prop_map(|(key, at, c)| {
            let mut chars: Vec<char> = key.chars().collect();
            let i = at.index(chars.len());
            chars[i] = c;
            chars.into_iter().collect()
        });
    prop_oneof![
        4 => ours,
        2 => near_miss,
        1 => "[a-z-]{0,16}".prop_map(|s| format!("{CLUSTER_PREFIX}{s}")),
        1 => prop::sample::select(vec!["aerospike.status.phase", "aerospike.status.ready", "aerospike.status.observed-version"])
            .prop_map(str::to_string),
        1 => "\\PC{0,30}",
    ]
}

/// Values: numbers near every bound, the literal words the parser knows,
/// plausible names, and anything at all.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "-1", "0", "1", "3", "8", "9", "255", "256", "257", "3000", "3001", "3002", "65535", "65536",
            "99999999999999999999", "+3", "03", "3.0", " 3", "",
        ])
        .prop_map(str::to_string),
        2 => prop::sample::select(vec![
            "true", "false", "community", "enterprise", "7.1.0.0", "ee-7.1.0.0", "aerospike/aerospike-server",
            "aerospike/aerospike-server-enterprise", "aerospike/aerospike-server:7.1.0.0", "aerospike.conf",
            "/run/secrets/aerospike.conf", "aerospike_net",
        ])
        .prop_map(str::to_string),
        1 => (0i64..70_000).prop_map(|n| n.to_string()),
        1 => "[a-zA-Z0-9_./:@-]{0,20}",
        1 => "\\PC{0,40}",
    ]
}

/// Arbitrary maps, and valid specs' labels with a few arbitrary entries
/// added or overwritten: the second kind lands near the boundary between
/// valid and invalid, where both outcomes occur often.
fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let arbitrary = prop::collection::btree_map(label_key(), label_value(), 0..12);
    let perturbed = (
        valid_spec(),
        prop::collection::btree_map(label_key(), label_value(), 0..3),
    )
        .prop_map(|(spec, changes)| {
            let mut labels = spec.to_labels();
            labels.extend(changes);
            labels
        });
    prop_oneof![arbitrary, perturbed]
}

/// Specs that are valid by construction, so the round-trip properties are
/// exercised on every case rather than on the few random maps that pass.
fn valid_spec() -> impl Strategy<Value = ClusterSpec> {
    let ports = prop::sample::subsequence((1u16..=65535).step_by(997).collect::<Vec<_>>(), 3)
        .prop_shuffle()
        .prop_map(|p| (p[0], p[1], p[2]));
    (
        (
            1u16..=256,
            "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
            prop::option::of("[a-z0-9]{1,8}(/[a-z0-9]{1,8}(-enterprise)?)?"),
        ),
        (
            prop::option::of("[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,10}[a-zA-Z0-9])?"),
            prop::option::of("(/[a-z0-9._-]{1,8}){1,3}"),
            prop::option::of(any::<bool>()),
        ),
        (
            prop::option::of(ports),
            prop::option::of("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,12}"),
            prop::option::of(any::<bool>()),
        ),
        prop::option::of((
            "[a-zA-Z0-9][a-zA-Z0-9_.-]{1,12}",
            prop::option::of("(/[a-z0-9_-]{1,8}){1,2}"),
            prop::option::of(prop::sample::select(vec!["local", "vieux/sshfs:latest"])),
            prop::collection::btree_map("[a-z][a-z0-9_.-]{0,6}", "[a-zA-Z0-9=/ ._-]{0,8}", 0..3),
        )),
    )
        .prop_map(
            |(
                (replicas, version, image),
                (config_secret, config_target, paused),
                (ports, network, enterprise),
                storage,
            )| {
                let edition = enterprise.map(|e| {
                    if e {
                        Edition::Enterprise
                    } else {
                        Edition::Community
                    }
                });
                // Above 8 nodes only Enterprise is valid; say so explicitly.
                let edition = if replicas > 8 {
                    Some(Edition::Enterprise)
                } else {
                    edition
                };
                // ".." segments are refused; the regex may produce them.
                let config_target = config_target.filter(|t| !t.split('/').any(|p| p == ".."));
                let config = config_target
                    .clone()
                    .unwrap_or_else(|| "/run/secrets/aerospike.conf".into());
                let storage = storage.map(|(volume, path, driver, driver_options)| StorageSpec {
                    volume,
                    // The data volume may not hide the config secret.
                    path: path
                        .filter(|p: &String| config != *p && !config.starts_with(&format!("{p}/"))),
                    driver: driver.map(str::to_string),
                    driver_options,
                });
                ClusterSpec {
                    replicas,
                    version,
                    image,
                    config_secret,
                    config_object: None,
                    config_target,
                    paused,
                    heartbeat_port: ports.map(|p| p.0),
                    service_port: ports.map(|p| p.1),
                    fabric_port: ports.map(|p| p.2),
                    network,
                    edition,
                    storage,
                }
            },
        )
}

fn schema_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(schema::json_schema().as_value())
            .expect("the generated schema compiles")
    })
}

/// Labels → spec → labels → spec, and spec → YAML → spec.
fn assert_round_trips(
    spec: &ClusterSpec,
    current_image: Option<&str>,
) -> Result<(), TestCaseError> {
    let labels = spec.to_labels();
    let again = ClusterSpec::from_labels(&labels, current_image);
    prop_assert_eq!(again, Ok(Some(spec.clone())));

    let document = ClusterDocument::new("aerospikedb", spec.clone());
    let yaml = document.to_yaml();
    let back = ClusterDocument::from_yaml(&yaml, current_image);
    prop_assert_eq!(back.as_ref(), Ok(&document), "YAML was:\n{}", yaml);

    // What the reader accepts, the schema accepts.
    let json: serde_json::Value =
        serde_norway::from_str(&yaml).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let problems: Vec<String> = schema_validator()
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    prop_assert!(
        problems.is_empty(),
        "schema rejects accepted YAML {}: {:?}",
        yaml,
        problems
    );
    Ok(())
}

fn assert_well_formed(errors: &SpecErrors) -> Result<(), TestCaseError> {
    prop_assert!(!errors.errors().is_empty());
    for error in errors.errors() {
        let shown = error.to_string();
        prop_assert!(
            shown.starts_with(&format!("{}: ", error.location)),
            "{}",
            shown
        );
        prop_assert!(!error.problem.is_empty());
        prop_assert!(!shown.contains('\n'), "one error per line: {:?}", shown);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_labels_never_panic_and_accepted_specs_round_trip(
        labels in label_map(),
        current_image in prop::option::of(prop::sample::select(vec![
            "aerospike/aerospike-server:7.1.0.0@sha256:00",
            "aerospike/aerospike-server-enterprise:7.0.0.0",
            "localhost:5000/aerospike",
            "",
        ])),
    ) {
        match ClusterSpec::from_labels(&labels, current_image) {
            Ok(None) => {
                prop_assert!(!labels.keys().any(|k| k.starts_with(CLUSTER_PREFIX)), "managed labels read as unmanaged");
            }
            Ok(Some(spec)) => {
                let ours: Vec<&String> = labels.keys().filter(|k| k.starts_with(CLUSTER_PREFIX)).collect();
                let written = spec.to_labels();
                prop_assert_eq!(written.keys().collect::<Vec<_>>(), ours, "to_labels changed the set of keys");
                assert_round_trips(&spec, current_image)?;
            }
            Err(errors) => assert_well_formed(&errors)?,
        }
    }

    #[test]
    fn valid_specs_are_accepted_and_round_trip(
        spec in valid_spec(),
        current_image in prop::option::of(Just("aerospike/aerospike-server:6.4.0.0")),
    ) {
        assert_round_trips(&spec, current_image)?;
    }

    #[test]
    fn arbitrary_text_as_a_document_never_panics(text in "\\PC{0,200}") {
        if let Err(errors) = ClusterDocument::from_yaml(&text, None) {
            assert_well_formed(&errors)?;
        }
    }

    #[test]
    fn documents_with_arbitrary_spec_values_never_panic(
        entries in prop::collection::btree_map(
            prop_oneof![
                4 => prop::sample::select(Field::ALL.map(Field::yaml_name).to_vec()).prop_map(str::to_string),
                1 => "[a-zA-Z-]{1,14}",
            ],
            prop_oneof![
                Just("~".to_string()),
                Just("[1, 2]".to_string()),
                Just("{a: 1}".to_string()),
                Just("2.5".to_string()),
                Just("true".to_string()),
                label_value().prop_map(|v| serde_json::to_string(&v).unwrap_or_default()),
                (-5i64..300).prop_map(|n| n.to_string()),
            ],
            0..10,
        ),
    ) {
        let mut text = String::from("apiVersion: aerospike-swarm-operator/v1alpha1\nkind: AerospikeCluster\nmetadata: {name: db}\nspec:\n");
        for (key, value) in &entries {
            text.push_str(&format!("  {key}: {value}\n"));
        }
        match ClusterDocument::from_yaml(&text, None) {
            Ok(document) => assert_round_trips(&document.spec, None)?,
            Err(errors) => assert_well_formed(&errors)?,
        }
    }
}
