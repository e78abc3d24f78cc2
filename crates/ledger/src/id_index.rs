//! The index from a client's 128-bit id to an object's position in creation order.
//!
//! `MemoryStore` finds every account and transfer by id through one of these, two or three
//! times per transfer, so at a million accounts the index's cache misses are a large part of a
//! transfer's cost. A general hash map stores each key beside its value (32 bytes per entry for a
//! `u128` key) and its control bytes apart from both: two cache misses per lookup, in a table
//! several times larger than the cache. This index stores neither: a slot is 8 bytes, the
//! object's position and 24 bits of the id's hash, eight slots to a cache line, and a lookup
//! confirms a match by reading the object's id from the object itself, which the caller is about
//! to read anyway. A lookup costs one miss in the index, and a new id (the common case for a
//! transfer) is refused by the hash bits alone, without reading any object.
//!
//! The table is open addressing with linear probing, at most half full. The hash is keyed with
//! random keys per index (as `store::IdHasher`): clients choose ids, so they must not be able to
//! choose ids that collide. The index is never iterated, so the keys never reach an output.

use crate::store::IdHasherBuilder;

/// Bits of a slot that hold hash bits of the id (the rest hold the position plus one).
const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// The largest position a slot can hold.
pub const POSITION_MAX: u64 = (1 << (64 - TAG_BITS)) - 2;
/// The table is grown before it would be more than half full.
const LOAD_NUMERATOR: usize = 1;
const LOAD_DENOMINATOR: usize = 2;
/// The smallest table, once it holds anything.
const SLOTS_MIN: usize = 16;

/// A hash index from ids to positions `0..len`. The caller keeps the objects: every method that
/// may need to confirm a match takes `id_at`, which gives the id of the object at a position.
#[derive(Debug, Clone, Default)]
pub struct IdIndex {
    /// 0 for an empty slot, else `(position + 1) << TAG_BITS | tag`.
    slots: Vec<u64>,
    len: usize,
    keys: IdHasherBuilder,
}

impl IdIndex {
    /// An index with room for `capacity` ids before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut index = Self::default();
        if capacity > 0 {
            index.slots = vec![0; Self::slots_for(capacity)];
        }
        index
    }

    fn slots_for(capacity: usize) -> usize {
        (capacity * LOAD_DENOMINATOR / LOAD_NUMERATOR).next_power_of_two().max(SLOTS_MIN)
    }

    /// The number of ids in the index.
    pub fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, id: u128) -> u64 {
        self.keys.hash_id(id)
    }

    /// The first slot to probe for `hash`, and the tag that a slot holding it carries.
    fn home_and_tag(&self, hash: u64) -> (usize, u64) {
        ((hash as usize) & (self.slots.len() - 1), hash >> (64 - TAG_BITS))
    }

    /// The position of the object with `id`.
    pub fn get(&self, id: u128, id_at: impl Fn(u64) -> u128) -> Option<u64> {
        self.find(id, &id_at).map(|(_, position)| position)
    }

    /// The slot holding `id` and its position.
    fn find(&self, id: u128, id_at: &impl Fn(u64) -> u128) -> Option<(usize, u64)> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let (mut slot, tag) = self.home_and_tag(self.hash(id));
        loop {
            let entry = self.slots[slot];
            if entry == 0 {
                return None;
            }
            if entry & TAG_MASK == tag {
                let position = (entry >> TAG_BITS) - 1;
                if id_at(position) == id {
                    return Some((slot, position));
                }
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Reads the slot where a lookup of `id` starts and returns it, so that a later lookup finds
    /// it in the cache (see `Store::prefetch_transfers`).
    pub fn touch(&self, id: u128) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let (slot, _) = self.home_and_tag(self.hash(id));
        self.slots[slot]
    }

    /// The position of the first entry whose hash bits match `id`'s, without confirming that it
    /// is `id`: a guess good enough to prefetch the object (wrong about once in 16 million).
    pub fn guess(&self, id: u128) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let (mut slot, tag) = self.home_and_tag(self.hash(id));
        loop {
            let entry = self.slots[slot];
            if entry == 0 {
                return None;
            }
            if entry & TAG_MASK == tag {
                return Some((entry >> TAG_BITS) - 1);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Adds `id` at `position`, or returns the position it already has. `id_at` must know every
    /// position but the new one. Positions beyond [`POSITION_MAX`] do not fit.
    pub fn insert(&mut self, id: u128, position: u64, id_at: impl Fn(u64) -> u128) -> Result<(), u64> {
        assert!(position <= POSITION_MAX, "an index holds positions up to {POSITION_MAX}, not {position}");
        if let Some((_, existing)) = self.find(id, &id_at) {
            return Err(existing);
        }
        if (self.len + 1) * LOAD_DENOMINATOR > self.slots.len() * LOAD_NUMERATOR {
            self.grow(&id_at);
        }
        self.place(self.hash(id), position);
        self.len += 1;
        Ok(())
    }

    /// Puts an entry in the first free slot from its home (the id must not be present).
    fn place(&mut self, hash: u64, position: u64) {
        let mask = self.slots.len() - 1;
        let (mut slot, tag) = self.home_and_tag(hash);
        while self.slots[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = ((position + 1) << TAG_BITS) | tag;
    }

    /// Doubles the table (or makes the first one) and places every entry again. Positions are
    /// `0..len`, so the ids are read from the objects in order.
    fn grow(&mut self, id_at: &impl Fn(u64) -> u128) {
        let slots = Self::slots_for(self.len + 1).max(self.slots.len() * 2);
        self.slots = vec![0; slots];
        for position in 0..self.len as u64 {
            self.place(self.hash(id_at(position)), position);
        }
    }

    /// Removes `id`, which must be present (rollback of the newest object). `id_at` must still
    /// know its position.
    pub fn remove(&mut self, id: u128, id_at: impl Fn(u64) -> u128) -> u64 {
        let (mut hole, position) = self.find(id, &id_at).expect("the id to remove is in the index");
        // Backward-shift deletion: move later entries of the probe run into the hole when their
        // home does not lie between the hole and them, so that no lookup stops early.
        let mask = self.slots.len() - 1;
        let mut slot = hole;
        loop {
            slot = (slot + 1) & mask;
            let entry = self.slots[slot];
            if entry == 0 {
                break;
            }
            let (home, _) = self.home_and_tag(self.hash(id_at((entry >> TAG_BITS) - 1)));
            // The entry may move back to `hole` unless its home lies in (hole, slot].
            let stays = if hole <= slot { hole < home && home <= slot } else { hole < home || home <= slot };
            if !stays {
                self.slots[hole] = entry;
                hole = slot;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
        position
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Drives an index and a `HashMap` through the same random inserts, lookups and removals of
    /// the newest id, over ids that differ only in their high bits, only in their low bits, or
    /// anywhere.
    #[test]
    fn behaves_as_a_map_through_growth_and_removal() {
        let mut state = 7u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for shape in 0..3 {
            let id_of = |n: u64| -> u128 {
                match shape {
                    0 => u128::from(n) + 1,
                    1 => (u128::from(n) + 1) << 100,
                    _ => (u128::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) << 64) | (u128::from(n) + 1),
                }
            };
            let mut index = if shape == 2 { IdIndex::with_capacity(1_000) } else { IdIndex::default() };
            let mut objects: Vec<u128> = Vec::new();
            let mut model: HashMap<u128, u64> = HashMap::new();
            let mut next = 0u64;
            for step in 0..20_000 {
                match random() % 10 {
                    0 if !objects.is_empty() => {
                        let id = *objects.last().unwrap();
                        let position = index.remove(id, |position| objects[position as usize]);
                        assert_eq!(position, objects.len() as u64 - 1);
                        objects.pop();
                        model.remove(&id);
                    }
                    1 if !objects.is_empty() => {
                        // Inserting an id that is present refuses and names its position.
                        let existing = objects[(random() % objects.len() as u64) as usize];
                        let position = objects.len() as u64;
                        let result = index.insert(existing, position, |position| objects[position as usize]);
                        assert_eq!(result, Err(model[&existing]));
                    }
                    _ => {
                        let id = id_of(next);
                        next += 1;
                        let position = objects.len() as u64;
                        objects.push(id);
                        assert_eq!(index.insert(id, position, |position| objects[position as usize]), Ok(()));
                        model.insert(id, position);
                    }
                }
                assert_eq!(index.len(), model.len());
                if step % 97 == 0 {
                    for (id, position) in &model {
                        assert_eq!(index.get(*id, |position| objects[position as usize]), Some(*position));
                    }
                    for absent in [id_of(next), id_of(next + 1), u128::MAX, 0] {
                        assert_eq!(
                            index.get(absent, |position| objects[position as usize]),
                            None,
                            "shape {shape} step {step}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn stays_at_most_half_full() {
        let mut index = IdIndex::default();
        let ids: Vec<u128> = (1..=1_000).collect();
        for (position, id) in ids.iter().enumerate() {
            index.insert(*id, position as u64, |position| ids[position as usize]).unwrap();
            assert!(index.len() * 2 <= index.slots.len());
        }
        assert_eq!(IdIndex::with_capacity(1_000).slots.len(), 2_048);
    }
}
