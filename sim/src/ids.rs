//! Node ids, cluster keys and the small amount of randomness the sim needs.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A 64-bit Aerospike node id, printed as upper-case hex without leading
/// zeros (`BB9020011AC4202`), the way the server prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl NodeId {
    /// Parses 1 to 16 hex digits; zero is not a valid node id.
    pub fn from_hex(text: &str) -> Option<NodeId> {
        if text.is_empty() || text.len() > 16 {
            return None;
        }
        match u64::from_str_radix(text, 16) {
            Ok(0) | Err(_) => None,
            Ok(id) => Some(NodeId(id)),
        }
    }

    /// A fresh id for a process without `node-id` in its config.
    ///
    /// The real server builds its id from the MAC address (low 48 bits) and
    /// the service port (high 16 bits). A restarted container gets a new MAC
    /// and so a new id; the sim mirrors that with a random low part, so two
    /// processes on one host differ (different ports, different randoms) and
    /// a restarted process never reuses its old id.
    pub fn generate(service_port: u16) -> NodeId {
        let low = random_u64() & 0x0000_FFFF_FFFF_FFFF;
        NodeId(((service_port as u64) << 48) | low.max(1))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", self.0)
    }
}

/// A random 64-bit value.
///
/// `RandomState` is seeded from the operating system's randomness once per
/// process; mixing in a counter and the clock gives a new value per call
/// without a dependency on a random-number crate.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A new cluster key: random, never zero (zero means "no cluster").
pub fn new_cluster_key() -> u64 {
    random_u64().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_format() {
        let id = NodeId::from_hex("bb9020011ac4202").unwrap();
        assert_eq!(id.to_string(), "BB9020011AC4202");
        assert_eq!(NodeId::from_hex("0"), None);
        assert_eq!(NodeId::from_hex(""), None);
        assert_eq!(NodeId::from_hex("12345678901234567"), None);
        assert_eq!(NodeId::from_hex("g1"), None);
    }

    #[test]
    fn generated_ids_carry_the_port_and_differ() {
        let a = NodeId::generate(3000);
        let b = NodeId::generate(3000);
        assert_ne!(a, b, "a restarted process must get a new id");
        assert_eq!(a.0 >> 48, 3000);
        assert_ne!(NodeId::generate(3000), NodeId::generate(3100));
    }
}
