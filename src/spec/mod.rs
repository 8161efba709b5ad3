//! The cluster spec: the contract users write.
//!
//! A user declares an Aerospike cluster as labels on its swarm service, all
//! under [`CLUSTER_PREFIX`] (`aerospike.cluster.`), or as a CRD-like YAML
//! document (see [`document`]) that maps one to one onto those labels. Both
//! become a [`ClusterSpec`] through the same validation rules
//! ([`validate`]), and both come back out unchanged: a spec remembers which
//! optional fields were given, so writing it back never adds defaults the
//! user did not write.
//!
//! The operator reports what it sees under a second prefix,
//! [`STATUS_PREFIX`] (`aerospike.status.`): see [`status`].
//!
//! The reference of every label is [`reference`] (`explain`), which
//! also renders the tables of docs/spec.md.

pub mod document;
pub mod labels;
pub mod names;
pub mod reference;
pub mod schema;
pub mod status;
pub mod validate;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

pub use document::{ClusterDocument, Metadata, API_VERSION, KIND};
pub use reference::{FieldDoc, Label};
pub use status::{
    overlay_live_status, status_config_name, ClusterStatus, Phase, ReadyCount, STATUS_OF,
    STATUS_PREFIX,
};
pub use validate::{Location, SpecError, SpecErrors};

/// Prefix of every spec label on a cluster's service.
pub const CLUSTER_PREFIX: &str = "aerospike.cluster.";

/// Desired node count. Its presence is what makes a service managed.
pub const REPLICAS: &str = "aerospike.cluster.replicas";
/// Server version, used as the image tag.
pub const VERSION: &str = "aerospike.cluster.version";
/// Image repository (no tag, no digest).
pub const IMAGE: &str = "aerospike.cluster.image";
/// Name of the swarm secret holding `aerospike.conf`.
pub const CONFIG_SECRET: &str = "aerospike.cluster.config-secret";
/// Name of the swarm config (a config object, whose data Docker returns)
/// holding `aerospike.conf`: the readable alternative to [`CONFIG_SECRET`].
pub const CONFIG_OBJECT: &str = "aerospike.cluster.config-object";
/// Where the config secret is mounted in the container.
pub const CONFIG_TARGET: &str = "aerospike.cluster.config-target";
/// `true` stops every change the operator would make to the cluster.
pub const PAUSED: &str = "aerospike.cluster.paused";
/// Aerospike's mesh heartbeat port.
pub const HEARTBEAT_PORT: &str = "aerospike.cluster.heartbeat-port";
/// Aerospike's client (service) port, which also serves info commands.
pub const SERVICE_PORT: &str = "aerospike.cluster.service-port";
/// Aerospike's intra-cluster fabric port.
pub const FABRIC_PORT: &str = "aerospike.cluster.fabric-port";
/// Overlay network the nodes reach each other on.
pub const NETWORK: &str = "aerospike.cluster.network";
/// `community` or `enterprise`.
pub const EDITION: &str = "aerospike.cluster.edition";
/// Name of the node-local named volume that holds the data; its presence
/// gives the cluster persistent storage.
pub const STORAGE_VOLUME: &str = "aerospike.cluster.storage.volume";
/// Where the storage volume is mounted in every task.
pub const STORAGE_PATH: &str = "aerospike.cluster.storage.path";
/// The volume driver of the storage volume.
pub const STORAGE_DRIVER: &str = "aerospike.cluster.storage.driver";
/// The storage volume's driver options, `key=value,key=value`.
pub const STORAGE_DRIVER_OPTIONS: &str = "aerospike.cluster.storage.driver-options";

/// Most nodes one Aerospike cluster can have.
pub const MAX_REPLICAS: u16 = 256;
/// Most nodes a Community Edition build lets into one cluster.
pub const COMMUNITY_MAX_REPLICAS: u16 = 8;
/// Repository used when neither the spec nor an existing service names
/// one: the image of the published Swarm recipe.
pub const DEFAULT_REPOSITORY: &str = "aerospike/aerospike-server";
/// Where the config secret is mounted unless the spec says otherwise: the
/// path the published recipe passes to `--config-file`.
pub const DEFAULT_CONFIG_TARGET: &str = "/run/secrets/aerospike.conf";
/// Aerospike's default heartbeat port.
pub const DEFAULT_HEARTBEAT_PORT: u16 = 3002;
/// Aerospike's default service port.
pub const DEFAULT_SERVICE_PORT: u16 = 3000;
/// Aerospike's default fabric port.
pub const DEFAULT_FABRIC_PORT: u16 = 3001;
/// Where the storage volume is mounted unless the spec says otherwise:
/// next to the official images' `/opt/aerospike/smd`, and where the
/// example `aerospike-device.conf` keeps its data file.
pub const DEFAULT_STORAGE_PATH: &str = "/opt/aerospike/data";

/// One field of the spec, known both by its label and by its YAML name.
///
/// This table is the single place that ties the two spellings together;
/// the label parser, the YAML parser and the docs all go through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Replicas,
    Version,
    Image,
    ConfigSecret,
    ConfigObject,
    ConfigTarget,
    Paused,
    HeartbeatPort,
    ServicePort,
    FabricPort,
    Network,
    Edition,
    StorageVolume,
    StoragePath,
    StorageDriver,
    StorageDriverOptions,
}

/// What a YAML value of a field must look like (labels are all strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// Text.
    String,
    /// A mapping of names to text (`driverOptions`); its label is
    /// `key=value,key=value`.
    Map,
}

impl Field {
    /// Every field, in the order the docs and `to_labels` list them.
    pub const ALL: [Field; 16] = [
        Field::Replicas,
        Field::Version,
        Field::Image,
        Field::ConfigSecret,
        Field::ConfigObject,
        Field::ConfigTarget,
        Field::Paused,
        Field::HeartbeatPort,
        Field::ServicePort,
        Field::FabricPort,
        Field::Network,
        Field::Edition,
        Field::StorageVolume,
        Field::StoragePath,
        Field::StorageDriver,
        Field::StorageDriverOptions,
    ];

    /// The full label key, e.g. `aerospike.cluster.config-secret`.
    pub fn label(self) -> &'static str {
        match self {
            Field::Replicas => REPLICAS,
            Field::Version => VERSION,
            Field::Image => IMAGE,
            Field::ConfigSecret => CONFIG_SECRET,
            Field::ConfigObject => CONFIG_OBJECT,
            Field::ConfigTarget => CONFIG_TARGET,
            Field::Paused => PAUSED,
            Field::HeartbeatPort => HEARTBEAT_PORT,
            Field::ServicePort => SERVICE_PORT,
            Field::FabricPort => FABRIC_PORT,
            Field::Network => NETWORK,
            Field::Edition => EDITION,
            Field::StorageVolume => STORAGE_VOLUME,
            Field::StoragePath => STORAGE_PATH,
            Field::StorageDriver => STORAGE_DRIVER,
            Field::StorageDriverOptions => STORAGE_DRIVER_OPTIONS,
        }
    }

    /// The camelCase name under `spec:` in the YAML document; a dotted
    /// one (`storage.volume`) is a field of a nested mapping
    /// (`spec.storage.volume`).
    pub fn yaml_name(self) -> &'static str {
        match self {
            Field::Replicas => "replicas",
            Field::Version => "version",
            Field::Image => "image",
            Field::ConfigSecret => "configSecret",
            Field::ConfigObject => "configObject",
            Field::ConfigTarget => "configTarget",
            Field::Paused => "paused",
            Field::HeartbeatPort => "heartbeatPort",
            Field::ServicePort => "servicePort",
            Field::FabricPort => "fabricPort",
            Field::Network => "network",
            Field::Edition => "edition",
            Field::StorageVolume => "storage.volume",
            Field::StoragePath => "storage.path",
            Field::StorageDriver => "storage.driver",
            Field::StorageDriverOptions => "storage.driverOptions",
        }
    }

    /// The type its YAML value must have.
    pub fn kind(self) -> FieldKind {
        match self {
            Field::Replicas | Field::HeartbeatPort | Field::ServicePort | Field::FabricPort => {
                FieldKind::Integer
            }
            Field::Paused => FieldKind::Boolean,
            Field::StorageDriverOptions => FieldKind::Map,
            _ => FieldKind::String,
        }
    }

    /// The field whose label is `key`, if any.
    pub fn from_label(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.label() == key)
    }

    /// The field whose YAML name is `name`, if any.
    pub fn from_yaml_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.yaml_name() == name)
    }
}

/// Which Aerospike build a cluster runs. It matters because Community
/// Edition caps a cluster at [`COMMUNITY_MAX_REPLICAS`] nodes and lacks
/// `quiesce`, which the safe-restart path uses when it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(
    description = "Which Aerospike build runs: Community Edition caps a cluster at 8 nodes. Default: enterprise when the image repository ends in -enterprise or the version starts with ee-, else community."
)]
pub enum Edition {
    Community,
    Enterprise,
}

impl Edition {
    /// The label/YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Edition::Community => "community",
            Edition::Enterprise => "enterprise",
        }
    }

    /// Guesses the edition from an image: Aerospike publishes Enterprise as
    /// `aerospike/aerospike-server-enterprise` and as `ee-` tags.
    pub fn infer(repository: &str, version: &str) -> Edition {
        let last = repository.rsplit('/').next().unwrap_or(repository);
        if last.ends_with("-enterprise") || version.starts_with("ee-") {
            Edition::Enterprise
        } else {
            Edition::Community
        }
    }
}

impl std::fmt::Display for Edition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated cluster spec, as declared.
///
/// Optional fields stay `None` when the user did not write them, so that
/// [`ClusterSpec::to_labels`] gives back exactly what was parsed; the
/// accessor methods (`paused()`, `service_port()`, ...) apply the
/// defaults. Build one with [`ClusterSpec::from_labels`] or
/// [`ClusterDocument::from_yaml`]; both enforce every rule in [`validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    description = "What the user wants. Each field maps to one service label: replicas to aerospike.cluster.replicas, configSecret to aerospike.cluster.config-secret, and so on."
)]
pub struct ClusterSpec {
    /// Desired number of Aerospike nodes (at most 8 for Community Edition).
    #[schemars(range(min = 1, max = 256))]
    pub replicas: u16,
    /// Server version; the image tag, e.g. `7.1.0.0` or `ee-7.1.0.0`.
    #[schemars(pattern(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"))]
    pub version: String,
    /// Image repository without tag or digest. Default: the repository of
    /// the service's current image, else `aerospike/aerospike-server`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub image: Option<String>,
    /// Name of the swarm secret that holds `aerospike.conf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        pattern(r"^[a-zA-Z0-9]+([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$"),
        length(max = 64)
    )]
    pub config_secret: Option<String>,
    /// Name of the swarm config (config object) that holds `aerospike.conf`;
    /// Docker returns its data, so the operator can check it before it
    /// rolls and apply dynamic changes live. Not with `configSecret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        pattern(r"^[a-zA-Z0-9]+([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$"),
        length(max = 64)
    )]
    pub config_object: Option<String>,
    /// Absolute path the config secret (or config object) is mounted at. Default:
    /// `/run/secrets/aerospike.conf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^/"))]
    pub config_target: Option<String>,
    /// `true` stops every change the operator would make. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Mesh heartbeat port. Default: 3002.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub heartbeat_port: Option<u16>,
    /// Client and info port. Default: 3000.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub service_port: Option<u16>,
    /// Intra-cluster fabric port. Default: 3001.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub fabric_port: Option<u16>,
    /// Overlay network the nodes reach each other on. Default: the
    /// service's first network.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"))]
    pub network: Option<String>,
    /// `community` or `enterprise`. Default: inferred from the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edition: Option<Edition>,
    /// Persistent storage: a node-local named volume mounted in every
    /// task. Default: none (the data lives only as long as the container).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
}

/// A data volume: a named volume of each node's engine, mounted at the
/// same path in every task, so that a task restarted or replaced on the
/// same node finds the data its predecessor left there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    description = "Persistent storage: a named volume on each node, mounted at path in every task. Labels aerospike.cluster.storage.volume, .path, .driver, .driver-options."
)]
pub struct StorageSpec {
    /// The volume's name: each node's engine creates its own volume of
    /// this name when a task first mounts it.
    #[schemars(pattern(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"), length(max = 255))]
    pub volume: String,
    /// Absolute path the volume is mounted at. Default:
    /// `/opt/aerospike/data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^/"))]
    pub path: Option<String>,
    /// Volume driver. Default: the engine's, `local`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[a-zA-Z0-9][a-zA-Z0-9_.:/-]*$"))]
    pub driver: Option<String>,
    /// Options for the driver (`type: tmpfs`, ...): text values without
    /// commas. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": r"^[^\s=,]+$" }))]
    #[schemars(extend("additionalProperties" = { "type": "string", "pattern": "^[^,]*$" }))]
    pub driver_options: BTreeMap<String, String>,
}

impl StorageSpec {
    /// Where the volume is mounted, defaulted.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or(DEFAULT_STORAGE_PATH)
    }

    /// The driver options as their label: `key=value,key=value`, sorted.
    pub fn driver_options_label(&self) -> Option<String> {
        (!self.driver_options.is_empty()).then(|| {
            self.driver_options
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

impl ClusterSpec {
    /// Whether the operator must leave the cluster alone.
    pub fn paused(&self) -> bool {
        self.paused.unwrap_or(false)
    }

    /// The heartbeat port, defaulted.
    pub fn heartbeat_port(&self) -> u16 {
        self.heartbeat_port.unwrap_or(DEFAULT_HEARTBEAT_PORT)
    }

    /// The service port, defaulted.
    pub fn service_port(&self) -> u16 {
        self.service_port.unwrap_or(DEFAULT_SERVICE_PORT)
    }

    /// The fabric port, defaulted.
    pub fn fabric_port(&self) -> u16 {
        self.fabric_port.unwrap_or(DEFAULT_FABRIC_PORT)
    }

    /// Where the config secret is mounted, defaulted.
    pub fn config_target(&self) -> &str {
        self.config_target
            .as_deref()
            .unwrap_or(DEFAULT_CONFIG_TARGET)
    }

    /// The image repository: the spec's, else the one of the service's
    /// current image (`current_image`, a full reference as swarm stores
    /// it), else [`DEFAULT_REPOSITORY`].
    pub fn repository(&self, current_image: Option<&str>) -> String {
        match (&self.image, current_image) {
            (Some(image), _) => image.clone(),
            (None, Some(current)) if !current.is_empty() => {
                names::repository_of(current).to_string()
            }
            _ => DEFAULT_REPOSITORY.to_string(),
        }
    }

    /// The image the cluster should run: `<repository>:<version>`.
    pub fn image_reference(&self, current_image: Option<&str>) -> String {
        format!("{}:{}", self.repository(current_image), self.version)
    }

    /// The edition: the declared one, else inferred from the image.
    pub fn edition(&self, current_image: Option<&str>) -> Edition {
        self.edition
            .unwrap_or_else(|| Edition::infer(&self.repository(current_image), &self.version))
    }

    /// Parses the spec labels of a service (see [`labels`]).
    ///
    /// `Ok(None)` means the service is not managed: it has no
    /// `aerospike.cluster.*` labels at all.
    pub fn from_labels<'a, I>(
        labels: I,
        current_image: Option<&str>,
    ) -> Result<Option<ClusterSpec>, SpecErrors>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        labels::parse(labels, current_image)
    }

    /// The spec as service labels: exactly the keys it was parsed from.
    pub fn to_labels(&self) -> std::collections::BTreeMap<String, String> {
        labels::render(self)
    }

    /// A one-line summary for humans, e.g. `3 replicas, version 7.1.0.0`.
    pub fn summary(&self) -> String {
        let noun = if self.replicas == 1 {
            "replica"
        } else {
            "replicas"
        };
        let paused = if self.paused() { ", paused" } else { "" };
        let storage = match &self.storage {
            Some(s) => format!(", storage volume {} at {}", s.volume, s.path()),
            None => String::new(),
        };
        format!(
            "{} {noun}, version {}{paused}{storage}",
            self.replicas, self.version
        )
    }
}

/// Test scenes: `pairs` as a service's label map.
#[cfg(test)]
pub(crate) fn label_map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_table_is_consistent() {
        for field in Field::ALL {
            assert!(field.label().starts_with(CLUSTER_PREFIX));
            assert_eq!(Field::from_label(field.label()), Some(field));
            assert_eq!(Field::from_yaml_name(field.yaml_name()), Some(field));
            // The label suffix is the kebab-case of the YAML name.
            let kebab: String = field
                .yaml_name()
                .chars()
                .flat_map(|c| {
                    if c.is_ascii_uppercase() {
                        vec!['-', c.to_ascii_lowercase()]
                    } else {
                        vec![c]
                    }
                })
                .collect();
            assert_eq!(&field.label()[CLUSTER_PREFIX.len()..], kebab);
        }
    }

    #[test]
    fn edition_inference() {
        assert_eq!(
            Edition::infer("aerospike/aerospike-server", "7.1.0.0"),
            Edition::Community
        );
        assert_eq!(
            Edition::infer("aerospike/aerospike-server-enterprise", "7.1.0.0"),
            Edition::Enterprise
        );
        assert_eq!(
            Edition::infer("aerospike/aerospike", "ee-7.1.0.0"),
            Edition::Enterprise
        );
        assert_eq!(
            Edition::infer("reg:5000/x-enterprise/server", "7"),
            Edition::Community
        );
    }

    #[test]
    fn defaults_and_image() {
        let spec = ClusterSpec {
            replicas: 3,
            version: "7.1.0.0".into(),
            image: None,
            config_secret: None,
            config_object: None,
            config_target: None,
            paused: None,
            heartbeat_port: None,
            service_port: None,
            fabric_port: None,
            network: None,
            edition: None,
            storage: None,
        };
        assert!(!spec.paused());
        assert_eq!(
            (
                spec.service_port(),
                spec.fabric_port(),
                spec.heartbeat_port()
            ),
            (3000, 3001, 3002)
        );
        assert_eq!(spec.config_target(), "/run/secrets/aerospike.conf");
        assert_eq!(
            spec.image_reference(None),
            "aerospike/aerospike-server:7.1.0.0"
        );
        assert_eq!(
            spec.image_reference(Some("reg:5000/aero/server:6.4@sha256:ab")),
            "reg:5000/aero/server:7.1.0.0"
        );
        let spec = ClusterSpec {
            image: Some("me/aerospike-server-enterprise".into()),
            ..spec
        };
        assert_eq!(
            spec.edition(Some("aerospike/aerospike-server:7")),
            Edition::Enterprise
        );
        assert_eq!(spec.summary(), "3 replicas, version 7.1.0.0");
    }
}
