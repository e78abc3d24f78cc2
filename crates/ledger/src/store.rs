//! The seam between the ledger's rules and where its objects live.
//!
//! The rules (`rules.rs`) read and write the ledger's state only through [`Store`], so that a
//! disk-backed store can replace [`MemoryStore`] without touching them. Objects are addressed by
//! dense indexes in creation order, which is also timestamp order: account `i` is the `i`-th
//! account created, transfer `j` the `j`-th transfer. Every mutation has an inverse (`pop_*`,
//! setting the old value back), which is how a failed linked chain is rolled back.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

use crate::constants::PREFETCH_EVENTS;
use crate::id_index::IdIndex;
use crate::query_index::{BalanceIndexes, FieldValue, ObjectIndexes, Postings};
use crate::types::{Account, AccountBalance, Transfer};

/// The position of an account in creation order.
pub type AccountIndex = u32;
/// The position of a transfer in creation order.
pub type TransferIndex = u64;

/// A balance-history entry and the transfer that produced it (created, posted, voided or, for an
/// expiry, the pending transfer that expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceEntry {
    pub balance: AccountBalance,
    pub transfer: TransferIndex,
    /// The entry's position among all entries of all accounts, in the order they were made.
    pub sequence: u64,
}

/// What became of a pending transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PendingStatus {
    Pending = 1,
    Posted = 2,
    Voided = 3,
    Expired = 4,
}

impl PendingStatus {
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Pending),
            2 => Some(Self::Posted),
            3 => Some(Self::Voided),
            4 => Some(Self::Expired),
            _ => None,
        }
    }
}

/// The state the ledger keeps, behind an interface a disk-backed store can implement.
pub trait Store {
    // Accounts, in creation order.
    fn account_count(&self) -> AccountIndex;
    fn account_index(&self, id: u128) -> Option<AccountIndex>;
    fn account(&self, index: AccountIndex) -> &Account;
    fn account_mut(&mut self, index: AccountIndex) -> &mut Account;
    fn push_account(&mut self, account: Account) -> AccountIndex;
    /// Removes the most recently created account (rollback).
    fn pop_account(&mut self) -> Account;

    // Transfers, in creation order, each also listed under its two accounts.
    fn transfer_count(&self) -> TransferIndex;
    fn transfer_index(&self, id: u128) -> Option<TransferIndex>;
    fn transfer(&self, index: TransferIndex) -> &Transfer;
    fn push_transfer(&mut self, transfer: Transfer, debit: AccountIndex, credit: AccountIndex) -> TransferIndex;
    /// Removes the most recently created transfer (rollback).
    fn pop_transfer(&mut self) -> Transfer;
    /// The transfers that debit or credit an account, in creation order.
    fn account_transfers(&self, account: AccountIndex) -> &[TransferIndex];

    // Secondary indexes for queries (`query_index.rs`): derived from the objects, never part of
    // the digest. `field` is never zero (a zero filter field means any value).
    // Each answer is in parts, ascending within and across them.
    /// The accounts whose `field` has the value, in creation order.
    fn accounts_where(&self, field: FieldValue) -> Postings<'_, AccountIndex>;
    /// The transfers whose `field` has the value, in creation order.
    fn transfers_where(&self, field: FieldValue) -> Postings<'_, TransferIndex>;
    /// The positions in `balances(account)` of the entries whose transfer's `field` has the
    /// value, ascending. `field` is never `Ledger`: an `AccountFilter` cannot set it.
    fn balances_where(&self, account: AccountIndex, field: FieldValue) -> Postings<'_, u64>;
    /// The batch is over: nothing pushed until now will be popped, and queries may follow. A
    /// store settles what it buffered for the batch (`MemoryStore` sorts the batch's entries of
    /// its `user_data` indexes into their runs).
    fn end_batch(&mut self);

    // Pending transfers: their status, and the order in which they expire.
    fn pending_status(&self, transfer: TransferIndex) -> Option<PendingStatus>;
    /// The position of a pending transfer among all pending transfers, in creation order.
    fn pending_slot(&self, transfer: TransferIndex) -> Option<u64>;
    /// The number of pending transfers ever created.
    fn pending_count(&self) -> u64;
    /// Sets the status of a pending transfer; a new one takes the next slot, and `None` removes
    /// the newest (rollback).
    fn set_pending_status(&mut self, transfer: TransferIndex, status: Option<PendingStatus>);
    fn insert_expiry(&mut self, expires_at: u64, transfer: TransferIndex);
    fn remove_expiry(&mut self, expires_at: u64, transfer: TransferIndex);
    /// The pending transfer that expires first, if it expires at or before `timestamp`.
    fn first_expiry_at_or_before(&self, timestamp: u64) -> Option<(u64, TransferIndex)>;

    // Balance history of accounts with `flags.history`.
    /// Appends an entry to the account's history; its timestamp is above every earlier one.
    fn push_balance(&mut self, account: AccountIndex, entry: BalanceEntry);
    /// Removes the account's newest entry, which is the newest of all accounts (rollback).
    fn pop_balance(&mut self, account: AccountIndex) -> BalanceEntry;
    /// The account's history, in timestamp order (strictly increasing).
    fn balances(&self, account: AccountIndex) -> &[BalanceEntry];
    /// The number of history entries of all accounts.
    fn balance_count(&self) -> u64;

    /// Brings what applying `transfers` will read into the CPU's caches, many requests to memory
    /// at once, so that the rules, which need one answer before they can ask the next, rarely
    /// wait for memory. An optimization only: a store may do nothing, and nothing may depend on
    /// it.
    fn prefetch_transfers(&self, _transfers: &[Transfer]) {}

    // Transfer ids that failed with a transient status and may never be used again.
    fn is_failed_transfer_id(&self, id: u128) -> bool;
    fn insert_failed_transfer_id(&mut self, id: u128);
    /// The failed transfer ids in the order they failed.
    fn failed_transfer_ids(&self) -> &[u128];
}

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, IdHasherBuilder>;
type HashSet<K> = std::collections::HashSet<K, IdHasherBuilder>;

/// Builds [`IdHasher`]s with keys drawn once per map from the standard library's random source.
#[derive(Debug, Clone, Copy)]
pub struct IdHasherBuilder {
    keys: [u64; 2],
}

impl Default for IdHasherBuilder {
    fn default() -> Self {
        let random = std::collections::hash_map::RandomState::new();
        Self { keys: [random.hash_one(0x7a11u64), random.hash_one(0x1ed9e5u64) | 1] }
    }
}

impl IdHasherBuilder {
    /// The hash of an id, as an [`IdHasher`] would give it.
    pub fn hash_id(&self, id: u128) -> u64 {
        let mut hasher = self.build_hasher();
        hasher.write_u128(id);
        hasher.finish()
    }
}

impl BuildHasher for IdHasherBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher { keys: self.keys, hash: 0 }
    }
}

/// A hasher for ids and indexes: one widening multiply of the key-mixed halves. Clients choose
/// ids, so the keys are random per map (never shared, never seen by clients) and crafted
/// collisions cannot degrade the maps; the ledger never iterates a map, so the randomness never
/// reaches an output.
#[derive(Debug, Clone, Copy)]
pub struct IdHasher {
    keys: [u64; 2],
    hash: u64,
}

fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u128(&mut self, value: u128) {
        let mixed = folded_multiply((value as u64) ^ self.keys[0], ((value >> 64) as u64) ^ self.keys[1]);
        self.hash = folded_multiply(mixed ^ self.hash, self.keys[1]);
    }

    fn write_u64(&mut self, value: u64) {
        self.hash = folded_multiply(value ^ self.keys[0] ^ self.hash, self.keys[1]);
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// The room an account's transfer list gets with its first transfer.
const ACCOUNT_TRANSFERS_FIRST: usize = 8;

/// An account as the store keeps it: with the list of its transfers beside it, so that the
/// cache lines a transfer reads for its account also hold where the account's list ends.
#[derive(Debug, Clone)]
struct AccountRow {
    account: Account,
    /// The transfers that debit or credit the account, in creation order.
    transfers: Vec<TransferIndex>,
}

/// Every object in memory: vectors in creation order plus hash indexes by id (`id_index.rs`).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    accounts: Vec<AccountRow>,
    account_ids: IdIndex,
    transfers: Vec<Transfer>,
    transfer_ids: IdIndex,
    pending: HashMap<TransferIndex, (PendingStatus, u64)>,
    expiries: BTreeSet<(u64, TransferIndex)>,
    balances: HashMap<AccountIndex, Vec<BalanceEntry>>,
    balance_count: u64,
    failed_transfer_ids: HashSet<u128>,
    failed_transfer_ids_in_order: Vec<u128>,
    account_indexes: ObjectIndexes<AccountIndex>,
    transfer_indexes: ObjectIndexes<TransferIndex>,
    balance_indexes: BalanceIndexes,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store with room for `accounts` accounts and `transfers` transfers allocated up front,
    /// as a validator sized for its workload does (TigerBeetle allocates all memory at start):
    /// no rehashing or reallocation while it fills.
    pub fn with_capacity(accounts: u32, transfers: u64) -> Self {
        let (accounts, transfers) = (accounts as usize, transfers as usize);
        Self {
            accounts: Vec::with_capacity(accounts),
            account_ids: IdIndex::with_capacity(accounts),
            transfers: Vec::with_capacity(transfers),
            transfer_ids: IdIndex::with_capacity(transfers),
            ..Self::default()
        }
    }

    /// The bytes the query indexes hold on the heap (`query_index.rs`), for measuring what they
    /// cost per object.
    pub fn query_index_bytes(&self) -> u64 {
        self.account_indexes.bytes_held() + self.transfer_indexes.bytes_held() + self.balance_indexes.bytes_held()
    }
}

impl Store for MemoryStore {
    fn account_count(&self) -> AccountIndex {
        self.accounts.len() as AccountIndex
    }

    fn account_index(&self, id: u128) -> Option<AccountIndex> {
        let position = self.account_ids.get(id, |position| self.accounts[position as usize].account.id)?;
        Some(position as AccountIndex)
    }

    fn account(&self, index: AccountIndex) -> &Account {
        &self.accounts[index as usize].account
    }

    fn account_mut(&mut self, index: AccountIndex) -> &mut Account {
        &mut self.accounts[index as usize].account
    }

    fn push_account(&mut self, account: Account) -> AccountIndex {
        let index = AccountIndex::try_from(self.accounts.len()).expect("accounts fit in a u32");
        let accounts = &self.accounts;
        let inserted =
            self.account_ids.insert(account.id, u64::from(index), |position| accounts[position as usize].account.id);
        assert!(inserted.is_ok(), "account {} created twice", account.id);
        self.accounts.push(AccountRow { account, transfers: Vec::new() });
        self.account_indexes.push(&account, index);
        debug_assert_eq!(self.account_ids.len(), self.accounts.len());
        index
    }

    fn pop_account(&mut self) -> Account {
        let account = self.accounts.last().expect("an account to pop").account;
        let accounts = &self.accounts;
        self.account_ids.remove(account.id, |position| accounts[position as usize].account.id);
        let row = self.accounts.pop().expect("an account to pop");
        assert!(row.transfers.is_empty(), "a popped account has no transfers");
        self.account_indexes.pop(&account, self.accounts.len() as AccountIndex);
        account
    }

    fn transfer_count(&self) -> TransferIndex {
        self.transfers.len() as TransferIndex
    }

    fn transfer_index(&self, id: u128) -> Option<TransferIndex> {
        self.transfer_ids.get(id, |position| self.transfers[position as usize].id)
    }

    fn transfer(&self, index: TransferIndex) -> &Transfer {
        &self.transfers[index as usize]
    }

    fn push_transfer(&mut self, transfer: Transfer, debit: AccountIndex, credit: AccountIndex) -> TransferIndex {
        assert_ne!(debit, credit);
        let index = self.transfers.len() as TransferIndex;
        let transfers = &self.transfers;
        let inserted = self.transfer_ids.insert(transfer.id, index, |position| transfers[position as usize].id);
        assert!(inserted.is_ok(), "transfer {} created twice", transfer.id);
        self.transfers.push(transfer);
        self.transfer_indexes.push(&transfer, index);
        debug_assert_eq!(self.transfer_ids.len(), self.transfers.len());
        for account in [debit, credit] {
            let list = &mut self.accounts[account as usize].transfers;
            if list.capacity() == 0 {
                // Skip the smallest sizes a list would otherwise pass through: each growth frees
                // a small block, and the allocator pays for those in cache misses later.
                list.reserve_exact(ACCOUNT_TRANSFERS_FIRST);
            }
            list.push(index);
        }
        index
    }

    fn pop_transfer(&mut self) -> Transfer {
        let transfer = *self.transfers.last().expect("a transfer to pop");
        let transfers = &self.transfers;
        self.transfer_ids.remove(transfer.id, |position| transfers[position as usize].id);
        self.transfers.pop();
        let index = self.transfers.len() as TransferIndex;
        self.transfer_indexes.pop(&transfer, index);
        for id in [transfer.debit_account_id, transfer.credit_account_id] {
            let account = self.account_index(id).expect("a transfer's accounts exist");
            let popped = self.accounts[account as usize].transfers.pop();
            assert_eq!(popped, Some(index), "the popped transfer is its accounts' last");
        }
        transfer
    }

    fn account_transfers(&self, account: AccountIndex) -> &[TransferIndex] {
        &self.accounts[account as usize].transfers
    }

    fn accounts_where(&self, field: FieldValue) -> Postings<'_, AccountIndex> {
        self.account_indexes.get(field)
    }

    fn transfers_where(&self, field: FieldValue) -> Postings<'_, TransferIndex> {
        self.transfer_indexes.get(field)
    }

    fn balances_where(&self, account: AccountIndex, field: FieldValue) -> Postings<'_, u64> {
        self.balance_indexes.get(account, field)
    }

    fn end_batch(&mut self) {
        self.account_indexes.seal();
        self.transfer_indexes.seal();
        self.balance_indexes.seal();
    }

    fn pending_status(&self, transfer: TransferIndex) -> Option<PendingStatus> {
        self.pending.get(&transfer).map(|(status, _)| *status)
    }

    fn pending_slot(&self, transfer: TransferIndex) -> Option<u64> {
        self.pending.get(&transfer).map(|(_, slot)| *slot)
    }

    fn pending_count(&self) -> u64 {
        self.pending.len() as u64
    }

    fn set_pending_status(&mut self, transfer: TransferIndex, status: Option<PendingStatus>) {
        let count = self.pending.len() as u64;
        match status {
            Some(status) => {
                self.pending.entry(transfer).and_modify(|(current, _)| *current = status).or_insert((status, count));
            }
            None => {
                let removed = self.pending.remove(&transfer);
                assert!(
                    removed.is_some_and(|(_, slot)| slot + 1 == count),
                    "only the newest pending transfer is removed"
                );
            }
        }
    }

    fn insert_expiry(&mut self, expires_at: u64, transfer: TransferIndex) {
        let inserted = self.expiries.insert((expires_at, transfer));
        assert!(inserted, "expiry of transfer {transfer} inserted twice");
    }

    fn remove_expiry(&mut self, expires_at: u64, transfer: TransferIndex) {
        let removed = self.expiries.remove(&(expires_at, transfer));
        assert!(removed, "expiry of transfer {transfer} removed but not present");
    }

    fn first_expiry_at_or_before(&self, timestamp: u64) -> Option<(u64, TransferIndex)> {
        self.expiries.first().copied().filter(|(expires_at, _)| *expires_at <= timestamp)
    }

    fn push_balance(&mut self, account: AccountIndex, entry: BalanceEntry) {
        assert_eq!(entry.sequence, self.balance_count, "entries are numbered in order");
        let balances = self.balances.entry(account).or_default();
        assert!(
            balances.last().is_none_or(|last| last.balance.timestamp < entry.balance.timestamp),
            "an account's history is in timestamp order"
        );
        let position = balances.len() as u64;
        balances.push(entry);
        self.balance_indexes.push(account, &self.transfers[entry.transfer as usize], position);
        self.balance_count += 1;
    }

    fn pop_balance(&mut self, account: AccountIndex) -> BalanceEntry {
        let balances = self.balances.get_mut(&account).expect("a history to pop from");
        let entry = balances.pop().expect("an entry to pop");
        assert_eq!(entry.sequence + 1, self.balance_count, "only the newest entry is removed");
        let position = balances.len() as u64;
        if balances.is_empty() {
            self.balances.remove(&account);
        }
        self.balance_indexes.pop(account, &self.transfers[entry.transfer as usize], position);
        self.balance_count -= 1;
        entry
    }

    fn balance_count(&self) -> u64 {
        self.balance_count
    }

    fn balances(&self, account: AccountIndex) -> &[BalanceEntry] {
        self.balances.get(&account).map_or(&[], Vec::as_slice)
    }

    /// Reads, in three passes over each `PREFETCH_EVENTS` transfers, what their lookups will
    /// read: the index slots of their ids, then their accounts (found by the slots' hash bits,
    /// unconfirmed: a wrong guess only costs a useless read), then the ends of the accounts'
    /// transfer lists. Each pass is a loop light enough that the CPU runs many of its iterations
    /// at once, so their cache misses overlap (safe Rust has no prefetch instruction; ordinary
    /// loads whose results are discarded do the same, a little more slowly).
    fn prefetch_transfers(&self, transfers: &[Transfer]) {
        for window in transfers.chunks(PREFETCH_EVENTS) {
            self.prefetch_window(window);
        }
    }

    fn is_failed_transfer_id(&self, id: u128) -> bool {
        self.failed_transfer_ids.contains(&id)
    }

    fn insert_failed_transfer_id(&mut self, id: u128) {
        let inserted = self.failed_transfer_ids.insert(id);
        assert!(inserted, "transfer id {id} failed twice");
        self.failed_transfer_ids_in_order.push(id);
    }

    fn failed_transfer_ids(&self) -> &[u128] {
        &self.failed_transfer_ids_in_order
    }
}

impl MemoryStore {
    /// `Store::prefetch_transfers` for at most `PREFETCH_EVENTS` transfers.
    fn prefetch_window(&self, transfers: &[Transfer]) {
        debug_assert!(transfers.len() <= PREFETCH_EVENTS);
        let mut touched = 0u64;
        for transfer in transfers {
            touched ^= self.transfer_ids.touch(transfer.id);
            touched ^= self.account_ids.touch(transfer.debit_account_id);
            touched ^= self.account_ids.touch(transfer.credit_account_id);
        }
        let mut accounts = [u64::MAX; 2 * PREFETCH_EVENTS];
        for (transfer, pair) in transfers.iter().zip(accounts.chunks_exact_mut(2)) {
            if transfer.pending_id != 0
                && let Some(pending) = self.transfer_ids.guess(transfer.pending_id)
                && let Some(pending) = self.transfers.get(pending as usize)
            {
                touched ^= pending.debit_account_id as u64;
            }
            for (id, slot) in [transfer.debit_account_id, transfer.credit_account_id].into_iter().zip(pair) {
                if let Some(index) = self.account_ids.guess(id)
                    && let Some(row) = self.accounts.get(index as usize)
                {
                    touched ^= (row.account.id ^ row.account.credits_posted) as u64 ^ row.account.timestamp;
                    touched ^= row.transfers.len() as u64;
                    *slot = index;
                }
            }
        }
        for index in &accounts[..2 * transfers.len()] {
            if let Some(row) = self.accounts.get(*index as usize) {
                touched ^= row.transfers.last().copied().unwrap_or(0);
            }
        }
        std::hint::black_box(touched);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prefetching reads only: any slice, any ids, known or not, leaves the store as it was.
    #[test]
    fn prefetch_reads_any_transfers_and_changes_nothing() {
        let mut store = MemoryStore::new();
        store.prefetch_transfers(&[Transfer { id: 1, debit_account_id: 1, ..Transfer::default() }]);
        for id in 1..=3u128 {
            store.push_account(Account { id, ledger: 1, code: 1, ..Account::default() });
        }
        store.push_transfer(
            Transfer { id: 10, debit_account_id: 1, credit_account_id: 2, ..Transfer::default() },
            0,
            1,
        );
        let transfers: Vec<Transfer> = (0..3 * PREFETCH_EVENTS as u128 + 5)
            .map(|n| Transfer {
                id: 100 + n,
                debit_account_id: n % 5,
                credit_account_id: u128::MAX - n,
                pending_id: if n % 2 == 0 { 10 } else { n },
                ..Transfer::default()
            })
            .collect();
        let before = format!("{store:?}");
        store.prefetch_transfers(&transfers);
        assert_eq!(format!("{store:?}"), before);
        assert_eq!(store.account_transfers(0), &[0]);
        assert_eq!(store.transfer_index(10), Some(0));
    }
}
