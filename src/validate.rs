//! The `validate` command: check a YAML file or a live service's labels,
//! and with `--config FILE` an Aerospike server config against it.
//!
//! A live service is read through [`crate::swarm`], as the operator reads
//! it, so `validate --service` sees exactly the labels and image the
//! controller would.
//!
//! The command's logic lives here so that the binary only parses
//! arguments and maps a [`Verdict`] or [`CheckError`] to output and an
//! exit code.

use std::path::{Path, PathBuf};

use crate::serverconf::{check, CheckContext, ServerConfig};
use crate::spec::{self, ClusterDocument, ClusterSpec, Edition, SpecErrors};
use crate::swarm::{self, SwarmApi, SwarmError};

/// The result of checking one spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The spec is valid.
    Valid {
        /// The cluster (service) name.
        name: String,
        /// The validated spec (boxed: it is much larger than the other
        /// variants).
        spec: Box<ClusterSpec>,
    },
    /// The spec has problems; every one is listed.
    Invalid {
        /// The cluster (service) name, or the file when it has no valid name.
        name: String,
        /// What is wrong.
        errors: SpecErrors,
    },
    /// The service carries no `aerospike.cluster.*` labels at all.
    Unmanaged {
        /// The service name.
        name: String,
    },
}

impl Verdict {
    /// The process exit code: 0 for a valid spec, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::Valid { .. } => 0,
            Verdict::Invalid { .. } | Verdict::Unmanaged { .. } => 1,
        }
    }

    /// The line that sums the verdict up, e.g.
    /// `ok: aerospikedb is a valid AerospikeCluster (3 replicas, version 7.1.0.0)`.
    pub fn summary(&self) -> String {
        match self {
            Verdict::Valid { name, spec } => {
                format!("ok: {name} is a valid AerospikeCluster ({})", spec.summary())
            }
            Verdict::Invalid { name, errors } => {
                let n = errors.errors().len();
                let noun = if n == 1 { "error" } else { "errors" };
                format!("invalid: {name} has {n} {noun}")
            }
            Verdict::Unmanaged { name } => format!(
                "invalid: service {name} has no aerospike.cluster.* labels, so it is not an AerospikeCluster (add {} and {})",
                spec::REPLICAS,
                spec::VERSION
            ),
        }
    }
}

/// A check that could not be made at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Docker could not be reached.
    #[error("{0} (set DOCKER_HOST to the swarm manager's socket)")]
    Connect(SwarmError),
    /// No service by that name.
    #[error("no swarm service named {0:?}")]
    NoSuchService(String),
    /// Docker answered, but not with the service.
    #[error("cannot inspect service {name:?}: {source}")]
    Inspect {
        /// The service asked for.
        name: String,
        /// Docker's answer.
        source: SwarmError,
    },
}

impl CheckError {
    /// The process exit code for errors that prevent a check.
    pub const EXIT_CODE: u8 = 2;
}

/// Checks a YAML document file.
pub fn check_file(path: &Path) -> Result<Verdict, CheckError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match ClusterDocument::from_yaml(&text, None) {
        Ok(document) => Verdict::Valid {
            name: document.metadata.name,
            spec: Box::new(document.spec),
        },
        Err(errors) => Verdict::Invalid {
            name: path.display().to_string(),
            errors,
        },
    })
}

/// Checks the labels of live service `name` (name or ID).
pub async fn check_service(name: &str) -> Result<Verdict, CheckError> {
    let docker = swarm::connect_from_env()
        .await
        .map_err(CheckError::Connect)?;
    let service = match docker.inspect_service(name).await {
        Ok(service) => service,
        Err(e) if e.is_not_found() => return Err(CheckError::NoSuchService(name.to_string())),
        Err(source) => {
            return Err(CheckError::Inspect {
                name: name.to_string(),
                source,
            })
        }
    };
    let shown = if service.name.is_empty() {
        name.to_string()
    } else {
        service.name.clone()
    };
    Ok(
        match ClusterSpec::from_labels(&service.labels, service.image.as_deref()) {
            Ok(Some(spec)) => Verdict::Valid {
                name: shown,
                spec: Box::new(spec),
            },
            Ok(None) => Verdict::Unmanaged { name: shown },
            Err(errors) => Verdict::Invalid {
                name: shown,
                errors,
            },
        },
    )
}

/// What `validate --config FILE` checks the server config against: the
/// spec's replicas, ports and edition when a spec is at hand, else 3
/// replicas, the default ports and `edition`. A cluster is taken to span
/// hosts (it does on any real swarm of more than one node).
pub fn config_context(spec: Option<&ClusterSpec>, edition: Edition) -> CheckContext {
    match spec {
        Some(spec) => CheckContext {
            edition: spec.edition(None),
            replicas: spec.replicas,
            service_port: spec.service_port(),
            heartbeat_port: spec.heartbeat_port(),
            fabric_port: spec.fabric_port(),
            multi_host: true,
        },
        None => CheckContext {
            edition,
            replicas: 3,
            service_port: spec::DEFAULT_SERVICE_PORT,
            heartbeat_port: spec::DEFAULT_HEARTBEAT_PORT,
            fabric_port: spec::DEFAULT_FABRIC_PORT,
            multi_host: true,
        },
    }
}

/// Reads, parses and checks an Aerospike server config file: every
/// problem as a line that names the file, the config line and the fix
/// (`aerospike.conf: line 14: ...; fix: ...`); empty when it passes.
pub fn check_config_file(path: &Path, ctx: &CheckContext) -> Result<Vec<String>, CheckError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let shown = path.display();
    Ok(match ServerConfig::parse(&text) {
        Err(error) => vec![format!(
            "{shown}: {error}; fix: make it an Aerospike config (contexts `name {{ ... }}`, \
             one setting a line)"
        )],
        Ok(config) => check(&config, ctx)
            .iter()
            .map(|problem| format!("{shown}: {problem}"))
            .collect(),
    })
}
