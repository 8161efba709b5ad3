//! What the operator reports back: labels under `aerospike.status.`.
//!
//! The operator owns this prefix. It writes the labels on the cluster's
//! service so that `docker service inspect` shows them next to the spec.
//! Updating service-level labels bumps the service version but restarts no
//! task, so writing status is safe; still, every write is a service update
//! that wakes every watcher, so the controller writes only when
//! [`ClusterStatus::would_change`] says the labels differ.
//!
//! Reading is tolerant: a status label someone mangled by hand reads as
//! absent (the operator will overwrite it), and never makes the spec fail.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Serialize, Serializer};

use super::FieldKind;

/// Prefix of every status label.
pub const STATUS_PREFIX: &str = "aerospike.status.";

/// The most bytes a status label's value holds, whatever it was built from
/// (a node's error text, a console line, a label of the user's): longer
/// values are cut, see [`label_value`]. Every value the operator writes
/// goes through [`ClusterStatus::to_labels`], which applies it.
pub const STATUS_VALUE_MAX: usize = 1024;

/// What ends a value [`label_value`] had to cut.
pub const CUT_MARK: char = '…';

/// `value` as a status label carries it: every control character (a
/// newline, a tab, an escape sequence's ESC, ...) replaced by a space, so
/// that a value prints on one line and cannot drive a terminal; and when
/// longer than [`STATUS_VALUE_MAX`] bytes, cut on a character boundary and
/// ended with [`CUT_MARK`], [`STATUS_VALUE_MAX`] bytes in all. A value
/// that needs neither is returned as is.
pub fn label_value(value: &str) -> Cow<'_, str> {
    if value.len() <= STATUS_VALUE_MAX && !value.chars().any(char::is_control) {
        return Cow::Borrowed(value);
    }
    let clean: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() <= STATUS_VALUE_MAX {
        return Cow::Owned(clean);
    }
    let room = STATUS_VALUE_MAX - CUT_MARK.len_utf8();
    let mut end = room;
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = clean[..end].to_string();
    cut.push(CUT_MARK);
    Cow::Owned(cut)
}

/// The swarm config holding the live status of the cluster `service`:
/// `<service>.status`. The operator writes its labels (the same
/// `aerospike.status.*` keys) on every pass that changes the status, also
/// while a node of a rollout is changing — when a write to the service
/// would let swarm replace the next node — and the service's own labels at
/// each safe point. `status` and `apply --wait` read the config first.
pub fn status_config_name(service: &str) -> String {
    format!("{service}.status")
}

/// The label of a status config that names its service.
pub const STATUS_OF: &str = "aerospike-swarm-operator.status-of";

/// Replaces the `aerospike.status.*` labels of `labels` with those of
/// `live` (a status config's labels), when `live` carries any; whether it
/// did.
pub fn overlay_live_status(
    labels: &mut std::collections::BTreeMap<String, String>,
    live: &std::collections::BTreeMap<String, String>,
) -> bool {
    if !live.keys().any(|k| k.starts_with(STATUS_PREFIX)) {
        return false;
    }
    labels.retain(|k, _| !k.starts_with(STATUS_PREFIX));
    labels.extend(
        live.iter()
            .filter(|(k, _)| k.starts_with(STATUS_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    true
}
/// Where the cluster is in its life, see [`Phase`].
pub const PHASE: &str = "aerospike.status.phase";
/// Nodes ready out of desired, as `3/4`.
pub const READY: &str = "aerospike.status.ready";
/// A sentence for humans about the current phase.
pub const MESSAGE: &str = "aerospike.status.message";
/// The service `Version.Index` whose spec the operator last acted on.
pub const OBSERVED_VERSION: &str = "aerospike.status.observed-version";
/// The Aerospike cluster key (hex) the nodes agreed on.
pub const CLUSTER_KEY: &str = "aerospike.status.cluster-key";
/// Partitions still to migrate, summed over the nodes, while migrating.
pub const MIGRATIONS_REMAINING: &str = "aerospike.status.migrations-remaining";
/// During a rollout: nodes on the new task template out of all, as `1/3`.
pub const ROLLOUT: &str = "aerospike.status.rollout";
/// How many times the operator let swarm replace the next node of the
/// current rollout; every release write changes it (see
/// `controller::rollout`).
pub const ROLLOUT_STEP: &str = "aerospike.status.rollout-step";
/// The image every node ran when the cluster last converged: what a failed
/// rollout goes back to.
pub const IMAGE: &str = "aerospike.status.image";
/// The config secret every node mounted when the cluster last converged.
pub const CONFIG_SECRET: &str = "aerospike.status.config-secret";
/// The config object every node mounted when the cluster last converged.
pub const CONFIG_OBJECT: &str = "aerospike.status.config-object";
/// What the last config change did: `applied live (proto-fd-max)` or
/// `rolling restart (storage-engine changed)`.
pub const CONFIG: &str = "aerospike.status.config";
/// The config object whose dynamic parameters every node runs live (set
/// with `set-config`) while the task template still mounts another; the
/// next rolling restart mounts it.
pub const CONFIG_LIVE: &str = "aerospike.status.config-live";
/// A rollout target that failed and was rolled back (`IMAGE` or
/// `IMAGE config-secret=NAME`); not tried again while the spec asks for it.
pub const FAILED_ROLLOUT: &str = "aerospike.status.failed-rollout";

/// Where a cluster is in its life, as the operator last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Phase {
    /// Seen, not yet acted on.
    Pending,
    /// Changing the number of nodes.
    Scaling,
    /// Introducing nodes to each other (mesh tips) until they form one cluster.
    Meshing,
    /// One cluster, but not yet settled: partitions are migrating, or a
    /// node's `cluster-stable` does not answer yet. Not safe to disturb.
    Migrating,
    /// Rolling nodes to a new version, one at a time.
    Upgrading,
    /// All desired nodes up and in one stable cluster: on every node one
    /// cluster key, the expected size, integrity, migrations allowed and
    /// none remaining, and `cluster-stable` answering that key.
    Ready,
    /// Running, but with fewer nodes or less integrity than desired:
    /// too few eligible nodes, migrations stalled, a node publishing
    /// addresses off the cluster network, or a node the operator does not
    /// trust (it answers garbage, answers too slowly, or reports another
    /// node's id; the message names it).
    Degraded,
    /// `aerospike.cluster.paused=true`: the operator changes nothing.
    Paused,
    /// The operator cannot make progress; see the message.
    Error,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 9] = [
        Phase::Pending,
        Phase::Scaling,
        Phase::Meshing,
        Phase::Migrating,
        Phase::Upgrading,
        Phase::Ready,
        Phase::Degraded,
        Phase::Paused,
        Phase::Error,
    ];

    /// The label spelling, e.g. `Ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Scaling => "Scaling",
            Phase::Meshing => "Meshing",
            Phase::Migrating => "Migrating",
            Phase::Upgrading => "Upgrading",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::Paused => "Paused",
            Phase::Error => "Error",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Phase, String> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
                format!("is not a phase (one of {})", names.join(", "))
            })
    }
}

/// Ready nodes out of desired nodes, written `ready/desired` (`3/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyCount {
    /// Nodes that are up and members of the cluster.
    pub ready: u32,
    /// Nodes the spec asks for.
    pub desired: u32,
}

impl fmt::Display for ReadyCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ready, self.desired)
    }
}

impl FromStr for ReadyCount {
    type Err = String;
    fn from_str(s: &str) -> Result<ReadyCount, String> {
        let digits = |part: &str| -> Option<u32> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        s.split_once('/')
            .and_then(|(ready, desired)| {
                Some(ReadyCount {
                    ready: digits(ready)?,
                    desired: digits(desired)?,
                })
            })
            .ok_or_else(|| "is not a ready count such as 3/4".to_string())
    }
}

impl Serialize for ReadyCount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for ReadyCount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ReadyCount".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Ready nodes out of desired nodes, e.g. `3/4`.",
            "type": "string",
            "pattern": "^[0-9]+/[0-9]+$"
        })
    }
}

/// The status of a cluster. Every field is optional: a cluster the
/// operator has not reached yet has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterStatus {
    /// Where the cluster is in its life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Ready nodes out of desired, e.g. `3/4`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<ReadyCount>,
    /// A sentence for humans about the current phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The service `Version.Index` whose spec the operator last acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_version: Option<u64>,
    /// The cluster key (hex) the Aerospike nodes agreed on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9A-Fa-f]+$"))]
    pub cluster_key: Option<String>,
    /// Partitions still to migrate, summed over the nodes (while the
    /// cluster migrates; updated on coarse progress, not on every change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations_remaining: Option<u64>,
    /// During a rollout: nodes on the new task template out of all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<ReadyCount>,
    /// During a rollout: how many times the operator let swarm replace the
    /// next node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_step: Option<u64>,
    /// The image every node ran when the cluster last converged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The config secret every node mounted when the cluster last converged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_secret: Option<String>,
    /// The config object every node mounted when the cluster last
    /// converged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_object: Option<String>,
    /// What the last config change of a config object did: `applied live
    /// (proto-fd-max)`, `rolling restart (storage-engine changed)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// The config object whose dynamic parameters every node runs live
    /// while the template still mounts another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_live: Option<String>,
    /// A rollout target that failed and was rolled back; not tried again
    /// while the spec asks for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_rollout: Option<String>,
}

/// One status field, by label and by YAML name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusField {
    Phase,
    Ready,
    Message,
    ObservedVersion,
    ClusterKey,
    MigrationsRemaining,
    Rollout,
    RolloutStep,
    Image,
    ConfigSecret,
    ConfigObject,
    Config,
    ConfigLive,
    FailedRollout,
}

impl StatusField {
    /// Every status field.
    pub const ALL: [StatusField; 14] = [
        StatusField::Phase,
        StatusField::Ready,
        StatusField::Message,
        StatusField::ObservedVersion,
        StatusField::ClusterKey,
        StatusField::MigrationsRemaining,
        StatusField::Rollout,
        StatusField::RolloutStep,
        StatusField::Image,
        StatusField::ConfigSecret,
        StatusField::ConfigObject,
        StatusField::Config,
        StatusField::ConfigLive,
        StatusField::FailedRollout,
    ];

    /// The full label key.
    pub fn label(self) -> &'static str {
        match self {
            StatusField::Phase => PHASE,
            StatusField::Ready => READY,
            StatusField::Message => MESSAGE,
            StatusField::ObservedVersion => OBSERVED_VERSION,
            StatusField::ClusterKey => CLUSTER_KEY,
            StatusField::MigrationsRemaining => MIGRATIONS_REMAINING,
            StatusField::Rollout => ROLLOUT,
            StatusField::RolloutStep => ROLLOUT_STEP,
            StatusField::Image => IMAGE,
            StatusField::ConfigSecret => CONFIG_SECRET,
            StatusField::ConfigObject => CONFIG_OBJECT,
            StatusField::Config => CONFIG,
            StatusField::ConfigLive => CONFIG_LIVE,
            StatusField::FailedRollout => FAILED_ROLLOUT,
        }
    }

    /// The camelCase name under `status:` in the YAML document.
    pub fn yaml_name(self) -> &'static str {
        match self {
            StatusField::Phase => "phase",
            StatusField::Ready => "ready",
            StatusField::Message => "message",
            StatusField::ObservedVersion => "observedVersion",
            StatusField::ClusterKey => "clusterKey",
            StatusField::MigrationsRemaining => "migrationsRemaining",
            StatusField::Rollout => "rollout",
            StatusField::RolloutStep => "rolloutStep",
            StatusField::Image => "image",
            StatusField::ConfigSecret => "configSecret",
            StatusField::ConfigObject => "configObject",
            StatusField::Config => "config",
            StatusField::ConfigLive => "configLive",
            StatusField::FailedRollout => "failedRollout",
        }
    }

    /// The type its YAML value must have.
    pub fn kind(self) -> FieldKind {
        match self {
            StatusField::ObservedVersion
            | StatusField::MigrationsRemaining
            | StatusField::RolloutStep => FieldKind::Integer,
            _ => FieldKind::String,
        }
    }
}

impl ClusterStatus {
    /// Reads the status labels, ignoring any that do not parse.
    pub fn from_labels<'a, I>(labels: I) -> ClusterStatus
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        let mut status = ClusterStatus::default();
        for (key, value) in labels {
            if let Some(field) = StatusField::ALL.into_iter().find(|f| f.label() == key) {
                // A bad value reads as absent; the operator rewrites it.
                let _ = status.set(field, value);
            }
        }
        status
    }

    /// Sets one field from its text form; `Err` says what is wrong with it.
    pub fn set(&mut self, field: StatusField, value: &str) -> Result<(), String> {
        match field {
            StatusField::Phase => self.phase = Some(value.parse()?),
            StatusField::Ready => self.ready = Some(value.parse()?),
            StatusField::Message => self.message = Some(value.to_string()),
            StatusField::ObservedVersion => {
                self.observed_version = Some(whole_number(value, "a service version index")?);
            }
            StatusField::MigrationsRemaining => {
                self.migrations_remaining = Some(whole_number(value, "a partition count")?);
            }
            StatusField::Rollout => self.rollout = Some(value.parse()?),
            StatusField::RolloutStep => {
                self.rollout_step = Some(whole_number(value, "a step count")?);
            }
            StatusField::Image => self.image = Some(value.to_string()),
            StatusField::ConfigSecret => self.config_secret = Some(value.to_string()),
            StatusField::ConfigObject => self.config_object = Some(value.to_string()),
            StatusField::Config => self.config = Some(value.to_string()),
            StatusField::ConfigLive => self.config_live = Some(value.to_string()),
            StatusField::FailedRollout => self.failed_rollout = Some(value.to_string()),
            StatusField::ClusterKey => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err("is not a cluster key (hexadecimal digits)".into());
                }
                self.cluster_key = Some(value.to_string());
            }
        }
        Ok(())
    }

    /// The status as labels: one per field that is set, each value as
    /// [`label_value`] makes it (at most [`STATUS_VALUE_MAX`] bytes, no
    /// control characters).
    pub fn to_labels(&self) -> BTreeMap<String, String> {
        let fields = [
            (PHASE, self.phase.map(|p| p.to_string())),
            (READY, self.ready.map(|r| r.to_string())),
            (MESSAGE, self.message.clone()),
            (
                OBSERVED_VERSION,
                self.observed_version.map(|v| v.to_string()),
            ),
            (CLUSTER_KEY, self.cluster_key.clone()),
            (
                MIGRATIONS_REMAINING,
                self.migrations_remaining.map(|n| n.to_string()),
            ),
            (ROLLOUT, self.rollout.map(|r| r.to_string())),
            (ROLLOUT_STEP, self.rollout_step.map(|n| n.to_string())),
            (IMAGE, self.image.clone()),
            (CONFIG_SECRET, self.config_secret.clone()),
            (CONFIG_OBJECT, self.config_object.clone()),
            (CONFIG, self.config.clone()),
            (CONFIG_LIVE, self.config_live.clone()),
            (FAILED_ROLLOUT, self.failed_rollout.clone()),
        ];
        fields
            .into_iter()
            .filter_map(|(key, value)| {
                let value = value?;
                let value = match label_value(&value) {
                    Cow::Borrowed(_) => value,
                    Cow::Owned(clean) => clean,
                };
                Some((key.to_string(), value))
            })
            .collect()
    }

    /// Whether writing this status onto `labels` would change them: some
    /// status label differs, is missing, or is there but no longer set.
    pub fn would_change(&self, labels: &HashMap<String, String>) -> bool {
        let current: BTreeMap<&str, &str> = labels
            .iter()
            .filter(|(key, _)| key.starts_with(STATUS_PREFIX))
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        let wanted = self.to_labels();
        let wanted: BTreeMap<&str, &str> = wanted
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        current != wanted
    }

    /// Writes this status onto `labels`, replacing every `aerospike.status.*`
    /// label and leaving all others alone. Returns whether anything changed.
    pub fn apply_to(&self, labels: &mut HashMap<String, String>) -> bool {
        if !self.would_change(labels) {
            return false;
        }
        labels.retain(|key, _| !key.starts_with(STATUS_PREFIX));
        labels.extend(self.to_labels());
        true
    }
}

/// A status value that must be a whole number, such as `1234`.
fn whole_number(value: &str, what: &str) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("is not {what} (a whole number)"));
    }
    value
        .parse()
        .map_err(|_| format!("is too large for {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn full() -> ClusterStatus {
        ClusterStatus {
            phase: Some(Phase::Scaling),
            ready: Some(ReadyCount {
                ready: 3,
                desired: 4,
            }),
            message: Some("adding node 4".into()),
            observed_version: Some(1234),
            cluster_key: Some("A1B2C3D4E5F6".into()),
            migrations_remaining: Some(1383),
            rollout: Some(ReadyCount {
                ready: 1,
                desired: 4,
            }),
            rollout_step: Some(2),
            image: Some("aerospike/aerospike-server:7.1.0.0".into()),
            config_secret: Some("aerospike-v2.conf".into()),
            config_object: Some("aerospike-v3.conf".into()),
            config: Some("applied live (proto-fd-max)".into()),
            config_live: Some("aerospike-v3.conf".into()),
            failed_rollout: Some("aerospike/aerospike-server:7.2.0.0".into()),
        }
    }

    #[test]
    fn labels_round_trip() {
        let status = full();
        let labels = status.to_labels();
        assert_eq!(labels.get(READY).map(String::as_str), Some("3/4"));
        assert_eq!(labels.get(PHASE).map(String::as_str), Some("Scaling"));
        assert_eq!(
            labels.get(OBSERVED_VERSION).map(String::as_str),
            Some("1234")
        );
        assert_eq!(ClusterStatus::from_labels(&labels), status);
        assert_eq!(ClusterStatus::default().to_labels(), BTreeMap::new());
        for phase in Phase::ALL {
            assert_eq!(phase.as_str().parse(), Ok(phase));
        }
    }

    #[test]
    fn bad_status_labels_read_as_absent() {
        let labels = map(&[
            (PHASE, "Running"),
            (READY, "3 of 4"),
            (MESSAGE, "hello"),
            (OBSERVED_VERSION, "-1"),
            (CLUSTER_KEY, "not hex"),
            (MIGRATIONS_REMAINING, "lots"),
        ]);
        let status = ClusterStatus::from_labels(&labels);
        assert_eq!(
            status,
            ClusterStatus {
                message: Some("hello".into()),
                ..Default::default()
            }
        );
        for bad in ["3", "/4", "3/", "3/4/5", "-1/4", "+3/4", "99999999999/1"] {
            assert!(bad.parse::<ReadyCount>().is_err(), "{bad}");
        }
        assert!("ready"
            .parse::<Phase>()
            .unwrap_err()
            .contains("Pending, Scaling"));
    }

    #[test]
    fn writes_only_on_change() {
        let status = full();
        let mut labels = map(&[
            ("aerospike.cluster.replicas", "4"),
            (PHASE, "Pending"),
            ("aerospike.status.stale", "x"),
        ]);
        assert!(status.would_change(&labels));
        assert!(status.apply_to(&mut labels));
        assert_eq!(
            labels.get("aerospike.cluster.replicas").map(String::as_str),
            Some("4")
        );
        assert!(!labels.contains_key("aerospike.status.stale"));
        assert_eq!(ClusterStatus::from_labels(&labels), status);
        assert!(!status.would_change(&labels));
        assert!(!status.apply_to(&mut labels));

        // Clearing a field is a change too.
        let cleared = ClusterStatus {
            message: None,
            ..full()
        };
        assert!(cleared.would_change(&labels));
        assert!(cleared.apply_to(&mut labels));
        assert!(!labels.contains_key(MESSAGE));
    }

    #[test]
    fn long_or_unprintable_values_are_cut_and_cleaned() {
        // The control: this message, written raw, would break both rules.
        let hostile = format!("node said \u{1b}[2J{}\nend", "é".repeat(3000));
        assert!(hostile.len() > STATUS_VALUE_MAX && hostile.contains('\n'));
        let status = ClusterStatus {
            message: Some(hostile.clone()),
            image: Some("img:1\ttab".into()),
            ..full()
        };
        let labels = status.to_labels();
        let message = &labels[MESSAGE];
        assert!(message.len() <= STATUS_VALUE_MAX, "{}", message.len());
        assert!(message.ends_with(CUT_MARK), "{message}");
        assert!(message.starts_with("node said  [2Jé"), "{message}");
        assert!(!message.chars().any(char::is_control));
        assert_eq!(labels[IMAGE], "img:1 tab");
        // Ordinary values are untouched, and a written status reads back
        // and is not written again.
        assert_eq!(labels[CONFIG_SECRET], "aerospike-v2.conf");
        let mut service = HashMap::new();
        assert!(status.apply_to(&mut service));
        assert!(!status.would_change(&service));
        let read = ClusterStatus::from_labels(&service);
        assert!(!read.would_change(&service));
        // Exactly at the bound: kept whole.
        let at_bound = "x".repeat(STATUS_VALUE_MAX);
        assert_eq!(label_value(&at_bound), at_bound.as_str());
        let over = "x".repeat(STATUS_VALUE_MAX + 1);
        assert_eq!(label_value(&over).len(), STATUS_VALUE_MAX);
    }

    use proptest::prelude::*;

    /// Text of any length up to 3 KB, from any character, with control
    /// characters and multi-byte ones made common.
    fn text() -> impl Strategy<Value = String> {
        let ch = prop_oneof![
            4 => any::<char>(),
            1 => prop::sample::select(vec!['\n', '\t', '\r', '\u{0}', '\u{1b}', '\u{7f}', '\u{85}']),
            1 => prop::sample::select(vec!['é', '€', '😀', '\u{200b}', '\u{fffd}']),
        ];
        prop::collection::vec(ch, 0..1500).prop_map(String::from_iter)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever a node or a user put in a status field, every label
        /// written is within the bound, has no control character, keeps
        /// an ordinary value whole, is a clean prefix of a long one, and
        /// reads back to itself (no rewrite loop).
        #[test]
        fn every_status_label_is_within_its_bound(
            message in text(),
            image in text(),
            secret in text(),
            failed in text(),
            // As the reply parser lets through: 1 to 16 hex digits.
            key in "[0-9A-F]{1,16}",
        ) {
            let status = ClusterStatus {
                message: Some(message.clone()),
                image: Some(image),
                config_secret: Some(secret),
                failed_rollout: Some(failed),
                cluster_key: Some(key),
                ..full()
            };
            let labels = status.to_labels();
            prop_assert_eq!(labels.len(), StatusField::ALL.len());
            for (k, v) in &labels {
                prop_assert!(k.starts_with(STATUS_PREFIX));
                prop_assert!(v.len() <= STATUS_VALUE_MAX, "{} is {} bytes", k, v.len());
                prop_assert!(!v.chars().any(char::is_control), "{}: {:?}", k, v);
                prop_assert_eq!(label_value(v), v.as_str());
            }
            let cleaned: String = message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let written = &labels[MESSAGE];
            if cleaned.len() <= STATUS_VALUE_MAX {
                prop_assert_eq!(written, &cleaned);
            } else {
                let kept = written.strip_suffix(CUT_MARK).expect("a cut value ends with the mark");
                prop_assert!(cleaned.starts_with(kept));
                prop_assert!(kept.len() + 4 > STATUS_VALUE_MAX - CUT_MARK.len_utf8());
            }
            let map: HashMap<String, String> = labels.into_iter().collect();
            prop_assert!(!status.would_change(&map));
            prop_assert!(!ClusterStatus::from_labels(&map).would_change(&map));
        }
    }

    #[test]
    fn serialises_ready_as_text() {
        let json = serde_json::to_value(full()).unwrap();
        assert_eq!(json["ready"], "3/4");
        assert_eq!(json["observedVersion"], 1234);
        assert_eq!(json["phase"], "Scaling");
    }
}
