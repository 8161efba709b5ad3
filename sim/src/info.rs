//! Info command handlers: turn one parsed command into its reply value,
//! with the real server's reply strings.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::json;

use crate::command::{append_reply_line, split_commands, Command};
use crate::ids::NodeId;
use crate::partitions::N_PARTITIONS;
use crate::state::{Edition, NodeState};

/// What the server answers an empty request with: its "default" values
/// (the entries `as_info_init` registers with `def = true`, limited to the
/// ones the sim models).
pub const DEFAULT_COMMANDS: &[&str] = &[
    "node",
    "build",
    "version",
    "edition",
    "features",
    "partition-generation",
    "services",
    "services-alumni",
    "statistics",
];

/// 7.1's reply to a `tip` it refuses: the same seed again, or a missing or
/// bad `host`/`port` (thr_info.c `info_command_tip`; FIELD-NOTES section 3).
pub const TIP_ERROR: &str = "error";

/// Reply of 7.1 and later servers to a command they do not have: an
/// "invalid request" error (code 4), which the official clients raise as
/// `InvalidRequest`. Earlier servers leave such commands out of the reply.
pub const UNRECOGNIZED: &str = "ERROR:4:unrecognized command";

const FEATURES: &str = "batch-index;blob-bits;cdt-list;cdt-map;cluster-stable;float;geo;\
peers;pipelining;relaxed-sc;replicas;replicas-all;replicas-master;truncate-namespace;udf";

/// Answers a whole request body: one reply line per command, or the
/// default set for an empty request. Every command is logged with its peer.
pub fn handle_request(
    state: &mut NodeState,
    body: &[u8],
    peer: SocketAddr,
    now: Instant,
) -> Vec<u8> {
    let lines = split_commands(body);
    let defaults: Vec<&[u8]> = DEFAULT_COMMANDS.iter().map(|c| c.as_bytes()).collect();
    let commands = if lines.is_empty() { defaults } else { lines };
    let mut reply = Vec::new();
    for raw in commands {
        let text = String::from_utf8_lossy(raw);
        state
            .events()
            .emit("info", json!({"peer": peer.to_string(), "command": text}));
        match answer(state, &Command::parse(&text), now) {
            Some(value) => append_reply_line(&mut reply, raw, &value),
            None if state.settings.build_at_least(7, 1) => {
                append_reply_line(&mut reply, raw, UNRECOGNIZED)
            }
            // Before 7.1 the server skips commands it does not have.
            None => {}
        }
    }
    state.counters.info_complete += 1;
    reply
}

/// Answers one command; `None` for a command the server does not have.
pub fn answer(state: &mut NodeState, command: &Command<'_>, now: Instant) -> Option<String> {
    match (command.name, command.subtree) {
        ("namespace", Some(ns)) => return Some(namespace_stats(state, ns)),
        (_, Some(_)) => return None,
        _ => {}
    }
    let value = match command.name {
        "node" | "name" => state.id.to_string(),
        "build" => state.settings.build.clone(),
        "version" => format!(
            "{} build {}",
            state.settings.edition.long_name(),
            state.settings.build
        ),
        "edition" => state.settings.edition.long_name().to_string(),
        "status" => "ok".to_string(),
        "partitions" => N_PARTITIONS.to_string(),
        "features" => FEATURES.to_string(),
        "cluster-name" => state
            .config
            .cluster_name
            .clone()
            .unwrap_or_else(|| "null".to_string()),
        "partition-generation" => state.cluster_generation.to_string(),
        "statistics" => statistics(state, now),
        "namespaces" => state
            .namespaces
            .iter()
            .map(|ns| ns.config.name.clone())
            .collect::<Vec<_>>()
            .join(";"),
        // service_list.c: `service` joins the endpoints with ';',
        // `service-clear-std` with ','.
        "service" => state.service_endpoints().join(";"),
        "service-clear-std" => state.service_endpoints().join(","),
        "services" => state.services().join(";"),
        "services-alumni" => state.services_alumni().join(";"),
        "services-alumni-reset" => {
            state.reset_alumni();
            "ok".to_string()
        }
        "peers-clear-std" => {
            let peers = state.peers_for_clients();
            peer_list(state.peers_generation, &peers)
        }
        "alumni-clear-std" => peer_list(state.peers_generation, &state.alumni_for_clients()),
        "peers-generation" => {
            state.peers_for_clients();
            state.peers_generation.to_string()
        }
        "cluster-stable" => cluster_stable(state, command),
        "replicas" => replicas(state),
        "tip" => tip(state, command),
        "tip-clear" => tip_clear(state, command),
        "recluster" => {
            if state.request_recluster() {
                "ok".to_string()
            } else {
                "ignored-by-non-principal".to_string()
            }
        }
        "get-config" | "config-get" => get_config(state, command),
        "set-config" | "config-set" => set_config(state, command),
        "racks" => {
            if state.settings.edition == Edition::Community {
                return Some(state.settings.enterprise_only_reply().to_string());
            }
            racks(state)
        }
        "quiesce" | "quiesce-undo" => {
            if state.settings.edition == Edition::Community {
                return Some(state.settings.enterprise_only_reply().to_string());
            }
            let pending = command.name == "quiesce";
            if state.quiesce_pending != pending {
                state.quiesce_pending = pending;
                let event = if pending { "quiesce" } else { "quiesce_undo" };
                state
                    .events()
                    .emit(event, json!({"pending_quiesce": pending}));
            }
            "ok".to_string()
        }
        _ => return None,
    };
    Some(value)
}

fn bool_text(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

fn statistics(state: &NodeState, now: Instant) -> String {
    let (size, key, principal) = match &state.cluster {
        Some(c) => (
            c.members.len(),
            format!("{:X}", c.key),
            NodeId(c.principal).to_string(),
        ),
        None => (0, "0".to_string(), "0".to_string()),
    };
    let fields: Vec<(&str, String)> = vec![
        ("cluster_size", size.to_string()),
        ("cluster_key", key),
        ("cluster_generation", state.cluster_generation.to_string()),
        ("cluster_principal", principal.clone()),
        ("cluster_integrity", bool_text(state.integrity()).into()),
        ("cluster_is_member", bool_text(state.is_member()).into()),
        ("cluster_duplicate_nodes", "null".into()),
        ("cluster_clock_skew_stop_writes_sec", "0".into()),
        ("cluster_clock_skew_ms", "0".into()),
        ("cluster_clock_skew_outliers", "null".into()),
        ("uptime", state.uptime(now).to_string()),
        (
            "objects",
            (0..state.namespaces.len())
                .map(|i| state.objects(i).total)
                .sum::<usize>()
                .to_string(),
        ),
        ("tombstones", "0".into()),
        (
            "client_connections",
            state.counters.client_connections.to_string(),
        ),
        (
            "heartbeat_connections",
            state.counters.heartbeat_connections.to_string(),
        ),
        (
            "heartbeat_received_self",
            state.counters.heartbeat_received_self.to_string(),
        ),
        (
            "heartbeat_received_foreign",
            state.counters.heartbeat_received_foreign.to_string(),
        ),
        ("info_complete", state.counters.info_complete.to_string()),
        ("paxos_principal", principal),
        (
            "time_since_rebalance",
            now.duration_since(state.last_rebalance)
                .as_secs()
                .to_string(),
        ),
        ("migrate_allowed", bool_text(state.migrate_allowed()).into()),
        (
            "migrate_partitions_remaining",
            state.migrate_partitions_remaining().to_string(),
        ),
    ];
    join_fields(&fields)
}

fn join_fields(fields: &[(&str, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn namespace_stats(state: &NodeState, name: &str) -> String {
    let Some(ns) = state.namespaces.iter().find(|ns| ns.config.name == name) else {
        // The tree lookup answers this for a name it does not know.
        return "type=unknown".to_string();
    };
    let members = state.cluster.as_ref().map_or(0, |c| c.members.len());
    let effective_rf = if members == 0 {
        0
    } else {
        (ns.config.replication_factor as usize).min(members)
    };
    let nodes_quiesced = state.cluster.as_ref().map_or(0, |c| c.quiesced.len());
    let index = state
        .namespaces
        .iter()
        .position(|n| n.config.name == name)
        .unwrap_or(0);
    let objects = state.objects(index);
    let mut fields: Vec<(&str, String)> = vec![
        ("ns_cluster_size", members.to_string()),
        ("effective_replication_factor", effective_rf.to_string()),
        ("objects", objects.total.to_string()),
        ("master_objects", objects.master.to_string()),
        ("prole_objects", objects.prole.to_string()),
        ("migrate_tx_partitions_initial", ns.tx_initial.to_string()),
        (
            "migrate_tx_partitions_remaining",
            ns.tx_remaining.to_string(),
        ),
        ("migrate_rx_partitions_initial", ns.rx_initial.to_string()),
        (
            "migrate_rx_partitions_remaining",
            ns.rx_remaining.to_string(),
        ),
        ("migrate_records_skipped", "0".into()),
        ("unavailable_partitions", "0".into()),
        ("dead_partitions", ns.dead.count().to_string()),
        ("pending_quiesce", bool_text(state.quiesce_pending).into()),
        (
            "effective_is_quiesced",
            bool_text(state.effectively_quiesced()).into(),
        ),
        ("nodes_quiesced", nodes_quiesced.to_string()),
        // Sim-only test oracle (no real server has it; the operator never
        // reads it): the data lineage, so a test can tell a whole-cluster
        // loss (a new lineage) from a restart that kept the data.
        (
            "sim_lineage",
            state
                .lineage()
                .map_or(String::new(), |l| format!("{:x}", l.id)),
        ),
    ];
    for counter in crate::state::DATA_COUNTERS {
        fields.push((counter, state.transactions(index, counter).to_string()));
    }
    // The usual config echo: every line of the namespace stanza, with the
    // live value of a parameter changed by `set-config`.
    let live = state.config.namespaces.iter().find(|n| n.name == name);
    let mut echo = String::new();
    for (key, value) in &ns.config.echo {
        let live_value = live.and_then(|live| match key.as_str() {
            "replication-factor" => Some(live.replication_factor.to_string()),
            "default-ttl" => Some(live.default_ttl.to_string()),
            "nsup-period" => Some(live.nsup_period.to_string()),
            "rack-id" => Some(live.rack_id.to_string()),
            _ => None,
        });
        let value = live_value.as_ref().unwrap_or(value);
        echo.push(';');
        echo.push_str(key);
        echo.push('=');
        echo.push_str(value);
    }
    if !ns.config.echo.iter().any(|(k, _)| k == "storage-engine") {
        fields.push(("storage-engine", ns.config.storage_engine.clone()));
    }
    let mut out = join_fields(&fields);
    out.push_str(&echo);
    out
}

/// The reply of `set-config` to anything it refuses: a parameter the sim
/// does not model, a bad value, an unknown context or namespace, a missing
/// `context`, an Enterprise-only parameter on Community (cfg_info.c
/// `cfg_set` answers a bare `error` to all of them).
pub const SET_CONFIG_ERROR: &str = "error";

/// `get-config` with parameters but no `context=` (cfg_info.c).
pub const GET_CONFIG_BAD_PARAMETER: &str = "Error::invalid get-config parameter";
/// `get-config` with a context the server does not have (cfg_info.c).
pub const GET_CONFIG_BAD_CONTEXT: &str = "Error::invalid context";
/// `get-config:context=namespace` without `id=` (cfg_info.c).
pub const GET_CONFIG_BAD_ID: &str = "Error::invalid id";
/// `get-config:context=namespace;id=<unknown>` (cfg_info.c
/// `cfg_get_namespace`).
pub const GET_CONFIG_NO_NAMESPACE: &str = "ERROR::namespace not found";

/// `get-config[:context=service|network|namespace;id=NS]`: the context's
/// parameters as `key=value;...`, live values included; without
/// parameters, service then network.
fn get_config(state: &NodeState, command: &Command<'_>) -> String {
    let params = command.params.unwrap_or("");
    if params.is_empty() {
        return format!("{};{}", service_config(state), network_config(state));
    }
    let Some(context) = command.param("context") else {
        return GET_CONFIG_BAD_PARAMETER.to_string();
    };
    match context {
        "service" => service_config(state),
        "network" => network_config(state),
        "namespace" => {
            let Some(id) = command.param("id") else {
                return GET_CONFIG_BAD_ID.to_string();
            };
            namespace_config(state, id).unwrap_or_else(|| GET_CONFIG_NO_NAMESPACE.to_string())
        }
        _ => GET_CONFIG_BAD_CONTEXT.to_string(),
    }
}

/// The service context, in cfg_info.c `cfg_get_service` order; values the
/// sim does not model are the server's defaults.
fn service_config(state: &NodeState) -> String {
    let config = &state.config;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fields: Vec<(&str, String)> = vec![
        ("advertise-ipv6", "false".into()),
        ("auto-pin", "none".into()),
        ("batch-index-threads", cpus.to_string()),
        ("batch-max-buffers-per-queue", "255".into()),
        ("batch-max-requests", "5000".into()),
        ("batch-max-unused-buffers", "256".into()),
        (
            "cluster-name",
            config.cluster_name.clone().unwrap_or_else(|| "null".into()),
        ),
        ("debug-allocations", "none".into()),
        ("disable-udf-execution", "false".into()),
        ("enable-benchmarks-fabric", "false".into()),
        ("enable-health-check", "false".into()),
        ("enable-hist-info", "false".into()),
        ("enforce-best-practices", "false".into()),
        ("indent-allocations", "false".into()),
        ("info-max-ms", "10000".into()),
        ("info-threads", "16".into()),
        ("keep-caps-ssd-health", "false".into()),
        ("log-local-time", "false".into()),
        ("log-millis", "false".into()),
        ("microsecond-histograms", "false".into()),
        ("migrate-fill-delay", "0".into()),
        ("migrate-max-num-incoming", "4".into()),
        ("migrate-threads", "1".into()),
        ("min-cluster-size", "1".into()),
        ("node-id", state.id.to_string()),
        ("node-id-interface", "null".into()),
        ("os-group-perms", "false".into()),
        ("pidfile", "null".into()),
        ("proto-fd-idle-ms", "0".into()),
        ("proto-fd-max", config.proto_fd_max.to_string()),
        ("query-max-done", "100".into()),
        ("query-threads-limit", "128".into()),
        ("run-as-daemon", "true".into()),
        ("salt-allocations", "false".into()),
        ("service-threads", cpus.to_string()),
        ("sindex-builder-threads", "4".into()),
        ("sindex-gc-period", "10".into()),
        ("stay-quiesced", "false".into()),
        ("ticker-interval", "10".into()),
        ("transaction-max-ms", "1000".into()),
        ("transaction-retry-ms", "1002".into()),
        ("vault-ca", "null".into()),
        ("vault-path", "null".into()),
        ("vault-token-file", "null".into()),
        ("vault-url", "null".into()),
        ("work-directory", "/opt/aerospike".into()),
    ];
    join_fields(&fields)
}

fn address_text(address: &crate::config::Address) -> String {
    match address {
        crate::config::Address::Any => "any".to_string(),
        crate::config::Address::Ip(ip) => ip.to_string(),
        crate::config::Address::Interface(name) => name.clone(),
    }
}

/// The network context: the keys the sim models (ports, addresses,
/// heartbeat mode and timing, seeds).
fn network_config(state: &NodeState) -> String {
    let config = &state.config;
    let hb = &config.heartbeat;
    let mut fields: Vec<(&str, String)> = vec![
        ("service.access-port", "0".into()),
        ("service.address", address_text(&config.service_address)),
        ("service.alternate-access-port", "0".into()),
        ("service.port", config.service_port.to_string()),
        ("service.tls-port", "0".into()),
        ("service.disable-localhost", "false".into()),
        ("heartbeat.mode", "mesh".into()),
        ("heartbeat.address", address_text(&hb.address)),
        ("heartbeat.port", hb.port.to_string()),
    ];
    for (host, port) in &hb.seeds {
        fields.push(("heartbeat.mesh-seed-address-port", format!("{host}:{port}")));
    }
    fields.extend([
        ("heartbeat.interval", hb.interval_ms.to_string()),
        ("heartbeat.timeout", hb.timeout.to_string()),
        ("heartbeat.connect-timeout-ms", "500".into()),
        ("heartbeat.protocol", "v3".into()),
        ("fabric.address", address_text(&config.fabric_address)),
        ("fabric.port", config.fabric_port.to_string()),
        ("info.port", config.info_port.unwrap_or(0).to_string()),
    ]);
    join_fields(&fields)
}

/// The namespace context, in the server's order (the 7.x keys of
/// cfg_info.c `cfg_get_namespace`), live values included; `None` for a
/// namespace this node does not have.
fn namespace_config(state: &NodeState, name: &str) -> Option<String> {
    let ns = state.config.namespaces.iter().find(|ns| ns.name == name)?;
    let enterprise = state.settings.enterprise();
    let fields: Vec<(&str, String)> = vec![
        (
            "allow-ttl-without-nsup",
            bool_text(ns.allow_ttl_without_nsup).into(),
        ),
        ("auto-revive", "false".into()),
        ("background-query-max-rps", "10000".into()),
        ("conflict-resolution-policy", "generation".into()),
        ("conflict-resolve-writes", "false".into()),
        ("default-read-touch-ttl-pct", "0".into()),
        ("default-ttl", ns.default_ttl.to_string()),
        ("disable-cold-start-eviction", "false".into()),
        ("disable-write-dup-res", "false".into()),
        ("disallow-expunge", "false".into()),
        ("disallow-null-setname", "false".into()),
        ("enable-benchmarks-batch-sub", "false".into()),
        ("enable-benchmarks-ops-sub", "false".into()),
        ("enable-benchmarks-read", "false".into()),
        ("enable-benchmarks-udf", "false".into()),
        ("enable-benchmarks-udf-sub", "false".into()),
        ("enable-benchmarks-write", "false".into()),
        ("enable-hist-proxy", "false".into()),
        ("evict-hist-buckets", "10000".into()),
        ("evict-indexes-memory-pct", "0".into()),
        ("evict-tenths-pct", "5".into()),
        ("force-long-queries", "false".into()),
        ("ignore-migrate-fill-delay", "false".into()),
        ("index-stage-size", "134217728".into()),
        ("indexes-memory-budget", "0".into()),
        ("inline-short-queries", "false".into()),
        ("max-record-size", "1048576".into()),
        ("migrate-order", "5".into()),
        ("migrate-retransmit-ms", "5000".into()),
        ("migrate-sleep", "1".into()),
        ("nsup-hist-period", "3600".into()),
        ("nsup-period", ns.nsup_period.to_string()),
        ("nsup-threads", "1".into()),
        ("partition-tree-sprigs", "256".into()),
        // Enterprise builds default it to true (cfg_ee.c).
        ("prefer-uniform-balance", bool_text(enterprise).into()),
        ("rack-id", ns.rack_id.to_string()),
        ("read-consistency-level-override", "off".into()),
        ("reject-non-xdr-writes", "false".into()),
        ("reject-xdr-writes", "false".into()),
        ("replication-factor", ns.replication_factor.to_string()),
        ("sindex-stage-size", "134217728".into()),
        ("single-query-threads", "4".into()),
        ("stop-writes-sys-memory-pct", "90".into()),
        (
            "strong-consistency",
            bool_text(ns.strong_consistency).into(),
        ),
        ("strong-consistency-allow-expunge", "false".into()),
        ("tomb-raider-eligible-age", "86400".into()),
        ("tomb-raider-period", "86400".into()),
        ("transaction-pending-limit", "20".into()),
        ("truncate-threads", "4".into()),
        ("write-commit-level-override", "off".into()),
        ("xdr-bin-tombstone-ttl", "86400".into()),
        ("xdr-tomb-raider-period", "120".into()),
        ("xdr-tomb-raider-threads", "1".into()),
        ("geo2dsphere-within.strict", "true".into()),
        ("geo2dsphere-within.min-level", "1".into()),
        ("geo2dsphere-within.max-level", "20".into()),
        ("geo2dsphere-within.max-cells", "12".into()),
        ("geo2dsphere-within.level-mod", "1".into()),
        ("geo2dsphere-within.earth-radius-meters", "6371000".into()),
        ("index-type", "shmem".into()),
        ("sindex-type", "shmem".into()),
        ("storage-engine", ns.storage_engine.clone()),
    ];
    let mut out = join_fields(&fields);
    // The storage stanza's own lines, as the echo of `namespace/<ns>` has them.
    for (key, value) in ns
        .echo
        .iter()
        .filter(|(k, _)| k.starts_with("storage-engine."))
    {
        out.push_str(&format!(";{key}={value}"));
    }
    Some(out)
}

/// The server's `cf_str_atoi`: an optionally signed decimal that fits 32 bits.
fn parse_c_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse::<i32>().ok().map(i64::from)
}

/// The server's boolean for `set-config`: a value starting with `true` or
/// `yes`, or with `false` or `no` (cfg_info.c compares prefixes).
fn parse_c_bool(text: &str) -> Option<bool> {
    if text.starts_with("true") || text.starts_with("yes") {
        Some(true)
    } else if text.starts_with("false") || text.starts_with("no") {
        Some(false)
    } else {
        None
    }
}

/// `set-config:context=...;<param>=<value>`: `ok` when the change was
/// applied (to this node's live config, until it restarts), otherwise
/// [`SET_CONFIG_ERROR`]. Modelled: service `proto-fd-max`; namespace
/// `replication-factor`, `default-ttl`, `nsup-period`,
/// `allow-ttl-without-nsup`, `rack-id` (Enterprise). Anything else is
/// refused.
fn set_config(state: &mut NodeState, command: &Command<'_>) -> String {
    let applied = match command.param("context") {
        Some("service") => set_service(state, command),
        Some("namespace") => set_namespace(state, command),
        // network, security, xdr: not modelled (security and xdr are
        // Enterprise-only too); unknown contexts and a missing context.
        _ => false,
    };
    state.events().emit(
        "set_config",
        json!({"params": command.params.unwrap_or(""), "applied": applied}),
    );
    if applied {
        "ok".to_string()
    } else {
        SET_CONFIG_ERROR.to_string()
    }
}

fn set_service(state: &mut NodeState, command: &Command<'_>) -> bool {
    let Some(value) = command.param("proto-fd-max") else {
        return false;
    };
    let range = crate::config::PROTO_FD_MAX_RANGE;
    match parse_c_int(value) {
        Some(v) if v >= i64::from(*range.start()) && v <= i64::from(*range.end()) => {
            state.config.proto_fd_max = v as u32;
            true
        }
        _ => false,
    }
}

/// The namespace parameters the sim models, checked in cfg_info.c
/// `cfg_set_namespace`'s order (the first one present is the one applied).
fn set_namespace(state: &mut NodeState, command: &Command<'_>) -> bool {
    let enterprise = state.settings.enterprise();
    let Some(id) = command.param("id") else {
        return false;
    };
    let Some(ns) = state.config.namespaces.iter_mut().find(|ns| ns.name == id) else {
        return false;
    };
    // `set=` selects a set's parameters, which the sim does not model.
    if command.param("set").is_some() {
        return false;
    }
    if let Some(value) = command.param("allow-ttl-without-nsup") {
        let Some(allow) = parse_c_bool(value) else {
            return false;
        };
        ns.allow_ttl_without_nsup = allow;
        return true;
    }
    if let Some(value) = command.param("default-ttl") {
        let Some(ttl) = crate::config::parse_seconds(value) else {
            return false;
        };
        // The server refuses a non-zero default-ttl while nsup is off.
        if ttl > crate::config::MAX_ALLOWED_TTL
            || (ttl != 0 && ns.nsup_period == 0 && !ns.allow_ttl_without_nsup)
        {
            return false;
        }
        ns.default_ttl = ttl;
        return true;
    }
    if let Some(value) = command.param("nsup-period") {
        let Some(period) = crate::config::parse_seconds(value) else {
            return false;
        };
        ns.nsup_period = period;
        return true;
    }
    if let Some(value) = command.param("rack-id") {
        if !enterprise {
            return false;
        }
        return match parse_c_int(value) {
            Some(v) if (0..=i64::from(crate::config::MAX_RACK_ID)).contains(&v) => {
                ns.rack_id = v as u32;
                true
            }
            _ => false,
        };
    }
    if let Some(value) = command.param("replication-factor") {
        if ns.strong_consistency {
            return false;
        }
        let max = i64::from(crate::config::max_cluster_size(enterprise));
        return match parse_c_int(value) {
            Some(v) if (1..=max).contains(&v) => {
                ns.replication_factor = v as u32;
                true
            }
            _ => false,
        };
    }
    false
}

/// `racks:` on Enterprise: every namespace's members in rack 0 (the sim
/// has no rack awareness).
fn racks(state: &NodeState) -> String {
    let members: Vec<String> = state
        .cluster
        .as_ref()
        .map(|c| c.members.iter().map(|m| NodeId(*m).to_string()).collect())
        .unwrap_or_default();
    state
        .namespaces
        .iter()
        .map(|ns| format!("ns={}:rack_0={}", ns.config.name, members.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

/// The `cluster-stable` error replies of one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StableErrors {
    /// Not in an agreed cluster, or migrations pending.
    pub unstable: &'static str,
    /// `size=` differs from the cluster size.
    pub not_size: &'static str,
    /// `size=` is not a number.
    pub bad_size: &'static str,
    /// `ignore-migrations=` is not a boolean.
    pub bad_ignore: &'static str,
    /// `namespace=` names no namespace.
    pub unknown_namespace: &'static str,
    /// `ignore-migrations` also takes `yes`/`no`.
    pub yes_no: bool,
}

/// 7.1 and earlier (measured on 7.1.0.23, FIELD-NOTES section 3).
pub const STABLE_7_1: StableErrors = StableErrors {
    unstable: "ERROR::unstable-cluster",
    not_size: "ERROR::cluster-not-specified-size",
    bad_size: "ERROR::bad-size",
    bad_ignore: "ERROR::bad-ignore-migrations",
    unknown_namespace: "ERROR::unknown-namespace",
    yes_no: true,
};

/// 7.2 and later (read in the server source, FIELD-NOTES section 3). The
/// parameter errors' 7.2 text was not checked: the sim answers them with
/// the generic parameter error code 4.
pub const STABLE_7_2: StableErrors = StableErrors {
    unstable: "ERROR:7:unstable cluster",
    not_size: "ERROR:7:cluster not specified size",
    bad_size: "ERROR:4:bad size",
    bad_ignore: "ERROR:4:bad ignore-migrations",
    unknown_namespace: "ERROR::unknown-namespace",
    yes_no: false,
};

/// `cluster-stable[:size=N;ignore-migrations=bool;namespace=NS]`, checked
/// in the order the server checks: an agreed cluster first, then size, then
/// migrations (of this node, or of one namespace including its dead and
/// unavailable partitions).
fn cluster_stable(state: &NodeState, command: &Command<'_>) -> String {
    let errors = if state.settings.replies_7_2() {
        STABLE_7_2
    } else {
        STABLE_7_1
    };
    let Some(cluster) = state.cluster.as_ref().filter(|_| state.migrate_allowed()) else {
        return errors.unstable.to_string();
    };
    if let Some(size) = command.param("size") {
        // The server parses an unsigned 32-bit number, so `size=0` is a
        // size, just never the cluster's.
        let Ok(size) = size.parse::<u32>() else {
            return errors.bad_size.to_string();
        };
        if size as usize != cluster.members.len() {
            return errors.not_size.to_string();
        }
    }
    let ignore_migrations = match command.param("ignore-migrations") {
        None | Some("false") => false,
        Some("true") => true,
        Some("no") if errors.yes_no => false,
        Some("yes") if errors.yes_no => true,
        Some(_) => return errors.bad_ignore.to_string(),
    };
    if !ignore_migrations {
        match command.param("namespace") {
            None => {
                if state.migrate_partitions_remaining() > 0 {
                    return errors.unstable.to_string();
                }
            }
            Some(name) => {
                let Some(ns) = state.namespaces.iter().find(|ns| ns.config.name == name) else {
                    return errors.unknown_namespace.to_string();
                };
                if ns.rx_remaining + ns.tx_remaining + ns.dead.count() > 0 {
                    return errors.unstable.to_string();
                }
            }
        }
    }
    format!("{:X}", cluster.key)
}

fn tip(state: &mut NodeState, command: &Command<'_>) -> String {
    let host = command.param("host").filter(|h| !h.is_empty());
    let port = command
        .param("port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0);
    match (host, port) {
        (Some(host), Some(port)) if state.tip(host, port) => "ok".to_string(),
        _ => TIP_ERROR.to_string(),
    }
}

fn tip_clear(state: &mut NodeState, command: &Command<'_>) -> String {
    // Without a list the server fails having cleared nothing.
    let list = command.param("host-port-list").unwrap_or("");
    match state.tip_clear(list) {
        Ok(_) => "ok".to_string(),
        Err((cleared, not_found)) => format!("error: {cleared} cleared, {not_found} not found"),
    }
}

/// `replicas`: per namespace `<ns>:<regime>,<n>,<map 0>,...,<map n-1>`, each
/// map the base64 of a 512-byte bitmap of the partitions this node is
/// replica `i` of (bit `0x80 >> (pid % 8)` of byte `pid / 8`), as the
/// official clients parse it to build their partition tables. The regime is
/// always 0 (no strong consistency). Dead partitions are listed under
/// their final owners, as an AP server lists the empty partitions it
/// re-creates: a client reading a lost record gets "not found".
fn replicas(state: &NodeState) -> String {
    let mut out = Vec::new();
    for ns in &state.namespaces {
        let rf = ns.owners.rf();
        let mut maps = vec![vec![0u8; N_PARTITIONS / 8]; rf];
        for pid in 0..N_PARTITIONS {
            if let Some(index) = ns.owners.replica_index(pid, state.id) {
                maps[index][pid / 8] |= 0x80 >> (pid % 8);
            }
        }
        let encoded: Vec<String> = maps.iter().map(|m| base64(m)).collect();
        let mut entry = format!("{}:0,{}", ns.config.name, rf);
        for map in encoded {
            entry.push(',');
            entry.push_str(&map);
        }
        out.push(entry);
    }
    out.join(";")
}

/// Standard base64 with padding (RFC 4648), enough for `replicas`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `peers-clear-std` / `alumni-clear-std`:
/// `<generation>,3000,[[<node>,,[<addr>,<addr>:<port>]],...]`. As in
/// service_list.c `build_peers`: the default port printed is the literal
/// 3000 (not the configured service port), and `:3000` is stripped from
/// the addresses that use it; other ports stay.
fn peer_list(generation: u64, peers: &[(NodeId, Vec<String>)]) -> String {
    const DEFAULT_PORT: &str = "3000";
    let suffix = format!(":{DEFAULT_PORT}");
    let entries: Vec<String> = peers
        .iter()
        .map(|(id, services)| {
            let addresses: Vec<&str> = services
                .iter()
                .map(|s| s.strip_suffix(&suffix).unwrap_or(s))
                .collect();
            format!("[{id},,[{}]]", addresses.join(","))
        })
        .collect();
    format!("{generation},{DEFAULT_PORT},[{}]", entries.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, DEFAULT_CONFIG};
    use crate::events::EventLog;
    use crate::state::Settings;
    use std::time::Duration;

    fn node(edition: Edition) -> (NodeState, Instant) {
        let now = Instant::now();
        let settings = Settings {
            edition,
            ..Settings::default()
        };
        let config = Config::parse(DEFAULT_CONFIG).unwrap();
        let mut state = NodeState::new(NodeId(0xBB9), config, settings, EventLog::memory().0, now);
        state.set_addresses(crate::state::Addresses::single(
            "127.0.0.1".parse().unwrap(),
        ));
        (state, now)
    }

    fn ask(state: &mut NodeState, line: &str, now: Instant) -> String {
        answer(state, &Command::parse(line), now).unwrap_or_else(|| UNRECOGNIZED.to_string())
    }

    fn stat<'a>(stats: &'a str, key: &str) -> &'a str {
        stats
            .split(';')
            .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_else(|| panic!("{key} missing from {stats}"))
    }

    #[test]
    fn identity_commands() {
        let (mut s, now) = node(Edition::Community);
        assert_eq!(ask(&mut s, "node", now), "BB9");
        assert_eq!(ask(&mut s, "build", now), "7.1.0.0");
        assert_eq!(ask(&mut s, "edition", now), "Aerospike Community Edition");
        assert_eq!(
            ask(&mut s, "version", now),
            "Aerospike Community Edition build 7.1.0.0"
        );
        assert_eq!(ask(&mut s, "namespaces", now), "test");
        assert_eq!(ask(&mut s, "no-such-command", now), UNRECOGNIZED);
        assert_eq!(ask(&mut s, "service", now), "127.0.0.1:3000");
    }

    fn node_of_build(build: &str) -> (NodeState, Instant) {
        let (mut s, now) = node(Edition::Community);
        s.settings.build = build.to_string();
        let later = now + Duration::from_millis(400);
        s.tick(later);
        (s, later)
    }

    #[test]
    fn cluster_stable_replies_of_7_1() {
        for build in ["7.1.0.0", "7.1.0.23", "7.0.0.5", "6.4.0.7"] {
            let (mut s, now) = node(Edition::Community);
            s.settings.build = build.to_string();
            assert_eq!(
                ask(&mut s, "cluster-stable:size=1", now),
                "ERROR::unstable-cluster",
                "{build}"
            );
            let later = now + Duration::from_millis(400);
            s.tick(later);
            let key = ask(
                &mut s,
                "cluster-stable:size=1;ignore-migrations=false",
                later,
            );
            assert_eq!(
                u64::from_str_radix(&key, 16).unwrap(),
                s.cluster.as_ref().unwrap().key
            );
            assert_eq!(ask(&mut s, "cluster-stable", later), key);
            let cases = [
                ("cluster-stable:size=3", "ERROR::cluster-not-specified-size"),
                ("cluster-stable:size=0", "ERROR::cluster-not-specified-size"),
                ("cluster-stable:size=abc", "ERROR::bad-size"),
                ("cluster-stable:size=-1", "ERROR::bad-size"),
                (
                    "cluster-stable:ignore-migrations=maybe",
                    "ERROR::bad-ignore-migrations",
                ),
                (
                    "cluster-stable:namespace=nosuch",
                    "ERROR::unknown-namespace",
                ),
            ];
            for (command, reply) in cases {
                assert_eq!(ask(&mut s, command, later), reply, "{build} {command}");
            }
            // 7.1 also takes yes/no.
            assert_eq!(
                ask(&mut s, "cluster-stable:ignore-migrations=yes", later),
                key
            );
            assert_eq!(
                ask(&mut s, "cluster-stable:ignore-migrations=no", later),
                key
            );
            assert_eq!(ask(&mut s, "cluster-stable:namespace=test", later), key);
        }
    }

    #[test]
    fn cluster_stable_replies_of_7_2_and_later() {
        for build in ["7.2.0.1", "8.1.0.0"] {
            let (mut s, now) = node(Edition::Community);
            s.settings.build = build.to_string();
            assert_eq!(
                ask(&mut s, "cluster-stable:size=1", now),
                "ERROR:7:unstable cluster"
            );
            let (mut s, later) = node_of_build(build);
            let key = ask(
                &mut s,
                "cluster-stable:size=1;ignore-migrations=true",
                later,
            );
            assert_eq!(key, format!("{:X}", s.cluster.as_ref().unwrap().key));
            assert_eq!(
                ask(&mut s, "cluster-stable:size=3", later),
                "ERROR:7:cluster not specified size"
            );
            // Only true/false from 7.2 on.
            assert!(ask(&mut s, "cluster-stable:ignore-migrations=yes", later).starts_with("ERROR"));
            assert!(ask(&mut s, "cluster-stable:size=abc", later).starts_with("ERROR"));
        }
    }

    #[test]
    fn namespace_and_other_replies_of_7_1() {
        let (mut s, later) = node_of_build("7.1.0.0");
        let stats = ask(&mut s, "statistics", later);
        assert_eq!(stat(&stats, "cluster_size"), "1");
        assert_eq!(stat(&stats, "cluster_principal"), "BB9");
        assert_eq!(stat(&stats, "cluster_integrity"), "true");
        assert_eq!(stat(&stats, "migrate_allowed"), "true");
        assert_eq!(stat(&stats, "migrate_partitions_remaining"), "0");
        let ns = ask(&mut s, "namespace/test", later);
        assert_eq!(stat(&ns, "replication-factor"), "2");
        assert_eq!(stat(&ns, "effective_replication_factor"), "1");
        assert_eq!(stat(&ns, "storage-engine"), "memory");
        assert_eq!(ask(&mut s, "namespace/nosuch", later), "type=unknown");
        assert_eq!(
            ask(&mut s, "nosuch-command", later),
            "ERROR:4:unrecognized command"
        );
        assert_eq!(ask(&mut s, "services-alumni-reset", later), "ok");
        assert_eq!(ask(&mut s, "recluster:", later), "ok");
        assert_eq!(ask(&mut s, "service", later), "127.0.0.1:3000");
        assert_eq!(ask(&mut s, "service-clear-std", later), "127.0.0.1:3000");
    }

    #[test]
    fn several_addresses_in_service_replies() {
        let (mut s, later) = node_of_build("7.1.0.0");
        s.set_addresses(crate::state::Addresses {
            service: vec!["10.0.1.5".parse().unwrap(), "172.18.0.3".parse().unwrap()],
            heartbeat: vec![],
            fabric: vec![],
        });
        assert_eq!(
            ask(&mut s, "service", later),
            "10.0.1.5:3000;172.18.0.3:3000"
        );
        assert_eq!(
            ask(&mut s, "service-clear-std", later),
            "10.0.1.5:3000,172.18.0.3:3000"
        );
    }

    #[test]
    fn tips_and_tip_clear_of_7_1() {
        let (mut s, now) = node(Edition::Community);
        assert_eq!(ask(&mut s, "tip:host=127.0.0.1;port=3102", now), "ok");
        assert_eq!(ask(&mut s, "tip:host=127.0.0.1;port=3102", now), "error");
        assert_eq!(ask(&mut s, "tip:host=127.0.0.1", now), "error");
        assert_eq!(ask(&mut s, "tip:port=3102", now), "error");
        assert_eq!(ask(&mut s, "tip:host=127.0.0.1;port=0", now), "error");
        assert_eq!(ask(&mut s, "tip:host=127.0.0.1;port=x", now), "error");
        // Its own address and a port nobody listens on are accepted.
        assert_eq!(ask(&mut s, "tip:host=127.0.0.1;port=3002", now), "ok");
        assert_eq!(ask(&mut s, "tip:host=127.0.0.1;port=9", now), "ok");
        assert!(s.dial_targets().contains_key("127.0.0.1:3102"));
        assert!(
            !s.dial_targets().contains_key("127.0.0.1:3002"),
            "its own endpoint is never dialled"
        );
        assert_eq!(
            ask(&mut s, "tip-clear:host-port-list=127.0.0.1:3102", now),
            "ok"
        );
        assert_eq!(
            ask(&mut s, "tip-clear:host-port-list=127.0.0.1:3102", now),
            "error: 0 cleared, 1 not found"
        );
        assert_eq!(
            ask(
                &mut s,
                "tip-clear:host-port-list=127.0.0.1:9,127.0.0.1:3103",
                now
            ),
            "error: 1 cleared, 1 not found"
        );
        // `all` is not special in 7.1; empty or malformed lists clear nothing.
        assert_eq!(
            ask(&mut s, "tip-clear:host-port-list=all", now),
            "error: 0 cleared, 0 not found"
        );
        assert_eq!(
            ask(&mut s, "tip-clear:", now),
            "error: 0 cleared, 0 not found"
        );
        assert_eq!(
            ask(&mut s, "tip-clear:host-port-list=127.0.0.1", now),
            "error: 0 cleared, 0 not found"
        );
        assert_eq!(
            ask(&mut s, "tip-clear:host-port-list=127.0.0.1;3002", now),
            "error: 0 cleared, 0 not found"
        );
        assert!(!s.dial_targets().contains_key("127.0.0.1:3002"));
        assert_eq!(ask(&mut s, "services-alumni-reset", now), "ok");
        assert_eq!(ask(&mut s, "services", now), "");
    }

    #[test]
    fn quiesce_is_enterprise_only() {
        let (mut s, now) = node(Edition::Community);
        assert_eq!(ask(&mut s, "quiesce:", now), "ERROR:25:enterprise-only");
        assert_eq!(
            ask(&mut s, "quiesce-undo:", now),
            "ERROR:25:enterprise-only"
        );
        let (mut s, now) = node(Edition::Enterprise);
        assert_eq!(ask(&mut s, "quiesce:", now), "ok");
        let ns = ask(&mut s, "namespace/test", now);
        assert_eq!(stat(&ns, "pending_quiesce"), "true");
        assert_eq!(stat(&ns, "effective_is_quiesced"), "false");
        assert_eq!(ask(&mut s, "quiesce-undo:", now), "ok");
        // Not principal of anything yet: recluster is ignored.
        assert_eq!(ask(&mut s, "recluster:", now), "ignored-by-non-principal");
    }

    fn node_with(edition: Edition, build: &str, config: &str) -> (NodeState, Instant) {
        let now = Instant::now();
        let settings = Settings {
            edition,
            build: build.to_string(),
            ..Settings::default()
        };
        let config = Config::parse(config).unwrap();
        let state = NodeState::new(NodeId(0xBB9), config, settings, EventLog::memory().0, now);
        (state, now)
    }

    #[test]
    fn set_config_replies_measured_on_7_1() {
        let (mut s, now) = node(Edition::Community);
        let cases = [
            ("set-config:context=service;proto-fd-max=16000", "ok"),
            (
                "set-config:context=namespace;id=test;replication-factor=3",
                "ok",
            ),
            // nsup-period is 0 (the default): a non-zero default-ttl is refused.
            (
                "set-config:context=namespace;id=test;default-ttl=100",
                "error",
            ),
            ("set-config:context=namespace;id=test;rack-id=2", "error"),
        ];
        for (command, reply) in cases {
            assert_eq!(ask(&mut s, command, now), reply, "{command}");
        }
    }

    #[test]
    fn set_config_refuses_what_the_sim_does_not_model_and_bad_values() {
        let (mut s, now) = node(Edition::Community);
        for command in [
            // Out of range (1024 to 2097152) or not a number.
            "set-config:context=service;proto-fd-max=1023",
            "set-config:context=service;proto-fd-max=2097153",
            "set-config:context=service;proto-fd-max=lots",
            "set-config:context=service;proto-fd-max=",
            // Community's AS_CLUSTER_SZ is 8.
            "set-config:context=namespace;id=test;replication-factor=0",
            "set-config:context=namespace;id=test;replication-factor=9",
            "set-config:context=namespace;id=test;replication-factor=two",
            "set-config:context=namespace;id=test;default-ttl=soon",
            // Parameters the real server takes live but the sim does not model.
            "set-config:context=service;migrate-threads=2",
            "set-config:context=namespace;id=test;migrate-order=3",
            "set-config:context=namespace;id=test;set=s;stop-writes-count=1",
            "set-config:context=network;heartbeat.interval=200",
            // Enterprise-only parameters and contexts on Community.
            "set-config:context=namespace;id=test;prefer-uniform-balance=true",
            "set-config:context=security;session-ttl=600",
            "set-config:context=xdr;src-id=1",
            // Unknown context or namespace, missing context or id.
            "set-config:context=bogus;proto-fd-max=16000",
            "set-config:context=namespace;id=nosuch;replication-factor=2",
            "set-config:context=namespace;replication-factor=2",
            "set-config:proto-fd-max=16000",
            "set-config:",
            "set-config",
            "config-set:context=service",
        ] {
            assert_eq!(ask(&mut s, command, now), SET_CONFIG_ERROR, "{command}");
        }
        let service = ask(&mut s, "get-config:context=service", now);
        assert_eq!(stat(&service, "proto-fd-max"), "15000");
        let ns = ask(&mut s, "get-config:context=namespace;id=test", now);
        assert_eq!(stat(&ns, "replication-factor"), "2");
        assert_eq!(stat(&ns, "default-ttl"), "0");
        // config-set is the older name of the same command.
        assert_eq!(
            ask(
                &mut s,
                "config-set:context=service;proto-fd-max=2097152",
                now
            ),
            "ok"
        );
        assert_eq!(
            ask(&mut s, "set-config:context=service;proto-fd-max=1024", now),
            "ok"
        );
    }

    #[test]
    fn get_config_shows_the_live_values() {
        let (mut s, now) = node(Edition::Community);
        let service = ask(&mut s, "get-config:context=service", now);
        assert!(
            service.starts_with("advertise-ipv6=false;auto-pin=none;"),
            "{service}"
        );
        assert_eq!(stat(&service, "proto-fd-max"), "15000");
        assert_eq!(stat(&service, "cluster-name"), "aerospike");
        assert_eq!(stat(&service, "node-id"), "BB9");
        assert!(!service.ends_with(';'), "{service}");
        let ns = ask(&mut s, "get-config:context=namespace;id=test", now);
        assert!(ns.starts_with("allow-ttl-without-nsup=false;"), "{ns}");
        for (key, value) in [
            ("replication-factor", "2"),
            ("default-ttl", "0"),
            ("nsup-period", "0"),
            ("rack-id", "0"),
            ("strong-consistency", "false"),
            ("prefer-uniform-balance", "false"),
            ("storage-engine", "memory"),
        ] {
            assert_eq!(stat(&ns, key), value, "{key}");
        }
        for command in [
            "set-config:context=service;proto-fd-max=16000",
            "set-config:context=namespace;id=test;replication-factor=3",
            "set-config:context=namespace;id=test;nsup-period=1m",
            "set-config:context=namespace;id=test;default-ttl=100",
        ] {
            assert_eq!(ask(&mut s, command, now), "ok", "{command}");
        }
        let service = ask(&mut s, "get-config:context=service", now);
        assert_eq!(stat(&service, "proto-fd-max"), "16000");
        let ns = ask(&mut s, "get-config:context=namespace;id=test", now);
        assert_eq!(stat(&ns, "replication-factor"), "3");
        assert_eq!(stat(&ns, "nsup-period"), "60");
        assert_eq!(stat(&ns, "default-ttl"), "100");
        // namespace/<ns> echoes the live value; the partition map still
        // uses the RF the node started with.
        let stats = ask(&mut s, "namespace/test", now);
        assert_eq!(stat(&stats, "replication-factor"), "3");
        assert_eq!(s.namespaces[0].config.replication_factor, 2);
        // With nsup back to 0, default-ttl can go to 0 but not up again.
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;nsup-period=0",
                now
            ),
            "ok"
        );
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;default-ttl=200",
                now
            ),
            "error"
        );
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;default-ttl=0",
                now
            ),
            "ok"
        );
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;allow-ttl-without-nsup=true",
                now
            ),
            "ok"
        );
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;default-ttl=1d",
                now
            ),
            "ok"
        );
        let ns = ask(&mut s, "get-config:context=namespace;id=test", now);
        assert_eq!(stat(&ns, "default-ttl"), "86400");
        assert_eq!(stat(&ns, "allow-ttl-without-nsup"), "true");
        // Ten years at most.
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;default-ttl=3651d",
                now
            ),
            "error"
        );
    }

    #[test]
    fn get_config_error_forms() {
        let (mut s, now) = node(Edition::Community);
        let cases = [
            (
                "get-config:context=namespace;id=nosuch",
                GET_CONFIG_NO_NAMESPACE,
            ),
            ("get-config:context=namespace", GET_CONFIG_BAD_ID),
            ("get-config:context=bogus", GET_CONFIG_BAD_CONTEXT),
            ("get-config:id=test", GET_CONFIG_BAD_PARAMETER),
        ];
        for (command, reply) in cases {
            assert_eq!(ask(&mut s, command, now), reply, "{command}");
        }
        assert_eq!(GET_CONFIG_NO_NAMESPACE, "ERROR::namespace not found");
        // Without parameters: service, then network.
        let all = ask(&mut s, "get-config", now);
        assert_eq!(all, ask(&mut s, "get-config:", now));
        assert_eq!(all, ask(&mut s, "config-get", now));
        assert_eq!(stat(&all, "proto-fd-max"), "15000");
        assert_eq!(stat(&all, "service.port"), "3000");
        assert_eq!(stat(&all, "heartbeat.interval"), "150");
        let network = ask(&mut s, "get-config:context=network", now);
        assert_eq!(stat(&network, "heartbeat.mode"), "mesh");
        assert_eq!(stat(&network, "fabric.port"), "3001");
    }

    #[test]
    fn enterprise_takes_rack_id_and_a_larger_replication_factor() {
        let (mut s, now) = node(Edition::Enterprise);
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;rack-id=2",
                now
            ),
            "ok"
        );
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;rack-id=1000001",
                now
            ),
            "error"
        );
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;replication-factor=9",
                now
            ),
            "ok"
        );
        let ns = ask(&mut s, "get-config:context=namespace;id=test", now);
        assert_eq!(stat(&ns, "rack-id"), "2");
        assert_eq!(stat(&ns, "replication-factor"), "9");
        assert_eq!(stat(&ns, "prefer-uniform-balance"), "true");
        // Not modelled on Enterprise either.
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;prefer-uniform-balance=false",
                now
            ),
            "error"
        );
        // Strong consistency: replication-factor is not dynamic.
        let sc = DEFAULT_CONFIG.replace(
            "replication-factor 2",
            "replication-factor 2\n    strong-consistency true",
        );
        let (mut s, now) = node_with(Edition::Enterprise, "7.1.0.0", &sc);
        assert_eq!(
            ask(
                &mut s,
                "set-config:context=namespace;id=test;replication-factor=3",
                now
            ),
            "error"
        );
    }

    #[test]
    fn enterprise_only_replies_follow_the_build() {
        for (build, reply) in [
            ("7.1.0.23", "ERROR:25:enterprise-only"),
            ("7.0.0.5", "ERROR:25:enterprise-only"),
            ("7.2.0.0", "ERROR:25:enterprise only"),
            ("8.1.0.0", "ERROR:25:enterprise only"),
        ] {
            let (mut s, now) = node_with(Edition::Community, build, DEFAULT_CONFIG);
            for command in ["racks:", "racks", "quiesce:", "quiesce-undo:"] {
                assert_eq!(ask(&mut s, command, now), reply, "{build} {command}");
            }
        }
        let (mut s, now) = node_of_build("7.1.0.0");
        s.settings.edition = Edition::Enterprise;
        assert_eq!(ask(&mut s, "racks:", now), "ns=test:rack_0=BB9");
    }

    #[test]
    fn golden_reply_bodies() {
        let (mut s, now) = node(Edition::Community);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let reply = handle_request(&mut s, b"node\nbuild\n", peer, now);
        assert_eq!(reply, b"node\tBB9\nbuild\t7.1.0.0\n");
        // Unknown commands are answered too, echoing the bytes as sent.
        let reply = handle_request(&mut s, b"bogus:x=\xff\n", peer, now);
        assert_eq!(reply, b"bogus:x=\xff\tERROR:4:unrecognized command\n");
        // An empty request gets the default set, in order.
        let reply = handle_request(&mut s, b"", peer, now);
        let names: Vec<String> = crate::command::parse_reply(&reply)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, DEFAULT_COMMANDS);
        assert_eq!(s.counters.info_complete, 3);
    }

    proptest::proptest! {
        // Each case builds a node (and forms its cluster): fewer cases keep
        // the suite fast while still covering the parser paths.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn any_request_body_gets_one_line_per_command_and_no_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)
        ) {
            let (mut s, now) = node(Edition::Enterprise);
            let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
            let reply = handle_request(&mut s, &body, peer, now);
            let expected = split_commands(&body).len().max(if body.iter().all(|b| *b == b'\n') {
                DEFAULT_COMMANDS.len()
            } else {
                0
            });
            proptest::prop_assert_eq!(reply.iter().filter(|b| **b == b'\n').count(), expected);
        }

        #[test]
        fn command_shaped_noise_never_panics(
            name in "(tip|tip-clear|cluster-stable|namespace|quiesce|recluster|services|peers-clear-std|replicas|[a-z-]{1,10})",
            sep in "(:|/|)",
            params in "[a-z0-9=;:,.\\[\\]-]{0,40}",
        ) {
            let (mut s, now) = node(Edition::Community);
            let line = format!("{name}{sep}{params}");
            let _ = ask(&mut s, &line, now);
            s.tick(now + Duration::from_millis(400));
            let _ = ask(&mut s, &line, now + Duration::from_millis(400));
        }
    }

    #[test]
    fn servers_before_7_1_leave_unknown_commands_out() {
        let (mut s, now) = node(Edition::Community);
        s.settings.build = "6.4.0.7".to_string();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let reply = handle_request(&mut s, b"bogus\nbuild\nnamespace-typo/x\n", peer, now);
        assert_eq!(reply, b"build\t6.4.0.7\n");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn a_lone_node_is_master_of_every_partition() {
        let (mut s, now) = node(Edition::Community);
        let later = now + Duration::from_millis(400);
        s.tick(later);
        let reply = ask(&mut s, "replicas", later);
        let (ns, rest) = reply.split_once(':').unwrap();
        assert_eq!(ns, "test");
        let parts: Vec<&str> = rest.split(',').collect();
        assert_eq!(parts[0], "0", "regime");
        assert_eq!(parts[1], "1", "one replica in a cluster of one");
        // 512 bytes of 0xFF: 170 groups of 3 bytes ("////"), then 2 bytes ("//8=").
        assert_eq!(parts[2], format!("{}//8=", "////".repeat(170)));
    }

    #[test]
    fn peers_clear_std_format() {
        let (mut s, now) = node(Edition::Community);
        s.tick(now + Duration::from_millis(400));
        assert_eq!(ask(&mut s, "peers-clear-std", now), "1,3000,[]");
        assert_eq!(ask(&mut s, "alumni-clear-std", now), "1,3000,[]");
    }

    #[test]
    fn peer_lists_strip_the_literal_default_port_only() {
        let peers = vec![
            (
                NodeId(0xBB9),
                vec!["10.0.1.6:3000".to_string(), "10.215.0.3:3000".to_string()],
            ),
            (NodeId(0xBB8), vec!["127.0.0.2:23384".to_string()]),
        ];
        assert_eq!(
            peer_list(7, &peers),
            "7,3000,[[BB9,,[10.0.1.6,10.215.0.3]],[BB8,,[127.0.0.2:23384]]]"
        );
    }
}
