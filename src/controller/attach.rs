//! The operator's own network: a cluster's nodes are reached on the
//! cluster's overlay network, so the operator's service must be attached to
//! it too.
//!
//! A cluster made by `docker stack deploy` lives on `<stack>_<network>`,
//! which the operator cannot know in advance. When a managed cluster's
//! network is one the operator's service is not on, the operator attaches
//! itself: an update of its own service, which swarm rolls out by
//! replacing the operator's task(s) — once, one at a time with several
//! replicas (`deploy/operator.yml` sets parallelism 1). With
//! `--no-attach-networks` it attaches nothing and the cluster's status
//! gives the exact command instead.

/// The operator's own swarm service, when it runs as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorService {
    /// Its name (or id).
    pub name: String,
    /// Whether the operator may attach its service to a cluster's network
    /// (false with `--no-attach-networks`).
    pub attach: bool,
}

/// What to do about the operator's access to a cluster's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The operator's service is on the network (or the operator does not
    /// run as a service, and the user connected it some other way).
    Attached,
    /// Attach the operator's service to the network (restarts its task).
    Attach {
        /// The operator's service, to update.
        service: String,
        /// The network's id.
        network_id: String,
        /// What the log line says.
        reason: String,
    },
    /// Not attached, and attaching is forbidden: the status says this.
    Forbidden(String),
}

/// Decides from the operator's service's networks (`own_networks`: ids)
/// and the cluster's network.
pub fn decide(
    operator: &OperatorService,
    own_networks: &[String],
    network_id: &str,
    network_name: &str,
) -> Reach {
    if own_networks.iter().any(|n| n == network_id) {
        return Reach::Attached;
    }
    let service = &operator.name;
    if operator.attach {
        Reach::Attach {
            service: service.clone(),
            network_id: network_id.to_string(),
            reason: format!(
                "the cluster's nodes are on network {network_name:?}, which the operator's \
                 service {service:?} is not attached to: attaching it (swarm restarts the \
                 operator's task once; with several replicas, one at a time)"
            ),
        }
    } else {
        Reach::Forbidden(format!(
            "the operator's service {service:?} is not attached to network {network_name:?}, so \
             it cannot reach the nodes, and --no-attach-networks forbids attaching it; run: \
             docker service update --network-add {network_name} {service}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(attach: bool) -> OperatorService {
        OperatorService {
            name: "ops_operator".into(),
            attach,
        }
    }

    #[test]
    fn attached_is_left_alone_whatever_the_flag() {
        for attach in [true, false] {
            assert_eq!(
                decide(
                    &operator(attach),
                    &["a".into(), "n1".into()],
                    "n1",
                    "st_aerospike"
                ),
                Reach::Attached
            );
        }
    }

    #[test]
    fn missing_network_is_attached_by_id_and_the_restart_is_said() {
        let Reach::Attach {
            service,
            network_id,
            reason,
        } = decide(&operator(true), &["a".into()], "n1", "st_aerospike")
        else {
            panic!("expected Attach")
        };
        assert_eq!(
            (service.as_str(), network_id.as_str()),
            ("ops_operator", "n1")
        );
        assert!(
            reason.contains("\"st_aerospike\"") && reason.contains("restarts"),
            "{reason}"
        );
    }

    #[test]
    fn forbidden_gives_the_exact_command() {
        let Reach::Forbidden(message) = decide(&operator(false), &[], "n1", "st_aerospike") else {
            panic!("expected Forbidden")
        };
        assert!(
            message.ends_with("docker service update --network-add st_aerospike ops_operator"),
            "{message}"
        );
        assert!(message.contains("--no-attach-networks"), "{message}");
    }
}
