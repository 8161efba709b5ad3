//! Swarm placement constraints, evaluated the way swarmkit's scheduler does,
//! so the operator can count the nodes a service's tasks may run on.
//!
//! A constraint is `KEY==VALUE` or `KEY!=VALUE`. Keys, as in swarmkit:
//! `node.id`, `node.hostname`, `node.role`, `node.platform.os`,
//! `node.platform.arch`, `node.labels.NAME`, `engine.labels.NAME`. Values
//! compare case-insensitively; a label the node lacks compares as the empty
//! string (so `node.labels.ssd!=true` matches a node without the label).

use std::fmt;

use super::types::{NodeInfo, NodeRole};

/// Why a constraint string cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// No `==` or `!=` in it.
    #[error("placement constraint {0:?} has no operator: write KEY==VALUE or KEY!=VALUE")]
    NoOperator(String),
    /// Nothing before the operator.
    #[error("placement constraint {0:?} has no key before the operator")]
    EmptyKey(String),
    /// Nothing after the operator.
    #[error("placement constraint {0:?} has no value after the operator")]
    EmptyValue(String),
    /// A key swarm does not know, or this operator does not evaluate.
    #[error(
        "placement constraint {constraint:?}: unsupported key {key:?} (supported: node.id, \
         node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.NAME, \
         engine.labels.NAME)"
    )]
    UnknownKey {
        /// The whole constraint.
        constraint: String,
        /// Its key.
        key: String,
    },
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// Must equal.
    Equal,
    /// Must differ.
    NotEqual,
}

/// What a constraint looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKey {
    /// `node.id`
    NodeId,
    /// `node.hostname`
    Hostname,
    /// `node.role` (`manager` or `worker`)
    Role,
    /// `node.platform.os`
    Os,
    /// `node.platform.arch`
    Arch,
    /// `node.labels.NAME`
    NodeLabel(String),
    /// `engine.labels.NAME`
    EngineLabel(String),
}

/// One parsed placement constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// What is compared.
    pub key: ConstraintKey,
    /// How.
    pub op: Operator,
    /// With what.
    pub value: String,
}

impl Constraint {
    /// Parses `KEY==VALUE` / `KEY!=VALUE`; spaces around key and value are
    /// ignored, as in swarm.
    pub fn parse(text: &str) -> Result<Constraint, ConstraintError> {
        // swarmkit looks for `==` first, then `!=`, and splits at the first
        // occurrence.
        let (key, op, value) = if let Some((k, v)) = text.split_once("==") {
            (k, Operator::Equal, v)
        } else if let Some((k, v)) = text.split_once("!=") {
            (k, Operator::NotEqual, v)
        } else {
            return Err(ConstraintError::NoOperator(text.to_string()));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(ConstraintError::EmptyKey(text.to_string()));
        }
        if value.is_empty() {
            return Err(ConstraintError::EmptyValue(text.to_string()));
        }
        let lower = key.to_ascii_lowercase();
        let label = |prefix: &str| {
            lower
                .starts_with(prefix)
                .then(|| key[prefix.len()..].to_string())
                .filter(|name| !name.is_empty())
        };
        let key = match lower.as_str() {
            "node.id" => ConstraintKey::NodeId,
            "node.hostname" => ConstraintKey::Hostname,
            "node.role" => ConstraintKey::Role,
            "node.platform.os" => ConstraintKey::Os,
            "node.platform.arch" => ConstraintKey::Arch,
            _ => match (label("node.labels."), label("engine.labels.")) {
                (Some(name), _) => ConstraintKey::NodeLabel(name),
                (_, Some(name)) => ConstraintKey::EngineLabel(name),
                _ => {
                    return Err(ConstraintError::UnknownKey {
                        constraint: text.to_string(),
                        key: key.to_string(),
                    })
                }
            },
        };
        Ok(Constraint {
            key,
            op,
            value: value.to_string(),
        })
    }

    /// Whether `node` satisfies this constraint.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        let actual: &str = match &self.key {
            ConstraintKey::NodeId => &node.id,
            ConstraintKey::Hostname => &node.hostname,
            ConstraintKey::Role => match node.role {
                NodeRole::Manager => "manager",
                NodeRole::Worker => "worker",
            },
            ConstraintKey::Os => &node.platform.os,
            ConstraintKey::Arch => &node.platform.arch,
            ConstraintKey::NodeLabel(name) => node.labels.get(name).map_or("", String::as_str),
            ConstraintKey::EngineLabel(name) => {
                node.engine_labels.get(name).map_or("", String::as_str)
            }
        };
        let equal = actual.eq_ignore_ascii_case(&self.value);
        match self.op {
            Operator::Equal => equal,
            Operator::NotEqual => !equal,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match &self.key {
            ConstraintKey::NodeId => "node.id".to_string(),
            ConstraintKey::Hostname => "node.hostname".to_string(),
            ConstraintKey::Role => "node.role".to_string(),
            ConstraintKey::Os => "node.platform.os".to_string(),
            ConstraintKey::Arch => "node.platform.arch".to_string(),
            ConstraintKey::NodeLabel(name) => format!("node.labels.{name}"),
            ConstraintKey::EngineLabel(name) => format!("engine.labels.{name}"),
        };
        let op = match self.op {
            Operator::Equal => "==",
            Operator::NotEqual => "!=",
        };
        write!(f, "{key}{op}{}", self.value)
    }
}

/// Parses every constraint, failing on the first malformed one.
pub fn parse_constraints<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Constraint>, ConstraintError> {
    texts
        .iter()
        .map(|t| Constraint::parse(t.as_ref()))
        .collect()
}

/// The nodes a service with these constraints may run tasks on: Ready,
/// Active, and matching every constraint.
pub fn eligible_nodes<'a, S: AsRef<str>>(
    nodes: &'a [NodeInfo],
    constraints: &[S],
) -> Result<Vec<&'a NodeInfo>, ConstraintError> {
    let constraints = parse_constraints(constraints)?;
    Ok(nodes
        .iter()
        .filter(|n| n.is_schedulable() && constraints.iter().all(|c| c.matches(n)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::types::{Availability, NodeState, Platform};
    use std::collections::BTreeMap;

    fn node(id: &str, role: NodeRole) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            hostname: format!("host-{id}"),
            role,
            availability: Availability::Active,
            state: NodeState::Ready,
            labels: BTreeMap::new(),
            engine_labels: BTreeMap::new(),
            addr: None,
            platform: Platform {
                os: "linux".into(),
                arch: "x86_64".into(),
            },
        }
    }

    fn ids(nodes: Vec<&NodeInfo>) -> Vec<&str> {
        nodes.iter().map(|n| n.id.as_str()).collect()
    }

    #[test]
    fn no_constraints_means_every_schedulable_node() {
        let mut down = node("d", NodeRole::Worker);
        down.state = NodeState::Down;
        let mut drained = node("dr", NodeRole::Worker);
        drained.availability = Availability::Drain;
        let mut paused = node("p", NodeRole::Worker);
        paused.availability = Availability::Pause;
        let nodes = [
            node("a", NodeRole::Manager),
            down,
            drained,
            paused,
            node("b", NodeRole::Worker),
        ];
        assert_eq!(
            ids(eligible_nodes::<&str>(&nodes, &[]).unwrap()),
            ["a", "b"]
        );
    }

    #[test]
    fn role_hostname_id_and_platform() {
        let nodes = [node("a", NodeRole::Manager), node("b", NodeRole::Worker)];
        assert_eq!(
            ids(eligible_nodes(&nodes, &["node.role==worker"]).unwrap()),
            ["b"]
        );
        assert_eq!(
            ids(eligible_nodes(&nodes, &["node.role != manager"]).unwrap()),
            ["b"]
        );
        assert_eq!(
            ids(eligible_nodes(&nodes, &["node.role==MANAGER"]).unwrap()),
            ["a"]
        );
        assert_eq!(
            ids(eligible_nodes(&nodes, &["node.hostname==host-a"]).unwrap()),
            ["a"]
        );
        assert_eq!(ids(eligible_nodes(&nodes, &["node.id!=a"]).unwrap()), ["b"]);
        assert_eq!(
            ids(eligible_nodes(
                &nodes,
                &["node.platform.os==linux", "node.platform.arch==x86_64"]
            )
            .unwrap()),
            ["a", "b"]
        );
        assert!(eligible_nodes(&nodes, &["node.platform.arch==aarch64"])
            .unwrap()
            .is_empty());
        // Keys are case-insensitive too.
        assert_eq!(
            ids(eligible_nodes(&nodes, &["Node.Role==worker"]).unwrap()),
            ["b"]
        );
    }

    #[test]
    fn node_and_engine_labels() {
        let mut a = node("a", NodeRole::Worker);
        a.labels.insert("ssd".into(), "true".into());
        a.engine_labels.insert("zone".into(), "eu-1".into());
        let b = node("b", NodeRole::Worker);
        let nodes = [a, b];
        assert_eq!(
            ids(eligible_nodes(&nodes, &["node.labels.ssd==true"]).unwrap()),
            ["a"]
        );
        // A missing label is "", so != matches nodes without it.
        assert_eq!(
            ids(eligible_nodes(&nodes, &["node.labels.ssd!=true"]).unwrap()),
            ["b"]
        );
        assert_eq!(
            ids(eligible_nodes(&nodes, &["engine.labels.zone==EU-1"]).unwrap()),
            ["a"]
        );
        assert!(
            eligible_nodes(&nodes, &["node.labels.ssd==true", "node.labels.other==x"])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn label_names_keep_their_case() {
        let c = Constraint::parse("node.labels.Rack==A1").unwrap();
        assert_eq!(c.key, ConstraintKey::NodeLabel("Rack".into()));
        assert_eq!(c.to_string(), "node.labels.Rack==A1");
    }

    #[test]
    fn malformed_constraints_are_clear_errors() {
        let cases = [
            ("node.role=worker", "no operator"),
            ("==worker", "no key"),
            ("node.role==", "no value"),
            ("node.role!=  ", "no value"),
            ("node.colour==red", "unsupported key"),
            ("node.labels.==x", "unsupported key"),
            ("node.ip==10.0.0.0/8", "unsupported key"),
        ];
        for (text, expected) in cases {
            let err = Constraint::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(message.contains(text.trim()), "{text}: {message}");
        }
        let nodes = [node("a", NodeRole::Worker)];
        assert!(eligible_nodes(&nodes, &["node.role==worker", "bogus"]).is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "node.role==worker",
            "node.labels.x!=y",
            "engine.labels.z==1",
            "node.id==abc",
        ] {
            assert_eq!(Constraint::parse(text).unwrap().to_string(), text);
        }
    }
}
