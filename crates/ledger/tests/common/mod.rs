//! Helpers shared by the ledger's integration tests: a harness that drives a `Ledger` with
//! advancing batch timestamps, and builders for accounts and transfers.

#![allow(dead_code)]

use tally_ledger::*;

/// The ledger every helper puts accounts and transfers on.
pub const LEDGER: u32 = 700;
/// The code every helper gives accounts and transfers.
pub const CODE: u16 = 10;
/// The timestamp of a harness's first batch (nanoseconds).
pub const T0: u64 = 1_000_000_000_000_000;
/// Nanoseconds per second, for timeouts.
pub const SECOND_NS: u64 = 1_000_000_000;
/// The largest timestamp the ledger accepts (2^63 - 1).
pub const TIMESTAMP_MAX: u64 = (1 << 63) - 1;
/// Nanoseconds left between one batch's last event and the next batch, so that the timestamps
/// of consecutive batches never touch.
const BATCH_GAP_NS: u64 = 1_000;

/// An account on `LEDGER` with `CODE` and no flags.
pub fn account(id: u128) -> Account {
    Account { id, ledger: LEDGER, code: CODE, ..Account::default() }
}

/// `account(id)` with `flags`.
pub fn account_with(id: u128, flags: AccountFlags) -> Account {
    Account { flags, ..account(id) }
}

/// A single-phase transfer on `LEDGER` with `CODE`.
pub fn transfer(id: u128, debit_account_id: u128, credit_account_id: u128, amount: u128) -> Transfer {
    Transfer { id, debit_account_id, credit_account_id, amount, ledger: LEDGER, code: CODE, ..Transfer::default() }
}

/// `transfer(..)` with `flags`.
pub fn transfer_with(
    id: u128,
    debit_account_id: u128,
    credit_account_id: u128,
    amount: u128,
    flags: TransferFlags,
) -> Transfer {
    Transfer { flags, ..transfer(id, debit_account_id, credit_account_id, amount) }
}

/// A pending transfer with a timeout in seconds (0: none).
pub fn pending(id: u128, debit_account_id: u128, credit_account_id: u128, amount: u128, timeout: u32) -> Transfer {
    Transfer { timeout, flags: TransferFlags::PENDING, ..transfer(id, debit_account_id, credit_account_id, amount) }
}

/// A post of `pending_id` that leaves every optional field zero (inherited from the pending
/// transfer).
pub fn post(id: u128, pending_id: u128, amount: u128) -> Transfer {
    Transfer { id, pending_id, amount, flags: TransferFlags::POST_PENDING_TRANSFER, ..Transfer::default() }
}

/// A void of `pending_id` that leaves every optional field zero.
pub fn void(id: u128, pending_id: u128, amount: u128) -> Transfer {
    Transfer { id, pending_id, amount, flags: TransferFlags::VOID_PENDING_TRANSFER, ..Transfer::default() }
}

/// `transfer` with `flags.linked` added.
pub fn linked(transfer: Transfer) -> Transfer {
    Transfer { flags: transfer.flags | TransferFlags::LINKED, ..transfer }
}

/// `account` with `flags.linked` added.
pub fn linked_account(account: Account) -> Account {
    Account { flags: account.flags | AccountFlags::LINKED, ..account }
}

/// An account's four balances: (debits_pending, debits_posted, credits_pending, credits_posted).
pub type Balances = (u128, u128, u128, u128);

/// A `Ledger` and the timestamp its next batch gets. Every batch goes strictly after the last
/// event of the previous one.
#[derive(Debug)]
pub struct Harness {
    pub ledger: Ledger,
    /// The timestamp the next batch is given.
    pub now: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Self { ledger: Ledger::new(), now: T0 }
    }

    /// A harness with accounts `ids` already created (plain accounts).
    pub fn with_accounts(ids: &[u128]) -> Self {
        let mut harness = Self::new();
        let accounts: Vec<Account> = ids.iter().map(|&id| account(id)).collect();
        harness.accounts_ok(&accounts);
        harness
    }

    /// Reserves the timestamps for a batch of `events` and returns its timestamp.
    fn take_batch_timestamp(&mut self, events: usize) -> u64 {
        let timestamp = self.now;
        self.now = timestamp + events.max(1) as u64 + BATCH_GAP_NS;
        timestamp
    }

    /// Moves the clock forward by `seconds` (the next batch is that much later).
    pub fn advance_seconds(&mut self, seconds: u64) {
        self.now += seconds * SECOND_NS;
    }

    /// Sets the next batch's timestamp (must not go backwards).
    pub fn set_now(&mut self, timestamp: u64) {
        assert!(timestamp >= self.now, "the test harness never moves time backwards");
        self.now = timestamp;
    }

    pub fn create_accounts(&mut self, batch: &[Account]) -> Vec<CreateAccountResult> {
        let timestamp = self.take_batch_timestamp(batch.len());
        let results = self.ledger.create_accounts(timestamp, batch);
        assert_eq!(results.len(), batch.len(), "one result per event");
        results
    }

    pub fn create_transfers(&mut self, batch: &[Transfer]) -> Vec<CreateTransferResult> {
        let timestamp = self.take_batch_timestamp(batch.len());
        let results = self.ledger.create_transfers(timestamp, batch);
        assert_eq!(results.len(), batch.len(), "one result per event");
        results
    }

    /// The statuses of a batch of accounts.
    pub fn account_statuses(&mut self, batch: &[Account]) -> Vec<CreateAccountStatus> {
        self.create_accounts(batch).iter().map(|result| result.status).collect()
    }

    /// The statuses of a batch of transfers.
    pub fn transfer_statuses(&mut self, batch: &[Transfer]) -> Vec<CreateTransferStatus> {
        self.create_transfers(batch).iter().map(|result| result.status).collect()
    }

    /// The status of a batch of one account.
    pub fn account_status(&mut self, account: Account) -> CreateAccountStatus {
        self.account_statuses(&[account])[0]
    }

    /// The status of a batch of one transfer.
    pub fn transfer_status(&mut self, transfer: Transfer) -> CreateTransferStatus {
        self.transfer_statuses(&[transfer])[0]
    }

    /// Creates accounts, asserting that each is `Created`.
    pub fn accounts_ok(&mut self, batch: &[Account]) {
        let statuses = self.account_statuses(batch);
        assert!(
            statuses.iter().all(|status| *status == CreateAccountStatus::Created),
            "setup accounts not created: {statuses:?}"
        );
    }

    /// Creates transfers, asserting that each is `Created`.
    pub fn transfers_ok(&mut self, batch: &[Transfer]) {
        let statuses = self.transfer_statuses(batch);
        assert!(
            statuses.iter().all(|status| *status == CreateTransferStatus::Created),
            "setup transfers not created: {statuses:?}"
        );
    }

    /// The account `id`, which must exist.
    pub fn account(&self, id: u128) -> Account {
        let found = self.ledger.lookup_accounts(&[id]);
        assert_eq!(found.len(), 1, "account {id} not found");
        found[0]
    }

    /// The transfer `id`, if it exists.
    pub fn transfer(&self, id: u128) -> Option<Transfer> {
        let found = self.ledger.lookup_transfers(&[id]);
        assert!(found.len() <= 1);
        found.first().copied()
    }

    /// The balances of account `id`.
    pub fn balances(&self, id: u128) -> Balances {
        let account = self.account(id);
        (account.debits_pending, account.debits_posted, account.credits_pending, account.credits_posted)
    }

    /// Whether account `id` has `flags.closed`.
    pub fn is_closed(&self, id: u128) -> bool {
        self.account(id).flags.contains(AccountFlags::CLOSED)
    }

    /// Funds `account_id` with `amount` of posted credits from a fresh plain account `source`.
    pub fn fund(&mut self, transfer_id: u128, source: u128, account_id: u128, amount: u128) {
        self.transfers_ok(&[transfer(transfer_id, source, account_id, amount)]);
    }
}

/// An account filter for `account_id` over both sides, chronological, with a large limit.
pub fn account_filter(account_id: u128) -> AccountFilter {
    AccountFilter {
        account_id,
        limit: 1_000,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    }
}

/// A query filter that matches everything, chronological, with a large limit.
pub fn query_filter() -> QueryFilter {
    QueryFilter { limit: 1_000, ..QueryFilter::default() }
}

/// The ids of transfers, in order.
pub fn transfer_ids(transfers: &[Transfer]) -> Vec<u128> {
    transfers.iter().map(|transfer| transfer.id).collect()
}

/// The ids of accounts, in order.
pub fn account_ids(accounts: &[Account]) -> Vec<u128> {
    accounts.iter().map(|account| account.id).collect()
}
