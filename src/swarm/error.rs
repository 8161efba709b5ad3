//! [`SwarmError`]: every way a call to Docker can fail, in words a user
//! understands.
//!
//! Docker answers errors as an HTTP status plus a `{"message": ...}` body;
//! bollard wraps those and its own transport failures in one large enum.
//! Callers here need to tell only a few cases apart (retry on
//! out-of-sequence, give up on not-a-manager, report a missing object), so
//! everything is mapped onto these variants at the edge of this module.

use std::error::Error as StdError;

/// A boxed error kept as the `source` of [`SwarmError::Unreachable`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error talking to the Docker Engine API.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// The object asked for does not exist (HTTP 404).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `service "db"`.
        what: String,
    },

    /// A service update carried a stale `Version.Index`: someone else
    /// updated the service in between. Re-read the service and retry; see
    /// [`update_service_retrying`](super::update_service_retrying).
    #[error("service {service} was changed by someone else meanwhile (update out of sequence)")]
    OutOfSequence {
        /// The service id or name the update was for.
        service: String,
    },

    /// The engine is not a manager of an active swarm, so it cannot list
    /// or change services.
    #[error("{0}")]
    NotManager(String),

    /// The Docker endpoint could not be reached, or a call timed out.
    #[error("cannot reach Docker at {host}: {}{}", error_chain(source.as_ref()), permission_hint(source.as_ref()))]
    Unreachable {
        /// The endpoint, as in `DOCKER_HOST`.
        host: String,
        /// The underlying transport error.
        #[source]
        source: BoxError,
    },

    /// The Docker connection settings are unusable (bad `DOCKER_HOST`,
    /// missing or unreadable TLS files).
    #[error("invalid Docker connection settings: {0}")]
    Config(String),

    /// Docker refused a request.
    #[error("Docker API error {status}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// Docker's own message.
        message: String,
    },

    /// A change the service cannot take, e.g. a replica count for a
    /// global-mode service. Refused before anything is sent to Docker.
    #[error("cannot apply change to service {service}: {reason}")]
    InvalidChange {
        /// The service id or name.
        service: String,
        /// Why not.
        reason: String,
    },

    /// Docker answered something this client cannot read.
    #[error("unexpected reply from Docker ({context}): {message}")]
    Decode {
        /// Which call.
        context: String,
        /// What was wrong.
        message: String,
    },
}

impl SwarmError {
    /// Every value [`SwarmError::kind`] returns.
    pub const KINDS: [&'static str; 8] = [
        "not_found",
        "conflict",
        "not_manager",
        "docker_unreachable",
        "config",
        "api",
        "invalid_change",
        "decode",
    ];

    /// A short name of the variant, for metric labels
    /// (`docker_unreachable`, `conflict`, `not_found`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            SwarmError::NotFound { .. } => "not_found",
            SwarmError::OutOfSequence { .. } => "conflict",
            SwarmError::NotManager(_) => "not_manager",
            SwarmError::Unreachable { .. } => "docker_unreachable",
            SwarmError::Config(_) => "config",
            SwarmError::Api { .. } => "api",
            SwarmError::InvalidChange { .. } => "invalid_change",
            SwarmError::Decode { .. } => "decode",
        }
    }

    /// True for [`SwarmError::OutOfSequence`].
    pub fn is_out_of_sequence(&self) -> bool {
        matches!(self, SwarmError::OutOfSequence { .. })
    }

    /// True for [`SwarmError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, SwarmError::NotFound { .. })
    }

    /// True when retrying later may succeed (transport trouble, a 5xx, a
    /// stale version), as opposed to a request that will fail again as is.
    pub fn is_transient(&self) -> bool {
        match self {
            SwarmError::Unreachable { .. } | SwarmError::OutOfSequence { .. } => true,
            SwarmError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Maps an HTTP error reply from Docker. `what` names the object the
    /// request was about, for `NotFound`; `service` is set for service
    /// updates so "update out of sequence" becomes `OutOfSequence`.
    pub(crate) fn from_reply(status: u16, message: String, what: &str) -> SwarmError {
        if is_out_of_sequence_message(&message) {
            return SwarmError::OutOfSequence {
                service: what.to_string(),
            };
        }
        if is_not_manager_message(&message) {
            return SwarmError::NotManager(not_manager_text(&message));
        }
        match status {
            404 => SwarmError::NotFound {
                what: what.to_string(),
            },
            _ => SwarmError::Api { status, message },
        }
    }

    /// Maps a bollard error. `host` names the endpoint for transport
    /// errors; `what` is as in [`SwarmError::from_reply`].
    pub(crate) fn from_bollard(err: bollard::errors::Error, host: &str, what: &str) -> SwarmError {
        use bollard::errors::Error as B;
        match err {
            B::DockerResponseServerError {
                status_code,
                message,
            } => SwarmError::from_reply(status_code, message, what),
            B::JsonDataError { message, .. } => SwarmError::Decode {
                context: what.to_string(),
                message,
            },
            B::JsonSerdeError { err } => SwarmError::Decode {
                context: what.to_string(),
                message: err.to_string(),
            },
            B::APIVersionParseError {} => SwarmError::Decode {
                context: "API version".to_string(),
                message: "the engine reported an API version that cannot be parsed".to_string(),
            },
            B::RequestTimeoutError => SwarmError::Unreachable {
                host: host.to_string(),
                source: "request timed out".into(),
            },
            B::SocketNotFoundError(path) => SwarmError::Unreachable {
                host: host.to_string(),
                source: format!("no socket at {path} (is the Docker daemon running?)").into(),
            },
            other @ (B::CertPathError { .. }
            | B::CertMultipleKeys { .. }
            | B::CertParseError { .. }
            | B::NoNativeCertsError { .. }
            | B::LoadNativeCertsErrors { .. }
            | B::NoHomePathError
            | B::UnsupportedURISchemeError { .. }) => SwarmError::Config(other.to_string()),
            other => SwarmError::Unreachable {
                host: host.to_string(),
                source: Box::new(other),
            },
        }
    }
}

/// What to do when the socket refused this process: it runs as a user
/// (and group) the socket does not allow. Empty for any other error.
fn permission_hint(error: &(dyn StdError + 'static)) -> &'static str {
    let mut cause = Some(error);
    while let Some(e) = cause {
        let denied = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
            || e.to_string()
                .to_ascii_lowercase()
                .contains("permission denied");
        if denied {
            return " (the socket refuses this process's user and group: run the operator \
                    with the socket's group, `--user 65532:$(stat -c %g /var/run/docker.sock)`; \
                    deploy/operator.yml takes it from DOCKER_GID)";
        }
        cause = e.source();
    }
    ""
}

/// An error and its causes, `outer: inner: innermost`: transport errors
/// (hyper's "client error (Connect)") say little without their causes.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        // Some errors repeat their cause in their own message.
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// Docker's reply to an update carrying a stale version, e.g.
/// `rpc error: code = Unknown desc = update out of sequence`.
fn is_out_of_sequence_message(message: &str) -> bool {
    message.contains("update out of sequence")
}

/// Docker's replies on a node that is not a swarm manager, e.g. "This node
/// is not a swarm manager. Use \"docker swarm init\" ..." (503).
fn is_not_manager_message(message: &str) -> bool {
    message.contains("is not a swarm manager")
}

fn not_manager_text(message: &str) -> String {
    format!("the Docker engine is not a swarm manager: {message}")
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_refused_socket_says_which_group_it_needs() {
        let denied = SwarmError::Unreachable {
            host: "unix:///var/run/docker.sock".into(),
            source: Box::new(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        };
        let text = denied.to_string();
        assert!(
            text.contains("DOCKER_GID") && text.contains("stat -c %g"),
            "{text}"
        );
        // Any other failure to connect: no such hint.
        let refused = SwarmError::Unreachable {
            host: "unix:///var/run/docker.sock".into(),
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        assert!(!refused.to_string().contains("DOCKER_GID"), "{refused}");
    }

    use super::*;

    #[test]
    fn out_of_sequence_reply_maps_to_its_variant() {
        let err = SwarmError::from_reply(
            500,
            "rpc error: code = Unknown desc = update out of sequence".into(),
            "db",
        );
        assert!(err.is_out_of_sequence(), "{err:?}");
        assert!(err.is_transient());
        assert!(err.to_string().contains("db"));
    }

    #[test]
    fn not_found_names_the_object() {
        let err = SwarmError::from_reply(404, "service db not found".into(), "service \"db\"");
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "service \"db\" not found");
    }

    #[test]
    fn not_manager_reply_is_recognised() {
        let err = SwarmError::from_reply(
            503,
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.".into(),
            "services",
        );
        assert!(matches!(err, SwarmError::NotManager(_)), "{err:?}");
        assert!(!err.is_transient());
    }

    #[test]
    fn other_replies_keep_status_and_message() {
        let err = SwarmError::from_reply(400, "invalid mount config".into(), "service");
        match &err {
            SwarmError::Api { status, message } => {
                assert_eq!(*status, 400);
                assert_eq!(message, "invalid mount config");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.is_transient());
        assert!(SwarmError::from_reply(502, "x".into(), "s").is_transient());
    }

    #[test]
    fn bollard_server_errors_go_through_the_same_mapping() {
        let err = SwarmError::from_bollard(
            bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: "update out of sequence".into(),
            },
            "unix:///var/run/docker.sock",
            "db",
        );
        assert!(err.is_out_of_sequence());
        let err = SwarmError::from_bollard(
            bollard::errors::Error::RequestTimeoutError,
            "unix:///var/run/docker.sock",
            "db",
        );
        assert!(matches!(err, SwarmError::Unreachable { .. }));
        assert!(err.to_string().contains("unix:///var/run/docker.sock"));
    }
}
