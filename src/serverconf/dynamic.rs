//! Which parameters a server version takes live (`set-config`), and the
//! plan for a config change: what can be set on the running nodes, and
//! what needs a rolling restart, with the reason.
//!
//! The table is read from the server's `set-config` handlers
//! (`as/src/base/cfg_info.c`: `cfg_set_service`, `cfg_set_network`,
//! `cfg_set_namespace`); see [`DynamicTable`] and docs/dynamic-config.md.
//!
//! Every info command built here comes from typed, checked values: a
//! [`LiveParam`] exists only when the parameter is in the table, its name
//! is `[a-z0-9-]+`, its value `[A-Za-z0-9._-]+` and its namespace a valid
//! [`Namespace`]; anything else goes to [`ConfigChange::restart`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use super::parse::{Entry, ServerConfig, Stanza};
use crate::aerospike::reply::Namespace;

/// Where a dynamic parameter lives in the config file, and so how
/// `set-config` addresses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DynamicContext {
    /// `service { }`: `set-config:context=service;NAME=VALUE`.
    Service,
    /// `namespace NS { }`: `set-config:context=namespace;id=NS;NAME=VALUE`.
    Namespace,
    /// `namespace NS { storage-engine KIND { } }`: set as a namespace
    /// parameter (bare name); get-config reports `storage-engine.NAME`.
    Storage,
    /// `network { heartbeat { } }`:
    /// `set-config:context=network;heartbeat.NAME=VALUE`.
    Heartbeat,
    /// `network { fabric { } }`:
    /// `set-config:context=network;fabric.NAME=VALUE`.
    Fabric,
}

impl DynamicContext {
    /// The context as the config file spells its path.
    pub fn config_path(self) -> &'static str {
        match self {
            DynamicContext::Service => "service",
            DynamicContext::Namespace => "namespace NS",
            DynamicContext::Storage => "namespace NS / storage-engine",
            DynamicContext::Heartbeat => "network / heartbeat",
            DynamicContext::Fabric => "network / fabric",
        }
    }
}

/// One parameter a server takes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicParam {
    /// The config key (`proto-fd-max`).
    pub name: &'static str,
    /// Where it lives.
    pub context: DynamicContext,
    /// The handler answers `error` on Community Edition.
    pub enterprise_only: bool,
    /// When the server may still refuse it (empty: never, beyond a bad
    /// value).
    pub note: &'static str,
}

/// The parameters one server version series takes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicTable {
    /// The series: `7.1`, `7.2`.
    pub series: &'static str,
    /// Every parameter, by context then name.
    pub params: &'static [DynamicParam],
}

impl DynamicTable {
    /// Whether `name` in `context` is taken live.
    pub fn is_dynamic(&self, context: DynamicContext, name: &str) -> bool {
        self.params
            .iter()
            .any(|p| p.context == context && p.name == name)
    }
}

const fn p(name: &'static str, context: DynamicContext) -> DynamicParam {
    DynamicParam {
        name,
        context,
        enterprise_only: false,
        note: "",
    }
}

const fn ee(name: &'static str, context: DynamicContext) -> DynamicParam {
    DynamicParam {
        name,
        context,
        enterprise_only: true,
        note: "",
    }
}

const fn n(name: &'static str, context: DynamicContext, note: &'static str) -> DynamicParam {
    DynamicParam {
        name,
        context,
        enterprise_only: false,
        note,
    }
}

use DynamicContext::{Fabric, Heartbeat, Namespace as Ns, Service, Storage};

/// The 7.x `set-config` handlers, read in the public aerospike-server
/// source, `as/src/base/cfg_info.c` (`cfg_set_service`, `cfg_set_network`,
/// `cfg_set_namespace`): the bsv-blockchain/aerospike-server fork at
/// commit 13060c1cfba4 (an 8.0-line tree; the stored copies of
/// aerospike/aerospike-server's cfg_info.c were 6.x), cross-checked against
/// the 6.x handlers of aerospike/aerospike-server at commit e2ab201b7a7d,
/// and restricted to parameters that exist in 7.1 (those added in 8.0, the
/// MRT ones, left out). Deliberately left out though dynamic:
/// `cluster-name` (changing it live splits the cluster the operator
/// meshes), the benchmark/histogram switches and the `set` sub-context.
const PARAMS_7X: &[DynamicParam] = &[
    p("batch-index-threads", Service),
    p("batch-max-buffers-per-queue", Service),
    p("batch-max-requests", Service),
    p("batch-max-unused-buffers", Service),
    p("enable-health-check", Service),
    p("info-threads", Service),
    ee("migrate-fill-delay", Service),
    p("migrate-max-num-incoming", Service),
    p("migrate-threads", Service),
    p("min-cluster-size", Service),
    p("proto-fd-idle-ms", Service),
    n(
        "proto-fd-max",
        Service,
        "refused above the process's open-file limit",
    ),
    p("query-max-done", Service),
    p("query-threads-limit", Service),
    n(
        "service-threads",
        Service,
        "with auto-pin, must be a multiple of the CPUs",
    ),
    p("sindex-builder-threads", Service),
    p("sindex-gc-period", Service),
    p("ticker-interval", Service),
    p("transaction-max-ms", Service),
    p("transaction-retry-ms", Service),
    p("allow-ttl-without-nsup", Ns),
    p("background-query-max-rps", Ns),
    n(
        "conflict-resolution-policy",
        Ns,
        "refused with strong-consistency",
    ),
    ee("conflict-resolve-writes", Ns),
    n(
        "default-ttl",
        Ns,
        "refused (`error`) when non-zero while nsup-period is 0 and allow-ttl-without-nsup false",
    ),
    ee("disallow-expunge", Ns),
    p("disallow-null-setname", Ns),
    p("evict-hist-buckets", Ns),
    p("evict-indexes-memory-pct", Ns),
    p("evict-tenths-pct", Ns),
    ee("ignore-migrate-fill-delay", Ns),
    p("indexes-memory-budget", Ns),
    p("max-record-size", Ns),
    p("migrate-order", Ns),
    p("migrate-retransmit-ms", Ns),
    p("migrate-sleep", Ns),
    p("nsup-hist-period", Ns),
    p("nsup-period", Ns),
    p("nsup-threads", Ns),
    ee("prefer-uniform-balance", Ns),
    ee("rack-id", Ns),
    n(
        "read-consistency-level-override",
        Ns,
        "refused with strong-consistency",
    ),
    p("reject-non-xdr-writes", Ns),
    p("reject-xdr-writes", Ns),
    n(
        "replication-factor",
        Ns,
        "refused with strong-consistency; migrations follow",
    ),
    p("single-query-threads", Ns),
    p("stop-writes-sys-memory-pct", Ns),
    ee("tomb-raider-eligible-age", Ns),
    ee("tomb-raider-period", Ns),
    p("transaction-pending-limit", Ns),
    p("truncate-threads", Ns),
    n(
        "write-commit-level-override",
        Ns,
        "refused with strong-consistency",
    ),
    n("cache-replica-writes", Storage, "device only"),
    ee("compression", Storage),
    ee("compression-acceleration", Storage),
    ee("compression-level", Storage),
    p("defrag-lwm-pct", Storage),
    p("defrag-queue-min", Storage),
    p("defrag-sleep", Storage),
    p("evict-used-pct", Storage),
    p("flush-max-ms", Storage),
    n(
        "flush-size",
        Storage,
        "not on memory without a backing file; a power of 2",
    ),
    n(
        "max-write-cache",
        Storage,
        "refused below the default (64M)",
    ),
    n("post-write-cache", Storage, "device only"),
    n("read-page-cache", Storage, "device only"),
    p("stop-writes-avail-pct", Storage),
    p("stop-writes-used-pct", Storage),
    ee("tomb-raider-sleep", Storage),
    p("connect-timeout-ms", Heartbeat),
    p("interval", Heartbeat),
    p("mtu", Heartbeat),
    p("protocol", Heartbeat),
    p("timeout", Heartbeat),
    p("channel-bulk-recv-threads", Fabric),
    p("channel-ctrl-recv-threads", Fabric),
    p("channel-meta-recv-threads", Fabric),
    p("channel-rw-recv-threads", Fabric),
    p("recv-rearm-threshold", Fabric),
];

/// The tables by series. 7.2 has the 7.1 content: no difference in the
/// handlers of these parameters was found.
static TABLES: &[DynamicTable] = &[
    DynamicTable {
        series: "7.1",
        params: PARAMS_7X,
    },
    DynamicTable {
        series: "7.2",
        params: PARAMS_7X,
    },
];

/// The table of a server version (`7.1.0.23`, `7.2.0.17`, `7.1`,
/// `ee-7.1.0.0`); `None` for a series without one (6.4, 8.0, ...).
pub fn dynamic_table(version: &str) -> Option<&'static DynamicTable> {
    let series = series(version)?;
    TABLES.iter().find(|t| t.series == series)
}

/// `major.minor` of a version, an `ee-`/`ce-` prefix aside.
fn series(version: &str) -> Option<String> {
    let bare = version
        .strip_prefix("ee-")
        .or_else(|| version.strip_prefix("ce-"))
        .unwrap_or(version);
    let mut parts = bare.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && digits(minor)).then(|| format!("{major}.{minor}"))
}

/// Where a live change is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveContext {
    /// `context=service`.
    Service,
    /// `context=namespace;id=NS` (namespace and storage-engine
    /// parameters); the name was checked as a [`Namespace`].
    Namespace(String),
    /// `context=network` (`heartbeat.*`, `fabric.*`).
    Network,
}

/// One parameter to set live on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveParam {
    /// Where to send it.
    pub context: LiveContext,
    /// The `set-config` name: the config key, or `heartbeat.KEY` /
    /// `fabric.KEY` in the network context.
    pub name: String,
    /// The value to send, normalised: sizes in bytes (`4G` →
    /// `4294967296`), durations in seconds (`1d` → `86400`), `yes`/`no`
    /// as `true`/`false`.
    pub value: String,
    /// The line of the new config it comes from.
    pub line: usize,
}

impl LiveParam {
    /// The `set-config` command, e.g.
    /// `set-config:context=namespace;id=test;replication-factor=3`.
    pub fn set_command(&self) -> String {
        format!("set-config:{};{}={}", self.address(), self.name, self.value)
    }

    /// The `get-config` command that reads it back, e.g.
    /// `get-config:context=namespace;id=test`.
    pub fn get_command(&self) -> String {
        format!("get-config:{}", self.address())
    }

    fn address(&self) -> String {
        match &self.context {
            LiveContext::Service => "context=service".to_string(),
            LiveContext::Namespace(ns) => format!("context=namespace;id={ns}"),
            LiveContext::Network => "context=network".to_string(),
        }
    }

    /// Ok when the [`get_command`](Self::get_command) reply (`k=v;k=v`)
    /// holds the value (sizes, durations and booleans compared as the
    /// server prints them); Err says what it found instead.
    pub fn verify(&self, get_config_reply: &str) -> Result<(), String> {
        let reply = get_config_reply.trim();
        let lower = reply.to_ascii_lowercase();
        if lower.starts_with("error") {
            return Err(format!("{} answered {reply:?}", self.get_command()));
        }
        let map: BTreeMap<&str, &str> = reply
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .collect();
        let storage_key = format!("storage-engine.{}", self.name);
        let keys: Vec<&str> = match self.context {
            LiveContext::Namespace(_) => vec![self.name.as_str(), storage_key.as_str()],
            _ => vec![self.name.as_str()],
        };
        let Some((key, found)) = keys.iter().find_map(|k| map.get(k).map(|v| (*k, *v))) else {
            return Err(format!(
                "{} has no {} (the server does not report it)",
                self.get_command(),
                self.name
            ));
        };
        if normalise(found) == self.value {
            Ok(())
        } else {
            Err(format!(
                "{} reports {key}={found}, not {}",
                self.get_command(),
                self.value
            ))
        }
    }
}

/// What a config change takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    /// Parameters to set live, in file order.
    pub live: Vec<LiveParam>,
    /// Why a rolling restart is needed, one human reason each (empty: none
    /// is).
    pub restart: Vec<String>,
}

impl ConfigChange {
    /// No difference at all.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.restart.is_empty()
    }

    /// Some difference cannot be made live.
    pub fn needs_restart(&self) -> bool {
        !self.restart.is_empty()
    }
}

/// Compares two configs for a server `version`: the changes its table
/// takes live, and the reasons for a restart (a context added, removed or
/// changed; a parameter removed; a parameter not in the table; a list
/// changed; a value or namespace name that cannot be sent).
pub fn plan_change(from: &ServerConfig, to: &ServerConfig, version: &str) -> ConfigChange {
    let table = dynamic_table(version);
    let mut planner = Planner {
        table,
        series: series(version).unwrap_or_else(|| version.to_string()),
        change: ConfigChange::default(),
    };
    planner.stanza(from.root(), to.root(), &Place::Root);
    if table.is_none() && !planner.change.is_empty() {
        planner.change.live.clear();
        planner.change.restart.insert(
            0,
            format!("no dynamic table for server version {}", planner.series),
        );
    }
    planner.change
}

/// Where a stanza sits, as far as `set-config` cares.
#[derive(Debug, Clone)]
enum Place {
    Root,
    Network,
    Other(String),
    Service,
    Namespace(String),
    Storage(String, String),
    Heartbeat,
    Fabric,
}

impl Place {
    fn child(&self, stanza: &Stanza) -> Place {
        let arg = stanza.arg.clone().unwrap_or_default();
        match (self, stanza.name.as_str()) {
            (Place::Root, "service") => Place::Service,
            (Place::Root, "network") => Place::Network,
            (Place::Root, "namespace") => Place::Namespace(arg),
            (Place::Namespace(ns), "storage-engine") => Place::Storage(ns.clone(), arg),
            (Place::Network, "heartbeat") => Place::Heartbeat,
            (Place::Network, "fabric") => Place::Fabric,
            _ => Place::Other(format!("{}{}", self.prefix(), stanza.header())),
        }
    }

    fn prefix(&self) -> String {
        match self {
            Place::Root => String::new(),
            other => format!("{}, ", other.label()),
        }
    }

    fn label(&self) -> String {
        match self {
            Place::Root => "top level".to_string(),
            Place::Network => "network".to_string(),
            Place::Other(label) => label.clone(),
            Place::Service => "service".to_string(),
            Place::Namespace(ns) => format!("namespace {ns}"),
            Place::Storage(ns, kind) => format!("namespace {ns}, storage-engine {kind}"),
            Place::Heartbeat => "network.heartbeat".to_string(),
            Place::Fabric => "network.fabric".to_string(),
        }
    }

    fn dynamic_context(&self) -> Option<DynamicContext> {
        match self {
            Place::Service => Some(DynamicContext::Service),
            Place::Namespace(_) => Some(DynamicContext::Namespace),
            Place::Storage(..) => Some(DynamicContext::Storage),
            Place::Heartbeat => Some(DynamicContext::Heartbeat),
            Place::Fabric => Some(DynamicContext::Fabric),
            _ => None,
        }
    }
}

struct Planner {
    table: Option<&'static DynamicTable>,
    series: String,
    change: ConfigChange,
}

impl Planner {
    fn restart(&mut self, reason: String) {
        self.change.restart.push(reason);
    }

    fn stanza(&mut self, from: &Stanza, to: &Stanza, place: &Place) {
        self.entries(from, to, place);
        self.children(from, to, place);
    }

    fn entries(&mut self, from: &Stanza, to: &Stanza, place: &Place) {
        let mut keys: Vec<&str> = Vec::new();
        for entry in from.entries.iter().chain(&to.entries) {
            if !keys.contains(&entry.key.as_str()) {
                keys.push(&entry.key);
            }
        }
        let label = place.label();
        for key in keys {
            let old: Vec<&Entry> = from.all(key).collect();
            let new: Vec<&Entry> = to.all(key).collect();
            let values =
                |list: &[&Entry]| list.iter().map(|e| e.values.clone()).collect::<Vec<_>>();
            if values(&old) == values(&new) {
                continue;
            }
            match (old.as_slice(), new.as_slice()) {
                (_, []) => {
                    let line = old[0].line;
                    self.restart(format!(
                        "`{key}` removed ({label}, line {line} of the old config): its default \
                         comes back only with a restart"
                    ));
                }
                ([] | [_], [entry]) => self.single(entry, place, old.is_empty()),
                (_, [first, ..]) => self.restart(format!(
                    "`{key}` list changed ({label}, line {})",
                    first.line
                )),
            }
        }
    }

    fn single(&mut self, entry: &Entry, place: &Place, added: bool) {
        let key = &entry.key;
        let label = place.label();
        let line = entry.line;
        let verb = if added { "added" } else { "changed" };
        let dynamic = match (self.table, place.dynamic_context()) {
            (Some(table), Some(context)) => table.is_dynamic(context, key),
            _ => false,
        };
        if !dynamic {
            let why = match self.table {
                Some(_) => format!("not dynamic on {}", self.series),
                None => "no dynamic table".to_string(),
            };
            self.restart(format!("`{key}` {verb} ({label}, line {line}): {why}"));
            return;
        }
        match live_param(entry, place) {
            Ok(live) => self.change.live.push(live),
            Err(why) => self.restart(format!("`{key}` {verb} ({label}, line {line}): {why}")),
        }
    }

    fn children(&mut self, from: &Stanza, to: &Stanza, place: &Place) {
        fn group(s: &Stanza) -> BTreeMap<String, Vec<&Stanza>> {
            let mut by: BTreeMap<String, Vec<&Stanza>> = BTreeMap::new();
            for child in &s.children {
                by.entry(child.name.clone()).or_default().push(child);
            }
            by
        }
        let old = group(from);
        let new = group(to);
        let label = place.label();
        // Walk in the new file's order, then what only the old one has.
        let mut names: Vec<&str> = to.children.iter().map(|c| c.name.as_str()).collect();
        names.extend(from.children.iter().map(|c| c.name.as_str()));
        let mut seen: Vec<&str> = Vec::new();
        for name in names {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let empty = Vec::new();
            let olds = old.get(name).unwrap_or(&empty);
            let news = new.get(name).unwrap_or(&empty);
            if let ([a], [b]) = (olds.as_slice(), news.as_slice()) {
                if a.arg != b.arg && name != "namespace" {
                    self.restart(format!(
                        "`{}` became `{}` ({label}, line {})",
                        a.header(),
                        b.header(),
                        b.line
                    ));
                    continue;
                }
            }
            for b in news {
                match olds.iter().find(|a| a.arg == b.arg) {
                    Some(a) => self.stanza(a, b, &place.child(b)),
                    None => self.restart(format!(
                        "context `{}` added ({}, line {})",
                        b.header(),
                        label,
                        b.line
                    )),
                }
            }
            for a in olds {
                if !news.iter().any(|b| b.arg == a.arg) {
                    self.restart(format!(
                        "context `{}` removed ({label}, line {} of the old config)",
                        a.header(),
                        a.line
                    ));
                }
            }
        }
    }
}

/// The checked [`LiveParam`] of a dynamic entry, or why it cannot be sent.
fn live_param(entry: &Entry, place: &Place) -> Result<LiveParam, String> {
    let key = &entry.key;
    let name_ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err("the name cannot be sent in set-config".to_string());
    }
    let value = match entry.values.as_slice() {
        [value] => value,
        [] => return Err("no value to set".to_string()),
        _ => {
            return Err(format!(
                "`{}` is several values; set-config takes one",
                entry.values.join(" ")
            ))
        }
    };
    let value_ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !value_ok {
        return Err(format!(
            "the value {value:?} cannot be sent in set-config (only letters, digits, `.`, `_` \
             and `-`)"
        ));
    }
    let (context, name) = match place {
        Place::Service => (LiveContext::Service, key.clone()),
        Place::Namespace(ns) | Place::Storage(ns, _) => {
            let ns = Namespace::from_str(ns)
                .map_err(|_| format!("the namespace name {ns:?} cannot be sent in set-config"))?;
            (LiveContext::Namespace(ns.as_str().to_string()), key.clone())
        }
        Place::Heartbeat => (LiveContext::Network, format!("heartbeat.{key}")),
        Place::Fabric => (LiveContext::Network, format!("fabric.{key}")),
        _ => return Err("not in a set-config context".to_string()),
    };
    Ok(LiveParam {
        context,
        name,
        value: normalise(value),
        line: entry.line,
    })
}

/// A value as get-config prints it: `yes`/`no` as `true`/`false`, a size
/// (`4G`, `512M`, `64K`, `1T`) in bytes, a duration (`30d`, `2h`, `10m`,
/// `45s`) in seconds; anything else as written.
fn normalise(value: &str) -> String {
    match value {
        "yes" | "true" => return "true".to_string(),
        "no" | "false" => return "false".to_string(),
        _ => {}
    }
    let Some(last) = value.chars().last() else {
        return String::new();
    };
    let number = &value[..value.len() - last.len_utf8()];
    let factor: u64 = match last {
        'K' | 'k' => 1 << 10,
        'M' => 1 << 20,
        'G' | 'g' => 1 << 30,
        'T' | 't' => 1 << 40,
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return value.to_string(),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return value.to_string();
    }
    match number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
    {
        Some(n) => n.to_string(),
        None => value.to_string(),
    }
}

/// Where docs/dynamic-config.md lives, from the crate root.
pub const DOC_PATH: &str = "docs/dynamic-config.md";

/// docs/dynamic-config.md, generated from the tables.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# Dynamic server parameters\n\n\
         <!-- Generated from src/serverconf/dynamic.rs; `ASW_BLESS=1 cargo test -p \
         aerospike-swarm-operator --lib serverconf::dynamic` or scripts/gen-docs rewrites it. \
         -->\n\n\
         When the server config changes, the operator compares the old and the new file \
         (`plan_change`): a parameter in the table of the running version, changed or added, \
         in its context, is set live on every node with `set-config` and read back with \
         `get-config`; anything else — a context added or removed (a namespace, a \
         storage-engine kind, a device or file list), a parameter removed (its default comes \
         back only with a restart), a parameter not in the table, a value that is not a plain \
         word (`[A-Za-z0-9._-]+`) — needs a rolling restart, and the plan says why.\n\n\
         The tables come from the server's `set-config` handlers (`as/src/base/cfg_info.c`: \
         `cfg_set_service`, `cfg_set_network`, `cfg_set_namespace`). Storage-engine \
         parameters are set in the namespace context by their bare name \
         (`set-config:context=namespace;id=test;defrag-lwm-pct=60`) and read back as \
         `storage-engine.NAME`; heartbeat and fabric ones in the network context as \
         `heartbeat.NAME` / `fabric.NAME`.\n\n\
         **The table is what the server may take, not a promise.** The real server can still \
         answer `error` for a parameter in it: `default-ttl` non-zero while `nsup-period` is 0 \
         (seen on Community 7.1), `rack-id` and every parameter marked Enterprise on \
         Community (seen: `set-config:context=namespace;id=test;rack-id=2` answers `error`), \
         a value out of range. Then the operator falls back to a rolling restart with the new \
         file.\n\n\
         A server version without a table (any series but those below) restarts for every \
         change.\n",
    );
    for table in TABLES {
        let _ = write!(out, "\n## {}\n\n", table.series);
        out.push_str("| context | parameter | set-config | note |\n| --- | --- | --- | --- |\n");
        let mut params: Vec<&DynamicParam> = table.params.iter().collect();
        params.sort_by_key(|p| (p.context, p.name));
        for param in params {
            let command = match param.context {
                DynamicContext::Service => format!("context=service;{}=…", param.name),
                DynamicContext::Namespace | DynamicContext::Storage => {
                    format!("context=namespace;id=NS;{}=…", param.name)
                }
                DynamicContext::Heartbeat => format!("context=network;heartbeat.{}=…", param.name),
                DynamicContext::Fabric => format!("context=network;fabric.{}=…", param.name),
            };
            let mut note = String::new();
            if param.enterprise_only {
                note.push_str("Enterprise only (`error` on Community)");
            }
            if !param.note.is_empty() {
                if !note.is_empty() {
                    note.push_str("; ");
                }
                note.push_str(param.note);
            }
            let _ = writeln!(
                out,
                "| {} | `{}` | `{}` | {} |",
                param.context.config_path(),
                param.name,
                command,
                note
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ServerConfig {
        ServerConfig::parse(text).unwrap()
    }

    const BASE: &str = include_str!("../../crd-like-specs/examples/aerospike.conf");

    #[test]
    fn tables_by_version() {
        assert_eq!(dynamic_table("7.1.0.23").unwrap().series, "7.1");
        assert_eq!(dynamic_table("7.2.0.17").unwrap().series, "7.2");
        assert_eq!(dynamic_table("ee-7.1.0.0").unwrap().series, "7.1");
        assert_eq!(dynamic_table("7.1").unwrap().series, "7.1");
        for none in ["6.4.0.0", "8.0.0.1", "7", "", "latest", "7.x"] {
            assert!(dynamic_table(none).is_none(), "{none}");
        }
        let table = dynamic_table("7.1.0.23").unwrap();
        assert!(table.is_dynamic(DynamicContext::Service, "proto-fd-max"));
        assert!(table.is_dynamic(DynamicContext::Namespace, "replication-factor"));
        assert!(!table.is_dynamic(DynamicContext::Namespace, "proto-fd-max"));
        assert!(!table.is_dynamic(DynamicContext::Service, "cluster-name"));
    }

    #[test]
    fn no_change_is_empty() {
        let change = plan_change(&parse(BASE), &parse(BASE), "7.1.0.23");
        assert!(change.is_empty() && !change.needs_restart());
        let change = plan_change(&parse(BASE), &parse(BASE), "6.4.0.0");
        assert!(change.is_empty());
    }

    #[test]
    fn dynamic_changes_are_live_with_commands() {
        let to = BASE
            .replace("proto-fd-max 15000", "proto-fd-max 16000")
            .replace("replication-factor 2", "replication-factor 3")
            .replace("interval 150", "interval 250")
            .replace(
                "\t\tdata-size 1G",
                "\t\tdata-size 1G\n\t\tstop-writes-used-pct 80",
            );
        let change = plan_change(&parse(BASE), &parse(&to), "7.1.0.23");
        assert_eq!(change.restart, Vec::<String>::new());
        let commands: Vec<String> = change.live.iter().map(LiveParam::set_command).collect();
        assert_eq!(
            commands,
            [
                "set-config:context=service;proto-fd-max=16000",
                "set-config:context=network;heartbeat.interval=250",
                "set-config:context=namespace;id=test;replication-factor=3",
                "set-config:context=namespace;id=test;stop-writes-used-pct=80",
            ]
        );
        assert_eq!(change.live[0].get_command(), "get-config:context=service");
        assert_eq!(
            change.live[2].get_command(),
            "get-config:context=namespace;id=test"
        );
        let line = to.lines().position(|l| l.contains("16000")).unwrap() + 1;
        assert_eq!(change.live[0].line, line);
    }

    #[test]
    fn restarts_name_the_reason() {
        let to = BASE
            .replace("work-directory /opt/aerospike", "work-directory /data")
            .replace("\tproto-fd-max 15000\n", "")
            .replace("storage-engine memory", "storage-engine device")
            + "namespace extra {\n\tstorage-engine memory {\n\t\tdata-size 1G\n\t}\n}\n";
        let change = plan_change(&parse(BASE), &parse(&to), "7.1.0.23");
        assert!(change.live.is_empty());
        let all = change.restart.join("\n");
        assert!(
            all.contains("`work-directory` changed (service, line"),
            "{all}"
        );
        assert!(all.contains("not dynamic on 7.1"), "{all}");
        assert!(
            all.contains("`proto-fd-max` removed (service, line")
                && all.contains("its default comes back only with a restart"),
            "{all}"
        );
        assert!(
            all.contains(
                "`storage-engine memory` became `storage-engine device` (namespace test, line"
            ),
            "{all}"
        );
        assert!(
            all.contains("context `namespace extra` added (top level, line"),
            "{all}"
        );
        assert!(change.needs_restart());
    }

    #[test]
    fn lists_and_bad_values_restart() {
        let from = "network {\n heartbeat {\n  mode mesh\n  mesh-seed-address-port a 3002\n }\n}\n\
                    namespace t {\n default-ttl 0\n}\n";
        let to = "network {\n heartbeat {\n  mode mesh\n  mesh-seed-address-port a 3002\n  mesh-seed-address-port b 3002\n }\n}\n\
                  namespace t {\n default-ttl 1;x=y\n}\n";
        let change = plan_change(&parse(from), &parse(to), "7.2.0.17");
        assert!(change.live.is_empty());
        assert_eq!(change.restart.len(), 2, "{:?}", change.restart);
        assert!(change.restart[0]
            .starts_with("`mesh-seed-address-port` list changed (network.heartbeat, line 4)"));
        assert!(change.restart[1].contains("cannot be sent"));
    }

    #[test]
    fn unknown_versions_restart_for_any_change() {
        let to = BASE.replace("proto-fd-max 15000", "proto-fd-max 16000");
        let change = plan_change(&parse(BASE), &parse(&to), "6.4.0.1");
        assert!(change.live.is_empty());
        assert_eq!(change.restart[0], "no dynamic table for server version 6.4");
        assert!(change.restart[1].contains("`proto-fd-max` changed"));
    }

    #[test]
    fn values_are_normalised_and_verified() {
        let to = BASE.replace(
            "default-ttl 0",
            "default-ttl 30d\n\tnsup-period 1m\n\tindexes-memory-budget 4G",
        );
        let change = plan_change(&parse(BASE), &parse(&to), "7.1.0.23");
        let values: Vec<&str> = change.live.iter().map(|l| l.value.as_str()).collect();
        assert_eq!(values, ["2592000", "60", "4294967296"]);
        let ttl = &change.live[0];
        assert_eq!(
            ttl.verify("allow-ttl-without-nsup=false;default-ttl=2592000;x=1"),
            Ok(())
        );
        let err = ttl.verify("default-ttl=0").unwrap_err();
        assert!(err.contains("reports default-ttl=0, not 2592000"), "{err}");
        assert!(ttl.verify("ERROR::namespace not found").is_err());
        assert!(ttl
            .verify("other=1")
            .unwrap_err()
            .contains("has no default-ttl"));
        let storage = LiveParam {
            context: LiveContext::Namespace("test".into()),
            name: "read-page-cache".into(),
            value: normalise("yes"),
            line: 1,
        };
        assert_eq!(
            storage.verify("storage-engine.read-page-cache=true"),
            Ok(())
        );
        assert_eq!(normalise("4K"), "4096");
        assert_eq!(normalise("abc"), "abc");
        assert_eq!(normalise("G"), "G");
    }

    /// docs/dynamic-config.md is [`markdown`]; `ASW_BLESS=1 cargo test`
    /// rewrites it after a change to the tables.
    #[test]
    fn docs_dynamic_config_md_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC_PATH);
        let fresh = markdown();
        if std::env::var_os("ASW_BLESS").is_some_and(|v| v == "1") {
            let doc = std::fs::read_to_string(&path).unwrap_or_default();
            if fresh != doc {
                std::fs::write(&path, &fresh).expect("write docs/dynamic-config.md");
            }
            return;
        }
        let doc = std::fs::read_to_string(&path).expect("read docs/dynamic-config.md");
        assert!(
            fresh == doc,
            "docs/dynamic-config.md differs from the tables (src/serverconf/dynamic.rs); \
             regenerate it with `ASW_BLESS=1 cargo test -p aerospike-swarm-operator --lib \
             serverconf::dynamic` (or scripts/gen-docs)"
        );
    }
}
