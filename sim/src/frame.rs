//! The Aerospike wire frame ("proto") as used by info requests.
//!
//! Every message on the service port starts with an 8-byte header:
//!
//! ```text
//! byte 0      version  (always 2)
//! byte 1      type     (1 = info)
//! bytes 2..8  body length, 48-bit big-endian
//! ```
//!
//! followed by `length` bytes of body. An info request body is a list of
//! commands, each ending in `\n`; the reply body is one `command\tvalue\n`
//! line per command (see [`crate::command`]).

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Length of the fixed frame header.
pub const HEADER_LEN: usize = 8;

/// The only protocol version Aerospike speaks on the service port.
pub const PROTO_VERSION: u8 = 2;

/// Message type of info requests and replies.
pub const TYPE_INFO: u8 = 1;

/// Message type of data-plane messages (AS_MSG, see [`crate::msg`]).
pub const TYPE_MSG: u8 = 3;

/// Largest request body the sim accepts.
///
/// The real server sanity-checks every message against `PROTO_SIZE_MAX`
/// (128 MiB, `as/include/base/proto.h`). Info requests are a few hundred
/// bytes in practice, so the sim refuses anything over 1 MiB instead: a
/// stand-in that must fit a dozen nodes in a small sandbox should not
/// allocate 128 MiB because a peer sent eight bytes of garbage.
pub const MAX_REQUEST_BODY: u64 = 1024 * 1024;

/// Largest value that fits in the 48-bit length field.
pub const MAX_LENGTH_FIELD: u64 = (1 << 48) - 1;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version byte.
    pub version: u8,
    /// Message type byte.
    pub msg_type: u8,
    /// Body length in bytes.
    pub length: u64,
}

/// Why a frame was refused. The server closes the connection on any of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The version byte was not [`PROTO_VERSION`].
    BadVersion(u8),
    /// The type byte was neither [`TYPE_INFO`] nor [`TYPE_MSG`] (the sim
    /// serves no compressed messages and no admin protocol).
    BadType(u8),
    /// The announced body is larger than [`MAX_REQUEST_BODY`].
    TooLong(u64),
    /// The peer closed the connection in the middle of a frame.
    Truncated,
    /// A socket error.
    Io(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadVersion(v) => write!(f, "unsupported proto version {v}"),
            FrameError::BadType(t) => write!(f, "unsupported proto type {t}"),
            FrameError::TooLong(n) => {
                write!(f, "invalid proto size {n} (limit {MAX_REQUEST_BODY})")
            }
            FrameError::Truncated => write!(f, "connection closed mid-frame"),
            FrameError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl Header {
    /// Parses the 8 header bytes without judging them.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Header {
        let mut len = [0u8; 8];
        len[2..].copy_from_slice(&bytes[2..]);
        Header {
            version: bytes[0],
            msg_type: bytes[1],
            length: u64::from_be_bytes(len),
        }
    }

    /// Parses and checks a request header the way the server does: wrong
    /// version, a type other than info or AS_MSG, or an oversized body are
    /// refused.
    pub fn parse_request(bytes: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
        let header = Header::parse(bytes);
        if header.version != PROTO_VERSION {
            return Err(FrameError::BadVersion(header.version));
        }
        if header.msg_type != TYPE_INFO && header.msg_type != TYPE_MSG {
            return Err(FrameError::BadType(header.msg_type));
        }
        if header.length > MAX_REQUEST_BODY {
            return Err(FrameError::TooLong(header.length));
        }
        Ok(header)
    }

    /// Serialises the header.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let len = self.length.to_be_bytes();
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.version;
        out[1] = self.msg_type;
        out[2..].copy_from_slice(&len[2..]);
        out
    }
}

/// Builds a complete info frame (header + body).
///
/// # Panics
///
/// Never in practice: a body longer than 2^48 - 1 bytes cannot be held in
/// memory; the check exists so a wrong length is never silently written.
pub fn encode_info(body: &[u8]) -> Vec<u8> {
    let length = body.len() as u64;
    assert!(
        length <= MAX_LENGTH_FIELD,
        "info body exceeds 48-bit length"
    );
    let header = Header {
        version: PROTO_VERSION,
        msg_type: TYPE_INFO,
        length,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(body);
    out
}

/// Reads one info request from `reader`: [`read_frame`] refusing
/// anything but an info frame.
pub async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Vec<u8>>, FrameError> {
    match read_frame(reader).await? {
        None => Ok(None),
        Some((TYPE_INFO, body)) => Ok(Some(body)),
        Some((other, _)) => Err(FrameError::BadType(other)),
    }
}

/// Reads one request frame (info or AS_MSG) from `reader`.
///
/// Returns `Ok(None)` when the peer closed the connection cleanly between
/// frames, the type and body on success, and an error (after which the
/// caller must close the connection) on a refused header or a truncated
/// frame. The body is allocated only after the length was checked.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = reader
            .read(&mut header[filled..])
            .await
            .map_err(|e| FrameError::Io(e.to_string()))?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let header = Header::parse_request(&header)?;
    // The length was checked against MAX_REQUEST_BODY, so this fits in usize.
    let mut body = vec![0u8; header.length as usize];
    reader.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e.to_string())
        }
    })?;
    Ok(Some((header.msg_type, body)))
}

/// Reads one reply frame of any length up to `limit` (client side).
pub async fn read_reply<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: u64,
) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    reader.read_exact(&mut header).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e.to_string())
        }
    })?;
    let header = Header::parse(&header);
    if header.version != PROTO_VERSION {
        return Err(FrameError::BadVersion(header.version));
    }
    if header.msg_type != TYPE_INFO {
        return Err(FrameError::BadType(header.msg_type));
    }
    if header.length > limit {
        return Err(FrameError::TooLong(header.length));
    }
    let mut body = vec![0u8; header.length as usize];
    reader.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e.to_string())
        }
    })?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_request_header_for_node() {
        // "node\n" is 5 bytes: 02 01 00 00 00 00 00 05 'n' 'o' 'd' 'e' '\n'
        let frame = encode_info(b"node\n");
        assert_eq!(
            frame,
            [2, 1, 0, 0, 0, 0, 0, 5, b'n', b'o', b'd', b'e', b'\n']
        );
    }

    #[test]
    fn length_is_48_bit_big_endian() {
        let header = Header {
            version: 2,
            msg_type: 1,
            length: 0x0102_0304_0506,
        };
        assert_eq!(header.to_bytes(), [2, 1, 1, 2, 3, 4, 5, 6]);
        assert_eq!(Header::parse(&header.to_bytes()), header);
    }

    #[test]
    fn refuses_wrong_version_type_and_size() {
        assert_eq!(
            Header::parse_request(&[3, 1, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::BadVersion(3))
        );
        assert_eq!(
            Header::parse_request(&[2, 4, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::BadType(4))
        );
        assert!(Header::parse_request(&[2, 3, 0, 0, 0, 0, 0, 1]).is_ok());
        // 2^47 announced for an AS_MSG: refused before any allocation.
        assert_eq!(
            Header::parse_request(&[2, 3, 0x80, 0, 0, 0, 0, 0]),
            Err(FrameError::TooLong(1 << 47))
        );
        let too_long = (MAX_REQUEST_BODY + 1).to_be_bytes();
        let mut bytes = [2u8, 1, 0, 0, 0, 0, 0, 0];
        bytes[2..].copy_from_slice(&too_long[2..]);
        assert_eq!(
            Header::parse_request(&bytes),
            Err(FrameError::TooLong(MAX_REQUEST_BODY + 1))
        );
        // Exactly at the limit is accepted.
        let at_limit = MAX_REQUEST_BODY.to_be_bytes();
        bytes[2..].copy_from_slice(&at_limit[2..]);
        assert!(Header::parse_request(&bytes).is_ok());
    }

    #[tokio::test]
    async fn read_request_handles_eof_and_truncation() {
        let mut empty: &[u8] = &[];
        assert_eq!(read_request(&mut empty).await, Ok(None));
        let mut half_header: &[u8] = &[2, 1, 0];
        assert_eq!(
            read_request(&mut half_header).await,
            Err(FrameError::Truncated)
        );
        let mut short_body: &[u8] = &[2, 1, 0, 0, 0, 0, 0, 9, b'n'];
        assert_eq!(
            read_request(&mut short_body).await,
            Err(FrameError::Truncated)
        );
        let mut ok: &[u8] = &[2, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(read_request(&mut ok).await, Ok(Some(vec![])));
    }

    proptest! {
        #[test]
        fn any_header_bytes_parse_without_panic(bytes in proptest::array::uniform8(any::<u8>())) {
            let header = Header::parse(&bytes);
            prop_assert_eq!(header.to_bytes(), bytes);
            let _ = Header::parse_request(&bytes);
        }

        #[test]
        fn encode_then_read_round_trips(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let frame = encode_info(&body);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = rt.block_on(async {
                let mut reader: &[u8] = &frame;
                read_request(&mut reader).await
            });
            prop_assert_eq!(got, Ok(Some(body)));
        }

        #[test]
        fn arbitrary_streams_never_panic(stream in proptest::collection::vec(any::<u8>(), 0..64)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut reader: &[u8] = &stream;
                // Keep reading until the stream is exhausted or refused.
                while let Ok(Some(_)) = read_request(&mut reader).await {}
            });
        }
    }
}
