//! The JSON Schema of the YAML document, generated from the Rust types.
//!
//! The schema is checked in at [`SCHEMA_PATH`] so that editors and other
//! tools can use it without building the operator; a test regenerates it
//! and fails when the checked-in copy is stale. Refresh it with
//! [`REFRESH_COMMAND`].

use super::ClusterDocument;

/// Where the schema is checked in, relative to the repository root.
pub const SCHEMA_PATH: &str = "crd-like-specs/aerospikecluster.schema.json";

/// The command that rewrites the checked-in schema.
pub const REFRESH_COMMAND: &str =
    "cargo run -q -p aerospike-swarm-operator -- schema > crd-like-specs/aerospikecluster.schema.json";

/// The schema of [`ClusterDocument`].
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(ClusterDocument)
}

/// The schema as pretty-printed JSON with a final newline, exactly as
/// checked in.
pub fn json_schema_text() -> String {
    // `{:#}` is serde_json's pretty printer, and unlike `to_string_pretty`
    // it cannot fail.
    format!("{:#}\n", json_schema().as_value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::status::StatusField;
    use crate::spec::Field;

    #[test]
    fn checked_in_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == json_schema_text(),
            "{} is stale or missing; refresh it with:\n    {REFRESH_COMMAND}",
            path.display()
        );
    }

    /// The YAML reader walks fields by the names in `Field`/`StatusField`,
    /// while the schema comes from the structs: they must name the same
    /// fields, or the schema would promise what the reader rejects.
    #[test]
    fn schema_names_the_fields_the_reader_reads() {
        let schema = json_schema();
        let value = schema.as_value();
        let keys = |object: &serde_json::Value| -> Vec<String> {
            let mut keys: Vec<String> = object["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        let definition = |name: &str| &value["$defs"][name];

        // A dotted name (`storage.volume`) is a field of a nested mapping.
        let mut spec_fields: Vec<String> = Field::ALL
            .iter()
            .map(|f| {
                f.yaml_name()
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        spec_fields.sort();
        spec_fields.dedup();
        assert_eq!(keys(definition("ClusterSpec")), spec_fields);
        let mut storage_fields: Vec<String> = Field::ALL
            .iter()
            .filter_map(|f| f.yaml_name().strip_prefix("storage."))
            .map(str::to_string)
            .collect();
        storage_fields.sort();
        assert_eq!(keys(definition("StorageSpec")), storage_fields);
        assert_eq!(definition("StorageSpec")["additionalProperties"], false);

        let mut status_fields: Vec<String> = StatusField::ALL
            .iter()
            .map(|f| f.yaml_name().to_string())
            .collect();
        status_fields.sort();
        assert_eq!(keys(definition("ClusterStatus")), status_fields);

        assert_eq!(
            keys(value),
            ["apiVersion", "kind", "metadata", "spec", "status"]
        );
        assert_eq!(keys(definition("Metadata")), ["labels", "name"]);
        assert_eq!(value["additionalProperties"], false);
        assert_eq!(definition("ClusterSpec")["additionalProperties"], false);
        let mut required: Vec<&str> = definition("ClusterSpec")["required"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        required.sort();
        assert_eq!(required, ["replicas", "version"]);
    }

    /// `metadata.labels` in the schema refuses what the reader refuses:
    /// values that are not text, names with whitespace or the operator's
    /// `aerospike.` prefix.
    #[test]
    fn schema_checks_metadata_labels_as_the_reader_does() {
        let validator =
            jsonschema::validator_for(json_schema().as_value()).expect("the schema compiles");
        let document = |labels: serde_json::Value| {
            serde_json::json!({
                "apiVersion": "aerospike-swarm-operator/v1alpha1",
                "kind": "AerospikeCluster",
                "metadata": {"name": "aerospikedb", "labels": labels},
                "spec": {"replicas": 3, "version": "7.1.0.0"},
            })
        };
        let reader_accepts = |labels: &serde_json::Value| {
            let yaml = serde_norway::to_string(&document(labels.clone())).expect("YAML");
            super::super::ClusterDocument::from_yaml(&yaml, None).is_ok()
        };
        for ok in [
            serde_json::json!({}),
            serde_json::json!({"team": "a", "com.example/owner": "", "aerospike-team": "x"}),
        ] {
            assert!(validator.is_valid(&document(ok.clone())), "{ok}");
            assert!(reader_accepts(&ok), "{ok}");
        }
        for bad in [
            serde_json::json!({"team": 1}),
            serde_json::json!({"team": true}),
            serde_json::json!({"team": null}),
            serde_json::json!({"te am": "a"}),
            serde_json::json!({"": "a"}),
            serde_json::json!({"aerospike.cluster.replicas": "3"}),
            serde_json::json!({"aerospike.status.phase": "Ready"}),
            serde_json::json!({"aerospike.team": "a"}),
            serde_json::json!(["team=a"]),
        ] {
            assert!(!validator.is_valid(&document(bad.clone())), "{bad}");
            assert!(!reader_accepts(&bad), "{bad}");
        }
    }
}
