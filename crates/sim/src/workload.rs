//! The clients' workload: accounts on two ledgers, then transfers of every shape the ledger
//! has (plain, linked chains that succeed or roll back, pending transfers that are later
//! posted, voided or left to expire, transfers refused for limits or mismatched ledgers).
//!
//! Ids are partitioned by client, so that clients never collide by accident: a repeated id is
//! always a deliberate retry of the same request.

use crate::scenario::Draw;
use tally_ledger::{
    AMOUNT_MAX, Account, AccountFlags, CreateTransferResult, CreateTransferStatus, Transfer, TransferFlags,
};

/// The ledgers accounts live on.
pub const LEDGERS: [u32; 2] = [1, 2];
/// Accounts per ledger.
pub const ACCOUNTS_PER_LEDGER: u128 = 6;
/// The most transfers in one request.
pub const TRANSFERS_PER_REQUEST_MAX: u64 = 8;
/// An account id that is never created.
const MISSING_ACCOUNT: u128 = 999_999;

/// The id of account `index` (1-based) on `ledger`.
pub fn account_id(ledger: u32, index: u128) -> u128 {
    u128::from(ledger) * 1_000 + index
}

/// Every account the workload creates. On each ledger the first account is a funding account
/// with no limits; odd accounts refuse to go below zero (`debits_must_not_exceed_credits`), so
/// some transfers are refused with `ExceedsCredits`.
pub fn accounts() -> Vec<Account> {
    let mut accounts = Vec::new();
    for ledger in LEDGERS {
        for index in 1..=ACCOUNTS_PER_LEDGER {
            let mut flags = AccountFlags::NONE;
            if index > 1 && index % 2 == 1 {
                flags |= AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
            }
            if index == 2 {
                flags |= AccountFlags::HISTORY;
            }
            accounts.push(Account { id: account_id(ledger, index), ledger, code: 10, flags, ..Account::default() });
        }
    }
    accounts
}

/// Every account id the workload creates.
pub fn account_ids() -> Vec<u128> {
    accounts().iter().map(|account| account.id).collect()
}

/// One client's source of transfers. It remembers the pending transfers it created, to post or
/// void them later.
#[derive(Debug)]
pub struct ClientWorkload {
    client: u64,
    draw: Draw,
    transfers_next: u128,
    /// Pending transfers this client created and has not yet resolved.
    pending: Vec<u128>,
}

impl ClientWorkload {
    pub fn new(client: u64, seed: u64) -> Self {
        let draw = Draw::new(seed ^ client.wrapping_mul(0x517c_c1b7_2722_0a95));
        Self { client, draw, transfers_next: 1, pending: Vec::new() }
    }

    fn next_id(&mut self) -> u128 {
        let id = (u128::from(self.client) + 1) << 64 | self.transfers_next;
        self.transfers_next += 1;
        id
    }

    fn ledger(&mut self) -> u32 {
        LEDGERS[self.draw.below(LEDGERS.len() as u64) as usize]
    }

    fn two_accounts(&mut self, ledger: u32) -> (u128, u128) {
        let debit = self.draw.between(1, ACCOUNTS_PER_LEDGER as u64) as u128;
        let mut credit = self.draw.between(1, ACCOUNTS_PER_LEDGER as u64 - 1) as u128;
        if credit >= debit {
            credit += 1;
        }
        (account_id(ledger, debit), account_id(ledger, credit))
    }

    fn plain(&mut self) -> Transfer {
        let ledger = self.ledger();
        let (debit, credit) = self.two_accounts(ledger);
        // The funding account usually pays, so that limited accounts have credits to spend.
        let debit = if self.draw.chance(1, 2) { account_id(ledger, 1) } else { debit };
        let credit = if credit == debit { account_id(ledger, 2) } else { credit };
        Transfer {
            id: self.next_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: u128::from(self.draw.between(0, 100)),
            ledger,
            code: 1,
            ..Transfer::default()
        }
    }

    /// The transfers of the client's next request.
    pub fn next_request(&mut self) -> Vec<Transfer> {
        let count = self.draw.between(1, TRANSFERS_PER_REQUEST_MAX);
        let mut transfers = Vec::new();
        while (transfers.len() as u64) < count {
            match self.draw.below(10) {
                // A linked chain of two to four transfers; sometimes one link fails and the
                // whole chain rolls back.
                0 | 1 => {
                    let length = self.draw.between(2, 4);
                    let broken = self.draw.chance(1, 3).then(|| self.draw.below(length));
                    for link in 0..length {
                        let mut transfer = self.plain();
                        if link + 1 < length {
                            transfer.flags |= TransferFlags::LINKED;
                        }
                        if broken == Some(link) {
                            transfer.credit_account_id = MISSING_ACCOUNT;
                        }
                        transfers.push(transfer);
                    }
                }
                // A pending transfer, maybe with a timeout of a second or two.
                2 | 3 => {
                    let mut transfer = self.plain();
                    transfer.flags |= TransferFlags::PENDING;
                    if self.draw.chance(1, 3) {
                        transfer.timeout = self.draw.between(1, 2) as u32;
                    }
                    transfers.push(transfer);
                }
                // Post (all or part) or void one of our pending transfers.
                4 | 5 if !self.pending.is_empty() => {
                    let pending_id = self.pending.swap_remove(self.draw.below(self.pending.len() as u64) as usize);
                    let (flags, amount) = match self.draw.below(3) {
                        0 => (TransferFlags::POST_PENDING_TRANSFER, AMOUNT_MAX),
                        1 => (TransferFlags::POST_PENDING_TRANSFER, u128::from(self.draw.between(0, 50))),
                        _ => (TransferFlags::VOID_PENDING_TRANSFER, 0),
                    };
                    transfers.push(Transfer { id: self.next_id(), pending_id, amount, flags, ..Transfer::default() });
                }
                // A transfer between ledgers: always refused.
                6 => {
                    let mut transfer = self.plain();
                    transfer.credit_account_id = account_id(if transfer.ledger == 1 { 2 } else { 1 }, 2);
                    transfers.push(transfer);
                }
                // A limited account spending more than it may have.
                7 => {
                    let ledger = self.ledger();
                    let mut transfer = self.plain();
                    transfer.ledger = ledger;
                    transfer.debit_account_id = account_id(ledger, 3);
                    transfer.credit_account_id = account_id(ledger, 4);
                    transfer.amount = u128::from(self.draw.between(50, 500));
                    transfers.push(transfer);
                }
                _ => transfers.push(self.plain()),
            }
        }
        transfers.truncate(TRANSFERS_PER_REQUEST_MAX as usize);
        // A chain cut by the truncation stays open and fails as a whole: a valid case too.
        transfers
    }

    /// Learns what the ledger answered to the transfers of an acknowledged request.
    pub fn acknowledged(&mut self, transfers: &[Transfer], results: &[CreateTransferResult]) {
        assert_eq!(transfers.len(), results.len(), "one result per event");
        for (transfer, result) in transfers.iter().zip(results) {
            if transfer.flags.contains(TransferFlags::PENDING) && result.status == CreateTransferStatus::Created {
                self.pending.push(transfer.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_deterministic_and_bounded() {
        let mut first = ClientWorkload::new(1, 9);
        let mut second = ClientWorkload::new(1, 9);
        for _ in 0..50 {
            let request = first.next_request();
            assert_eq!(request, second.next_request());
            assert!(!request.is_empty() && request.len() as u64 <= TRANSFERS_PER_REQUEST_MAX);
        }
    }

    #[test]
    fn clients_use_disjoint_ids() {
        let mut first = ClientWorkload::new(0, 9);
        let mut second = ClientWorkload::new(1, 9);
        let ids = |requests: Vec<Transfer>| requests.into_iter().map(|transfer| transfer.id).collect::<Vec<_>>();
        let a = ids(first.next_request());
        let b = ids(second.next_request());
        assert!(a.iter().all(|id| !b.contains(id)));
    }
}
