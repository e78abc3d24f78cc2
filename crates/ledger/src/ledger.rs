//! The ledger: batches in, one result per event out, and a digest of the state after each batch.
//!
//! A batch runs in three steps: expire the pending transfers whose timeout has passed at the
//! batch timestamp, apply the events one by one (event `i` at timestamp `T + i`), and fold the
//! state the batch touched into the digest. A linked chain's events run inside a scope that
//! records how to undo each change, so that a failing event rolls the whole chain back.

use crate::commitment::{AccountProof, Commitment, DigestParts, TransferProof};
use crate::constants::{BATCH_EVENTS_MAX, EXPIRIES_PER_BATCH_MAX, PREFETCH_EVENTS, TIMESTAMP_MAX};
use crate::merkle::Hash;
use crate::store::{AccountIndex, BalanceEntry, MemoryStore, PendingStatus, Store, TransferIndex};
use crate::types::{
    Account, AccountFlags, CreateAccountResult, CreateAccountStatus, CreateTransferResult, CreateTransferStatus,
    Transfer, TransferFlags,
};

/// Why a batch was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("a batch holds at most {max} events, got {events}")]
    TooLong { events: usize, max: usize },
    #[error("batch timestamp {timestamp} does not advance past the previous batch's last event at {previous}")]
    TimestampRegressed { timestamp: u64, previous: u64 },
    #[error("batch timestamp {timestamp} leaves no room for {events} events below {TIMESTAMP_MAX}")]
    TimestampOutOfRange { timestamp: u64, events: usize },
}

/// One change to the store, as the way to undo it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Undo {
    AccountCreated,
    AccountChanged { index: AccountIndex, previous: Account },
    TransferCreated,
    PendingStatusChanged { transfer: TransferIndex, previous: Option<PendingStatus> },
    ExpiryInserted { expires_at: u64, transfer: TransferIndex },
    ExpiryRemoved { expires_at: u64, transfer: TransferIndex },
    BalancePushed { account: AccountIndex },
}

/// What the current batch changed, for the digest.
#[derive(Debug, Default, Clone)]
pub(crate) struct Changes {
    /// Accounts created or changed (may repeat; may name rolled-back accounts).
    pub accounts: Vec<AccountIndex>,
    /// Accounts whose flags changed (closed or reopened), so whose identity hash changed.
    pub account_identities: Vec<AccountIndex>,
    /// Pending transfers created or whose status changed (may repeat or be rolled back).
    pub pending: Vec<TransferIndex>,
    /// Balance history entries made, in order (of their sequence numbers).
    pub balances: Vec<(AccountIndex, BalanceEntry)>,
    /// Transfer ids that failed transiently, in order.
    pub failed_transfer_ids: Vec<u128>,
}

/// Tally's ledger state machine. See the crate documentation.
#[derive(Debug, Clone)]
pub struct Ledger<S: Store = MemoryStore> {
    pub(crate) store: S,
    pub(crate) commitment: Commitment,
    /// The last timestamp the ledger gave to an event or an expiry (0 before the first).
    pub(crate) timestamp_last: u64,
    /// The undo log of the open linked chain, if one is open.
    pub(crate) scope: Option<Vec<Undo>>,
    pub(crate) changes: Changes,
}

impl Ledger<MemoryStore> {
    /// An empty ledger held in memory.
    pub fn new() -> Self {
        Self::with_store(MemoryStore::new())
    }

    /// An empty ledger in memory with room for `accounts` and `transfers` allocated up front
    /// (see [`MemoryStore::with_capacity`]).
    pub fn with_capacity(accounts: u32, transfers: u64) -> Self {
        Self::with_store(MemoryStore::with_capacity(accounts, transfers))
    }

    /// The bytes the query indexes hold (see `docs/LEDGER.md`): derived from the objects, kept
    /// in memory only, never part of the digest or a snapshot.
    pub fn query_index_bytes(&self) -> u64 {
        self.store.query_index_bytes()
    }
}

impl Default for Ledger<MemoryStore> {
    fn default() -> Self {
        Self::new()
    }
}

/// The kind of event a batch carries, so that one loop runs both operations.
trait Event: Copy {
    type Status: Copy + PartialEq;
    const LINKED_EVENT_FAILED: Self::Status;
    const LINKED_EVENT_CHAIN_OPEN: Self::Status;
    const CREATED: Self::Status;
    fn linked(&self) -> bool;
    /// Warms the store's caches for the next events of a batch (see `Store::prefetch_transfers`).
    fn prefetch<S: Store>(_store: &S, _events: &[Self]) {}
}

impl Event for Account {
    type Status = CreateAccountStatus;
    const LINKED_EVENT_FAILED: Self::Status = CreateAccountStatus::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self::Status = CreateAccountStatus::LinkedEventChainOpen;
    const CREATED: Self::Status = CreateAccountStatus::Created;
    fn linked(&self) -> bool {
        self.flags.contains(AccountFlags::LINKED)
    }
}

impl Event for Transfer {
    type Status = CreateTransferStatus;
    const LINKED_EVENT_FAILED: Self::Status = CreateTransferStatus::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self::Status = CreateTransferStatus::LinkedEventChainOpen;
    const CREATED: Self::Status = CreateTransferStatus::Created;
    fn linked(&self) -> bool {
        self.flags.contains(TransferFlags::LINKED)
    }
    fn prefetch<S: Store>(store: &S, events: &[Self]) {
        store.prefetch_transfers(events);
    }
}

impl<S: Store> Ledger<S> {
    /// An empty ledger over an empty store.
    pub fn with_store(store: S) -> Self {
        assert_eq!(store.account_count(), 0, "a new ledger starts from an empty store");
        assert_eq!(store.transfer_count(), 0, "a new ledger starts from an empty store");
        Self { store, commitment: Commitment::new(), timestamp_last: 0, scope: None, changes: Changes::default() }
    }

    /// The last timestamp given to an event or an expiry (0 before the first batch). The next
    /// batch's timestamp must be greater.
    pub fn timestamp_last(&self) -> u64 {
        self.timestamp_last
    }

    /// The number of accounts.
    pub fn account_count(&self) -> u64 {
        u64::from(self.store.account_count())
    }

    /// The number of transfers.
    pub fn transfer_count(&self) -> u64 {
        self.store.transfer_count()
    }

    /// Whether a batch of `events` at `timestamp` would be accepted.
    pub fn check_batch(&self, timestamp: u64, events: usize) -> Result<(), BatchError> {
        if events > BATCH_EVENTS_MAX {
            return Err(BatchError::TooLong { events, max: BATCH_EVENTS_MAX });
        }
        if timestamp <= self.timestamp_last {
            return Err(BatchError::TimestampRegressed { timestamp, previous: self.timestamp_last });
        }
        if timestamp.checked_add(events as u64).is_none_or(|end| end > TIMESTAMP_MAX) {
            return Err(BatchError::TimestampOutOfRange { timestamp, events });
        }
        Ok(())
    }

    /// Creates accounts; one result per event, in order.
    ///
    /// # Panics
    /// If the batch is refused as a whole (longer than `BATCH_EVENTS_MAX`, or a timestamp that
    /// does not advance past the previous batch's last event): callers check with
    /// [`Ledger::check_batch`] or use [`Ledger::try_create_accounts`].
    pub fn create_accounts(&mut self, timestamp: u64, batch: &[Account]) -> Vec<CreateAccountResult> {
        self.try_create_accounts(timestamp, batch).unwrap_or_else(|error| panic!("create_accounts: {error}"))
    }

    /// Creates transfers; one result per event, in order.
    ///
    /// # Panics
    /// As [`Ledger::create_accounts`]; [`Ledger::try_create_transfers`] returns the error instead.
    pub fn create_transfers(&mut self, timestamp: u64, batch: &[Transfer]) -> Vec<CreateTransferResult> {
        self.try_create_transfers(timestamp, batch).unwrap_or_else(|error| panic!("create_transfers: {error}"))
    }

    /// Creates accounts, or refuses the whole batch.
    pub fn try_create_accounts(
        &mut self,
        timestamp: u64,
        batch: &[Account],
    ) -> Result<Vec<CreateAccountResult>, BatchError> {
        self.check_batch(timestamp, batch.len())?;
        let imported = batch.first().is_some_and(|account| account.flags.contains(AccountFlags::IMPORTED));
        let results = self.execute(timestamp, batch, |ledger, event_timestamp, account| {
            let status = ledger.create_account(event_timestamp, imported, account);
            (status, ledger.account_result_timestamp(event_timestamp, status, account))
        });
        Ok(results.into_iter().map(|(status, timestamp)| CreateAccountResult { timestamp, status }).collect())
    }

    /// Creates transfers, or refuses the whole batch.
    pub fn try_create_transfers(
        &mut self,
        timestamp: u64,
        batch: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, BatchError> {
        self.check_batch(timestamp, batch.len())?;
        let imported = batch.first().is_some_and(|transfer| transfer.flags.contains(TransferFlags::IMPORTED));
        let results = self.execute(timestamp, batch, |ledger, event_timestamp, transfer| {
            let status = ledger.create_transfer(event_timestamp, imported, transfer);
            (status, ledger.transfer_result_timestamp(event_timestamp, status, transfer))
        });
        Ok(results.into_iter().map(|(status, timestamp)| CreateTransferResult { timestamp, status }).collect())
    }

    fn account_result_timestamp(&self, event_timestamp: u64, status: CreateAccountStatus, account: &Account) -> u64 {
        use CreateAccountStatus as S;
        match status {
            S::Created if account.flags.contains(AccountFlags::IMPORTED) => account.timestamp,
            S::Created => event_timestamp,
            S::Exists
            | S::ExistsWithDifferentFlags
            | S::ExistsWithDifferentUserData128
            | S::ExistsWithDifferentUserData64
            | S::ExistsWithDifferentUserData32
            | S::ExistsWithDifferentLedger
            | S::ExistsWithDifferentCode => {
                let index = self.store.account_index(account.id).expect("the account exists");
                self.store.account(index).timestamp
            }
            _ => event_timestamp,
        }
    }

    fn transfer_result_timestamp(
        &self,
        event_timestamp: u64,
        status: CreateTransferStatus,
        transfer: &Transfer,
    ) -> u64 {
        use CreateTransferStatus as S;
        match status {
            S::Created if transfer.flags.contains(TransferFlags::IMPORTED) => transfer.timestamp,
            S::Created => event_timestamp,
            S::Exists
            | S::ExistsWithDifferentFlags
            | S::ExistsWithDifferentPendingId
            | S::ExistsWithDifferentTimeout
            | S::ExistsWithDifferentDebitAccountId
            | S::ExistsWithDifferentCreditAccountId
            | S::ExistsWithDifferentAmount
            | S::ExistsWithDifferentUserData128
            | S::ExistsWithDifferentUserData64
            | S::ExistsWithDifferentUserData32
            | S::ExistsWithDifferentLedger
            | S::ExistsWithDifferentCode => {
                let index = self.store.transfer_index(transfer.id).expect("the transfer exists");
                self.store.transfer(index).timestamp
            }
            _ => event_timestamp,
        }
    }

    /// Runs a batch: expiry, then each event (linked chains as units), then the digest.
    fn execute<E: Event>(
        &mut self,
        timestamp: u64,
        batch: &[E],
        mut apply: impl FnMut(&mut Self, u64, &E) -> (E::Status, u64),
    ) -> Vec<(E::Status, u64)> {
        assert!(self.scope.is_none() && self.changes.accounts.is_empty(), "batches do not nest");
        self.expire_pending_transfers(timestamp);

        // Each event's status and result timestamp (taken when the event is judged: a rollback
        // may later remove the object an `Exists` refers to).
        let mut results: Vec<(E::Status, u64)> = Vec::with_capacity(batch.len());
        let mut chain_start: Option<usize> = None;
        let mut chain_broken = false;
        for (index, event) in batch.iter().enumerate() {
            if index % PREFETCH_EVENTS == 0 {
                E::prefetch(&self.store, &batch[index..batch.len().min(index + PREFETCH_EVENTS)]);
            }
            let event_timestamp = timestamp + index as u64;
            let (status, result_timestamp) = 'status: {
                if event.linked() {
                    if chain_start.is_none() {
                        chain_start = Some(index);
                        self.scope = Some(Vec::new());
                    }
                    if index == batch.len() - 1 {
                        break 'status (E::LINKED_EVENT_CHAIN_OPEN, event_timestamp);
                    }
                }
                if chain_broken {
                    break 'status (E::LINKED_EVENT_FAILED, event_timestamp);
                }
                apply(self, event_timestamp, event)
            };
            if status != E::CREATED
                && let Some(start) = chain_start
                && !chain_broken
            {
                chain_broken = true;
                self.rollback_scope();
                for (offset, earlier) in results[start..index].iter_mut().enumerate() {
                    *earlier = (E::LINKED_EVENT_FAILED, timestamp + (start + offset) as u64);
                }
            }
            results.push((status, result_timestamp));
            if chain_start.is_some() && (!event.linked() || status == E::LINKED_EVENT_CHAIN_OPEN) {
                if !chain_broken {
                    self.scope = None; // Persist the chain.
                }
                chain_start = None;
                chain_broken = false;
            }
        }
        assert!(self.scope.is_none(), "every chain is closed at the end of a batch");
        assert_eq!(results.len(), batch.len());
        if let Some(last) = batch.len().checked_sub(1) {
            self.timestamp_last = timestamp + last as u64;
        }
        self.commit();
        results
    }

    /// Undoes every change of the open chain, newest first, and closes it.
    fn rollback_scope(&mut self) {
        let undo_log = self.scope.take().expect("a chain to roll back");
        for undo in undo_log.into_iter().rev() {
            match undo {
                Undo::AccountCreated => {
                    self.store.pop_account();
                }
                Undo::AccountChanged { index, previous } => {
                    if self.store.account(index).flags != previous.flags {
                        self.changes.account_identities.push(index);
                    }
                    *self.store.account_mut(index) = previous;
                }
                Undo::TransferCreated => {
                    self.store.pop_transfer();
                }
                Undo::PendingStatusChanged { transfer, previous } => self.store.set_pending_status(transfer, previous),
                Undo::ExpiryInserted { expires_at, transfer } => self.store.remove_expiry(expires_at, transfer),
                Undo::ExpiryRemoved { expires_at, transfer } => self.store.insert_expiry(expires_at, transfer),
                Undo::BalancePushed { account } => {
                    self.store.pop_balance(account);
                    self.changes.balances.pop().expect("a balance change per balance pushed");
                }
            }
        }
    }

    /// The timestamp of the newest account (accounts are stored in timestamp order), or 0.
    pub(crate) fn account_timestamp_last(&self) -> u64 {
        match self.store.account_count() {
            0 => 0,
            count => self.store.account(count - 1).timestamp,
        }
    }

    /// The timestamp of the newest transfer (transfers are stored in timestamp order), or 0.
    pub(crate) fn transfer_timestamp_last(&self) -> u64 {
        match self.store.transfer_count() {
            0 => 0,
            count => self.store.transfer(count - 1).timestamp,
        }
    }

    /// Records how to undo a change, if a chain is open.
    pub(crate) fn record(&mut self, undo: Undo) {
        if let Some(scope) = &mut self.scope {
            scope.push(undo);
        }
    }

    // Every mutation of the store goes through these, which keep the undo log and the digest's
    // change set.

    pub(crate) fn insert_account(&mut self, account: Account) -> AccountIndex {
        debug_assert!(account.timestamp > self.account_timestamp_last());
        let index = self.store.push_account(account);
        self.record(Undo::AccountCreated);
        self.changes.accounts.push(index);
        index
    }

    pub(crate) fn update_account(&mut self, index: AccountIndex, update: impl FnOnce(&mut Account)) {
        let account = self.store.account_mut(index);
        // The old value is kept only when a chain might have to restore it.
        let previous = self.scope.is_some().then_some(*account);
        let flags_before = account.flags;
        update(account);
        let flags_changed = account.flags != flags_before;
        if let Some(previous) = previous {
            self.record(Undo::AccountChanged { index, previous });
        }
        self.changes.accounts.push(index);
        if flags_changed {
            self.changes.account_identities.push(index);
        }
    }

    pub(crate) fn insert_transfer(
        &mut self,
        transfer: Transfer,
        debit: AccountIndex,
        credit: AccountIndex,
    ) -> TransferIndex {
        debug_assert!(transfer.timestamp > self.transfer_timestamp_last());
        let index = self.store.push_transfer(transfer, debit, credit);
        self.record(Undo::TransferCreated);
        index
    }

    pub(crate) fn set_pending_status(&mut self, transfer: TransferIndex, status: PendingStatus) {
        let previous = self.store.pending_status(transfer);
        self.store.set_pending_status(transfer, Some(status));
        self.record(Undo::PendingStatusChanged { transfer, previous });
        self.changes.pending.push(transfer);
    }

    pub(crate) fn insert_expiry(&mut self, expires_at: u64, transfer: TransferIndex) {
        self.store.insert_expiry(expires_at, transfer);
        self.record(Undo::ExpiryInserted { expires_at, transfer });
    }

    pub(crate) fn remove_expiry(&mut self, expires_at: u64, transfer: TransferIndex) {
        self.store.remove_expiry(expires_at, transfer);
        self.record(Undo::ExpiryRemoved { expires_at, transfer });
    }

    /// Appends the account's balances to its history, if it keeps one; `transfer` produced them.
    pub(crate) fn record_balance(&mut self, index: AccountIndex, transfer: TransferIndex, timestamp: u64) {
        let account = *self.store.account(index);
        if !account.flags.contains(AccountFlags::HISTORY) {
            return;
        }
        let entry =
            BalanceEntry { balance: account.balance_at(timestamp), transfer, sequence: self.store.balance_count() };
        self.store.push_balance(index, entry);
        self.record(Undo::BalancePushed { account: index });
        self.changes.balances.push((index, entry));
    }

    /// Remembers a transfer id that failed transiently. Never part of a chain's undo log: the
    /// failure stands even though the chain is rolled back.
    pub(crate) fn insert_failed_transfer_id(&mut self, id: u128) {
        self.store.insert_failed_transfer_id(id);
        self.changes.failed_transfer_ids.push(id);
    }

    /// Folds the batch's changes into the digest.
    fn commit(&mut self) {
        self.commitment.apply(&self.store, &mut self.changes, self.timestamp_last);
        self.store.end_batch();
    }

    /// The 32-byte digest of the whole ledger state: every account, every transfer with the
    /// status of its pending phase, every balance history entry, every failed transfer id and
    /// the last timestamp. Two ledgers that applied the same batches have equal digests; any
    /// difference in state gives a different digest. See `docs/LEDGER.md`.
    pub fn digest(&self) -> [u8; 32] {
        self.commitment.digest()
    }

    /// The roots and sizes the digest commits to.
    pub fn digest_parts(&self) -> DigestParts {
        self.commitment.parts()
    }

    /// A proof, checkable against [`Ledger::digest`], of the account's current state.
    pub fn prove_account(&self, id: u128) -> Option<(Account, AccountProof)> {
        let index = self.store.account_index(id)?;
        let path = self.commitment.account_path(index);
        let proof = AccountProof { index: u64::from(index), path, parts: self.commitment.parts() };
        Some((*self.store.account(index), proof))
    }

    /// A proof, checkable against [`Ledger::digest`], that the transfer exists, and of the state
    /// of its pending phase. Costs a logarithmic number of hashes (see `transfer_log.rs`).
    pub fn prove_transfer(&self, id: u128) -> Option<(Transfer, TransferProof)> {
        let index = self.store.transfer_index(id)?;
        let mut chunk = Vec::with_capacity(crate::chunk_proof::CHUNK_LEN as usize);
        for position in self.commitment.transfer_chunk(index) {
            chunk.extend_from_slice(&self.store.transfer(position).to_bytes());
        }
        let pending = self.store.pending_slot(index).map(|slot| {
            let status = self.store.pending_status(index).expect("a pending slot has a status");
            (status, slot, self.commitment.pending_path(slot))
        });
        let proof =
            TransferProof { log: self.commitment.transfer_path(index, chunk), pending, parts: self.commitment.parts() };
        Some((*self.store.transfer(index), proof))
    }

    /// Releases the pending transfers whose deadline has come by the batch at `timestamp`,
    /// earliest deadline first. Each expiry takes a timestamp of its own, between the previous
    /// batch's last event and `timestamp`: its deadline, or the first free timestamp after it (the
    /// last one before the batch for a deadline at the batch itself). Balance history therefore
    /// stays in order with unique timestamps. A batch expires at most `EXPIRIES_PER_BATCH_MAX`,
    /// and only as many as there are free timestamps before it; the rest expire with the next
    /// batches, and until then a post or void of them is refused as expired all the same, because
    /// the rules compare the deadline with the event's own timestamp.
    fn expire_pending_transfers(&mut self, timestamp: u64) {
        for _ in 0..EXPIRIES_PER_BATCH_MAX {
            let Some((expires_at, transfer_index)) = self.store.first_expiry_at_or_before(timestamp) else {
                break;
            };
            let expiry_timestamp = (self.timestamp_last + 1).max(expires_at.min(timestamp - 1));
            if expiry_timestamp >= timestamp {
                break;
            }
            self.expire(expires_at, transfer_index, expiry_timestamp);
            self.timestamp_last = expiry_timestamp;
        }
    }

    /// The digest computed from scratch (for tests of the incremental digest).
    #[doc(hidden)]
    pub fn digest_from_scratch(&self) -> Hash {
        Commitment::rebuild(&self.store, self.timestamp_last).digest()
    }
}
