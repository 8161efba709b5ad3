//! The label reference: what every spec and status label means, in the
//! code, so that `explain` and the tables in docs/spec.md come from one
//! place. [`spec_table`] and [`status_table`] render the markdown tables;
//! a test fails while docs/spec.md holds other ones (`ASW_BLESS=1 cargo
//! test` rewrites them).

use super::status::{Phase, StatusField, STATUS_VALUE_MAX};
use super::validate::suggest;
use super::{Field, CLUSTER_PREFIX, STATUS_PREFIX};

/// What the reference says about one label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDoc {
    /// What its value looks like.
    pub type_: String,
    /// Its default; `None` for status labels, which have none.
    pub default: Option<&'static str>,
    /// What it is for.
    pub meaning: &'static str,
}

impl Field {
    /// The reference entry of this spec label.
    pub fn doc(self) -> FieldDoc {
        let (type_, default, meaning): (&str, &str, &str) = match self {
            Field::Replicas => (
                "whole number, 1–256 (1–8 for Community Edition)",
                "required",
                "Number of Aerospike nodes. Its presence makes the service managed.",
            ),
            Field::Version => (
                "Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`",
                "required",
                "Server version, used as the image tag (`7.1.0.0`, `ee-7.1.0.0`).",
            ),
            Field::Image => (
                "image repository, no tag or digest (`[host[:port]/]path`, path lowercase)",
                "the repository of the service's current image; `aerospike/aerospike-server` for a new service",
                "Where the server image comes from. The image run is `<image>:<version>`.",
            ),
            Field::ConfigSecret => (
                "swarm secret name: letters, digits, `_ . -`, starts and ends with a letter or digit, ≤ 64",
                "none",
                "Swarm secret that holds `aerospike.conf`.",
            ),
            Field::ConfigObject => (
                "swarm config name: letters, digits, `_ . -`, starts and ends with a letter or digit, ≤ 64",
                "none",
                "Swarm config (config object) that holds `aerospike.conf`, instead of a secret: Docker \
                 returns a config's data, so the operator checks a new config before it rolls and \
                 sets the parameters the server takes live without restarting a node. Not with \
                 `config-secret`; a config holding credentials stays a secret.",
            ),
            Field::ConfigTarget => (
                "absolute file path",
                "`/run/secrets/aerospike.conf`",
                "Where that secret is mounted (the path passed to `--config-file`).",
            ),
            Field::Paused => (
                "`true` or `false`",
                "`false`",
                "`true` stops every change the operator would make to this cluster; during a \
                 rollout, the next node is not released (the one changing is still meshed in). \
                 Mid-rollout, prefer the swarm config `<service>.paused` (same effect, and not a \
                 service update, which would let swarm replace one more node).",
            ),
            Field::HeartbeatPort => (
                "port, 1–65535",
                "`3002`",
                "Mesh heartbeat port; the operator tips nodes on it.",
            ),
            Field::ServicePort => (
                "port, 1–65535",
                "`3000`",
                "Client port; the operator sends info commands to it.",
            ),
            Field::FabricPort => ("port, 1–65535", "`3001`", "Intra-cluster fabric port."),
            Field::Network => (
                "Docker network name",
                "the service's first network",
                "Overlay network the nodes reach each other on; needed when the service has \
                 several. Required by `apply` to create a service.",
            ),
            Field::Edition => (
                "`community` or `enterprise`",
                "inferred: `enterprise` when the repository ends in `-enterprise` or the version \
                 starts with `ee-`, else `community`",
                "Which build runs. Community caps a cluster at 8 nodes and has no `quiesce`.",
            ),
            Field::StorageVolume => (
                "Docker volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, ≤ 255",
                "none: no storage, the data lives only as long as each container",
                "Persistent storage: a named volume, node-local (a volume belongs to one \
                 node's engine, which creates it when a task first mounts it), mounted in every \
                 task at `storage.path`, so that a task restarted or replaced on the same node \
                 finds its data. Point the server's `storage-engine device { file ... }` there \
                 (`crd-like-specs/examples/aerospike-device.conf`). Adding it to a running \
                 cluster, or changing any storage label, is a task-template change, rolled one \
                 node at a time. A task that swarm places on another node starts empty there \
                 and migrations refill it; the next node is released only once they are done. \
                 Removing the label leaves the mount in place (`docker service update \
                 --mount-rm PATH` takes it out, rolled the same way).",
            ),
            Field::StoragePath => (
                "absolute directory path (no `..`, `,` or `:`), not one that holds the config \
                 target",
                "`/opt/aerospike/data`",
                "Where the storage volume is mounted in every task; the directory of the \
                 data `file` in the server config.",
            ),
            Field::StorageDriver => (
                "volume driver name (`local`, or a plugin such as `vieux/sshfs:latest`)",
                "the engine's default, `local`",
                "The volume driver each node's engine creates the volume with. Only with \
                 `storage.volume`.",
            ),
            Field::StorageDriverOptions => (
                "label: `key=value,key=value` (values without commas); YAML: a mapping of names \
                 to text",
                "none",
                "Options for the volume driver (`docker volume create --opt`), e.g. \
                 `type=tmpfs,device=tmpfs` for the local driver. Used when an engine creates \
                 the volume: an existing volume keeps the options it was created with. Only \
                 with `storage.volume`.",
            ),
        };
        FieldDoc {
            type_: type_.to_string(),
            default: Some(default),
            meaning,
        }
    }
}

impl StatusField {
    /// The reference entry of this status label.
    pub fn doc(self) -> FieldDoc {
        let (type_, meaning): (String, &str) = match self {
            StatusField::Phase => (
                Phase::ALL
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                "Where the cluster is in its life.",
            ),
            StatusField::Ready => (
                "`ready/desired`, e.g. `3/4`".into(),
                "Nodes up and in the cluster, out of those asked for.",
            ),
            StatusField::Message => (
                format!("text, at most {STATUS_VALUE_MAX} bytes"),
                "A sentence for humans about the phase.",
            ),
            StatusField::ObservedVersion => (
                "whole number".into(),
                "The service `Version.Index` whose spec the operator last acted on.",
            ),
            StatusField::ClusterKey => (
                "hex".into(),
                "The cluster key the Aerospike nodes agreed on.",
            ),
            StatusField::MigrationsRemaining => (
                "whole number".into(),
                "While partitions migrate: how many remain, summed over the nodes. Rewritten \
                 when the count halves (or rises), not on every change; absent when none remain.",
            ),
            StatusField::Rollout => (
                "`done/total`, e.g. `1/3`".into(),
                "During a rollout: nodes running the new task template and in the cluster, out \
                 of all; written when the operator releases the next node.",
            ),
            StatusField::RolloutStep => (
                "whole number".into(),
                "During a rollout: how many times the operator let swarm replace the next node \
                 (each release write changes it).",
            ),
            StatusField::Image => (
                "image reference".into(),
                "The image every node ran when the cluster last converged: what a failed \
                 rollout goes back to.",
            ),
            StatusField::ConfigObject => (
                "swarm config name".into(),
                "The config object every node mounted when the cluster last converged.",
            ),
            StatusField::Config => (
                "`applied live (PARAM, …)`, `applying live (…) on N of M nodes` or `rolling restart (REASON)`".into(),
                "What the last change of a config object did: which parameters were set live \
                 with `set-config` (no node restarted), or why it needed a rolling restart.",
            ),
            StatusField::ConfigLive => (
                "swarm config name".into(),
                "The config object whose dynamic parameters every node runs live (set with \
                 `set-config`) while the task template still mounts the one before it; a node \
                 that restarts gets them again before the cluster counts as Ready, and the next \
                 rolling restart mounts this config.",
            ),
            StatusField::ConfigSecret => (
                "secret name".into(),
                "The config secret every node mounted when the cluster last converged.",
            ),
            StatusField::FailedRollout => (
                "image reference, with ` config-secret=NAME` when a config was rolled".into(),
                "A rollout target that failed and was rolled back; not tried again while the \
                 spec asks for it.",
            ),
        };
        FieldDoc {
            type_,
            default: None,
            meaning,
        }
    }
}

/// A spec or a status label: one entry of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// An `aerospike.cluster.*` label, written by the user.
    Spec(Field),
    /// An `aerospike.status.*` label, written by the operator.
    Status(StatusField),
}

impl Label {
    /// Every label: the spec ones, then the status ones.
    pub fn all() -> impl Iterator<Item = Label> {
        Field::ALL
            .into_iter()
            .map(Label::Spec)
            .chain(StatusField::ALL.into_iter().map(Label::Status))
    }

    /// The full label key.
    pub fn label(self) -> &'static str {
        match self {
            Label::Spec(f) => f.label(),
            Label::Status(f) => f.label(),
        }
    }

    /// The path in the YAML document: `spec.replicas`, `status.phase`.
    pub fn yaml_path(self) -> String {
        match self {
            Label::Spec(f) => format!("spec.{}", f.yaml_name()),
            Label::Status(f) => format!("status.{}", f.yaml_name()),
        }
    }

    /// The reference entry.
    pub fn doc(self) -> FieldDoc {
        match self {
            Label::Spec(f) => f.doc(),
            Label::Status(f) => f.doc(),
        }
    }

    /// Every name this label answers to: the label, its YAML path, its
    /// YAML name and the label without its prefix.
    fn names(self) -> Vec<String> {
        let (yaml, prefix) = match self {
            Label::Spec(f) => (f.yaml_name(), CLUSTER_PREFIX),
            Label::Status(f) => (f.yaml_name(), STATUS_PREFIX),
        };
        let label = self.label();
        vec![
            label.to_string(),
            self.yaml_path(),
            yaml.to_string(),
            label[prefix.len()..].to_string(),
        ]
    }
}

/// A name `explain` does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLabel {
    /// The name asked for.
    pub name: String,
    /// The closest known name, when one is close.
    pub suggestion: Option<String>,
}

impl std::fmt::Display for UnknownLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no label or field named {:?}", self.name)?;
        if let Some(near) = &self.suggestion {
            write!(f, "; did you mean {near}?")?;
        }
        Ok(())
    }
}

/// The labels `name` names: a label (`aerospike.cluster.replicas`), a
/// YAML path (`spec.replicas`), a YAML name (`replicas`, `configSecret`)
/// or a label without its prefix (`config-secret`). A bare name may name a
/// spec and a status label both (`image`): both are returned, spec first.
pub fn lookup(name: &str) -> Result<Vec<Label>, UnknownLabel> {
    let wanted = name.trim();
    let found: Vec<Label> = Label::all()
        .filter(|l| l.names().iter().any(|n| n.eq_ignore_ascii_case(wanted)))
        .collect();
    if !found.is_empty() {
        return Ok(found);
    }
    let candidates: Vec<String> = Label::all().flat_map(Label::names).collect();
    let near = suggest(wanted, candidates.iter().map(String::as_str)).and_then(|near| {
        // Suggest the canonical label, whichever of its names was close.
        Label::all()
            .find(|l| l.names().iter().any(|n| n == near))
            .map(|l| l.label().to_string())
    });
    Err(UnknownLabel {
        name: wanted.to_string(),
        suggestion: near,
    })
}

/// A markdown table cell: no line breaks, no unescaped `|`.
fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

/// The "Spec labels" table of docs/spec.md.
pub fn spec_table() -> String {
    let mut out = String::from(
        "| Label | YAML (`spec.`) | Type | Default | Meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for field in Field::ALL {
        let doc = field.doc();
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            field.label(),
            field.yaml_name(),
            cell(&doc.type_),
            cell(doc.default.unwrap_or("")),
            cell(doc.meaning)
        ));
    }
    out
}

/// The "Status labels" table of docs/spec.md.
pub fn status_table() -> String {
    let mut out =
        String::from("| Label | YAML (`status.`) | Value | Meaning |\n| --- | --- | --- | --- |\n");
    for field in StatusField::ALL {
        let doc = field.doc();
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            field.label(),
            field.yaml_name(),
            cell(&doc.type_),
            cell(doc.meaning)
        ));
    }
    out
}

/// Where the generated parts of docs/spec.md are, relative to the crate.
pub const SPEC_DOC_PATH: &str = "docs/spec.md";

/// The generated sections of docs/spec.md: marker name and content.
pub fn generated_sections() -> [(&'static str, String); 2] {
    [
        ("spec-labels", spec_table()),
        ("status-labels", status_table()),
    ]
}

/// Replaces what is between `<!-- BEGIN generated: NAME -->` and
/// `<!-- END generated: NAME -->` in `doc` with `body`.
pub fn replace_generated(doc: &str, name: &str, body: &str) -> Result<String, String> {
    let begin = format!("<!-- BEGIN generated: {name} -->");
    let end = format!("<!-- END generated: {name} -->");
    let start = doc
        .find(&begin)
        .ok_or_else(|| format!("no {begin} marker"))?
        + begin.len();
    let stop = doc[start..]
        .find(&end)
        .ok_or_else(|| format!("no {end} marker after {begin}"))?
        + start;
    Ok(format!("{}\n{}{}", &doc[..start], body, &doc[stop..]))
}

/// `doc` with every generated section brought up to date.
pub fn regenerate(doc: &str) -> Result<String, String> {
    let mut doc = doc.to_string();
    for (name, body) in generated_sections() {
        doc = replace_generated(&doc, name, &body)?;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_form_finds_the_label() {
        let replicas = [Label::Spec(Field::Replicas)];
        for name in [
            "replicas",
            "aerospike.cluster.replicas",
            "spec.replicas",
            "Replicas",
        ] {
            assert_eq!(lookup(name).unwrap(), replicas, "{name}");
        }
        let secret = Label::Spec(Field::ConfigSecret);
        assert_eq!(lookup("spec.configSecret").unwrap(), [secret]);
        assert_eq!(
            lookup("config-secret").unwrap(),
            [secret, Label::Status(StatusField::ConfigSecret)]
        );
        assert_eq!(
            lookup("aerospike.status.phase").unwrap(),
            [Label::Status(StatusField::Phase)]
        );
        assert_eq!(
            lookup("status.observedVersion").unwrap(),
            [Label::Status(StatusField::ObservedVersion)]
        );
    }

    #[test]
    fn an_unknown_name_suggests_the_closest_label() {
        let err = lookup("replica").unwrap_err();
        assert_eq!(
            err.suggestion.as_deref(),
            Some("aerospike.cluster.replicas")
        );
        assert_eq!(
            err.to_string(),
            "no label or field named \"replica\"; did you mean aerospike.cluster.replicas?"
        );
        let err = lookup("spec.configSecrets").unwrap_err();
        assert_eq!(
            err.suggestion.as_deref(),
            Some("aerospike.cluster.config-secret")
        );
        assert_eq!(lookup("zzzzzzzz").unwrap_err().suggestion, None);
    }

    #[test]
    fn every_label_has_a_doc_and_status_labels_no_default() {
        for label in Label::all() {
            let doc = label.doc();
            assert!(
                !doc.type_.is_empty() && !doc.meaning.is_empty(),
                "{label:?}"
            );
            assert_eq!(doc.default.is_some(), matches!(label, Label::Spec(_)));
        }
        assert!(StatusField::Phase.doc().type_.contains("`Ready`"));
    }

    #[test]
    fn replace_generated_swaps_only_the_marked_part() {
        let doc = "a\n<!-- BEGIN generated: t -->\nold\n<!-- END generated: t -->\nb\n";
        assert_eq!(
            replace_generated(doc, "t", "new\n").unwrap(),
            "a\n<!-- BEGIN generated: t -->\nnew\n<!-- END generated: t -->\nb\n"
        );
        assert!(replace_generated(doc, "u", "x").is_err());
    }

    /// docs/spec.md's tables are these; `ASW_BLESS=1 cargo test` rewrites
    /// them after a change to the docs above.
    #[test]
    fn docs_spec_md_tables_are_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC_DOC_PATH);
        let doc = std::fs::read_to_string(&path).expect("read docs/spec.md");
        let fresh = regenerate(&doc).expect("docs/spec.md has the generated-table markers");
        if std::env::var_os("ASW_BLESS").is_some_and(|v| v == "1") {
            if fresh != doc {
                std::fs::write(&path, &fresh).expect("write docs/spec.md");
            }
            return;
        }
        assert!(
            fresh == doc,
            "docs/spec.md's label tables differ from the code (src/spec/reference.rs); \
             regenerate them with `ASW_BLESS=1 cargo test -p aerospike-swarm-operator --lib \
             spec::reference` (or scripts/gen-docs)"
        );
    }
}
