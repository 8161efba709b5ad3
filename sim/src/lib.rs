//! `aerospike-sim`: a stand-in Aerospike server for testing cluster
//! operators.
//!
//! It speaks the real info protocol and single-record AS_MSG transactions
//! (put, get, exists, remove) on the service port, meshes with other sim
//! processes over TCP heartbeats, and models partitions, migrations and
//! their records closely enough that data loss caused by stopping nodes
//! too early is measurable: with a client (records not found) and with
//! the sim's own oracle (`dead_partitions`). See `sim/README.md` for what it does and
//! does not model.
//!
//! Reading order:
//! - [`frame`]: the 8-byte header and the request/reply frames.
//! - [`msg`]: the data plane's AS_MSG transactions (put, get, exists, remove).
//! - [`record`]: records, digests and their conflict resolution.
//! - [`command`]: splitting requests into commands and parsing one.
//! - [`config`]: reading `aerospike.conf`.
//! - [`ids`]: node ids and cluster keys.
//! - [`partitions`]: partition maps and the ownership ranking.
//! - [`heartbeat`]: what nodes tell each other.
//! - [`state`]: the node's state machine (membership, clusters, migrations).
//! - [`storage`]: what `storage-engine device` namespaces persist, and their files.
//! - [`info`]: the info command handlers.
//! - [`netif`]: interface addresses (`address any`, `address eth0`).
//! - [`node`]: the sockets and tasks of a running node.
//! - [`events`]: the JSON-lines event log.
//! - [`fabric`]: node-to-node connections carrying partition copies.
//! - [`client`]: a small info client (`aerospike-sim asinfo`).
//! - [`meshworker`]: the recipe's DNS-polling sidecar (`aerospike-sim meshworker`), for benchmarks.
//! - [`cli`]: the binary's arguments and environment.

#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod command;
pub mod config;
pub mod events;
pub mod fabric;
pub mod frame;
pub mod heartbeat;
pub mod ids;
pub mod info;
pub mod meshworker;
pub mod msg;
pub mod netif;
pub mod node;
pub mod partitions;
pub mod record;
pub mod state;
pub mod storage;
