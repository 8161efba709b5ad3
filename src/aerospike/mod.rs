//! Talking to Aerospike nodes: the info protocol and cluster health.
//!
//! The operator never touches records. Everything it needs from a node —
//! who it is, which cluster it is in, whether migrations are done, and the
//! mesh commands `tip` / `tip-clear` — goes over the *info protocol* on the
//! service port (field notes §3). This module is the client side of it.
//!
//! Reading order, bottom up:
//! - [`frame`]: the 8-byte header and the request/reply bodies, as bytes.
//! - [`error`]: [`InfoError`], the one error type every call returns.
//! - [`client`]: [`InfoClient`], one TCP exchange per call, under timeouts.
//! - [`reply`]: pure parsers for reply values (`k=v;k=v`, `ERROR:...`,
//!   `statistics`, `namespace/<ns>`).
//! - [`commands`]: typed calls (`statistics`, `tip`, `cluster-stable`, ...)
//!   as methods of [`InfoClient`].
//! - [`health`]: pure decisions over what the nodes said: which group of
//!   nodes is the main cluster, and whether the cluster is safe to disturb.
//! - [`coldstart`]: the one thing read from a node's console log instead:
//!   a cold start under way (it refuses connections until it is over).

pub mod client;
pub mod coldstart;
pub mod commands;
pub mod error;
pub mod frame;
pub mod health;
pub mod reply;

pub use client::InfoClient;
pub use commands::{NodeObservation, NodeReport};
pub use error::{InfoError, Phase};
pub use health::{
    check_stable, ClusterGroup, ClusterView, Instability, StabilityCheck, StableVerdict,
};
pub use reply::{
    ClusterStable, Namespace, NamespaceStats, NodeId, PeerEntry, ReclusterOutcome, ReplyError,
    Statistics, TipClearOutcome, TipOutcome,
};
