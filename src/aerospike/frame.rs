//! Info protocol frames, byte for byte (field notes §3).
//!
//! Every message, in both directions, is an 8-byte header followed by a
//! body:
//!
//! ```text
//! byte 0      version   2
//! byte 1      type      1 (info)
//! bytes 2..8  length    body length, 48-bit big-endian
//! ```
//!
//! A request body is the commands, each ending in `\n`. The reply body has
//! one line per command, `<command exactly as sent>\t<value>\n`, in order.
//!
//! This file only turns commands into bytes and bytes into `(command,
//! value)` lines; it knows nothing about sockets (see [`super::client`]) or
//! about what values mean (see [`super::reply`]). It is written from the
//! published format, not shared with the `aerospike-sim` crate, so that
//! the golden tests below check both against the format rather than
//! against each other.

use thiserror::Error;

/// Length of the header that starts every message.
pub const HEADER_LEN: usize = 8;

/// Protocol version carried in byte 0.
pub const VERSION: u8 = 2;

/// Message type for info requests and replies, carried in byte 1.
pub const INFO_TYPE: u8 = 1;

/// Largest reply body accepted by default: 4 MiB.
///
/// The replies the operator asks for are small (`statistics` is a few KB,
/// `namespace/<ns>` a few tens of KB), so this leaves ample room for any
/// other command while making sure that a corrupt or hostile header — the
/// length field can claim up to 256 TiB — cannot make the operator allocate
/// more than this before reading a byte of body.
pub const DEFAULT_MAX_REPLY: usize = 4 * 1024 * 1024;

/// The largest length the 48-bit field can carry.
const MAX_WIRE_LEN: u64 = (1 << 48) - 1;

/// A frame or body that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// A command would break the line structure of the request.
    #[error("command {command:?} {reason}")]
    BadCommand {
        /// The offending command.
        command: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Byte 0 is not [`VERSION`].
    #[error("reply has protocol version {0}, expected {VERSION}")]
    WrongVersion(u8),
    /// Byte 1 is not [`INFO_TYPE`].
    #[error("reply has message type {0}, expected {INFO_TYPE} (info)")]
    WrongType(u8),
    /// The header announces a body larger than the limit.
    #[error("reply body of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length from the header.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A whole frame was expected but the bytes end early.
    #[error("reply truncated: header announces {expected} body bytes, {got} present")]
    Truncated {
        /// Body length from the header.
        expected: u64,
        /// Body bytes actually present.
        got: usize,
    },
    /// Bytes follow the body announced by the header.
    #[error("{0} unexpected bytes after the reply body")]
    TrailingBytes(usize),
    /// The body is not UTF-8 text.
    #[error("reply body is not UTF-8 text")]
    NotText,
    /// The body does not end in `\n`, so its last line is incomplete.
    #[error("reply body does not end with a newline")]
    UnterminatedLine,
    /// A reply line has no tab between command and value.
    #[error("reply line {line:?} has no tab between command and value")]
    MissingTab {
        /// The line, without its newline.
        line: String,
    },
}

/// A decoded message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Body length in bytes.
    pub body_len: u64,
}

impl Header {
    /// The 8 header bytes for a body of `body_len` bytes.
    ///
    /// Lengths beyond 48 bits cannot be represented; [`encode_request`]
    /// never produces one because it refuses such bodies first.
    pub fn encode(self) -> [u8; HEADER_LEN] {
        let word = (u64::from(VERSION) << 56)
            | (u64::from(INFO_TYPE) << 48)
            | (self.body_len & MAX_WIRE_LEN);
        word.to_be_bytes()
    }

    /// Reads a reply header, checking version and type, and refusing a body
    /// longer than `max` bytes.
    ///
    /// Version and type are checked before the length so that talking to
    /// something that is not an Aerospike node (an HTTP server answers
    /// `HTTP/1.1 ...`, whose first byte is `H`) is reported as what it is.
    pub fn decode(bytes: [u8; HEADER_LEN], max: usize) -> Result<Header, FrameError> {
        if bytes[0] != VERSION {
            return Err(FrameError::WrongVersion(bytes[0]));
        }
        if bytes[1] != INFO_TYPE {
            return Err(FrameError::WrongType(bytes[1]));
        }
        let body_len = u64::from_be_bytes(bytes) & MAX_WIRE_LEN;
        if body_len > max as u64 {
            return Err(FrameError::TooLarge { len: body_len, max });
        }
        Ok(Header { body_len })
    }
}

/// Builds a whole request frame (header and body) for `commands`.
///
/// Each command must be non-empty and free of `\n` and `\t`: a newline would
/// split it into two commands, and a tab would make the echoed command in
/// the reply ambiguous. An empty list is refused too, because the server
/// answers an empty request with a default set of values that cannot be
/// matched against what was asked.
pub fn encode_request(commands: &[&str]) -> Result<Vec<u8>, FrameError> {
    if commands.is_empty() {
        return Err(FrameError::BadCommand {
            command: String::new(),
            reason: "list is empty (an empty request asks for the server's defaults)",
        });
    }
    let mut body = Vec::new();
    for command in commands {
        let reason = if command.is_empty() {
            Some("is empty")
        } else if command.contains('\n') {
            Some("contains a newline")
        } else if command.contains('\t') {
            Some("contains a tab")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(FrameError::BadCommand {
                command: (*command).to_string(),
                reason,
            });
        }
        body.extend_from_slice(command.as_bytes());
        body.push(b'\n');
    }
    if body.len() as u64 > MAX_WIRE_LEN {
        return Err(FrameError::BadCommand {
            command: String::new(),
            reason: "list does not fit in a 48-bit length",
        });
    }
    let mut frame = Header {
        body_len: body.len() as u64,
    }
    .encode()
    .to_vec();
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Splits a reply body into `(command, value)` lines.
///
/// The value is everything after the first tab, so a value may itself
/// contain tabs; commands cannot (see [`encode_request`]).
pub fn parse_reply_body(body: &[u8]) -> Result<Vec<(String, String)>, FrameError> {
    let text = std::str::from_utf8(body).map_err(|_| FrameError::NotText)?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(text) = text.strip_suffix('\n') else {
        return Err(FrameError::UnterminatedLine);
    };
    text.split('\n')
        .map(|line| match line.split_once('\t') {
            Some((command, value)) => Ok((command.to_string(), value.to_string())),
            None => Err(FrameError::MissingTab {
                line: line.to_string(),
            }),
        })
        .collect()
}

/// Decodes one complete reply frame held in memory: header, then exactly
/// the announced body.
pub fn decode_reply(frame: &[u8], max: usize) -> Result<Vec<(String, String)>, FrameError> {
    let Some((head, body)) = frame.split_first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated {
            expected: HEADER_LEN as u64,
            got: frame.len(),
        });
    };
    let header = Header::decode(*head, max)?;
    // The limit check above bounds body_len by a usize, so this fits.
    let expected = header.body_len as usize;
    if body.len() < expected {
        return Err(FrameError::Truncated {
            expected: header.body_len,
            got: body.len(),
        });
    }
    if body.len() > expected {
        return Err(FrameError::TrailingBytes(body.len() - expected));
    }
    parse_reply_body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_request_frames() {
        // "node\nstatistics\n" is 16 bytes.
        assert_eq!(
            encode_request(&["node", "statistics"]).unwrap(),
            b"\x02\x01\x00\x00\x00\x00\x00\x10node\nstatistics\n"
        );
        // 300 bytes of body: the length spans two bytes, high byte first.
        let long = "x".repeat(299);
        let frame = encode_request(&[&long]).unwrap();
        assert_eq!(&frame[..8], b"\x02\x01\x00\x00\x00\x00\x01\x2c");
        assert_eq!(frame.len(), 8 + 300);
        assert_eq!(
            encode_request(&["tip:host=10.0.0.2;port=3002"]).unwrap(),
            b"\x02\x01\x00\x00\x00\x00\x00\x1ctip:host=10.0.0.2;port=3002\n"
        );
    }

    #[test]
    fn commands_that_would_break_the_framing_are_refused() {
        for bad in [&[][..], &[""], &["node\nbuild"], &["a\tb"], &["node", ""]] {
            assert!(
                matches!(encode_request(bad), Err(FrameError::BadCommand { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn golden_reply_frames() {
        let frame = b"\x02\x01\x00\x00\x00\x00\x00\x17node\tBB9\nbuild\t7.1.0.0\n";
        assert_eq!(
            decode_reply(frame, DEFAULT_MAX_REPLY).unwrap(),
            vec![
                ("node".to_string(), "BB9".to_string()),
                ("build".to_string(), "7.1.0.0".to_string())
            ]
        );
        // Empty values and tabs inside values survive.
        let frame = b"\x02\x01\x00\x00\x00\x00\x00\x10services\t\nx\ta\tb\n";
        assert_eq!(
            decode_reply(frame, DEFAULT_MAX_REPLY).unwrap(),
            vec![
                ("services".to_string(), String::new()),
                ("x".to_string(), "a\tb".to_string())
            ]
        );
        assert_eq!(
            decode_reply(b"\x02\x01\x00\x00\x00\x00\x00\x00", 10).unwrap(),
            vec![]
        );
    }

    #[test]
    fn header_length_is_48_bit_big_endian() {
        let header = Header::decode(*b"\x02\x01\x12\x34\x56\x78\x9a\xbc", usize::MAX).unwrap();
        assert_eq!(header.body_len, 0x1234_5678_9abc);
        assert_eq!(header.encode(), *b"\x02\x01\x12\x34\x56\x78\x9a\xbc");
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        assert_eq!(
            Header::decode(*b"HTTP/1.1", 100),
            Err(FrameError::WrongVersion(b'H'))
        );
        // Type 3 is an Aerospike data message, not info.
        assert_eq!(
            Header::decode(*b"\x02\x03\x00\x00\x00\x00\x00\x01", 100),
            Err(FrameError::WrongType(3))
        );
        assert_eq!(
            Header::decode(*b"\x02\x01\x00\x00\x00\x00\x01\x00", 255),
            Err(FrameError::TooLarge { len: 256, max: 255 })
        );
        assert!(Header::decode(*b"\x02\x01\x00\x00\x00\x00\x00\xff", 255).is_ok());
    }

    #[test]
    fn malformed_reply_frames_are_typed_errors() {
        let cases: &[(&[u8], FrameError)] = &[
            (
                b"\x02\x01\x00",
                FrameError::Truncated {
                    expected: 8,
                    got: 3,
                },
            ),
            (
                b"\x02\x01\x00\x00\x00\x00\x00\x06node\t",
                FrameError::Truncated {
                    expected: 6,
                    got: 5,
                },
            ),
            (
                b"\x02\x01\x00\x00\x00\x00\x00\x02a\n!",
                FrameError::TrailingBytes(1),
            ),
            (
                b"\x02\x01\x00\x00\x00\x00\x00\x04a\t\xff\n",
                FrameError::NotText,
            ),
            // Exactly the announced length, but the last line has no end.
            (
                b"\x02\x01\x00\x00\x00\x00\x00\x03a\tb",
                FrameError::UnterminatedLine,
            ),
            (
                b"\x02\x01\x00\x00\x00\x00\x00\x05node\n",
                FrameError::MissingTab {
                    line: "node".into(),
                },
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(&decode_reply(frame, 1000).unwrap_err(), expected);
        }
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_reply(&bytes, 32);
            let _ = parse_reply_body(&bytes);
        }

        #[test]
        fn valid_headers_with_any_body_decode_without_panicking(
            len in 0u64..80,
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut frame = Header { body_len: len }.encode().to_vec();
            frame.extend_from_slice(&body);
            let _ = decode_reply(&frame, 64);
        }

        #[test]
        fn encoded_commands_come_back_from_an_echoing_reply(
            commands in proptest::collection::vec("[a-z:;=/.-]{1,12}", 1..5),
        ) {
            let refs: Vec<&str> = commands.iter().map(String::as_str).collect();
            let request = encode_request(&refs).unwrap();
            // A server that answers every command with its own text.
            let mut body = Vec::new();
            for line in request[HEADER_LEN..].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                body.extend_from_slice(line);
                body.push(b'\t');
                body.extend_from_slice(line);
                body.push(b'\n');
            }
            let mut reply = Header { body_len: body.len() as u64 }.encode().to_vec();
            reply.extend_from_slice(&body);
            let lines = decode_reply(&reply, DEFAULT_MAX_REPLY).unwrap();
            let echoed: Vec<&str> = lines.iter().map(|(c, _)| c.as_str()).collect();
            prop_assert_eq!(echoed, refs);
        }
    }
}
