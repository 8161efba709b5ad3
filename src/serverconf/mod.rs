//! The Aerospike server config (`aerospike.conf`): a real parser of its
//! format ([`parse`]), the checks that refuse a config that cannot work on
//! swarm or on the image's edition ([`checks`]), and which parameters a
//! server version takes live through `set-config` ([`dynamic`]).
//!
//! Everything here is pure: text in, values out. The reconciler and
//! `apply` use it before a rollout; `validate --config FILE` shows it.

pub mod checks;
pub mod dynamic;
pub mod parse;

pub use checks::{check, CheckContext, Problem, ENTERPRISE_ONLY};
pub use dynamic::{
    dynamic_table, plan_change, ConfigChange, DynamicContext, DynamicParam, DynamicTable,
    LiveContext, LiveParam,
};
pub use parse::{Entry, ParseError, ServerConfig, Stanza};
