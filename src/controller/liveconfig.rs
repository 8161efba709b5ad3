//! A cluster's config object (`aerospike.cluster.config-object`): checked
//! before it rolls, and the parameters the server takes live set with
//! `set-config` instead of a rolling restart.
//!
//! Docker returns a swarm config's data (never a secret's), so for a
//! config object the operator can read the config every node runs and the
//! one the spec asks for. Each pass:
//!
//! 1. **Checked** ([`crate::serverconf::check`]): a new config that cannot
//!    work on swarm or on the image's edition stops the pass with a
//!    problem for the status before anything is written or restarted.
//! 2. **Planned** ([`crate::serverconf::plan_change`]): from the config the
//!    template mounts (and the one applied live before, if any) to the
//!    spec's. When every difference is a parameter the server's version
//!    takes live, and nothing else of the template changes, the change is
//!    [`ConfigObservation::Live`]: the rollout sees the template's config
//!    as the target (no task restarts), and every node whose `get-config`
//!    does not show a parameter's new value is sent its `set-config`
//!    ([`live_orders`]). Otherwise it is [`ConfigObservation::Restart`]:
//!    the usual rollout mounts the new config, one node at a time.
//! 3. **Kept**: the status remembers the live config
//!    ([`crate::spec::ClusterStatus::config_live`]). A node that restarts
//!    later mounts the template's config; the next pass finds it without
//!    the live values and sets them again, and the cluster is not Ready
//!    until every node shows them. The next rolling restart (a new
//!    version) mounts the live config, and the two agree again.
//!
//! A parameter a node refuses (`error`: the server does not take it live
//! in this state, e.g. `default-ttl` while `nsup-period` is 0) makes the
//! reconciler remember the refusal for that config: the next pass plans a
//! rolling restart instead, with the node's words as the reason.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::serverconf::{self, CheckContext, LiveParam, ServerConfig};
use crate::spec::{ClusterSpec, ClusterStatus, Phase};
use crate::swarm::{ServiceInfo, SwarmApi, SwarmError};

use super::rollout::Target;

/// What a pass found of the cluster's config object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConfigObservation {
    /// No config object, or every node runs the spec's.
    #[default]
    Settled,
    /// The change from the running config to `to` is dynamic parameters
    /// only: set them live; no task restarts.
    Live {
        /// The spec's config object.
        to: String,
        /// The config the task template mounts (what a restarted node runs).
        mounted: String,
        /// Every parameter to run live, with its new value.
        params: Vec<LiveParam>,
        /// Per node that answered, the parameters its `get-config` does not
        /// show yet (or could not be read).
        pending: BTreeMap<SocketAddr, Vec<LiveParam>>,
    },
    /// The change needs a rolling restart (the usual rollout), for these
    /// reasons.
    Restart {
        /// The spec's config object.
        to: String,
        /// Why, in words: `storage-engine changed (namespace test, line 30)`.
        reasons: Vec<String>,
    },
}

/// The config object read from Docker: its name and text.
#[derive(Debug, Clone)]
pub struct ConfigText {
    /// The swarm config's name.
    pub name: String,
    /// Its data.
    pub text: String,
}

/// Config object `name`, read from the swarm, when there is a name and
/// such a config (what the reconciler and `apply` both read).
pub async fn read_config<A: SwarmApi>(
    api: &A,
    name: Option<String>,
) -> Result<Option<ConfigText>, SwarmError> {
    let Some(name) = name else {
        return Ok(None);
    };
    Ok(api
        .config_text(&name)
        .await?
        .map(|text| ConfigText { name, text }))
}

/// A `set-config` to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOrder {
    /// The node.
    pub node: SocketAddr,
    /// The parameter and its new value.
    pub param: LiveParam,
    /// The config object it comes from.
    pub config: String,
}

/// The problems that stop config object `to` before it rolls: a parse
/// error or a failed check, each naming the line and the fix, in one
/// message for the status. `None` when it may roll.
pub fn refusal(
    to: &ConfigText,
    spec: &ClusterSpec,
    service: &ServiceInfo,
    eligible: usize,
) -> Option<String> {
    let field = crate::spec::CONFIG_OBJECT;
    let config = match ServerConfig::parse(&to.text) {
        Ok(config) => config,
        Err(e) => {
            return Some(format!(
                "config object {:?} ({field}) does not parse: {e}; nothing was restarted",
                to.name
            ))
        }
    };
    let context = CheckContext {
        edition: spec.edition(service.image.as_deref()),
        replicas: spec.replicas,
        service_port: spec.service_port(),
        heartbeat_port: spec.heartbeat_port(),
        fabric_port: spec.fabric_port(),
        multi_host: eligible > 1,
    };
    let problems = serverconf::check(&config, &context);
    if problems.is_empty() {
        return None;
    }
    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
    Some(format!(
        "config object {:?} ({field}) is refused, nothing was restarted: {}",
        to.name,
        listed.join("; ")
    ))
}

/// The server version a live table is looked up by: the spec's version
/// without an edition prefix (`ee-7.1.0.0` is `7.1.0.0`).
fn server_version(spec: &ClusterSpec) -> &str {
    spec.version
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .trim_start_matches('-')
}

/// How the change from what runs to the spec's config object `to` can
/// happen, before any node is asked: `Ok(params)` to set live, or
/// `Err(reasons)` for a rolling restart.
///
/// `mounted` is the config the template mounts, `live` the one applied
/// live before (the status's `config-live`), `refused` the words of a node
/// that refused a parameter of `to` already.
pub fn plan(
    spec: &ClusterSpec,
    service: &ServiceInfo,
    to: &ConfigText,
    mounted: Option<&ConfigText>,
    live: Option<&ConfigText>,
    refused: Option<&str>,
) -> Result<Vec<LiveParam>, Vec<String>> {
    if let Some(words) = refused {
        return Err(vec![words.to_string()]);
    }
    let Some(mounted) = mounted else {
        return Err(vec![
            "the task template mounts no config object yet (the first mounts it with a \
             restart)"
                .into(),
        ]);
    };
    let desired = Target::desired(spec, service);
    let template = Target::of_template(spec, service);
    let others_change = Target {
        config_object: template.config_object.clone(),
        ..desired
    } != template;
    if others_change {
        return Err(vec![
            "the task template changes too (image or storage): the rolling restart mounts the new \
             config"
                .into(),
        ]);
    }
    let parse = |c: &ConfigText| {
        ServerConfig::parse(&c.text).map_err(|e| vec![format!("config object {:?}: {e}", c.name)])
    };
    let new = parse(to)?;
    let version = server_version(spec);
    let mut params: Vec<LiveParam> = Vec::new();
    let mut reasons = Vec::new();
    for from in std::iter::once(mounted).chain(live.filter(|l| l.name != to.name)) {
        let change = serverconf::plan_change(&parse(from)?, &new, version);
        reasons.extend(change.restart);
        for param in change.live {
            if !params
                .iter()
                .any(|p| p.context == param.context && p.name == param.name)
            {
                params.push(param);
            }
        }
    }
    if reasons.is_empty() {
        Ok(params)
    } else {
        Err(reasons)
    }
}

/// The parameters of `params` that `reply` (a node's `get-config` of their
/// context) does not show with their new value.
pub fn unverified(params: &[LiveParam], replies: &BTreeMap<String, String>) -> Vec<LiveParam> {
    params
        .iter()
        .filter(|p| {
            replies
                .get(&p.get_command())
                .is_none_or(|reply| p.verify(reply).is_err())
        })
        .cloned()
        .collect()
}

/// The `set-config`s a pass sends: every pending parameter of every node
/// that is not `excluded` (a suspect, whose report is not trusted).
pub fn live_orders(
    config: &ConfigObservation,
    excluded: impl Fn(SocketAddr) -> bool,
) -> Vec<LiveOrder> {
    let ConfigObservation::Live { to, pending, .. } = config else {
        return Vec::new();
    };
    pending
        .iter()
        .filter(|(node, _)| !excluded(**node))
        .flat_map(|(node, params)| {
            params.iter().map(|param| LiveOrder {
                node: *node,
                param: param.clone(),
                config: to.clone(),
            })
        })
        .collect()
}

/// `proto-fd-max, default-ttl (namespace test)`.
pub fn describe(params: &[LiveParam]) -> String {
    let names: Vec<String> = params
        .iter()
        .map(|p| match &p.context {
            serverconf::LiveContext::Service | serverconf::LiveContext::Network => p.name.clone(),
            serverconf::LiveContext::Namespace(ns) => format!("{} (namespace {ns})", p.name),
        })
        .collect();
    names.join(", ")
}

/// The spec the rollout decides from: for a live change, the spec with the
/// template's config object (so no task restarts for it).
pub fn rollout_spec(spec: &ClusterSpec, config: &ConfigObservation) -> ClusterSpec {
    match config {
        ConfigObservation::Live { mounted, .. } => ClusterSpec {
            config_object: Some(mounted.clone()),
            ..spec.clone()
        },
        _ => spec.clone(),
    }
}

/// `status` with what the config change does: while parameters are being
/// set live the cluster is not Ready (Upgrading, naming them and the
/// nodes left); once every node shows them, `config: applied live (…)` and
/// `config-live` names the config they run. A restart says why.
pub fn shape_status(
    mut status: ClusterStatus,
    config: &ConfigObservation,
    nodes: usize,
) -> ClusterStatus {
    match config {
        // Every node runs the template's config: nothing runs live.
        ConfigObservation::Settled => status.config_live = None,
        ConfigObservation::Live {
            to,
            mounted,
            params,
            pending,
        } => {
            let names = describe(params);
            let waiting = pending.values().filter(|p| !p.is_empty()).count();
            if waiting == 0 {
                status.config = Some(format!("applied live ({names})"));
                status.config_live = (to != mounted).then(|| to.clone());
            } else {
                status.config = Some(format!("applying live ({names})"));
                if matches!(status.phase, Some(Phase::Ready)) {
                    status.phase = Some(Phase::Upgrading);
                    status.message = Some(format!(
                        "setting config object {to} live ({names}) with set-config: {} of {nodes} \
                         nodes still to verify; no node restarts",
                        waiting
                    ));
                }
            }
        }
        ConfigObservation::Restart { reasons, .. } => {
            status.config = Some(format!("rolling restart ({})", reasons.join("; ")));
        }
    }
    status
}

#[cfg(test)]
mod tests;
