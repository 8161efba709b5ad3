//! A minimal info client: what `aerospike-sim asinfo` and the tests use.
//!
//! It speaks the same frames as the official clients, so it works against a
//! real server as well as against the sim.

use std::fmt;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::command::parse_reply;
use crate::frame::{encode_info, read_reply, FrameError};

/// Replies larger than this are refused (a full `statistics` of a real
/// server is a few KB).
pub const MAX_REPLY: u64 = 16 * 1024 * 1024;

/// Why an info request failed.
#[derive(Debug)]
pub enum ClientError {
    /// Could not connect.
    Connect(String),
    /// No complete reply within the timeout.
    Timeout,
    /// The connection broke or the reply was malformed.
    Protocol(FrameError),
    /// A command contained a newline, which would split it in two.
    BadCommand(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "cannot connect: {e}"),
            ClientError::Timeout => write!(f, "timed out"),
            ClientError::Protocol(e) => write!(f, "bad reply: {e}"),
            ClientError::BadCommand(c) => write!(f, "command contains a newline: {c:?}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends `commands` in one request to `host:port` and returns the reply
/// lines as `(command, value)` pairs. An empty list asks for the server's
/// default set.
pub async fn request(
    host: &str,
    port: u16,
    commands: &[&str],
    timeout: Duration,
) -> Result<Vec<(String, String)>, ClientError> {
    let mut body = Vec::new();
    for command in commands {
        if command.contains('\n') {
            return Err(ClientError::BadCommand(command.to_string()));
        }
        body.extend_from_slice(command.as_bytes());
        body.push(b'\n');
    }
    let exchange = async {
        let address = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut stream = TcpStream::connect(address)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        stream
            .write_all(&encode_info(&body))
            .await
            .map_err(|e| ClientError::Protocol(FrameError::Io(e.to_string())))?;
        let reply = read_reply(&mut stream, MAX_REPLY)
            .await
            .map_err(ClientError::Protocol)?;
        Ok(parse_reply(&reply))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout)?
}

/// Sends one command and returns its value.
pub async fn request_one(
    host: &str,
    port: u16,
    command: &str,
    timeout: Duration,
) -> Result<String, ClientError> {
    let mut lines = request(host, port, &[command], timeout).await?;
    Ok(lines.pop().map(|(_, value)| value).unwrap_or_default())
}
