//! Partitions: the 4096-bit maps nodes exchange, and the deterministic
//! ranking that decides which nodes own which partition.
//!
//! Which node holds a copy of which partition is what makes data loss
//! measurable: a partition whose every copy has left the cluster is lost,
//! with its records (see [`crate::record`]).

use std::fmt;

use crate::ids::NodeId;

/// Partitions per namespace, as in every Aerospike build.
pub const N_PARTITIONS: usize = 4096;

const WORDS: usize = N_PARTITIONS / 64;

/// One bit per partition.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap([u64; WORDS]);

impl Default for Bitmap {
    fn default() -> Self {
        Bitmap::empty()
    }
}

impl fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitmap({} set)", self.count())
    }
}

impl Bitmap {
    /// No partition set.
    pub fn empty() -> Bitmap {
        Bitmap([0; WORDS])
    }

    /// Every partition set.
    pub fn full() -> Bitmap {
        Bitmap([u64::MAX; WORDS])
    }

    /// Whether partition `pid` is set.
    pub fn get(&self, pid: usize) -> bool {
        self.0[pid / 64] & (1 << (pid % 64)) != 0
    }

    /// Sets or clears partition `pid`.
    pub fn set(&mut self, pid: usize, value: bool) {
        if value {
            self.0[pid / 64] |= 1 << (pid % 64);
        } else {
            self.0[pid / 64] &= !(1 << (pid % 64));
        }
    }

    /// Number of partitions set.
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether no partition is set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Sets every partition set in `other`.
    pub fn union_with(&mut self, other: &Bitmap) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    /// Clears every partition set in `other`.
    pub fn subtract(&mut self, other: &Bitmap) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a &= !b;
        }
    }

    /// Hex text for the heartbeat: empty string for an empty map (the
    /// common case for dead partitions), else 1024 hex digits.
    pub fn to_hex(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        self.0.iter().map(|w| format!("{w:016x}")).collect()
    }

    /// Parses [`Bitmap::to_hex`] output; `None` if malformed.
    pub fn from_hex(text: &str) -> Option<Bitmap> {
        if text.is_empty() {
            return Some(Bitmap::empty());
        }
        if text.len() != WORDS * 16 || !text.is_ascii() {
            return None;
        }
        let mut words = [0u64; WORDS];
        for (i, word) in words.iter_mut().enumerate() {
            *word = u64::from_str_radix(&text[i * 16..(i + 1) * 16], 16).ok()?;
        }
        Some(Bitmap(words))
    }
}

/// A pseudo-random but deterministic score of a node for a partition:
/// every node computes the same ranking from the same member list.
pub fn score(pid: usize, node: NodeId) -> u64 {
    // splitmix64 finaliser over the pair; any good mixer would do, what
    // matters is that it is the same on every node.
    let mut z = node.0 ^ (pid as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// All members in rank order for partition `pid`: nodes not quiesced first,
/// then by descending score (node id breaks the never-seen tie).
pub fn ranking(pid: usize, members: &[NodeId], quiesced: &[NodeId]) -> Vec<NodeId> {
    let mut ranked: Vec<NodeId> = members.to_vec();
    ranked.sort_by_key(|node| {
        (
            quiesced.contains(node),
            std::cmp::Reverse(score(pid, *node)),
            std::cmp::Reverse(*node),
        )
    });
    ranked
}

/// Replication factor in effect: the configured one, capped by cluster size.
pub fn effective_rf(configured: u32, members: usize) -> usize {
    (configured as usize).min(members).max(1)
}

/// The owners (replicas) of every partition, computed once per cluster.
#[derive(Debug, Clone, Default)]
pub struct OwnerTable {
    rf: usize,
    members: Vec<NodeId>,
    /// `rf` indices into `members` per partition, master first.
    owners: Vec<u8>,
}

impl OwnerTable {
    /// Ranks every partition over `members`. At most 255 members are
    /// supported, far beyond any sim cluster.
    pub fn new(members: &[NodeId], quiesced: &[NodeId], rf: usize) -> OwnerTable {
        let members: Vec<NodeId> = members.iter().copied().take(255).collect();
        let rf = rf.min(members.len());
        let mut owners = Vec::with_capacity(N_PARTITIONS * rf);
        for pid in 0..N_PARTITIONS {
            for node in ranking(pid, &members, quiesced).into_iter().take(rf) {
                let index = members.iter().position(|m| *m == node).unwrap_or(0);
                owners.push(index as u8);
            }
        }
        OwnerTable {
            rf,
            members,
            owners,
        }
    }

    /// The effective replication factor of this table.
    pub fn rf(&self) -> usize {
        self.rf
    }

    /// The owners of `pid`, master first.
    pub fn owners(&self, pid: usize) -> impl Iterator<Item = NodeId> + '_ {
        self.owners[pid * self.rf..(pid + 1) * self.rf]
            .iter()
            .map(|i| self.members[*i as usize])
    }

    /// Where `node` stands among the owners of `pid` (0 = master).
    pub fn replica_index(&self, pid: usize, node: NodeId) -> Option<usize> {
        if self.rf == 0 {
            return None;
        }
        self.owners(pid).position(|o| o == node)
    }

    /// Whether `node` owns `pid`.
    pub fn is_owner(&self, pid: usize, node: NodeId) -> bool {
        self.owners(pid).any(|o| o == node)
    }

    /// The partitions `node` owns.
    pub fn owned_by(&self, node: NodeId) -> Bitmap {
        let mut owned = Bitmap::empty();
        if self.rf == 0 {
            return owned;
        }
        for pid in 0..N_PARTITIONS {
            if self.is_owner(pid, node) {
                owned.set(pid, true);
            }
        }
        owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nodes(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|i| NodeId(*i)).collect()
    }

    #[test]
    fn bitmap_hex_round_trip() {
        let mut map = Bitmap::empty();
        assert_eq!(map.to_hex(), "");
        map.set(0, true);
        map.set(4095, true);
        map.set(1000, true);
        let hex = map.to_hex();
        assert_eq!(hex.len(), 1024);
        assert_eq!(Bitmap::from_hex(&hex), Some(map.clone()));
        assert_eq!(map.count(), 3);
        assert_eq!(Bitmap::from_hex("zz"), None);
        assert_eq!(Bitmap::full().count(), N_PARTITIONS);
    }

    #[test]
    fn every_partition_has_rf_distinct_owners_and_load_is_balanced() {
        let members = nodes(&[0xA1, 0xB2, 0xC3]);
        let table = OwnerTable::new(&members, &[], 2);
        for pid in 0..N_PARTITIONS {
            let owners: Vec<NodeId> = table.owners(pid).collect();
            assert_eq!(owners.len(), 2);
            assert_ne!(owners[0], owners[1]);
        }
        // With 3 nodes and RF 2 each node owns about 2/3 of the partitions.
        for node in &members {
            let owned = table.owned_by(*node).count();
            assert!((2400..3100).contains(&owned), "{node}: {owned}");
        }
    }

    #[test]
    fn quiesced_nodes_own_nothing_while_others_can() {
        let members = nodes(&[1, 2, 3]);
        let table = OwnerTable::new(&members, &[NodeId(3)], 2);
        assert!(table.owned_by(NodeId(3)).is_empty());
        // ... but they still count when there are not enough other nodes.
        let table = OwnerTable::new(&members, &[NodeId(2), NodeId(3)], 2);
        assert_eq!(table.owned_by(NodeId(1)).count(), N_PARTITIONS);
    }

    #[test]
    fn effective_rf_is_capped_by_cluster_size() {
        assert_eq!(effective_rf(2, 1), 1);
        assert_eq!(effective_rf(3, 5), 3);
    }

    proptest! {
        #[test]
        fn ranking_does_not_depend_on_member_order(mut ids in proptest::collection::btree_set(1u64.., 1..8), pid in 0usize..N_PARTITIONS) {
            let forward: Vec<NodeId> = ids.iter().map(|i| NodeId(*i)).collect();
            let mut backward = forward.clone();
            backward.reverse();
            prop_assert_eq!(ranking(pid, &forward, &[]), ranking(pid, &backward, &[]));
            ids.clear();
        }

        #[test]
        fn any_text_parses_as_bitmap_without_panic(text in ".{0,1100}") {
            let _ = Bitmap::from_hex(&text);
        }
    }
}
