//! Reading `aerospike.conf`.
//!
//! The file is a tree of stanzas: `name [args] {` opens one, `}` closes it,
//! any other line is `key value...`, and `#` starts a comment. The sim reads
//! the parts it models (service node id, the service and heartbeat ports,
//! mesh seeds, heartbeat timing, namespaces and their replication factor) and
//! accepts every other line of a known context, as real configs carry many
//! tuning lines the sim has no use for. Anything malformed is an error that
//! names the line, and the process exits non-zero, as `asd` does.

use std::fmt;
use std::net::IpAddr;

use crate::ids::NodeId;

/// A fully validated node configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `service { node-id <hex> }`, when given.
    pub node_id: Option<NodeId>,
    /// `service { cluster-name <name> }`, when given.
    pub cluster_name: Option<String>,
    /// `network { service { address } }`.
    pub service_address: Address,
    /// `network { service { port } }`.
    pub service_port: u16,
    /// `network { fabric { port } }` (default 3001, as in the server).
    pub fabric_port: u16,
    /// `network { fabric { address } }`.
    pub fabric_address: Address,
    /// `network { info { port } }` (accepted; the sim serves info on the service port only).
    pub info_port: Option<u16>,
    /// `network { heartbeat { ... } }`.
    pub heartbeat: HeartbeatConfig,
    /// Every `namespace <name> { ... }`, in file order.
    pub namespaces: Vec<NamespaceConfig>,
    /// `service { proto-fd-max }` (default 15000, as in 7.x).
    pub proto_fd_max: u32,
    /// Lines a Community build refuses (`cfg_enterprise_only` in the
    /// server's cfg.c), in file order; see [`Config::check_edition`].
    pub enterprise_only: Vec<EditionLine>,
}

/// A config line whose acceptance depends on the edition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditionLine {
    /// 1-based line number.
    pub line: usize,
    /// The line's first token, as the server names it (`rack-id`,
    /// `storage-engine`, `tls`, ...).
    pub name: String,
    /// What a Community build says of it: `None` for an Enterprise-only
    /// line (`'<name>' is enterprise-only`), or the range error of a
    /// value Community's limits refuse (`replication-factor` above 8).
    pub community_error: Option<String>,
}

/// The heartbeat (mesh) settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Port heartbeats are accepted on.
    pub port: u16,
    /// `address`: an IP, an interface name, or any (also when absent).
    pub address: Address,
    /// Milliseconds between heartbeats.
    pub interval_ms: u64,
    /// Number of missed intervals after which a peer is gone.
    pub timeout: u64,
    /// `mesh-seed-address-port <host> <port>` lines.
    pub seeds: Vec<(String, u16)>,
}

/// A configured bind address, as the server reads `address` lines: `any`
/// (or no line, or an unspecified IP) means every interface; an IP literal
/// means that address; anything else is an interface name (`eth0`), whose
/// addresses are looked up at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Address {
    /// Every interface.
    #[default]
    Any,
    /// One IP address.
    Ip(IpAddr),
    /// An interface name.
    Interface(String),
}

/// One namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceConfig {
    /// Namespace name.
    pub name: String,
    /// `replication-factor` (default 2).
    pub replication_factor: u32,
    /// `storage-engine` kind: `memory`, `device` or `pmem`.
    pub storage_engine: String,
    /// `storage-engine device { file ...; filesize ...; flush-max-ms ... }`:
    /// where the namespace's partition copies persist (see
    /// [`crate::storage`]); `None` for memory (and pmem) namespaces.
    pub device: Option<DeviceConfig>,
    /// Every `key value` line of the stanza, echoed by `namespace/<ns>`
    /// (nested storage lines as `storage-engine.key`).
    pub echo: Vec<(String, String)>,
    /// `default-ttl` in seconds (default 0: records never expire).
    pub default_ttl: u32,
    /// `nsup-period` in seconds (default 0: no expiration thread).
    pub nsup_period: u32,
    /// `allow-ttl-without-nsup` (default false).
    pub allow_ttl_without_nsup: bool,
    /// `rack-id` (Enterprise only; default 0).
    pub rack_id: u32,
    /// `strong-consistency` (Enterprise only; accepted, not modelled).
    pub strong_consistency: bool,
}

/// The persisted storage of a `storage-engine device` namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// `file PATH` and `device PATH` lines, in order (at least one).
    pub files: Vec<std::path::PathBuf>,
    /// `filesize` in bytes (required with `file`; never allocated).
    pub filesize: Option<u64>,
    /// `flush-max-ms` (default 1000): how long a change may sit in the
    /// write buffer before it is written to the file.
    pub flush_max_ms: u64,
}

/// `flush-max-ms` when the stanza has none, as in the server.
pub const DEFAULT_FLUSH_MAX_MS: u64 = 1000;

/// `proto-fd-max` when the service context has none (`cfg_set_defaults`,
/// as/src/base/cfg.c).
pub const DEFAULT_PROTO_FD_MAX: u32 = 15000;

/// `proto-fd-max` bounds, in the config file and in `set-config`
/// (`MIN_PROTO_FD_MAX` 1024 and `MAX_PROTO_FD_MAX` 2 * 1024 * 1024,
/// as/include/base/service.h).
pub const PROTO_FD_MAX_RANGE: std::ops::RangeInclusive<u32> = 1024..=2 * 1024 * 1024;

/// The longest `default-ttl`: ten years (`MAX_ALLOWED_TTL`).
pub const MAX_ALLOWED_TTL: u32 = 10 * 365 * 24 * 60 * 60;

/// The highest `rack-id` (`MAX_RACK_ID`, partition_balance).
pub const MAX_RACK_ID: u32 = 1_000_000;

/// The largest cluster, hence the largest `replication-factor`
/// (`AS_CLUSTER_SZ`): 8 in a Community build (as/include/fabric/hb.h),
/// 256 taken for Enterprise.
pub fn max_cluster_size(enterprise: bool) -> u32 {
    if enterprise {
        256
    } else {
        8
    }
}

/// Parses a duration as the server's `cf_str_atoi_seconds` does: an
/// unsigned number with an optional `s`, `m`, `h` or `d` unit, fitting 32
/// bits.
pub fn parse_seconds(text: &str) -> Option<u32> {
    let (digits, unit) = match text.chars().last()? {
        's' | 'S' => (&text[..text.len() - 1], 1),
        'm' | 'M' => (&text[..text.len() - 1], 60),
        'h' | 'H' => (&text[..text.len() - 1], 3600),
        'd' | 'D' => (&text[..text.len() - 1], 86400),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    u32::try_from(value.checked_mul(unit)?).ok()
}

/// Parses a boolean as the config file takes it: `true` or `false`, any case.
fn parse_bool(entry: &Entry) -> Result<bool, ConfigError> {
    let value = single_value(entry)?;
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(error_at(
            entry.line,
            format!("'{}' must be true or false, got '{value}'", entry.key),
        ))
    }
}

/// The source location of the Community build's refusal, for the console
/// line: `cfg_enterprise_only` in as/src/base/cfg_ce.c (line 73 of the
/// stored 7.x source).
pub const ENTERPRISE_ONLY_SOURCE: &str = "cfg_ce.c:73";

/// Lines `cfg_enterprise_only` refuses in a Community build, by context
/// path (as/src/base/cfg.c): the context a line is in, `/`-separated
/// (`network/service`, `namespace/storage-engine device`), and its first
/// token. `namespace` lines that open a context (`index-type`,
/// `sindex-type`) are listed under `namespace`; `storage-engine pmem` is
/// handled on its own.
const ENTERPRISE_ONLY: &[(&str, &[&str])] = &[
    ("", &["security", "xdr"]),
    (
        "service",
        &[
            "feature-key-file",
            "migrate-fill-delay",
            "secrets-address-port",
            "secrets-tls-context",
            "secrets-uds-path",
            "stay-quiesced",
            "tls-refresh-period",
            "vault-ca",
            "vault-namespace",
            "vault-path",
            "vault-token-file",
            "vault-url",
        ],
    ),
    ("network", &["tls"]),
    (
        "network/service",
        &[
            "tls-access-address",
            "tls-access-port",
            "tls-address",
            "tls-alternate-access-address",
            "tls-alternate-access-port",
            "tls-authenticate-client",
            "tls-name",
            "tls-port",
        ],
    ),
    (
        "network/heartbeat",
        &["tls-address", "tls-name", "tls-port"],
    ),
    ("network/fabric", &["tls-address", "tls-name", "tls-port"]),
    (
        "namespace",
        &[
            "active-rack",
            "auto-revive",
            "conflict-resolve-writes",
            "disable-mrt-writes",
            "disallow-expunge",
            "ignore-migrate-fill-delay",
            "index-type",
            "mrt-duration",
            "prefer-uniform-balance",
            "rack-id",
            "sindex-type",
            "strong-consistency",
            "strong-consistency-allow-expunge",
            "tomb-raider-eligible-age",
            "tomb-raider-period",
            "xdr-bin-tombstone-ttl",
            "xdr-tomb-raider-period",
            "xdr-tomb-raider-threads",
        ],
    ),
    (
        "namespace/storage-engine memory",
        &[
            "commit-to-device",
            "compression",
            "compression-acceleration",
            "compression-level",
            "encryption",
            "encryption-key-file",
            "encryption-old-key-file",
            "tomb-raider-sleep",
        ],
    ),
    (
        "namespace/storage-engine device",
        &[
            "commit-to-device",
            "compression",
            "compression-acceleration",
            "compression-level",
            "encryption",
            "encryption-key-file",
            "encryption-old-key-file",
            "serialize-tomb-raider",
            "tomb-raider-sleep",
        ],
    ),
];

fn enterprise_only_in(path: &str, name: &str) -> bool {
    ENTERPRISE_ONLY
        .iter()
        .any(|(p, names)| *p == path && names.contains(&name))
}

/// Collects the edition-dependent lines of the tree, in file order.
fn edition_lines(root: &Stanza) -> Vec<EditionLine> {
    fn push(out: &mut Vec<EditionLine>, line: usize, name: &str, community_error: Option<String>) {
        out.push(EditionLine {
            line,
            name: name.to_string(),
            community_error,
        });
    }
    fn walk(stanza: &Stanza, path: &str, out: &mut Vec<EditionLine>) {
        for entry in &stanza.entries {
            if enterprise_only_in(path, &entry.key)
                || (path == "namespace"
                    && entry.key == "storage-engine"
                    && entry.values.first().map(String::as_str) == Some("pmem"))
            {
                push(out, entry.line, &entry.key, None);
            } else if path == "namespace" && entry.key == "replication-factor" {
                if let Ok(rf) = parse_number::<u32>(entry) {
                    let max = max_cluster_size(false);
                    if rf > max {
                        let error =
                            format!("replication-factor must be >= 1 and <= {max}, not {rf}");
                        push(out, entry.line, &entry.key, Some(error));
                    }
                }
            }
        }
        for child in &stanza.children {
            let refused = enterprise_only_in(path, &child.name)
                || (path == "namespace"
                    && child.name == "storage-engine"
                    && child.args.first().map(String::as_str) == Some("pmem"));
            if refused {
                push(out, child.line, &child.name, None);
            }
            let child_path = match (path, child.name.as_str()) {
                ("", name) => name.to_string(),
                ("namespace", "storage-engine") => {
                    format!("namespace/storage-engine {}", child.args.join(" "))
                }
                (parent, name) => format!("{parent}/{name}"),
            };
            walk(child, &child_path, out);
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.sort_by_key(|l| l.line);
    out
}

/// Parses a size as the server writes them: a number with an optional
/// `K`, `M`, `G`, `T` or `P` suffix (powers of 1024, either case).
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.chars().last()?.to_ascii_uppercase() {
        'K' => (&text[..text.len() - 1], 10),
        'M' => (&text[..text.len() - 1], 20),
        'G' => (&text[..text.len() - 1], 30),
        'T' => (&text[..text.len() - 1], 40),
        'P' => (&text[..text.len() - 1], 50),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    value.checked_mul(1u64 << shift)
}

/// A configuration error, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Line of the offending text, when the error is about one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// For a message in the server's own words: where the server logs it
    /// (`cfg_ce.c:73`), for the console line `CRITICAL (config): (<source>)
    /// line <n> :: <message>`. `None` for the sim's own wording.
    pub source: Option<&'static str>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

fn error_at(line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError {
        line: Some(line),
        message: message.into(),
        source: None,
    }
}

/// The configuration used when no `--config-file` is given: the published
/// Swarm recipe's mesh config (no seeds; nodes join only when tipped).
pub const DEFAULT_CONFIG: &str = "\
service {
    proto-fd-max 15000
    cluster-name aerospike
}
network {
    service {
        address any
        port 3000
    }
    heartbeat {
        mode mesh
        address any
        port 3002
        interval 150
        timeout 10
    }
    fabric {
        port 3001
    }
    info {
        port 3003
    }
}
namespace test {
    replication-factor 2
    storage-engine memory
}
";

/// Real servers refuse heartbeat intervals outside this range (milliseconds).
const INTERVAL_RANGE: std::ops::RangeInclusive<u64> = 50..=600_000;
/// Real servers refuse a heartbeat timeout below this many intervals.
const MIN_TIMEOUT: u64 = 3;

/// A stanza of the raw file tree.
#[derive(Debug, Default)]
struct Stanza {
    name: String,
    args: Vec<String>,
    line: usize,
    entries: Vec<Entry>,
    children: Vec<Stanza>,
}

#[derive(Debug)]
struct Entry {
    key: String,
    values: Vec<String>,
    line: usize,
}

/// Splits the text into the stanza tree, checking only the syntax.
fn parse_tree(text: &str) -> Result<Stanza, ConfigError> {
    // stack[0] is the file itself; the last element is the open stanza.
    let mut stack = vec![Stanza::default()];
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let tokens: Vec<&str> = content.split_whitespace().collect();
        if content == "}" {
            if stack.len() == 1 {
                return Err(error_at(line, "'}' closes nothing"));
            }
            let done = stack.pop().unwrap_or_default();
            if let Some(parent) = stack.last_mut() {
                parent.children.push(done);
            }
            continue;
        }
        if tokens.contains(&"}") {
            return Err(error_at(line, "'}' must be alone on its line"));
        }
        if let Some(brace) = tokens.iter().position(|t| *t == "{") {
            if brace != tokens.len() - 1 {
                return Err(error_at(line, "text after '{'"));
            }
            if brace == 0 {
                return Err(error_at(line, "'{' without a context name"));
            }
            stack.push(Stanza {
                name: tokens[0].to_string(),
                args: tokens[1..brace].iter().map(|s| s.to_string()).collect(),
                line,
                ..Stanza::default()
            });
            continue;
        }
        if tokens.iter().any(|t| t.contains('{') || t.contains('}')) {
            return Err(error_at(line, "braces must be separated by spaces"));
        }
        let Some(open) = stack.last_mut() else {
            return Err(error_at(line, "internal: no open context"));
        };
        open.entries.push(Entry {
            key: tokens[0].to_string(),
            values: tokens[1..].iter().map(|s| s.to_string()).collect(),
            line,
        });
    }
    if stack.len() > 1 {
        let open = &stack[stack.len() - 1];
        return Err(error_at(
            open.line,
            format!("context '{}' is never closed", open.name),
        ));
    }
    Ok(stack.pop().unwrap_or_default())
}

fn single_value(entry: &Entry) -> Result<&str, ConfigError> {
    match entry.values.as_slice() {
        [value] => Ok(value),
        [] => Err(error_at(
            entry.line,
            format!("'{}' needs a value", entry.key),
        )),
        _ => Err(error_at(
            entry.line,
            format!("'{}' takes exactly one value", entry.key),
        )),
    }
}

fn parse_number<T: std::str::FromStr>(entry: &Entry) -> Result<T, ConfigError> {
    let value = single_value(entry)?;
    value.parse().map_err(|_| {
        error_at(
            entry.line,
            format!("'{}' must be a number, got '{value}'", entry.key),
        )
    })
}

fn parse_port(entry: &Entry) -> Result<u16, ConfigError> {
    let port: u16 = parse_number(entry)?;
    if port == 0 {
        return Err(error_at(
            entry.line,
            format!("'{}' must not be 0", entry.key),
        ));
    }
    Ok(port)
}

/// `any` (or an unspecified address) means every interface; an IP literal
/// that address; anything else that looks like an interface name
/// (`eth0`, `ens3`, `br-1.2`) that interface.
fn parse_address(entry: &Entry) -> Result<Address, ConfigError> {
    let value = single_value(entry)?;
    if value == "any" {
        return Ok(Address::Any);
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(if ip.is_unspecified() {
            Address::Any
        } else {
            Address::Ip(ip)
        });
    }
    let name_like = !value.is_empty()
        && value.len() <= 15
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        && !value.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !name_like {
        return Err(error_at(
            entry.line,
            format!(
                "'{}' must be an IP address, an interface name or 'any', got '{value}'",
                entry.key
            ),
        ));
    }
    Ok(Address::Interface(value.to_string()))
}

const TOP_CONTEXTS: &[&str] = &[
    "service",
    "logging",
    "network",
    "namespace",
    "mod-lua",
    "security",
    "xdr",
];
const NETWORK_CONTEXTS: &[&str] = &["service", "heartbeat", "fabric", "info", "tls", "admin"];

impl Config {
    /// Parses and validates configuration text for a build of the given
    /// edition (`enterprise` false: Community). As the server reads the
    /// file line by line and stops at the first bad line, the error with
    /// the lowest line wins: an Enterprise-only line (or a value above
    /// Community's limits) before another error is the one reported.
    pub fn parse_for(text: &str, enterprise: bool) -> Result<Config, ConfigError> {
        let parsed = Config::parse(text);
        if enterprise {
            return parsed;
        }
        let refused = parse_tree(text)
            .ok()
            .and_then(|root| edition_lines(&root).into_iter().next());
        let Some(refused) = refused else {
            return parsed;
        };
        match parsed {
            Err(e) if e.line.is_some_and(|line| line < refused.line) => Err(e),
            _ => Err(community_refusal(&refused)),
        }
    }

    /// What a build of the given edition says of this config: `Ok` on
    /// Enterprise; on Community, the first line it refuses (see
    /// [`Config::parse_for`]), e.g. `line 25: 'rack-id' is enterprise-only`.
    pub fn check_edition(&self, enterprise: bool) -> Result<(), ConfigError> {
        match self.enterprise_only.first() {
            Some(refused) if !enterprise => Err(community_refusal(refused)),
            _ => Ok(()),
        }
    }

    /// Parses and validates configuration text (edition-neutral: see
    /// [`Config::parse_for`] and [`Config::check_edition`]).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let root = parse_tree(text)?;
        let enterprise_only = edition_lines(&root);
        if let Some(entry) = root.entries.first() {
            return Err(error_at(
                entry.line,
                format!("'{}' is outside any context", entry.key),
            ));
        }
        let mut node_id = None;
        let mut cluster_name = None;
        let mut proto_fd_max = DEFAULT_PROTO_FD_MAX;
        let mut network = None;
        let mut namespaces: Vec<NamespaceConfig> = Vec::new();
        for stanza in &root.children {
            match stanza.name.as_str() {
                "service" => {
                    for entry in &stanza.entries {
                        match entry.key.as_str() {
                            "node-id" => {
                                let value = single_value(entry)?;
                                node_id = Some(NodeId::from_hex(value).ok_or_else(|| {
                                    error_at(
                                        entry.line,
                                        format!("'node-id' must be 1 to 16 hex digits, not zero, got '{value}'"),
                                    )
                                })?);
                            }
                            "cluster-name" => cluster_name = Some(single_value(entry)?.to_string()),
                            "proto-fd-max" => {
                                let value: u32 = parse_number(entry)?;
                                if !PROTO_FD_MAX_RANGE.contains(&value) {
                                    return Err(error_at(
                                        entry.line,
                                        format!(
                                            "proto-fd-max must be >= {} and <= {}, not {value}",
                                            PROTO_FD_MAX_RANGE.start(),
                                            PROTO_FD_MAX_RANGE.end()
                                        ),
                                    ));
                                }
                                proto_fd_max = value;
                            }
                            _ => {}
                        }
                    }
                }
                "network" => {
                    if network.is_some() {
                        return Err(error_at(stanza.line, "second 'network' context"));
                    }
                    network = Some(stanza);
                }
                "namespace" => {
                    let ns = parse_namespace(stanza)?;
                    if namespaces.iter().any(|n| n.name == ns.name) {
                        return Err(error_at(
                            stanza.line,
                            format!("namespace '{}' is defined twice", ns.name),
                        ));
                    }
                    namespaces.push(ns);
                }
                other if TOP_CONTEXTS.contains(&other) => {}
                other => {
                    return Err(error_at(stanza.line, format!("unknown context '{other}'")));
                }
            }
        }
        let network = network.ok_or(ConfigError {
            line: None,
            message: "no 'network' context".to_string(),
            source: None,
        })?;
        if namespaces.is_empty() {
            return Err(ConfigError {
                line: None,
                message: "no 'namespace' context".to_string(),
                source: None,
            });
        }

        let mut service = None;
        let mut fabric = (Address::Any, 3001);
        let mut info_port = None;
        let mut heartbeat = None;
        for sub in &network.children {
            match sub.name.as_str() {
                "service" => {
                    let mut address = Address::Any;
                    let mut port = None;
                    for entry in &sub.entries {
                        match entry.key.as_str() {
                            "port" => port = Some(parse_port(entry)?),
                            "address" => address = parse_address(entry)?,
                            _ => {}
                        }
                    }
                    let port = port.ok_or_else(|| error_at(sub.line, "service needs a 'port'"))?;
                    service = Some((address, port));
                }
                "fabric" => {
                    for entry in &sub.entries {
                        match entry.key.as_str() {
                            "port" => fabric.1 = parse_port(entry)?,
                            "address" => fabric.0 = parse_address(entry)?,
                            _ => {}
                        }
                    }
                }
                "info" => info_port = find_port(sub)?,
                "heartbeat" => heartbeat = Some(parse_heartbeat(sub)?),
                other if NETWORK_CONTEXTS.contains(&other) => {}
                other => {
                    return Err(error_at(
                        sub.line,
                        format!("unknown network context '{other}'"),
                    ));
                }
            }
        }
        let (service_address, service_port) =
            service.ok_or_else(|| error_at(network.line, "network needs a 'service' context"))?;
        let heartbeat = heartbeat
            .ok_or_else(|| error_at(network.line, "network needs a 'heartbeat' context"))?;
        // 7.x refuses to start without a cluster name (FIELD-NOTES section 3,
        // measured on 7.1.0.23).
        let Some(cluster_name) = cluster_name else {
            return Err(ConfigError {
                line: None,
                message: "must configure cluster-name".to_string(),
                source: None,
            });
        };
        let (fabric_address, fabric_port) = fabric;
        Ok(Config {
            node_id,
            cluster_name: Some(cluster_name),
            service_address,
            service_port,
            fabric_port,
            fabric_address,
            info_port,
            heartbeat,
            namespaces,
            proto_fd_max,
            enterprise_only,
        })
    }
}

fn find_port(stanza: &Stanza) -> Result<Option<u16>, ConfigError> {
    let mut port = None;
    for entry in &stanza.entries {
        if entry.key == "port" {
            port = Some(parse_port(entry)?);
        }
    }
    Ok(port)
}

fn parse_heartbeat(stanza: &Stanza) -> Result<HeartbeatConfig, ConfigError> {
    let mut mode = None;
    let mut port = None;
    let mut address = Address::Any;
    let mut interval_ms = 150;
    let mut timeout = 10;
    let mut seeds = Vec::new();
    for entry in &stanza.entries {
        match entry.key.as_str() {
            "mode" => {
                let value = single_value(entry)?;
                if value != "mesh" {
                    return Err(error_at(
                        entry.line,
                        format!(
                            "heartbeat mode '{value}' is not supported (the sim speaks mesh only)"
                        ),
                    ));
                }
                mode = Some(value);
            }
            "port" => port = Some(parse_port(entry)?),
            "address" => address = parse_address(entry)?,
            "interval" => {
                interval_ms = parse_number(entry)?;
                if !INTERVAL_RANGE.contains(&interval_ms) {
                    return Err(error_at(
                        entry.line,
                        format!(
                            "heartbeat interval must be {} to {} ms",
                            INTERVAL_RANGE.start(),
                            INTERVAL_RANGE.end()
                        ),
                    ));
                }
            }
            "timeout" => {
                timeout = parse_number(entry)?;
                if timeout < MIN_TIMEOUT {
                    return Err(error_at(
                        entry.line,
                        format!("heartbeat timeout must be at least {MIN_TIMEOUT}"),
                    ));
                }
            }
            "mesh-seed-address-port" => match entry.values.as_slice() {
                [host, port_text] => {
                    let port: u16 =
                        port_text.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                            error_at(entry.line, format!("bad mesh seed port '{port_text}'"))
                        })?;
                    seeds.push((host.clone(), port));
                }
                _ => {
                    return Err(error_at(
                        entry.line,
                        "'mesh-seed-address-port' takes a host and a port",
                    ));
                }
            },
            _ => {}
        }
    }
    if mode.is_none() {
        return Err(error_at(stanza.line, "heartbeat needs 'mode mesh'"));
    }
    let port = port.ok_or_else(|| error_at(stanza.line, "heartbeat needs a 'port'"))?;
    Ok(HeartbeatConfig {
        port,
        address,
        interval_ms,
        timeout,
        seeds,
    })
}

fn parse_namespace(stanza: &Stanza) -> Result<NamespaceConfig, ConfigError> {
    let name = match stanza.args.as_slice() {
        [name] => name.clone(),
        _ => return Err(error_at(stanza.line, "namespace needs exactly one name")),
    };
    if name.len() > 31 {
        return Err(error_at(
            stanza.line,
            "namespace name longer than 31 characters",
        ));
    }
    let mut replication_factor = 2;
    let mut storage_engine = None;
    let mut device = None;
    let mut echo = Vec::new();
    let mut default_ttl = 0;
    let mut nsup_period = 0;
    let mut allow_ttl_without_nsup = false;
    let mut rack_id = 0;
    let mut strong_consistency = false;
    let seconds = |entry: &Entry| {
        let value = single_value(entry)?;
        parse_seconds(value).ok_or_else(|| {
            error_at(
                entry.line,
                format!(
                    "'{}' must be an unsigned number with time unit (s, m, h, or d), got '{value}'",
                    entry.key
                ),
            )
        })
    };
    for entry in &stanza.entries {
        match entry.key.as_str() {
            "default-ttl" => {
                default_ttl = seconds(entry)?;
                if default_ttl > MAX_ALLOWED_TTL {
                    return Err(error_at(
                        entry.line,
                        format!("default-ttl must be <= {MAX_ALLOWED_TTL} seconds, not {default_ttl} seconds"),
                    ));
                }
            }
            "nsup-period" => nsup_period = seconds(entry)?,
            "allow-ttl-without-nsup" => allow_ttl_without_nsup = parse_bool(entry)?,
            "strong-consistency" => strong_consistency = parse_bool(entry)?,
            "rack-id" => {
                rack_id = parse_number(entry)?;
                if rack_id > MAX_RACK_ID {
                    return Err(error_at(
                        entry.line,
                        format!("rack-id must be <= {MAX_RACK_ID}, not {rack_id}"),
                    ));
                }
            }
            "replication-factor" => {
                replication_factor = parse_number(entry)?;
                if !(1..=256).contains(&replication_factor) {
                    return Err(error_at(entry.line, "replication-factor must be 1 to 256"));
                }
            }
            "storage-engine" => {
                let kind = parse_engine(entry.line, single_value(entry)?)?;
                if kind == "device" {
                    return Err(error_at(
                        entry.line,
                        "storage-engine device needs a context with a 'file' or 'device'",
                    ));
                }
                storage_engine = Some(kind);
                device = None;
            }
            _ => {}
        }
        echo.push((entry.key.clone(), entry.values.join(" ")));
    }
    for child in &stanza.children {
        if child.name != "storage-engine" {
            // Sets, indexes and the like carry nothing the sim models.
            continue;
        }
        let kind = match child.args.as_slice() {
            [kind] => parse_engine(child.line, kind)?,
            _ => return Err(error_at(child.line, "storage-engine needs one kind")),
        };
        storage_engine = Some(kind.clone());
        device = None;
        if kind == "device" {
            device = Some(parse_device(child)?);
        }
        echo.push(("storage-engine".to_string(), kind));
        for entry in &child.entries {
            echo.push((
                format!("storage-engine.{}", entry.key),
                entry.values.join(" "),
            ));
        }
    }
    if !echo.iter().any(|(k, _)| k == "replication-factor") {
        echo.insert(
            0,
            (
                "replication-factor".to_string(),
                replication_factor.to_string(),
            ),
        );
    }
    // Checked when the namespace context closes (as/src/base/cfg.c).
    if default_ttl != 0 && nsup_period == 0 && !allow_ttl_without_nsup {
        return Err(ConfigError {
            line: None,
            source: None,
            message: format!(
                "{{{name}}} must configure non-zero 'nsup-period' or 'allow-ttl-without-nsup' true if 'default-ttl' is non-zero"
            ),
        });
    }
    Ok(NamespaceConfig {
        name,
        replication_factor,
        storage_engine: storage_engine.unwrap_or_else(|| "memory".to_string()),
        device,
        echo,
        default_ttl,
        nsup_period,
        allow_ttl_without_nsup,
        rack_id,
        strong_consistency,
    })
}

/// The `storage-engine device { ... }` stanza: `file`/`device` paths,
/// `filesize` (required with `file`), `flush-max-ms`. Other lines are
/// accepted and ignored.
fn parse_device(stanza: &Stanza) -> Result<DeviceConfig, ConfigError> {
    let mut files = Vec::new();
    let mut filesize = None;
    let mut flush_max_ms = DEFAULT_FLUSH_MAX_MS;
    let mut has_file = false;
    for entry in &stanza.entries {
        match entry.key.as_str() {
            "file" | "device" => {
                let path = single_value(entry)?;
                if !path.starts_with('/') {
                    return Err(error_at(
                        entry.line,
                        format!("'{}' must be an absolute path, got '{path}'", entry.key),
                    ));
                }
                has_file |= entry.key == "file";
                files.push(std::path::PathBuf::from(path));
            }
            "filesize" => {
                let value = single_value(entry)?;
                let size = parse_size(value).filter(|s| *s > 0).ok_or_else(|| {
                    error_at(
                        entry.line,
                        format!("'filesize' must be a size such as 4G, got '{value}'"),
                    )
                })?;
                filesize = Some(size);
            }
            "flush-max-ms" => flush_max_ms = parse_number(entry)?,
            _ => {}
        }
    }
    if files.is_empty() {
        return Err(error_at(
            stanza.line,
            "storage-engine device needs a 'file' or 'device'",
        ));
    }
    if has_file && filesize.is_none() {
        return Err(error_at(
            stanza.line,
            "storage-engine device with 'file' needs a 'filesize'",
        ));
    }
    Ok(DeviceConfig {
        files,
        filesize,
        flush_max_ms,
    })
}

/// Where a Community build logs a value above its limits (`cfg_u32` in
/// as/src/base/cfg.c; the line number is a stand-in, not read from a
/// given build).
pub const COMMUNITY_LIMIT_SOURCE: &str = "cfg.c:1196";

fn community_refusal(refused: &EditionLine) -> ConfigError {
    match &refused.community_error {
        Some(message) => ConfigError {
            line: Some(refused.line),
            message: message.clone(),
            source: Some(COMMUNITY_LIMIT_SOURCE),
        },
        None => ConfigError {
            line: Some(refused.line),
            message: format!("'{}' is enterprise-only", refused.name),
            source: Some(ENTERPRISE_ONLY_SOURCE),
        },
    }
}

impl ConfigError {
    /// The server's console line for an error in its own words
    /// (`line 25 :: 'rack-id' is enterprise-only`), without the time stamp
    /// and level; `None` for the sim's own wording.
    pub fn server_text(&self) -> Option<String> {
        self.source?;
        Some(match self.line {
            Some(line) => format!("line {line} :: {}", self.message),
            None => self.message.clone(),
        })
    }
}

fn parse_engine(line: usize, kind: &str) -> Result<String, ConfigError> {
    match kind {
        "memory" | "device" | "pmem" => Ok(kind.to_string()),
        other => Err(error_at(line, format!("unknown storage-engine '{other}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panic(text in "(?s).{0,400}") {
            let _ = Config::parse(&text);
        }

        #[test]
        fn config_shaped_noise_parses_or_names_a_line(
            lines in proptest::collection::vec(
                "(service|network|heartbeat|namespace t|port|interval|timeout|mode|\\{|\\}| |[a-z0-9-]{1,8}){1,4}",
                0..30,
            )
        ) {
            let text = lines.join("\n");
            if let Err(e) = Config::parse(&text) {
                if let Some(line) = e.line {
                    prop_assert!(line >= 1 && line <= lines.len().max(1));
                }
            }
        }
    }

    #[test]
    fn default_config_is_the_swarm_recipe() {
        let config = Config::parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(config.service_port, 3000);
        assert_eq!(config.fabric_port, 3001);
        assert_eq!(config.fabric_address, Address::Any);
        assert_eq!(config.info_port, Some(3003));
        assert_eq!(config.heartbeat.port, 3002);
        assert_eq!(config.heartbeat.interval_ms, 150);
        assert_eq!(config.heartbeat.timeout, 10);
        assert!(config.heartbeat.seeds.is_empty());
        assert_eq!(config.heartbeat.address, Address::Any);
        assert_eq!(config.namespaces.len(), 1);
        assert_eq!(config.namespaces[0].name, "test");
        assert_eq!(config.namespaces[0].replication_factor, 2);
        assert_eq!(config.namespaces[0].storage_engine, "memory");
    }

    #[test]
    fn reads_seeds_node_id_and_device_storage() {
        let text = "\
service {
  node-id a1   # comment
  cluster-name prod
}
logging {
  file /var/log/aerospike.log {
    context any info
  }
}
network {
  service { 
    port 4000
  }
  heartbeat {
    mode mesh
    address 10.0.0.5
    port 4002
    mesh-seed-address-port 10.0.0.6 4002
    mesh-seed-address-port aero-2 4002
    interval 50
    timeout 3
  }
}
namespace bar {
  replication-factor 3
  storage-engine device {
    file /opt/aerospike/bar.dat
    filesize 4G
  }
}
";
        let config = Config::parse(text).unwrap();
        assert_eq!(config.node_id, NodeId::from_hex("A1"));
        assert_eq!(config.cluster_name.as_deref(), Some("prod"));
        assert_eq!(config.service_port, 4000);
        assert_eq!(
            config.heartbeat.address,
            Address::Ip("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            config.heartbeat.seeds,
            vec![("10.0.0.6".to_string(), 4002), ("aero-2".to_string(), 4002)]
        );
        let ns = &config.namespaces[0];
        assert_eq!(ns.replication_factor, 3);
        assert_eq!(ns.storage_engine, "device");
        assert!(ns.echo.contains(&(
            "storage-engine.file".to_string(),
            "/opt/aerospike/bar.dat".to_string()
        )));
    }

    fn error_of(text: &str) -> ConfigError {
        Config::parse(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_line() {
        let unclosed = "network {\n  service {\n    port 3000\n";
        assert_eq!(error_of(unclosed).line, Some(2));
        assert_eq!(error_of("}\n").line, Some(1));
        let bad_port = DEFAULT_CONFIG.replace("port 3002", "port banana");
        let err = error_of(&bad_port);
        assert_eq!(err.line, Some(13));
        assert!(err.to_string().contains("line 13"), "{err}");
        assert!(err.to_string().contains("banana"), "{err}");
        let multicast = DEFAULT_CONFIG.replace("mode mesh", "mode multicast");
        assert_eq!(error_of(&multicast).line, Some(11));
        let short_interval = DEFAULT_CONFIG.replace("interval 150", "interval 5");
        assert_eq!(error_of(&short_interval).line, Some(14));
        let bad_rf = DEFAULT_CONFIG.replace("replication-factor 2", "replication-factor 0");
        assert_eq!(error_of(&bad_rf).line, Some(25));
        let unknown = format!("{DEFAULT_CONFIG}\nbogus {{\n}}\n");
        assert_eq!(error_of(&unknown).line, Some(29));
        let outside = format!("port 3000\n{DEFAULT_CONFIG}");
        assert_eq!(error_of(&outside).line, Some(1));
        let node_id = DEFAULT_CONFIG.replace("proto-fd-max 15000", "node-id xyz");
        assert_eq!(error_of(&node_id).line, Some(2));
    }

    fn with_storage(storage: &str) -> Result<Config, ConfigError> {
        Config::parse(&DEFAULT_CONFIG.replace("storage-engine memory", storage))
    }

    #[test]
    fn device_storage_is_read_with_its_files_size_and_flush_time() {
        let config = with_storage(
            "storage-engine device {\n  file /data/a.dat\n  device /dev/nvme0n1\n  filesize 4G\n  flush-max-ms 250\n  write-block-size 1M\n}",
        )
        .unwrap();
        let device = config.namespaces[0].device.clone().unwrap();
        assert_eq!(
            device.files,
            vec![
                std::path::PathBuf::from("/data/a.dat"),
                std::path::PathBuf::from("/dev/nvme0n1")
            ]
        );
        assert_eq!(device.filesize, Some(4 << 30));
        assert_eq!(device.flush_max_ms, 250);
        let config =
            with_storage("storage-engine device {\n  file /data/a.dat\n  filesize 512M\n}")
                .unwrap();
        let device = config.namespaces[0].device.clone().unwrap();
        assert_eq!(device.flush_max_ms, DEFAULT_FLUSH_MAX_MS);
        assert_eq!(device.filesize, Some(512 << 20));
        // A raw device needs no filesize.
        let config = with_storage("storage-engine device {\n  device /dev/sdb\n}").unwrap();
        assert_eq!(config.namespaces[0].device.as_ref().unwrap().filesize, None);
        // Memory namespaces have no device.
        assert_eq!(
            Config::parse(DEFAULT_CONFIG).unwrap().namespaces[0].device,
            None
        );
        assert_eq!(parse_size("16"), Some(16));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("99999999999P"), None);
    }

    #[test]
    fn bad_device_storage_is_an_error_naming_the_line() {
        let cases = [
            ("storage-engine device {\n  filesize 4G\n}", 26, "needs a 'file'"),
            ("storage-engine device {\n  file /data/a.dat\n}", 26, "needs a 'filesize'"),
            (
                "storage-engine device {\n  file /data/a.dat\n  filesize huge\n}",
                28,
                "huge",
            ),
            (
                "storage-engine device {\n  file /data/a.dat\n  filesize 0\n}",
                28,
                "filesize",
            ),
            (
                "storage-engine device {\n  file /data/a.dat\n  filesize 1G\n  flush-max-ms soon\n}",
                29,
                "soon",
            ),
            (
                "storage-engine device {\n  file data/a.dat\n  filesize 1G\n}",
                27,
                "absolute",
            ),
            ("storage-engine device", 26, "needs a context"),
        ];
        for (storage, line, text) in cases {
            let err = with_storage(storage).unwrap_err();
            assert_eq!(err.line, Some(line), "{storage}: {err}");
            assert!(err.to_string().contains(text), "{storage}: {err}");
        }
    }

    /// The default config with `lines` added to the namespace stanza
    /// after `replication-factor 2` (line 25), so the first added line is
    /// line 26.
    fn with_namespace_lines(lines: &str) -> String {
        DEFAULT_CONFIG.replace(
            "replication-factor 2\n",
            &format!("replication-factor 2\n{lines}"),
        )
    }

    #[test]
    fn community_refuses_rack_id_with_the_servers_words() {
        let text = DEFAULT_CONFIG.replace(
            "    replication-factor 2\n",
            "    rack-id 1\n    replication-factor 2\n",
        );
        let err = Config::parse_for(&text, false).unwrap_err();
        assert_eq!(err.line, Some(25));
        assert_eq!(err.message, "'rack-id' is enterprise-only");
        assert_eq!(err.source, Some("cfg_ce.c:73"));
        assert_eq!(
            err.server_text().as_deref(),
            Some("line 25 :: 'rack-id' is enterprise-only")
        );
        // Enterprise takes it, and keeps it.
        let config = Config::parse_for(&text, true).unwrap();
        assert_eq!(config.namespaces[0].rack_id, 1);
        assert!(config.check_edition(true).is_ok());
        // The edition-neutral parse keeps the line for the check at start.
        let config = Config::parse(&text).unwrap();
        assert_eq!(config.check_edition(false).unwrap_err(), err);
    }

    #[test]
    fn community_refuses_every_enterprise_only_line_it_finds() {
        let namespace_lines = [
            ("    strong-consistency true\n", "strong-consistency"),
            (
                "    strong-consistency-allow-expunge true\n",
                "strong-consistency-allow-expunge",
            ),
            (
                "    prefer-uniform-balance true\n",
                "prefer-uniform-balance",
            ),
            ("    active-rack 1\n", "active-rack"),
            ("    auto-revive true\n", "auto-revive"),
            (
                "    conflict-resolve-writes true\n",
                "conflict-resolve-writes",
            ),
            ("    disallow-expunge true\n", "disallow-expunge"),
            (
                "    ignore-migrate-fill-delay true\n",
                "ignore-migrate-fill-delay",
            ),
            ("    tomb-raider-period 1d\n", "tomb-raider-period"),
            (
                "    tomb-raider-eligible-age 1d\n",
                "tomb-raider-eligible-age",
            ),
            ("    xdr-bin-tombstone-ttl 1d\n", "xdr-bin-tombstone-ttl"),
            ("    xdr-tomb-raider-period 1d\n", "xdr-tomb-raider-period"),
            ("    xdr-tomb-raider-threads 2\n", "xdr-tomb-raider-threads"),
            (
                "    index-type flash {\n        mount /mnt\n    }\n",
                "index-type",
            ),
            ("    index-type shmem\n", "index-type"),
            (
                "    sindex-type pmem {\n        mount /mnt\n    }\n",
                "sindex-type",
            ),
        ];
        for (lines, name) in namespace_lines {
            let text = with_namespace_lines(lines);
            let err = Config::parse_for(&text, false).unwrap_err();
            assert_eq!(err.line, Some(26), "{name}");
            assert_eq!(err.message, format!("'{name}' is enterprise-only"));
            assert!(Config::parse_for(&text, true).is_ok(), "{name}: {text}");
        }
        let storage_cases = [
            ("storage-engine pmem {\n        file /p/a\n        filesize 1G\n    }", "storage-engine"),
            ("storage-engine pmem", "storage-engine"),
            (
                "storage-engine device {\n        file /d/a\n        filesize 1G\n        compression lz4\n    }",
                "compression",
            ),
            (
                "storage-engine device {\n        file /d/a\n        filesize 1G\n        encryption-key-file /k\n    }",
                "encryption-key-file",
            ),
            (
                "storage-engine memory {\n        commit-to-device true\n    }",
                "commit-to-device",
            ),
        ];
        for (storage, name) in storage_cases {
            let text = DEFAULT_CONFIG.replace("storage-engine memory", storage);
            let err = Config::parse_for(&text, false).unwrap_err();
            assert_eq!(
                err.message,
                format!("'{name}' is enterprise-only"),
                "{storage}"
            );
            assert!(Config::parse_for(&text, true).is_ok(), "{storage}");
        }
        let service = DEFAULT_CONFIG.replace(
            "    proto-fd-max 15000\n",
            "    proto-fd-max 15000\n    feature-key-file /etc/aerospike/features.conf\n",
        );
        let err = Config::parse_for(&service, false).unwrap_err();
        assert_eq!(
            (err.line, err.message.as_str()),
            (Some(3), "'feature-key-file' is enterprise-only")
        );
        let tls = DEFAULT_CONFIG.replace(
            "    info {\n",
            "    tls t1 {\n        cert-file /c\n    }\n    info {\n",
        );
        assert_eq!(
            Config::parse_for(&tls, false).unwrap_err().message,
            "'tls' is enterprise-only"
        );
        let tls_port = DEFAULT_CONFIG.replace(
            "        port 3000\n",
            "        port 3000\n        tls-port 4333\n",
        );
        assert_eq!(
            Config::parse_for(&tls_port, false).unwrap_err().message,
            "'tls-port' is enterprise-only"
        );
        for context in ["security", "xdr"] {
            let text = format!("{DEFAULT_CONFIG}{context} {{\n}}\n");
            let err = Config::parse_for(&text, false).unwrap_err();
            assert_eq!(err.line, Some(28));
            assert_eq!(err.message, format!("'{context}' is enterprise-only"));
            assert!(Config::parse_for(&text, true).is_ok());
        }
        // Lines Community builds have are untouched.
        assert!(Config::parse_for(DEFAULT_CONFIG, false).is_ok());
    }

    #[test]
    fn the_first_bad_line_wins_as_the_server_reads_line_by_line() {
        // A bad port before the enterprise-only line is what is reported...
        let text = with_namespace_lines("    rack-id 1\n").replace("port 3002", "port banana");
        assert_eq!(Config::parse_for(&text, false).unwrap_err().line, Some(13));
        // ...and the enterprise-only line before a later bad line.
        let text = with_namespace_lines("    rack-id 1\n    replication-factor 0\n");
        let err = Config::parse_for(&text, false).unwrap_err();
        assert_eq!(
            (err.line, err.message.as_str()),
            (Some(26), "'rack-id' is enterprise-only")
        );
        // An error without a line (checked after the file) loses to a line
        // (one line up: the cluster-name line is gone).
        let text =
            with_namespace_lines("    rack-id 1\n").replace("    cluster-name aerospike\n", "");
        assert_eq!(Config::parse_for(&text, false).unwrap_err().line, Some(25));
    }

    #[test]
    fn community_caps_replication_factor_at_its_cluster_size() {
        let text = DEFAULT_CONFIG.replace("replication-factor 2", "replication-factor 9");
        let err = Config::parse_for(&text, false).unwrap_err();
        assert_eq!(err.line, Some(25));
        assert_eq!(
            err.message,
            "replication-factor must be >= 1 and <= 8, not 9"
        );
        assert_eq!(
            Config::parse_for(&text, true).unwrap().namespaces[0].replication_factor,
            9
        );
        let eight = DEFAULT_CONFIG.replace("replication-factor 2", "replication-factor 8");
        assert!(Config::parse_for(&eight, false).is_ok());
    }

    #[test]
    fn ttl_nsup_and_proto_fd_max_are_read_and_checked() {
        let config = Config::parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(config.proto_fd_max, 15000);
        let ns = &config.namespaces[0];
        assert_eq!(
            (ns.default_ttl, ns.nsup_period, ns.allow_ttl_without_nsup),
            (0, 0, false)
        );
        let text = with_namespace_lines("    nsup-period 2m\n    default-ttl 30d\n");
        let ns = &Config::parse(&text).unwrap().namespaces[0];
        assert_eq!((ns.default_ttl, ns.nsup_period), (30 * 86400, 120));
        let text = with_namespace_lines("    default-ttl 100\n    allow-ttl-without-nsup true\n");
        assert_eq!(Config::parse(&text).unwrap().namespaces[0].default_ttl, 100);
        // A non-zero default-ttl without nsup is refused when the namespace closes.
        let err = error_of(&with_namespace_lines("    default-ttl 100\n"));
        assert_eq!(
            err.to_string(),
            "{test} must configure non-zero 'nsup-period' or 'allow-ttl-without-nsup' true if 'default-ttl' is non-zero"
        );
        assert_eq!(
            error_of(&with_namespace_lines("    default-ttl 100x\n")).line,
            Some(26)
        );
        assert_eq!(
            error_of(&with_namespace_lines(
                "    nsup-period 3651d\n    default-ttl 3651d\n"
            ))
            .line,
            Some(27)
        );
        for (value, ok) in [
            ("1024", true),
            ("2097152", true),
            ("1023", false),
            ("2097153", false),
        ] {
            let text =
                DEFAULT_CONFIG.replace("proto-fd-max 15000", &format!("proto-fd-max {value}"));
            assert_eq!(Config::parse(&text).is_ok(), ok, "{value}");
        }
        assert_eq!(parse_seconds("90"), Some(90));
        assert_eq!(parse_seconds("2h"), Some(7200));
        assert_eq!(parse_seconds("h"), None);
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("50000d"), None);
    }

    #[test]
    fn cluster_name_is_required_as_in_7_x() {
        let without = DEFAULT_CONFIG.replace("    cluster-name aerospike\n", "");
        let err = error_of(&without);
        assert_eq!(err.to_string(), "must configure cluster-name");
    }

    #[test]
    fn addresses_are_any_an_ip_or_an_interface() {
        let with = |service: &str| {
            let text = DEFAULT_CONFIG.replacen("address any", &format!("address {service}"), 1);
            Config::parse(&text).map(|c| c.service_address)
        };
        assert_eq!(with("any"), Ok(Address::Any));
        assert_eq!(with("0.0.0.0"), Ok(Address::Any));
        assert_eq!(
            with("10.0.0.7"),
            Ok(Address::Ip("10.0.0.7".parse().unwrap()))
        );
        assert_eq!(with("eth0"), Ok(Address::Interface("eth0".into())));
        assert!(
            with("10.0.0.999").is_err(),
            "digits and dots are no interface"
        );
        assert!(with("a/b").is_err());
        let fabric = DEFAULT_CONFIG.replace("port 3001", "address eth1\n        port 3101");
        let config = Config::parse(&fabric).unwrap();
        assert_eq!(config.fabric_address, Address::Interface("eth1".into()));
        assert_eq!(config.fabric_port, 3101);
    }

    #[test]
    fn missing_parts_are_errors() {
        assert!(error_of("service {\n}\n").to_string().contains("network"));
        let no_ns = DEFAULT_CONFIG
            .split("namespace")
            .next()
            .unwrap()
            .to_string();
        assert!(error_of(&no_ns).to_string().contains("namespace"));
        let twice = format!("{DEFAULT_CONFIG}namespace test {{\n}}\n");
        assert!(error_of(&twice).to_string().contains("twice"));
    }
}
