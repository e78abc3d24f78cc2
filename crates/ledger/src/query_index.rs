//! Secondary indexes for queries: for each value of a field, the positions of the objects that
//! have it, in creation order (which is timestamp order).
//!
//! A query finds its timestamp range inside such a list by binary search, so a filter on a rare
//! value costs the logarithm of the list plus the objects it lists in the range, however many
//! other objects share the range. Objects arrive in timestamp order, so every list only grows at
//! its end, and a linked chain's rollback undoes the newest pushes first (`FieldIndex::pop`).
//!
//! Two shapes, by how many objects share a value. `ledger` and `code` take few values, each held
//! by many objects: a hash table from the value to its list (`FieldIndex`), and consecutive
//! objects mostly share both, so a push rarely even reads the table. `user_data_*` values are
//! often unique (an invoice number, an order id): a hash table would take a cache miss in a table
//! far larger than the cache for every new object, so those fields are kept as an LSM tree keeps
//! its keys (`RunIndex`): each batch's entries are appended, sorted when the batch ends, and
//! merged into a few sorted runs, all sequential work. A value's positions are then one slice
//! per run, found by binary search, ascending from run to run.
//!
//! The indexes are derived from the objects and never part of the state digest, its proofs or a
//! snapshot: a store builds them as objects are pushed, which is also how a restored or
//! re-founded ledger gets them back.
//!
//! Zero is never indexed: in TigerBeetle's filters a zero field means "any value", so a list for
//! zero would never be read.

use std::collections::hash_map::Entry;
use std::hash::Hash;

use crate::store::{AccountIndex, HashMap};
use crate::types::{Account, Transfer};

/// One field of a filter, set to the value it must equal (never zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue {
    UserData128(u128),
    UserData64(u64),
    UserData32(u32),
    Ledger(u32),
    Code(u16),
}

impl FieldValue {
    /// The fields a filter sets, in the order of their declaration; zeros (any value) left out.
    pub fn set_fields(
        user_data_128: u128,
        user_data_64: u64,
        user_data_32: u32,
        ledger: u32,
        code: u16,
    ) -> impl Iterator<Item = FieldValue> {
        [
            (user_data_128 != 0).then_some(FieldValue::UserData128(user_data_128)),
            (user_data_64 != 0).then_some(FieldValue::UserData64(user_data_64)),
            (user_data_32 != 0).then_some(FieldValue::UserData32(user_data_32)),
            (ledger != 0).then_some(FieldValue::Ledger(ledger)),
            (code != 0).then_some(FieldValue::Code(code)),
        ]
        .into_iter()
        .flatten()
    }
}

/// Where the positions of one value are: a single position inline (a value that one object
/// alone holds needs no allocation of its own), or a list in `FieldIndex::lists`.
#[derive(Debug, Clone, Copy)]
enum Slot<P> {
    One(P),
    List(usize),
}

/// For each value of one field, the positions of the objects that have it, ascending.
#[derive(Debug, Clone)]
pub struct FieldIndex<K, P> {
    slots: HashMap<K, Slot<P>>,
    /// The lists of the values held by more than one object, in the order they became lists.
    lists: Vec<Vec<P>>,
    /// The value of the last push that appended to a list, and that list: consecutive objects
    /// mostly share their `ledger` and `code`, and then a push skips the hash table.
    last: Option<(K, usize)>,
}

impl<K, P> Default for FieldIndex<K, P> {
    fn default() -> Self {
        Self { slots: HashMap::default(), lists: Vec::new(), last: None }
    }
}

impl<K: Copy + Eq + Hash, P: Copy + Ord + std::fmt::Debug> FieldIndex<K, P> {
    /// Lists `position` under `key`; it must come after every position listed under `key`.
    pub fn push(&mut self, key: K, position: P) {
        if let Some((last, list)) = self.last
            && last == key
        {
            let positions = &mut self.lists[list];
            assert!(positions.last().is_some_and(|last| *last < position), "positions are listed in order");
            positions.push(position);
            return;
        }
        match self.slots.entry(key) {
            Entry::Vacant(vacant) => {
                vacant.insert(Slot::One(position));
            }
            Entry::Occupied(mut occupied) => match *occupied.get() {
                Slot::One(first) => {
                    assert!(first < position, "positions are listed in order");
                    self.lists.push(vec![first, position]);
                    *occupied.get_mut() = Slot::List(self.lists.len() - 1);
                    self.last = Some((key, self.lists.len() - 1));
                }
                Slot::List(list) => {
                    let positions = &mut self.lists[list];
                    assert!(positions.last().is_some_and(|last| *last < position), "positions are listed in order");
                    positions.push(position);
                    self.last = Some((key, list));
                }
            },
        }
    }

    /// Removes `position` from `key`'s list, where it must be the last. Pushes are undone newest
    /// first, so a list that shrinks back to one position is the newest list, and its storage is
    /// given back.
    pub fn pop(&mut self, key: K, position: P) {
        let Entry::Occupied(mut occupied) = self.slots.entry(key) else {
            panic!("position {position:?} popped from a value that lists nothing");
        };
        match *occupied.get() {
            Slot::One(only) => {
                assert_eq!(only, position, "only the newest position is popped");
                occupied.remove();
            }
            Slot::List(list) => {
                let positions = &mut self.lists[list];
                assert_eq!(positions.pop(), Some(position), "only the newest position is popped");
                if let [only] = positions[..] {
                    assert_eq!(list + 1, self.lists.len(), "the list made by the push undone is the newest");
                    self.lists.pop();
                    *occupied.get_mut() = Slot::One(only);
                    if self.last.is_some_and(|(_, last)| last == list) {
                        self.last = None;
                    }
                }
            }
        }
    }

    /// The positions listed under `key`, ascending.
    pub fn get(&self, key: &K) -> &[P] {
        match self.slots.get(key) {
            None => &[],
            Some(Slot::One(position)) => std::slice::from_ref(position),
            Some(Slot::List(list)) => &self.lists[*list],
        }
    }

    /// The bytes this index holds on the heap: the hash table (all its buckets, with their
    /// control bytes) and the lists (at their capacities).
    pub fn bytes_held(&self) -> u64 {
        // The standard table keeps at most 7/8 of its buckets full (all but one below 8).
        let buckets = match self.slots.capacity() {
            0 => 0,
            capacity @ 1..7 => capacity + 1,
            capacity => capacity / 7 * 8,
        };
        let table = buckets * (std::mem::size_of::<(K, Slot<P>)>() + 1);
        let lists = self.lists.capacity() * std::mem::size_of::<Vec<P>>()
            + self.lists.iter().map(|list| list.capacity() * std::mem::size_of::<P>()).sum::<usize>();
        (table + lists) as u64
    }
}

/// The positions of the objects that have each value, ascending: the parts, each ascending, all
/// of one part before all of the next.
pub type Postings<'a, P> = Vec<&'a [P]>;

/// A sorted run: keys ascending, and the positions of each key ascending, side by side.
#[derive(Debug, Clone)]
struct Run<K, P> {
    keys: Vec<K>,
    positions: Vec<P>,
}

/// For each value of a field whose values are mostly distinct, the positions of the objects that
/// have it: sorted runs, each covering the pushes of consecutive batches, oldest first, and the
/// pushes of the open batch (`tail`), which `seal` sorts into a run when the batch ends.
///
/// A new run is merged with the one before it while that one is at most twice as long, so the
/// runs shrink geometrically from the oldest: there are O(log n) of them, and each entry is
/// merged O(log n) times, sequentially. An entry costs its key and position (24 bytes for a
/// `user_data_128` and a transfer), and a merge holds its two runs and their merge at once.
#[derive(Debug, Clone)]
pub struct RunIndex<K, P> {
    runs: Vec<Run<K, P>>,
    tail: Vec<(K, P)>,
}

impl<K, P> Default for RunIndex<K, P> {
    fn default() -> Self {
        Self { runs: Vec::new(), tail: Vec::new() }
    }
}

impl<K: Copy + Ord + std::fmt::Debug, P: Copy + Ord + std::fmt::Debug> RunIndex<K, P> {
    /// Lists `position` under `key`; it must come after every position listed under `key`.
    pub fn push(&mut self, key: K, position: P) {
        self.tail.push((key, position));
    }

    /// Removes the newest push of the open batch, which must be `(key, position)`.
    pub fn pop(&mut self, key: K, position: P) {
        assert_eq!(self.tail.pop(), Some((key, position)), "only the newest push of the open batch is popped");
    }

    /// Ends the batch: its pushes are sorted into a run and will not be popped.
    pub fn seal(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        // Pushes of one key come in ascending positions, and (key, position) pairs are distinct,
        // so sorting the pairs sorts by key and keeps each key's positions ascending.
        self.tail.sort_unstable();
        let run = Run {
            keys: self.tail.iter().map(|(key, _)| *key).collect(),
            positions: self.tail.iter().map(|(_, position)| *position).collect(),
        };
        self.tail.clear();
        self.runs.push(run);
        while let [.., older, newer] = &self.runs[..]
            && older.keys.len() <= 2 * newer.keys.len()
        {
            let newer = self.runs.pop().expect("two runs");
            let older = self.runs.pop().expect("two runs");
            self.runs.push(merge(older, newer));
        }
    }

    /// The positions listed under `key`, ascending across the parts and within each. Queries run
    /// between batches, when every push is in a run.
    pub fn get(&self, key: &K) -> Postings<'_, P> {
        assert!(self.tail.is_empty(), "queries run between batches");
        self.runs
            .iter()
            .filter_map(|run| {
                let start = run.keys.partition_point(|other| other < key);
                let end = start + run.keys[start..].partition_point(|other| other == key);
                (end > start).then(|| &run.positions[start..end])
            })
            .collect()
    }

    pub fn bytes_held(&self) -> u64 {
        let runs: usize = self
            .runs
            .iter()
            .map(|run| run.keys.capacity() * size_of::<K>() + run.positions.capacity() * size_of::<P>())
            .sum();
        (runs + self.runs.capacity() * size_of::<Run<K, P>>() + self.tail.capacity() * size_of::<(K, P)>()) as u64
    }
}

/// One run of two consecutive ones. Every push in `older` came before every push in `newer`, so
/// for equal keys `older`'s positions come first.
fn merge<K: Copy + Ord, P: Copy>(older: Run<K, P>, newer: Run<K, P>) -> Run<K, P> {
    let len = older.keys.len() + newer.keys.len();
    let mut merged = Run { keys: Vec::with_capacity(len), positions: Vec::with_capacity(len) };
    let (mut left, mut right) = (0, 0);
    while left < older.keys.len() && right < newer.keys.len() {
        if newer.keys[right] < older.keys[left] {
            merged.keys.push(newer.keys[right]);
            merged.positions.push(newer.positions[right]);
            right += 1;
        } else {
            merged.keys.push(older.keys[left]);
            merged.positions.push(older.positions[left]);
            left += 1;
        }
    }
    merged.keys.extend_from_slice(&older.keys[left..]);
    merged.positions.extend_from_slice(&older.positions[left..]);
    merged.keys.extend_from_slice(&newer.keys[right..]);
    merged.positions.extend_from_slice(&newer.positions[right..]);
    merged
}

/// The indexes of one kind of object (accounts or transfers), one per field a `QueryFilter` can
/// set, by position `P` in creation order.
#[derive(Debug, Clone)]
pub struct ObjectIndexes<P> {
    user_data_128: RunIndex<u128, P>,
    user_data_64: RunIndex<u64, P>,
    user_data_32: RunIndex<u32, P>,
    ledger: FieldIndex<u32, P>,
    code: FieldIndex<u16, P>,
}

impl<P> Default for ObjectIndexes<P> {
    fn default() -> Self {
        Self {
            user_data_128: RunIndex::default(),
            user_data_64: RunIndex::default(),
            user_data_32: RunIndex::default(),
            ledger: FieldIndex::default(),
            code: FieldIndex::default(),
        }
    }
}

/// The fields of an object that `QueryFilter` can select on.
pub trait QueryFields {
    fn query_fields(&self) -> (u128, u64, u32, u32, u16);
}

impl QueryFields for Account {
    fn query_fields(&self) -> (u128, u64, u32, u32, u16) {
        (self.user_data_128, self.user_data_64, self.user_data_32, self.ledger, self.code)
    }
}

impl QueryFields for Transfer {
    fn query_fields(&self) -> (u128, u64, u32, u32, u16) {
        (self.user_data_128, self.user_data_64, self.user_data_32, self.ledger, self.code)
    }
}

impl<P: Copy + Ord + std::fmt::Debug> ObjectIndexes<P> {
    /// Lists a new object, the newest of its kind, under each of its nonzero fields.
    pub fn push(&mut self, object: &impl QueryFields, position: P) {
        // On every new transfer: plain branches, no iterator over the fields.
        let (user_data_128, user_data_64, user_data_32, ledger, code) = object.query_fields();
        if user_data_128 != 0 {
            self.user_data_128.push(user_data_128, position);
        }
        if user_data_64 != 0 {
            self.user_data_64.push(user_data_64, position);
        }
        if user_data_32 != 0 {
            self.user_data_32.push(user_data_32, position);
        }
        if ledger != 0 {
            self.ledger.push(ledger, position);
        }
        if code != 0 {
            self.code.push(code, position);
        }
    }

    /// Undoes the `push` of the newest object.
    pub fn pop(&mut self, object: &impl QueryFields, position: P) {
        let (user_data_128, user_data_64, user_data_32, ledger, code) = object.query_fields();
        for field in FieldValue::set_fields(user_data_128, user_data_64, user_data_32, ledger, code) {
            match field {
                FieldValue::UserData128(value) => self.user_data_128.pop(value, position),
                FieldValue::UserData64(value) => self.user_data_64.pop(value, position),
                FieldValue::UserData32(value) => self.user_data_32.pop(value, position),
                FieldValue::Ledger(value) => self.ledger.pop(value, position),
                FieldValue::Code(value) => self.code.pop(value, position),
            }
        }
    }

    /// Ends the batch (see `RunIndex::seal`).
    pub fn seal(&mut self) {
        self.user_data_128.seal();
        self.user_data_64.seal();
        self.user_data_32.seal();
    }

    /// The positions of the objects whose field has the value, ascending.
    pub fn get(&self, field: FieldValue) -> Postings<'_, P> {
        match field {
            FieldValue::UserData128(value) => self.user_data_128.get(&value),
            FieldValue::UserData64(value) => self.user_data_64.get(&value),
            FieldValue::UserData32(value) => self.user_data_32.get(&value),
            FieldValue::Ledger(value) => vec![self.ledger.get(&value)],
            FieldValue::Code(value) => vec![self.code.get(&value)],
        }
    }

    pub fn bytes_held(&self) -> u64 {
        self.user_data_128.bytes_held()
            + self.user_data_64.bytes_held()
            + self.user_data_32.bytes_held()
            + self.ledger.bytes_held()
            + self.code.bytes_held()
    }
}

/// The balance-history entries of each account, by the fields an `AccountFilter` can set on the
/// transfer that made them (`user_data_*`, `code`; it has no `ledger`), as positions in the
/// account's history. Only accounts with `flags.history` have entries, so only they cost memory.
#[derive(Debug, Clone, Default)]
pub struct BalanceIndexes {
    user_data_128: RunIndex<(AccountIndex, u128), u64>,
    user_data_64: RunIndex<(AccountIndex, u64), u64>,
    user_data_32: RunIndex<(AccountIndex, u32), u64>,
    code: FieldIndex<(AccountIndex, u16), u64>,
}

impl BalanceIndexes {
    /// Lists the newest entry of `account`'s history, at `position`, made by `transfer`.
    pub fn push(&mut self, account: AccountIndex, transfer: &Transfer, position: u64) {
        let (user_data_128, user_data_64, user_data_32, _, code) = transfer.query_fields();
        for field in FieldValue::set_fields(user_data_128, user_data_64, user_data_32, 0, code) {
            match field {
                FieldValue::UserData128(value) => self.user_data_128.push((account, value), position),
                FieldValue::UserData64(value) => self.user_data_64.push((account, value), position),
                FieldValue::UserData32(value) => self.user_data_32.push((account, value), position),
                FieldValue::Code(value) => self.code.push((account, value), position),
                FieldValue::Ledger(_) => unreachable!("balance entries are not indexed by ledger"),
            }
        }
    }

    /// Undoes the `push` of the newest entry of all accounts' histories.
    pub fn pop(&mut self, account: AccountIndex, transfer: &Transfer, position: u64) {
        let (user_data_128, user_data_64, user_data_32, _, code) = transfer.query_fields();
        for field in FieldValue::set_fields(user_data_128, user_data_64, user_data_32, 0, code) {
            match field {
                FieldValue::UserData128(value) => self.user_data_128.pop((account, value), position),
                FieldValue::UserData64(value) => self.user_data_64.pop((account, value), position),
                FieldValue::UserData32(value) => self.user_data_32.pop((account, value), position),
                FieldValue::Code(value) => self.code.pop((account, value), position),
                FieldValue::Ledger(_) => unreachable!("balance entries are not indexed by ledger"),
            }
        }
    }

    /// Ends the batch (see `RunIndex::seal`).
    pub fn seal(&mut self) {
        self.user_data_128.seal();
        self.user_data_64.seal();
        self.user_data_32.seal();
    }

    /// The positions in `account`'s history of the entries whose transfer has the value,
    /// ascending. `AccountFilter` has no `ledger` field, so `field` is never `Ledger`.
    pub fn get(&self, account: AccountIndex, field: FieldValue) -> Postings<'_, u64> {
        match field {
            FieldValue::UserData128(value) => self.user_data_128.get(&(account, value)),
            FieldValue::UserData64(value) => self.user_data_64.get(&(account, value)),
            FieldValue::UserData32(value) => self.user_data_32.get(&(account, value)),
            FieldValue::Code(value) => vec![self.code.get(&(account, value))],
            FieldValue::Ledger(_) => panic!("account filters have no ledger field"),
        }
    }

    pub fn bytes_held(&self) -> u64 {
        self.user_data_128.bytes_held()
            + self.user_data_64.bytes_held()
            + self.user_data_32.bytes_held()
            + self.code.bytes_held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_index_lists_in_order_and_pops_back_to_what_it_was() {
        let mut index: FieldIndex<u32, u64> = FieldIndex::default();
        assert_eq!(index.get(&7), &[] as &[u64]);
        index.push(7, 1);
        index.push(8, 2);
        index.push(7, 3);
        index.push(9, 4);
        index.push(8, 5);
        index.push(7, 6);
        assert_eq!(index.get(&7), &[1, 3, 6]);
        assert_eq!(index.get(&8), &[2, 5]);
        assert_eq!(index.get(&9), &[4]);
        // Undo newest first, through every shape: list, list back to one, one to nothing.
        index.pop(7, 6);
        index.pop(8, 5);
        assert_eq!(index.get(&8), &[2]);
        index.pop(9, 4);
        assert_eq!(index.get(&9), &[] as &[u64]);
        index.pop(7, 3);
        assert_eq!(index.get(&7), &[1]);
        assert!(index.lists.is_empty(), "every list was given back");
        index.push(7, 10);
        assert_eq!(index.get(&7), &[1, 10]);
        // The list a push skips the table for is given back: the next push of its value finds
        // the value's single position again.
        index.push(8, 11);
        index.push(8, 12);
        index.pop(8, 12);
        index.push(8, 13);
        assert_eq!(index.get(&8), &[2, 11, 13]);
        index.pop(8, 13);
        index.pop(8, 11);
        index.push(8, 14);
        assert_eq!(index.get(&8), &[2, 14]);
        assert_eq!(index.get(&7), &[1, 10]);
    }

    #[test]
    #[should_panic(expected = "only the newest position is popped")]
    fn popping_other_than_the_newest_position_panics() {
        let mut index: FieldIndex<u16, u32> = FieldIndex::default();
        index.push(1, 1);
        index.push(1, 2);
        index.pop(1, 1);
    }

    #[test]
    #[should_panic(expected = "positions are listed in order")]
    fn pushing_out_of_order_panics() {
        let mut index: FieldIndex<u16, u32> = FieldIndex::default();
        index.push(1, 5);
        index.push(1, 4);
    }

    #[test]
    fn zero_fields_are_not_indexed() {
        let mut indexes: ObjectIndexes<u64> = ObjectIndexes::default();
        let transfer = Transfer { user_data_64: 5, ledger: 1, code: 2, ..Transfer::default() };
        indexes.push(&transfer, 0);
        indexes.seal();
        assert_eq!(indexes.get(FieldValue::UserData64(5)), vec![&[0u64][..]]);
        assert_eq!(indexes.get(FieldValue::Ledger(1)), vec![&[0u64][..]]);
        assert_eq!(indexes.get(FieldValue::Code(2)), vec![&[0u64][..]]);
        assert!(indexes.user_data_128.runs.is_empty() && indexes.user_data_32.runs.is_empty());
    }

    /// Random batches of pushes of few keys, some popped again before the batch ends, against a
    /// map from each key to its positions; the runs stay few.
    #[test]
    fn run_index_equals_a_map_of_lists() {
        let mut state = 3u64;
        let mut random = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let mut index: RunIndex<u64, u64> = RunIndex::default();
        let mut expected: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        let mut position = 0;
        for batch in 0..300 {
            let mut pushed = Vec::new();
            for _ in 0..random(if batch % 50 == 0 { 2_000 } else { 40 }) {
                // Mostly a handful of keys, sometimes a key of its own.
                let key = if random(4) == 0 { 1_000 + position } else { random(6) };
                index.push(key, position);
                pushed.push((key, position));
                position += 1;
                if random(5) == 0 {
                    let (key, popped) = pushed.pop().expect("just pushed");
                    index.pop(key, popped);
                }
            }
            index.seal();
            for (key, position) in pushed {
                expected.entry(key).or_default().push(position);
            }
            for key in (0..6).chain([1_000 + position / 2, 1_000 + position - 1]) {
                let found: Vec<u64> = index.get(&key).into_iter().flatten().copied().collect();
                assert_eq!(&found, expected.get(&key).map_or(&[][..], Vec::as_slice), "key {key} after batch {batch}");
            }
        }
        assert!(index.runs.len() <= 2 * (position.ilog2() as usize + 1), "{} runs", index.runs.len());
    }

    #[test]
    #[should_panic(expected = "only the newest push of the open batch is popped")]
    fn a_sealed_push_is_never_popped() {
        let mut index: RunIndex<u64, u64> = RunIndex::default();
        index.push(1, 1);
        index.seal();
        index.pop(1, 1);
    }
}
