//! Service labels ⇄ [`ClusterSpec`].
//!
//! A service is managed when it carries `aerospike.cluster.replicas`. Other
//! services are left alone, with one exception: a service that has some
//! `aerospike.cluster.*` labels but no `replicas` is an error, because its
//! owner clearly meant it to be managed and a silent "not managed" would
//! hide the mistake. A label that is one typo away from one of ours (say
//! `aerospike.cluser.replicas`) counts as meant too.

use std::collections::{BTreeMap, BTreeSet};

use super::validate::{build_spec, suggest, Location, SpecError, SpecErrors};
use super::{ClusterSpec, Field, CLUSTER_PREFIX};

/// Parses a service's labels into its spec; see [`ClusterSpec::from_labels`].
pub(crate) fn parse<'a, I>(
    labels: I,
    current_image: Option<&str>,
) -> Result<Option<ClusterSpec>, SpecErrors>
where
    I: IntoIterator<Item = (&'a String, &'a String)>,
{
    let mut raw = BTreeMap::new();
    let mut errors = Vec::new();
    // Sorted, so that errors come out in the same order on every run.
    let labels: BTreeMap<&String, &String> = labels.into_iter().collect();
    for (key, value) in &labels {
        if let Some(field) = Field::from_label(key) {
            raw.insert(field, value.to_string());
        } else if let Some(suffix) = key.strip_prefix(CLUSTER_PREFIX) {
            let suffixes = Field::ALL
                .iter()
                .map(|f| &f.label()[CLUSTER_PREFIX.len()..]);
            let hint = match suggest(suffix, suffixes) {
                Some(near) => format!("; did you mean {CLUSTER_PREFIX}{near}?"),
                None => format!("; the known keys are {}", known_keys()),
            };
            errors.push(SpecError {
                location: Location::Label(key.to_string()),
                value: Some(value.to_string()),
                problem: format!("is set on an unknown label{hint}"),
            });
        } else if let Some(near) = misspelt_prefix(key) {
            errors.push(SpecError {
                location: Location::Label(key.to_string()),
                value: Some(value.to_string()),
                problem: format!(
                    "is set on a label the operator does not read; did you mean {near}?"
                ),
            });
        }
    }

    if raw.is_empty() && errors.is_empty() {
        return Ok(None);
    }
    let spec = build_spec(
        &raw,
        &BTreeSet::new(),
        current_image,
        &label_location,
        &mut errors,
    );
    match spec {
        Some(spec) if errors.is_empty() => Ok(Some(spec)),
        _ => Err(SpecErrors::new(errors)),
    }
}

fn label_location(field: Field) -> Location {
    Location::Label(field.label().to_string())
}

/// The key of ours that `key` misspells, for a label outside our prefix
/// that starts like ours: `aerospike.cluser.replicas`,
/// `aerospike-cluster.version`. Status labels are ours but not the spec.
pub(crate) fn misspelt_prefix(key: &str) -> Option<&'static str> {
    if !key.to_ascii_lowercase().starts_with("aero") || key.starts_with(super::STATUS_PREFIX) {
        return None;
    }
    suggest(key, Field::ALL.iter().map(|f| f.label()))
}

fn known_keys() -> String {
    Field::ALL
        .iter()
        .map(|f| f.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The labels that declare `spec`: exactly the fields it has.
pub(crate) fn render(spec: &ClusterSpec) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut put = |field: Field, value: Option<String>| {
        if let Some(value) = value {
            labels.insert(field.label().to_string(), value);
        }
    };
    put(Field::Replicas, Some(spec.replicas.to_string()));
    put(Field::Version, Some(spec.version.clone()));
    put(Field::Image, spec.image.clone());
    put(Field::ConfigSecret, spec.config_secret.clone());
    put(Field::ConfigObject, spec.config_object.clone());
    put(Field::ConfigTarget, spec.config_target.clone());
    put(Field::Paused, spec.paused.map(|p| p.to_string()));
    put(
        Field::HeartbeatPort,
        spec.heartbeat_port.map(|p| p.to_string()),
    );
    put(Field::ServicePort, spec.service_port.map(|p| p.to_string()));
    put(Field::FabricPort, spec.fabric_port.map(|p| p.to_string()));
    put(Field::Network, spec.network.clone());
    put(Field::Edition, spec.edition.map(|e| e.as_str().to_string()));
    if let Some(storage) = &spec.storage {
        put(Field::StorageVolume, Some(storage.volume.clone()));
        put(Field::StoragePath, storage.path.clone());
        put(Field::StorageDriver, storage.driver.clone());
        put(Field::StorageDriverOptions, storage.driver_options_label());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SpecErrors, REPLICAS};

    use crate::spec::label_map as labels;

    fn parse_pairs(pairs: &[(&str, &str)]) -> Result<Option<ClusterSpec>, SpecErrors> {
        ClusterSpec::from_labels(&labels(pairs), Some("aerospike/aerospike-server:7.1.0.0"))
    }

    #[test]
    fn unmanaged_services_are_none() {
        assert_eq!(parse_pairs(&[]), Ok(None));
        assert_eq!(
            parse_pairs(&[
                ("com.docker.stack.namespace", "aerospike"),
                ("aerospike.status.phase", "Ready")
            ]),
            Ok(None)
        );
    }

    #[test]
    fn minimal_spec() {
        let spec = parse_pairs(&[
            (REPLICAS, "3"),
            ("aerospike.cluster.version", "7.1.0.0"),
            ("other", "x"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(spec.replicas, 3);
        assert_eq!(spec.image, None);
        assert_eq!(
            spec.to_labels(),
            labels(&[(REPLICAS, "3"), ("aerospike.cluster.version", "7.1.0.0")])
        );
    }

    #[test]
    fn full_spec_round_trips() {
        let pairs = labels(&[
            (REPLICAS, "4"),
            ("aerospike.cluster.version", "ee-7.1.0.0"),
            (
                "aerospike.cluster.image",
                "aerospike/aerospike-server-enterprise",
            ),
            ("aerospike.cluster.config-secret", "aerospike.conf"),
            (
                "aerospike.cluster.config-target",
                "/etc/aerospike/aerospike.conf",
            ),
            ("aerospike.cluster.paused", "false"),
            ("aerospike.cluster.heartbeat-port", "3002"),
            ("aerospike.cluster.service-port", "3000"),
            ("aerospike.cluster.fabric-port", "3001"),
            ("aerospike.cluster.network", "aerospike_net"),
            ("aerospike.cluster.edition", "enterprise"),
            ("aerospike.cluster.storage.volume", "aerospike-data"),
            ("aerospike.cluster.storage.path", "/data"),
            ("aerospike.cluster.storage.driver", "local"),
            (
                "aerospike.cluster.storage.driver-options",
                "device=tmpfs,type=tmpfs",
            ),
        ]);
        let spec = ClusterSpec::from_labels(&pairs, None).unwrap().unwrap();
        assert_eq!(spec.to_labels(), pairs);
    }

    #[test]
    fn storage_labels() {
        let base = [(REPLICAS, "3"), ("aerospike.cluster.version", "7.1.0.0")];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            parse_pairs(&pairs)
        };
        let spec = with(&[("aerospike.cluster.storage.volume", "aerospike-data")])
            .unwrap()
            .unwrap();
        let storage = spec.storage.as_ref().unwrap();
        assert_eq!(storage.volume, "aerospike-data");
        assert_eq!(storage.path(), "/opt/aerospike/data");
        assert_eq!(storage.driver, None);
        assert!(storage.driver_options.is_empty());
        assert!(spec
            .summary()
            .ends_with("storage volume aerospike-data at /opt/aerospike/data"));
        let spec = with(&[
            ("aerospike.cluster.storage.volume", "db"),
            (
                "aerospike.cluster.storage.driver-options",
                "type=tmpfs,o=size=1g",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            spec.storage.unwrap().driver_options,
            BTreeMap::from([
                ("o".to_string(), "size=1g".to_string()),
                ("type".to_string(), "tmpfs".to_string())
            ])
        );

        for (pairs, label, expected) in [
            (
                vec![("aerospike.cluster.storage.path", "/data")],
                "aerospike.cluster.storage.path",
                r#"aerospike.cluster.storage.path: "/data" is set but aerospike.cluster.storage.volume is not"#,
            ),
            (
                vec![("aerospike.cluster.storage.volume", "a b")],
                "aerospike.cluster.storage.volume",
                r#"aerospike.cluster.storage.volume: "a b" is not a valid volume name: the character " " is not allowed"#,
            ),
            (
                vec![
                    ("aerospike.cluster.storage.volume", "db"),
                    ("aerospike.cluster.storage.path", "data"),
                ],
                "aerospike.cluster.storage.path",
                r#"aerospike.cluster.storage.path: "data" is not an absolute path"#,
            ),
            (
                vec![
                    ("aerospike.cluster.storage.volume", "db"),
                    ("aerospike.cluster.storage.path", "/run/secrets"),
                ],
                "aerospike.cluster.storage.path",
                r#"aerospike.cluster.storage.path: "/run/secrets" would hide the config secret mounted at /run/secrets/aerospike.conf"#,
            ),
            (
                vec![
                    ("aerospike.cluster.storage.volume", "db"),
                    ("aerospike.cluster.storage.driver-options", "type=nfs,rw"),
                ],
                "aerospike.cluster.storage.driver-options",
                r#"aerospike.cluster.storage.driver-options: "type=nfs,rw" has "rw", which is not key=value"#,
            ),
            (
                vec![
                    ("aerospike.cluster.storage.volume", "db"),
                    ("aerospike.cluster.storage.driver-options", "a=1,a=2"),
                ],
                "aerospike.cluster.storage.driver-options",
                r#"gives the option "a" twice"#,
            ),
            (
                vec![
                    ("aerospike.cluster.storage.volume", "db"),
                    ("aerospike.cluster.storage.driver", "lo cal"),
                ],
                "aerospike.cluster.storage.driver",
                "is not a valid driver name",
            ),
        ] {
            let errors = with(&pairs).unwrap_err();
            assert_eq!(errors.errors().len(), 1, "{pairs:?}: {errors}");
            assert!(errors.names(label), "{pairs:?}: {errors}");
            assert!(errors.to_string().contains(expected), "{pairs:?}: {errors}");
        }
        // A typo of a storage label is caught like any other.
        let errors = with(&[("aerospike.cluster.storage.volum", "db")]).unwrap_err();
        assert!(
            errors
                .to_string()
                .contains("did you mean aerospike.cluster.storage.volume?"),
            "{errors}"
        );
    }

    #[test]
    fn other_cluster_keys_without_replicas_are_an_error() {
        let errors = parse_pairs(&[("aerospike.cluster.version", "7.1.0.0")]).unwrap_err();
        assert_eq!(errors.errors().len(), 1, "{errors}");
        assert!(
            errors
                .to_string()
                .starts_with("aerospike.cluster.replicas: is required"),
            "{errors}"
        );

        // Other problems are still reported alongside.
        let errors = parse_pairs(&[("aerospike.cluster.version", "7 1")]).unwrap_err();
        assert!(
            errors.names(REPLICAS) && errors.names("aerospike.cluster.version"),
            "{errors}"
        );
        assert_eq!(errors.errors().len(), 2, "{errors}");
    }

    #[test]
    fn unknown_keys_suggest_the_near_one() {
        let errors = parse_pairs(&[
            (REPLICAS, "3"),
            ("aerospike.cluster.version", "7.1.0.0"),
            ("aerospike.cluster.replica", "3"),
            ("aerospike.cluster.configSecret", "aerospike.conf"),
            ("aerospike.cluster.owner", "me"),
        ])
        .unwrap_err();
        let shown = errors.to_string();
        assert!(shown.contains(r#"aerospike.cluster.replica: "3" is set on an unknown label; did you mean aerospike.cluster.replicas?"#), "{shown}");
        assert!(
            shown.contains("did you mean aerospike.cluster.config-secret?"),
            "{shown}"
        );
        assert!(shown.contains(r#"aerospike.cluster.owner: "me" is set on an unknown label; the known keys are aerospike.cluster.replicas, "#), "{shown}");
    }

    #[test]
    fn misspelt_prefix_is_an_error_not_unmanaged() {
        let errors = parse_pairs(&[("aerospike.cluser.replicas", "3")]).unwrap_err();
        let shown = errors.to_string();
        assert!(
            shown.contains("did you mean aerospike.cluster.replicas?"),
            "{shown}"
        );
        let errors = parse_pairs(&[("aerospike-cluster.version", "3")]).unwrap_err();
        assert!(errors
            .to_string()
            .contains("did you mean aerospike.cluster.version?"));
        // Unrelated aerospike labels are not ours to judge.
        assert_eq!(parse_pairs(&[("aerospike.team", "storage")]), Ok(None));
    }

    #[test]
    fn errors_are_in_label_order() {
        let errors = parse_pairs(&[
            ("aerospike.cluster.version", ""),
            (REPLICAS, "0"),
            ("aerospike.cluster.fabric-port", "x"),
        ])
        .unwrap_err();
        let order: Vec<String> = errors
            .errors()
            .iter()
            .map(|e| e.location.to_string())
            .collect();
        assert_eq!(
            order,
            [
                REPLICAS,
                "aerospike.cluster.version",
                "aerospike.cluster.fabric-port"
            ]
        );
    }
}
