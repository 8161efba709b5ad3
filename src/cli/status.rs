//! `status [NAME] [--watch] [-o table|json|yaml]`: every managed cluster
//! (a service with `aerospike.cluster.replicas`) as its status labels
//! describe it, like `kubectl get`.
//!
//! JSON and YAML have stable field names (camelCase, every field always
//! present, `null` when unknown): a list (`status`) is an array of
//! [`ClusterRow`], one cluster (`status NAME`) is one object.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

use aerospike_swarm_operator::spec::{self, ClusterStatus, STATUS_PREFIX};
use aerospike_swarm_operator::swarm::{with_live_status, ServiceInfo, SwarmApi, SwarmError};

use super::{connect, exit, no_such_service, swarm_error_hint};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One cluster (service name); every managed cluster without it.
    pub name: Option<String>,
    /// Keep watching: redraw whenever the status changes (Ctrl-C stops).
    #[arg(short, long)]
    pub watch: bool,
    /// Output format: an aligned table, or JSON/YAML for scripts (field
    /// names are stable: see the README, "The command line").
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
}

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// JSON: an array, or one object for `status NAME`.
    Json,
    /// YAML: a list, or one mapping for `status NAME`.
    Yaml,
}

/// One managed cluster, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRow {
    /// The service name.
    pub name: String,
    /// `aerospike.status.phase`; `null` before the operator wrote one.
    pub phase: Option<String>,
    /// Nodes ready (`aerospike.status.ready`, the part before `/`).
    pub ready: Option<u32>,
    /// Nodes wanted: `aerospike.cluster.replicas`.
    pub desired: Option<u32>,
    /// `aerospike.cluster.version`.
    pub version: Option<String>,
    /// The image the service's tasks run now.
    pub image: Option<String>,
    /// `aerospike.cluster.config-secret`.
    pub config_secret: Option<String>,
    /// `aerospike.cluster.config-object`.
    pub config_object: Option<String>,
    /// `aerospike.status.config`: what the last change of the config
    /// object did (`applied live (proto-fd-max)`, `rolling restart (…)`).
    pub config_change: Option<String>,
    /// `aerospike.status.cluster-key`.
    pub cluster_key: Option<String>,
    /// `aerospike.status.migrations-remaining` (absent: none remain).
    pub migrations_remaining: Option<u64>,
    /// `aerospike.status.rollout`, e.g. `1/3`, during a rollout.
    pub rollout: Option<String>,
    /// `aerospike.status.message`: what the cluster waits for.
    pub message: Option<String>,
    /// `aerospike.status.observed-version`.
    pub observed_version: Option<u64>,
    /// The service's `Version.Index`.
    pub service_version: u64,
    /// `aerospike.cluster.paused` is `true`.
    pub paused: bool,
}

/// The row of a managed service; `None` for any other service.
pub fn row(service: &ServiceInfo) -> Option<ClusterRow> {
    let label = |key: &str| service.labels.get(key).cloned();
    let replicas = label(spec::REPLICAS)?;
    let status = ClusterStatus::from_labels(
        service
            .labels
            .iter()
            .filter(|(k, _)| k.starts_with(STATUS_PREFIX)),
    );
    Some(ClusterRow {
        name: service.name.clone(),
        phase: status.phase.map(|p| p.to_string()),
        ready: status.ready.map(|r| r.ready),
        desired: replicas.trim().parse().ok(),
        version: label(spec::VERSION),
        image: service.image.clone(),
        config_secret: label(spec::CONFIG_SECRET),
        config_object: label(spec::CONFIG_OBJECT),
        config_change: status.config,
        cluster_key: status.cluster_key,
        migrations_remaining: status.migrations_remaining,
        rollout: status.rollout.map(|r| r.to_string()),
        message: status.message,
        observed_version: status.observed_version,
        service_version: service.version,
        paused: label(spec::PAUSED).is_some_and(|p| p == "true"),
    })
}

/// Why `status` has nothing to show.
#[derive(Debug)]
pub enum StatusError {
    /// `status NAME` of a service that does not exist.
    NoSuchService(String),
    /// `status NAME` of a service that is not a cluster.
    NotManaged(String),
    /// Docker failed.
    Swarm(SwarmError),
}

impl StatusError {
    /// 1 for a wrong name, 2 when Docker failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            StatusError::Swarm(_) => exit::CANNOT_CHECK,
            _ => exit::FAILURE,
        }
    }
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusError::NoSuchService(name) => f.write_str(&no_such_service(name)),
            StatusError::NotManaged(name) => write!(
                f,
                "service {name:?} is not a managed cluster: it has no {} label (add it, or \
                 apply an AerospikeCluster document)",
                spec::REPLICAS
            ),
            StatusError::Swarm(error) => f.write_str(&swarm_error_hint(error)),
        }
    }
}

/// The rows to show: every managed cluster by name, or the one asked for.
pub async fn collect<A: SwarmApi>(
    api: &A,
    name: Option<&str>,
) -> Result<Vec<ClusterRow>, StatusError> {
    match name {
        Some(name) => {
            let service = match api.inspect_service(name).await {
                Ok(service) => service,
                Err(e) if e.is_not_found() => {
                    return Err(StatusError::NoSuchService(name.to_string()))
                }
                Err(e) => return Err(StatusError::Swarm(e)),
            };
            if row(&service).is_none() {
                return Err(StatusError::NotManaged(name.to_string()));
            }
            let service = with_live_status(api, service)
                .await
                .map_err(StatusError::Swarm)?;
            Ok(row(&service).into_iter().collect())
        }
        None => {
            let services = api.list_services().await.map_err(StatusError::Swarm)?;
            let mut rows = Vec::new();
            for service in services {
                if row(&service).is_some() {
                    let service = with_live_status(api, service)
                        .await
                        .map_err(StatusError::Swarm)?;
                    rows.extend(row(&service));
                }
            }
            rows.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(rows)
        }
    }
}

/// The aligned table.
pub fn table(rows: &[ClusterRow]) -> String {
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut lines: Vec<[String; 9]> = vec![[
        "NAME".into(),
        "PHASE".into(),
        "READY".into(),
        "VERSION".into(),
        "CONFIG".into(),
        "CLUSTER-KEY".into(),
        "MIGRATIONS".into(),
        "ROLLOUT".into(),
        "MESSAGE".into(),
    ]];
    for r in rows {
        let ready = match (r.ready, r.desired) {
            (Some(ready), Some(desired)) => format!("{ready}/{desired}"),
            (None, Some(desired)) => format!("-/{desired}"),
            (Some(ready), None) => format!("{ready}/?"),
            (None, None) => "-".into(),
        };
        let phase = match (&r.phase, r.paused) {
            (Some(phase), _) => phase.clone(),
            (None, true) => "Paused".into(),
            (None, false) => "-".into(),
        };
        lines.push([
            r.name.clone(),
            phase,
            ready,
            dash(r.version.clone()),
            // The config's source: the secret, or the config object.
            dash(r.config_secret.clone().or_else(|| r.config_object.clone())),
            dash(r.cluster_key.clone()),
            dash(r.migrations_remaining.map(|n| n.to_string())),
            dash(r.rollout.clone()),
            r.message.clone().unwrap_or_default(),
        ]);
    }
    let mut widths = [0usize; 9];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The rows in `output` form; `one` prints a single object, not a list.
pub fn render(rows: &[ClusterRow], output: Output, one: bool) -> String {
    match (output, one, rows.first()) {
        (Output::Table, _, _) => table(rows),
        (Output::Json, true, Some(row)) => json(row),
        (Output::Json, _, _) => json(&rows),
        (Output::Yaml, true, Some(row)) => serde_norway::to_string(row).unwrap_or_default(),
        (Output::Yaml, _, _) => serde_norway::to_string(&rows).unwrap_or_default(),
    }
}

fn json(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

pub async fn run(args: StatusArgs) -> ExitCode {
    let docker = match connect().await {
        Ok(docker) => docker,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(exit::CANNOT_CHECK);
        }
    };
    let one = args.name.is_some();
    let mut last: Option<String> = None;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let rows = match collect(&docker, args.name.as_deref()).await {
            Ok(rows) => rows,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(error.exit_code());
            }
        };
        let mut text = render(&rows, args.output, one);
        if rows.is_empty() && args.output == Output::Table {
            text = format!(
                "no managed clusters (services with the {} label)\n",
                spec::REPLICAS
            );
        }
        if last.as_deref() != Some(text.as_str()) {
            if args.watch && terminal && args.output == Output::Table {
                // Clear the screen and redraw from the top.
                print!("\x1b[H\x1b[2J");
            }
            print!("{text}");
            if args.watch && args.output == Output::Yaml {
                println!("---");
            }
            last = Some(text);
        }
        if !args.watch {
            return ExitCode::from(exit::OK);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::from(exit::OK),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aerospike_swarm_operator::swarm::FakeSwarm;

    use super::*;

    fn service(name: &str, pairs: &[(&str, &str)]) -> ServiceInfo {
        ServiceInfo {
            id: format!("id-{name}"),
            name: name.into(),
            version: 42,
            image: Some("aerospike/aerospike-server:7.1.0.0".into()),
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..ServiceInfo::default()
        }
    }

    fn ready_db() -> ServiceInfo {
        service(
            "aerospikedb",
            &[
                ("aerospike.cluster.replicas", "3"),
                ("aerospike.cluster.version", "7.1.0.0"),
                ("aerospike.cluster.config-secret", "aerospike.conf"),
                ("aerospike.status.phase", "Ready"),
                ("aerospike.status.ready", "3/3"),
                ("aerospike.status.cluster-key", "A1B2C3D4E5F6"),
                ("aerospike.status.observed-version", "41"),
                ("aerospike.status.message", "3 nodes in one cluster"),
            ],
        )
    }

    fn upgrading() -> ServiceInfo {
        service(
            "cache",
            &[
                ("aerospike.cluster.replicas", "5"),
                ("aerospike.cluster.version", "7.2.0.0"),
                ("aerospike.status.phase", "Upgrading"),
                ("aerospike.status.ready", "4/5"),
                ("aerospike.status.rollout", "1/5"),
                ("aerospike.status.migrations-remaining", "1383"),
                ("aerospike.status.message", "waiting for migrations"),
            ],
        )
    }

    #[test]
    fn rows_come_from_the_labels_and_skip_unmanaged_services() {
        let row = row(&ready_db()).unwrap();
        assert_eq!(row.phase.as_deref(), Some("Ready"));
        assert_eq!((row.ready, row.desired), (Some(3), Some(3)));
        assert_eq!(row.cluster_key.as_deref(), Some("A1B2C3D4E5F6"));
        assert_eq!(row.observed_version, Some(41));
        assert_eq!(row.service_version, 42);
        assert!(super::row(&service("web", &[("app", "web")])).is_none());
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let rows = vec![row(&ready_db()).unwrap(), row(&upgrading()).unwrap()];
        assert_eq!(
            table(&rows),
            "NAME         PHASE      READY  VERSION  CONFIG          CLUSTER-KEY   MIGRATIONS  ROLLOUT  MESSAGE\n\
             aerospikedb  Ready      3/3    7.1.0.0  aerospike.conf  A1B2C3D4E5F6  -           -        3 nodes in one cluster\n\
             cache        Upgrading  4/5    7.2.0.0  -               -             1383        1/5      waiting for migrations\n"
        );
    }

    #[test]
    fn json_and_yaml_have_every_field_with_stable_names() {
        let rows = vec![row(&ready_db()).unwrap()];
        let one: serde_json::Value =
            serde_json::from_str(&render(&rows, Output::Json, true)).unwrap();
        assert_eq!(
            one,
            serde_json::json!({
                "name": "aerospikedb",
                "phase": "Ready",
                "ready": 3,
                "desired": 3,
                "version": "7.1.0.0",
                "image": "aerospike/aerospike-server:7.1.0.0",
                "configSecret": "aerospike.conf",
                "configObject": null,
                "configChange": null,
                "clusterKey": "A1B2C3D4E5F6",
                "migrationsRemaining": null,
                "rollout": null,
                "message": "3 nodes in one cluster",
                "observedVersion": 41,
                "serviceVersion": 42,
                "paused": false
            })
        );
        let list: serde_json::Value =
            serde_json::from_str(&render(&rows, Output::Json, false)).unwrap();
        assert_eq!(list[0], one);
        let yaml = render(&rows, Output::Yaml, true);
        assert!(yaml.contains("clusterKey: A1B2C3D4E5F6\n"), "{yaml}");
        assert!(yaml.contains("migrationsRemaining: null\n"), "{yaml}");
        let yaml_list = render(&rows, Output::Yaml, false);
        assert!(
            yaml_list.starts_with("- name: aerospikedb\n"),
            "{yaml_list}"
        );
    }

    #[tokio::test]
    async fn one_name_or_all_managed_clusters_sorted() {
        let fake = FakeSwarm::new();
        fake.put_service(upgrading());
        fake.put_service(ready_db());
        fake.put_service(service("web", &[]));
        let all = collect(&fake, None).await.unwrap();
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["aerospikedb", "cache"]);
        assert_eq!(collect(&fake, Some("cache")).await.unwrap().len(), 1);
        let err = collect(&fake, Some("nope")).await.unwrap_err();
        assert_eq!(err.exit_code(), exit::FAILURE);
        assert!(err.to_string().starts_with("no such service \"nope\""));
        let err = collect(&fake, Some("web")).await.unwrap_err();
        assert!(err
            .to_string()
            .starts_with("service \"web\" is not a managed cluster"));
        fake.set_unreachable(true);
        let err = collect(&fake, None).await.unwrap_err();
        assert_eq!(err.exit_code(), exit::CANNOT_CHECK);
    }

    #[test]
    fn status_flags_parse() {
        use super::super::{Cli, Command};
        use clap::Parser;
        let cli = Cli::try_parse_from(["x", "status", "db", "-o", "json", "--watch"]).unwrap();
        let Command::Status(args) = cli.command else {
            panic!("expected status")
        };
        assert_eq!(args.name.as_deref(), Some("db"));
        assert_eq!(args.output, Output::Json);
        assert!(args.watch);
        assert!(Cli::try_parse_from(["x", "status", "-o", "xml"]).is_err());
    }
}
