//! A small reference implementation of the ledger's rules, written to be obviously correct rather
//! than fast: plain `BTreeMap`s, a linked chain rolled back by restoring a clone taken when the
//! chain opened, and every check written out in TigerBeetle's documented order of precedence
//! (docs/reference/requests/create_accounts.md and create_transfers.md, release 0.16): the first
//! check that applies decides the status.
//!
//! Where the documentation is silent or ambiguous the model follows TigerBeetle's
//! `src/state_machine.zig` (`execute_create`, `create_transfer`, `post_or_void_pending_transfer`,
//! `post_or_void_pending_transfer_exists`), and where Tally decides for itself (TigerBeetle has no
//! equivalent) the choice is commented `CHOICE:`.

use std::collections::{BTreeMap, BTreeSet};

use tally_ledger::*;

type AccountStatus = CreateAccountStatus;
type TransferStatus = CreateTransferStatus;

const TIMESTAMP_MAX: u64 = (1 << 63) - 1;

const NANOSECONDS_PER_SECOND: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingState {
    Pending,
    Posted,
    Voided,
    Expired,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub accounts: BTreeMap<u128, Account>,
    pub transfers: BTreeMap<u128, Transfer>,
    /// The state of every pending transfer, by its id.
    pub pending: BTreeMap<u128, PendingState>,
    /// Transfer ids that failed with a transient status: they can never be used again.
    pub failed_transfer_ids: BTreeSet<u128>,
    /// Balance history of accounts with `flags.history`, in timestamp order (strictly
    /// increasing: expiries take timestamps of their own, imported transfers must come after).
    pub history: BTreeMap<u128, Vec<AccountBalance>>,
    /// The timestamp of the previous batch's last event.
    pub timestamp_last: u64,
}

/// TigerBeetle's transient statuses (`CreateTransferResult.transient()`): the outcome depended on
/// the state at that moment, so the id may never be used again. Overflows are not among them.
pub fn transient(status: TransferStatus) -> bool {
    use TransferStatus as S;
    matches!(
        status,
        S::DebitAccountNotFound
            | S::CreditAccountNotFound
            | S::PendingTransferNotFound
            | S::ExceedsCredits
            | S::ExceedsDebits
            | S::DebitAccountAlreadyClosed
            | S::CreditAccountAlreadyClosed
    )
}

fn expiry(transfer: &Transfer) -> Option<u64> {
    (transfer.timeout > 0).then(|| transfer.timestamp + u64::from(transfer.timeout) * NANOSECONDS_PER_SECOND)
}

impl Model {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn create_accounts(&mut self, timestamp: u64, batch: &[Account]) -> Vec<CreateAccountResult> {
        self.begin_batch(timestamp, batch.len());
        let imported = batch.first().is_some_and(|a| a.flags.contains(AccountFlags::IMPORTED));
        let results = self.execute(
            timestamp,
            batch,
            |a| a.flags.contains(AccountFlags::LINKED),
            |a| a.flags.contains(AccountFlags::IMPORTED) == imported,
            |imported_flag_ok, _| {
                if imported_flag_ok {
                    None
                } else if imported {
                    Some(AccountStatus::ImportedEventExpected)
                } else {
                    Some(AccountStatus::ImportedEventNotExpected)
                }
            },
            |model, event_timestamp, a| model.create_account(event_timestamp, imported, a),
            |model, event_timestamp, status, a| model.account_result_timestamp(event_timestamp, status, a),
            AccountStatus::Created,
            AccountStatus::LinkedEventFailed,
            AccountStatus::LinkedEventChainOpen,
            |_, _, _| {},
        );
        results.into_iter().map(|(status, timestamp)| CreateAccountResult { timestamp, status }).collect()
    }

    pub fn create_transfers(&mut self, timestamp: u64, batch: &[Transfer]) -> Vec<CreateTransferResult> {
        self.begin_batch(timestamp, batch.len());
        let imported = batch.first().is_some_and(|t| t.flags.contains(TransferFlags::IMPORTED));
        let results = self.execute(
            timestamp,
            batch,
            |t| t.flags.contains(TransferFlags::LINKED),
            |t| t.flags.contains(TransferFlags::IMPORTED) == imported,
            |imported_flag_ok, _| {
                if imported_flag_ok {
                    None
                } else if imported {
                    Some(TransferStatus::ImportedEventExpected)
                } else {
                    Some(TransferStatus::ImportedEventNotExpected)
                }
            },
            |model, event_timestamp, t| model.create_transfer(event_timestamp, imported, t),
            |model, event_timestamp, status, t| model.transfer_result_timestamp(event_timestamp, status, t),
            TransferStatus::Created,
            TransferStatus::LinkedEventFailed,
            TransferStatus::LinkedEventChainOpen,
            |model, status, t| {
                if transient(status) {
                    model.failed_transfer_ids.insert(t.id);
                }
            },
        );
        results.into_iter().map(|(status, timestamp)| CreateTransferResult { timestamp, status }).collect()
    }

    fn begin_batch(&mut self, timestamp: u64, events: usize) {
        assert!(timestamp > self.timestamp_last, "batch timestamps advance");
        self.expire_pending_transfers(timestamp);
        if events > 0 {
            self.timestamp_last = timestamp + events as u64 - 1;
        }
    }

    /// Every pending transfer whose expiry is at or before `timestamp` expires, in order of
    /// expiry (then creation), each at its own timestamp: its deadline, or the first free
    /// timestamp after the previous one, and always before `timestamp`; at most a batch's worth,
    /// and only as many as fit before `timestamp` (the rest wait for the next batch).
    fn expire_pending_transfers(&mut self, timestamp: u64) {
        let mut expiring: Vec<(u64, u64, u128)> = self
            .pending
            .iter()
            .filter(|(_, state)| **state == PendingState::Pending)
            .filter_map(|(id, _)| {
                let p = &self.transfers[id];
                expiry(p).filter(|expires_at| *expires_at <= timestamp).map(|e| (e, p.timestamp, *id))
            })
            .collect();
        expiring.sort_unstable();
        for (expires_at, _, id) in expiring.into_iter().take(tally_ledger::BATCH_EVENTS_MAX) {
            let expiry_timestamp = (self.timestamp_last + 1).max(expires_at.min(timestamp - 1));
            if expiry_timestamp >= timestamp {
                break;
            }
            self.timestamp_last = expiry_timestamp;
            let p = self.transfers[&id];
            self.pending.insert(id, PendingState::Expired);
            let dr = self.accounts.get_mut(&p.debit_account_id).unwrap();
            dr.debits_pending -= p.amount;
            if p.flags.contains(TransferFlags::CLOSING_DEBIT) {
                dr.flags.set(AccountFlags::CLOSED, false);
            }
            let cr = self.accounts.get_mut(&p.credit_account_id).unwrap();
            cr.credits_pending -= p.amount;
            if p.flags.contains(TransferFlags::CLOSING_CREDIT) {
                cr.flags.set(AccountFlags::CLOSED, false);
            }
            self.record_history(p.debit_account_id, expiry_timestamp);
            self.record_history(p.credit_account_id, expiry_timestamp);
        }
    }

    /// The batch loop shared by both operations: linked chains succeed or fail as a unit.
    #[allow(clippy::too_many_arguments)]
    fn execute<E: Copy, S: Copy + PartialEq>(
        &mut self,
        timestamp: u64,
        batch: &[E],
        linked: impl Fn(&E) -> bool,
        imported_flag_ok: impl Fn(&E) -> bool,
        imported_status: impl Fn(bool, &E) -> Option<S>,
        create: impl Fn(&mut Self, u64, &E) -> S,
        result_timestamp: impl Fn(&Self, u64, S, &E) -> u64,
        created: S,
        linked_event_failed: S,
        linked_event_chain_open: S,
        on_failure: impl Fn(&mut Self, S, &E),
    ) -> Vec<(S, u64)> {
        let mut results: Vec<(S, u64)> = Vec::with_capacity(batch.len());
        // The model as it was when the open chain began, and where it began.
        let mut chain: Option<(usize, Model)> = None;
        let mut chain_broken = false;
        for (index, event) in batch.iter().enumerate() {
            let event_timestamp = timestamp + index as u64;
            if linked(event) && chain.is_none() {
                chain = Some((index, self.clone()));
            }
            // The last event of an open chain reports the open chain even when the chain already
            // broke: TigerBeetle's `execute_create` checks it first (its docs list
            // `linked_event_failed` first).
            let status = if linked(event) && index == batch.len() - 1 {
                linked_event_chain_open
            } else if chain_broken {
                linked_event_failed
            } else if let Some(status) = imported_status(imported_flag_ok(event), event) {
                status
            } else {
                create(self, event_timestamp, event)
            };
            // The timestamp is read now: an `Exists` names an object that a rollback below may
            // remove again. CHOICE: it still reports that object's timestamp.
            let reported = result_timestamp(self, event_timestamp, status, event);
            if status != created {
                if let Some((start, saved)) = &chain
                    && !chain_broken
                {
                    // The chain breaks here: undo it, and its earlier events fail with it.
                    chain_broken = true;
                    let failed = std::mem::take(&mut self.failed_transfer_ids);
                    *self = saved.clone();
                    // Ids that failed transiently stay failed even when their chain rolls back.
                    self.failed_transfer_ids.extend(failed);
                    for (position, result) in results.iter_mut().enumerate().skip(*start) {
                        *result = (linked_event_failed, timestamp + position as u64);
                    }
                }
                on_failure(self, status, event);
            } else if chain_broken {
                unreachable!("a broken chain creates nothing");
            }
            results.push((status, reported));
            if !linked(event) && chain.is_some() {
                chain = None;
                chain_broken = false;
            }
        }
        // The batch's last timestamp survives a rollback (restored clones carry an older one).
        if !batch.is_empty() {
            self.timestamp_last = timestamp + batch.len() as u64 - 1;
        }
        results
    }

    // -----------------------------------------------------------------------------------------
    // Accounts.

    fn create_account(&mut self, event_timestamp: u64, imported: bool, a: &Account) -> AccountStatus {
        use AccountStatus as S;
        if !imported {
            if a.timestamp != 0 {
                return S::TimestampMustBeZero;
            }
        } else {
            if a.timestamp == 0 || a.timestamp > TIMESTAMP_MAX {
                return S::ImportedEventTimestampOutOfRange;
            }
            if a.timestamp >= event_timestamp {
                return S::ImportedEventTimestampMustNotAdvance;
            }
        }
        if a.reserved != 0 {
            return S::ReservedField;
        }
        if a.flags.has_reserved_bits() {
            return S::ReservedFlag;
        }
        if a.id == 0 {
            return S::IdMustNotBeZero;
        }
        if a.id == u128::MAX {
            return S::IdMustNotBeIntMax;
        }
        if let Some(e) = self.accounts.get(&a.id) {
            if a.flags != e.flags {
                return S::ExistsWithDifferentFlags;
            }
            if a.user_data_128 != e.user_data_128 {
                return S::ExistsWithDifferentUserData128;
            }
            if a.user_data_64 != e.user_data_64 {
                return S::ExistsWithDifferentUserData64;
            }
            if a.user_data_32 != e.user_data_32 {
                return S::ExistsWithDifferentUserData32;
            }
            if a.ledger != e.ledger {
                return S::ExistsWithDifferentLedger;
            }
            if a.code != e.code {
                return S::ExistsWithDifferentCode;
            }
            return S::Exists;
        }
        if a.flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && a.flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            return S::FlagsAreMutuallyExclusive;
        }
        if a.debits_pending != 0 {
            return S::DebitsPendingMustBeZero;
        }
        if a.debits_posted != 0 {
            return S::DebitsPostedMustBeZero;
        }
        if a.credits_pending != 0 {
            return S::CreditsPendingMustBeZero;
        }
        if a.credits_posted != 0 {
            return S::CreditsPostedMustBeZero;
        }
        if a.ledger == 0 {
            return S::LedgerMustNotBeZero;
        }
        if a.code == 0 {
            return S::CodeMustNotBeZero;
        }
        if imported {
            let last_account = self.accounts.values().map(|e| e.timestamp).max().unwrap_or(0);
            let transfer_at = self.transfers.values().any(|t| t.timestamp == a.timestamp);
            if a.timestamp <= last_account || transfer_at {
                return S::ImportedEventTimestampMustNotRegress;
            }
        }
        let account = Account { timestamp: if imported { a.timestamp } else { event_timestamp }, ..*a };
        self.accounts.insert(a.id, account);
        S::Created
    }

    fn account_result_timestamp(&self, event_timestamp: u64, status: AccountStatus, a: &Account) -> u64 {
        use AccountStatus as S;
        match status {
            S::Created
            | S::Exists
            | S::ExistsWithDifferentFlags
            | S::ExistsWithDifferentUserData128
            | S::ExistsWithDifferentUserData64
            | S::ExistsWithDifferentUserData32
            | S::ExistsWithDifferentLedger
            | S::ExistsWithDifferentCode => self.accounts.get(&a.id).map_or(event_timestamp, |e| e.timestamp),
            _ => event_timestamp,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Transfers.

    fn create_transfer(&mut self, event_timestamp: u64, imported: bool, t: &Transfer) -> TransferStatus {
        use TransferStatus as S;
        let f = t.flags;
        if !imported {
            if t.timestamp != 0 {
                return S::TimestampMustBeZero;
            }
        } else {
            if t.timestamp == 0 || t.timestamp > TIMESTAMP_MAX {
                return S::ImportedEventTimestampOutOfRange;
            }
            if t.timestamp >= event_timestamp {
                return S::ImportedEventTimestampMustNotAdvance;
            }
        }
        // The timestamp the transfer would get.
        let timestamp = if imported { t.timestamp } else { event_timestamp };
        if f.has_reserved_bits() {
            return S::ReservedFlag;
        }
        if t.id == 0 {
            return S::IdMustNotBeZero;
        }
        if t.id == u128::MAX {
            return S::IdMustNotBeIntMax;
        }
        if let Some(e) = self.transfers.get(&t.id) {
            return self.transfer_exists(t, e);
        }
        if self.failed_transfer_ids.contains(&t.id) {
            return S::IdAlreadyFailed;
        }
        let post = f.contains(TransferFlags::POST_PENDING_TRANSFER);
        let void = f.contains(TransferFlags::VOID_PENDING_TRANSFER);
        if post || void {
            return self.post_or_void(timestamp, imported, t);
        }
        // flags_are_mutually_exclusive: every exclusion involves post or void.
        if t.debit_account_id == 0 {
            return S::DebitAccountIdMustNotBeZero;
        }
        if t.debit_account_id == u128::MAX {
            return S::DebitAccountIdMustNotBeIntMax;
        }
        if t.credit_account_id == 0 {
            return S::CreditAccountIdMustNotBeZero;
        }
        if t.credit_account_id == u128::MAX {
            return S::CreditAccountIdMustNotBeIntMax;
        }
        if t.debit_account_id == t.credit_account_id {
            return S::AccountsMustBeDifferent;
        }
        if t.pending_id != 0 {
            return S::PendingIdMustBeZero;
        }
        let pending = f.contains(TransferFlags::PENDING);
        if !pending && t.timeout != 0 {
            return S::TimeoutReservedForPendingTransfer;
        }
        if !pending && (f.contains(TransferFlags::CLOSING_DEBIT) || f.contains(TransferFlags::CLOSING_CREDIT)) {
            return S::ClosingTransferMustBePending;
        }
        if t.ledger == 0 {
            return S::LedgerMustNotBeZero;
        }
        if t.code == 0 {
            return S::CodeMustNotBeZero;
        }
        let Some(dr) = self.accounts.get(&t.debit_account_id).copied() else {
            return S::DebitAccountNotFound;
        };
        let Some(cr) = self.accounts.get(&t.credit_account_id).copied() else {
            return S::CreditAccountNotFound;
        };
        if dr.ledger != cr.ledger {
            return S::AccountsMustHaveTheSameLedger;
        }
        if t.ledger != dr.ledger {
            return S::TransferMustHaveTheSameLedgerAsAccounts;
        }
        if imported {
            if self.imported_transfer_regresses(timestamp, t.debit_account_id, t.credit_account_id) {
                return S::ImportedEventTimestampMustNotRegress;
            }
            if timestamp <= dr.timestamp {
                return S::ImportedEventTimestampMustPostdateDebitAccount;
            }
            if timestamp <= cr.timestamp {
                return S::ImportedEventTimestampMustPostdateCreditAccount;
            }
            if t.timeout != 0 {
                return S::ImportedEventTimeoutMustBeZero;
            }
        }
        if dr.flags.contains(AccountFlags::CLOSED) {
            return S::DebitAccountAlreadyClosed;
        }
        if cr.flags.contains(AccountFlags::CLOSED) {
            return S::CreditAccountAlreadyClosed;
        }
        // Balancing transfers move at most `amount`, and no more than the limit allows.
        let mut amount = t.amount;
        if f.contains(TransferFlags::BALANCING_DEBIT) {
            let debits = dr.debits_pending.checked_add(dr.debits_posted).expect("balances never overflow");
            amount = amount.min(dr.credits_posted.saturating_sub(debits));
        }
        if f.contains(TransferFlags::BALANCING_CREDIT) {
            let credits = cr.credits_pending.checked_add(cr.credits_posted).expect("balances never overflow");
            amount = amount.min(cr.debits_posted.saturating_sub(credits));
        }
        if pending {
            if dr.debits_pending.checked_add(amount).is_none() {
                return S::OverflowsDebitsPending;
            }
            if cr.credits_pending.checked_add(amount).is_none() {
                return S::OverflowsCreditsPending;
            }
        }
        if dr.debits_posted.checked_add(amount).is_none() {
            return S::OverflowsDebitsPosted;
        }
        if cr.credits_posted.checked_add(amount).is_none() {
            return S::OverflowsCreditsPosted;
        }
        if dr.debits_pending.checked_add(dr.debits_posted).and_then(|d| d.checked_add(amount)).is_none() {
            return S::OverflowsDebits;
        }
        if cr.credits_pending.checked_add(cr.credits_posted).and_then(|c| c.checked_add(amount)).is_none() {
            return S::OverflowsCredits;
        }
        if pending && t.timeout > 0 && timestamp + u64::from(t.timeout) * NANOSECONDS_PER_SECOND > TIMESTAMP_MAX {
            return S::OverflowsTimeout;
        }
        // Since 0.16 a balancing transfer with no room left moves zero (TigerBeetle's
        // `maybe(amount == 0)`), it does not fail.
        if dr.flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
        {
            return S::ExceedsCredits;
        }
        if cr.flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
        {
            return S::ExceedsDebits;
        }

        // Created.
        let transfer = Transfer { amount, timestamp, ..*t };
        self.transfers.insert(t.id, transfer);
        let dr = self.accounts.get_mut(&t.debit_account_id).unwrap();
        if pending {
            dr.debits_pending += amount;
        } else {
            dr.debits_posted += amount;
        }
        if f.contains(TransferFlags::CLOSING_DEBIT) {
            dr.flags |= AccountFlags::CLOSED;
        }
        let cr = self.accounts.get_mut(&t.credit_account_id).unwrap();
        if pending {
            cr.credits_pending += amount;
        } else {
            cr.credits_posted += amount;
        }
        if f.contains(TransferFlags::CLOSING_CREDIT) {
            cr.flags |= AccountFlags::CLOSED;
        }
        if pending {
            self.pending.insert(t.id, PendingState::Pending);
        }
        self.record_history(t.debit_account_id, timestamp);
        self.record_history(t.credit_account_id, timestamp);
        S::Created
    }

    /// An imported transfer's timestamp must come after every transfer and equal no account's.
    /// An imported transfer must come after every transfer, at no account's timestamp, and after
    /// the balance history of its accounts (expiries take timestamps of their own).
    fn imported_transfer_regresses(&self, timestamp: u64, debit: u128, credit: u128) -> bool {
        let last_transfer = self.transfers.values().map(|e| e.timestamp).max().unwrap_or(0);
        let history_after = |account: u128| {
            self.history
                .get(&account)
                .and_then(|entries| entries.last())
                .is_some_and(|last| last.timestamp >= timestamp)
        };
        timestamp <= last_transfer
            || self.accounts.values().any(|a| a.timestamp == timestamp)
            || history_after(debit)
            || history_after(credit)
    }

    fn post_or_void(&mut self, timestamp: u64, imported: bool, t: &Transfer) -> TransferStatus {
        use TransferStatus as S;
        let f = t.flags;
        let post = f.contains(TransferFlags::POST_PENDING_TRANSFER);
        let void = f.contains(TransferFlags::VOID_PENDING_TRANSFER);
        if (post && void)
            || f.contains(TransferFlags::PENDING)
            || f.contains(TransferFlags::BALANCING_DEBIT)
            || f.contains(TransferFlags::BALANCING_CREDIT)
            || f.contains(TransferFlags::CLOSING_DEBIT)
            || f.contains(TransferFlags::CLOSING_CREDIT)
        {
            return S::FlagsAreMutuallyExclusive;
        }
        // Debit and credit account ids are optional for post and void (checked against the
        // pending transfer below).
        if t.pending_id == 0 {
            return S::PendingIdMustNotBeZero;
        }
        if t.pending_id == u128::MAX {
            return S::PendingIdMustNotBeIntMax;
        }
        if t.pending_id == t.id {
            return S::PendingIdMustBeDifferent;
        }
        if t.timeout != 0 {
            return S::TimeoutReservedForPendingTransfer;
        }
        // Ledger and code are optional for post and void.
        let Some(p) = self.transfers.get(&t.pending_id).copied() else {
            return S::PendingTransferNotFound;
        };
        if !p.flags.contains(TransferFlags::PENDING) {
            return S::PendingTransferNotPending;
        }
        if t.debit_account_id != 0 && t.debit_account_id != p.debit_account_id {
            return S::PendingTransferHasDifferentDebitAccountId;
        }
        if t.credit_account_id != 0 && t.credit_account_id != p.credit_account_id {
            return S::PendingTransferHasDifferentCreditAccountId;
        }
        if t.ledger != 0 && t.ledger != p.ledger {
            return S::PendingTransferHasDifferentLedger;
        }
        if t.code != 0 && t.code != p.code {
            return S::PendingTransferHasDifferentCode;
        }
        let amount = if post {
            if t.amount == AMOUNT_MAX { p.amount } else { t.amount }
        } else if t.amount == 0 {
            p.amount
        } else {
            t.amount
        };
        if amount > p.amount {
            return S::ExceedsPendingTransferAmount;
        }
        if void && amount < p.amount {
            return S::PendingTransferHasDifferentAmount;
        }
        match self.pending[&p.id] {
            PendingState::Pending => {}
            PendingState::Posted => return S::PendingTransferAlreadyPosted,
            PendingState::Voided => return S::PendingTransferAlreadyVoided,
            PendingState::Expired => return S::PendingTransferExpired,
        }
        if expiry(&p).is_some_and(|expires_at| expires_at <= timestamp) {
            return S::PendingTransferExpired;
        }
        if imported {
            if self.imported_transfer_regresses(timestamp, p.debit_account_id, p.credit_account_id) {
                return S::ImportedEventTimestampMustNotRegress;
            }
            if timestamp <= self.accounts[&p.debit_account_id].timestamp {
                return S::ImportedEventTimestampMustPostdateDebitAccount;
            }
            if timestamp <= self.accounts[&p.credit_account_id].timestamp {
                return S::ImportedEventTimestampMustPostdateCreditAccount;
            }
        }
        // A closed account refuses every transfer except voiding a pending transfer.
        // (TigerBeetle asserts that a post never meets a closing transfer: its own closed
        // account refuses it first.)
        if post {
            if self.accounts[&p.debit_account_id].flags.contains(AccountFlags::CLOSED) {
                return S::DebitAccountAlreadyClosed;
            }
            if self.accounts[&p.credit_account_id].flags.contains(AccountFlags::CLOSED) {
                return S::CreditAccountAlreadyClosed;
            }
        }
        // Posting at most the pending amount never overflows nor exceeds a limit.

        // Created: the stored transfer takes what the event left out from the pending transfer.
        let transfer = Transfer {
            id: t.id,
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            amount,
            pending_id: t.pending_id,
            user_data_128: if t.user_data_128 != 0 { t.user_data_128 } else { p.user_data_128 },
            user_data_64: if t.user_data_64 != 0 { t.user_data_64 } else { p.user_data_64 },
            user_data_32: if t.user_data_32 != 0 { t.user_data_32 } else { p.user_data_32 },
            timeout: 0,
            ledger: p.ledger,
            code: p.code,
            flags: t.flags,
            timestamp,
        };
        self.transfers.insert(t.id, transfer);
        self.pending.insert(p.id, if post { PendingState::Posted } else { PendingState::Voided });
        let dr = self.accounts.get_mut(&p.debit_account_id).unwrap();
        dr.debits_pending -= p.amount;
        if post {
            dr.debits_posted += amount;
        } else if p.flags.contains(TransferFlags::CLOSING_DEBIT) {
            dr.flags.set(AccountFlags::CLOSED, false);
        }
        let cr = self.accounts.get_mut(&p.credit_account_id).unwrap();
        cr.credits_pending -= p.amount;
        if post {
            cr.credits_posted += amount;
        } else if p.flags.contains(TransferFlags::CLOSING_CREDIT) {
            cr.flags.set(AccountFlags::CLOSED, false);
        }
        self.record_history(p.debit_account_id, timestamp);
        self.record_history(p.credit_account_id, timestamp);
        S::Created
    }

    /// The status of a transfer whose id exists: the first field that differs, comparing the
    /// event as it would be stored (for post and void, fields left zero come from the pending
    /// transfer).
    fn transfer_exists(&self, t: &Transfer, e: &Transfer) -> TransferStatus {
        use TransferStatus as S;
        if t.flags != e.flags {
            return S::ExistsWithDifferentFlags;
        }
        if t.pending_id != e.pending_id {
            return S::ExistsWithDifferentPendingId;
        }
        if t.timeout != e.timeout {
            return S::ExistsWithDifferentTimeout;
        }
        let post = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
        let void = t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
        let or_stored = |value: u128, stored: u128| if (post || void) && value == 0 { stored } else { value };
        if or_stored(t.debit_account_id, e.debit_account_id) != e.debit_account_id {
            return S::ExistsWithDifferentDebitAccountId;
        }
        if or_stored(t.credit_account_id, e.credit_account_id) != e.credit_account_id {
            return S::ExistsWithDifferentCreditAccountId;
        }
        let amount_differs =
            if t.flags.contains(TransferFlags::BALANCING_DEBIT) || t.flags.contains(TransferFlags::BALANCING_CREDIT) {
                // The stored amount may be less than the maximum asked for.
                t.amount < e.amount
            } else if post {
                // `AMOUNT_MAX` asked for the whole pending amount; any other amount is exact.
                let p = &self.transfers[&e.pending_id];
                if t.amount == AMOUNT_MAX { e.amount != p.amount } else { t.amount != e.amount }
            } else if void {
                // Zero asked for the whole pending amount (which a void always moves).
                t.amount != 0 && t.amount != e.amount
            } else {
                t.amount != e.amount
            };
        if amount_differs {
            return S::ExistsWithDifferentAmount;
        }
        // A post or void left zero inherits user data, ledger and code from the pending transfer,
        // so a retry left zero compares the pending transfer's value.
        let p = (post || void).then(|| self.transfers[&e.pending_id]);
        let resolve128 = |value: u128, inherited: Option<u128>| if value == 0 { inherited.unwrap_or(0) } else { value };
        if resolve128(t.user_data_128, p.map(|p| p.user_data_128)) != e.user_data_128 {
            return S::ExistsWithDifferentUserData128;
        }
        if resolve128(u128::from(t.user_data_64), p.map(|p| u128::from(p.user_data_64))) != u128::from(e.user_data_64) {
            return S::ExistsWithDifferentUserData64;
        }
        if resolve128(u128::from(t.user_data_32), p.map(|p| u128::from(p.user_data_32))) != u128::from(e.user_data_32) {
            return S::ExistsWithDifferentUserData32;
        }
        if resolve128(u128::from(t.ledger), p.map(|p| u128::from(p.ledger))) != u128::from(e.ledger) {
            return S::ExistsWithDifferentLedger;
        }
        if resolve128(u128::from(t.code), p.map(|p| u128::from(p.code))) != u128::from(e.code) {
            return S::ExistsWithDifferentCode;
        }
        S::Exists
    }

    fn transfer_result_timestamp(&self, event_timestamp: u64, status: TransferStatus, t: &Transfer) -> u64 {
        use TransferStatus as S;
        match status {
            S::Created
            | S::Exists
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
            | S::ExistsWithDifferentCode => self.transfers.get(&t.id).map_or(event_timestamp, |e| e.timestamp),
            _ => event_timestamp,
        }
    }

    fn record_history(&mut self, account_id: u128, timestamp: u64) {
        let account = self.accounts[&account_id];
        if account.flags.contains(AccountFlags::HISTORY) {
            let history = self.history.entry(account_id).or_default();
            assert!(history.last().is_none_or(|last| last.timestamp < timestamp), "history in order");
            history.push(AccountBalance {
                debits_pending: account.debits_pending,
                debits_posted: account.debits_posted,
                credits_pending: account.credits_pending,
                credits_posted: account.credits_posted,
                timestamp,
            });
        }
    }

    // -----------------------------------------------------------------------------------------
    // Lookups and queries.

    pub fn lookup_accounts(&self, ids: &[u128]) -> Vec<Account> {
        ids.iter().filter_map(|id| self.accounts.get(id).copied()).collect()
    }

    pub fn lookup_transfers(&self, ids: &[u128]) -> Vec<Transfer> {
        ids.iter().filter_map(|id| self.transfers.get(id).copied()).collect()
    }

    fn transfers_by_timestamp(&self) -> Vec<Transfer> {
        let mut transfers: Vec<Transfer> = self.transfers.values().copied().collect();
        transfers.sort_by_key(|t| t.timestamp);
        transfers
    }

    fn account_filter_valid(filter: &AccountFilter) -> bool {
        filter.account_id != 0
            && filter.account_id != u128::MAX
            && filter.limit != 0
            && (filter.timestamp_max == 0 || filter.timestamp_min <= filter.timestamp_max)
            && filter.flags.intersects(AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS)
            && !filter.flags.has_reserved_bits()
    }

    fn in_range(timestamp: u64, min: u64, max: u64) -> bool {
        (min == 0 || timestamp >= min) && (max == 0 || timestamp <= max)
    }

    fn take<T>(mut items: Vec<T>, reversed: bool, limit: u32) -> Vec<T> {
        if reversed {
            items.reverse();
        }
        items.truncate((limit as usize).min(QUERY_RESULTS_MAX));
        items
    }

    pub fn get_account_transfers(&self, filter: AccountFilter) -> Vec<Transfer> {
        if !Self::account_filter_valid(&filter) {
            return Vec::new();
        }
        let matching = self
            .transfers_by_timestamp()
            .into_iter()
            .filter(|t| {
                (filter.flags.contains(AccountFilterFlags::DEBITS) && t.debit_account_id == filter.account_id)
                    || (filter.flags.contains(AccountFilterFlags::CREDITS) && t.credit_account_id == filter.account_id)
            })
            .filter(|t| filter.user_data_128 == 0 || t.user_data_128 == filter.user_data_128)
            .filter(|t| filter.user_data_64 == 0 || t.user_data_64 == filter.user_data_64)
            .filter(|t| filter.user_data_32 == 0 || t.user_data_32 == filter.user_data_32)
            .filter(|t| filter.code == 0 || t.code == filter.code)
            .filter(|t| Self::in_range(t.timestamp, filter.timestamp_min, filter.timestamp_max))
            .collect();
        Self::take(matching, filter.flags.contains(AccountFilterFlags::REVERSED), filter.limit)
    }

    /// The history of an account with `flags.history`, for a filter asking both sides with no
    /// other condition (the only shape the model test compares).
    pub fn get_account_balances_unfiltered(&self, account_id: u128, limit: u32, reversed: bool) -> Vec<AccountBalance> {
        let Some(account) = self.accounts.get(&account_id) else { return Vec::new() };
        if !account.flags.contains(AccountFlags::HISTORY) || limit == 0 {
            return Vec::new();
        }
        Self::take(self.history.get(&account_id).cloned().unwrap_or_default(), reversed, limit)
    }

    fn query_matches(
        filter: &QueryFilter,
        user_data: (u128, u64, u32),
        ledger: u32,
        code: u16,
        timestamp: u64,
    ) -> bool {
        (filter.user_data_128 == 0 || user_data.0 == filter.user_data_128)
            && (filter.user_data_64 == 0 || user_data.1 == filter.user_data_64)
            && (filter.user_data_32 == 0 || user_data.2 == filter.user_data_32)
            && (filter.ledger == 0 || ledger == filter.ledger)
            && (filter.code == 0 || code == filter.code)
            && Self::in_range(timestamp, filter.timestamp_min, filter.timestamp_max)
    }

    fn query_filter_valid(filter: &QueryFilter) -> bool {
        filter.limit != 0
            && (filter.timestamp_max == 0 || filter.timestamp_min <= filter.timestamp_max)
            && !filter.flags.has_reserved_bits()
    }

    pub fn query_transfers(&self, filter: QueryFilter) -> Vec<Transfer> {
        if !Self::query_filter_valid(&filter) {
            return Vec::new();
        }
        let matching = self
            .transfers_by_timestamp()
            .into_iter()
            .filter(|t| {
                Self::query_matches(
                    &filter,
                    (t.user_data_128, t.user_data_64, t.user_data_32),
                    t.ledger,
                    t.code,
                    t.timestamp,
                )
            })
            .collect();
        Self::take(matching, filter.flags.contains(QueryFilterFlags::REVERSED), filter.limit)
    }

    pub fn query_accounts(&self, filter: QueryFilter) -> Vec<Account> {
        if !Self::query_filter_valid(&filter) {
            return Vec::new();
        }
        let mut accounts: Vec<Account> = self.accounts.values().copied().collect();
        accounts.sort_by_key(|a| a.timestamp);
        let matching = accounts
            .into_iter()
            .filter(|a| {
                Self::query_matches(
                    &filter,
                    (a.user_data_128, a.user_data_64, a.user_data_32),
                    a.ledger,
                    a.code,
                    a.timestamp,
                )
            })
            .collect();
        Self::take(matching, filter.flags.contains(QueryFilterFlags::REVERSED), filter.limit)
    }
}
