//! Records: what a partition copy holds once the sim has a data plane.
//!
//! A record is found by its 20-byte digest (RIPEMD-160 of set and key,
//! computed by the client; the sim never computes one). It carries a
//! generation (1 on creation, +1 per write), a last-update time in
//! milliseconds since the Unix epoch (strictly increasing per record), its
//! bins as the raw particles the client sent (particle type and value
//! bytes), and the user key when the client sent it (`POLICY_KEY_SEND`).
//!
//! Conflicts between copies (a migration meeting a copy that was written
//! meanwhile) are resolved as the server's default
//! `conflict-resolution-policy generation`: the higher generation wins,
//! then the later last-update time ([`Record::newer_than`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Length of a record digest.
pub const DIGEST_LEN: usize = 20;

/// A record digest.
pub type Digest = [u8; DIGEST_LEN];

/// The partition a digest belongs to, as the server computes it: the low
/// 12 bits of the first two bytes, little-endian.
pub fn partition_id(digest: &Digest) -> usize {
    (digest[0] as usize | (digest[1] as usize) << 8) & 0xFFF
}

/// One bin's value: the particle type byte and the value bytes, as on the
/// wire (an integer is 8 bytes big-endian).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Particle {
    /// Particle type (1 integer, 2 float, 3 string, 4 blob, ...).
    pub kind: u8,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// One record of one partition copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// 1 on creation, +1 per write.
    pub generation: u32,
    /// Last update, ms since the Unix epoch (strictly increasing per record).
    pub last_update_ms: u64,
    /// Bins by name.
    pub bins: BTreeMap<String, Particle>,
    /// The user key field as sent (particle type byte, then value), when
    /// the client sent one.
    pub key: Option<Vec<u8>>,
}

impl Record {
    /// Whether this copy wins over `other` (generation, then last-update
    /// time), as the server's default conflict resolution.
    pub fn newer_than(&self, other: &Record) -> bool {
        (self.generation, self.last_update_ms) > (other.generation, other.last_update_ms)
    }
}

/// The records of one partition copy, by digest.
pub type Partition = BTreeMap<Digest, Record>;

/// A record as it travels over the fabric and sits in a device file: JSON
/// with hex strings for the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRecord {
    /// Digest, hex.
    pub d: String,
    /// Generation.
    pub g: u32,
    /// Last-update time, ms.
    pub l: u64,
    /// Bins: name, particle type, value in hex.
    pub b: Vec<(String, u8, String)>,
    /// User key field, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
}

impl WireRecord {
    /// The wire form of `record` under `digest`.
    pub fn from_record(digest: &Digest, record: &Record) -> WireRecord {
        WireRecord {
            d: to_hex(digest),
            g: record.generation,
            l: record.last_update_ms,
            b: record
                .bins
                .iter()
                .map(|(name, p)| (name.clone(), p.kind, to_hex(&p.value)))
                .collect(),
            k: record.key.as_deref().map(to_hex),
        }
    }

    /// Back to a digest and a record; `None` when a hex string is bad.
    pub fn to_record(&self) -> Option<(Digest, Record)> {
        let digest: Digest = from_hex(&self.d)?.try_into().ok()?;
        let mut bins = BTreeMap::new();
        for (name, kind, value) in &self.b {
            bins.insert(
                name.clone(),
                Particle {
                    kind: *kind,
                    value: from_hex(value)?,
                },
            );
        }
        let key = match &self.k {
            Some(k) => Some(from_hex(k)?),
            None => None,
        };
        Some((
            digest,
            Record {
                generation: self.g,
                last_update_ms: self.l,
                bins,
                key,
            },
        ))
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Parses hex (either case); `None` on an odd length or a bad digit.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partition_id_is_the_low_12_bits_little_endian() {
        let mut digest = [0u8; DIGEST_LEN];
        digest[0] = 0x34;
        digest[1] = 0xF2;
        assert_eq!(partition_id(&digest), 0x234);
        digest[1] = 0x0F;
        digest[0] = 0xFF;
        assert_eq!(partition_id(&digest), 4095);
    }

    #[test]
    fn newer_is_generation_then_last_update() {
        let a = Record {
            generation: 2,
            last_update_ms: 5,
            ..Record::default()
        };
        let b = Record {
            generation: 1,
            last_update_ms: 9,
            ..Record::default()
        };
        assert!(a.newer_than(&b) && !b.newer_than(&a));
        let c = Record {
            generation: 2,
            last_update_ms: 6,
            ..Record::default()
        };
        assert!(c.newer_than(&a));
        assert!(!a.newer_than(&a));
    }

    #[test]
    fn wire_records_round_trip() {
        let mut record = Record {
            generation: 3,
            last_update_ms: 1_700_000_000_000,
            key: Some(vec![3, b'k']),
            ..Record::default()
        };
        record.bins.insert(
            "v".into(),
            Particle {
                kind: 3,
                value: b"hello".to_vec(),
            },
        );
        let digest = [7u8; DIGEST_LEN];
        let wire = WireRecord::from_record(&digest, &record);
        let text = serde_json::to_string(&wire).unwrap();
        let back: WireRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_record(), Some((digest, record)));
        let mut bad = wire.clone();
        bad.d = "zz".into();
        assert_eq!(bad.to_record(), None);
        bad.d = "00".into();
        assert_eq!(bad.to_record(), None, "a short digest");
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
        }

        #[test]
        fn any_text_parses_as_hex_without_panic(text in ".{0,40}") {
            let _ = from_hex(&text);
        }
    }
}
