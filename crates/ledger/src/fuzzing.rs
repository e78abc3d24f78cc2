//! The body of the fuzz target (`fuzz/fuzz_targets/apply_batches.rs`), here so that the tests
//! run it too.
//!
//! Arbitrary bytes are read as a sequence of operations: a header byte picks the kind (accounts
//! or transfers), the number of events and the time step; the events are decoded from the bytes
//! that follow with the wire codec, with ids folded into a small range so that events
//! interact. After each batch the ledger's invariants must hold.

use std::collections::HashMap;

use crate::codec::{decode_accounts, decode_transfers};
use crate::constants::OBJECT_SIZE;
use crate::ledger::Ledger;
use crate::types::{Account, AccountFlags, QueryFilter, Transfer};

/// The ids events use, so that they collide and refer to each other.
const ID_RANGE: u128 = 64;
/// The largest batch the fuzzer builds (the full bound is tested elsewhere).
const FUZZ_BATCH_EVENTS_MAX: usize = 16;

/// Applies the batches encoded in `data` to a fresh ledger, checking invariants after each.
/// Panics if an invariant breaks. Returns how many accounts and transfers were created.
pub fn apply_arbitrary_batches(data: &[u8]) -> (usize, usize) {
    let mut created = (0, 0);
    let mut ledger = Ledger::new();
    let mut timestamp = 1u64;
    let mut rest = data;
    while let Some((&header, tail)) = rest.split_first() {
        let events = usize::from(header & 0x0f).clamp(1, FUZZ_BATCH_EVENTS_MAX);
        let bytes = (events * OBJECT_SIZE).min(tail.len() / OBJECT_SIZE * OBJECT_SIZE);
        if bytes == 0 {
            break;
        }
        let (batch, remainder) = tail.split_at(bytes);
        rest = remainder;
        // Time steps from a nanosecond to about four seconds, so pending transfers expire.
        timestamp += 1 + (u64::from(header >> 5) << 29);
        if header & 0x10 == 0 {
            let accounts: Vec<Account> = decode_accounts(batch)
                .expect("whole records")
                .into_iter()
                .map(|account| Account { id: account.id % ID_RANGE, ..account })
                .collect();
            let results = ledger.create_accounts(timestamp, &accounts);
            assert_eq!(results.len(), accounts.len());
            created.0 += results.iter().filter(|result| result.status == crate::CreateAccountStatus::Created).count();
            timestamp += accounts.len() as u64;
        } else {
            let transfers: Vec<Transfer> = decode_transfers(batch)
                .expect("whole records")
                .into_iter()
                .map(|transfer| Transfer {
                    id: transfer.id % ID_RANGE,
                    debit_account_id: transfer.debit_account_id % ID_RANGE,
                    credit_account_id: transfer.credit_account_id % ID_RANGE,
                    pending_id: transfer.pending_id % ID_RANGE,
                    timeout: transfer.timeout % 8,
                    ..transfer
                })
                .collect();
            let results = ledger.create_transfers(timestamp, &transfers);
            assert_eq!(results.len(), transfers.len());
            created.1 += results.iter().filter(|result| result.status == crate::CreateTransferStatus::Created).count();
            timestamp += transfers.len() as u64;
        }
        check_invariants(&ledger);
    }
    assert_eq!(ledger.digest(), ledger.digest_from_scratch(), "the incremental digest drifted");
    created
}

/// Money is conserved per ledger and no balance limit is broken.
pub fn check_invariants(ledger: &Ledger) {
    let accounts = ledger.query_accounts(QueryFilter { limit: u32::MAX, ..QueryFilter::default() });
    let mut sums: HashMap<u32, [u128; 4]> = HashMap::new();
    for account in &accounts {
        let sum = sums.entry(account.ledger).or_default();
        for (total, value) in sum.iter_mut().zip([
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        ]) {
            *total = total.checked_add(value).expect("a ledger's total fits in u128");
        }
        let debits = account.debits_pending.checked_add(account.debits_posted).expect("debits fit");
        let credits = account.credits_pending.checked_add(account.credits_posted).expect("credits fit");
        if account.flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) {
            assert!(debits <= account.credits_posted, "debit limit broken: {account:?}");
        }
        if account.flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) {
            assert!(credits <= account.debits_posted, "credit limit broken: {account:?}");
        }
    }
    for (ledger_id, [debits_pending, debits_posted, credits_pending, credits_posted]) in sums {
        assert_eq!(debits_pending, credits_pending, "pending money not conserved on ledger {ledger_id}");
        assert_eq!(debits_posted, credits_posted, "posted money not conserved on ledger {ledger_id}");
    }
}
