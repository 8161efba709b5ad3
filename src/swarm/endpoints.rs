//! Every Docker Engine API endpoint the operator calls, in one list: the
//! least privilege a socket proxy in front of the engine must grant.
//!
//! `docs/docker-api.md` is generated from [`ENDPOINTS`] (a test keeps the
//! two equal), and the end-to-end socket-proxy test runs the operator
//! through a proxy that allows exactly the [`Use::Run`] entries and denies
//! everything else — so a call added here without a row fails that test.
//!
//! Paths are written without the `/vX.Y` version prefix the clients add;
//! `{id}` stands for one path segment (an id or a name).

/// Who needs an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// `run`: the operator's control loop.
    Run,
    /// `run`, only when `--operator-service` is not given: the operator
    /// asks which service its own container belongs to.
    RunDiscovery,
    /// The command line (`apply`, `status`, `validate --service`): the
    /// user's own credentials, usually not through the proxy.
    Cli,
}

impl Use {
    fn as_str(self) -> &'static str {
        match self {
            Use::Run => "run",
            Use::RunDiscovery => "run, without --operator-service",
            Use::Cli => "command line",
        }
    }
}

/// One endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DockerEndpoint {
    /// HTTP method.
    pub method: &'static str,
    /// Path template, e.g. `/services/{id}/update`.
    pub path: &'static str,
    /// Who calls it.
    pub used_by: Use,
    /// What for.
    pub why: &'static str,
}

const fn ep(
    method: &'static str,
    path: &'static str,
    used_by: Use,
    why: &'static str,
) -> DockerEndpoint {
    DockerEndpoint {
        method,
        path,
        used_by,
        why,
    }
}

/// Every endpoint, in the order the docs list them.
pub const ENDPOINTS: &[DockerEndpoint] = &[
    ep(
        "GET",
        "/version",
        Use::Run,
        "negotiate the API version at connect",
    ),
    ep(
        "GET",
        "/info",
        Use::Run,
        "refuse an engine that is not a swarm manager",
    ),
    ep(
        "GET",
        "/events",
        Use::Run,
        "service, node, secret and config events (triggers)",
    ),
    ep(
        "GET",
        "/services",
        Use::Run,
        "find the managed clusters (full resync)",
    ),
    ep(
        "GET",
        "/services/{id}",
        Use::Run,
        "read a cluster's service (and the operator's own)",
    ),
    ep(
        "POST",
        "/services/{id}/update",
        Use::Run,
        "status labels, replicas, placement, rollout steps; attach the operator to a network",
    ),
    ep(
        "GET",
        "/tasks",
        Use::Run,
        "the tasks of the clusters and their addresses",
    ),
    ep(
        "GET",
        "/nodes",
        Use::Run,
        "which swarm nodes can run a cluster's tasks",
    ),
    ep(
        "GET",
        "/networks/{id}",
        Use::Run,
        "the cluster's overlay network",
    ),
    ep(
        "GET",
        "/tasks/{id}/logs",
        Use::Run,
        "a node that refuses connections: whether its console says it is cold-starting, and how far",
    ),
    ep(
        "GET",
        "/secrets",
        Use::Run,
        "whether the config secret exists (by name; no secret data is read)",
    ),
    ep(
        "GET",
        "/configs",
        Use::Run,
        "the pause config <service>.paused and the leader lease (by name)",
    ),
    ep(
        "GET",
        "/configs/{id}",
        Use::Run,
        "read the leader lease, a cluster's status config <service>.status and its config \
         object (aerospike.cluster.config-object: the data, to check and diff it)",
    ),
    ep(
        "POST",
        "/configs/create",
        Use::Run,
        "create the leader lease and a cluster's status config",
    ),
    ep(
        "POST",
        "/configs/{id}/update",
        Use::Run,
        "renew or take the leader lease; write a cluster's live status (labels only, \
         version-checked)",
    ),
    ep(
        "DELETE",
        "/configs/{id}",
        Use::Run,
        "remove the status config of a cluster that is gone or let go",
    ),
    ep(
        "GET",
        "/containers/{id}/json",
        Use::RunDiscovery,
        "which service the operator's own container belongs to",
    ),
    ep(
        "POST",
        "/services/create",
        Use::Cli,
        "apply: create a cluster's service",
    ),
    ep(
        "DELETE",
        "/services/{id}",
        Use::Cli,
        "remove a service (tests)",
    ),
];

/// Whether `method` and `path` (as sent: with or without a `/vX.Y` prefix,
/// with or without a query) match one of `allowed`.
pub fn allows(allowed: &[DockerEndpoint], method: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let path = strip_version(path);
    allowed
        .iter()
        .any(|e| e.method.eq_ignore_ascii_case(method) && matches(e.path, path))
}

/// `path` without a leading `/v1.41`-style version segment.
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let version = &rest[..end];
        if !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return &rest[end..];
        }
    }
    path
}

fn matches(template: &str, path: &str) -> bool {
    let mut want = template.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some("{id}"), Some(segment)) if !segment.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The markdown table of `docs/docker-api.md`.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| Method | Path | Used by | What for |\n| --- | --- | --- | --- |\n");
    for e in ENDPOINTS {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            e.method,
            e.path,
            e.used_by.as_str(),
            e.why
        ));
    }
    out
}

/// The list of `run`'s endpoints in the README's "Least privilege"
/// paragraph: what a socket proxy in front of the operator must allow.
pub fn readme_run_list() -> String {
    ENDPOINTS
        .iter()
        .filter(|e| e.used_by == Use::Run)
        .map(|e| format!("- `{} {}`\n", e.method, e.path))
        .collect()
}

/// Replaces what is between `<!-- BEGIN generated: NAME -->\n` and
/// `<!-- END generated: NAME -->` in `text` with `content`.
#[cfg(test)]
fn splice(text: &str, name: &str, content: &str) -> String {
    let begin = format!("<!-- BEGIN generated: {name} -->\n");
    let end = format!("<!-- END generated: {name} -->");
    let start = text.find(&begin).expect("begin marker") + begin.len();
    let stop = text.find(&end).expect("end marker");
    format!("{}{content}{}", &text[..start], &text[stop..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Vec<DockerEndpoint> {
        ENDPOINTS
            .iter()
            .copied()
            .filter(|e| e.used_by == Use::Run)
            .collect()
    }

    #[test]
    fn paths_match_with_version_prefix_query_and_ids() {
        let run = run();
        assert!(allows(&run, "GET", "/v1.41/services/abc123"));
        assert!(allows(&run, "get", "/services/abc123"));
        assert!(allows(
            &run,
            "POST",
            "/v1.41/services/abc/update?version=12"
        ));
        assert!(allows(&run, "GET", "/v1.41/tasks?filters=%7B%7D"));
        assert!(allows(&run, "GET", "/version"));
        // Not on the list, or not for `run`.
        assert!(!allows(&run, "POST", "/v1.41/services/create"));
        assert!(!allows(&run, "DELETE", "/v1.41/services/abc"));
        assert!(!allows(&run, "GET", "/v1.41/containers/abc/json"));
        assert!(!allows(&run, "POST", "/v1.41/containers/create"));
        assert!(!allows(&run, "GET", "/v1.41/secrets/abc"));
        assert!(!allows(&run, "GET", "/v1.41/services/"));
        assert!(!allows(&run, "GET", "/v1.41/services/a/b"));
        assert!(!allows(&run, "POST", "/v1.41/services/abc"));
        // A version-looking segment elsewhere is a path segment.
        assert!(!allows(&run, "GET", "/vx/services"));
    }

    #[test]
    fn docs_list_every_endpoint() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/docker-api.md");
        let docs = std::fs::read_to_string(path).expect("docs/docker-api.md");
        let table = markdown_table();
        if std::env::var_os("ASW_BLESS").is_some() && !docs.contains(&table) {
            std::fs::write(path, splice(&docs, "docker-endpoints", &table)).unwrap();
            return;
        }
        assert!(
            docs.contains(&table),
            "docs/docker-api.md does not hold the table of swarm::endpoints::ENDPOINTS; \
             regenerate it with ASW_BLESS=1 cargo test --lib endpoints"
        );
    }

    /// The (method, path) pairs of `text`'s `- `METHOD PATH`` items
    /// between the markers `name`.
    fn listed(text: &str, name: &str) -> Vec<(String, String)> {
        let begin = format!("<!-- BEGIN generated: {name} -->");
        let end = format!("<!-- END generated: {name} -->");
        let start = text.find(&begin).expect("begin marker");
        let stop = text.find(&end).expect("end marker");
        text[start..stop]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- `")?.strip_suffix('`'))
            .filter_map(|e| e.split_once(' '))
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect()
    }

    /// The (method, path) pairs of the rows of docs/docker-api.md's table
    /// whose "Used by" is exactly `run`.
    fn documented_run(docs: &str) -> Vec<(String, String)> {
        docs.lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                // "", method, path, used by, why, ""
                (cells.len() >= 5 && cells[3] == "run").then(|| {
                    (
                        cells[1].trim_matches('`').to_string(),
                        cells[2].trim_matches('`').to_string(),
                    )
                })
            })
            .collect()
    }

    /// The README's socket-proxy paragraph lists exactly the `run`
    /// endpoints of docs/docker-api.md, each file read as it is (not as
    /// the code would write it), so a hand edit of either is caught.
    #[test]
    fn readme_lists_exactly_the_run_endpoints_of_the_docs() {
        let root = env!("CARGO_MANIFEST_DIR");
        let readme_path = format!("{root}/README.md");
        let readme = std::fs::read_to_string(&readme_path).expect("README.md");
        let docs = std::fs::read_to_string(format!("{root}/docs/docker-api.md")).expect("docs");
        let list = readme_run_list();
        if std::env::var_os("ASW_BLESS").is_some() && !readme.contains(&list) {
            std::fs::write(&readme_path, splice(&readme, "run-endpoints", &list)).unwrap();
            return;
        }
        let in_readme = listed(&readme, "run-endpoints");
        let in_docs = documented_run(&docs);
        let sorted = |mut v: Vec<(String, String)>| {
            v.sort();
            v
        };
        let code = sorted(
            run()
                .iter()
                .map(|e| (e.method.to_string(), e.path.to_string()))
                .collect(),
        );
        // The control: both parsers found the rows they read.
        assert_eq!(in_docs.len(), code.len(), "{in_docs:?}");
        assert_eq!(
            sorted(in_readme.clone()),
            sorted(in_docs.clone()),
            "README.md's run-endpoints list differs from docs/docker-api.md; \
             regenerate both with ASW_BLESS=1 cargo test --lib endpoints"
        );
        assert_eq!(sorted(in_readme), code);
        // A README missing one, or holding one more, fails.
        let short = readme.replacen("- `GET /version`\n", "", 1);
        assert_ne!(sorted(listed(&short, "run-endpoints")), code);
    }
}
