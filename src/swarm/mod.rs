//! Everything that talks to Docker, behind the small [`SwarmApi`] trait.
//!
//! - [`connect`]/[`connect_from_env`] reach the engine as the Docker CLI
//!   does and negotiate the API version; [`preflight`] refuses an engine
//!   that is not a swarm manager.
//! - [`SwarmApi`] lists services, nodes and tasks, updates services and
//!   streams events, in our own plain [`types`]. [`DockerSwarm`] implements
//!   it on a real engine, [`FakeSwarm`] in memory for tests.
//! - [`placement`] evaluates placement constraints, so the operator knows
//!   how many nodes a cluster can use.
//! - [`LeaseStore`] reads and compare-and-swaps the labels of a swarm
//!   config: the leader lease of high availability.
//!
//! Every failure is a [`SwarmError`]; nothing here panics on a Docker reply.

mod api;
mod connect;
mod docker;
pub mod endpoints;
mod error;
mod fake;
mod lease;
pub mod placement;
mod raw;
pub mod types;

pub use api::{
    update_service_retrying, with_live_status, NewService, ServiceChange, SwarmApi, UPDATE_ATTEMPTS,
};
pub use connect::{
    connect, connect_from_env, preflight, Endpoint, EngineIdentity, TlsFiles, DEFAULT_DOCKER_HOST,
};
pub use docker::DockerSwarm;
pub use error::{BoxError, SwarmError};
pub use fake::{fake_fingerprint, ready_worker, FakeSwarm, WriteCall};
pub use lease::{is_conflict, ConfigObject, FakeLeaseClient, FakeLeaseStore, LeaseStore};
pub use placement::{eligible_nodes, Constraint, ConstraintError};
pub use types::{
    template_fingerprint, Availability, EventKind, NetworkInfo, NodeInfo, NodeRole, NodeState,
    Platform, SecretMount, ServiceInfo, SwarmEvent, TaskFilter, TaskInfo, UpdatePolicy,
    VolumeMount,
};
