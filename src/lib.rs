//! aerospike-swarm-operator: runs Aerospike clusters on Docker Swarm the
//! way a Kubernetes operator would, without Kubernetes.
//!
//! Users declare a cluster as labels on its swarm service; [`spec`] is that
//! contract: parsing, validation, the YAML document form and its schema,
//! and the status labels the operator writes back. [`swarm`] talks to
//! Docker, [`aerospike`] to the Aerospike nodes, and [`controller`] is the
//! loop that makes every managed service match its spec ([`run`]).
//! [`serverconf`] reads and checks the Aerospike server config. [`validate`]
//! is the `validate` command.

pub mod aerospike;
pub mod controller;
pub mod serverconf;
pub mod spec;
pub mod swarm;
pub mod validate;

pub use controller::run;
