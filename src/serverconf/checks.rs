//! Refuses configs that cannot work on swarm or on the image's edition,
//! before a rollout puts them on a node. Each [`Problem`] names the line
//! and the fix.
//!
//! The checks, each from something seen on a real server or read in its
//! source:
//!
//! - `service { cluster-name NAME }` is required: 7.1 refuses to start
//!   without one ("must configure cluster-name"), and the operator's mesh
//!   (tips between nodes of one service) relies on every node having the
//!   same.
//! - `address` in `network.service`, `network.heartbeat` and
//!   `network.fabric` must name an interface (or IP), not `any`, on a
//!   cluster that spans hosts: the docker_gwbridge trap.
//! - `heartbeat { mode mesh }`: swarm's overlay carries no multicast.
//! - Enterprise-only lines on a Community image ([`ENTERPRISE_ONLY`]): the
//!   server exits at start.
//! - The ports in the config must be the `aerospike.cluster.*-port` labels.
//! - No namespace's `replication-factor` (default 2) exceeds the replicas.

use std::fmt;

use super::parse::{ServerConfig, Stanza};
use crate::spec::Edition;

/// What the config is checked against: the cluster's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckContext {
    /// The image's edition.
    pub edition: Edition,
    /// The nodes the cluster runs (`aerospike.cluster.replicas`).
    pub replicas: u16,
    /// `aerospike.cluster.service-port`.
    pub service_port: u16,
    /// `aerospike.cluster.heartbeat-port`.
    pub heartbeat_port: u16,
    /// `aerospike.cluster.fabric-port`.
    pub fabric_port: u16,
    /// The nodes may sit on different hosts (always so on a real swarm of
    /// more than one node).
    pub multi_host: bool,
}

/// One reason the config cannot work: where, what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config line it is on, when there is one (a missing context has
    /// none).
    pub line: Option<usize>,
    /// What is wrong and why it matters.
    pub message: String,
    /// What to write instead.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}; fix: {}", self.message, self.fix)
    }
}

/// Settings (and contexts) a Community Edition server refuses at start
/// ("'…' is enterprise-only"), as `(context, name)`: the context is the
/// path of stanza names from the root, `*` matching any one name.
///
/// Collected from the server's config parser, `as/src/base/cfg.c`, every
/// directive whose case calls `cfg_enterprise_only(&line)` (read in the
/// public aerospike-server source: the bsv-blockchain/aerospike-server
/// fork at commit 0d9f59855b9b, an 8.1-line tree; the same calls guard the
/// same names in the 6.x cfg.c of aerospike/aerospike-server), restricted
/// to names that exist in 7.1/7.2. `rack-id` was also seen on a real 7.1
/// Community server: it exits with "'rack-id' is enterprise-only".
pub const ENTERPRISE_ONLY: &[(&str, &str)] = &[
    // Top-level contexts.
    ("", "security"),
    ("", "xdr"),
    // service
    ("service", "feature-key-file"),
    ("service", "migrate-fill-delay"),
    ("service", "secrets-address-port"),
    ("service", "secrets-tls-context"),
    ("service", "secrets-uds-path"),
    ("service", "stay-quiesced"),
    ("service", "tls-refresh-period"),
    ("service", "vault-ca"),
    ("service", "vault-namespace"),
    ("service", "vault-path"),
    ("service", "vault-token-file"),
    ("service", "vault-url"),
    // network
    ("network", "tls"),
    ("network.service", "tls-access-address"),
    ("network.service", "tls-access-port"),
    ("network.service", "tls-address"),
    ("network.service", "tls-alternate-access-address"),
    ("network.service", "tls-alternate-access-port"),
    ("network.service", "tls-authenticate-client"),
    ("network.service", "tls-name"),
    ("network.service", "tls-port"),
    ("network.heartbeat", "tls-address"),
    ("network.heartbeat", "tls-name"),
    ("network.heartbeat", "tls-port"),
    ("network.fabric", "tls-address"),
    ("network.fabric", "tls-name"),
    ("network.fabric", "tls-port"),
    // namespace
    ("namespace", "active-rack"),
    ("namespace", "auto-revive"),
    ("namespace", "conflict-resolve-writes"),
    ("namespace", "disallow-expunge"),
    ("namespace", "ignore-migrate-fill-delay"),
    ("namespace", "index-type"),
    ("namespace", "prefer-uniform-balance"),
    ("namespace", "rack-id"),
    ("namespace", "sindex-type"),
    ("namespace", "strong-consistency"),
    ("namespace", "strong-consistency-allow-expunge"),
    ("namespace", "tomb-raider-eligible-age"),
    ("namespace", "tomb-raider-period"),
    ("namespace", "xdr-bin-tombstone-ttl"),
    ("namespace", "xdr-tomb-raider-period"),
    ("namespace", "xdr-tomb-raider-threads"),
    // namespace.storage-engine (memory and device)
    ("namespace.storage-engine", "commit-to-device"),
    ("namespace.storage-engine", "compression"),
    ("namespace.storage-engine", "compression-acceleration"),
    ("namespace.storage-engine", "compression-level"),
    ("namespace.storage-engine", "encryption"),
    ("namespace.storage-engine", "encryption-key-file"),
    ("namespace.storage-engine", "encryption-old-key-file"),
    ("namespace.storage-engine", "tomb-raider-sleep"),
];

/// Every problem of `config` against `ctx`, in line order (problems with
/// no line first). Empty: nothing known to stop it.
pub fn check(config: &ServerConfig, ctx: &CheckContext) -> Vec<Problem> {
    let mut problems = Vec::new();
    cluster_name(config, &mut problems);
    network(config, ctx, &mut problems);
    if ctx.edition == Edition::Community {
        enterprise_only(config.root(), "", &mut problems);
    }
    replication(config, ctx, &mut problems);
    problems.sort_by_key(|p| p.line);
    problems
}

fn problem(line: Option<usize>, message: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        line,
        message: message.into(),
        fix: fix.into(),
    }
}

fn cluster_name(config: &ServerConfig, out: &mut Vec<Problem>) {
    let fix = "add `cluster-name NAME` to `service { }` (the same name on every node)";
    match config.find(&["service"]) {
        None => out.push(problem(
            None,
            "no `service` context: Aerospike 7.1+ refuses to start without \
             `service { cluster-name NAME }` (\"must configure cluster-name\")",
            fix,
        )),
        Some(service) => {
            let named = service
                .get("cluster-name")
                .and_then(|e| e.value())
                .is_some_and(|v| v != "null");
            if !named {
                out.push(problem(
                    Some(service.line),
                    "no `cluster-name` in service: Aerospike 7.1+ refuses to start without one \
                     (\"must configure cluster-name\"), and the operator meshes only nodes \
                     that share it",
                    fix,
                ));
            }
        }
    }
}

const ADDRESS_FIX: &str = "bind the overlay: `address eth0` (the first network attached to the \
     service; on several networks, the interface of aerospike.cluster.network: \
     `docker exec TASK ip -4 addr` shows which)";

fn network(config: &ServerConfig, ctx: &CheckContext, out: &mut Vec<Problem>) {
    let Some(network) = config.find(&["network"]) else {
        out.push(problem(
            None,
            "no `network` context: the server needs network { service { } heartbeat { } \
             fabric { } }",
            "add the network context of crd-like-specs/examples/aerospike.conf",
        ));
        return;
    };
    let listeners = [
        ("service", ctx.service_port, crate::spec::SERVICE_PORT, 3000),
        (
            "heartbeat",
            ctx.heartbeat_port,
            crate::spec::HEARTBEAT_PORT,
            3002,
        ),
        ("fabric", ctx.fabric_port, crate::spec::FABRIC_PORT, 3001),
    ];
    for (name, want, label, default) in listeners {
        let Some(listener) = network.child(name) else {
            if name == "fabric" {
                if ctx.multi_host {
                    out.push(problem(
                        Some(network.line),
                        "no `fabric` in network: fabric then binds every interface \
                         (`address any`), docker_gwbridge too; see network.service",
                        format!("add `fabric {{ address eth0; port {want} }}`; {ADDRESS_FIX}"),
                    ));
                }
                if want != default {
                    out.push(problem(
                        Some(network.line),
                        format!(
                            "no `fabric` in network, so fabric listens on {default}, but \
                             {label} is {want}"
                        ),
                        format!("add `fabric {{ port {want} }}`"),
                    ));
                }
            } else {
                out.push(problem(
                    Some(network.line),
                    format!("no `{name}` context in network: the server needs one"),
                    format!("add `{name} {{ address eth0; port {want} }}`"),
                ));
            }
            continue;
        };
        if ctx.multi_host {
            address(listener, name, out);
        }
        match listener.get("port") {
            Some(entry) => {
                let got = entry.value().unwrap_or_default();
                if got.parse::<u16>().ok() != Some(want) {
                    out.push(problem(
                        Some(entry.line),
                        format!(
                            "`port {got}` in network.{name}, but {label} is {want}: the operator \
                             talks to and tips the nodes on the label's port"
                        ),
                        format!("write `port {want}` (or set {label}={got})"),
                    ));
                }
            }
            None if want != default => out.push(problem(
                Some(listener.line),
                format!(
                    "no `port` in network.{name}, so the server's default {default}, but \
                     {label} is {want}"
                ),
                format!("add `port {want}` to network.{name}"),
            )),
            None => {}
        }
        if name == "heartbeat" {
            heartbeat_mode(listener, out);
        }
    }
}

fn address(listener: &Stanza, name: &str, out: &mut Vec<Problem>) {
    let trap = "docker_gwbridge (eth1 in a task) has the same subnet on every host \
                (172.18.0.0/16 by default), so nodes on different hosts often share an eth1 \
                address: peers then reach the wrong node through it and migrations stall \
                for good";
    let any = listener
        .all("address")
        .find(|e| matches!(e.value(), Some("any" | "0.0.0.0" | "::")));
    if let Some(entry) = any {
        out.push(problem(
            Some(entry.line),
            format!(
                "`address {}` in network.{name} on a cluster that spans hosts: the node binds \
                 and advertises every interface; {trap}",
                entry.value().unwrap_or("any")
            ),
            ADDRESS_FIX,
        ));
    } else if listener.get("address").is_none() {
        out.push(problem(
            Some(listener.line),
            format!(
                "no `address` in network.{name} on a cluster that spans hosts: the server then \
                 binds and advertises every interface (as `address any`); {trap}"
            ),
            ADDRESS_FIX,
        ));
    }
}

fn heartbeat_mode(heartbeat: &Stanza, out: &mut Vec<Problem>) {
    match heartbeat.get("mode") {
        Some(entry) if entry.value() == Some("mesh") => {}
        Some(entry) => out.push(problem(
            Some(entry.line),
            format!(
                "`mode {}` in network.heartbeat: a swarm overlay network carries no multicast, \
                 so the nodes never hear each other",
                entry.value().unwrap_or_default()
            ),
            "`mode mesh` (the operator introduces the nodes with tip; drop \
             multicast-group)",
        )),
        None => out.push(problem(
            Some(heartbeat.line),
            "no `mode` in network.heartbeat: the server refuses to start without one",
            "add `mode mesh`",
        )),
    }
}

/// `namespace test` → `namespace`, `storage-engine device` under it →
/// `namespace.storage-engine`.
fn enterprise_only(stanza: &Stanza, path: &str, out: &mut Vec<Problem>) {
    let listed = |name: &str| {
        ENTERPRISE_ONLY
            .iter()
            .any(|(p, n)| *p == path && *n == name)
    };
    for entry in &stanza.entries {
        if listed(&entry.key) {
            out.push(enterprise_problem(entry.line, path, &entry.key));
        }
    }
    for child in &stanza.children {
        if listed(&child.name) {
            out.push(enterprise_problem(child.line, path, &child.name));
            continue;
        }
        if stanza.name == "namespace"
            && child.name == "storage-engine"
            && child.arg.as_deref() == Some("pmem")
        {
            out.push(enterprise_problem(child.line, path, "storage-engine pmem"));
            continue;
        }
        let sub = if path.is_empty() {
            child.name.clone()
        } else {
            format!("{path}.{}", child.name)
        };
        enterprise_only(child, &sub, out);
    }
}

fn enterprise_problem(line: usize, path: &str, name: &str) -> Problem {
    let place = if path.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in {path}")
    };
    problem(
        Some(line),
        format!(
            "`{name}` {place} is enterprise-only: a Community Edition server exits at start \
             (\"'{name}' is enterprise-only\")"
        ),
        "remove the line, or run an Enterprise image (aerospike.cluster.edition=enterprise, \
         e.g. aerospike/aerospike-server-enterprise)",
    )
}

fn replication(config: &ServerConfig, ctx: &CheckContext, out: &mut Vec<Problem>) {
    for ns in config.namespaces() {
        let name = ns.arg.as_deref().unwrap_or_default();
        let (rf, line, written) = match ns.get("replication-factor") {
            Some(entry) => match entry.value().and_then(|v| v.parse::<u32>().ok()) {
                Some(rf) => (rf, entry.line, true),
                None => {
                    out.push(problem(
                        Some(entry.line),
                        format!(
                            "`replication-factor {}` in namespace {name} is not a number",
                            entry.values.join(" ")
                        ),
                        "write a number from 1 to the replicas",
                    ));
                    continue;
                }
            },
            None => (2, ns.line, false),
        };
        if rf > u32::from(ctx.replicas) {
            let what = if written {
                format!("`replication-factor {rf}`")
            } else {
                "replication-factor 2 (the default: none is written)".to_string()
            };
            out.push(problem(
                Some(line),
                format!(
                    "{what} in namespace {name} exceeds the {} replicas: the cluster cannot \
                     keep that many copies",
                    ctx.replicas
                ),
                format!(
                    "set `replication-factor` to at most {}, or raise aerospike.cluster.replicas",
                    ctx.replicas
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CheckContext {
        CheckContext {
            edition: Edition::Community,
            replicas: 3,
            service_port: 3000,
            heartbeat_port: 3002,
            fabric_port: 3001,
            multi_host: true,
        }
    }

    const EXAMPLE: &str = include_str!("../../crd-like-specs/examples/aerospike.conf");

    fn run(text: &str, ctx: &CheckContext) -> Vec<Problem> {
        check(&ServerConfig::parse(text).unwrap(), ctx)
    }

    #[test]
    fn the_examples_pass() {
        assert_eq!(run(EXAMPLE, &ctx()), vec![]);
        let device = include_str!("../../crd-like-specs/examples/aerospike-device.conf");
        assert_eq!(run(device, &ctx()), vec![]);
    }

    #[test]
    fn address_any_names_the_trap_and_the_line() {
        let text = EXAMPLE.replacen("\taddress eth0", "\taddress any", 2);
        let problems = run(&text, &ctx());
        assert_eq!(problems.len(), 2, "{problems:?}");
        let first = problems[0].to_string();
        assert!(
            first.contains("`address any` in network.service"),
            "{first}"
        );
        assert!(first.contains("docker_gwbridge"), "{first}");
        assert!(
            first.contains("fix: bind the overlay: `address eth0`"),
            "{first}"
        );
        assert!(problems[1].message.contains("network.heartbeat"));
        let line = text
            .lines()
            .position(|l| l.contains("address any"))
            .unwrap()
            + 1;
        assert_eq!(problems[0].line, Some(line));
        // One host: no trap.
        let one = CheckContext {
            multi_host: false,
            ..ctx()
        };
        assert_eq!(run(&text, &one), vec![]);
        // No address at all is the same trap.
        let text = EXAMPLE.replace("\t\taddress eth0\n", "");
        let problems = run(&text, &ctx());
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().all(|p| p.message.contains("no `address`")));
    }

    #[test]
    fn cluster_name_multicast_ports_and_rf() {
        let text = EXAMPLE
            .replace("\tcluster-name aerospike-swarm\n", "")
            .replace("mode mesh", "mode multicast")
            .replace("port 3002", "port 4002")
            .replace("replication-factor 2", "replication-factor 4");
        let problems = run(&text, &ctx());
        let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 4, "{all:#?}");
        assert!(all[0].contains("no `cluster-name` in service"));
        assert!(all[1].contains("`mode multicast`") && all[1].contains("fix: `mode mesh`"));
        assert!(all[2].contains("`port 4002` in network.heartbeat"));
        assert!(all[2].contains("aerospike.cluster.heartbeat-port is 3002"));
        assert!(all[3].contains("`replication-factor 4` in namespace test exceeds the 3"));
        // The default RF 2 on one node.
        let text = EXAMPLE.replace("\treplication-factor 2\n", "");
        let one = CheckContext {
            replicas: 1,
            multi_host: false,
            ..ctx()
        };
        let problems = run(&text, &one);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("the default"));
    }

    #[test]
    fn enterprise_only_lines_on_community() {
        let text = EXAMPLE
            .replace(
                "\treplication-factor 2\n",
                "\treplication-factor 2\n\track-id 1\n",
            )
            .replace("\t\tdata-size 1G", "\t\tdata-size 1G\n\t\tcompression lz4")
            + "security {\n}\n";
        let problems = run(&text, &ctx());
        let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{all:#?}");
        assert!(all[0].contains("`rack-id` in namespace is enterprise-only"));
        assert!(all[1].contains("`compression` in namespace.storage-engine"));
        assert!(all[2].contains("`security` at the top level"));
        let ee = CheckContext {
            edition: Edition::Enterprise,
            ..ctx()
        };
        assert_eq!(run(&text, &ee), vec![]);
    }

    #[test]
    fn missing_contexts_have_no_line() {
        let problems = run("namespace test {\n storage-engine memory\n}\n", &ctx());
        assert!(problems.iter().take(2).all(|p| p.line.is_none()));
        assert!(problems[0].to_string().starts_with("no `"));
    }
}
