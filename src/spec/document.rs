//! The CRD-like YAML document: the same spec as the labels, in a file.
//!
//! ```yaml
//! apiVersion: aerospike-swarm-operator/v1alpha1
//! kind: AerospikeCluster
//! metadata:
//!   name: aerospikedb        # the swarm service name
//!   labels:                  # optional: more service labels, of your own
//!     team: a
//! spec:
//!   replicas: 3              # label aerospike.cluster.replicas
//!   version: "7.1.0.0"       # label aerospike.cluster.version
//! ```
//!
//! Reading does not go through serde's derive: it walks the parsed YAML
//! tree so that it can report every problem at once, name each field by
//! its path *and* by the label it maps to, and run exactly the rules the
//! labels go through ([`super::validate`]). Writing does use serde, and
//! the JSON Schema comes from the same types ([`super::schema`]).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Serialize;
use serde_norway::Value;

use super::status::StatusField;
use super::validate::{build_spec, suggest, Location, SpecError, SpecErrors};
use super::{names, ClusterSpec, ClusterStatus, Field, FieldKind};

/// The only `apiVersion` this operator reads.
pub const API_VERSION: &str = "aerospike-swarm-operator/v1alpha1";
/// The only `kind` this operator reads.
pub const KIND: &str = "AerospikeCluster";

/// No key of `metadata.labels` starts with this: such labels are the
/// operator's (the spec and the status).
const RESERVED_PREFIX: &str = "aerospike.";

/// The top-level fields, for unknown-field suggestions.
const TOP_LEVEL: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];

/// `apiVersion`: one value, so the schema pins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "aerospike-swarm-operator/v1alpha1")]
    V1alpha1,
}

/// `kind`: one value, so the schema pins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Kind {
    AerospikeCluster,
}

/// An Aerospike cluster on Docker Swarm, declared as a document.
///
/// `spec` maps one to one onto the service's `aerospike.cluster.*` labels;
/// `status` onto its `aerospike.status.*` labels, which only the operator
/// writes (it is ignored when a document is applied); `metadata.labels`
/// are more labels of the user's own, put on the service as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "AerospikeCluster")]
pub struct ClusterDocument {
    /// Always `aerospike-swarm-operator/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `AerospikeCluster`.
    pub kind: Kind,
    /// Which swarm service this is.
    pub metadata: Metadata,
    /// What the user wants.
    pub spec: ClusterSpec,
    /// What the operator last saw; written by the operator only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ClusterStatus>,
}

/// Identifies the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The swarm service name (letters, digits, `-`, `_`; at most 63).
    #[schemars(
        pattern(r"^[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?$"),
        length(max = 63)
    )]
    pub name: String,
    /// More service labels, of your own (e.g. `team: a`, for an operator
    /// run with `--cluster-selector team=a`). Values are text. Names have
    /// no whitespace and do not start with `aerospike.`: the spec labels
    /// come from `spec`, the status labels from the operator. `apply` adds
    /// or changes these labels; it never removes one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {
        "pattern": r"^\S+$",
        "not": { "pattern": r"^aerospike\." }
    }))]
    pub labels: BTreeMap<String, String>,
}

impl ClusterDocument {
    /// A document for service `name` with no status.
    pub fn new(name: impl Into<String>, spec: ClusterSpec) -> ClusterDocument {
        ClusterDocument {
            api_version: ApiVersion::V1alpha1,
            kind: Kind::AerospikeCluster,
            metadata: Metadata {
                name: name.into(),
                labels: BTreeMap::new(),
            },
            spec,
            status: None,
        }
    }

    /// Parses and validates a document.
    ///
    /// `current_image` is the image of the service the document describes,
    /// when it already exists: it supplies the default repository (and so
    /// the inferred edition) exactly as it does for labels. Pass `None` for
    /// a file on its own.
    pub fn from_yaml(
        text: &str,
        current_image: Option<&str>,
    ) -> Result<ClusterDocument, SpecErrors> {
        let mut errors = Vec::new();
        let document = match serde_norway::from_str::<Value>(text) {
            Ok(value) => read_document(&value, current_image, &mut errors),
            Err(e) => {
                errors.push(SpecError {
                    location: field_at("(document)"),
                    value: None,
                    problem: format!("is not valid YAML: {e}"),
                });
                None
            }
        };
        match document {
            Some(document) if errors.is_empty() => Ok(document),
            _ => Err(SpecErrors::new(errors)),
        }
    }

    /// The document as YAML, optional fields left out when unset.
    pub fn to_yaml(&self) -> String {
        // Serialising these plain structs cannot fail (no maps with
        // non-string keys, no custom errors); fall back to an empty
        // document rather than panic if that ever changes.
        serde_norway::to_string(self).unwrap_or_default()
    }

    /// The document of a live service: its name, spec labels and status
    /// labels. `Ok(None)` when the service is not managed.
    ///
    /// `metadata.labels` stays empty: the service's other labels are not
    /// read back. They are not the spec, and a service carries labels no
    /// document set (`com.docker.stack.namespace`, say), which would be
    /// indistinguishable from those one did.
    pub fn from_service<'a, I>(
        name: &str,
        labels: I,
        current_image: Option<&str>,
    ) -> Result<Option<ClusterDocument>, SpecErrors>
    where
        I: IntoIterator<Item = (&'a String, &'a String)> + Clone,
    {
        let Some(spec) = ClusterSpec::from_labels(labels.clone(), current_image)? else {
            return Ok(None);
        };
        let status = ClusterStatus::from_labels(labels);
        let mut document = ClusterDocument::new(name, spec);
        document.status = (status != ClusterStatus::default()).then_some(status);
        Ok(Some(document))
    }

    /// The labels to put on the service: the spec labels and
    /// `metadata.labels` (status is the operator's and is left out). The
    /// two never share a key: `metadata.labels` has no `aerospike.` key.
    pub fn to_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.metadata.labels.clone();
        labels.extend(self.spec.to_labels());
        labels
    }
}

fn field_at(path: &str) -> Location {
    Location::Field {
        path: path.to_string(),
        label: None,
    }
}

fn spec_field_at(field: Field) -> Location {
    Location::Field {
        path: format!("spec.{}", field.yaml_name()),
        label: Some(field.label().to_string()),
    }
}

fn status_field_at(field: StatusField) -> Location {
    Location::Field {
        path: format!("status.{}", field.yaml_name()),
        label: Some(field.label().to_string()),
    }
}

/// Walks the whole document, pushing every problem onto `errors`.
fn read_document(
    root: &Value,
    current_image: Option<&str>,
    errors: &mut Vec<SpecError>,
) -> Option<ClusterDocument> {
    let top = mapping(
        root,
        "(document)",
        "apiVersion, kind, metadata and spec",
        errors,
    )?;

    for key in top.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            errors.push(unknown_field(key, key, &TOP_LEVEL, None));
        }
    }

    let mut require_exact = |name: &str, wanted: &str| match top.get(name) {
        None => errors.push(SpecError {
            location: field_at(name),
            value: None,
            problem: format!("is required: write {name}: {wanted}"),
        }),
        Some(Value::String(s)) if s == wanted => {}
        Some(other) => errors.push(SpecError {
            location: field_at(name),
            value: Some(show(other)),
            problem: format!("must be {wanted}"),
        }),
    };
    require_exact("apiVersion", API_VERSION);
    require_exact("kind", KIND);

    let metadata = read_metadata(top.get("metadata").copied(), errors);

    let spec = match top.get("spec") {
        None => {
            errors.push(SpecError {
                location: field_at("spec"),
                value: None,
                problem: "is required: it holds replicas, version and the other settings".into(),
            });
            None
        }
        Some(value) => read_spec(value, current_image, errors),
    };

    let status = match top.get("status") {
        None | Some(Value::Null) => Some(None),
        Some(value) => read_status(value, errors).map(Some),
    };

    Some(ClusterDocument {
        metadata: metadata?,
        status: status?,
        ..ClusterDocument::new(String::new(), spec?)
    })
}

/// The fields of `metadata`, for unknown-field suggestions.
const METADATA_FIELDS: [&str; 2] = ["name", "labels"];

fn read_metadata(value: Option<&Value>, errors: &mut Vec<SpecError>) -> Option<Metadata> {
    let Some(value) = value else {
        errors.push(SpecError {
            location: field_at("metadata"),
            value: None,
            problem: "is required: write metadata: {name: <swarm service name>}".into(),
        });
        return None;
    };
    let metadata = mapping(value, "metadata", "name and, optionally, labels", errors)?;
    for key in metadata
        .keys()
        .filter(|k| !METADATA_FIELDS.contains(&k.as_str()))
    {
        errors.push(unknown_field(
            key,
            &format!("metadata.{key}"),
            &METADATA_FIELDS,
            None,
        ));
    }
    let name = read_name(metadata.get("name").copied(), errors);
    let labels = match metadata.get("labels") {
        None | Some(Value::Null) => Some(BTreeMap::new()),
        Some(value) => read_labels(value, errors),
    };
    Some(Metadata {
        name: name?,
        labels: labels?,
    })
}

fn read_name(value: Option<&Value>, errors: &mut Vec<SpecError>) -> Option<String> {
    match value {
        None => {
            errors.push(SpecError {
                location: field_at("metadata.name"),
                value: None,
                problem: "is required: it is the name of the swarm service".into(),
            });
            None
        }
        Some(Value::String(name)) => match names::check_service_name(name) {
            Ok(()) => Some(name.clone()),
            Err(problem) => {
                errors.push(SpecError {
                    location: field_at("metadata.name"),
                    value: Some(name.clone()),
                    problem,
                });
                None
            }
        },
        Some(other) => {
            errors.push(SpecError {
                location: field_at("metadata.name"),
                value: Some(show(other)),
                problem: "must be text: the name of the swarm service".into(),
            });
            None
        }
    }
}

/// `metadata.labels`: label names to text values, none of them the
/// operator's own. Every bad name and value is reported.
fn read_labels(value: &Value, errors: &mut Vec<SpecError>) -> Option<BTreeMap<String, String>> {
    let entries = mapping(
        value,
        "metadata.labels",
        "label names and their values, e.g. team: a",
        errors,
    )?;
    let before = errors.len();
    let mut labels = BTreeMap::new();
    for (key, value) in &entries {
        let at = || label_field_at(key);
        if let Some(problem) = label_name_problem(key) {
            errors.push(SpecError {
                location: at(),
                value: None,
                problem,
            });
        }
        if value.is_null() {
            errors.push(SpecError {
                location: at(),
                value: None,
                problem: format!(
                    "has no value; a label's value is text: write {}: \"\" for an empty one",
                    if key.is_empty() { "\"\"" } else { key.as_str() }
                ),
            });
            continue;
        }
        if let Ok(Some(text)) = scalar_text(value, FieldKind::String, at, errors) {
            labels.insert(key.clone(), text);
        }
    }
    (errors.len() == before).then_some(labels)
}

/// `metadata.labels.<name>`, with the empty name shown as `""`.
fn label_field_at(name: &str) -> Location {
    if name.is_empty() {
        field_at("metadata.labels.\"\"")
    } else {
        field_at(&format!("metadata.labels.{name}"))
    }
}

/// Why `name` cannot be a label under `metadata.labels`, if it cannot.
///
/// Anything starting with `aerospike.` is the operator's (the spec under
/// `aerospike.cluster.`, the status under `aerospike.status.`), and so is
/// a name the label parser takes for a misspelling of a spec label
/// (`aerospike-cluster.version`): on the service, it would make the spec
/// invalid.
fn label_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is not a valid label name: it is empty".into());
    }
    if name.contains(char::is_whitespace) {
        return Some(format!(
            "is not a valid label name: {name:?} contains whitespace"
        ));
    }
    if let Some(field) = Field::from_label(name) {
        return Some(format!(
            "is reserved: {} is a spec label; write it as spec.{}",
            field.label(),
            field.yaml_name()
        ));
    }
    if name.starts_with(super::CLUSTER_PREFIX) {
        return Some(format!(
            "is reserved: the {}* labels are the spec, written under spec",
            super::CLUSTER_PREFIX
        ));
    }
    if name.starts_with(super::STATUS_PREFIX) {
        return Some(format!(
            "is reserved: the {}* labels are the status, written by the operator only",
            super::STATUS_PREFIX
        ));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Some(format!(
            "is reserved: labels starting with {RESERVED_PREFIX} are the operator's own"
        ));
    }
    if let Some(field) = super::labels::misspelt_prefix(name).and_then(Field::from_label) {
        return Some(format!(
            "looks like a misspelling of the spec label {}, which the operator would reject on \
             the service; write it as spec.{}, or pick another name",
            field.label(),
            field.yaml_name()
        ));
    }
    None
}

fn read_spec(
    value: &Value,
    current_image: Option<&str>,
    errors: &mut Vec<SpecError>,
) -> Option<ClusterSpec> {
    let spec = mapping(
        value,
        "spec",
        "replicas, version and the other settings",
        errors,
    )?;
    let before = errors.len();
    let mut raw = BTreeMap::new();
    let mut unreadable = BTreeSet::new();
    let top_names = spec_top_names();
    for (key, value) in &spec {
        if key == STORAGE {
            read_storage(value, &mut raw, &mut unreadable, errors);
            continue;
        }
        let Some(field) = Field::from_yaml_name(key).filter(|_| !key.contains('.')) else {
            let label = known_label_for(key);
            errors.push(unknown_field(
                key,
                &format!("spec.{key}"),
                &top_names,
                label,
            ));
            continue;
        };
        read_field(field, value, &mut raw, &mut unreadable, errors);
    }
    let spec = build_spec(&raw, &unreadable, current_image, &spec_field_at, errors);
    spec.filter(|_| errors.len() == before)
}

/// The mapping under `spec` whose fields are the `storage.*` ones.
const STORAGE: &str = "storage";

/// The names directly under `spec`: the undotted fields, and `storage`.
fn spec_top_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Field::ALL
        .into_iter()
        .map(Field::yaml_name)
        .filter(|n| !n.contains('.'))
        .collect();
    names.push(STORAGE);
    names
}

/// One field's YAML value as the text its label would hold.
fn read_field(
    field: Field,
    value: &Value,
    raw: &mut BTreeMap<Field, String>,
    unreadable: &mut BTreeSet<Field>,
    errors: &mut Vec<SpecError>,
) {
    let text = if field.kind() == FieldKind::Map {
        map_text(value, field, errors)
    } else {
        scalar_text(value, field.kind(), || spec_field_at(field), errors)
    };
    match text {
        Ok(Some(text)) => {
            raw.insert(field, text);
        }
        Ok(None) => {}
        Err(()) => {
            unreadable.insert(field);
        }
    }
}

/// `spec.storage`: `volume`, `path`, `driver`, `driverOptions`.
fn read_storage(
    value: &Value,
    raw: &mut BTreeMap<Field, String>,
    unreadable: &mut BTreeSet<Field>,
    errors: &mut Vec<SpecError>,
) {
    if value.is_null() {
        return;
    }
    let Some(storage) = mapping(
        value,
        "spec.storage",
        "volume and, optionally, path, driver and driverOptions",
        errors,
    ) else {
        return;
    };
    let prefix = format!("{STORAGE}.");
    let known: Vec<&'static str> = Field::ALL
        .into_iter()
        .filter_map(|f| f.yaml_name().strip_prefix(prefix.as_str()))
        .collect();
    for (key, value) in &storage {
        let Some(field) = Field::from_yaml_name(&format!("{prefix}{key}")) else {
            let label = known_label_for(&format!("{prefix}{key}"));
            errors.push(unknown_field(
                key,
                &format!("spec.{prefix}{key}"),
                &known,
                label,
            ));
            continue;
        };
        read_field(field, value, raw, unreadable, errors);
    }
}

/// A mapping of option names to text, as its label's `key=value,...`
/// (`Ok(None)` for null or an empty mapping). Every bad entry is
/// reported at `spec.<field>.<key>`.
fn map_text(
    value: &Value,
    field: Field,
    errors: &mut Vec<SpecError>,
) -> Result<Option<String>, ()> {
    if value.is_null() {
        return Ok(None);
    }
    let path = format!("spec.{}", field.yaml_name());
    let Some(entries) = mapping(value, &path, "option names and their text values", errors) else {
        return Err(());
    };
    let before = errors.len();
    let mut pairs = Vec::new();
    for (key, value) in &entries {
        let at = || Location::Field {
            path: format!("{path}.{key}"),
            label: Some(field.label().to_string()),
        };
        if let Err(problem) = super::validate::check_option_key(key) {
            errors.push(SpecError {
                location: at(),
                value: None,
                problem,
            });
            continue;
        }
        match scalar_text(value, FieldKind::String, at, errors) {
            Ok(Some(text)) if text.contains(',') => errors.push(SpecError {
                location: at(),
                value: Some(text),
                problem: "contains a comma, which a driver option's value cannot hold (the \
                          label separates options with commas)"
                    .into(),
            }),
            Ok(Some(text)) => pairs.push(format!("{key}={text}")),
            Ok(None) => errors.push(SpecError {
                location: at(),
                value: None,
                problem: format!("has no value; write {key}: \"\" for an empty one"),
            }),
            Err(()) => {}
        }
    }
    if errors.len() > before {
        return Err(());
    }
    Ok((!pairs.is_empty()).then(|| pairs.join(",")))
}

fn read_status(value: &Value, errors: &mut Vec<SpecError>) -> Option<ClusterStatus> {
    let fields = mapping(
        value,
        "status",
        "phase, ready, message, observedVersion, clusterKey",
        errors,
    )?;
    let before = errors.len();
    let mut status = ClusterStatus::default();
    for (key, value) in &fields {
        let Some(field) = StatusField::ALL.into_iter().find(|f| f.yaml_name() == key) else {
            errors.push(unknown_field(
                key,
                &format!("status.{key}"),
                &StatusField::ALL.map(StatusField::yaml_name),
                None,
            ));
            continue;
        };
        if let Ok(Some(text)) = scalar_text(value, field.kind(), || status_field_at(field), errors)
        {
            if let Err(problem) = status.set(field, &text) {
                errors.push(SpecError {
                    location: status_field_at(field),
                    value: Some(text),
                    problem,
                });
            }
        }
    }
    (errors.len() == before).then_some(status)
}

/// The entries of a mapping with text keys, or an error if `value` is not
/// one. A non-text key is reported and skipped.
fn mapping<'v>(
    value: &'v Value,
    path: &str,
    expected: &str,
    errors: &mut Vec<SpecError>,
) -> Option<BTreeMap<String, &'v Value>> {
    let Value::Mapping(map) = value else {
        errors.push(SpecError {
            location: field_at(path),
            value: Some(show(value)),
            problem: format!("must be a mapping with {expected}"),
        });
        return None;
    };
    let mut entries = BTreeMap::new();
    for (key, value) in map {
        match key {
            Value::String(key) => {
                entries.insert(key.clone(), value);
            }
            other => errors.push(SpecError {
                location: field_at(path),
                value: Some(show(other)),
                problem: "has a key that is not text".into(),
            }),
        }
    }
    Some(entries)
}

/// The text the label would hold for a YAML value of the given kind.
///
/// YAML types are enforced rather than coerced: `version: 7.10` is the
/// float 7.1 to YAML, so accepting numbers for text fields would silently
/// change what the user wrote. `null` reads as "not given" (`Ok(None)`);
/// `Err` means the problem was reported.
fn scalar_text(
    value: &Value,
    kind: FieldKind,
    at: impl Fn() -> Location,
    errors: &mut Vec<SpecError>,
) -> Result<Option<String>, ()> {
    let problem = match (kind, value) {
        (_, Value::Null) => return Ok(None),
        (FieldKind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            return Ok(Some(n.to_string()))
        }
        (FieldKind::Integer, Value::Number(_)) => "is not a whole number",
        (FieldKind::Integer, Value::String(_)) => "is text; write the number without quotes",
        (FieldKind::Integer, _) => "must be a whole number",
        (FieldKind::Boolean, Value::Bool(b)) => return Ok(Some(b.to_string())),
        (FieldKind::Boolean, Value::String(_)) => "is text; write true or false without quotes",
        (FieldKind::Boolean, _) => "must be true or false",
        (FieldKind::String, Value::String(s)) => return Ok(Some(s.clone())),
        (FieldKind::String, Value::Number(_) | Value::Bool(_)) => {
            "is not text to YAML; put it in quotes so it is kept exactly as written"
        }
        (FieldKind::String, _) => "must be text",
        (FieldKind::Map, _) => "must be a mapping of names to text",
    };
    errors.push(SpecError {
        location: at(),
        value: Some(show(value)),
        problem: problem.into(),
    });
    Err(())
}

/// An unknown field, with a suggestion when it looks like a typo. `label`
/// is set when the user wrote a label's suffix (`config-secret`) where the
/// camelCase name belongs.
fn unknown_field(key: &str, path: &str, known: &[&str], label_hint: Option<Field>) -> SpecError {
    let hint = match (label_hint, suggest(key, known.iter().copied())) {
        (Some(field), _) => format!(
            "; in YAML, {} is written {}",
            field.label(),
            field.yaml_name()
        ),
        (None, Some(near)) => format!("; did you mean {near}?"),
        (None, None) => format!("; the known fields are {}", known.join(", ")),
    };
    SpecError {
        location: field_at(path),
        value: None,
        problem: format!("is not a known field{hint}"),
    }
}

/// The field whose label a key spells, e.g. `config-secret` or the whole
/// `aerospike.cluster.config-secret`.
fn known_label_for(key: &str) -> Option<Field> {
    Field::ALL
        .into_iter()
        .find(|f| f.label() == key || &f.label()[super::CLUSTER_PREFIX.len()..] == key)
}

/// A YAML value as the user would recognise it in a message.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Phase, ReadyCount};

    const VALID: &str = "\
apiVersion: aerospike-swarm-operator/v1alpha1
kind: AerospikeCluster
metadata:
  name: aerospikedb
spec:
  replicas: 3
  version: 7.1.0.0
  configSecret: aerospike.conf
  paused: false
  heartbeatPort: 3002
";

    fn errors_of(text: &str) -> Vec<String> {
        ClusterDocument::from_yaml(text, None)
            .unwrap_err()
            .errors()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn reads_a_valid_document() {
        let document = ClusterDocument::from_yaml(VALID, None).unwrap();
        assert_eq!(document.metadata.name, "aerospikedb");
        assert_eq!(document.spec.replicas, 3);
        assert_eq!(document.spec.version, "7.1.0.0");
        assert_eq!(
            document.spec.config_secret.as_deref(),
            Some("aerospike.conf")
        );
        assert_eq!(document.spec.paused, Some(false));
        assert_eq!(document.spec.image, None);
        assert_eq!(document.status, None);
    }

    #[test]
    fn yaml_round_trip() {
        let mut document = ClusterDocument::from_yaml(VALID, None).unwrap();
        document.status = Some(ClusterStatus {
            phase: Some(Phase::Ready),
            ready: Some(ReadyCount {
                ready: 3,
                desired: 3,
            }),
            message: Some("all nodes in one cluster".into()),
            observed_version: Some(42),
            cluster_key: Some("ABCDEF012345".into()),
            migrations_remaining: None,
            rollout: Some(ReadyCount {
                ready: 1,
                desired: 3,
            }),
            rollout_step: Some(2),
            image: Some("aerospike/aerospike-server:7.1.0.0".into()),
            config_secret: None,
            config_object: None,
            config: None,
            config_live: None,
            failed_rollout: None,
        });
        let text = document.to_yaml();
        assert!(text.contains("ready: 3/3"), "{text}");
        assert_eq!(ClusterDocument::from_yaml(&text, None), Ok(document));
    }

    #[test]
    fn storage_reads_round_trips_and_becomes_labels() {
        let text = format!(
            "{VALID}  storage:\n    volume: aerospike-data\n    driver: local\n    driverOptions:\n      type: tmpfs\n      device: tmpfs\n"
        );
        let document = ClusterDocument::from_yaml(&text, None).unwrap();
        let storage = document.spec.storage.clone().unwrap();
        assert_eq!(storage.volume, "aerospike-data");
        assert_eq!(storage.path(), "/opt/aerospike/data");
        assert_eq!(storage.driver.as_deref(), Some("local"));
        let labels = document.to_labels();
        assert_eq!(
            labels["aerospike.cluster.storage.driver-options"],
            "device=tmpfs,type=tmpfs"
        );
        assert_eq!(labels["aerospike.cluster.storage.volume"], "aerospike-data");
        assert!(!labels.contains_key("aerospike.cluster.storage.path"));
        assert_eq!(
            ClusterDocument::from_yaml(&document.to_yaml(), None),
            Ok(document)
        );
        // An empty mapping is no storage at all.
        let document = ClusterDocument::from_yaml(&format!("{VALID}  storage: ~\n"), None).unwrap();
        assert_eq!(document.spec.storage, None);
    }

    #[test]
    fn storage_errors_name_the_nested_field_and_its_label() {
        let with = |storage: &str| errors_of(&format!("{VALID}  storage:\n{storage}"));
        assert_eq!(
            with("    path: /data\n"),
            [
                r#"spec.storage.path (label aerospike.cluster.storage.path): "/data" is set but aerospike.cluster.storage.volume is not: name the volume to give the cluster storage, or leave this out"#
            ]
        );
        assert_eq!(
            with("    volume: db\n    volumes: x\n"),
            ["spec.storage.volumes: is not a known field; did you mean volume?"]
        );
        assert_eq!(
            with("    volume: db\n    driverOptions:\n      o: a,b\n      size: 1\n"),
            [
                r#"spec.storage.driverOptions.o (label aerospike.cluster.storage.driver-options): "a,b" contains a comma, which a driver option's value cannot hold (the label separates options with commas)"#,
                r#"spec.storage.driverOptions.size (label aerospike.cluster.storage.driver-options): "1" is not text to YAML; put it in quotes so it is kept exactly as written"#,
            ]
        );
        assert_eq!(
            with("    volume: 12\n"),
            [
                r#"spec.storage.volume (label aerospike.cluster.storage.volume): "12" is not text to YAML; put it in quotes so it is kept exactly as written"#
            ]
        );
        assert_eq!(
            errors_of(&format!("{VALID}  storage: data\n")),
            [
                r#"spec.storage: "data" must be a mapping with volume and, optionally, path, driver and driverOptions"#
            ]
        );
        // The dotted name is not a field of spec itself.
        let shown = errors_of(&format!("{VALID}  storage.volume: db\n"));
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].starts_with("spec.storage.volume: is not a known field"),
            "{shown:?}"
        );
        // An unknown spec field suggests storage, not its dotted fields.
        assert_eq!(
            errors_of(&format!("{VALID}  storag: {{}}\n")),
            ["spec.storag: is not a known field; did you mean storage?"]
        );
    }

    #[test]
    fn errors_name_the_field_and_its_label() {
        let shown = errors_of(&VALID.replace("replicas: 3", "replicas: abc"));
        assert_eq!(
            shown,
            [
                r#"spec.replicas (label aerospike.cluster.replicas): "abc" is text; write the number without quotes"#
            ]
        );
        let shown = errors_of(&VALID.replace("replicas: 3", "replicas: 0"));
        assert_eq!(
            shown,
            [r#"spec.replicas (label aerospike.cluster.replicas): "0" must be at least 1"#]
        );
        let shown = errors_of(&VALID.replace("replicas: 3", "replicas: 2.5"));
        assert_eq!(
            shown,
            [r#"spec.replicas (label aerospike.cluster.replicas): "2.5" is not a whole number"#]
        );
        let shown = errors_of(&VALID.replace("version: 7.1.0.0", "version: 7.1"));
        assert!(
            shown[0].starts_with(
                r#"spec.version (label aerospike.cluster.version): "7.1" is not text to YAML"#
            ),
            "{shown:?}"
        );
        let shown = errors_of(&VALID.replace("paused: false", "paused: \"no\""));
        assert!(
            shown[0].contains("write true or false without quotes"),
            "{shown:?}"
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let shown = errors_of(
            &VALID
                .replace("heartbeatPort", "heartbeatport")
                .replace("paused", "config-target"),
        );
        assert!(
            shown.contains(
                &"spec.heartbeatport: is not a known field; did you mean heartbeatPort?"
                    .to_string()
            ),
            "{shown:?}"
        );
        assert!(
            shown.contains(&"spec.config-target: is not a known field; in YAML, aerospike.cluster.config-target is written configTarget".to_string()),
            "{shown:?}"
        );
        let shown = errors_of(&format!("{VALID}specs: {{}}\n"));
        assert_eq!(shown, ["specs: is not a known field; did you mean spec?"]);
        let shown =
            errors_of(&VALID.replace("  name: aerospikedb", "  name: aerospikedb\n  namespace: x"));
        assert_eq!(
            shown,
            ["metadata.namespace: is not a known field; the known fields are name, labels"]
        );
        let shown = errors_of(&format!("{VALID}status:\n  phase: Ready\n  readyy: 3/3\n"));
        assert_eq!(
            shown,
            ["status.readyy: is not a known field; did you mean ready?"]
        );
    }

    #[test]
    fn envelope_errors_are_all_reported() {
        let shown =
            errors_of("apiVersion: v1\nmetadata:\n  name: my.service\nspec:\n  version: \"7\"\n");
        assert_eq!(
            shown,
            [
                r#"apiVersion: "v1" must be aerospike-swarm-operator/v1alpha1"#,
                "kind: is required: write kind: AerospikeCluster",
                r#"metadata.name: "my.service" is not a valid service name: '.' is not allowed"#,
                "spec.replicas (label aerospike.cluster.replicas): is required: it gives the number of Aerospike nodes (1 to 256), and only a service that has it is managed",
            ]
        );
        assert!(errors_of("- a\n- b\n")[0].starts_with("(document): "));
        assert!(errors_of("spec: [")[0].starts_with("(document): is not valid YAML"));
        assert!(errors_of("")[0].starts_with("(document): "));
    }

    #[test]
    fn bad_status_in_a_document_is_an_error() {
        let shown = errors_of(&format!(
            "{VALID}status:\n  phase: Running\n  observedVersion: x\n"
        ));
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with(
                r#"status.observedVersion (label aerospike.status.observed-version): "x" is text"#
            ),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with(
                r#"status.phase (label aerospike.status.phase): "Running" is not a phase"#
            ),
            "{shown:?}"
        );
    }

    #[test]
    fn null_means_not_given() {
        let document =
            ClusterDocument::from_yaml(&format!("{VALID}  image: ~\nstatus:\n"), None).unwrap();
        assert_eq!(document.spec.image, None);
        assert_eq!(document.status, None);
    }

    #[test]
    fn labels_to_document_and_back() {
        let labels: BTreeMap<String, String> = [
            ("aerospike.cluster.replicas", "3"),
            ("aerospike.cluster.version", "7.1.0.0"),
            ("aerospike.status.phase", "Meshing"),
            ("aerospike.status.ready", "2/3"),
            ("com.docker.stack.namespace", "aerospike"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let document = ClusterDocument::from_service("aerospike_aerospikedb", &labels, None)
            .unwrap()
            .unwrap();
        assert_eq!(document.metadata.name, "aerospike_aerospikedb");
        // The service's other labels are not read back as metadata.labels.
        assert_eq!(document.metadata.labels, BTreeMap::new());
        assert_eq!(
            document.status.as_ref().and_then(|s| s.phase),
            Some(Phase::Meshing)
        );
        let spec_labels: BTreeMap<String, String> = labels
            .iter()
            .filter(|(k, _)| k.starts_with(crate::spec::CLUSTER_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(document.to_labels(), spec_labels);
        assert_eq!(
            ClusterDocument::from_service("x", &BTreeMap::new(), None),
            Ok(None)
        );
    }

    fn with_labels(labels: &str) -> String {
        VALID.replace(
            "  name: aerospikedb\n",
            &format!("  name: aerospikedb\n  labels:\n{labels}"),
        )
    }

    #[test]
    fn metadata_labels_are_read_and_go_on_the_service() {
        let text = with_labels("    team: a\n    com.example/owner: \"db\"\n    empty: \"\"\n");
        let document = ClusterDocument::from_yaml(&text, None).unwrap();
        let mine: BTreeMap<String, String> =
            [("com.example/owner", "db"), ("empty", ""), ("team", "a")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(document.metadata.labels, mine);
        // The service gets them besides the spec labels.
        let mut expected = document.spec.to_labels();
        expected.extend(mine);
        assert_eq!(document.to_labels(), expected);
        // They survive the round trip through YAML.
        let yaml = document.to_yaml();
        assert!(yaml.contains("  labels:\n"), "{yaml}");
        assert_eq!(ClusterDocument::from_yaml(&yaml, None), Ok(document));

        // Absent, null and empty all mean none; none are written back.
        for text in [
            VALID.to_string(),
            with_labels("    {}\n"),
            VALID.replace(
                "  name: aerospikedb\n",
                "  name: aerospikedb\n  labels: ~\n",
            ),
        ] {
            let document = ClusterDocument::from_yaml(&text, None).unwrap();
            assert_eq!(document.metadata.labels, BTreeMap::new(), "{text}");
            assert_eq!(document.to_labels(), document.spec.to_labels());
            assert!(!document.to_yaml().contains("labels"));
        }
    }

    #[test]
    fn metadata_label_values_must_be_text() {
        let shown = errors_of(&with_labels(
            "    team: 1\n    canary: true\n    ratio: 0.5\n    nested: {a: b}\n    list: [a]\n    unset:\n",
        ));
        assert_eq!(
            shown,
            [
                r#"metadata.labels.canary: "true" is not text to YAML; put it in quotes so it is kept exactly as written"#,
                r#"metadata.labels.list: "- a" must be text"#,
                r#"metadata.labels.nested: "a: b" must be text"#,
                r#"metadata.labels.ratio: "0.5" is not text to YAML; put it in quotes so it is kept exactly as written"#,
                r#"metadata.labels.team: "1" is not text to YAML; put it in quotes so it is kept exactly as written"#,
                r#"metadata.labels.unset: has no value; a label's value is text: write unset: "" for an empty one"#,
            ]
        );
        let shown = errors_of(&VALID.replace(
            "  name: aerospikedb\n",
            "  name: aerospikedb\n  labels: [team=a]\n",
        ));
        assert_eq!(
            shown,
            [
                r#"metadata.labels: "- team=a" must be a mapping with label names and their values, e.g. team: a"#
            ]
        );
        let shown = errors_of(&with_labels("    1: a\n"));
        assert_eq!(
            shown,
            [r#"metadata.labels: "1" has a key that is not text"#]
        );
    }

    #[test]
    fn metadata_label_names_are_users_own() {
        let shown = errors_of(&with_labels(
            "    \"\": x\n    \"te am\": x\n    aerospike.cluster.replicas: \"3\"\n    \
             aerospike.cluster.owner: x\n    aerospike.status.phase: Ready\n    \
             aerospike.team: x\n    aerospike-cluster.version: x\n    team: a\n",
        ));
        assert_eq!(
            shown,
            [
                r#"metadata.labels."": is not a valid label name: it is empty"#,
                "metadata.labels.aerospike-cluster.version: looks like a misspelling of the spec \
                 label aerospike.cluster.version, which the operator would reject on the \
                 service; write it as spec.version, or pick another name",
                "metadata.labels.aerospike.cluster.owner: is reserved: the aerospike.cluster.* \
                 labels are the spec, written under spec",
                "metadata.labels.aerospike.cluster.replicas: is reserved: \
                 aerospike.cluster.replicas is a spec label; write it as spec.replicas",
                "metadata.labels.aerospike.status.phase: is reserved: the aerospike.status.* \
                 labels are the status, written by the operator only",
                "metadata.labels.aerospike.team: is reserved: labels starting with aerospike. \
                 are the operator's own",
                r#"metadata.labels.te am: is not a valid label name: "te am" contains whitespace"#,
            ]
        );
        // A newline in a name is shown escaped, on one line.
        let shown = errors_of(&with_labels("    \"te\\nam\": x\n"));
        assert_eq!(
            shown,
            [
                r#""metadata.labels.te\nam": is not a valid label name: "te\nam" contains whitespace"#
            ]
        );
    }

    #[test]
    fn metadata_label_errors_come_with_every_other_error() {
        let text = with_labels("    team: 1\n    aerospike.status.phase: Ready\n    \"a b\": c\n")
            .replace("name: aerospikedb", "name: my.service")
            .replace("replicas: 3", "replicas: 0");
        let shown = errors_of(&text);
        assert_eq!(
            shown,
            [
                r#"metadata.name: "my.service" is not a valid service name: '.' is not allowed"#,
                r#"metadata.labels.a b: is not a valid label name: "a b" contains whitespace"#,
                "metadata.labels.aerospike.status.phase: is reserved: the aerospike.status.* \
                 labels are the status, written by the operator only",
                r#"metadata.labels.team: "1" is not text to YAML; put it in quotes so it is kept exactly as written"#,
                r#"spec.replicas (label aerospike.cluster.replicas): "0" must be at least 1"#,
            ]
        );
        // A bad name and a bad value of one label are both reported.
        let shown = errors_of(&with_labels("    aerospike.team: 1\n"));
        assert_eq!(shown.len(), 2, "{shown:?}");
    }
}
