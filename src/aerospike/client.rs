//! [`InfoClient`]: one info exchange per call, over its own TCP connection.
//!
//! A call connects, writes one request frame, reads one reply frame and
//! closes. Keeping no connections open is deliberate: the operator asks a
//! handful of questions per node per reconcile, nodes come and go with
//! their tasks, and a pool would have to notice dead connections — exactly
//! the kind of state that goes stale on a swarm. A connect on an overlay
//! network costs well under a millisecond.
//!
//! Every call runs under two limits: one for opening the connection, and
//! one for the whole call. A node that accepts the connection and then
//! says nothing cannot stall a reconcile, and a timeout is an error that
//! names the node.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::error::{InfoError, Phase};
use super::frame::{self, Header, DEFAULT_MAX_REPLY, HEADER_LEN};

/// Sends info requests; cheap to clone (it holds only its limits).
#[derive(Debug, Clone)]
pub struct InfoClient {
    connect_timeout: Duration,
    total_timeout: Duration,
    max_reply: usize,
}

impl Default for InfoClient {
    /// Connect within 1 s, finish within 2 s, replies up to
    /// [`DEFAULT_MAX_REPLY`]. A node on the same overlay network answers in
    /// milliseconds; a second to connect means it is gone or unreachable.
    fn default() -> Self {
        InfoClient {
            connect_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_secs(2),
            max_reply: DEFAULT_MAX_REPLY,
        }
    }
}

impl InfoClient {
    /// A client with the default limits.
    pub fn new() -> InfoClient {
        InfoClient::default()
    }

    /// Sets the limit for opening a connection.
    pub fn with_connect_timeout(mut self, limit: Duration) -> InfoClient {
        self.connect_timeout = limit;
        self
    }

    /// Sets the limit for a whole call, connecting included.
    pub fn with_total_timeout(mut self, limit: Duration) -> InfoClient {
        self.total_timeout = limit;
        self
    }

    /// Sets the largest reply body accepted.
    pub fn with_max_reply(mut self, bytes: usize) -> InfoClient {
        self.max_reply = bytes;
        self
    }

    /// The limit for opening a connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The limit for a whole call.
    pub fn total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// Sends `commands` in one request and returns `(command, value)` for
    /// each, in order.
    ///
    /// The reply must have exactly one line per command, each echoing its
    /// command; anything else is [`InfoError::Protocol`]. Server errors in
    /// values are *not* interpreted here: a value of `ERROR::unknown` is
    /// returned as is, for the caller (or [`super::reply`]) to judge.
    pub async fn request(
        &self,
        addr: SocketAddr,
        commands: &[&str],
    ) -> Result<Vec<(String, String)>, InfoError> {
        let request = frame::encode_request(commands).map_err(InfoError::InvalidRequest)?;
        let exchange = self.exchange(addr, &request);
        let lines = match timeout(self.total_timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(InfoError::Timeout {
                    addr,
                    phase: Phase::Exchange,
                    limit: self.total_timeout,
                })
            }
        };
        check_echo(addr, commands, &lines)?;
        Ok(lines)
    }

    /// Sends one command and returns its value.
    pub async fn one(&self, addr: SocketAddr, command: &str) -> Result<String, InfoError> {
        let mut lines = self.request(addr, &[command]).await?;
        // check_echo guarantees exactly one line.
        Ok(lines.pop().map(|(_, value)| value).unwrap_or_default())
    }

    async fn exchange(
        &self,
        addr: SocketAddr,
        request: &[u8],
    ) -> Result<Vec<(String, String)>, InfoError> {
        let mut stream = match timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(InfoError::Connect { addr, source }),
            Err(_) => {
                return Err(InfoError::Timeout {
                    addr,
                    phase: Phase::Connect,
                    limit: self.connect_timeout,
                })
            }
        };
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::UnexpectedEof => InfoError::Protocol {
                addr,
                detail: "connection closed before the reply was complete".to_string(),
            },
            _ => InfoError::Io { addr, source },
        };
        stream.write_all(request).await.map_err(io)?;
        let mut head = [0u8; HEADER_LEN];
        stream.read_exact(&mut head).await.map_err(io)?;
        let header = Header::decode(head, self.max_reply)
            .map_err(|source| InfoError::Frame { addr, source })?;
        // Header::decode bounded the length by max_reply, a usize.
        let mut body = vec![0u8; header.body_len as usize];
        stream.read_exact(&mut body).await.map_err(io)?;
        // Dropping the stream closes the connection; nothing more is read,
        // so bytes the node might send after the frame are ignored.
        frame::parse_reply_body(&body).map_err(|source| InfoError::Frame { addr, source })
    }
}

/// Checks that `lines` answer `commands` one for one.
fn check_echo(
    addr: SocketAddr,
    commands: &[&str],
    lines: &[(String, String)],
) -> Result<(), InfoError> {
    if lines.len() != commands.len() {
        return Err(InfoError::Protocol {
            addr,
            detail: format!(
                "sent {} command(s), got {} reply line(s)",
                commands.len(),
                lines.len()
            ),
        });
    }
    for (sent, (echoed, _)) in commands.iter().zip(lines) {
        if sent != echoed {
            return Err(InfoError::Protocol {
                addr,
                detail: format!("reply line for {sent:?} echoes {echoed:?}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The client against hand-written servers that misbehave on purpose;
    //! the well-behaved server is the real `aerospike-sim`, in
    //! `tests/aerospike_client.rs`.

    use super::*;
    use std::time::Instant;
    use tokio::net::TcpListener;

    /// A one-shot server on 127.0.0.1: reads one request (until the client
    /// has sent `expect` bytes), answers `reply` and closes.
    async fn serve_once(
        expect: usize,
        reply: Vec<u8>,
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; expect];
            stream.read_exact(&mut request).await.unwrap();
            stream.write_all(&reply).await.unwrap();
            request
        });
        (addr, handle)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = Header {
            body_len: body.len() as u64,
        }
        .encode()
        .to_vec();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn sends_the_request_and_returns_the_lines() {
        let (addr, server) = serve_once(19, frame(b"node\tBB9\nbuild\t7.1.0.0\n")).await;
        let lines = InfoClient::new()
            .request(addr, &["node", "build"])
            .await
            .unwrap();
        assert_eq!(lines[0], ("node".to_string(), "BB9".to_string()));
        assert_eq!(lines[1], ("build".to_string(), "7.1.0.0".to_string()));
        assert_eq!(
            server.await.unwrap(),
            b"\x02\x01\x00\x00\x00\x00\x00\x0bnode\nbuild\n"
        );
    }

    #[tokio::test]
    async fn a_reply_that_does_not_echo_is_a_protocol_error() {
        let (addr, _server) = serve_once(13, frame(b"build\t7.1.0.0\n")).await;
        let error = InfoClient::new().one(addr, "node").await.unwrap_err();
        assert!(
            matches!(&error, InfoError::Protocol { detail, .. } if detail.contains("echoes \"build\"")),
            "{error}"
        );
        let (addr, _server) = serve_once(19, frame(b"node\tBB9\n")).await;
        let error = InfoClient::new()
            .request(addr, &["node", "build"])
            .await
            .unwrap_err();
        assert!(matches!(error, InfoError::Protocol { .. }), "{error}");
    }

    #[tokio::test]
    async fn bad_frames_are_typed_errors_naming_the_node() {
        let (addr, _server) = serve_once(13, b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
        let error = InfoClient::new().one(addr, "node").await.unwrap_err();
        assert!(matches!(
            error,
            InfoError::Frame {
                source: frame::FrameError::WrongVersion(b'H'),
                ..
            }
        ));
        assert!(error.to_string().starts_with(&addr.to_string()));

        let (addr, _server) = serve_once(13, frame(&[b'x'; 100])).await;
        let error = InfoClient::new()
            .with_max_reply(99)
            .one(addr, "node")
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            InfoError::Frame {
                source: frame::FrameError::TooLarge { len: 100, max: 99 },
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_reply_cut_short_is_a_protocol_error() {
        let mut reply = frame(b"node\tBB9\n");
        reply.truncate(reply.len() - 2);
        let (addr, _server) = serve_once(13, reply).await;
        let error = InfoClient::new().one(addr, "node").await.unwrap_err();
        assert!(
            matches!(&error, InfoError::Protocol { detail, .. } if detail.contains("closed")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_silent_node_times_out_within_the_total_limit() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts (the kernel does, via the backlog) but never answers.
        let client = InfoClient::new().with_total_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let error = client.one(addr, "node").await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(
                error,
                InfoError::Timeout {
                    phase: Phase::Exchange,
                    ..
                }
            ),
            "{error}"
        );
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
        drop(listener);
    }

    #[tokio::test]
    async fn invalid_requests_never_reach_the_network() {
        // Port 9 on loopback: nothing is listening, and nothing should try.
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let error = InfoClient::new().one(addr, "a\nb").await.unwrap_err();
        assert!(matches!(error, InfoError::InvalidRequest(_)), "{error}");
        assert_eq!(error.addr(), None);
    }
}
