//! Adversarial review of `tally-ledger` (crates/ledger/src). Each test here demonstrates one
//! concrete bug: it FAILS (assertion or panic) on the code as reviewed, and should pass once the
//! bug is fixed. The comment above each test says what is wrong and where.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-review cargo test -p tally-ledger --test review`
//!
//! Status (2026-11-29 10:15 UTC): all 12 tests fail on 80bb209 (the commit reviewed). On HEAD
//! 598998b, commit 9033f0d fixed the history order (sequence numbers), the retried post/void
//! comparison and the closing flags, so the 4 history tests and the 2 semantics tests pass and are
//! kept as regression tests; the other 6 still fail.

use tally_ledger::*;

const SECOND_NS: u64 = 1_000_000_000;

fn account(id: u128, flags: AccountFlags) -> Account {
    Account { id, ledger: 1, code: 1, flags, ..Account::default() }
}

fn transfer(id: u128, debit_account_id: u128, credit_account_id: u128, amount: u128) -> Transfer {
    Transfer { id, debit_account_id, credit_account_id, amount, ledger: 1, code: 1, ..Transfer::default() }
}

fn pending(id: u128, debit_account_id: u128, credit_account_id: u128, amount: u128, timeout: u32) -> Transfer {
    Transfer { flags: TransferFlags::PENDING, timeout, ..transfer(id, debit_account_id, credit_account_id, amount) }
}

fn all_created_accounts(results: &[CreateAccountResult]) {
    assert!(results.iter().all(|r| r.status == CreateAccountStatus::Created), "{results:?}");
}

fn all_created_transfers(results: &[CreateTransferResult]) {
    assert!(results.iter().all(|r| r.status == CreateTransferStatus::Created), "{results:?}");
}

// ---------------------------------------------------------------------------------------------
// 1. Balance-history entries can be appended out of timestamp order.
//
// Expiry entries carry the *batch* timestamp `T` (ledger.rs `expire_pending_transfers`,
// rules.rs `expire` -> `record_balance(.., timestamp)`), but two things let a later batch append
// entries with a smaller timestamp:
//   (a) an empty batch runs the expiry pass at `T` but does not advance `timestamp_last`
//       (ledger.rs `execute`: `if let Some(last) = batch.len().checked_sub(1)`), so the next
//       batch may use any timestamp in (timestamp_last, T);
//   (b) imported transfers carry user timestamps that only have to be later than the last
//       *transfer* (rules.rs `imported_transfer_checks`), not later than the last expiry.
// `Commitment::apply` appends each batch's entries after the previous batches', while
// `Commitment::rebuild` (restore, digest_from_scratch) sorts *all* entries by timestamp
// (commitment.rs `balances_in_order`), so the incremental digest drifts from the from-scratch
// digest: replicas that restored from a snapshot disagree with replicas that did not, and the
// snapshot of such a ledger cannot be restored (DigestMismatch / "balance entries out of
// order"). `get_account_balances` binary-searches a list that is no longer sorted.
// ---------------------------------------------------------------------------------------------

/// (a) An empty batch at T = 10 s expires a pending transfer (at its deadline, 1 s after it was
/// created). The expiry took a timestamp, so a later batch at 3,000 ns, before it, is refused as
/// a whole; the incremental digest still equals the from-scratch digest.
#[test]
fn review_empty_batch_expiry_then_earlier_batch_breaks_digest() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::HISTORY), account(2, AccountFlags::NONE)]),
    );
    all_created_transfers(&ledger.create_transfers(2_000, &[pending(10, 1, 2, 5, 1)]));
    assert!(ledger.create_transfers(10 * SECOND_NS, &[]).is_empty());
    assert_eq!(ledger.lookup_accounts(&[1])[0].debits_pending, 0, "expired by 10 s");
    assert_eq!(ledger.timestamp_last(), SECOND_NS + 2_000, "the expiry is recorded at its deadline");
    assert!(matches!(
        ledger.try_create_transfers(3_000, &[transfer(11, 1, 2, 1)]),
        Err(BatchError::TimestampRegressed { timestamp: 3_000, .. })
    ));
    all_created_transfers(&ledger.create_transfers(SECOND_NS + 3_000, &[transfer(11, 1, 2, 1)]));
    assert_eq!(ledger.digest(), ledger.digest_from_scratch(), "incremental digest drifted");
}

/// (a') The snapshot of a ledger that went through an empty batch with an expiry restores.
#[test]
fn review_empty_batch_expiry_makes_snapshot_unrestorable() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::HISTORY), account(2, AccountFlags::NONE)]),
    );
    all_created_transfers(&ledger.create_transfers(2_000, &[pending(10, 1, 2, 5, 1)]));
    ledger.create_transfers(10 * SECOND_NS, &[]);
    all_created_transfers(&ledger.create_transfers(11 * SECOND_NS, &[transfer(11, 1, 2, 1)]));
    let restored = Ledger::restore(&ledger.snapshot());
    assert!(restored.is_ok(), "snapshot of a valid ledger refused: {:?}", restored.err());
    assert_eq!(restored.unwrap().digest(), ledger.digest());
}

/// (b) No empty batch needed: an account batch at 10 s expires a pending transfer (history entry
/// at 10 s), then an imported transfer at 5 s is created (valid: later than every transfer, and
/// in the past). Incremental and from-scratch digests differ.
#[test]
fn review_imported_transfer_after_expiry_breaks_digest() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::HISTORY), account(2, AccountFlags::NONE)]),
    );
    all_created_transfers(&ledger.create_transfers(2_000, &[pending(10, 1, 2, 5, 1)]));
    // Any batch at 10 s runs the expiry pass; account 1's history gets an entry at 10 s.
    all_created_accounts(&ledger.create_accounts(10 * SECOND_NS, &[account(3, AccountFlags::NONE)]));
    let imported = Transfer { flags: TransferFlags::IMPORTED, timestamp: 5 * SECOND_NS, ..transfer(11, 1, 2, 1) };
    all_created_transfers(&ledger.create_transfers(20 * SECOND_NS, &[imported]));
    assert_eq!(ledger.digest(), ledger.digest_from_scratch(), "incremental digest drifted");
}

/// (b') Within one batch: the expiry entry (at T = 20 s) is pushed before the imported
/// transfer's entry (at 5 s), so account 1's history is out of order. `get_account_balances`
/// then misses the 5 s entry for a range that contains it (binary search over an unsorted
/// list), and the snapshot is refused by `restore` ("balance entries out of order").
#[test]
fn review_imported_batch_that_expires_corrupts_history_order() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::HISTORY), account(2, AccountFlags::NONE)]),
    );
    all_created_transfers(&ledger.create_transfers(2_000, &[pending(10, 1, 2, 5, 1)]));
    let imported = Transfer { flags: TransferFlags::IMPORTED, timestamp: 5 * SECOND_NS, ..transfer(11, 1, 2, 1) };
    all_created_transfers(&ledger.create_transfers(20 * SECOND_NS, &[imported]));
    let filter = AccountFilter {
        account_id: 1,
        timestamp_max: 6 * SECOND_NS,
        limit: 100,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    let balances = ledger.get_account_balances(filter);
    let timestamps: Vec<u64> = balances.iter().map(|b| b.timestamp).collect();
    assert!(timestamps.contains(&(5 * SECOND_NS)), "entry at 5 s missing from range [0, 6 s]: {timestamps:?}");
    let restored = Ledger::restore(&ledger.snapshot());
    assert!(restored.is_ok(), "snapshot of a valid ledger refused: {:?}", restored.err());
}

// ---------------------------------------------------------------------------------------------
// 2. Crafted snapshots. The checksum key is public, and `RestoreError::DigestMismatch` even
// prints the digest `restore` computed, so an attacker can make any structurally valid body pass
// (`restore_forged` below does exactly that). `restore` (snapshot.rs) checks ids, order and that
// balances equal the sum of transfers, but not the ledger's own invariants, so it accepts states
// the rules assume can never exist; the next batch then panics.
// ---------------------------------------------------------------------------------------------

const CHECKSUM_KEY: &[u8; 32] = b"tally.ledger.v1.snapshot........";

#[derive(Default)]
struct Forged {
    timestamp_last: u64,
    accounts: Vec<Account>,
    transfers: Vec<Transfer>,
    /// One status byte per transfer with flags.pending.
    statuses: Vec<u8>,
    digest: [u8; 32],
}

impl Forged {
    fn bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"TALLYLDG");
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&self.timestamp_last.to_le_bytes());
        bytes.extend_from_slice(&(self.accounts.len() as u64).to_le_bytes());
        for account in &self.accounts {
            bytes.extend_from_slice(&account.to_bytes());
        }
        bytes.extend_from_slice(&(self.transfers.len() as u64).to_le_bytes());
        for transfer in &self.transfers {
            bytes.extend_from_slice(&transfer.to_bytes());
        }
        bytes.extend_from_slice(&self.statuses);
        bytes.extend_from_slice(&0u64.to_le_bytes()); // balance entries
        bytes.extend_from_slice(&0u64.to_le_bytes()); // failed ids
        bytes.extend_from_slice(&self.digest);
        let checksum = blake3::keyed_hash(CHECKSUM_KEY, &bytes);
        bytes.extend_from_slice(checksum.as_bytes());
        bytes
    }
}

/// Restores `forged`, first learning the digest `restore` wants from its own error message.
fn restore_forged(mut forged: Forged) -> Result<Ledger, RestoreError> {
    match Ledger::restore(&forged.bytes()) {
        Err(RestoreError::DigestMismatch { restored, .. }) => {
            for (i, byte) in forged.digest.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&restored[2 * i..2 * i + 2], 16).unwrap();
            }
            Ledger::restore(&forged.bytes())
        }
        other => other,
    }
}

/// snapshot.rs `restore` does not check the balance-limit flags. Account 1 has
/// `debits_must_not_exceed_credits` with debits 100 > credits 0 (consistent with its one
/// transfer, so it passes the balance check). Any later transfer that touches account 1 as the
/// *credit* account passes the rules (only the debit side of account 1's flag is checked for its
/// debits) and then hits `assert_balance_limits` (rules.rs:458): the replica panics on a valid
/// batch. Fix: `restore` must check every invariant the rules assert (limits, flag exclusivity,
/// reserved fields/flags, ledger/code nonzero, `closed` only with a pending closing transfer,
/// pending+posted sums not overflowing, timestamps <= TIMESTAMP_MAX, posts/voids naming a pending
/// transfer whose status matches, ...).
#[test]
fn review_restore_accepts_broken_balance_limit_then_panics() {
    let forged = Forged {
        timestamp_last: 3,
        accounts: vec![
            Account { debits_posted: 100, timestamp: 1, ..account(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) },
            Account { credits_posted: 100, timestamp: 2, ..account(2, AccountFlags::NONE) },
        ],
        transfers: vec![Transfer { timestamp: 3, ..transfer(10, 1, 2, 100) }],
        ..Forged::default()
    };
    match restore_forged(forged) {
        Err(_) => {} // Refused: fixed.
        Ok(mut ledger) => {
            // Panics inside the ledger: "account 1 breaks its balance limit".
            let results = ledger.create_transfers(100, &[transfer(11, 2, 1, 1)]);
            panic!("restore accepted a snapshot whose account breaks its balance limit: {results:?}");
        }
    }
}

/// snapshot.rs `restore` checks each balance with `checked_add` but not
/// `debits_pending + debits_posted`, which rules.rs:212 (and types.rs:439) add unchecked. With
/// 2^127 pending and 2^127 posted on account 1, a zero-amount transfer panics with
/// "attempt to add with overflow" in debug builds and silently wraps in release builds
/// (the overflow check then passes on a wrapped total).
#[test]
fn review_restore_accepts_overflowing_debits_then_panics() {
    let half = 1u128 << 127;
    let forged = Forged {
        timestamp_last: 4,
        accounts: vec![
            Account { debits_pending: half, debits_posted: half, timestamp: 1, ..account(1, AccountFlags::NONE) },
            Account { credits_pending: half, credits_posted: half, timestamp: 2, ..account(2, AccountFlags::NONE) },
        ],
        transfers: vec![
            Transfer { timestamp: 3, ..pending(10, 1, 2, half, 0) },
            Transfer { timestamp: 4, ..transfer(11, 1, 2, half) },
        ],
        statuses: vec![1], // pending
        ..Forged::default()
    };
    match restore_forged(forged) {
        Err(_) => {}
        Ok(mut ledger) => {
            let results = ledger.create_transfers(100, &[transfer(12, 1, 2, 0)]);
            panic!("restore accepted debits_pending + debits_posted > u128::MAX: {results:?}");
        }
    }
}

/// snapshot.rs:168 computes `transfer.timestamp + transfer.timeout_ns()` unchecked for a pending
/// transfer, before the digest is even checked: a snapshot with a pending transfer at
/// timestamp u64::MAX - 5 and a 1 s timeout makes `restore` itself panic (debug) instead of
/// returning `RestoreError` (and in release, inserts a wrapped expiry). Transfer and
/// `timestamp_last` values above TIMESTAMP_MAX are not refused either.
#[test]
fn review_restore_panics_on_expiry_overflow() {
    let forged = Forged {
        timestamp_last: u64::MAX,
        accounts: vec![
            Account { timestamp: 1, ..account(1, AccountFlags::NONE) },
            Account { timestamp: 2, ..account(2, AccountFlags::NONE) },
        ],
        transfers: vec![Transfer { timestamp: u64::MAX - 5, ..pending(10, 1, 2, 0, 1) }],
        statuses: vec![1],
        ..Forged::default()
    };
    let result = std::panic::catch_unwind(|| restore_forged(forged).map(|_| ()));
    assert!(result.is_ok(), "Ledger::restore panicked on untrusted bytes");
    assert!(result.unwrap().is_err(), "a transfer timestamp above TIMESTAMP_MAX was accepted");
}

// ---------------------------------------------------------------------------------------------
// 3. Proof verification (client side, untrusted input).
// ---------------------------------------------------------------------------------------------

/// `TransferProof::verify` calls `TransferLogProof::transfer_bytes` (transfer_log.rs:101) before
/// `index < count` is checked; `index * 128` overflows for a large index: a malicious server
/// makes a verifying client panic (debug) instead of getting `false`.
#[test]
fn review_transfer_proof_verify_panics_on_crafted_index() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::NONE), account(2, AccountFlags::NONE)]),
    );
    all_created_transfers(&ledger.create_transfers(2_000, &[transfer(10, 1, 2, 1)]));
    let (stored, mut proof) = ledger.prove_transfer(10).unwrap();
    assert!(proof.verify(&ledger.digest(), &stored));
    proof.log.index = u64::MAX / 2;
    let digest = ledger.digest();
    let result = std::panic::catch_unwind(move || proof.verify(&digest, &stored));
    assert_eq!(result.ok(), Some(false), "verify must return false, not panic");
}

// ---------------------------------------------------------------------------------------------
// 4. Semantics vs TigerBeetle 0.16 (src/state_machine.zig, `post_or_void_pending_transfer` and
// `post_or_void_pending_transfer_exists`). Not covered by tests/conformance.
// ---------------------------------------------------------------------------------------------

/// rules.rs `transfer_exists` treats a zero `user_data_*` in a retried post/void as matching
/// anything. TigerBeetle compares the *stored* post's user data with the *pending* transfer's
/// when the request's is zero ("zero means inherited"): a post stored with user_data_128 = 99
/// (pending had 7) retried with user_data_128 = 0 is `exists_with_different_user_data_128`,
/// because the retry would have produced 7. Tally answers `exists`. Fix: in `transfer_exists`,
/// for a post/void with a zero field, compare `e.field` with `pending.field`.
#[test]
fn review_retried_post_with_zero_user_data_compares_with_pending() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::NONE), account(2, AccountFlags::NONE)]),
    );
    let p = Transfer { user_data_128: 7, ..pending(10, 1, 2, 5, 0) };
    all_created_transfers(&ledger.create_transfers(2_000, &[p]));
    let post = Transfer {
        id: 11,
        pending_id: 10,
        amount: AMOUNT_MAX,
        user_data_128: 99,
        flags: TransferFlags::POST_PENDING_TRANSFER,
        ..Transfer::default()
    };
    all_created_transfers(&ledger.create_transfers(3_000, &[post]));
    let retry = Transfer { user_data_128: 0, ..post };
    let results = ledger.create_transfers(4_000, &[retry]);
    assert_eq!(results[0].status, CreateTransferStatus::ExistsWithDifferentUserData128);
}

/// TigerBeetle's `post_or_void_pending_transfer` answers `flags_are_mutually_exclusive` for a
/// post/void with `closing_debit`/`closing_credit`, *before* looking at `pending_id`. Tally
/// (rules.rs:307, `ClosingTransferMustBePending` after the pending_id/timeout checks) answers
/// `pending_id_must_not_be_zero` here. (tests/conformance/precedence.rs accepts either status
/// for the flag combination but never checks its precedence against the pending_id checks.)
/// Fix: add the closing flags to `flags_are_mutually_exclusive` for posts/voids.
#[test]
fn review_void_with_closing_flag_is_flags_are_mutually_exclusive_first() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::NONE), account(2, AccountFlags::NONE)]),
    );
    let void = Transfer {
        id: 11,
        pending_id: 0,
        flags: TransferFlags::VOID_PENDING_TRANSFER | TransferFlags::CLOSING_DEBIT,
        ..Transfer::default()
    };
    let results = ledger.create_transfers(2_000, &[void]);
    assert_eq!(results[0].status, CreateTransferStatus::FlagsAreMutuallyExclusive);
}

/// Expiry balance entries all carry the batch timestamp T (rules.rs `expire`), which is also the
/// timestamp of the batch's first event. TigerBeetle gives every event, expiries included, its
/// own timestamp, and clients page through `get_account_balances` with
/// `timestamp_min = last.timestamp + 1`: with duplicates, that skips entries. Here two pending
/// transfers expire in the batch whose first event also touches account 1; paging with limit 1
/// sees 2 of the 4 entries.
#[test]
fn review_balance_history_timestamps_are_not_unique() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::HISTORY), account(2, AccountFlags::NONE)]),
    );
    all_created_transfers(&ledger.create_transfers(2_000, &[pending(10, 1, 2, 5, 1), pending(11, 1, 2, 6, 1)]));
    all_created_transfers(&ledger.create_transfers(10 * SECOND_NS, &[transfer(12, 2, 1, 1)]));
    let all = AccountFilter {
        account_id: 1,
        limit: 100,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    let entries = ledger.get_account_balances(all);
    assert_eq!(entries.len(), 5, "2 pendings, 2 expiries, 1 transfer");
    // Page through with TigerBeetle's documented pattern.
    let mut paged = Vec::new();
    let mut filter = AccountFilter { limit: 1, ..all };
    loop {
        let page = ledger.get_account_balances(filter);
        let Some(last) = page.last() else { break };
        filter.timestamp_min = last.timestamp + 1;
        paged.extend(page);
    }
    assert_eq!(paged.len(), entries.len(), "paging by timestamp lost entries: {paged:?}");
}

/// Still open after the working-tree fix of the history order (sequence numbers): an empty batch
/// at T runs the expiry pass at T (ledger.rs `execute` -> `expire_pending_transfers`) but leaves
/// `timestamp_last` where it was (`batch.len().checked_sub(1)`), so time can run backwards: the
/// next batch may be at T' < T, and there a post of a pending transfer that had *not* expired
/// at T' (expires at 2,000 + 1 s) is refused as `PendingTransferExpired`, and account 1's
/// history shows the expiry (recorded at 10 s) before an entry at 3,000 ns whose balances already
/// include it. Fix: an empty batch either does not run the expiry pass, or advances
/// `timestamp_last` to T (so that the next batch must be later than every expiry it ran).
#[test]
fn review_empty_batch_lets_time_run_backwards() {
    let mut ledger = Ledger::new();
    all_created_accounts(
        &ledger.create_accounts(1_000, &[account(1, AccountFlags::HISTORY), account(2, AccountFlags::NONE)]),
    );
    all_created_transfers(&ledger.create_transfers(2_000, &[pending(10, 1, 2, 5, 1)]));
    ledger.create_transfers(10 * SECOND_NS, &[]);
    if ledger.check_batch(3_000, 1).is_ok() {
        let post = Transfer {
            id: 11,
            pending_id: 10,
            amount: AMOUNT_MAX,
            flags: TransferFlags::POST_PENDING_TRANSFER,
            ..Transfer::default()
        };
        let results = ledger.create_transfers(3_000, &[post]);
        assert_eq!(
            results[0].status,
            CreateTransferStatus::Created,
            "at 3,000 ns the pending transfer (expires at 1 s + 2,000 ns) had not expired"
        );
    }
}
