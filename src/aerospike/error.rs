//! [`InfoError`]: everything that can go wrong asking a node something.
//!
//! Every variant that involves a node names its address, because the
//! operator talks to many nodes at once and a log line such as "connection
//! refused" alone would not say which one. Callers that need to decide
//! what to do (retry, treat the node as gone, report a bad reply) match on
//! the variant; people read the message.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

use super::frame::FrameError;
use super::reply::ReplyError;

/// The step of an exchange that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the TCP connection.
    Connect,
    /// Sending the request and reading the reply (the whole call's budget).
    Exchange,
}

/// An info call that did not produce the answer asked for.
#[derive(Debug, Error)]
pub enum InfoError {
    /// The request could not be built (a command with a newline, an empty
    /// list): a bug in the caller, not a problem with the node.
    #[error("invalid info request: {0}")]
    InvalidRequest(FrameError),
    /// The TCP connection could not be opened (refused, unreachable).
    #[error("{addr}: cannot connect: {source}")]
    Connect {
        /// The node.
        addr: SocketAddr,
        /// Why, as the operating system said it.
        #[source]
        source: std::io::Error,
    },
    /// The node did not answer in time.
    #[error("{addr}: no {} within {limit:?}", match phase { Phase::Connect => "connection", Phase::Exchange => "reply" })]
    Timeout {
        /// The node.
        addr: SocketAddr,
        /// Which step ran out of time.
        phase: Phase,
        /// The limit that was exceeded.
        limit: Duration,
    },
    /// Reading or writing failed once connected (reset, closed early).
    #[error("{addr}: connection failed: {source}")]
    Io {
        /// The node.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node closed the connection before its reply was complete (it
    /// stopped or crashed while answering).
    #[error("{addr}: connection closed before the reply was complete")]
    Closed {
        /// The node.
        addr: SocketAddr,
    },
    /// The reply is not a well-formed info frame.
    #[error("{addr}: bad reply frame: {source}")]
    Frame {
        /// The node.
        addr: SocketAddr,
        /// What is wrong with it.
        #[source]
        source: FrameError,
    },
    /// The reply is a well-formed frame but does not answer the request:
    /// a different number of lines, or a line that does not echo its
    /// command.
    #[error("{addr}: reply does not match the request: {detail}")]
    Protocol {
        /// The node.
        addr: SocketAddr,
        /// What did not match.
        detail: String,
    },
    /// The node answered a command with `ERROR:<code>:<message>`.
    #[error("{addr}: {command}: server error{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Server {
        /// The node.
        addr: SocketAddr,
        /// The command as sent.
        command: String,
        /// The numeric code, `None` for `ERROR::<message>`.
        code: Option<u32>,
        /// The server's message.
        message: String,
    },
    /// The node answered a command with a value of the wrong shape.
    #[error("{addr}: {command}: {source}")]
    Malformed {
        /// The node.
        addr: SocketAddr,
        /// The command as sent.
        command: String,
        /// What is wrong with the value.
        #[source]
        source: ReplyError,
    },
}

impl InfoError {
    /// Attaches the node and command to a reply parser's error.
    pub fn from_reply(addr: SocketAddr, command: &str, error: ReplyError) -> InfoError {
        match error {
            ReplyError::Server { code, message } => InfoError::Server {
                addr,
                command: command.to_string(),
                code,
                message,
            },
            source => InfoError::Malformed {
                addr,
                command: command.to_string(),
                source,
            },
        }
    }

    /// The node the error is about; `None` for an invalid request.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            InfoError::InvalidRequest(_) => None,
            InfoError::Connect { addr, .. }
            | InfoError::Timeout { addr, .. }
            | InfoError::Io { addr, .. }
            | InfoError::Closed { addr }
            | InfoError::Frame { addr, .. }
            | InfoError::Protocol { addr, .. }
            | InfoError::Server { addr, .. }
            | InfoError::Malformed { addr, .. } => Some(*addr),
        }
    }

    /// True when the node could not be reached at all (refused, timed
    /// out, connection dropped): the node is down or not reachable from
    /// here, as opposed to up and answering something unexpected.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            InfoError::Connect { .. }
                | InfoError::Timeout { .. }
                | InfoError::Io { .. }
                | InfoError::Closed { .. }
        )
    }

    /// True when the node accepted the connection and then answered
    /// something the operator cannot use: a reply that is not an info
    /// frame, that does not answer the request, a value of the wrong shape
    /// or an error where a value was due, or no whole reply within the
    /// call's time (a node that answers one byte a second). Such a node is
    /// up but not to be trusted: the controller names it in a Degraded
    /// status and decides nothing from what it says
    /// (`controller::suspect`). A connection that was refused, timed out
    /// while opening, or was dropped is not this: that node is unreachable.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            InfoError::Frame { .. }
                | InfoError::Protocol { .. }
                | InfoError::Server { .. }
                | InfoError::Malformed { .. }
                | InfoError::Timeout {
                    phase: Phase::Exchange,
                    ..
                }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "10.0.1.5:3000".parse().unwrap()
    }

    #[test]
    fn messages_name_the_node_and_command() {
        let error = InfoError::from_reply(
            addr(),
            "cluster-stable:size=x",
            ReplyError::Server {
                code: Some(4),
                message: "bad size".into(),
            },
        );
        assert_eq!(
            error.to_string(),
            "10.0.1.5:3000: cluster-stable:size=x: server error 4: bad size"
        );
        assert!(!error.is_unreachable());
        let error = InfoError::Timeout {
            addr: addr(),
            phase: Phase::Connect,
            limit: Duration::from_secs(1),
        };
        assert_eq!(error.to_string(), "10.0.1.5:3000: no connection within 1s");
        assert!(error.is_unreachable());
        assert!(!error.is_misbehaviour());
        // Connected, but no whole reply in time: up, and not to be trusted.
        let slow = InfoError::Timeout {
            addr: addr(),
            phase: Phase::Exchange,
            limit: Duration::from_secs(2),
        };
        assert_eq!(slow.to_string(), "10.0.1.5:3000: no reply within 2s");
        assert!(slow.is_misbehaviour());
        let closed = InfoError::Closed { addr: addr() };
        assert!(closed.is_unreachable() && !closed.is_misbehaviour());
        assert_eq!(error.addr(), Some(addr()));
        let error = InfoError::from_reply(
            addr(),
            "statistics",
            ReplyError::MissingField {
                field: "cluster_key",
            },
        );
        assert!(matches!(error, InfoError::Malformed { .. }));
        assert!(error.is_misbehaviour() && !error.is_unreachable());
        assert_eq!(
            error.to_string(),
            "10.0.1.5:3000: statistics: field cluster_key is missing"
        );
    }
}
