//! aerospike-swarm-operator: runs Aerospike clusters on Docker Swarm the
//! way a Kubernetes operator would, without Kubernetes.
//!
//! Users declare a cluster as labels on its swarm service; [`spec`] is that
//! contract: parsing, validation, the YAML document form and its schema,
//! and the status labels the operator writes back.

pub mod aerospike;
pub mod spec;
pub mod swarm;
