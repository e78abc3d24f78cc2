//! The rules of `create_accounts` and `create_transfers`, as TigerBeetle documents them.
//!
//! Each function checks an event in the order in which TigerBeetle lists its results (the first
//! that applies wins), and only when every check has passed does it change the ledger. Business
//! rejections are statuses, never errors; a broken invariant of the ledger itself panics.

use crate::constants::{AMOUNT_MAX, TIMESTAMP_MAX};
use crate::ledger::Ledger;
use crate::store::{AccountIndex, PendingStatus, Store, TransferIndex};
use crate::types::{Account, AccountFlags, CreateAccountStatus, CreateTransferStatus, Transfer, TransferFlags};

impl<S: Store> Ledger<S> {
    /// Creates one account at `timestamp`, or says why not.
    pub(crate) fn create_account(&mut self, timestamp: u64, batch_imported: bool, a: &Account) -> CreateAccountStatus {
        use CreateAccountStatus as S;
        let imported = a.flags.contains(AccountFlags::IMPORTED);
        if imported != batch_imported {
            return if batch_imported { S::ImportedEventExpected } else { S::ImportedEventNotExpected };
        }
        if imported {
            if a.timestamp == 0 || a.timestamp > TIMESTAMP_MAX {
                return S::ImportedEventTimestampOutOfRange;
            }
            if a.timestamp >= timestamp {
                return S::ImportedEventTimestampMustNotAdvance;
            }
        } else if a.timestamp != 0 {
            return S::TimestampMustBeZero;
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
        if let Some(index) = self.store.account_index(a.id) {
            return account_exists(a, self.store.account(index));
        }
        if a.flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
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
        if imported && (a.timestamp <= self.account_timestamp_last() || self.transfer_at(a.timestamp)) {
            return S::ImportedEventTimestampMustNotRegress;
        }

        let account = Account { timestamp: if imported { a.timestamp } else { timestamp }, ..*a };
        self.insert_account(account);
        S::Created
    }

    /// Creates one transfer at `timestamp`, or says why not. A transient failure makes the id
    /// unusable from then on.
    pub(crate) fn create_transfer(
        &mut self,
        timestamp: u64,
        batch_imported: bool,
        t: &Transfer,
    ) -> CreateTransferStatus {
        let status = self.create_transfer_checked(timestamp, batch_imported, t);
        if status.is_transient() {
            self.insert_failed_transfer_id(t.id);
        }
        status
    }

    fn create_transfer_checked(&mut self, timestamp: u64, batch_imported: bool, t: &Transfer) -> CreateTransferStatus {
        use CreateTransferStatus as S;
        let imported = t.flags.contains(TransferFlags::IMPORTED);
        if imported != batch_imported {
            return if batch_imported { S::ImportedEventExpected } else { S::ImportedEventNotExpected };
        }
        if imported {
            if t.timestamp == 0 || t.timestamp > TIMESTAMP_MAX {
                return S::ImportedEventTimestampOutOfRange;
            }
            if t.timestamp >= timestamp {
                return S::ImportedEventTimestampMustNotAdvance;
            }
        } else if t.timestamp != 0 {
            return S::TimestampMustBeZero;
        }
        if t.flags.has_reserved_bits() {
            return S::ReservedFlag;
        }
        if t.id == 0 {
            return S::IdMustNotBeZero;
        }
        if t.id == u128::MAX {
            return S::IdMustNotBeIntMax;
        }
        if let Some(index) = self.store.transfer_index(t.id) {
            let existing = self.store.transfer(index);
            let pending = self.store.transfer_index(existing.pending_id).map(|index| self.store.transfer(index));
            return transfer_exists(t, existing, pending.filter(|_| existing.pending_id != 0));
        }
        if self.store.is_failed_transfer_id(t.id) {
            return S::IdAlreadyFailed;
        }
        if flags_are_mutually_exclusive(t.flags) {
            return S::FlagsAreMutuallyExclusive;
        }
        let timestamp = if imported { t.timestamp } else { timestamp };
        if t.flags.intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER) {
            return self.post_or_void_pending_transfer(timestamp, t);
        }

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
        let pending = t.flags.contains(TransferFlags::PENDING);
        if !pending {
            if t.timeout != 0 {
                return S::TimeoutReservedForPendingTransfer;
            }
            if t.flags.intersects(TransferFlags::CLOSING_DEBIT | TransferFlags::CLOSING_CREDIT) {
                return S::ClosingTransferMustBePending;
            }
        }
        if t.ledger == 0 {
            return S::LedgerMustNotBeZero;
        }
        if t.code == 0 {
            return S::CodeMustNotBeZero;
        }
        let Some(debit_index) = self.store.account_index(t.debit_account_id) else {
            return S::DebitAccountNotFound;
        };
        let Some(credit_index) = self.store.account_index(t.credit_account_id) else {
            return S::CreditAccountNotFound;
        };
        let debit = *self.store.account(debit_index);
        let credit = *self.store.account(credit_index);
        if debit.ledger != credit.ledger {
            return S::AccountsMustHaveTheSameLedger;
        }
        if t.ledger != debit.ledger {
            return S::TransferMustHaveTheSameLedgerAsAccounts;
        }
        if imported && let Some(status) = self.imported_transfer_checks(t, &debit, &credit) {
            return status;
        }
        if debit.flags.contains(AccountFlags::CLOSED) {
            return S::DebitAccountAlreadyClosed;
        }
        if credit.flags.contains(AccountFlags::CLOSED) {
            return S::CreditAccountAlreadyClosed;
        }

        let mut amount = t.amount;
        if t.flags.contains(TransferFlags::BALANCING_DEBIT) {
            let debits = debit.debits_pending + debit.debits_posted;
            amount = amount.min(debit.credits_posted.saturating_sub(debits));
        }
        if t.flags.contains(TransferFlags::BALANCING_CREDIT) {
            let credits = credit.credits_pending + credit.credits_posted;
            amount = amount.min(credit.debits_posted.saturating_sub(credits));
        }
        if pending {
            if debit.debits_pending.checked_add(amount).is_none() {
                return S::OverflowsDebitsPending;
            }
            if credit.credits_pending.checked_add(amount).is_none() {
                return S::OverflowsCreditsPending;
            }
        }
        if debit.debits_posted.checked_add(amount).is_none() {
            return S::OverflowsDebitsPosted;
        }
        if credit.credits_posted.checked_add(amount).is_none() {
            return S::OverflowsCreditsPosted;
        }
        if (debit.debits_pending + debit.debits_posted).checked_add(amount).is_none() {
            return S::OverflowsDebits;
        }
        if (credit.credits_pending + credit.credits_posted).checked_add(amount).is_none() {
            return S::OverflowsCredits;
        }
        if timestamp + t.timeout_ns() > TIMESTAMP_MAX {
            return S::OverflowsTimeout;
        }
        // A balancing transfer's amount is already clamped to what keeps the balance within
        // limits (possibly zero, which is created: TigerBeetle 0.16); only the flags refuse.
        if debit.debits_exceed_credits(amount) {
            return S::ExceedsCredits;
        }
        if credit.credits_exceed_debits(amount) {
            return S::ExceedsDebits;
        }

        let transfer = Transfer { amount, timestamp, ..*t };
        let index = self.insert_transfer(transfer, debit_index, credit_index);
        let closing_debit = t.flags.contains(TransferFlags::CLOSING_DEBIT);
        let closing_credit = t.flags.contains(TransferFlags::CLOSING_CREDIT);
        self.update_account(debit_index, |account| {
            if pending {
                account.debits_pending += amount;
            } else {
                account.debits_posted += amount;
            }
            if closing_debit {
                account.flags.set(AccountFlags::CLOSED, true);
            }
        });
        self.update_account(credit_index, |account| {
            if pending {
                account.credits_pending += amount;
            } else {
                account.credits_posted += amount;
            }
            if closing_credit {
                account.flags.set(AccountFlags::CLOSED, true);
            }
        });
        if pending {
            self.set_pending_status(index, PendingStatus::Pending);
            if t.timeout > 0 {
                self.insert_expiry(timestamp + t.timeout_ns(), index);
            }
        }
        self.record_balance(debit_index, index, timestamp);
        self.record_balance(credit_index, index, timestamp);
        self.assert_balance_limits(debit_index);
        self.assert_balance_limits(credit_index);
        S::Created
    }

    /// The checks only imported transfers get, after the accounts are known.
    fn imported_transfer_checks(
        &self,
        t: &Transfer,
        debit: &Account,
        credit: &Account,
    ) -> Option<CreateTransferStatus> {
        use CreateTransferStatus as S;
        if t.timestamp <= self.transfer_timestamp_last()
            || self.account_at(t.timestamp)
            || self.history_at_or_after(debit, t.timestamp)
            || self.history_at_or_after(credit, t.timestamp)
        {
            return Some(S::ImportedEventTimestampMustNotRegress);
        }
        if debit.timestamp >= t.timestamp {
            return Some(S::ImportedEventTimestampMustPostdateDebitAccount);
        }
        if credit.timestamp >= t.timestamp {
            return Some(S::ImportedEventTimestampMustPostdateCreditAccount);
        }
        if t.timeout != 0 {
            return Some(S::ImportedEventTimeoutMustBeZero);
        }
        None
    }

    /// Posts or voids a pending transfer (the second phase of a two-phase transfer).
    fn post_or_void_pending_transfer(&mut self, timestamp: u64, t: &Transfer) -> CreateTransferStatus {
        use CreateTransferStatus as S;
        let post = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
        debug_assert!(post != t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER));
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
        debug_assert!(!t.flags.intersects(TransferFlags::CLOSING_DEBIT | TransferFlags::CLOSING_CREDIT));
        let Some(pending_index) = self.store.transfer_index(t.pending_id) else {
            return S::PendingTransferNotFound;
        };
        let p = *self.store.transfer(pending_index);
        if !p.flags.contains(TransferFlags::PENDING) {
            return S::PendingTransferNotPending;
        }
        let debit_index = self.store.account_index(p.debit_account_id).expect("a pending transfer's accounts exist");
        let credit_index = self.store.account_index(p.credit_account_id).expect("a pending transfer's accounts exist");
        let debit = *self.store.account(debit_index);
        let credit = *self.store.account(credit_index);
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
        let amount = match (post, t.amount) {
            (true, AMOUNT_MAX) | (false, 0) => p.amount,
            (_, amount) => amount,
        };
        if amount > p.amount {
            return S::ExceedsPendingTransferAmount;
        }
        if !post && amount < p.amount {
            return S::PendingTransferHasDifferentAmount;
        }
        match self.store.pending_status(pending_index).expect("a pending transfer has a status") {
            PendingStatus::Pending => {}
            PendingStatus::Posted => return S::PendingTransferAlreadyPosted,
            PendingStatus::Voided => return S::PendingTransferAlreadyVoided,
            PendingStatus::Expired => return S::PendingTransferExpired,
        }
        let expires_at = (p.timeout > 0).then(|| p.timestamp + p.timeout_ns());
        if expires_at.is_some_and(|expires_at| expires_at <= timestamp) {
            return S::PendingTransferExpired;
        }
        if t.flags.contains(TransferFlags::IMPORTED)
            && let Some(status) = self.imported_transfer_checks(t, &debit, &credit)
        {
            return status;
        }
        // A closed account takes no transfer but the void of a pending one: a closing transfer
        // is undone by voiding it (or by its expiry), and is never posted.
        if post {
            if debit.flags.contains(AccountFlags::CLOSED) {
                return S::DebitAccountAlreadyClosed;
            }
            if credit.flags.contains(AccountFlags::CLOSED) {
                return S::CreditAccountAlreadyClosed;
            }
        }

        let transfer = Transfer {
            id: t.id,
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            amount,
            pending_id: t.pending_id,
            // Zero user data is inherited from the pending transfer.
            user_data_128: if t.user_data_128 == 0 { p.user_data_128 } else { t.user_data_128 },
            user_data_64: if t.user_data_64 == 0 { p.user_data_64 } else { t.user_data_64 },
            user_data_32: if t.user_data_32 == 0 { p.user_data_32 } else { t.user_data_32 },
            timeout: 0,
            ledger: p.ledger,
            code: p.code,
            flags: t.flags,
            timestamp,
        };
        let index = self.insert_transfer(transfer, debit_index, credit_index);
        let reopen_debit = !post && p.flags.contains(TransferFlags::CLOSING_DEBIT);
        let reopen_credit = !post && p.flags.contains(TransferFlags::CLOSING_CREDIT);
        self.update_account(debit_index, |account| {
            account.debits_pending -= p.amount;
            if post {
                account.debits_posted += amount;
            }
            if reopen_debit {
                account.flags.set(AccountFlags::CLOSED, false);
            }
        });
        self.update_account(credit_index, |account| {
            account.credits_pending -= p.amount;
            if post {
                account.credits_posted += amount;
            }
            if reopen_credit {
                account.flags.set(AccountFlags::CLOSED, false);
            }
        });
        let status = if post { PendingStatus::Posted } else { PendingStatus::Voided };
        self.set_pending_status(pending_index, status);
        if let Some(expires_at) = expires_at {
            self.remove_expiry(expires_at, pending_index);
        }
        self.record_balance(debit_index, index, timestamp);
        self.record_balance(credit_index, index, timestamp);
        self.assert_balance_limits(debit_index);
        self.assert_balance_limits(credit_index);
        S::Created
    }

    /// Expires a pending transfer whose timeout passed: its amount stops being pending, and the
    /// accounts it was closing reopen. `timestamp` is the expiry's own timestamp.
    pub(crate) fn expire(&mut self, expires_at: u64, index: TransferIndex, timestamp: u64) {
        let p = *self.store.transfer(index);
        assert_eq!(self.store.pending_status(index), Some(PendingStatus::Pending), "only pending transfers expire");
        assert_eq!(p.timestamp + p.timeout_ns(), expires_at);
        assert!(expires_at <= timestamp + 1, "an expiry is recorded at most just before its deadline");
        let debit_index = self.store.account_index(p.debit_account_id).expect("a pending transfer's accounts exist");
        let credit_index = self.store.account_index(p.credit_account_id).expect("a pending transfer's accounts exist");
        self.remove_expiry(expires_at, index);
        self.set_pending_status(index, PendingStatus::Expired);
        self.update_account(debit_index, |account| {
            account.debits_pending -= p.amount;
            if p.flags.contains(TransferFlags::CLOSING_DEBIT) {
                account.flags.set(AccountFlags::CLOSED, false);
            }
        });
        self.update_account(credit_index, |account| {
            account.credits_pending -= p.amount;
            if p.flags.contains(TransferFlags::CLOSING_CREDIT) {
                account.flags.set(AccountFlags::CLOSED, false);
            }
        });
        self.record_balance(debit_index, index, timestamp);
        self.record_balance(credit_index, index, timestamp);
    }

    /// Whether the account keeps a balance history with an entry at or after `timestamp` (an
    /// expiry, which is not a transfer, may have taken a later timestamp than the last transfer):
    /// an imported transfer may not be placed before history it would append to.
    fn history_at_or_after(&self, account: &Account, timestamp: u64) -> bool {
        let index = self.store.account_index(account.id).expect("the account exists");
        self.store.balances(index).last().is_some_and(|last| last.balance.timestamp >= timestamp)
    }

    /// Whether a transfer has exactly this timestamp (transfers are in timestamp order).
    fn transfer_at(&self, timestamp: u64) -> bool {
        let count = self.store.transfer_count();
        let position = partition_point(count, |index| self.store.transfer(index).timestamp < timestamp);
        position < count && self.store.transfer(position).timestamp == timestamp
    }

    /// Whether an account has exactly this timestamp (accounts are in timestamp order).
    fn account_at(&self, timestamp: u64) -> bool {
        let count = u64::from(self.store.account_count());
        let position = partition_point(count, |index| self.store.account(index as AccountIndex).timestamp < timestamp);
        position < count && self.store.account(position as AccountIndex).timestamp == timestamp
    }

    /// The balance limits hold after every change: a violation is a bug in the rules above.
    fn assert_balance_limits(&self, index: AccountIndex) {
        let account = self.store.account(index);
        assert!(
            !account.debits_exceed_credits(0) && !account.credits_exceed_debits(0),
            "account {} breaks its balance limit: {account:?}",
            account.id
        );
    }
}

/// The first index in `0..count` for which `before` is false (`before` is true then false).
pub(crate) fn partition_point(count: u64, before: impl Fn(u64) -> bool) -> u64 {
    let (mut low, mut high) = (0, count);
    while low < high {
        let middle = low + (high - low) / 2;
        if before(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// Flag combinations TigerBeetle refuses: at most one of pending, post and void, and no
/// balancing or closing with post or void.
fn flags_are_mutually_exclusive(flags: TransferFlags) -> bool {
    let phases = [TransferFlags::PENDING, TransferFlags::POST_PENDING_TRANSFER, TransferFlags::VOID_PENDING_TRANSFER]
        .into_iter()
        .filter(|flag| flags.contains(*flag))
        .count();
    let second_phase = flags.intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER);
    let balancing_or_closing = flags.intersects(
        TransferFlags::BALANCING_DEBIT
            | TransferFlags::BALANCING_CREDIT
            | TransferFlags::CLOSING_DEBIT
            | TransferFlags::CLOSING_CREDIT,
    );
    phases > 1 || (second_phase && balancing_or_closing)
}

/// How an account that already exists compares with the one in the request.
fn account_exists(a: &Account, e: &Account) -> CreateAccountStatus {
    use CreateAccountStatus as S;
    debug_assert_eq!(a.id, e.id);
    if a.flags != e.flags {
        S::ExistsWithDifferentFlags
    } else if a.user_data_128 != e.user_data_128 {
        S::ExistsWithDifferentUserData128
    } else if a.user_data_64 != e.user_data_64 {
        S::ExistsWithDifferentUserData64
    } else if a.user_data_32 != e.user_data_32 {
        S::ExistsWithDifferentUserData32
    } else if a.ledger != e.ledger {
        S::ExistsWithDifferentLedger
    } else if a.code != e.code {
        S::ExistsWithDifferentCode
    } else {
        S::Exists
    }
}

/// How a transfer that already exists compares with the one in the request. For a post or void,
/// `pending` is the transfer it resolved: fields the request left zero (and an amount of "all of
/// it") are compared as what they resolved to.
fn transfer_exists(t: &Transfer, e: &Transfer, pending: Option<&Transfer>) -> CreateTransferStatus {
    use CreateTransferStatus as S;
    debug_assert_eq!(t.id, e.id);
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
    // A post or void may leave the accounts, user data, ledger and code zero: they are taken
    // from the pending transfer, so a zero compares as the pending transfer's value.
    let inherit = |requested: u128, pending_value: fn(&Transfer) -> u128| match pending {
        Some(pending) if (post || void) && requested == 0 => pending_value(pending),
        _ => requested,
    };
    if inherit(t.debit_account_id, |p| p.debit_account_id) != e.debit_account_id {
        return S::ExistsWithDifferentDebitAccountId;
    }
    if inherit(t.credit_account_id, |p| p.credit_account_id) != e.credit_account_id {
        return S::ExistsWithDifferentCreditAccountId;
    }
    let balancing = t.flags.intersects(TransferFlags::BALANCING_DEBIT | TransferFlags::BALANCING_CREDIT);
    let requested_amount = match (post, void, t.amount, pending) {
        (true, _, AMOUNT_MAX, Some(pending)) | (_, true, 0, Some(pending)) => pending.amount,
        (_, _, amount, _) => amount,
    };
    let amount_differs = if balancing { t.amount < e.amount } else { requested_amount != e.amount };
    if amount_differs {
        return S::ExistsWithDifferentAmount;
    }
    if inherit(t.user_data_128, |p| p.user_data_128) != e.user_data_128 {
        return S::ExistsWithDifferentUserData128;
    }
    if inherit(u128::from(t.user_data_64), |p| u128::from(p.user_data_64)) != u128::from(e.user_data_64) {
        return S::ExistsWithDifferentUserData64;
    }
    if inherit(u128::from(t.user_data_32), |p| u128::from(p.user_data_32)) != u128::from(e.user_data_32) {
        return S::ExistsWithDifferentUserData32;
    }
    if inherit(u128::from(t.ledger), |p| u128::from(p.ledger)) != u128::from(e.ledger) {
        return S::ExistsWithDifferentLedger;
    }
    if inherit(u128::from(t.code), |p| u128::from(p.code)) != u128::from(e.code) {
        return S::ExistsWithDifferentCode;
    }
    S::Exists
}
