//! Reading a cluster's spec from a live swarm service.
//!
//! Only the parts the spec needs are kept: the service-level labels
//! (`Spec.Labels`, not the container labels under `TaskTemplate`) and the
//! image, which supplies the default repository.

use std::collections::HashMap;

use bollard::query_parameters::InspectServiceOptions;
use bollard::Docker;

use super::{ClusterSpec, ClusterStatus, SpecErrors};

/// What the spec needs from one swarm service, as swarm stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSnapshot {
    /// The service ID.
    pub id: String,
    /// The service name.
    pub name: String,
    /// `Version.Index`: what a later update must quote, and what
    /// `aerospike.status.observed-version` records.
    pub version_index: Option<u64>,
    /// The service-level labels (`Spec.Labels`).
    pub labels: HashMap<String, String>,
    /// `TaskTemplate.ContainerSpec.Image`, usually pinned to a digest.
    pub image: Option<String>,
}

impl ServiceSnapshot {
    /// Extracts the snapshot from an inspected service.
    pub fn from_service(service: &bollard::models::Service) -> ServiceSnapshot {
        let spec = service.spec.as_ref();
        ServiceSnapshot {
            id: service.id.clone().unwrap_or_default(),
            name: spec.and_then(|s| s.name.clone()).unwrap_or_default(),
            version_index: service.version.as_ref().and_then(|v| v.index),
            labels: spec.and_then(|s| s.labels.clone()).unwrap_or_default(),
            image: spec
                .and_then(|s| s.task_template.as_ref())
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.image.clone()),
        }
    }

    /// The cluster spec, `Ok(None)` when the service is not managed.
    pub fn spec(&self) -> Result<Option<ClusterSpec>, SpecErrors> {
        ClusterSpec::from_labels(&self.labels, self.image.as_deref())
    }

    /// The status the operator last wrote.
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus::from_labels(&self.labels)
    }
}

/// Connects to Docker the way the `docker` CLI does (`DOCKER_HOST`, else
/// the local socket) and agrees on an API version with the engine, which
/// may be older than the one bollard speaks.
pub async fn connect() -> Result<Docker, bollard::errors::Error> {
    Docker::connect_with_defaults()?.negotiate_version().await
}

/// Inspects service `name` (or ID) as the user wrote it: without
/// `insertDefaults`, so that a spec written back later carries no
/// defaults the user never set (writing those can roll every task).
pub async fn inspect(
    docker: &Docker,
    name: &str,
) -> Result<ServiceSnapshot, bollard::errors::Error> {
    let options = InspectServiceOptions {
        insert_defaults: false,
    };
    let service = docker.inspect_service(name, Some(options)).await?;
    Ok(ServiceSnapshot::from_service(&service))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ObjectVersion, Service, ServiceSpec, TaskSpec, TaskSpecContainerSpec};

    #[test]
    fn snapshot_reads_service_labels_and_image() {
        let labels: HashMap<String, String> = [
            ("aerospike.cluster.replicas", "9"),
            ("aerospike.cluster.version", "7.1.0.0"),
            ("aerospike.status.phase", "Ready"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let service = Service {
            id: Some("abc123".into()),
            version: Some(ObjectVersion { index: Some(77) }),
            spec: Some(ServiceSpec {
                name: Some("aerospikedb".into()),
                labels: Some(labels),
                task_template: Some(TaskSpec {
                    container_spec: Some(TaskSpecContainerSpec {
                        image: Some(
                            "aerospike/aerospike-server-enterprise:7.0.0.0@sha256:00ff".into(),
                        ),
                        // Container labels are not the spec.
                        labels: Some(
                            [("aerospike.cluster.replicas".to_string(), "1".to_string())].into(),
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let snapshot = ServiceSnapshot::from_service(&service);
        assert_eq!(snapshot.name, "aerospikedb");
        assert_eq!(snapshot.version_index, Some(77));
        // 9 replicas pass only because the current image is Enterprise.
        let spec = snapshot.spec().unwrap().unwrap();
        assert_eq!(spec.replicas, 9);
        assert_eq!(
            spec.image_reference(snapshot.image.as_deref()),
            "aerospike/aerospike-server-enterprise:7.1.0.0"
        );
        assert_eq!(snapshot.status().phase, Some(crate::spec::Phase::Ready));
        assert_eq!(
            ServiceSnapshot::from_service(&Service::default()).spec(),
            Ok(None)
        );
    }
}
