//! The data plane's messages: AS_MSG (proto type 3) single-record
//! transactions, as the official clients send them.
//!
//! After the 8-byte proto header ([`crate::frame`]) comes the 22-byte
//! message header, all big-endian:
//!
//! ```text
//! header_sz (22) info1 info2 info3 unused result_code
//! generation u32  record_ttl u32  transaction_ttl u32  n_fields u16  n_ops u16
//! ```
//!
//! then `n_fields` fields (`u32 size` counting the type byte, `u8 type`,
//! data) and `n_ops` operations (`u32 size` counting what follows it,
//! `u8 op`, `u8 particle type`, `u8 version`, `u8 name length`, name,
//! value). The constants are the server's (`as/include/base/proto.h`).
//!
//! A message that does not parse (sizes running past the end, a header
//! size other than 22) is a [`MsgError`]: the connection is closed, as the
//! server closes it on a bad message. A message that parses but asks for
//! something the sim does not do is answered with a result code.

use std::fmt;

pub use crate::frame::TYPE_MSG;
use crate::frame::{Header, PROTO_VERSION};
use crate::record::{Digest, Particle, Record, DIGEST_LEN};

/// Length of the message header after the proto header.
pub const MSG_HEADER_LEN: usize = 22;

/// `info1`: read.
pub const INFO1_READ: u8 = 1;
/// `info1`: read all bins.
pub const INFO1_GET_ALL: u8 = 2;
/// `info1`: batch (not served).
pub const INFO1_BATCH: u8 = 8;
/// `info1`: read no bins (`exists`).
pub const INFO1_GET_NO_BINS: u8 = 32;
/// `info2`: write.
pub const INFO2_WRITE: u8 = 1;
/// `info2`: delete the record.
pub const INFO2_DELETE: u8 = 2;
/// `info2`: the write requires the record's generation to equal the one sent.
pub const INFO2_GENERATION: u8 = 4;
/// `info2`: the write requires the generation sent to exceed the record's.
pub const INFO2_GENERATION_GT: u8 = 8;
/// `info2`: fail if the record exists.
pub const INFO2_CREATE_ONLY: u8 = 32;
/// `info3`: fail if the record does not exist.
pub const INFO3_UPDATE_ONLY: u8 = 8;
/// `info3`: replace the record's bins (create if missing).
pub const INFO3_CREATE_OR_REPLACE: u8 = 16;
/// `info3`: replace the record's bins, fail if missing.
pub const INFO3_REPLACE_ONLY: u8 = 32;

/// Field type: namespace.
pub const FIELD_NAMESPACE: u8 = 0;
/// Field type: set name.
pub const FIELD_SET: u8 = 1;
/// Field type: user key.
pub const FIELD_KEY: u8 = 2;
/// Field type: RIPEMD-160 digest.
pub const FIELD_DIGEST: u8 = 4;

/// Op: read a bin.
pub const OP_READ: u8 = 1;
/// Op: write a bin (particle type 0, nil, deletes it).
pub const OP_WRITE: u8 = 2;
/// Op: add to an integer bin.
pub const OP_INCR: u8 = 5;
/// Op: append to a string or blob bin.
pub const OP_APPEND: u8 = 9;
/// Op: prepend to a string or blob bin.
pub const OP_PREPEND: u8 = 10;
/// Op: touch the record.
pub const OP_TOUCH: u8 = 11;
/// Op: delete the record (inside an operate).
pub const OP_DELETE: u8 = 14;

/// Particle type: nil.
pub const PARTICLE_NULL: u8 = 0;
/// Particle type: 64-bit integer.
pub const PARTICLE_INTEGER: u8 = 1;
/// Particle type: string.
pub const PARTICLE_STRING: u8 = 3;
/// Particle type: blob (bytes).
pub const PARTICLE_BLOB: u8 = 4;

/// Result codes of the server (`as/include/base/proto.h`) that the sim
/// answers.
pub mod result {
    /// Success.
    pub const OK: u8 = 0;
    /// Generic server error.
    pub const SERVER_ERROR: u8 = 1;
    /// The record does not exist.
    pub const KEY_NOT_FOUND: u8 = 2;
    /// Generation check failed.
    pub const GENERATION: u8 = 3;
    /// Bad request.
    pub const PARAMETER: u8 = 4;
    /// The record exists (create-only).
    pub const KEY_EXISTS: u8 = 5;
    /// The transaction timed out on the server (a replica or the proxy
    /// target did not answer).
    pub const TIMEOUT: u8 = 9;
    /// The partition is not available.
    pub const PARTITION_UNAVAILABLE: u8 = 11;
    /// An operation on a bin of another type.
    pub const BIN_INCOMPATIBLE_TYPE: u8 = 12;
    /// Not supported by the sim.
    pub const UNSUPPORTED_FEATURE: u8 = 16;
    /// Namespace not found.
    pub const NAMESPACE: u8 = 20;
}

/// One operation of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Op code.
    pub op: u8,
    /// Bin name.
    pub name: String,
    /// Particle sent (empty value for reads).
    pub particle: Particle,
}

/// A parsed AS_MSG request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `info1` flags.
    pub info1: u8,
    /// `info2` flags.
    pub info2: u8,
    /// `info3` flags.
    pub info3: u8,
    /// Generation sent (for generation checks).
    pub generation: u32,
    /// Record TTL sent (not honoured: records never expire).
    pub record_ttl: u32,
    /// Transaction TTL (server-side timeout) in ms; 0 is none.
    pub transaction_ttl: u32,
    /// Namespace field.
    pub namespace: Option<String>,
    /// Set field.
    pub set: Option<String>,
    /// User key field (particle type byte, then value).
    pub key: Option<Vec<u8>>,
    /// Digest field.
    pub digest: Option<Digest>,
    /// Operations.
    pub ops: Vec<Op>,
}

/// A message that does not parse; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgError(pub String);

impl fmt::Display for MsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed AS_MSG: {}", self.0)
    }
}

impl std::error::Error for MsgError {}

fn err<T>(text: impl Into<String>) -> Result<T, MsgError> {
    Err(MsgError(text.into()))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], MsgError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return err(format!(
                "{what} of {n} bytes at offset {} runs past the end of the {}-byte message",
                self.at,
                self.bytes.len()
            ));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8, MsgError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, MsgError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, MsgError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn text(bytes: &[u8], what: &str) -> Result<String, MsgError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| MsgError(format!("{what} is not UTF-8")))
}

/// Parses the body of a type-3 frame (everything after the proto header).
pub fn parse(body: &[u8]) -> Result<Request, MsgError> {
    let mut c = Cursor { bytes: body, at: 0 };
    let header_sz = c.u8("header")?;
    if header_sz as usize != MSG_HEADER_LEN {
        return err(format!(
            "header size {header_sz}, expected {MSG_HEADER_LEN}"
        ));
    }
    let info1 = c.u8("header")?;
    let info2 = c.u8("header")?;
    let info3 = c.u8("header")?;
    let _unused = c.u8("header")?;
    let _result = c.u8("header")?;
    let generation = c.u32("header")?;
    let record_ttl = c.u32("header")?;
    let transaction_ttl = c.u32("header")?;
    let n_fields = c.u16("header")?;
    let n_ops = c.u16("header")?;
    let mut request = Request {
        info1,
        info2,
        info3,
        generation,
        record_ttl,
        transaction_ttl,
        namespace: None,
        set: None,
        key: None,
        digest: None,
        ops: Vec::new(),
    };
    for i in 0..n_fields {
        let size = c.u32("field size")? as usize;
        if size == 0 {
            return err(format!("field {i} has size 0"));
        }
        let kind = c.u8("field type")?;
        let data = c.take(size - 1, "field")?;
        match kind {
            FIELD_NAMESPACE => request.namespace = Some(text(data, "namespace")?),
            FIELD_SET => request.set = Some(text(data, "set name")?),
            FIELD_KEY => request.key = Some(data.to_vec()),
            FIELD_DIGEST => {
                let digest: Digest = data.try_into().map_err(|_| {
                    MsgError(format!(
                        "digest field of {} bytes, expected {DIGEST_LEN}",
                        data.len()
                    ))
                })?;
                request.digest = Some(digest);
            }
            // Other fields (transaction id, timeouts, filter expressions,
            // ...) are skipped.
            _ => {}
        }
    }
    for i in 0..n_ops {
        let size = c.u32("op size")? as usize;
        if size < 4 {
            return err(format!(
                "op {i} has size {size}, less than its 4-byte header"
            ));
        }
        let op = c.u8("op")?;
        let kind = c.u8("op")?;
        let _version = c.u8("op")?;
        let name_len = c.u8("op")? as usize;
        if name_len > size - 4 {
            return err(format!(
                "op {i}: bin name of {name_len} bytes in a {size}-byte op"
            ));
        }
        let name = text(c.take(name_len, "bin name")?, "bin name")?;
        let value = c.take(size - 4 - name_len, "op value")?.to_vec();
        request.ops.push(Op {
            op,
            name,
            particle: Particle { kind, value },
        });
    }
    if c.at != body.len() {
        return err(format!("{} bytes after the last op", body.len() - c.at));
    }
    Ok(request)
}

/// A complete reply frame (proto header and message): `result`, the
/// record's `generation`, and the bins read (`READ` ops). The record TTL
/// is 0 ("never expires").
pub fn reply(result: u8, generation: u32, bins: &[(&str, &Particle)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(MSG_HEADER_LEN + bins.len() * 16);
    body.push(MSG_HEADER_LEN as u8);
    body.extend_from_slice(&[0, 0, 0, 0, result]);
    body.extend_from_slice(&generation.to_be_bytes());
    body.extend_from_slice(&0u32.to_be_bytes()); // record ttl (void time)
    body.extend_from_slice(&0u32.to_be_bytes()); // transaction ttl
    body.extend_from_slice(&0u16.to_be_bytes()); // fields
    body.extend_from_slice(&(bins.len() as u16).to_be_bytes());
    for (name, particle) in bins {
        let name = &name.as_bytes()[..name.len().min(255)];
        let size = 4 + name.len() + particle.value.len();
        body.extend_from_slice(&(size as u32).to_be_bytes());
        body.extend_from_slice(&[OP_READ, particle.kind, 0, name.len() as u8]);
        body.extend_from_slice(name);
        body.extend_from_slice(&particle.value);
    }
    let header = Header {
        version: PROTO_VERSION,
        msg_type: TYPE_MSG,
        length: body.len() as u64,
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Builds a request body (no proto header), as a client would: for tests
/// and the sim's own tools.
pub fn build_request(request: &Request) -> Vec<u8> {
    let mut fields: Vec<(u8, Vec<u8>)> = Vec::new();
    if let Some(ns) = &request.namespace {
        fields.push((FIELD_NAMESPACE, ns.as_bytes().to_vec()));
    }
    if let Some(set) = &request.set {
        fields.push((FIELD_SET, set.as_bytes().to_vec()));
    }
    if let Some(key) = &request.key {
        fields.push((FIELD_KEY, key.clone()));
    }
    if let Some(digest) = &request.digest {
        fields.push((FIELD_DIGEST, digest.to_vec()));
    }
    let mut body = vec![
        MSG_HEADER_LEN as u8,
        request.info1,
        request.info2,
        request.info3,
        0,
        0,
    ];
    body.extend_from_slice(&request.generation.to_be_bytes());
    body.extend_from_slice(&request.record_ttl.to_be_bytes());
    body.extend_from_slice(&request.transaction_ttl.to_be_bytes());
    body.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    body.extend_from_slice(&(request.ops.len() as u16).to_be_bytes());
    for (kind, data) in fields {
        body.extend_from_slice(&((data.len() + 1) as u32).to_be_bytes());
        body.push(kind);
        body.extend_from_slice(&data);
    }
    for op in &request.ops {
        let size = 4 + op.name.len() + op.particle.value.len();
        body.extend_from_slice(&(size as u32).to_be_bytes());
        body.extend_from_slice(&[op.op, op.particle.kind, 0, op.name.len() as u8]);
        body.extend_from_slice(op.name.as_bytes());
        body.extend_from_slice(&op.particle.value);
    }
    body
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read all bins (`get`), or the named bins.
    Read,
    /// Read no bins (`exists`).
    Exists,
    /// Write bins (`put`).
    Write,
    /// Delete the record (`remove`).
    Delete,
}

impl Request {
    /// What the request asks for, or the result code refusing it: batch
    /// and requests without a digest (scans, queries) are not served.
    pub fn kind(&self) -> Result<Kind, u8> {
        if self.info1 & INFO1_BATCH != 0 || self.digest.is_none() {
            return Err(result::UNSUPPORTED_FEATURE);
        }
        if self.namespace.is_none() {
            return Err(result::PARAMETER);
        }
        if self.info2 & INFO2_WRITE != 0 {
            if self.info2 & INFO2_DELETE != 0 {
                return Ok(Kind::Delete);
            }
            return Ok(Kind::Write);
        }
        if self.info1 & INFO1_READ != 0 {
            if self.info1 & INFO1_GET_NO_BINS != 0 {
                return Ok(Kind::Exists);
            }
            return Ok(Kind::Read);
        }
        Err(result::PARAMETER)
    }

    /// The first op the sim does not serve for this kind of request, as
    /// `(op code, reason)`.
    pub fn unsupported_op(&self) -> Option<(u8, &'static str)> {
        let kind = self.kind().ok()?;
        self.ops.iter().find_map(|op| {
            let ok = match kind {
                Kind::Read | Kind::Exists => op.op == OP_READ,
                Kind::Write => matches!(
                    op.op,
                    OP_WRITE | OP_INCR | OP_APPEND | OP_PREPEND | OP_TOUCH | OP_DELETE
                ),
                Kind::Delete => false,
            };
            (!ok).then_some((op.op, "op not supported by the sim in this request"))
        })
    }
}

/// Applies a delete to the record as it is (`None`: missing): the new
/// state (`None`, deleted) or the result code refusing it.
pub fn apply_delete(existing: Option<&Record>, request: &Request) -> Result<Option<Record>, u8> {
    let Some(existing) = existing else {
        return Err(result::KEY_NOT_FOUND);
    };
    check_generation(Some(existing), request)?;
    Ok(None)
}

fn check_generation(existing: Option<&Record>, request: &Request) -> Result<(), u8> {
    let have = existing.map_or(0, |r| r.generation);
    if request.info2 & INFO2_GENERATION != 0 && request.generation != have {
        return Err(result::GENERATION);
    }
    if request.info2 & INFO2_GENERATION_GT != 0 && request.generation <= have {
        return Err(result::GENERATION);
    }
    Ok(())
}

/// Applies a write's ops to the record as it is (`None`: missing), at
/// `now_ms`: the new version (`None` when the record ends up deleted, by a
/// delete op or with no bin left) or the result code refusing the write.
/// Honoured: create-only, update-only, replace, create-or-replace, the
/// generation checks; `WRITE` (a nil particle deletes the bin), `INCR` on
/// integers, `APPEND` / `PREPEND` on strings and blobs, `TOUCH`, `DELETE`.
/// The record TTL is not honoured.
pub fn apply_write(
    existing: Option<&Record>,
    request: &Request,
    now_ms: u64,
) -> Result<Option<Record>, u8> {
    if request.info2 & INFO2_CREATE_ONLY != 0 && existing.is_some() {
        return Err(result::KEY_EXISTS);
    }
    if request.info3 & (INFO3_UPDATE_ONLY | INFO3_REPLACE_ONLY) != 0 && existing.is_none() {
        return Err(result::KEY_NOT_FOUND);
    }
    check_generation(existing, request)?;
    let replace = request.info3 & (INFO3_CREATE_OR_REPLACE | INFO3_REPLACE_ONLY) != 0;
    let mut record = match existing {
        Some(old) if !replace => old.clone(),
        Some(old) => Record {
            bins: Default::default(),
            ..old.clone()
        },
        None => Record::default(),
    };
    for op in &request.ops {
        match op.op {
            OP_WRITE if op.particle.kind == PARTICLE_NULL => {
                record.bins.remove(&op.name);
            }
            OP_WRITE => {
                if op.particle.kind == PARTICLE_INTEGER && op.particle.value.len() != 8 {
                    return Err(result::PARAMETER);
                }
                record.bins.insert(op.name.clone(), op.particle.clone());
            }
            OP_INCR => {
                let add = integer(&op.particle).ok_or(result::PARAMETER)?;
                let old = match record.bins.get(&op.name) {
                    None => 0,
                    Some(p) => integer(p).ok_or(result::BIN_INCOMPATIBLE_TYPE)?,
                };
                record.bins.insert(
                    op.name.clone(),
                    Particle {
                        kind: PARTICLE_INTEGER,
                        value: old.wrapping_add(add).to_be_bytes().to_vec(),
                    },
                );
            }
            OP_APPEND | OP_PREPEND => {
                if !matches!(op.particle.kind, PARTICLE_STRING | PARTICLE_BLOB) {
                    return Err(result::PARAMETER);
                }
                let value = match record.bins.get(&op.name) {
                    None => op.particle.value.clone(),
                    Some(old) if old.kind != op.particle.kind => {
                        return Err(result::BIN_INCOMPATIBLE_TYPE)
                    }
                    Some(old) if op.op == OP_APPEND => {
                        [&old.value[..], &op.particle.value].concat()
                    }
                    Some(old) => [&op.particle.value[..], &old.value].concat(),
                };
                record.bins.insert(
                    op.name.clone(),
                    Particle {
                        kind: op.particle.kind,
                        value,
                    },
                );
            }
            OP_TOUCH => {}
            OP_DELETE => return Ok(None),
            _ => return Err(result::PARAMETER),
        }
    }
    if record.bins.is_empty() {
        // The server deletes a record left with no bins.
        return Ok(None);
    }
    record.generation = existing.map_or(1, |r| r.generation.wrapping_add(1).max(1));
    record.last_update_ms =
        existing.map_or(now_ms, |r| now_ms.max(r.last_update_ms.saturating_add(1)));
    if request.key.is_some() {
        record.key = request.key.clone();
    }
    Ok(Some(record))
}

fn integer(particle: &Particle) -> Option<i64> {
    if particle.kind != PARTICLE_INTEGER {
        return None;
    }
    let bytes: [u8; 8] = particle.value.as_slice().try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn put() -> Request {
        Request {
            info1: 0,
            info2: INFO2_WRITE,
            info3: 0,
            generation: 0,
            record_ttl: 0,
            transaction_ttl: 1000,
            namespace: Some("test".into()),
            set: Some("s".into()),
            key: None,
            digest: Some([9; DIGEST_LEN]),
            ops: vec![Op {
                op: OP_WRITE,
                name: "v".into(),
                particle: Particle {
                    kind: 3,
                    value: b"x".to_vec(),
                },
            }],
        }
    }

    #[test]
    fn a_request_round_trips_and_is_classified() {
        let request = put();
        let body = build_request(&request);
        assert_eq!(body[0], 22);
        assert_eq!(parse(&body), Ok(request.clone()));
        assert_eq!(request.kind(), Ok(Kind::Write));
        assert_eq!(request.unsupported_op(), None);
        let mut get = request.clone();
        get.info1 = INFO1_READ | INFO1_GET_ALL;
        get.info2 = 0;
        get.ops.clear();
        assert_eq!(get.kind(), Ok(Kind::Read));
        get.info1 |= INFO1_GET_NO_BINS;
        assert_eq!(get.kind(), Ok(Kind::Exists));
        let mut remove = request.clone();
        remove.info2 |= INFO2_DELETE;
        remove.ops.clear();
        assert_eq!(remove.kind(), Ok(Kind::Delete));
        let mut scan = get.clone();
        scan.digest = None;
        assert_eq!(scan.kind(), Err(result::UNSUPPORTED_FEATURE));
        let mut odd = request;
        odd.ops[0].op = 99;
        assert_eq!(odd.unsupported_op().map(|o| o.0), Some(99));
    }

    #[test]
    fn truncated_or_overrunning_messages_are_errors() {
        let body = build_request(&put());
        for cut in 0..body.len() {
            assert!(parse(&body[..cut]).is_err(), "cut at {cut}");
        }
        // A field size pointing far beyond the message.
        let mut big = body.clone();
        big[22..26].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&big).unwrap_err().0.contains("runs past the end"));
        let mut zero = body.clone();
        zero[22..26].copy_from_slice(&0u32.to_be_bytes());
        assert!(parse(&zero).unwrap_err().0.contains("size 0"));
        let mut header = body.clone();
        header[0] = 30;
        assert!(parse(&header).is_err());
        let mut trailing = body;
        trailing.push(0);
        assert!(parse(&trailing).is_err());
    }

    #[test]
    fn a_reply_carries_result_generation_and_bins() {
        let particle = Particle {
            kind: PARTICLE_INTEGER,
            value: 7i64.to_be_bytes().to_vec(),
        };
        let frame = reply(result::OK, 4, &[("n", &particle)]);
        assert_eq!(&frame[..2], &[2, 3]);
        assert_eq!(frame.len(), 8 + 22 + 4 + 4 + 1 + 8);
        assert_eq!(frame[8], 22);
        assert_eq!(frame[13], 0);
        assert_eq!(&frame[14..18], &4u32.to_be_bytes());
        assert_eq!(&frame[28..30], &1u16.to_be_bytes());
        assert_eq!(&frame[30..34], &13u32.to_be_bytes());
        assert_eq!(&frame[34..38], &[OP_READ, 1, 0, 1]);
    }

    #[test]
    fn writes_create_update_and_check_policies() {
        let request = put();
        let first = apply_write(None, &request, 100).unwrap().unwrap();
        assert_eq!((first.generation, first.last_update_ms), (1, 100));
        // A second write in the same millisecond still moves time forward.
        let second = apply_write(Some(&first), &request, 100).unwrap().unwrap();
        assert_eq!((second.generation, second.last_update_ms), (2, 101));
        let mut create = request.clone();
        create.info2 |= INFO2_CREATE_ONLY;
        assert_eq!(
            apply_write(Some(&first), &create, 5),
            Err(result::KEY_EXISTS)
        );
        let mut gen = request.clone();
        gen.info2 |= INFO2_GENERATION;
        gen.generation = 7;
        assert_eq!(apply_write(Some(&first), &gen, 5), Err(result::GENERATION));
        gen.generation = 1;
        assert!(apply_write(Some(&first), &gen, 5).is_ok());
        let mut incr = request.clone();
        incr.ops = vec![Op {
            op: OP_INCR,
            name: "n".into(),
            particle: Particle {
                kind: PARTICLE_INTEGER,
                value: 5i64.to_be_bytes().to_vec(),
            },
        }];
        let counted = apply_write(Some(&first), &incr, 200).unwrap().unwrap();
        let counted = apply_write(Some(&counted), &incr, 201).unwrap().unwrap();
        assert_eq!(counted.bins["n"].value, 10i64.to_be_bytes().to_vec());
        incr.ops[0].name = "v".into();
        assert_eq!(
            apply_write(Some(&first), &incr, 5),
            Err(result::BIN_INCOMPATIBLE_TYPE)
        );
        let mut nil = request.clone();
        nil.ops[0].particle = Particle {
            kind: PARTICLE_NULL,
            value: vec![],
        };
        assert_eq!(apply_write(Some(&first), &nil, 5), Ok(None), "no bin left");
        let mut append = request.clone();
        append.ops[0].op = OP_APPEND;
        append.ops[0].particle.value = b"yz".to_vec();
        let appended = apply_write(Some(&first), &append, 300).unwrap().unwrap();
        assert_eq!(appended.bins["v"].value, b"xyz".to_vec());
        append.ops[0].op = OP_PREPEND;
        let prepended = apply_write(Some(&appended), &append, 301).unwrap().unwrap();
        assert_eq!(prepended.bins["v"].value, b"yzxyz".to_vec());
        append.ops[0].particle.kind = PARTICLE_BLOB;
        assert_eq!(
            apply_write(Some(&first), &append, 5),
            Err(result::BIN_INCOMPATIBLE_TYPE)
        );
        assert_eq!(apply_delete(None, &request), Err(result::KEY_NOT_FOUND));
        assert_eq!(apply_delete(Some(&first), &request), Ok(None));
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&body);
        }

        #[test]
        fn arbitrary_bodies_after_a_good_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..120), n_fields in 0u16..4, n_ops in 0u16..4) {
            let mut body = vec![22u8, 1, 0, 0, 0, 0];
            body.extend_from_slice(&[0; 12]);
            body.extend_from_slice(&n_fields.to_be_bytes());
            body.extend_from_slice(&n_ops.to_be_bytes());
            body.extend_from_slice(&tail);
            let _ = parse(&body);
        }
    }
}
