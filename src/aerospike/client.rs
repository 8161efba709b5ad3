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
            std::io::ErrorKind::UnexpectedEof => InfoError::Closed { addr },
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
    async fn a_reply_cut_short_is_a_closed_connection() {
        let mut reply = frame(b"node\tBB9\n");
        reply.truncate(reply.len() - 2);
        let (addr, _server) = serve_once(13, reply).await;
        let error = InfoClient::new().one(addr, "node").await.unwrap_err();
        assert!(matches!(error, InfoError::Closed { .. }), "{error}");
        assert!(error.is_unreachable(), "{error}");
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

    /// A server that reads one `node` request (13 bytes), writes `reply`,
    /// then reads until the client closes the connection: `Some(bytes
    /// read after the request)` on EOF within `limit`, `None` when the
    /// client kept the connection open that long.
    async fn serve_then_wait_for_close(
        reply: Vec<u8>,
        limit: Duration,
    ) -> (SocketAddr, tokio::task::JoinHandle<Option<usize>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 13];
            stream.read_exact(&mut request).await.unwrap();
            stream.write_all(&reply).await.unwrap();
            let mut rest = Vec::new();
            timeout(limit, stream.read_to_end(&mut rest))
                .await
                .ok()
                .map(|read| read.map_or(0, |_| rest.len()))
        });
        (addr, handle)
    }

    #[tokio::test]
    async fn a_header_claiming_2_pow_47_bytes_is_refused_and_the_connection_closed() {
        // Only a header: 128 TiB announced, nothing sent after it. The
        // client must refuse it from the header alone (allocating the
        // body would abort the process), say so, and hang up.
        let huge = Header { body_len: 1 << 47 }.encode().to_vec();
        let (addr, server) = serve_then_wait_for_close(huge.clone(), Duration::from_secs(5)).await;
        let started = Instant::now();
        let error = InfoClient::new().one(addr, "node").await.unwrap_err();
        assert!(
            matches!(
                error,
                InfoError::Frame {
                    source: frame::FrameError::TooLarge {
                        len: 0x8000_0000_0000,
                        max: DEFAULT_MAX_REPLY
                    },
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.is_misbehaviour(), "{error}");
        assert_eq!(
            error.to_string(),
            format!(
                "{addr}: bad reply frame: reply body of 140737488355328 bytes exceeds the limit \
                 of 4194304 bytes"
            )
        );
        // At once, not at the timeout.
        assert!(started.elapsed() < Duration::from_secs(1));
        // The server sees the connection closed, having been sent nothing
        // more.
        assert_eq!(server.await.unwrap(), Some(0));

        // The control: a peer that reads the same header and keeps the
        // connection open is seen as such by the same server.
        let (addr, server) = serve_then_wait_for_close(huge, Duration::from_millis(300)).await;
        let mut held = TcpStream::connect(addr).await.unwrap();
        held.write_all(&frame::encode_request(&["node"]).unwrap())
            .await
            .unwrap();
        let mut head = [0u8; HEADER_LEN];
        held.read_exact(&mut head).await.unwrap();
        assert_eq!(server.await.unwrap(), None);
        drop(held);
    }

    /// A server that answers `reply` one byte every `pace`, until the
    /// client hangs up; how many bytes it wrote.
    async fn dribble(
        reply: Vec<u8>,
        pace: Duration,
    ) -> (SocketAddr, tokio::task::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 13];
            stream.read_exact(&mut request).await.unwrap();
            let mut written = 0;
            for byte in reply {
                tokio::time::sleep(pace).await;
                // A write after the client closed fails (at the latest the
                // one after the peer's reset).
                if stream.write_all(&[byte]).await.is_err() {
                    break;
                }
                written += 1;
            }
            written
        });
        (addr, handle)
    }

    #[tokio::test]
    async fn a_node_answering_one_byte_a_second_fails_at_the_total_timeout() {
        let reply = frame(b"node\tBB9\n");
        let (addr, server) = dribble(reply.clone(), Duration::from_secs(1)).await;
        let client = InfoClient::new();
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
        assert!(error.is_misbehaviour(), "{error}");
        assert!(elapsed >= client.total_timeout(), "{elapsed:?}");
        assert!(
            elapsed < client.total_timeout() + Duration::from_millis(500),
            "{elapsed:?}"
        );
        // The client hung up: the server got nowhere near the end.
        let written = server.await.unwrap();
        assert!(written < reply.len(), "{written} of {}", reply.len());

        // The control: the same reply at 1 byte per 20 ms (0.3 s in all)
        // arrives within the same limit.
        let (addr, server) = dribble(reply.clone(), Duration::from_millis(20)).await;
        assert_eq!(client.one(addr, "node").await.unwrap(), "BB9");
        assert_eq!(server.await.unwrap(), reply.len());
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
