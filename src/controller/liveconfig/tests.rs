use super::*;
use crate::serverconf::LiveContext;
use crate::swarm::SecretMount;

const EXAMPLE: &str = include_str!("../../../crd-like-specs/examples/aerospike.conf");

fn text(name: &str, text: &str) -> ConfigText {
    ConfigText {
        name: name.into(),
        text: text.into(),
    }
}

fn spec(version: &str, config: &str) -> ClusterSpec {
    let labels = crate::spec::label_map(&[
        ("aerospike.cluster.replicas", "3"),
        ("aerospike.cluster.version", version),
        ("aerospike.cluster.config-object", config),
    ]);
    ClusterSpec::from_labels(&labels, None).unwrap().unwrap()
}

/// A service on 7.1.0.0 mounting `conf-a`.
fn service() -> ServiceInfo {
    ServiceInfo {
        image: Some("aerospike/aerospike-server:7.1.0.0".into()),
        config_mounts: vec![SecretMount {
            name: "conf-a".into(),
            target: "/run/secrets/aerospike.conf".into(),
        }],
        ..ServiceInfo::default()
    }
}

fn raised() -> String {
    EXAMPLE.replace("proto-fd-max 15000", "proto-fd-max 16000")
}

/// The plan from `conf-a` (the example) to `conf-b` (proto-fd-max raised)
/// on a spec of `version`.
fn a_to_b(version: &str) -> Result<Vec<LiveParam>, Vec<String>> {
    let a = text("conf-a", EXAMPLE);
    let b = text("conf-b", &raised());
    plan(
        &spec(version, "conf-b"),
        &service(),
        &b,
        Some(&a),
        None,
        None,
    )
}

#[test]
fn a_dynamic_change_alone_is_live_and_with_a_new_version_it_rolls() {
    let live = a_to_b("7.1.0.0").unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].context, LiveContext::Service);
    assert_eq!(
        (live[0].name.as_str(), live[0].value.as_str()),
        ("proto-fd-max", "16000")
    );
    // The control: the same config with a new version rolls (the restart
    // mounts it).
    assert!(a_to_b("7.2.0.0").unwrap_err()[0].contains("image"));
    let a = text("conf-a", EXAMPLE);
    let b = text("conf-b", &raised());
    // A refusal seen before rolls, in the node's words.
    let refused = plan(
        &spec("7.1.0.0", "conf-b"),
        &service(),
        &b,
        Some(&a),
        None,
        Some("node 10.0.0.2:3000 refused set-config proto-fd-max=16000: error"),
    );
    assert!(refused.unwrap_err()[0].contains("refused"));
    // No config object mounted yet (a secret before): a restart mounts it.
    let first = plan(&spec("7.1.0.0", "conf-b"), &service(), &b, None, None, None);
    assert!(first.unwrap_err()[0].contains("mounts no config object"));
}

#[test]
fn going_back_to_the_mounted_config_undoes_the_live_values() {
    let a = text("conf-a", EXAMPLE);
    let b = text("conf-b", &raised());
    // The spec names conf-a again while conf-b runs live.
    let back = plan(
        &spec("7.1.0.0", "conf-a"),
        &service(),
        &a,
        Some(&a),
        Some(&b),
        None,
    )
    .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].value, "15000");
}

#[test]
fn a_node_lacks_what_its_get_config_does_not_show() {
    let params = a_to_b("7.1.0.0").unwrap();
    let command = params[0].get_command();
    let replies = |value: &str| {
        BTreeMap::from([(
            command.clone(),
            format!("cluster-name=x;proto-fd-max={value};x=1"),
        )])
    };
    assert!(unverified(&params, &replies("16000")).is_empty());
    assert_eq!(unverified(&params, &replies("15000")), params);
    assert_eq!(
        unverified(&params, &BTreeMap::new()),
        params,
        "unread counts as lacking"
    );
}

#[test]
fn the_status_is_not_ready_while_a_node_lacks_a_live_value() {
    let param = LiveParam {
        context: LiveContext::Service,
        name: "proto-fd-max".into(),
        value: "16000".into(),
        line: 3,
    };
    let ready = ClusterStatus {
        phase: Some(Phase::Ready),
        ..ClusterStatus::default()
    };
    let node = "10.0.0.2:3000".parse().unwrap();
    let observation = |pending: Vec<LiveParam>| ConfigObservation::Live {
        to: "conf-b".into(),
        mounted: "conf-a".into(),
        params: vec![param.clone()],
        pending: BTreeMap::from([(node, pending)]),
    };
    let waiting = shape_status(ready.clone(), &observation(vec![param.clone()]), 3);
    assert_eq!(waiting.phase, Some(Phase::Upgrading));
    assert_eq!(
        waiting.config.as_deref(),
        Some("applying live (proto-fd-max)")
    );
    let done = shape_status(ready.clone(), &observation(Vec::new()), 3);
    assert_eq!(done.phase, Some(Phase::Ready));
    assert_eq!(done.config.as_deref(), Some("applied live (proto-fd-max)"));
    assert_eq!(done.config_live.as_deref(), Some("conf-b"));
    // Settled (the template mounts what runs): nothing runs live.
    let settled = shape_status(done, &ConfigObservation::Settled, 3);
    assert_eq!(settled.config_live, None);
    let pending = observation(vec![param.clone()]);
    assert_eq!(live_orders(&pending, |_| true), vec![]);
    assert_eq!(live_orders(&pending, |_| false).len(), 1);
}
